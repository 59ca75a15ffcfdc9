"""Every value a hand edit, `act set` or the Python API can put in a declared file that
Backstage cannot use: each refused with InvalidSetting in one line that names the key
and says what to write, never a Python error. The files are read as the Manager reads
them (`from_dict` on the parsed TOML), so what is refused here is refused there."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from backstage.errors import InvalidHostname, InvalidSetting
from backstage.model.assign import apply_settings, parse_assignments, split_assignment
from backstage.model.checks import MAX_PROCESSES, cron_fields
from backstage.model.domains import check_venue_domain
from backstage.model.spec import ActSpec, ProductionSpec, VenueSpec, from_dict

ACT = {"name": "Shop", "port": 8101}
VENUE = {"name": "Shop", "python": "3.11"}


def _refused(cls: type, data: dict[str, Any]) -> str:
    with pytest.raises(InvalidSetting) as refused:
        from_dict(cls, data, "/srv/x.toml")
    said = str(refused.value)
    assert "\n" not in said and said.startswith("/srv/x.toml: "), said
    for python_words in ("__init__", "positional argument", "Traceback", "object has no"):
        assert python_words not in said, said
    return said


# (the act.toml's settings beside name and port, a word of the reason)
BAD_ACT: list[tuple[dict[str, Any], str]] = [
    ({"port": 0}, "not a port"),
    ({"port": -1}, "not a port"),
    ({"port": 65536}, "not a port"),
    ({"port": 70000}, "not a port"),
    ({"port": "8101"}, "port must be an integer"),
    ({"port": 8101.5}, "port must be an integer"),
    ({"port": True}, "port must be an integer"),
    ({"port": [8101]}, "port must be an integer"),
    ({"processes": 0}, "too small"),
    ({"processes": -3}, "too small"),
    ({"processes": MAX_PROCESSES + 1}, "too many workers"),
    ({"processes": 1000000}, "write 512 or fewer"),
    ({"processes": "4"}, "processes must be an integer"),
    ({"processes": 2.0}, "processes must be an integer"),
    ({"max_processes": -1}, "too small"),
    ({"max_processes": 1000000}, "too many workers"),
    ({"processes": 4, "max_processes": 2}, "below processes = 4"),
    ({"processes": 8, "max_processes": 1}, "write 8 or more"),
    ({"max_processes": "8"}, "must be an integer"),
    # adaptive workers, "AT_REST..CEILING"
    ({"processes": "4..2"}, 'processes = "4..2": the second number must be above the first'),
    ({"processes": "2..2"}, "must be above the first"),
    ({"processes": "0..4"}, "processes = 0 is too small"),
    ({"processes": f"1..{MAX_PROCESSES + 1}"}, "too many workers"),
    ({"processes": "1..four"}, 'or a range of workers at rest and under load ("1..4")'),
    ({"processes": "1...4"}, "processes must be an integer"),
    ({"processes": "..4"}, "processes must be an integer"),
    ({"processes": "-1..4"}, "processes must be an integer"),
    ({"processes": "1..4", "max_processes": 8}, "remove max_processes = 8"),
    ({"adaptive": True}, 'write processes = "1..4"'),
    ({"enabled": "yes"}, "enabled must be true or false"),
    ({"enabled": 1}, "enabled must be true or false"),
    ({"module": "my-site"}, "not a Python module name"),
    ({"module": "class"}, "not a Python module name"),
    ({"module": "a..b"}, "not a Python module name"),
    ({"module": "1abc"}, "not a Python module name"),
    ({"module": "mysité"}, "not a Python module name"),
    ({"env": {"A=B": "x"}}, "not a variable name"),
    ({"env": {"X Y": "x"}}, "not a variable name"),
    ({"env": {"": "x"}}, "not a variable name"),
    ({"env": {"1X": "x"}}, "not a variable name"),
    ({"env": {"UWSGI_MASTER": "x"}}, "reserved"),
    ({"env": {"uwsgi_master": "x"}}, "reserved"),
    ({"env": {"BACKSTAGE_HOME": "x"}}, "reserved"),
    ({"env": {"K": "a\0b"}}, "NUL"),
    ({"env": {"K": 1}}, "env must be a table of strings"),
    ({"env": {"K": True}}, "env must be a table of strings"),
    ({"env": "K=V"}, "env must be a table of strings"),
    ({"hosts": ["-bad.example.com"]}, "hosts"),
    ({"hosts": ["a..example.com"]}, "empty label"),
    ({"hosts": ["Example.COM"]}, "write 'Example.COM' as 'example.com'"),
    ({"hosts": ["127.0.0.1"]}, "IP address"),
    ({"hosts": ["x" * 64 + ".example.com"]}, "1 to 63"),
    ({"hosts": ["a_b.example.com"]}, "hosts"),
    ({"hosts": [""]}, "not a hostname"),
    ({"hosts": "example.com"}, "hosts must be a list of strings"),
    ({"hosts": [1]}, "hosts must be a list of strings"),
    ({"source": "relative/path"}, "absolute path"),
    ({"source": "~/blog"}, "absolute path"),
    ({"wsgi": "mysite.wsgi"}, "not MODULE:CALLABLE"),
    ({"wsgi": "mysite:app("}, "not MODULE:CALLABLE"),
    ({"wsgi": "m:app(x=open(1))"}, "must be literals"),
    ({"wsgi": ":app"}, "not MODULE:CALLABLE"),
    ({"wsgi": "my site:app"}, "not MODULE:CALLABLE"),
    ({"settings": "my-site.settings"}, "not a Python module name"),
    ({"pythonpath": ["relative"]}, "not an absolute path"),
    ({"pythonpath": "/abs"}, "pythonpath must be a list of strings"),
    ({"static_url": "/static/"}, "go together"),
    ({"static_root": "/srv/static"}, "go together"),
    ({"static_url": "/s/", "static_root": "rel"}, "not an absolute path"),
    ({"release": "python manage.py migrate"}, "release must be a list of strings"),
    ({"workers": {"bad name": "celery"}}, "workers name"),
    ({"workers": {"x/y": "celery"}}, "workers name"),
    ({"workers": {"w": ""}}, "one command on one line"),
    ({"workers": {"w": "   "}}, "one command on one line"),
    ({"workers": {"w": "a\nb"}}, "one command on one line"),
    ({"workers": {"w": 1}}, "workers must be a table of strings"),
    ({"cron": {"x": "99 99 * * * ls"}}, "minute '99' is out of range"),
    ({"cron": {"x": "0 24 * * * ls"}}, "hour '24' is out of range"),
    ({"cron": {"x": "0 0 0 * * ls"}}, "day '0' is out of range"),
    ({"cron": {"x": "0 0 32 * * ls"}}, "day '32' is out of range"),
    ({"cron": {"x": "0 0 * 13 * ls"}}, "month '13' is out of range"),
    ({"cron": {"x": "0 0 * 0 * ls"}}, "month '0' is out of range"),
    ({"cron": {"x": "0 0 * * 7 ls"}}, "week '7' is out of range"),
    ({"cron": {"x": "*/0 * * * * ls"}}, "out of range"),
    ({"cron": {"x": "*/60 * * * * ls"}}, "out of range"),
    ({"cron": {"x": "1-5 * * * * ls"}}, "not *, */N or a number"),
    ({"cron": {"x": "1,2 * * * * ls"}}, "not *, */N or a number"),
    ({"cron": {"x": "@daily ls"}}, "five schedule fields"),
    ({"cron": {"x": "* * * * *"}}, "five schedule fields"),
    ({"cron": {"x": ""}}, "five schedule fields"),
    ({"cron": {"x": "-1 * * * * ls"}}, "not *, */N or a number"),
    ({"cron": {"bad name": "* * * * * ls"}}, "cron name"),
    ({"uwsgi": {"socket": "/tmp/s"}}, "set by Backstage"),
    ({"uwsgi": {"http-socket": ":80"}}, "set by Backstage"),
    ({"uwsgi": {"stats": "/tmp/s"}}, "set by Backstage"),
    ({"uwsgi": {"master-fifo": "/tmp/f"}}, "set by Backstage"),
    ({"uwsgi": {"processes": 4}}, "set by Backstage"),
    ({"uwsgi": {"uid": "root"}}, "set by Backstage"),
    ({"uwsgi": {"procname-master": "x"}}, "set by Backstage"),
    ({"uwsgi": {"logto": "/tmp/l"}}, "set by Backstage"),
    ({"uwsgi": {"Harakiri": 30}}, "not a uWSGI option name"),
    ({"uwsgi": {"hara kiri": 30}}, "not a uWSGI option name"),
    ({"uwsgi": {"harakiri": "30\nmaster = false"}}, "spans lines"),
    ({"uwsgi": {"harakiri": {"a": 1}}}, "uwsgi must be a table"),
    ({"uwsgi": "harakiri=30"}, "uwsgi must be a table"),
    ({"log_max": -1}, "too small"),
    ({"log_keep": -1}, "too small"),
    ({"idle": -5}, "too small"),
    ({"max_rss": -1}, "too small"),
    ({"memory_report": "true"}, "must be true or false"),
    ({"watch_paths": [""]}, "not a glob"),
    ({"watch_ignore": ["  "]}, "not a glob"),
    ({"watch_paths": "*.py"}, "must be a list of strings"),
    ({"prot": 1}, "unknown setting 'prot'"),
    ({"Port": 8101}, "unknown setting 'Port'"),
    ({"processess": 2}, "unknown setting"),
    ({"hosts_": []}, "unknown setting"),
]


@pytest.mark.parametrize("extra,reason", BAD_ACT, ids=[str(i) for i, _ in enumerate(BAD_ACT)])
def test_a_bad_act_toml_value_is_refused_in_one_line(extra, reason):
    said = _refused(ActSpec, {**ACT, **extra})
    assert reason in said, said


BAD_ACT_FILES = [
    ({}, "name and port missing"),
    ({"name": "Shop"}, "port missing"),
    ({"port": 8101}, "name missing"),
    ({"name": 3, "port": 8101}, "name must be a string"),
]


@pytest.mark.parametrize("data,reason", BAD_ACT_FILES)
def test_an_act_toml_without_what_it_must_say_names_what_is_missing(data, reason):
    assert reason in _refused(ActSpec, data)


BAD_VENUE: list[tuple[dict[str, Any], str]] = [
    ({"domains": ["com"]}, "'com' is a public suffix"),
    ({"domains": ["co.uk"]}, "'co.uk' is a public suffix"),
    ({"domains": ["github.io"]}, "'github.io' is a public suffix"),
    ({"domains": ["org"]}, "public suffix"),
    ({"domains": ["test"]}, "public suffix"),
    ({"domains": ["localhost"]}, "public suffix"),
    ({"domains": ["example.com", "net"]}, "'net' is a public suffix"),
    ({"domains": ["EXAMPLE.com"]}, "write 'EXAMPLE.com' as 'example.com'"),
    ({"domains": ["exa mple.com"]}, "domains"),
    ({"domains": ["10.0.0.1"]}, "IP address"),
    ({"domains": "example.com"}, "domains must be a list of strings"),
    ({"requirements": "django"}, "requirements must be a list of strings"),
    ({"own_uwsgi": "yes"}, "own_uwsgi must be true or false"),
    ({"python": 3.11}, "python must be a string"),
    ({"domain": ["example.com"]}, "unknown setting 'domain'"),
]


@pytest.mark.parametrize("extra,reason", BAD_VENUE, ids=[str(i) for i, _ in enumerate(BAD_VENUE)])
def test_a_bad_venue_toml_value_is_refused_in_one_line(extra, reason):
    assert reason in _refused(VenueSpec, {**VENUE, **extra})


BAD_PRODUCTION: list[tuple[dict[str, Any], str]] = [
    ({"ports": [9000, 8000]}, "first <= last"),
    ({"ports": [0, 8000]}, "first <= last"),
    ({"ports": [8000, 70000]}, "first <= last"),
    ({"ports": [8000]}, "two integers"),
    ({"ports": [8000, 8100, 8200]}, "two integers"),
    ({"ports": ["8000", "8100"]}, "two integers"),
    ({"ports": 8000}, "two integers"),
    ({"router": "127.0.0.1"}, "router"),
    ({"router": "127.0.0.1:0"}, "router"),
    ({"router": "127.0.0.1:65536"}, "router"),
    ({"router": "nonsense"}, "router"),
    ({"router": ""}, "router"),
    ({"router": 8000}, "router must be a string"),
    ({"channel": "tcp"}, "write one of auto, zmq, dir"),
    ({"processes": 0}, "too small"),
    ({"processes": 100000}, "too many workers"),
    ({"max_rss": -1}, "too small"),
    ({"stage": "other"}, "write one of own, system"),
    ({"stage": "system", "system_vassals": "relative"}, "absolute path"),
    ({"metrics": "9100"}, "metrics"),
    ({"dashboard": "localhost"}, "dashboard"),
    ({"producer": "ftp://x"}, "not the URL of PowerDNS's API"),
    ({"producer": "http://127.0.0.1:8081", "producer_key": "key"}, "absolute path"),
    ({"subscribe_to": ["10.0.0.1:4000"]}, "needs node_address"),
    ({"node_address": "0.0.0.0"}, "node_address"),
    ({"venues": "/srv/v"}, "venues must be a list of strings"),
    ({"router_sign": "no"}, "router_sign must be true or false"),
    ({"bogus": 1}, "unknown setting 'bogus'"),
]


@pytest.mark.parametrize(
    "data,reason", BAD_PRODUCTION, ids=[str(i) for i, _ in enumerate(BAD_PRODUCTION)]
)
def test_a_bad_production_toml_value_is_refused_in_one_line(data, reason):
    assert reason in _refused(ProductionSpec, data)


# `act set KEY=VALUE`, `config set`, `act add --env`: the text as typed
BAD_ASSIGNMENTS = [
    (["processes"], "setting 'processes' is not KEY=VALUE: write it as processes=4"),
    (["=4"], "is not KEY=VALUE"),
    (["processes=0"], "too small"),
    (["processes=1000000"], "too many workers"),
    (["processes=many"], "processes must be an integer"),
    (["max_processes=1"], "below processes = 2"),
    (["processes=3..1"], "the second number must be above the first"),
    (["processes=1..x"], "processes must be an integer"),
    (["adaptive=true"], 'write processes = "1..4"'),
    (["port=0"], "not a port"),
    (["port=99999"], "not a port"),
    (["name=Other"], "is not set with `act set`"),
    (["env=x"], "is not set with `act set`"),
    (["hosts=[]"], "is not set with `act set`"),
    (["cron.x=99 99 * * * ls"], "out of range"),
    (["cron.x=* * *"], "five schedule fields"),
    (["workers=celery"], "is a table"),
    (["bogus.x=1"], "only workers, cron, uwsgi take"),
    (["uwsgi.socket=/tmp/s"], "set by Backstage"),
    (["enabled=maybe"], "enabled must be true or false"),
    (["bogus=1"], "unknown setting 'bogus'"),
]


@pytest.mark.parametrize("items,reason", BAD_ASSIGNMENTS)
def test_a_bad_act_set_is_refused_in_one_line(items, reason):
    with pytest.raises(InvalidSetting) as refused:
        apply_settings(ActSpec(**ACT), items, "/srv/act.toml")
    assert reason in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "what,text,example",
    [
        ("--env", "DEBUG", "write it as DEBUG=0"),
        ("--env", "=1", "write it as DEBUG=0"),
        ("config set", "SECRET", "write it as DEBUG=0"),
        ("setting", "processes", "write it as processes=4"),
    ],
)
def test_a_key_without_a_value_says_how_to_write_one_of_its_kind(what, text, example):
    with pytest.raises(InvalidSetting, match=example):
        split_assignment(text, what)
    with pytest.raises(InvalidSetting, match=example):
        parse_assignments([text], what)


@pytest.mark.parametrize(
    "domain", ["com", "uk", "co.uk", "github.io", "blogspot.com", "test", "localhost", "ck"]
)
def test_a_public_suffix_is_no_venue_domain(domain):
    with pytest.raises(InvalidHostname, match="public suffix"):
        check_venue_domain(domain)


@pytest.mark.parametrize(
    "domain", ["example.com", "example.co.uk", "me.github.io", "shop.example.test", "a.b.ck"]
)
def test_a_domain_one_owner_can_hold_is_a_venue_domain(domain):
    check_venue_domain(domain)


@pytest.mark.parametrize(
    "schedule,fields",
    [
        ("* * * * *", ()),
        ("0 0 1 1 0", (("minute", 0), ("hour", 0), ("day", 1), ("month", 1), ("week", 0))),
        ("59 23 31 12 6", (("minute", 59), ("hour", 23), ("day", 31), ("month", 12), ("week", 6))),
        ("*/5 */2 * * *", (("minute", -5), ("hour", -2))),
    ],
)
def test_cron_schedules_at_the_ends_of_their_ranges_are_taken(schedule, fields):
    assert cron_fields("x", schedule) == fields


def test_the_limits_are_what_the_messages_say():
    ActSpec(**ACT, processes=MAX_PROCESSES, max_processes=MAX_PROCESSES)
    ActSpec(**ACT, processes=4, max_processes=4)
    ActSpec(**ACT, processes=4, max_processes=0)  # twice processes
    assert tomllib.loads("x = 1")  # the reader the files go through
