"""A Venue under its own user (`user = NAME` in venue.toml): its vassal's master and
workers run as that user, its Act's folder and env file are the user's, and another
Venue's env file is not readable to the user. Needs root: it creates the user."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from backstage import Venue
from backstage.files import declared
from backstage.model.layout import venue_challenges, venue_https_marks, venue_startproject_check
from backstage.model.spec import ActSpec, VenueSpec
from tests.conftest import cli, cli_quiet, run_cli
from tests.gigs_helpers import named_act
from tests.helpers import free_port, http_get, poll, started_processes
from tests.pebble_helpers import Pebble, PebbleRoot
from tests.tls_helpers import TestCA, http_raw, https_get

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("useradd") is None,
        reason="a Venue's user needs Backstage to run as root, and useradd to create one",
    ),
    # the cases of a Venue's user run one at a time: each makes and removes a system
    # user, and `passable` opens machine-wide folders (/root) to it for a while
    pytest.mark.xdist_group("venue_user"),
]


@pytest.fixture
def system_user():
    name = f"bstu{os.getpid() % 100000}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    yield pwd.getpwnam(name)
    subprocess.run(["userdel", name], check=False, capture_output=True)


# Who holds which folder open: {folder: {"mode": its own mode, "pids": [holders]}},
# machine-wide, read and written under an exclusive lock of the file. Every test
# process on the machine (both of this run's, another suite's) opens and closes the
# same /root: the last holder alive closes it, never the first to finish.
OPENED = "/tmp/backstage-tests-passable.json"


@contextlib.contextmanager
def _opened() -> Iterator[dict[str, dict]]:
    fd = os.open(OPENED, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+") as file:
            text = file.read()
            state = json.loads(text) if text.strip() else {}
            yield state
            file.seek(0)
            file.truncate()
            file.write(json.dumps(state))
    finally:
        os.close(fd)  # unlocks


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def passable(*paths: str):
    """Every folder above `paths` passable by others (o+x, no listing) while in the
    block: a user's vassal must reach its Venue and its Python's standard library, which
    here live under 0700 folders (the test root, /root/.pyenv). A folder stays open
    until no process that opened it is in such a block any more."""
    folders = []
    for path in paths:
        folder = path
        while folder != "/":
            folder = os.path.dirname(folder)
            folders.append(folder)
    held = []
    with _opened() as state:
        for folder in dict.fromkeys(folders):
            entry = state.get(folder)
            if entry is None:
                mode = os.stat(folder).st_mode & 0o7777
                if mode & 0o001:
                    continue  # open to others anyway: nothing to close after
                entry = state[folder] = {"mode": mode, "pids": []}
            # a holder that died in its block left it open: its own mode is kept
            entry["pids"] = [pid for pid in entry["pids"] if _alive(pid)] + [os.getpid()]
            os.chmod(folder, entry["mode"] | 0o001)
            held.append(folder)
    try:
        yield
    finally:
        with _opened() as state:
            for folder in held:
                entry = state[folder]
                entry["pids"].remove(os.getpid())
                if not any(_alive(pid) for pid in entry["pids"]):
                    os.chmod(folder, entry["mode"])
                    del state[folder]


@pytest.fixture
def open_path() -> Iterator[pathlib.Path]:
    """A folder for a test's files that a Venue's user reads through `passable`: not
    under pytest's /tmp/pytest-of-root, which a pytest run starting anywhere on the
    machine makes 0700 again (a user's install once failed so, mid-test)."""
    path = tempfile.mkdtemp(prefix="bsopen")
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def user_venue(production, venue, system_user):
    """The session's Venue under the test's user."""
    venue.declare(user=system_user.pw_name)
    try:
        with passable(venue.path, os.path.join(sys.base_prefix, "lib")):
            yield venue
            production.down()  # before the user goes: userdel refuses a user with processes
    finally:
        venue.set_user("")  # its packages back to root, who serves the next test's Acts
        for folder in ("run", "log"):
            shutil.rmtree(os.path.join(venue.path, folder), ignore_errors=True)


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("Uid:"))
    return int(line.split()[1])  # the real uid; effective and saved follow


def children_running(parent: int, command: bytes) -> list[int]:
    """Pids of the children of `parent` whose command is `command`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and argv[0] == command:
            found.append(int(entry))
    return found


def readable_by(user: str, path: str) -> bool:
    done = subprocess.run(["runuser", "-u", user, "--", "cat", path], capture_output=True)
    return done.returncode == 0


def found_by(user: str, path: str) -> bool:
    done = subprocess.run(["runuser", "-u", user, "--", "test", "-f", path], capture_output=True)
    return done.returncode == 0


def other_venue(production, path: str) -> str:
    """A second Venue, with one Act that holds a secret (declared, never started): the
    path of its env file."""
    os.makedirs(os.path.join(path, "acts", "Vault"))
    declared.dump(os.path.join(path, "venue.toml"), VenueSpec(name="Other", python="3.11"))
    spec = ActSpec(name="Vault", port=1, enabled=False, env={"TOKEN": "other-secret"})
    declared.dump(os.path.join(path, "acts", "Vault", "act.toml"), spec)
    other = Venue(path, production)
    production.add_venue(other)
    return production.layout.act_env(other.act("Vault").ref)


def test_an_act_runs_as_its_venues_user(production, user_venue, system_user, tmp_path):
    user, uid = system_user.pw_name, system_user.pw_uid
    act = user_venue.new_act("Shop", start=False)
    act.set_env(SHOP_SECRET="s3cret")
    act.manager.declare(
        workers={"sleeper": "sleep 600"},
        release=("python -c \"import os; open('released', 'w').write(str(os.getuid()))\"",),
    )
    act.start()
    assert http_get(act.port)[0] == 200

    sess = act.sess
    assert sess is not None
    pids = [sess.pid, *(worker.pid for worker in sess.workers)]
    assert [uid_of(pid) for pid in pids] == [uid] * len(pids)
    sleeper = poll(lambda: children_running(sess.pid, b"sleep"), timeout=10)
    assert [uid_of(pid) for pid in sleeper] == [uid]  # the Act's own worker

    act.reload()  # a new version: its release steps run first in it, as the user
    released = os.path.join(act.path, "current", "released")
    with open(released) as done:
        assert done.read() == str(uid)
    assert os.stat(released).st_uid == uid
    # `backstage run` and `manage` too
    assert act.run(["python", "-c", f"import os, sys; sys.exit(os.getuid() != {uid})"]) == 0

    env_path = production.layout.act_env(act.ref)
    assert env_path.startswith(os.path.join(user_venue.path, "run", "user") + os.sep)
    st = os.stat(env_path)
    assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o600)
    assert readable_by(user, env_path)
    assert os.stat(act.path).st_uid == uid
    assert os.stat(act.log_path).st_uid == uid  # uWSGI opened it as the user

    other_env = other_venue(production, str(tmp_path / "other"))
    poll(lambda: os.path.exists(other_env), timeout=10)  # the Manager's next pass
    assert not readable_by(user, other_env)


def project_of(act) -> dict[str, tuple[int, int, int, bytes | None]]:
    """Each folder and file of an Act's project, its name written N: its mode, owner,
    group and bytes, SECRET_KEY left out."""
    found = {}
    for root, dirs, files in os.walk(act.path):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            data = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as made:
                    data = re.sub(rb"SECRET_KEY = '[^']*'", b"", made.read())
                data = data.replace(act.name.encode(), b"N")
            rel = os.path.relpath(path, act.path).replace(act.name, "N")
            found[rel] = (st.st_mode, st.st_uid, st.st_gid, data)
    found.pop("act.toml")
    return found


def test_a_user_venues_second_act_is_rendered_as_the_user(
    production, user_venue, system_user, monkeypatch
):
    """The Venue's first Act is startproject's, run as its user; the second is rendered
    by a fork of Backstage that became the user, the same project, with no process run."""
    uid, gid = system_user.pw_uid, system_user.pw_gid
    check = venue_startproject_check(user_venue.path)
    if os.path.exists(check):
        os.unlink(check)
    ran = started_processes(monkeypatch)
    first = user_venue.new_act("First", start=False)
    admin = os.path.join(user_venue.path, "bin", "django-admin")
    assert [a for a in ran if a[0] == admin] == [[admin, "startproject", "First", first.path]]
    ran.clear()
    second = user_venue.new_act("Second", start=False)
    assert ran == []
    monkeypatch.undo()

    made = project_of(second)
    assert made == project_of(first) and len(made) >= 7
    assert {(owner, group) for _, owner, group, _ in made.values()} == {(uid, gid)}
    second.start()
    assert http_get(second.port)[0] == 200


def test_venue_set_user_and_what_status_says(production, venue, system_user, caplog):
    home = production.home
    said = cli("status", home=home).stdout
    assert said.count("Venue TestVenue runs as root: set user = in venue.toml") == 1
    data = json.loads(cli("status", "--json", home=home).stdout)
    assert data["as_root"] == ["TestVenue"]
    assert {"production", "emperor", "acts", "router", "gigs", "manager"} <= data.keys()

    refused = cli_quiet(caplog, "venue", "set", "TestVenue", "user=nosuchbstuser", home=home)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "backstage: user nosuchbstuser does not exist: create it (useradd --system "
        "--no-create-home nosuchbstuser) or remove user = from venue.toml"
    ]
    # its Python lives under /root, its Venue under the test root (both 0700): its user
    # could import nothing
    user = system_user.pw_name
    refused = cli_quiet(caplog, "venue", "set", "TestVenue", f"user={user}", home=home)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"backstage: user {user} cannot read the Venue's ")
    assert refused.stderr.endswith(", or remove user = from venue.toml\n")
    assert venue.user == ""
    stdlib = os.path.join(sys.base_prefix, "lib")
    try:
        with passable(venue.path, stdlib):
            run_cli("venue", "set", "TestVenue", f"user={user}", home=home)
        assert venue.user == system_user.pw_name
        assert "runs as root" not in cli("status", home=home).stdout
        assert json.loads(cli("status", "--json", home=home).stdout)["as_root"] == []
    finally:
        venue.declare(user="")


def test_a_user_venues_act_plays_its_gigs(production, channel, user_venue):
    """Booked while it plays: the router (root) passes requests to the socket in the
    user's folder, and the graceful reload that reads the new gigs ini, as the user,
    still finds it; unbooked, the withheld file it looks for is found."""
    user_venue.add_domain("example.com")
    act = user_venue.new_act("Shop")
    port = production.router.port
    act.book("shop.example.com")
    status, _ = http_get(port, host="shop.example.com")
    assert status == 200
    assert [gig.host for gig in act.gigs] == ["shop.example.com"]
    act.unbook("shop.example.com")
    assert poll(lambda: http_get(port, host="shop.example.com")[0] == 404, timeout=10)


def test_a_user_venues_hosts_get_https(production, user_venue, system_user, tmp_path):
    """An Act running as its Venue's user cannot reach the home (0700): its Venue's own
    folder holds the 308 marks and HTTP-01 answers of its own hosts, and no other's.
    A real Pebble validates through the router to the user's Act."""
    production.create()
    os.chmod(production.home, 0o700)  # as ~/.backstage is: nothing in it for the user
    ca = TestCA(str(tmp_path / "ca"))
    pebble = Pebble(str(tmp_path), production.router.port, ca)
    try:
        tls, port = free_port(), production.router.port
        acme = {"directory": pebble.directory, "email": "ops@example.com"}
        production.declare(https=f"127.0.0.1:{tls}", acme={**acme, "ca_bundle": ca.root_path})
        user_venue.add_domain("example.com")
        act = named_act(user_venue, "Shop")
        act.book("shop.example.com")
        root = PebbleRoot(pebble.root())

        def served() -> bool:
            try:
                return https_get(tls, "shop.example.com", root)[:2] == (200, "Shop")
            except OSError:  # ssl.SSLError is one
                return False

        poll(served, timeout=90, interval=0.5)
        status, headers = http_raw(port, "shop.example.com", "/p?q=1")
        assert (status, headers["Location"]) == (308, f"https://shop.example.com:{tls}/p?q=1")

        # another host's certificate is marked in the home, not in this Venue's folder
        other, other_key = ca.leaf("other.example.org")
        production.import_certificate("other.example.org", other, other_key)
        home = production.layout
        poll(lambda: "other.example.org" in os.listdir(home.https_marks), timeout=10)
        marks = venue_https_marks(user_venue.path)
        assert sorted(os.listdir(marks)) == ["shop.example.com", f"shop.example.com:{port}"]
        user = system_user.pw_name
        # what the Act tests (uWSGI's isfile) is the user's to find, another host's not
        assert found_by(user, os.path.join(marks, "shop.example.com"))
        assert not found_by(user, os.path.join(home.https_marks, "other.example.org"))
        assert not readable_by(user, home.cert_key_path("shop.example.com"))
        for folder in (marks, venue_challenges(user_venue.path)):
            st = os.stat(folder)
            assert (st.st_uid, st.st_mode & 0o777) == (0, 0o711)  # root's, not listed
    finally:
        pebble.stop()
