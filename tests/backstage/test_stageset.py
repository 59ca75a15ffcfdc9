"""The vassal config, rendered for an Act laid out on disk (no virtualenv needed)."""

from __future__ import annotations

import configparser
import dataclasses
import os

import pytest

from backstage import Production, Venue
from backstage.control.processes.stage import choose_channel
from backstage.errors import InvalidSetting
from backstage.files import declared as specs
from backstage.model.layout import ActRef, Layout
from backstage.model.spec import ActSpec, VenueSpec
from backstage.render.ini import ini_value
from backstage.render.stageset import StageSet
from emperor.binary import UwsgiBinary
from tests.helpers import render_vassal


def lay_out(tmp_path, env=None):
    production = Production(str(tmp_path / "home"))
    production.create()
    (tmp_path / "V" / "acts" / "A").mkdir(parents=True)
    specs.dump(str(tmp_path / "V" / "venue.toml"), VenueSpec(name="V", python="3.11"))
    specs.dump(
        str(tmp_path / "V" / "acts" / "A" / "act.toml"),
        ActSpec(name="A", port=9123, processes=3, env=env or {}),
    )
    return Venue(str(tmp_path / "V"), production).act("A")


def test_vassal_config_has_what_every_act_needs(tmp_path):
    act = lay_out(tmp_path, env={"GREETING": "100% ok"})
    text = render_vassal(act)
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    options = parser["uwsgi"]
    assert options["http-socket"] == "127.0.0.1:9123"
    assert options["cheaper-initial"] == "3" and options["processes"] == "6"
    assert options["cheaper-algo"] == "manual" and options["cheaper"] == "1"
    assert options["module"] == "A.wsgi:application"
    assert options["virtualenv"] == act.venue.path
    assert options["stats"] == act.stats_path and options["master-fifo"] == act.fifo_path
    assert options["logto"] == act.log_path
    for flag in ("lazy-apps", "need-app", "vacuum", "die-on-term", "master"):
        assert options[flag] == "true", flag
    assert act.production.prefix in options["procname-prefix-spaced"]
    # the env's values stay out of the config: uWSGI would expand them
    assert "GREETING" not in text and "100%" not in text
    assert options["env"] == f"BACKSTAGE_ENV_FILE={act.production.layout.act_env(act.ref)}"


def test_values_that_would_break_the_ini_are_refused():
    assert ini_value("a%b") == "a%%b"
    with pytest.raises(InvalidSetting):
        ini_value("two\nlines")


def test_channel_choice_falls_back_once_and_refuses_what_cannot_work(caplog):
    from backstage.errors import StageError

    plain = UwsgiBinary("/opt/plain-uwsgi", "2.0.31", "3.11.7", frozenset({"http"}))
    with caplog.at_level("WARNING"):
        assert choose_channel("auto", plain) == "dir"
        assert choose_channel("auto", plain) == "dir"
    assert len([r for r in caplog.records if "emperor_zeromq" in r.message]) == 1
    with pytest.raises(StageError, match="UWSGI_EMBED_PLUGINS=emperor_zeromq"):
        choose_channel("zmq", plain)
    with pytest.raises(InvalidSetting, match="auto"):
        choose_channel("carrier-pigeon", plain)


def test_a_venue_with_its_own_uwsgi_has_its_vassal_reexec_into_it_once(tmp_path):
    from emperor.channel import reexecs

    act = lay_out(tmp_path)
    crew = act.venue.production.crew
    plain = crew.stageset.vassal(crew.layout, act.ref, act.spec)
    assert not reexecs(plain) and "BACKSTAGE_VENUE_UWSGI" not in plain
    uwsgi = str(tmp_path / "V" / "libexec" / "uwsgi")
    text = crew.stageset.vassal(crew.layout, act.ref, act.spec, uwsgi)
    assert reexecs(text)
    assert (
        "if-not-env = BACKSTAGE_VENUE_UWSGI\n"
        f"env = BACKSTAGE_VENUE_UWSGI={uwsgi}\n"
        f"privileged-binary-patch = {uwsgi}\n"  # before the drop: it reads the config
        "endif =\n"
    ) in text
    # the re-exec'd master opens its log itself (else it writes where nobody reads)
    assert "\nlog-reopen = true\n" in text and "log-reopen" not in plain
    assert text.replace(text[text.index("; the Venue's own") : text.index("master =")], "") == plain


def test_own_uwsgi_is_written_to_venue_toml_only_when_set(tmp_path):
    path = str(tmp_path / "venue.toml")
    specs.dump(path, VenueSpec(name="V", python="3.11"))
    assert "own_uwsgi" not in open(path).read()
    specs.dump(path, VenueSpec(name="V", python="3.12", own_uwsgi=True))
    assert specs.venue_spec(str(tmp_path)).own_uwsgi is True


def test_an_act_that_sleeps_on_a_stage_that_holds_keeps_its_held_sockets(tmp_path):
    act = lay_out(tmp_path)
    crew = act.production.crew
    assert crew.stageset.holds
    act.set("idle=300")
    text = render_vassal(act)
    lines = text.splitlines()
    # the held port and socket as an awake Act's, and the Emperor's on-demand socket
    # (a unix one, the holder's to connect to) served at fd 0
    assert "http-socket = fd://60" in lines and "socket = fd://61" in lines
    assert "socket = fd://0" in lines and "http-socket = fd://0" not in lines
    assert "idle = 300" in lines and "die-on-idle = true" in lines


def test_an_act_that_sleeps_takes_its_port_from_the_emperor_and_dies_on_idle(tmp_path):
    act = lay_out(tmp_path)
    crew = act.production.crew

    def render() -> str:  # a Stage without a socket holder (the system Emperor's way)
        return StageSet(holds=False).vassal(crew.layout, act.ref, act.spec)

    before = render()
    act.set("idle=300")
    text = render()
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    options = parser["uwsgi"]
    # the Emperor binds 127.0.0.1:PORT and hands it over as fd 0; never declared again
    assert options["http-socket"] == "fd://0"
    assert "127.0.0.1:9123" not in text.replace("; sleeps", "").split("\nhttp-socket")[1]
    assert options["idle"] == "300" and options["die-on-idle"] == "true"
    act.set("idle=0")
    assert render() == before  # an Act that never sleeps renders as before


def test_max_rss_is_the_acts_or_else_the_productions(tmp_path):
    act = lay_out(tmp_path)
    crew = act.production.crew
    assert "reload-on-rss = 1048576" in render_vassal(act)
    text = crew.stageset.vassal(crew.layout, act.ref, act.spec, max_rss=200)
    assert "reload-on-rss = 200\n" in text and "evil-reload-on-rss = 300\n" in text
    assert "reload-on-rss = 1048576" not in text
    act.set("max_rss=120")
    text = crew.stageset.vassal(crew.layout, act.ref, act.spec, max_rss=200)
    assert "reload-on-rss = 120\n" in text and "evil-reload-on-rss = 180\n" in text


def test_an_acts_configs_are_rendered_again_only_when_something_moved(tmp_path):
    templates = tmp_path / "templates"
    stageset = StageSet(str(templates))
    layout = Layout(str(tmp_path / "home"))
    ref = ActRef("V", str(tmp_path / "V"), "A")
    spec = ActSpec("A", 8101, hosts=("a.example.com",))

    def gigs(spec, sign=""):
        return stageset.gigs(layout, ref, spec, "127.0.0.1:8000", sign)

    first, booked = stageset.vassal(layout, ref, spec), gigs(spec)
    assert stageset.vassal(layout, ref, spec) is first and gigs(spec) is booked
    # the same declaration read again is another object of the same value: kept too
    again = dataclasses.replace(spec)
    assert again is not spec and stageset.vassal(layout, ref, again) is first
    # a spec read again (its act.toml changed) is rendered again, as are other inputs
    changed = dataclasses.replace(spec, processes=5, hosts=("b.example.com",))
    assert "cheaper-initial = 5" in stageset.vassal(layout, ref, changed)
    assert "b.example.com" in gigs(changed) and "a.example.com" not in gigs(changed)
    assert "reload-on-rss = 300" not in first
    assert "reload-on-rss = 300" in stageset.vassal(layout, ref, spec, max_rss=300)
    assert "sign=" in gigs(spec, "rsa:/keys/a.pem") and "sign=" not in gigs(spec)
    # a user's template override written since: Jinja hands back another template
    os.makedirs(templates)
    (templates / "vassal.ini.j2").write_text("[uwsgi]\n; overridden\n")
    stageset = StageSet(str(templates))
    assert stageset.vassal(layout, ref, spec) == "[uwsgi]\n; overridden\n"
    (templates / "vassal.ini.j2").write_text("[uwsgi]\n; edited\n")
    assert stageset.vassal(layout, ref, spec) == "[uwsgi]\n; edited\n"


def test_the_keepers_vassal_runs_the_keeper_and_refuses_a_path_uwsgi_would_expand(tmp_path):
    layout = Layout(str(tmp_path / "home"))
    text = StageSet().keeper(layout, "/opt/py/bin/python3")
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    options = parser["uwsgi"]
    assert options["processes"] == "0"  # no workers: the master only runs the keeper
    assert options["attach-daemon2"] == (
        f"cmd=exec /opt/py/bin/python3 -m backstage --home {layout.home} keep"
    )
    assert layout.keeper_vassal.startswith(layout.prefix + ".")
    assert layout.act_processes(layout.keeper_vassal) is None  # no Act's
    assert "uid" not in options  # as the Emperor's user
    assert "log-maxsize" not in options  # never rotated unless log_max says so
    rotated = configparser.ConfigParser(strict=False, interpolation=None)
    rotated.read_string(StageSet().keeper(layout, "/opt/py/bin/python3", log_max=4096))
    assert rotated["uwsgi"]["log-maxsize"] == "4096"
    owned = configparser.ConfigParser(strict=False, interpolation=None)
    owned.read_string(StageSet().keeper(layout, "/opt/py/bin/python3", (1001, 1002)))
    assert (owned["uwsgi"]["uid"], owned["uwsgi"]["gid"]) == ("1001", "1002")
    with pytest.raises(InvalidSetting):
        StageSet().keeper(layout, "/opt/$(EVIL)/python")


def test_hsts_and_the_308_in_the_vassal_config(tmp_path):
    """HSTS's route-if matches the Venue domain's own hosts (its dots escaped), and the
    308 is written by `break` with its Location added before, so the log says 308."""
    import re

    act = lay_out(tmp_path)
    crew = act.production.crew
    text = crew.stageset.vassal(
        crew.layout, act.ref, act.spec, redirect=":8443", hsts=("ex.com",), marks="/m/redirect"
    )
    (line,) = [x for x in text.splitlines() if "Strict-Transport-Security" in x]
    condition = line.split("regexp:${HTTPS}|${HTTP_HOST};", 1)[1].split(" addheader:")[0]
    pattern = re.compile(condition)
    for host in ("ex.com", "a.ex.com", "a.b.ex.com:8443"):
        assert pattern.search(f"on|{host}"), host
    for host in ("exxcom", "a.exxcom", "a.ex.com.evil.org", "notex.com"):
        assert not pattern.search(f"on|{host}"), host
    assert not pattern.search("|a.ex.com")  # over plain HTTP: never
    assert "route-if-not = isfile:/m/redirect/${HTTP_HOST} last:" in text
    assert "addheader:Location: https://$1:8443${REQUEST_URI}" in text
    assert "route-run = break:308 Permanent Redirect" in text
    assert "send-crnl" not in text


def test_adaptive_workers_render_the_busyness_algorithm(tmp_path):
    act = lay_out(tmp_path)
    crew = act.production.crew
    fixed = configparser.ConfigParser(strict=False, interpolation=None)
    fixed.read_string(render_vassal(act))
    assert fixed["uwsgi"]["cheaper-algo"] == "manual"
    assert "cheaper-step" not in fixed["uwsgi"]
    spec = dataclasses.replace(act.spec, processes=1, max_processes=4, adaptive=True)
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(crew.stageset.vassal(crew.layout, act.ref, spec))
    options = parser["uwsgi"]
    assert options["cheaper-algo"] == "busyness"
    assert (options["cheaper"], options["cheaper-initial"], options["processes"]) == ("1", "1", "4")
    # the whole way to the ceiling in one step, looked at every second
    assert (options["cheaper-step"], options["cheaper-overload"]) == ("3", "1")
    assert options["lazy-apps"] == "true"  # chain reloads keep reloading code


def test_the_master_preloads_django_only_for_two_workers_at_rest_or_more(tmp_path):
    act = lay_out(tmp_path)  # three workers
    crew = act.production.crew
    assert "djangopreload" in render_vassal(act)
    for processes, adaptive in ((1, False), (1, True)):
        spec = dataclasses.replace(
            act.spec, processes=processes, max_processes=4, adaptive=adaptive
        )
        assert "djangopreload" not in crew.stageset.vassal(crew.layout, act.ref, spec)
    two = dataclasses.replace(act.spec, processes=2, max_processes=4, adaptive=True)
    assert "djangopreload" in crew.stageset.vassal(crew.layout, act.ref, two)
    # the development loop's switch changes nothing uWSGI reads: no restart
    watched = dataclasses.replace(act.spec, watch=True)
    assert crew.stageset.vassal(crew.layout, act.ref, watched) == render_vassal(act)


def test_one_app_per_worker_and_no_option_of_an_act_mounts_another(tmp_path):
    act = lay_out(tmp_path)
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(render_vassal(act))
    assert parser["uwsgi"]["max-apps"] == "1"
    for option in ("mount", "max-apps", "wsgi-file"):
        with pytest.raises(InvalidSetting):
            dataclasses.replace(act.spec, uwsgi={option: "/other=other.py"})
