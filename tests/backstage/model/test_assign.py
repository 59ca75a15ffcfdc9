"""KEY=VALUE as `act set` and `config set` take them, and the new act.toml keys."""

from __future__ import annotations

import pytest

from backstage.errors import InvalidSetting
from backstage.files import declared as specs
from backstage.model.assign import apply_settings, parse_assignments, toml_value
from backstage.model.spec import ActSpec

BASE = ActSpec(name="A", port=9000)


def test_values_are_toml_when_they_are_and_strings_otherwise():
    assert toml_value("3") == 3 and toml_value("true") is True
    assert toml_value('["a b", "c"]') == ["a b", "c"]
    assert toml_value("celery -A proj worker") == "celery -A proj worker"
    assert parse_assignments(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}


def test_settings_apply_and_are_checked():
    spec = apply_settings(
        BASE,
        [
            "processes=3",
            'release=["python manage.py migrate --noinput"]',
            "workers.celery=celery -A proj worker",
            "cron.clean=*/5 * * * * python manage.py clearsessions",
            "uwsgi.harakiri=30",
            'uwsgi.add-header=["X-A: 1", "X-B: 2"]',
            "log_max=1024",
        ],
        "act.toml",
    )
    assert spec.processes == 3 and spec.release == ("python manage.py migrate --noinput",)
    assert spec.workers == {"celery": "celery -A proj worker"}
    assert spec.uwsgi == {"harakiri": 30, "add-header": ("X-A: 1", "X-B: 2")}
    assert spec.log_max == 1024
    assert apply_settings(spec, ["workers.celery="], "act.toml").workers == {}


@pytest.mark.parametrize(
    "item, message",
    [
        ("processes", "is not KEY=VALUE"),
        ("processes=many", "processes must be an integer"),
        ("processes=0", "processes = 0 is too small"),
        ("bogus=1", "unknown setting 'bogus'"),
        ("env=x", "use `backstage config set"),
        ("name=B", "name is not set with"),
        ("workers=x", "workers is a table: write workers.NAME=VALUE"),
        ("uwsgi.http-socket=:80", r"\[uwsgi\] http-socket is set by Backstage"),
        ("uwsgi.stats=/tmp/s", r"\[uwsgi\] stats is set by Backstage"),
        ("uwsgi.Bad Option=1", "is not a uWSGI option name"),
        ("uwsgi.hook-master-start=exec:touch /tmp/x", r"\[uwsgi\] hook-master-start is not an"),
        ("uwsgi.harakiri=soon", r"\[uwsgi\] harakiri = 'soon': write a number"),
        ("cron.x=* * * *", "write five schedule fields then the command"),
        ("cron.x=1-5 * * * * true", "is not \\*, \\*/N or a number"),
        ("memory_report=yes", "memory_report must be true or false"),
    ],
)
def test_a_bad_setting_is_one_line_saying_what_to_write(item, message):
    with pytest.raises(InvalidSetting, match=message) as caught:
        apply_settings(BASE, [item], "act.toml")
    assert "\n" not in str(caught.value)


def test_an_old_act_toml_loads_and_writes_back_unchanged(tmp_path):
    path = tmp_path / "act.toml"
    old = 'name = "A"\nport = 9000\nmodule = ""\nprocesses = 2\nmax_processes = 0\n'
    old += "enabled = true\nhosts = []\n\n[env]\n"
    path.write_text(old)
    spec = specs.load(ActSpec, str(path))
    assert spec.log_max == 10 * 1024 * 1024 and spec.release == () and not spec.adopted
    specs.dump(str(path), spec)
    assert path.read_text() == old
