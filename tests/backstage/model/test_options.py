"""The table of [uwsgi] options an Act may set: everything it allows is a real option of
the Stage's uwsgi, and what runs commands, loads code or acts as root is refused in one
line naming the option."""

from __future__ import annotations

import pytest

from backstage.errors import InvalidSetting
from backstage.model.options import ALLOWED_OPTIONS
from backstage.model.spec import ActSpec
from emperor.binary import find_uwsgi, option_names

# What a tenant would write to run something as root, or before the drop, or to reach
# outside its Venue (each is a real uWSGI option, checked below)
HOSTILE = {
    "hook-master-start": "exec:touch /tmp/pwned",
    "hook-as-root": "exec:touch /tmp/pwned",
    "hook-pre-app": "exec:touch /tmp/pwned",
    "exec-as-root": "touch /tmp/pwned",
    "exec-pre-app": "touch /tmp/pwned",
    "exec-as-user": "touch /tmp/pwned",
    "call-as-root": "system",
    "attach-daemon": "touch /tmp/pwned",
    "attach-daemon2": "cmd=touch /tmp/pwned",
    "smart-attach-daemon": "/tmp/pid touch /tmp/pwned",
    "cron": "-1 -1 -1 -1 -1 touch /tmp/pwned",
    "cron2": "minute=-1 touch /tmp/pwned",
    "unique-cron": "-1 -1 -1 -1 -1 touch /tmp/pwned",
    "route": "^/ exec:touch /tmp/pwned",
    "route-run": "exec:touch /tmp/pwned",
    "final-route": "^/ exec:touch /tmp/pwned",
    "response-route": "^/ exec:touch /tmp/pwned",
    "import": "os",
    "pyimport": "os",
    "shared-pyimport": "os",
    "plugin": "/tmp/evil.so",
    "plugins": "/tmp/evil.so",
    "need-plugin": "/tmp/evil.so",
    "master-as-root": True,
    "logger": "file:/etc/cron.d/pwned",
    "req-logger": "file:/etc/cron.d/pwned",
    "touch-exec": "/tmp/t touch /tmp/pwned",
    "worker-exec": "/bin/sh",
    "mule": "/tmp/evil.py",
    "spooler": "/tmp/spool",
    "chroot": "/",
    "umask": "000",
    "chown-socket": "root",
    "chmod-socket": "777",
    "limit-as": "99999",
    "unshare": "fs",
    "static-map": "/x=/etc",
    "py-tracebacker": "/tmp/tb",
    "touch-reload": "/etc/shadow",
    "fs-reload": "/etc",
    "set": "uid=0",
    "declare-option": "x=exec-as-root=%(x)",
    "yaml": "/tmp/x.yml",
    "for": "a b",
    "if-env": "HOME",
    "emperor": "/tmp/vassals",
    "cache2": "name=x,items=10",
    "mount": "/x=/tmp/app.py",
}


@pytest.fixture(scope="module")
def known() -> frozenset[str]:
    return option_names(find_uwsgi())


def test_every_allowed_option_is_one_of_the_stages_uwsgi(known):
    assert sorted(set(ALLOWED_OPTIONS) - known) == []


def test_the_hostile_options_are_real_ones(known):
    assert sorted(set(HOSTILE) - known) == []


@pytest.mark.parametrize("option", sorted(HOSTILE))
def test_an_option_that_runs_commands_or_as_root_is_refused_by_name(option):
    with pytest.raises(InvalidSetting) as refused:
        ActSpec(name="A", port=9000, uwsgi={option: HOSTILE[option]})
    said = str(refused.value)
    assert said.startswith(f"[uwsgi] {option} ") and "\n" not in said
    assert "remove it from act.toml" in said


@pytest.mark.parametrize(
    "value, says",
    [
        ({"harakiri": "@(exec://touch /tmp/x)"}, "write a number"),
        ({"add-header": "X-A: $(HOME)"}, "which uWSGI would expand as root"),
        ({"add-header": ("X-A: 1", "X-B: @(/etc/shadow)")}, "which uWSGI would expand"),
        ({"enable-threads": "maybe"}, "write true or false"),
        ({"add-header": "X-A: 1\nexec-as-root = id"}, "spans lines"),
    ],
)
def test_an_allowed_options_value_must_be_plain(value, says):
    with pytest.raises(InvalidSetting, match=says):
        ActSpec(name="A", port=9000, uwsgi=value)


def test_allowed_options_are_taken():
    options = {"harakiri": 30, "enable-threads": True, "add-header": ("X-A: 1", "X-B: 2")}
    assert ActSpec(name="A", port=9000, uwsgi=options).uwsgi == options
