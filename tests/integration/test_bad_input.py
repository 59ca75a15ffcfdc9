"""Hostile values, corrupt files, commands at once, a full and a read-only home: what
each does, and that the others play on. Each test prints its figure."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from backstage import Production
from backstage.errors import ActFailed, InvalidSetting
from tests.chaos_helpers import HELD_WAIT, Load, small_act, wait_served
from tests.conftest import HOMES, ROOT, cli, cli_quiet, run_cli
from tests.helpers import http_get, poll, processes_of

HOSTILE = {
    "DOLLAR": "$(HOME) ${HOME} $HOME",
    "AT": "@(exec://touch {marker})",
    "AT_FILE": "@(/etc/hostname)",
    "PERCENT": "%(_) %d %% 100%",
    "SEMI": "a;b ; c",
    "HASH": "#not a comment # either",
    "NEWLINES": "line1\nline2\r\n[uwsgi]\nmaster = false\n",
    "EQUALS": "k=v=w==",
    "SPACES": "  padded  ",
    "QUOTES": "'\"\\ \\n \\x00",
    "UNICODE": "ü € 😀",
    "EMPTY": "",
    "JINJA": "{{ 7*7 }} {% raw %}",
}


def env_of(act, keys) -> dict:
    query = urllib.parse.urlencode({"keys": ",".join(keys)})
    status, body = http_get(act.port, f"/env?{query}")
    assert status == 200, body
    return json.loads(body)


def status_rows(home: str) -> dict:
    data = json.loads(cli("status", "--json", home=home).stdout)
    return {row["act"]: row for row in data["acts"]}


def state_now(production: Production, act: str) -> str:
    """The Act's state from the Snapshot `status` prints, read in this process: a wait
    that looks every 50 ms then starts no `backstage` process per look (each took 0.25 s
    of CPU); what the command says is checked once the wait is over."""
    return next(row.state for row in production.snapshot().acts if row.act == act)


def said_once(home: str, act: str, state: str) -> dict:
    """The command's row of the Act, once `state_now` saw `state`: it says the same."""
    row = status_rows(home)[act]
    assert row["state"] == state, row
    return row


def test_hostile_env_values_reach_the_app_byte_for_byte(production, venue, tmp_path):
    marker = tmp_path / "exec-ran"
    env = {k: v.format(marker=marker) if k == "AT" else v for k, v in HOSTILE.items()}
    act = small_act(venue, "Hostile", processes=1, start=False)
    act.manager.declare(env=env)
    act.start()
    assert env_of(act, env) == env
    # and again after a change, through the Manager's restart
    env["SEMI"] = "changed;again"
    act.manager.declare(env=env)
    poll(lambda: http_get(act.port, "/env?keys=SEMI")[1] == '{"SEMI": "changed;again"}', 30)
    assert env_of(act, env) == env
    assert not marker.exists(), "uWSGI ran a command from an env value"
    print(f"hostile env values: {len(env)} tried, {len(env)} received byte for byte, 0 expanded")

    # secrets: the declaration, the env file, settings.py private; the log 0640 or tighter
    crew = production.crew
    for path in (act.spec_path, crew.layout.act_env(act.ref)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    settings = os.path.join(act.path, act.spec.package, "settings.py")
    assert stat.S_IMODE(os.stat(settings).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(act.manager.log_path).st_mode) & 0o137 == 0

    # a hand-written act.toml with an env is made 0600 by the Manager
    with open(act.spec_path) as source:
        text = source.read()
    os.chmod(act.spec_path, 0o644)
    with open(act.spec_path, "w") as out:
        out.write(text)
    poll(lambda: stat.S_IMODE(os.stat(act.spec_path).st_mode) == 0o600, 5)

    # keys with "=" (or reserved ones) are refused, from Python and from the file
    for key in ("A=B", "UWSGI_MASTER", "X Y", ""):
        with pytest.raises(InvalidSetting):
            act.manager.declare(env={key: "x"})
    assert env_of(act, env) == env


GOOD_HOST = "good.bad.test"


def _bad_act_tomls(text: str) -> list[tuple[str, str, str]]:
    """(what, the file's text, a word of the reason)"""
    return [
        ("not TOML", text + "\nport = [\n", "not valid TOML"),
        ("a port 70000", text.replace("port = ", "port = 7", 1), "not a port"),
        (
            "a host outside the Venue's domains",
            text.replace("hosts = []", 'hosts = ["evil.example.org"]'),
            "not a domain of Venue",
        ),
        ("an unknown key", "prot = 1\n" + text, "unknown setting 'prot'"),
        (
            "an env key with =",
            text.replace("[env]", "") + '\n[env]\n"A=B" = "x"\n',
            "not a variable name",
        ),
        ("a wrong type", text.replace("processes = 1", 'processes = "1"'), "must be"),
        ("another Act's name", text.replace('name = "Bad"', 'name = "Good"'), "write name"),
        ("an empty file", "", "unknown"),  # no name, no port
        ("binary", "\x00\xff\xfe garbage", "not valid TOML"),
    ]


def test_a_setting_uwsgi_refuses_is_put_back_and_the_act_plays_on(venue):
    act = venue.new_act("Listens", processes=1)
    # two changes with no request between: the master the first made has served none,
    # so the Emperor still lists the exit of the one before it as a refusal
    act.set("processes=2")
    too_long = _somaxconn_times_two()
    with pytest.raises(
        ActFailed,
        match=r"was refused on its new config: Listen queue size is greater than the system "
        r"max net.core.somaxconn .*; its settings before are put back and it plays them again",
    ):
        act.set(f"uwsgi.listen={too_long}")
    assert "listen" not in act.spec.uwsgi and act.spec.processes == 2
    assert act.state == "running" and len(act.sess.workers) == 2
    assert http_get(act.port, "/")[0] == 200


def _somaxconn_times_two() -> int:
    with open("/proc/sys/net/core/somaxconn") as somaxconn:
        return int(somaxconn.read()) * 2  # a queue the kernel would not give a socket


def test_an_act_toml_uwsgi_refuses_keeps_the_config_before_playing(production, venue):
    """Edited by hand to a config uWSGI refuses, the Act plays the config it last served
    with (its requests wait in its held socket meanwhile), and is said invalid with
    uWSGI's reason until its act.toml changes again."""
    act = small_act(venue, "Edited", processes=1)
    with open(act.spec_path) as source:
        text = source.read()
    assert "[uwsgi]" not in text
    edited = text + f"\n[uwsgi]\nlisten = {_somaxconn_times_two()}\n"
    with Load(act.port, interval=0.05, timeout=20.0) as load:
        with open(act.spec_path, "w") as out:  # as a user would, in place
            out.write(edited)
        poll(lambda: state_now(production, "Edited") == "invalid", 30)
        row = said_once(production.home, "Edited", "invalid")
        assert "uWSGI refused its config: Listen queue size is greater" in row["problem"], row
        # it plays all the same, on the config before
        poll(lambda: act.sess is not None and act.sess.accepting, 30)
        assert http_get(act.port, "/")[0] == 200
        with open(act.spec_path, "w") as out:  # put right: the config declared plays
            out.write(text)
        poll(lambda: state_now(production, "Edited") == "running", 30)
    assert load.results and all(status == 200 for _, status in load.results), [
        status for _, status in load.results if status != 200
    ]


def test_an_act_unusable_among_the_others_is_invalid_to_its_own_state(production, venue):
    """An act.toml that reads fine alone but cannot be used among the others: the Act's
    own state (the API, what `act start` prints) says invalid, as `status` and `act ls`
    do, not running because it plays on as it was."""
    act = small_act(venue, "Named", processes=1)
    with open(act.spec_path) as source:
        text = source.read()
    home = production.home
    for what, edited in (
        ("another Act's name", text.replace('name = "Named"', 'name = "Other"')),
        ("a host outside the Venue's domains", text.replace("hosts = []", 'hosts = ["x.org"]')),
    ):
        assert edited != text, what
        with open(act.spec_path, "w") as out:
            out.write(edited)
        assert act.state == "invalid", what
        listed = json.loads(cli("act", "ls", "--json", home=home).stdout)
        assert [row["state"] for row in listed if row["act"] == "Named"] == ["invalid"], what
        assert status_rows(home)["Named"]["state"] == "invalid", what
        with open(act.spec_path, "w") as out:
            out.write(text)
        assert act.state == "running", what


@pytest.mark.slow
def test_a_corrupt_act_toml_is_invalid_and_affects_only_its_act(production, venue):
    venue.add_domain("bad.test")
    good = small_act(venue, "Good", processes=1)
    bad = small_act(venue, "Bad", processes=1)
    with open(bad.spec_path) as source:
        text = source.read()
    home = production.home
    tried = 0
    with Load(good.port, interval=0.05) as load, Load(bad.port, interval=0.05) as bad_load:
        for what, corrupt, reason in _bad_act_tomls(text):
            if what == "an empty file":
                reason = "name"
            with open(bad.spec_path, "w") as out:  # as a user would, in place
                out.write(corrupt)
            poll(lambda: state_now(production, "Bad") == "invalid", 15)
            row = said_once(home, "Bad", "invalid")
            assert bad.spec_path in row["problem"] or what == "another Act's name", (what, row)
            assert reason in row["problem"], (what, row["problem"])
            assert "\n" not in row["problem"]
            assert status_rows(home)["Good"]["state"] == "running"
            # a command on the bad Act says why in one line, at once (the Manager, which
            # keeps it playing as it was, would never withdraw it for a stop)
            done = run_cli("act", "stop", "TestVenue/Bad", home=home, check=False)
            assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, (
                what,
                done.stderr,
            )
            assert reason in done.stderr, (what, done.stderr)
            assert "Traceback" not in done.stderr
            with open(bad.spec_path, "w") as out:
                out.write(text)
            poll(lambda: state_now(production, "Bad") == "running", 15)
            said_once(home, "Bad", "running")
            tried += 1
    print(
        f"corrupt act.toml: {tried} kinds tried; the good Act failed {load.failed} of "
        f"{load.total} requests, the bad one (playing on as it was) {bad_load.failed} of "
        f"{bad_load.total}"
    )
    assert load.failed == 0 and bad_load.failed == 0


def test_a_corrupt_venue_toml_and_production_toml(production, venue):
    act = small_act(venue, "Steady", processes=1)
    home = production.home
    with open(venue.spec_path) as source:
        venue_text = source.read()
    with open(production.layout.spec_path) as source:
        production_text = source.read()
    manager = production.manager.pid()
    with Load(act.port, interval=0.05) as load:
        for path, original in (
            (venue.spec_path, venue_text),
            (production.layout.spec_path, production_text),
        ):
            for corrupt in ("[[[ not toml", original + "\nbogus = 1\n"):
                with open(path, "w") as out:
                    out.write(corrupt)
                try:
                    # the Manager's pass sees it, and `status` says so
                    def said() -> subprocess.CompletedProcess[str] | None:
                        found = cli("status", "--json", home=home, check=False)
                        if found.returncode or '"invalid"' in found.stdout:
                            return found
                        if json.loads(found.stdout)["problem"]:
                            return found
                        return None

                    poll(said, 15, interval=0.2)
                    done = run_cli("status", home=home, check=False)
                    said = (done.stdout + done.stderr).strip().splitlines()
                    print(
                        f"{os.path.basename(path)} corrupt: status exits {done.returncode}: "
                        f"{said[-1] if said else ''}"
                    )
                    assert "Traceback" not in done.stderr
                    problem = json.loads(cli("status", "--json", home=home).stdout)["problem"]
                    if done.returncode:
                        assert len(done.stderr.strip().splitlines()) == 1 and path in done.stderr
                    elif path == production.layout.spec_path:  # the last good one plays
                        assert path in problem and status_rows(home)["Steady"]["state"] == "running"
                    else:
                        rows = status_rows(home)
                        assert rows["Steady"]["state"] == "invalid", rows
                        assert path in rows["Steady"]["problem"]
                    assert http_get(act.port)[0] == 200
                finally:
                    with open(path, "w") as out:
                        out.write(original)
                poll(lambda: state_now(production, "Steady") == "running", 15)
                said_once(home, "Steady", "running")
    print(f"corrupt venue.toml, production.toml: {load.failed} of {load.total} requests failed")
    assert load.failed == 0
    assert production.manager.pid() == manager


def test_an_unchanged_act_toml_rewritten_in_place_never_withdraws_the_act(production, venue):
    act = small_act(venue, "Rewritten", processes=1)
    master = act.sess.pid
    with open(act.spec_path) as source:
        text = source.read()
    manager_log = production.crew.layout.manager_log
    invalid = f"{act.ref.key} is invalid"

    def times_read_empty() -> int:
        with open(manager_log, errors="replace") as log:
            return log.read().count(invalid)

    with Load(act.port) as load:
        for attempt in range(30):
            seen = times_read_empty()
            with open(act.spec_path, "w") as out:  # truncate, then write
                out.flush()
                if attempt < 3:
                    # Held empty until the Manager has read it so: the window is hit.
                    poll(lambda seen=seen: times_read_empty() > seen, 10)
                else:
                    time.sleep(0.01)  # the empty file is there to be read
                out.write(text)
            time.sleep(0.1)
        time.sleep(1.5)
    print(f"act.toml rewritten in place 30 times: {load.failed} of {load.total} requests failed")
    assert load.failed == 0
    assert act.sess.pid == master


@pytest.mark.slow
def test_commands_at_once(production, venue):
    home = production.home
    env = dict(os.environ, BACKSTAGE_HOME=home)

    def at_once(*commands):
        running = [
            subprocess.Popen(
                [sys.executable, "-m", "backstage", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        return [(p.wait(120), *p.communicate()) for p in running]

    # several `up` at once on a Production that is down: one Manager, one Emperor
    production.down()
    done = at_once(*[("up",)] * 3)
    assert all(code == 0 for code, _, _ in done), done
    manager, emperor = production.manager.pid(), production.stage.pid()
    assert manager and emperor
    assert len([p for p in processes_of(home) if _is_emperor(p)]) == 1

    # several `act new` at once: each its own port, or one line why not
    done = at_once(*[("act", "new", "TestVenue", f"Many{i}", "--no-start") for i in range(4)])
    for code, _, err in done:
        assert code == 0 or len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    acts = [a for a in venue.acts if a.name.startswith("Many")]
    assert len(acts) == sum(1 for code, _, _ in done if code == 0) == 4
    assert len({a.port for a in acts}) == 4

    # start and stop of one Act at once, twice over: each says what it did, and what
    # the file says at the end is what plays
    target = acts[0]
    for _ in range(2):
        done = at_once(
            ("act", "start", target.key), ("act", "stop", target.key), ("act", "start", target.key)
        )
        for code, _, err in done:
            assert "Traceback" not in err
            assert code == 0 or len(err.strip().splitlines()) == 1, err
        want = "running" if target.spec.enabled else "stopped"
        poll(lambda want=want: target.state == want, 30)
    print(f"commands at once: 3 up, 4 act new, 6 start/stop: {len(acts)} Acts, ports distinct")
    assert production.manager.pid() == manager


def _is_emperor(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"--emperor" in cmdline.read()
    except OSError:
        return False


def test_two_productions_on_one_router_address(production, venue, monkeypatch):
    small_act(venue, "First", processes=1)
    other = Production(os.path.join(ROOT, f"second{random.randrange(10**6)}"))
    HOMES.append(other.home)
    other.declare(router=production.spec.router, ports=production.spec.ports)
    done = run_cli("up", home=other.home, check=False)
    print(f"second Production on the first's router: exit {done.returncode}: {done.stderr.strip()}")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "held by another" in done.stderr
    assert processes_of(other.home) == []


# A full and a read-only home


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode})")


def _umount(path: str) -> None:
    for _ in range(50):
        if subprocess.run(["umount", path], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", path], capture_output=True)


def _fill(folder: str) -> str:
    filler = os.path.join(folder, "filler")
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def mounted(production, venue):
    """Mount points to undo, unmounted before the Venue's Acts are cleaned, once the
    Production is down (a busy mount would only come off lazily, hiding its pidfiles)."""
    points: list[str] = []
    with open(production.layout.spec_path, "rb") as source:
        settings = source.read()
    yield points
    production.down()
    for point in reversed(points):
        _umount(point)
    if not os.path.exists(production.layout.spec_path):  # it was on the tmpfs
        with open(production.layout.spec_path, "wb") as out:
            out.write(settings)


@pytest.mark.slow
def test_a_full_home(production, venue, mounted):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    # the home and the Venue's acts/ on small tmpfs
    production.down()
    home, acts = production.home, venue.acts_dir
    saved = {name: open(os.path.join(home, name), "rb").read() for name in ["production.toml"]}
    shutil.rmtree(home)
    os.makedirs(home)
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", home)
    mounted.append(home)
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", acts)
    mounted.append(acts)
    for name, content in saved.items():
        with open(os.path.join(home, name), "wb") as out:
            out.write(content)
    act = small_act(venue, "Full", processes=1)
    if "full.test" not in venue.domains:
        venue.add_domain("full.test")
    manager = production.manager.pid()
    fillers = [_fill(home), _fill(acts)]
    tried = 0
    with Load(act.port, interval=0.05, timeout=HELD_WAIT) as load:
        for args in (
            ("act", "new", "TestVenue", "Another", "--no-start"),
            ("act", "stop", "TestVenue/Full"),
            ("book", "TestVenue/Full", "x.full.test"),
        ):
            done = run_cli(*args, home=home, check=False)
            print(
                f"full disk: backstage {' '.join(args)}: exit {done.returncode}: "
                f"{done.stderr.strip()}"
            )
            assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done
            assert "No space left" in done.stderr and ("act.toml" in done.stderr or "new" in args)
            tried += 1
        assert sorted(os.listdir(acts)) == ["Full", "filler"]
        assert act.spec.enabled and http_get(act.port)[0] == 200
        # a master killed on a full disk is healed all the same
        master = act.sess.pid
        killed = time.monotonic()
        os.kill(master, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.pid != master and s.ready, 30)
        wait_served(load, killed)
    figure = load.figure(f"full home ({tried} commands refused), then master kill -9", killed)
    assert load.failed == 0, figure  # its sockets are held: requests wait for the master
    assert production.manager.pid() == manager
    for filler in fillers:
        os.unlink(filler)
    act.stop()
    production.down()


def test_a_read_only_home(production, venue, mounted):
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    act = small_act(venue, "Frozen", processes=1)
    home, acts = production.home, venue.acts_dir
    manager = production.manager.pid()
    with Load(act.port, interval=0.05, timeout=HELD_WAIT) as load:
        _mount("--bind", "-o", "ro", home, home)
        mounted.append(home)
        _mount("--bind", "-o", "ro", acts, acts)
        mounted.append(acts)
        if os.access(os.path.join(home, "log"), os.W_OK) and _writable(home):
            pytest.skip("the bind mount is not read-only here")
        for args in (
            ("act", "new", "TestVenue", "Another", "--no-start"),
            ("act", "stop", "TestVenue/Frozen"),
            ("status",),
        ):
            done = run_cli(*args, home=home, check=False)
            print(
                f"read-only home: backstage {' '.join(args)}: exit {done.returncode}: "
                f"{done.stderr.strip()}"
            )
            assert "Traceback" not in done.stderr
            if args != ("status",):
                assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
                assert "Read-only file system" in done.stderr and "cannot create" not in done.stderr
                assert ".tmp" not in done.stderr
        time.sleep(2.5)  # passes of the Manager on a read-only home
        assert production.manager.pid() == manager
        assert http_get(act.port)[0] == 200
        for point in reversed(mounted):
            _umount(point)
        mounted.clear()
        # writable again: healing goes on
        master = act.sess.pid
        killed = time.monotonic()
        os.kill(master, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.pid != master and s.ready, 30)
        wait_served(load, killed)
    figure = load.figure("read-only home, then writable and master kill -9", killed)
    assert load.failed == 0, figure
    assert production.manager.pid() == manager


def _writable(folder: str) -> bool:
    probe = os.path.join(folder, ".probe")
    try:
        open(probe, "w").close()
    except OSError:
        return False
    os.unlink(probe)
    return True


# production.toml broken while the Manager runs: the last good one plays on


def _production_breakages(text: str) -> list[tuple[str, str | None]]:
    """(what, the file's text; None: a folder in its place)"""
    first, last = (int(p) for p in text.split("ports = [", 1)[1].split("]", 1)[0].split(", "))
    return [
        ("not TOML", text + "\nx = [\n"),
        ("reversed ports", text.replace(f"[{first}, {last}]", f"[{last}, {first}]")),
        ("a bad router", text.replace('router = "127.0.0.1:', 'router = "127.0.0.1:7')),
        ("an unknown key", text + "\nbogus = 1\n"),
        ("empty", ""),
        ("a folder", None),
    ]


def test_a_broken_production_toml_keeps_the_last_good_one_playing_and_healing(production, venue):
    act = small_act(venue, "Steady", processes=1)
    home, path = production.home, production.layout.spec_path
    router = production.spec.router
    with open(path) as source:
        good = source.read()
    manager = production.manager.pid()
    log = production.crew.layout.manager_log
    healed = 0
    with Load(act.port, interval=0.05, timeout=HELD_WAIT) as load:
        for what, text in _production_breakages(good):
            os.unlink(path)  # replaced whole, as an editor's save: never missing for a reader
            if text is None:
                os.mkdir(path + ".new")
            else:
                with open(path + ".new", "w") as out:
                    out.write(text)
            os.rename(path + ".new", path)
            try:
                poll(lambda: production.snapshot().problem, 15)
                found = json.loads(cli("status", "--json", home=home).stdout)
                assert path in found["problem"] and "the last good one plays" in found["problem"]
                assert "\n" not in found["problem"], found["problem"]
                assert found["router"]["address"] == router, (what, found["router"])
                assert {r["act"]: r["state"] for r in found["acts"]} == {"Steady": "running"}
                said = cli("status", home=home)
                assert "production.toml is not what plays" in said.stdout, said.stdout
                listed = cli("act", "ls", home=home)
                assert "TestVenue/Steady\trunning" in listed.stdout, (what, listed)
                # what would write it back refuses, naming it
                with pytest.raises(InvalidSetting, match=path):
                    production.declare(processes=3)
                if what in ("not TOML", "empty"):
                    # healing goes on: a master killed -9 is brought back
                    master = act.sess.pid
                    killed = time.monotonic()
                    os.kill(master, signal.SIGKILL)
                    poll(lambda m=master: (s := act.sess) and s.pid != m and s.ready, 30)
                    wait_served(load, killed)
                    healed += 1
                print(f"production.toml {what}: status says {found['problem'][:70]}...")
            finally:
                if os.path.isdir(path):
                    os.rmdir(path)
                with open(path, "w") as out:
                    out.write(good)
            poll(lambda: not production.snapshot().problem, 15)
    figure = load.figure(f"production.toml broken 6 ways, a master killed -9 in {healed}", killed)
    assert load.failed == 0, figure
    assert healed == 2
    assert production.manager.pid() == manager
    with open(log) as manager_log:
        assert "Traceback" not in manager_log.read()


def test_an_act_toml_that_is_a_folder_or_a_dangling_link_is_invalid_and_plays_on(production, venue):
    act = small_act(venue, "Linked", processes=1)
    home, path = production.home, act.spec_path
    with open(path) as source:
        good = source.read()
    master = act.sess.pid
    manager = production.manager.pid()
    with Load(act.port, interval=0.05) as load:
        for what in ("a folder", "a link to nothing"):
            if what == "a folder":
                # no rename puts a folder over a file: the Manager is held while it is swapped
                os.kill(manager, signal.SIGSTOP)
                try:
                    os.unlink(path)
                    os.mkdir(path)
                finally:
                    os.kill(manager, signal.SIGCONT)
                reason = "is a folder"
            else:
                os.symlink("/nowhere/act.toml", path + ".new")
                os.rename(path + ".new", path)
                reason = "is a link to /nowhere/act.toml, which is not there"
            poll(lambda: state_now(production, "Linked") == "invalid", 15)
            row = said_once(home, "Linked", "invalid")
            assert reason in row["problem"] and path in row["problem"], row
            assert row["pid"] == master, row  # it plays on as it was
            done = run_cli("act", "stop", "TestVenue/Linked", home=home, check=False)
            assert done.returncode == 1 and done.stderr.count("\n") == 1, done
            assert reason in done.stderr
            time.sleep(1.5)  # passes of the Manager: nothing is withdrawn
            assert act.sess.pid == master
            print(f"act.toml {what}: invalid in status, {row['problem']}")
            with open(path + ".new", "w") as out:
                out.write(good)
            if what == "a folder":
                os.kill(manager, signal.SIGSTOP)
                try:
                    os.rmdir(path)
                    os.rename(path + ".new", path)
                finally:
                    os.kill(manager, signal.SIGCONT)
            else:
                os.rename(path + ".new", path)
            poll(lambda: state_now(production, "Linked") == "running", 15)
            said_once(home, "Linked", "running")
            assert act.sess.pid == master
    print(f"act.toml a folder, a dangling link: {load.failed} of {load.total} requests failed")
    assert load.failed == 0
    assert act.sess.pid == master


# Nonsense on the command line: each refused in one line, and nothing made or changed


def _tree(*folders: str) -> dict[str, bytes]:
    """Every file under `folders` (but run/ and log/, which a Manager rewrites), with
    what it holds: what a refused command must leave as it was."""
    found = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d not in ("run", "log", "__pycache__", "lib", "bin")]
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as source:
                    found[path] = source.read()
    return found


def _cli_nonsense(
    home: str, port_of_first: int, a_file: str
) -> list[tuple[tuple[str, ...], int, str]]:
    """(the command's words, its exit code, a word of what it says)"""
    return [
        (("act", "new", "TestVenue", "Big", "--processes", "1000000"), 1, "512 or fewer"),
        (("act", "new", "TestVenue", "Big", "--processes", "0"), 1, "too small"),
        (("act", "new", "TestVenue", "Big", "--processes", "-1"), 1, "too small"),
        (("act", "new", "TestVenue", "Big", "--processes", "x"), 1, "a range of workers at rest"),
        (("act", "new", "TestVenue", "Big", "--processes", "1..x"), 1, '("1..4"), not'),
        (("act", "new", "TestVenue", "Big", "--processes", "4..2"), 1, "must be above the first"),
        (("act", "new", "TestVenue", "Big", "--port", "70000"), 1, "port"),
        (("act", "new", "TestVenue", "Big", "--port", str(port_of_first)), 1, "another Act"),
        (("act", "new", "TestVenue", "First"), 1, "exists already"),
        (("act", "new", "TestVenue", "my-act"), 1, "my-act"),
        (("act", "new", "TestVenue", "class"), 1, "class"),
        (("act", "new", "Nowhere", "Big"), 1, "no Venue 'Nowhere'"),
        (("act", "new", "TestVenue"), 2, "Missing argument 'NAME'"),
        (("act", "new"), 2, "Missing argument 'VENUE'"),
        (
            ("act", "set", "TestVenue/First", "port=" + str(port_of_first + 1)),
            1,
            "is Act TestVenue/Second's",
        ),
        (
            ("act", "set", "TestVenue/First", "max_processes=1", "processes=2"),
            1,
            "below processes = 2",
        ),
        (("act", "set", "TestVenue/First", "processes=1000000"), 1, "512 or fewer"),
        (("act", "set", "TestVenue/First", "cron.x=99 99 * * * ls"), 1, "out of range"),
        (("act", "set", "TestVenue/First", "cron.x=0 0 * * 7 ls"), 1, "week '7' is out of range"),
        (("act", "set", "TestVenue/First", "processes"), 1, "write it as processes=4"),
        (("act", "set", "TestVenue/First", "port=0"), 1, "not a port"),
        (("act", "set", "TestVenue/First", "bogus=1"), 1, "unknown setting 'bogus'"),
        (("act", "set", "TestVenue/First", "name=Other"), 1, "not set with `act set`"),
        (("act", "set", "TestVenue/First", "uwsgi.socket=/tmp/s"), 1, "set by Backstage"),
        (("act", "set", "TestVenue/First"), 2, "Missing argument"),
        (("act", "set", "First", "processes=2"), 1, "write VENUE/NAME"),
        (("act", "stop", "TestVenue/Nobody"), 1, "no Act 'Nobody'"),
        (
            ("act", "add", "TestVenue", "Cloned", "file:///nowhere/repo.git"),
            1,
            "not appear to be a git",
        ),
        (("act", "add", "TestVenue", "Folder", "/nowhere/at/all"), 1, "/nowhere/at/all"),
        (
            ("act", "add", "TestVenue", "Envy", "/nowhere", "--env", "DEBUG"),
            1,
            "write it as DEBUG=0",
        ),
        (("config", "set", "TestVenue/First", "SECRET"), 1, "write it as DEBUG=0"),
        (("config", "set", "TestVenue/First", "A=B=C", "X Y=1"), 1, "not a variable name"),
        (("config", "set", "TestVenue/First", "UWSGI_MASTER=0"), 1, "reserved"),
        (("venue", "domain", "add", "TestVenue", "com"), 1, "'com' is a public suffix"),
        (("venue", "domain", "add", "TestVenue", "co.uk"), 1, "public suffix"),
        (("venue", "domain", "add", "TestVenue", "github.io"), 1, "public suffix"),
        (("venue", "domain", "add", "TestVenue", "localhost"), 1, "public suffix"),
        (("venue", "domain", "add", "TestVenue", "x-.example.org"), 1, "hostname"),
        (("venue", "domain", "add", "TestVenue", "10.0.0.1"), 1, "IP address"),
        (("book", "TestVenue/First", "www.google.com"), 1, "not a domain of Venue"),
        (("book", "TestVenue/First", "com"), 1, "not a domain of Venue"),
        (("venue", "new", "my venue"), 1, "my venue"),
        (("--home", a_file, "status"), 1, "is not a folder"),
        (("--home", a_file, "up"), 1, "is not a folder"),
        (("--home", home + "/missing", "status"), 1, "no Production at"),
        (("--home", home + "/missing", "act", "ls"), 1, "no Production at"),
        (("--home", home + "/missing", "down"), 1, "no Production at"),
        (("bogus",), 2, "No such command 'bogus'"),
        (("--bogus",), 2, "No such option"),
        (("act", "bogus"), 2, "No such command"),
        (("status", "--interval", "soon"), 2, "not a valid float"),
        (("logs", "TestVenue/Nobody"), 1, "no Act 'Nobody'"),
        (("fifo", "TestVenue/First", "x"), 1, "unknown FIFO command"),
    ]


def _refused_in_one_line(args: tuple[str, ...], code: int, word: str, done) -> None:
    said = done.stderr.strip()
    assert (done.returncode, said.count("\n")) == (code, 0), (args, done)
    assert word in said and said.startswith("backstage: "), (args, said)
    assert "Traceback" not in said and "__init__" not in said, (args, said)
    assert not done.stdout, (args, done.stdout)


def test_nonsense_on_the_command_line_is_refused_in_one_line(production, venue, tmp_path, caplog):
    home = production.home
    first = venue.new_act("First", processes=1, start=False)
    second = venue.new_act("Second", processes=1, start=False, port=first.port + 1)
    assert second.port == first.port + 1
    a_file = str(tmp_path / "a-file")
    open(a_file, "w").close()
    before = _tree(home, venue.acts_dir, venue.spec_path)
    cases = _cli_nonsense(home, first.port, a_file)
    # each the command's own main() in this process (a process each took 13 s of the
    # two cores' time)
    for args, code, word in cases:
        _refused_in_one_line(args, code, word, cli_quiet(caplog, *args, home=home))
    # and as a user runs them, in processes of their own: a refused setting, a usage
    # error, a home that is no folder, an Act that is not there
    firsts = (("act", "new"), ("bogus",), ("--home", a_file), ("logs", "TestVenue/Nobody"))
    real = [next(case for case in cases if case[0][:2] == words) for words in firsts]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: run_cli(*case[0], home=home, check=False), real))
    for (args, code, word), done in zip(real, results, strict=True):
        _refused_in_one_line(args, code, word, done)
    assert _tree(home, venue.acts_dir, venue.spec_path) == before
    assert not os.path.exists(home + "/missing")
    assert sorted(a.name for a in venue.acts) == ["First", "Second"]
    print(f"command-line nonsense: {len(cases)} tried, {len(cases)} refused in one line")


# Races and leftovers

APP = """import time
time.sleep({sleep})
{fail}

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]
"""


def _plain_app(folder, sleep: float = 0, fail: bool = False) -> str:
    os.makedirs(folder)
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(APP.format(sleep=sleep, fail='raise RuntimeError("broken")' if fail else ""))
    return str(folder)


def _run_files(production, name: str) -> list[str]:
    return sorted(n for n in os.listdir(production.layout.run_dir) if f".{name}." in n)


def test_races_and_leftovers_of_making_and_removing_acts(production, venue, tmp_path):
    home = production.home
    small_act(venue, "Bystander", processes=1)
    # three `act new` of one name at once: one makes it, the others say it exists
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "backstage", "act", "new", "TestVenue", "Twin", "--no-start"],
            env=dict(os.environ, BACKSTAGE_HOME=home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    done = [(p.wait(120), *p.communicate()) for p in running]
    assert sorted(code for code, _, _ in done) == [0, 1, 1], done
    for code, _, err in done:
        assert code == 0 or ("exists already" in err and err.count("\n") == 1), err
    twin = venue.act("Twin")
    assert twin.spec.name == "Twin" and os.path.isfile(os.path.join(twin.path, "manage.py"))

    # a failed `act add`, the Manager running: neither its folder nor its run files stay
    broken = _plain_app(tmp_path / "broken", fail=True)
    failed = run_cli(
        "act",
        "add",
        "TestVenue",
        "Broken",
        broken,
        "--wsgi",
        "app:application",
        home=home,
        check=False,
    )
    assert failed.returncode == 1 and "broken" in failed.stderr, failed
    assert not os.path.lexists(os.path.join(venue.acts_dir, "Broken"))
    poll(lambda: _run_files(production, "Broken") == [], 15)

    # `act rm` of a playing Act: nothing of it stays in run/
    gone = small_act(venue, "Gone", processes=1)
    assert _run_files(production, "Gone")
    cli("act", "rm", gone.key, home=home)
    poll(lambda: _run_files(production, "Gone") == [], 15)

    # `down`: run/ keeps its locks and the last good production.toml, nothing stale
    production.down()
    left = sorted(os.listdir(production.layout.run_dir))
    print(f"after down, run/ holds {left}")
    assert [
        n
        for n in left
        if not n.endswith(".lock") and not os.path.isdir(os.path.join(production.layout.run_dir, n))
    ] == ["production.last-good.toml"], left


def test_an_add_that_outlives_a_down_starts_nothing(production, venue, tmp_path):
    home = production.home
    small_act(venue, "Before", processes=1)
    slow = _plain_app(tmp_path / "slow", sleep=4)  # its check imports it: 4 s
    adding = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backstage",
            "act",
            "add",
            "TestVenue",
            "Slow",
            slow,
            "--wsgi",
            "app:application",
        ],
        env=dict(os.environ, BACKSTAGE_HOME=home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    poll(lambda: os.path.exists(os.path.join(venue.acts_dir, "Slow", "act.toml")), 30)
    run_cli("down", home=home)
    code = adding.wait(120)
    _, err = adding.communicate()
    print(f"an add that outlived a down: exit {code}: {err.strip()}")
    assert code == 1 and "went down while TestVenue/Slow was being made" in err, err
    assert err.count("\n") == 1
    assert [p for p in processes_of(home) if p != adding.pid] == []  # nothing started again
    assert production.manager.pid() is None and not production.stage.alive()
    assert venue.act("Slow").spec.enabled is False  # there, whole, not started
