"""What serves is what was checked: an Act adopted from a folder, or scaffolded by
`act new`, serves a version (a copy taken when its pre-flight passed), so after a
refused reload a worker respawn, a master respawn and a stop/start all serve the old
code, never the code on disk."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from backstage.control.build.warmrun import WarmSpot
from backstage.control.managers import adoption, releases
from backstage.errors import PreflightFailed
from tests.conftest import cli
from tests.helpers import RequestLoop, http_get, poll
from tests.integration.test_warm_check import _processes_of
from tests.projects import (
    FLASK_GREETING,
    GREETING,
    VERSIONED_APP,
    git_app,
    make_django_project,
    make_flask_project,
)

# file, what breaks it, what the refusal says
BREAKS = {
    "urls": ("mysite/urls.py", "\nurlpatterns = [\n", "SyntaxError"),
    "settings": ("mysite/settings/base.py", "\nDEBUG = (\n", "SyntaxError"),
    "wsgi": ("mysite/wsgi.py", "\nimport no_such_module\n", "No module named 'no_such_module'"),
}
REFUSED = "the code on disk is newer than what serves, refused:"


@pytest.fixture
def projects():
    folder = tempfile.mkdtemp(prefix="bvp", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def status(venue) -> str:
    return cli("status", home=venue.production.home, check=False).stdout


def serves(act, text: str, timeout: float = 60) -> None:
    poll(lambda: act.sess is not None and act.sess.ready and http_get(act.port) == (200, text),
         timeout=timeout)  # fmt: skip


def respawns_serve(act, text: str) -> None:
    """A worker killed -9, then the master: each one forked or healed in its place loads
    the checked code, which answers `text`."""
    with RequestLoop(act.port) as loop:
        loop.serves(text)
        victim = act.sess.workers[0].pid
        os.kill(victim, signal.SIGKILL)
        poll(lambda: victim not in {w.pid for w in act.sess.workers} and act.sess.ready)
        count = len(loop.served)
        poll(lambda: len(loop.served) > count + 20)
    # at most the request the killed worker held; none of the broken code's empty replies
    assert len(loop.failed) <= 1 and set(loop.bodies) == {text}
    master = act.sess.pid
    os.kill(master, signal.SIGKILL)  # the Manager heals it
    poll(lambda: act.sess is not None and act.sess.pid != master, timeout=60)
    serves(act, text)


@pytest.mark.parametrize(
    "broken",
    # each is a few Django starts: the one a worker's respawn breaks first runs always
    [
        "urls",
        pytest.param("settings", marks=pytest.mark.slow),
        pytest.param("wsgi", marks=pytest.mark.slow),
    ],
)
def test_after_a_refused_reload_every_respawn_serves_the_old_code(venue, projects, broken):
    project = make_django_project(projects)
    database = os.path.join(projects, "db.sqlite3")
    act = venue.add_act("Bomb", project.path, env={"DATABASE_PATH": database})
    assert http_get(act.port) == (200, GREETING)
    assert [r.live for r in act.releases] == [True]  # the start took a version
    relative, breaking, said = BREAKS[broken]
    path = os.path.join(project.path, relative)
    with open(path) as source:
        good = source.read()
    with open(path, "a") as source:
        source.write(breaking)
    with pytest.raises(PreflightFailed, match=said):
        act.reload()
    status = cli("status", home=venue.production.home).stdout
    assert f"TestVenue/Bomb: {REFUSED}" in status and said in status

    respawns_serve(act, GREETING)

    # stopped and started: the start refuses the code on disk, and the last version plays
    act.stop()
    act.start()
    assert http_get(act.port) == (200, GREETING)
    assert [r.live for r in act.releases] == [True]
    assert REFUSED in cli("status", home=venue.production.home).stdout

    # fixed: a new version serves, and the refusal is gone
    with open(path, "w") as source:
        source.write(good)
    act.reload()
    assert http_get(act.port) == (200, GREETING)
    assert [r.live for r in act.releases] == [False, True]
    assert REFUSED not in cli("status", home=venue.production.home).stdout


def test_a_watched_folder_serves_each_good_save_and_never_a_refused_one(venue, projects):
    project = make_flask_project(projects)
    act = venue.add_act("Watch", project.path, wsgi=project.wsgi)
    act.set("watch=true")
    app = os.path.join(project.path, "app.py")
    with open(app) as source:
        good = source.read()
    manager_log = venue.production.layout.manager_log
    poll(lambda: "Watch: watching" in open(manager_log).read())
    with RequestLoop(act.port) as loop:
        loop.serves(FLASK_GREETING)
        with open(app, "w") as source:
            source.write(good.replace(FLASK_GREETING, "saved"))
        loop.serves("saved")
        with open(app, "w") as source:
            source.write(good.replace(FLASK_GREETING, "broken") + "\ndef broken(:\n")
        # waited for in this process (a `status` process per look cost 0.25 s of CPU)
        poll(lambda: any(REFUSED in row.reason for row in venue.production.snapshot().acts))
        assert REFUSED in status(venue)
        victim = act.sess.workers[0].pid
        os.kill(victim, signal.SIGKILL)
        poll(lambda: victim not in {w.pid for w in act.sess.workers} and act.sess.ready)
        count = len(loop.served)
        poll(lambda: len(loop.served) > count + 20)
    assert len(loop.failed) <= 1 and set(loop.bodies) <= {FLASK_GREETING, "saved"}
    assert loop.bodies[-1] == "saved"


PINNED_APP = """
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = "{version}"


def application(environ, start_response):
    # read at each request, as a template not loaded yet is: beside the module
    with open(os.path.join(HERE, "page.txt")) as page:
        body = f"{{VERSION}}:{{page.read().strip()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"""


def test_a_worker_reads_its_own_versions_files_after_current_moved(venue, projects):
    folder = os.path.join(projects, "pinned")
    os.makedirs(folder)

    def write(version: str) -> None:
        with open(os.path.join(folder, "app.py"), "w") as out:
            out.write(PINNED_APP.format(version=version))
        with open(os.path.join(folder, "page.txt"), "w") as out:
            out.write(version)

    write("one")
    act = venue.add_act("Pinned", folder, wsgi="app:application")
    assert http_get(act.port) == (200, "one:one")
    write("two")
    # the next version built and `current` moved to it, as a switch does before its
    # chain reload: the workers that loaded "one" still serve "one" and its files
    built = releases.build(act.production.crew, act.manager, as_it_stands=True)
    releases._point(act.ref, built.path)  # the switch's first half, without its reload
    assert {http_get(act.port) for _ in range(20)} == {(200, "one:one")}
    act.manager.reload()
    assert {http_get(act.port) for _ in range(20)} == {(200, "two:two")}


# a scaffold's file (in its package), what breaks it, what the refusal says
SCAFFOLD_BREAKS = {
    "urls": ("urls.py", "\nurlpatterns = [\n", "SyntaxError"),
    "settings": ("settings.py", "\nDEBUG = (\n", "SyntaxError"),
    "wsgi": ("wsgi.py", "\nimport no_such_module\n", "No module named 'no_such_module'"),
}
SCAFFOLDED = "the scaffold's own view"
SCAFFOLD_VIEW = f"""
from django.contrib.auth.models import User  # noqa: E402
from django.http import HttpResponse  # noqa: E402

urlpatterns.append(path("", lambda request: HttpResponse({SCAFFOLDED!r})))
urlpatterns.append(path("users", lambda request: HttpResponse(str(User.objects.count()))))
"""


@pytest.mark.parametrize(
    "broken",
    [
        "urls",
        pytest.param("settings", marks=pytest.mark.slow),
        pytest.param("wsgi", marks=pytest.mark.slow),
    ],
)
def test_a_scaffolded_act_serves_its_last_accepted_version_after_a_refused_reload(venue, broken):
    act = venue.new_act("Bomb")
    package = os.path.join(act.path, act.spec.package)
    with open(os.path.join(package, "urls.py"), "a") as urls:
        urls.write(SCAFFOLD_VIEW)
    act.reload()
    assert http_get(act.port) == (200, SCAFFOLDED)
    assert [r.live for r in act.releases] == [False, True]  # `new_act`'s start, the reload
    name, breaking, said = SCAFFOLD_BREAKS[broken]
    path = os.path.join(package, name)
    with open(path) as source:
        good = source.read()
    with open(path, "a") as source:
        source.write(breaking)
    with pytest.raises(PreflightFailed, match=said) as refusal:
        act.reload()
    assert os.path.join(act.path, "releases") not in str(refusal.value)  # named as edited
    assert f"TestVenue/Bomb: {REFUSED}" in status(venue) and said in status(venue)

    respawns_serve(act, SCAFFOLDED)
    assert REFUSED in status(venue)

    # stopped and started: the start refuses the code on disk, and the last version plays
    act.stop()
    act.start()
    assert http_get(act.port) == (200, SCAFFOLDED)
    assert [r.live for r in act.releases] == [False, True]
    assert REFUSED in status(venue)

    # fixed: a new version serves, and the refusal is gone
    with open(path, "w") as source:
        source.write(good)
    act.reload()
    assert http_get(act.port) == (200, SCAFFOLDED)
    assert [r.live for r in act.releases] == [False, False, True]
    assert REFUSED not in status(venue)
    # one warm check kept for the next reload: each reload reused or ended the one before
    assert len(_processes_of(WarmSpot(act.production.crew.layout.act_check(act.ref), ""))) == 1
    # its data is the Act folder's: `manage` runs there, and each version reads it
    assert act.manage(["migrate", "--noinput", "-v", "0"]) == 0
    assert os.path.isfile(os.path.join(act.path, "db.sqlite3"))
    assert http_get(act.port, "/users") == (200, "0")


def _saved_again_within_the_second(path: str, text: str) -> None:
    """`path` rewritten to hold `text` (as long as before), its mtime in the same second
    as the save before: what a pyc is validated by (seconds and size) is the same."""
    before = os.stat(path)
    assert len(text) == before.st_size
    with open(path, "w") as out:
        out.write(text)
    second, fraction = divmod(before.st_mtime_ns, 10**9)
    os.utime(path, ns=(before.st_mtime_ns, second * 10**9 + (fraction + 1_000_000) % 10**9))
    assert os.stat(path).st_mtime_ns != before.st_mtime_ns


@pytest.mark.parametrize("source", ["folder", "git clone"])
def test_a_save_within_the_same_second_never_meets_stale_bytecode(
    venue, projects, source, monkeypatch
):
    """Saves of one size within one second, to a folder (checked in its next version)
    or to a git Act's clone (served in place before its first release): the pre-flight
    refuses the broken one, and the reload serves the good one, though the Production's
    processes may write bytecode (the environment the suite runs in forbids it)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    repo = git_app(os.path.join(projects, "repo"), "one")
    if source == "folder":
        act = venue.add_act("Fresh", repo, wsgi="app:application")
        served = os.path.join(repo, "app.py")
    else:
        act = venue.add_act("Fresh", f"file://{repo}", wsgi="app:application")
        served = os.path.join(act.ref.path, adoption.CLONE_DIR, "app.py")
    act.start()
    assert http_get(act.port) == (200, "one")
    good = VERSIONED_APP.format(version="one")
    _saved_again_within_the_second(served, good.replace("VERSION = 'one'", "VERSION = 1 / 0"))
    with pytest.raises(PreflightFailed, match="division by zero"):
        act.reload()
    assert http_get(act.port) == (200, "one")
    _saved_again_within_the_second(served, VERSIONED_APP.format(version="owt"))
    act.reload()
    assert {http_get(act.port) for _ in range(8)} == {(200, "owt")}
