"""The warm check (`control.warmrun`, `scripts/warmcheck.py`): a real Django project checked
and released through one process that keeps it imported, with real Django in a real
virtual environment."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile

import pytest

from backstage.control.build import warmrun
from backstage.control.build.commands import DJANGO_RELEASE
from backstage.control.build.preflight import Check, preflight
from backstage.errors import PreflightFailed
from backstage.render.shim import SHIM_MODULE, default_static_root
from emperor.process import pid_alive
from tests.helpers import poll
from tests.integration.test_release import django_act, venue  # noqa: F401
from tests.projects import GREETING, real_venv  # noqa: F401


def _lines(path: str) -> list[str]:
    try:
        with open(path) as lines:
            return lines.read().split()
    except FileNotFoundError:
        return []


def _warm_pid(spot: warmrun.WarmSpot) -> int:
    with open(spot.socket + warmrun.PID_SUFFIX) as pidfile:
        return int(pidfile.read())


@pytest.fixture
def spot():
    folder = tempfile.mkdtemp(prefix="bsw", dir="/tmp")  # short: a unix socket's path
    found = warmrun.WarmSpot(os.path.join(folder, "check"), "")
    yield found
    warmrun.stop(found.socket)
    shutil.rmtree(folder, ignore_errors=True)


def test_a_version_that_changed_no_module_is_checked_without_importing_it_again(
    venue,  # noqa: F811
    django_act,  # noqa: F811
    spot,
):
    project, act_dir, env = django_act
    spot = warmrun.WarmSpot(spot.socket, project.path)
    starts, order = os.path.join(act_dir, "starts"), os.path.join(act_dir, "order")
    env = {**env, "STARTS": starts, "ORDER": order}
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write("open(os.environ['STARTS'], 'a').write(str(os.getpid()) + '\\n')\n")
    user_step = "python -c \"import os; open(os.environ['ORDER'], 'a').write('mine\\n')\""
    steps = [DJANGO_RELEASE[0], user_step, DJANGO_RELEASE[1]]
    collected = os.path.join(default_static_root(act_dir), project.static_path)
    css = os.path.join(project.path, "greetings", "static", project.static_path)

    def check() -> None:
        found = preflight(Check(
            venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir], steps=steps,
            act_dir=act_dir, warm=spot,
        ))  # fmt: skip
        assert found.static_root == default_static_root(act_dir)

    check()  # the first: imported and checked in the warm process, the steps forked
    warm = _warm_pid(spot)
    assert _lines(starts) == [str(warm)]
    with sqlite3.connect(env["DATABASE_PATH"]) as db:
        assert db.execute("SELECT text FROM greetings_greeting").fetchall() == [(GREETING,)]
    assert os.path.isfile(collected) and _lines(order) == ["mine"]

    with open(css, "a") as source:  # no module changed: not imported again
        source.write("p { margin: 0; }\n")
    check()
    assert _lines(starts) == [str(warm)] and _warm_pid(spot) == warm
    with open(collected) as done:  # and the steps ran on this version's files
        assert done.read().endswith("p { margin: 0; }\n")
    assert _lines(order) == ["mine", "mine"]

    views = os.path.join(project.path, "greetings", "views.py")
    with open(views, "a") as module:  # a module changed: checked on the new code, anew
        module.write("\ndef broken(:\n")
    with pytest.raises(PreflightFailed, match="SyntaxError"):
        check()
    assert len(_lines(starts)) == 2
    assert poll(lambda: not _processes_of(spot), 10)  # a refused import ends it
    os.truncate(views, os.path.getsize(views) - len("\ndef broken(:\n"))

    check()
    warm = _warm_pid(spot)
    with open(os.path.join(project.path, "greetings", "extra.py"), "w") as added:
        added.write("")
    check()  # a file added: imported anew, in a new process
    assert _warm_pid(spot) != warm and not pid_alive(warm)
    assert len(_lines(starts)) == 4 and _lines(order) == ["mine"] * 4


def _processes_of(spot: warmrun.WarmSpot) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        if spot.socket.encode() in argv and pid_alive(int(entry)):
            found.append(int(entry))
    return found
