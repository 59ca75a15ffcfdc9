"""A hostile tenant: an Act of a Venue with its own user, and that user, trying to reach
root or another Venue through what they can write. Each way is asserted refused, and
the Act keeps serving what it served. Needs root: it creates the user."""

from __future__ import annotations

import glob
import os
import stat
import subprocess
import sys

from emperor.subscription import subscription_packet
from tests.conftest import cli, cli_quiet, run_cli
from tests.helpers import http_get, poll
from tests.integration import test_venue_user
from tests.integration.test_bad_input import said_once, state_now
from tests.integration.test_venue_user import other_venue, readable_by

pytestmark = test_venue_user.pytestmark  # it needs root and useradd
# the fixtures of a Venue under its own user
system_user = test_venue_user.system_user
user_venue = test_venue_user.user_venue
open_path = test_venue_user.open_path


def as_user(user: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", "sh", "-c", script], capture_output=True, text=True
    )


def test_act_toml_cannot_run_a_command_as_root(
    production, user_venue, system_user, tmp_path, caplog
):
    """`act set` refuses each option that runs a command or acts before the drop, in one
    line naming it; the user's own edit of act.toml makes the Act invalid with that line
    and it plays on as it was: the command never runs."""
    user = system_user.pw_name
    act = user_venue.new_act("Shop", processes=1)
    port = act.port
    assert http_get(port)[0] == 200
    pid = act.sess.pid
    marker = tmp_path / "ran-as-root"
    home = production.home
    for option, value in (
        ("hook-master-start", f"exec:touch {marker}"),
        ("exec-as-root", f"touch {marker}"),
        ("attach-daemon", f"touch {marker}"),
        ("cron", f"-1 -1 -1 -1 -1 touch {marker}"),
        ("route", f"^/ exec:touch {marker}"),
        ("import", "os"),
    ):
        # refused before anything is written or run: the command's main() in this process
        done = cli_quiet(caplog, "act", "set", act.ref.key, f"uwsgi.{option}={value}", home=home)
        assert done.returncode == 1, done
        assert done.stderr.count("\n") == 1 and f"[uwsgi] {option} is not an option" in done.stderr

    # the user owns the Act's folder: it replaces act.toml with one of its own
    spec_path = act.ref.spec_path
    edit = as_user(
        user,
        f"cat {spec_path} > {spec_path}.new && "
        f"printf '[uwsgi]\\nexec-as-root = \"touch {marker}\"\\n' >> {spec_path}.new && "
        f"mv {spec_path}.new {spec_path}",
    )
    assert edit.returncode == 0, edit.stderr
    poll(lambda: state_now(production, "Shop") == "invalid", 15)
    row = said_once(home, "Shop", "invalid")
    assert "[uwsgi] exec-as-root is not an option an Act may set" in row["problem"]
    assert http_get(port)[0] == 200
    assert row["pid"] == pid  # never restarted with it
    assert not os.path.exists(marker)

    # an option from the table is the user's to set, and is applied as the user
    fixed = as_user(
        user,
        f"sed -i 's/^exec-as-root = .*/harakiri = 30/' {spec_path}",
    )
    assert fixed.returncode == 0, fixed.stderr
    poll(lambda: state_now(production, "Shop") == "running", 30)
    said_once(home, "Shop", "running")
    assert act.spec.uwsgi == {"harakiri": 30}
    assert not os.path.exists(marker)


def modes_under(*folders: str) -> dict[str, tuple[str, int, int]]:
    """Every socket, FIFO and file below `folders`: (kind, mode, uid)."""
    found = {}
    for folder in folders:
        for parent, dirs, files in os.walk(folder):
            for name in dirs + files:
                path = os.path.join(parent, name)
                st = os.lstat(path)
                kind = (
                    "socket" if stat.S_ISSOCK(st.st_mode)
                    else "fifo" if stat.S_ISFIFO(st.st_mode)
                    else "dir" if stat.S_ISDIR(st.st_mode)
                    else "link" if stat.S_ISLNK(st.st_mode)
                    else "file"
                )  # fmt: skip
                found[path] = (kind, stat.S_IMODE(st.st_mode), st.st_uid)
    return found


def test_sockets_logs_and_declarations_are_their_owners_alone(
    production, user_venue, system_user, tmp_path
):
    """Sockets and FIFOs their owner's alone, logs 0600 in 0700 folders, act.toml 0600
    (the user's in a user Venue), the Venue's uv lock 0600; the Venue's user reaches none of the
    Production's: not the router's subscription socket, not the logs or declarations of
    an Act of another Venue."""
    user, uid = system_user.pw_name, system_user.pw_uid
    user_venue.add_domain("example.com")
    act = user_venue.new_act("Shop", processes=1)
    act.book("shop.example.com")
    other_env = other_venue(production, str(tmp_path / "other"))
    layout = production.layout
    poll(lambda: os.path.exists(other_env), timeout=10)

    found = modes_under(layout.run_dir, layout.log_dir, os.path.join(user_venue.path, "run"))
    found.update(modes_under(os.path.join(user_venue.path, "log")))
    loose = {
        path: (kind, oct(mode))
        for path, (kind, mode, _) in found.items()
        if mode & 0o077
        and (kind in ("socket", "fifo") or path.endswith((".log", ".json", ".toml", ".key")))
    }
    assert loose == {}
    sockets = [path for path, (kind, _, _) in found.items() if kind == "socket"]
    assert layout.router_subscriptions in sockets and layout.emperor_stats in sockets
    assert act.stats_path in sockets
    for folder in (layout.log_dir, layout.run_dir, os.path.join(user_venue.path, "log")):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    st = os.stat(act.ref.spec_path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, uid)
    assert stat.S_IMODE(os.stat(os.path.join(act.log_path)).st_mode) == 0o600
    lock = os.path.join(user_venue.path, ".lock")
    if os.path.exists(lock):  # made by uv
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600

    # what the Venue's user cannot reach
    other = production.venue("Other").act("Vault")
    for path in (other_env, other.spec_path, layout.router_log, layout.spec_path):
        assert not readable_by(user, path), path
    send = "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'x', sys.argv[1])"
    sent = subprocess.run(
        ["runuser", "-u", user, "--", sys.executable, "-c", f"import socket, sys; {send}"]
        + [layout.router_subscriptions],
        capture_output=True,
        text=True,
    )
    assert sent.returncode != 0 and "PermissionError" in sent.stderr


def test_no_act_of_a_user_venue_announces_a_host_itself(production, user_venue, system_user):
    """The router's subscription socket is the Production's alone: the Act's own code,
    as the Venue's user, cannot announce a host, another Venue's or its own, and the
    Production Manager announces the Act's booked hosts for it, after a restart too."""
    user_venue.add_domain("example.com")
    act = user_venue.new_act("Shop", processes=1)
    act.book("shop.example.com")
    port, router = production.router.port, production.crew.router
    act.stop()
    act.start()
    assert poll(lambda: http_get(port, host="shop.example.com")[0] == 200, timeout=30)
    with open(act.log_path) as log:
        assert "send_subscription()" not in log.read()  # it tried nothing it cannot do

    socket_path = production.layout.act_socket(act.ref)
    for host in ("victim.example.org", f"victim.example.org:{port}", f"shop.example.com:{port}"):
        packet = subscription_packet(host, socket_path).hex()
        send = "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(bytes.fromhex(a[1]), a[2])"
        sent = subprocess.run(
            ["runuser", "-u", system_user.pw_name, "--", sys.executable, "-c"]
            + [f"import socket, sys; a = sys.argv; {send}", packet, router.subscription_path],
            capture_output=True,
            text=True,
        )
        assert sent.returncode != 0 and "PermissionError" in sent.stderr, sent
    assert router.live_nodes("victim.example.org") == set()
    assert http_get(port, host="victim.example.org")[0] == 404

    act.unbook("shop.example.com")  # and the Manager stops announcing it
    assert poll(lambda: http_get(port, host="shop.example.com")[0] == 404, timeout=10)


def test_a_projects_own_package_is_built_as_the_venues_user(
    production, user_venue, system_user, open_path
):
    """The Venue's packages are its user's, and installed as that user: a local
    package's setup.py in the project (a folder the user writes) runs as the user during
    `act add`, never as root, and the Act serves with it."""
    uid = system_user.pw_uid
    project = open_path / "site"
    (project / "ownpkg").mkdir(parents=True)
    built_by = project / "built-by"
    (project / "ownpkg" / "setup.py").write_text(
        f"import os\nopen({str(built_by)!r}, 'w').write(str(os.getuid()))\n"
        "from setuptools import setup\n"
        "setup(name='ownpkg', version='1', py_modules=['ownmod'])\n"
    )
    (project / "ownpkg" / "ownmod.py").write_text("ANSWER = b'built'\n")
    (project / "requirements.txt").write_text("./ownpkg\n")
    (project / "app.py").write_text(
        "from ownmod import ANSWER\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n    return [ANSWER]\n"
    )
    subprocess.run(["chown", "-R", f"{uid}:{system_user.pw_gid}", str(project)], check=True)
    with test_venue_user.passable(str(project)):
        done = run_cli(
            "act", "add", user_venue.name, "Site", str(project), "--wsgi", "app:application",
            home=production.home, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert built_by.read_text() == str(uid)  # not 0
        act = user_venue.act("Site")
        assert http_get(act.port) == (200, "built")
    assert os.stat(_ownmod(user_venue.path)).st_uid == uid  # installed by the user
    assert os.stat(os.path.join(user_venue.path, "pyvenv.cfg")).st_uid == 0  # names the Python


def _ownmod(venue_path: str) -> str:
    found = glob.glob(os.path.join(venue_path, "lib", "python*", "site-packages", "ownmod.py"))
    assert len(found) == 1, found
    return found[0]


GIT_APP = """\
def application(environ, start_response):
    start_response('200 OK', [])
    return [b{version!r}]
"""


def _commit(repo: str, version: str, owner: int) -> None:
    """A commit by root to a repository of the Venue's user (the remote it fetches from)."""
    with open(os.path.join(repo, "app.py"), "w") as out:
        out.write(GIT_APP.format(version=version))
    for args in (("add", "."), ("commit", "-q", "-m", version)):
        trusted = ("-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@e.org")
        subprocess.run(["git", *trusted, *args], cwd=repo, check=True)
    subprocess.run(["chown", "-R", str(owner), repo], check=True)


def _branch(repo: str, name: str, owner: int) -> None:
    """The repository of the Venue's user on branch `name`, made if new."""
    made = [] if name == "main" else ["-b"]
    subprocess.run(
        ["git", "-c", "safe.directory=*", "checkout", "-q", *made, name], cwd=repo, check=True
    )
    subprocess.run(["chown", "-R", str(owner), repo], check=True)


def test_a_user_venues_git_act_is_fetched_and_unpacked_as_its_user(
    production, user_venue, system_user, open_path
):
    """The clone of a git Act is its Venue user's: root's git refuses a repository of
    another user (and would obey its config, hooks included), so a deploy fetches and
    unpacks as the user."""
    repo = str(open_path / "repo")
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q", "-b", "main", "."], cwd=repo, check=True)
    _commit(repo, "one", system_user.pw_uid)
    with test_venue_user.passable(repo):
        act = user_venue.add_act("Gitted", f"file://{repo}", wsgi="app:application")
        assert http_get(act.port) == (200, "one")
        _commit(repo, "two", system_user.pw_uid)
        done = run_cli("deploy", act.key, home=production.home, check=False)
        assert done.returncode == 0, done.stderr
        assert http_get(act.port) == (200, "two")
        # another branch, fetched by its name into the clone of main, as the user
        _branch(repo, "other", system_user.pw_uid)
        _commit(repo, "other", system_user.pw_uid)
        _branch(repo, "main", system_user.pw_uid)
        done = run_cli("deploy", act.key, "other", home=production.home, check=False)
        assert done.returncode == 0, done.stderr
        assert http_get(act.port) == (200, "other")
        live = next(r for r in act.releases if r.live)
        assert os.stat(os.path.join(live.path, "app.py")).st_uid == system_user.pw_uid

        # a remote the user cannot read (a key it lacks): the deploy says so, "other" serves on
        _commit(repo, "three", system_user.pw_uid)
        os.chmod(repo, 0)
        try:
            done = cli("deploy", act.key, home=production.home, check=False)
        finally:
            os.chmod(repo, 0o755)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert f"could not fetch from file://{repo}: " in done.stderr, done.stderr
        assert f"access for the Venue's user {system_user.pw_name}" in done.stderr
        assert [r.number for r in act.releases] == [1, live.number]
        assert http_get(act.port) == (200, "other")


def test_root_never_starts_a_user_venues_python(production, user_venue, system_user, open_path):
    """A `.pth` file in the Venue's site-packages, the user's, runs at every start of its
    Python: planted by the user, it records who started it, and that is never root,
    through an Act's start and reload, `run`, and another Act's install and pre-flight."""
    user, uid = system_user.pw_name, system_user.pw_uid
    act = user_venue.new_act("Shop", processes=1)
    assert http_get(act.port)[0] == 200
    packages = os.path.dirname(os.path.dirname(_module_file(user_venue.path, "django")))
    assert os.stat(packages).st_uid == uid  # given before the Act played
    marks = open_path / "marks"
    marks.mkdir()
    os.chown(marks, uid, system_user.pw_gid)
    who = marks / "who"
    line = f"import os; open({str(who)!r}, 'a').write('%d\\n' % os.getuid())\n"
    planted = subprocess.run(
        ["runuser", "-u", user, "--", "tee", os.path.join(packages, "zz_who.pth")],
        input=line, capture_output=True, text=True,
    )  # fmt: skip
    assert planted.returncode == 0, planted.stderr
    try:
        with test_venue_user.passable(str(marks)):
            act.reload()
            assert act.run(["python", "-c", "pass"]) == 0
            project = open_path / "site"
            project.mkdir()
            (project / "requirements.txt").write_text("./pkg\n")
            (project / "pkg").mkdir()
            (project / "pkg" / "setup.py").write_text(
                "from setuptools import setup\nsetup(name='whopkg', version='1')\n"
            )
            (project / "app.py").write_text(
                "def application(environ, start_response):\n"
                "    start_response('200 OK', [])\n    return [b'ok']\n"
            )
            subprocess.run(["chown", "-R", str(uid), str(project)], check=True)
            added = user_venue.add_act("Site", str(project), wsgi="app:application")
            assert http_get(added.port) == (200, "ok")
        started = who.read_text().split()
        assert len(started) >= 4 and set(started) == {str(uid)}, started  # never "0"
    finally:
        os.unlink(os.path.join(packages, "zz_who.pth"))


def _module_file(venue_path: str, name: str) -> str:
    found = glob.glob(os.path.join(venue_path, "lib", "python*", "site-packages", name, "*.py"))
    assert found, name
    return found[0]
