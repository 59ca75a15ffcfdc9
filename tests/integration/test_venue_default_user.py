"""The default: a Venue made by root gets a system user of its own, made with it and
removed with it, and everything of the Venue runs as that user; root only when asked
for, with a warning; as root with one line of warning that says what to change, and no
user made, when that user could not read the Venue's Python or reach its folder.
Needs root and useradd, as test_venue_user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

from backstage.model.account import own_user_name
from backstage.model.layout import venue_user_dir
from backstage.shortcuts import new_act, new_venue
from emperor.binary import find_uwsgi
from tests.conftest import cli, run_cli
from tests.helpers import http_get, poll
from tests.integration import test_venue_user
from tests.integration.test_venue_user import passable, uid_of

pytestmark = test_venue_user.pytestmark  # one at a time: each makes and removes users
system_user = test_venue_user.system_user


def exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


@pytest.fixture
def open_folder():
    """A folder every user can pass, as /srv is (pytest's and the suite's are 0700)."""
    folder = tempfile.mkdtemp(prefix="bdu", dir="/tmp")
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def default_production(production):
    """A Production that says nothing of venue_user, as a new one does (the suite's say
    "root"); users its Venues made are removed after, should a case fail half-way."""
    production.declare(venue_user="")
    yield production
    production.down()
    for name in ("Own", "Closed", "Far"):
        user = own_user_name(production.prefix, name)
        if exists(user):
            subprocess.run(["userdel", user], capture_output=True, check=False)


def test_a_venue_made_by_root_gets_its_own_user(default_production, open_folder):
    production = default_production
    user = own_user_name(production.prefix, "Own")
    assert not exists(user)
    # the Stage's Python: Debian's /usr/bin/python3.11 in CI, pyenv's under /root here
    with passable(os.path.join(sys.base_prefix, "lib")):
        venue = new_venue("Own", open_folder, production)
        entry = pwd.getpwnam(user)
        assert venue.spec.user == user == venue.user
        assert len(user) <= 32 and user.startswith(production.prefix[:8])
        assert entry.pw_shell == "/usr/sbin/nologin"
        assert entry.pw_dir == venue_user_dir(venue.path)  # no home outside the Venue
        assert entry.pw_uid != 0 and entry.pw_gid != 0

        act = new_act(venue, "Shop")
        port = act.port
        assert http_get(port)[0] == 200
        sess = act.sess
        assert sess is not None
        pids = [sess.pid, *(worker.pid for worker in sess.workers)]
        assert [uid_of(pid) for pid in pids] == [entry.pw_uid] * len(pids)
        assert os.stat(act.path).st_uid == entry.pw_uid
        as_user = f"import os, sys; sys.exit(os.getuid() != {entry.pw_uid})"
        assert act.run(["python", "-c", as_user]) == 0

        done = run_cli("venue", "rm", "Own", home=production.home)
    assert done.stdout.strip() == "Venue Own removed"
    assert not exists(user)
    assert not os.path.exists(venue.path)
    assert production.spec.venues == ()
    assert http_get(port, timeout=1)[0] == 0


def _closed_python(folder: str) -> str:
    """Debian's python3.11 and its standard library in a 0700 folder: a Python only root
    can read, whatever /root's mode is on this machine (hard links, else copies)."""
    closed = os.path.join(folder, "closed")
    os.mkdir(closed, 0o700)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    os.makedirs(os.path.join(closed, "bin"))
    link("/usr/bin/python3.11", os.path.join(closed, "bin", "python3.11"))
    shutil.copytree("/usr/lib/python3.11", os.path.join(closed, "lib", "python3.11"),
                    symlinks=True, copy_function=link)  # fmt: skip
    return os.path.join(closed, "bin", "python3.11")


def test_a_user_who_could_not_read_its_python_gives_way_to_root_warned(
    default_production, open_folder, monkeypatch, caplog
):
    if not os.path.exists("/usr/bin/python3.11") or not os.path.isdir("/usr/lib/python3.11"):
        pytest.skip("no Debian python3.11 to copy into a closed folder")
    production = default_production
    monkeypatch.setenv("BACKSTAGE_UWSGI", find_uwsgi())  # found beside sys.executable
    monkeypatch.setattr(sys, "executable", _closed_python(open_folder))  # the Stage's first
    caplog.clear()
    venue = new_venue("Closed", open_folder, production, requirements=())
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said.startswith(
        "Venue Closed runs its Acts as root, not as a user of its own: that user could not "
        "read its Python at "
    )
    assert "make that Python readable by other users" in said
    assert venue.spec.user == "root"
    assert not exists(own_user_name(production.prefix, "Closed"))
    venue.remove()


def test_a_folder_the_user_could_not_reach_gives_way_to_root_warned(default_production, tmp_path):
    production = default_production
    parent = tmp_path / "venues"  # under pytest's 0700 folders
    parent.mkdir()
    with passable(os.path.join(sys.base_prefix, "lib")):
        done = run_cli("venue", "new", "Far", "--path", str(parent), home=production.home,
                       check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "backstage: Venue Far runs its Acts as root, not as a user of its own: that user "
        f"could not reach its folder in {parent} "
    )
    assert production.venue("Far").spec.user == "root"
    assert not exists(own_user_name(production.prefix, "Far"))
    run_cli("venue", "rm", "Far", home=production.home)
    assert list(parent.iterdir()) == []


def test_root_only_when_asked_and_warned(default_production, open_folder, caplog):
    production = default_production
    done = run_cli("venue", "new", "Asked", "--path", open_folder, "--user", "root",
                   home=production.home)  # fmt: skip
    warning = (
        'backstage: Venue Asked runs its Acts as root, as asked (user = "root"): anyone who '
        "can change its code or its packages can act as root\n"
    )
    assert done.stderr == warning
    assert "its Acts run as root" in done.stdout
    assert production.venue("Asked").spec.user == "root"
    assert production.venue("Asked").user == ""  # as Backstage itself
    assert not exists(own_user_name(production.prefix, "Asked"))

    production.declare(venue_user="root")  # the Production's word, as the suite's say
    caplog.clear()
    wide = new_venue("Wide", open_folder, production, requirements=())
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        warning.removeprefix("backstage: ").replace("Asked", "Wide").strip()
    ]
    assert wide.spec.user == "root"
    wide.remove()
    run_cli("venue", "rm", "Asked", home=production.home)
    assert os.listdir(open_folder) == [] and production.spec.venues == ()


def test_a_hand_written_user_who_cannot_read_its_python_makes_the_acts_invalid(
    production, venue, system_user
):
    """The session's Venue lives under the suite's 0700 folder: the user could import
    none of its packages. Written by hand, not through `venue set` (which refuses)."""
    act = venue.new_act("Shop")
    assert http_get(act.port)[0] == 200
    try:
        venue.declare(user=system_user.pw_name)

        def row():
            found = production.snapshot().act(act.key)
            return found if found is not None and found.state == "invalid" else None

        problem = poll(row, timeout=30).problem
        assert problem.startswith(f"user {system_user.pw_name} cannot read the Venue's ")
        assert "\n" not in problem
        said = cli("status", home=production.home).stdout
        assert problem in said
        assert http_get(act.port)[0] == 200  # its last good config plays on, as root
        assert uid_of(act.sess.pid) == 0
    finally:
        venue.declare(user="")
