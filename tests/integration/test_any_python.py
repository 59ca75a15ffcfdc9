"""A Venue on another Python than the one the Stage's uwsgi embeds: built wherever that
Python is installed, with its own uwsgi, its Acts served by it over both channels, their
requests, output and workers' output in their logs, a Flask app from git deployed and
checked with that Python; and a Python that is not installed refused with one line and
nothing on disk."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from backstage import Venue
from backstage.control.build import virtualenv
from backstage.control.host import ownership
from backstage.errors import VenueBuildError
from backstage.model.layout import venue_uwsgi
from backstage.shortcuts import new_venue
from emperor.binary import find_uwsgi, probe
from tests.conftest import HOMES, ROOT, cli, root_production, run_cli
from tests.helpers import RequestLoop, http_get, poll
from tests.integration import test_venue_user
from tests.integration.test_venue_user import passable, uid_of
from tests.projects import FLASK_REQUIREMENTS

OTHER = "3.12"
# the fixtures of a Venue's user
system_user = test_venue_user.system_user
open_path = test_venue_user.open_path

APP = """\
import sys

print("imported {tag}", flush=True)

def application(environ, start_response):
    print("out {tag}", flush=True)
    print("err {tag}", file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("{tag} " + sys.version).encode()]
"""
# A worker of the Act's that says something and waits.
WORKER = (
    "python -c \"import sys, time; print('worker on', sys.version[:4], flush=True); "
    'time.sleep(600)"'
)


def other_python() -> str:
    """The reason to skip, or "" when a Python 3.12 is there and the Stage's is another."""
    if probe(find_uwsgi()).python_major_minor == OTHER:
        return f"the Stage's uwsgi embeds Python {OTHER} already"
    try:
        virtualenv.find_python(OTHER, embedded=False)
    except VenueBuildError as exc:
        return f"no Python {OTHER} installed here ({exc})"
    return ""


# The Venue on the other Python builds a uwsgi for it (2-4 min): once per test process,
# so its cases keep to one process (as they did by chance until the longest went first).
on_the_other_venue = pytest.mark.xdist_group("other_python")


@pytest.fixture(scope="session")
def other_venue_path() -> str:
    reason = other_python()
    if reason:
        pytest.skip(reason)
    home = os.path.join(ROOT, "py312home")
    HOMES.append(home)
    venue = new_venue("Py312", ROOT, root_production(home), requirements=(), python=OTHER)
    venue.production.forget_venue(venue)
    return venue.path


def write_app(folder: str, tag: str) -> None:
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(APP.replace("{tag}", tag))


@pytest.mark.slow
@on_the_other_venue
def test_a_venue_on_another_python_serves_its_acts_on_it(
    production, channel, other_venue_path, tmp_path
):
    venue = Venue(other_venue_path, production)
    production.add_venue(venue)
    assert venue.spec.python == OTHER and venue.spec.own_uwsgi
    assert os.access(os.path.join(venue.path, "bin", "pip"), os.X_OK)
    assert probe(venue_uwsgi(venue.path)).python_major_minor == OTHER
    folder = tmp_path / "app"
    folder.mkdir()
    write_app(str(folder), "one")
    act = None
    try:
        act = venue.add_act(f"Versions_{channel}", str(folder), wsgi="app:application", start=False)
        act.manager.declare(workers={"tick": WORKER})
        act.start()
        port = act.port
        status, body = http_get(port)
        assert (status, body.split()[:2]) == (200, ["one", body.split()[1]])
        assert body.split()[1].startswith(OTHER + "."), body

        # its log has what its uwsgi, its app and its worker say, as on the Stage's Python
        def logged() -> str:
            with open(act.log_path) as log:
                return log.read()

        for _ in range(3):
            assert http_get(port)[0] == 200
        said = (f"Python version: {OTHER}.", "imported one", "out one", "err one",
                f"worker on {OTHER}", "GET / => generated")  # fmt: skip

        def all_logged() -> bool:  # its master's logger writes a moment after the answer
            text = logged()
            return all(line in text for line in said) and text.count("GET / => generated") >= 4

        try:
            poll(all_logged, timeout=30)
        except AssertionError:
            text = logged()
            missing = [line for line in said if line not in text]
            raise AssertionError(
                f"not in its log: {missing}; {text.count('GET / => generated')} requests"
            ) from None
        printed = cli("logs", act.key, "-n", "200", home=production.home).stdout
        assert all(line in printed for line in said), printed
        layout = production.layout
        on_file = os.path.join(layout.vassal_files, act.vassal_name)
        assert os.path.exists(on_file) == (channel == "zmq")  # the re-exec reads it again
        assert act.state == "running"

        write_app(str(folder), "two")
        act.reload()
        status, body = http_get(port)
        assert status == 200 and body.startswith(f"two {OTHER}.")
        poll(lambda: "out two" in logged(), timeout=15)  # the reloaded workers log too

        act.stop()
        assert http_get(port, timeout=1)[0] == 0
        assert not os.path.exists(on_file)
        act.start()
        status, body = http_get(port)
        assert status == 200 and body.startswith(f"two {OTHER}.")
    finally:
        if act is not None:
            act.remove()
        production.down()
        production.forget_venue(venue)


@pytest.mark.slow
@on_the_other_venue
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="a Venue's user needs Backstage to run as root, and useradd to create one",
)
def test_a_venue_on_another_python_runs_its_acts_as_its_user(
    production, other_venue_path, system_user, open_path
):
    """A Venue of another Python may have a user: its vassal execs the Venue's own uwsgi
    (root's, in libexec/, out of the user's bin/) before the drop, which that uwsgi then
    makes, and its master and workers run as the user."""
    venue = Venue(other_venue_path, production)
    production.add_venue(venue)
    uid = system_user.pw_uid
    folder = open_path / "app"
    folder.mkdir()
    write_app(str(folder), "user")
    stdlib = ownership.stdlib_of(venue.path)
    assert stdlib is not None
    act = None
    try:
        with passable(venue.path, stdlib, str(folder)):
            venue.set_user(system_user.pw_name)
            act = venue.add_act("AsUser", str(folder), wsgi="app:application")
            status, body = http_get(act.port)
            assert status == 200 and body.startswith(f"user {OTHER}."), body
            sess = act.sess
            assert sess is not None
            pids = [sess.pid, *(worker.pid for worker in sess.workers)]
            assert [uid_of(pid) for pid in pids] == [uid] * len(pids)
            uwsgi = venue_uwsgi(venue.path)
            for path in (uwsgi, os.path.dirname(uwsgi), venue.path):
                st = os.stat(path)
                assert st.st_uid == 0 and not st.st_mode & 0o022, path
            assert os.stat(os.path.join(venue.path, "bin")).st_uid == uid  # the user's
            assert not os.path.exists(os.path.join(venue.path, "bin", "uwsgi"))
    finally:
        if act is not None:
            act.remove()
        production.down()  # before the user goes: userdel refuses a user with processes
        venue.set_user("")
        for name in ("run", "log"):
            shutil.rmtree(os.path.join(venue.path, name), ignore_errors=True)
        production.forget_venue(venue)


def test_a_python_not_installed_is_one_line_and_leaves_nothing(production, tmp_path):
    parent = tmp_path / "venues"
    parent.mkdir()
    with pytest.raises(VenueBuildError, match=r"^Python 3\.99 is not installed") as failed:
        new_venue("Nope", str(parent), production, python="3.99")
    assert "\n" not in str(failed.value)
    assert list(parent.iterdir()) == [] and production.venues == []

    done = run_cli(
        "venue", "new", "Nope", "--path", str(parent), "--python", "3.99",
        home=production.home, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Python 3.99 is not installed" in done.stderr
    assert list(parent.iterdir()) == []


FLASK_APP = """\
import os
import sys
import time

from flask import Flask

VERSION = {version!r}
app = Flask(__name__)


@app.route("/")
def index():
    if VERSION == "hangs":
        time.sleep(30)
    return VERSION + " %d.%d" % sys.version_info[:2]


@app.route("/visit")
def visit():
    # what the app keeps in its instance folder, across releases
    os.makedirs(app.instance_path, exist_ok=True)
    with open(os.path.join(app.instance_path, "visits"), "a+") as visits:
        visits.write("x")
        visits.seek(0)
        return str(len(visits.read()))
"""


def commit(repo: str, version: str) -> None:
    with open(os.path.join(repo, "app.py"), "w") as out:
        out.write(FLASK_APP.format(version=version))
    with open(os.path.join(repo, "requirements.txt"), "w") as out:
        out.write(FLASK_REQUIREMENTS)
    for args in (("add", "."), ("commit", "-q", "-m", version)):
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        subprocess.run(git, cwd=repo, check=True)


@pytest.mark.slow
@on_the_other_venue
def test_a_flask_app_from_git_deploys_on_a_venue_of_another_python(
    production, other_venue_path, tmp_path
):
    """Flask is installed in the Venue only (not for the Stage's Python): a release is
    checked with the Venue's uwsgi, `--timeout` bounds that check, and what the app keeps
    in its instance folder is there in the next release."""
    venue = Venue(other_venue_path, production)
    production.add_venue(venue)
    repo = str(tmp_path / "repo")
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q", "-b", "main", "."], cwd=repo, check=True)
    commit(repo, "one")
    act = None
    try:
        act = venue.add_act("Flasky", f"file://{repo}", wsgi="app:app")
        assert http_get(act.port) == (200, f"one {OTHER}")
        assert http_get(act.port, "/visit") == (200, "1")
        with RequestLoop(act.port) as loop:
            loop.serves(f"one {OTHER}")
            commit(repo, "two")
            done = run_cli("deploy", act.key, "--timeout", "20", home=production.home)
            assert done.stdout.startswith(f"{act.key}: release 1 ")
            loop.serves(f"two {OTHER}")
            # its clone served until now: what it kept moved to shared/ with the release
            assert act.spec.shared == ("instance",)  # found: Flask's instance folder
            assert http_get(act.port, "/visit") == (200, "2")

            commit(repo, "hangs")
            done = run_cli("deploy", act.key, "--timeout", "3", home=production.home, check=False)
            assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
            assert "never answered within 3 s" in done.stderr
            assert [r.number for r in act.releases] == [1]
            served = len(loop.served)
            poll(lambda: len(loop.served) > served + 5, timeout=10)
            assert loop.served[-1][1] == f"two {OTHER}"
        assert loop.failed == []
        with open(act.log_path) as log:
            text = log.read()  # the new release's workers log as the first ones did
        assert "chain reloading complete" in text
        assert "GET / => generated" in text.rsplit("chain reloading complete", 1)[1]
    finally:
        if act is not None:
            act.remove()
        production.down()
        production.forget_venue(venue)
