"""Live monitoring against a real Production: the Snapshot, `backstage status` and
`stats`, `backstage top` driven under tmux, and the stock uwsgitop on an Act."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from backstage.control.managers.observe import take
from tests.conftest import cli, run_cli
from tests.helpers import http_get, poll
from tests.integration.test_failures import break_app

TMUX = "/usr/bin/tmux"
UWSGITOP = os.path.join(os.path.dirname(sys.executable), "uwsgitop")


def stuck_stats_server(path: str) -> socket.socket:
    """A unix socket that accepts connections (the backlog does) and never answers."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    return server


def test_snapshot_of_a_real_production(production, venue):
    busy = venue.new_act("Busy", processes=2)
    idle = venue.new_act("Idle", processes=1, start=False)
    broken = venue.new_act("Broken", processes=1, start=False)
    break_app(broken)
    with pytest.raises(Exception, match="no_such_module_here"):
        broken.start(timeout=30)

    first = production.snapshot()
    assert first.emperor.running and first.emperor.pid == production.stage.pid()
    assert [row.key for row in first.acts] == [
        "TestVenue/Broken",
        "TestVenue/Busy",
        "TestVenue/Idle",
    ]
    rows = {row.act: row for row in first.acts}
    assert rows["Busy"].state == "running" and rows["Busy"].rps is None  # no previous yet
    assert rows["Idle"].state == "stopped" and rows["Idle"].pid is None
    assert rows["Broken"].state == "failed" and rows["Broken"].workers == 0
    assert first.emperor.blacklisted == (broken.vassal_name,)

    for _ in range(20):
        assert http_get(busy.port)[0] == 200
    # a worker counts a request once done with it, a moment after the client has its reply
    poll(
        lambda: production.snapshot().act("TestVenue/Busy").requests - rows["Busy"].requests == 20,
        5,
    )
    second = production.snapshot(first, detail="TestVenue/Busy")
    row = second.act("TestVenue/Busy")
    sess = busy.sess
    assert row.pid == sess.pid and row.port == busy.port
    assert row.workers == 2 and row.busy + row.idle == 2
    assert {w.pid for w in row.worker_rows} == {w.pid for w in sess.workers}
    assert row.requests - rows["Busy"].requests == 20
    assert row.rps == pytest.approx(20 / (second.at - first.at))
    assert sum(w.rps for w in row.worker_rows) == pytest.approx(row.rps)
    assert row.rss > 0 and row.avg_rt > 0 and row.exceptions == 0 and row.listen_queue == 0
    assert row.log_tail and "GET /" in "\n".join(row.log_tail)
    assert second.act("TestVenue/Idle").log_tail is None  # only the Act asked for
    assert not second.has_gigs and all(row.gigs is None for row in second.acts)  # none booked

    # Stats servers that hang cost their own timeout, read side by side, not in a row.
    stuck = [stuck_stats_server(act.stats_path) for act in (idle, broken)]
    try:
        started = time.monotonic()
        slow = take(production.crew, second, timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        for server in stuck:
            server.close()
        for act in (idle, broken):
            os.unlink(act.stats_path)
    assert 1.0 <= elapsed < 1.8, elapsed
    assert slow.act("TestVenue/Idle").state == "stopped"
    assert slow.act("TestVenue/Busy").state == "running" and slow.act("TestVenue/Busy").rps == 0


def test_status_table_watch_and_stats_commands(production, venue):
    act = venue.new_act("Shown", processes=1)
    venue.new_act("Resting", start=False)
    home = production.home

    table = cli("status", home=home).stdout.splitlines()
    assert "Emperor pid" in table[0]
    assert table[1].startswith("Router 127.0.0.1:") and "0 of 0 Gigs live" in table[1]
    header = table[2].split()
    assert header[:5] == ["ACT", "STATE", "PID", "PORT", "WRK"] and "RPS" in header
    shown = next(line for line in table if line.startswith("TestVenue/Shown")).split()
    # busy/running/most: one worker, and "+" on the FIFO up to twice that
    assert shown[1:5] == ["running", str(act.sess.pid), str(act.port), "0/1/2"]
    assert next(line for line in table if line.startswith("TestVenue/Resting")).split()[1] == (
        "stopped"
    )
    assert "\x1b[" not in "".join(table)  # no colour into a pipe

    data = json.loads(cli("status", "--json", home=home).stdout)
    row = next(row for row in data["acts"] if row["act"] == "Shown")
    assert row["state"] == "running" and row["busy"] + row["idle"] == row["workers"] == 1
    assert row["rps"] is None and row["listen_queue"] == 0  # one reading: no rate yet

    watch = subprocess.Popen(
        [sys.executable, "-m", "backstage", "status", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, BACKSTAGE_HOME=home),
        # Ctrl-C as a terminal gives it, even where this suite was started in the
        # background with SIGINT ignored (which a child inherits, Python then with it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        headers = 0
        while headers < 2:  # a second table, with rates
            line = watch.stdout.readline()
            assert line, "status --watch ended by itself"
            headers += line.startswith("ACT ")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
    finally:
        watch.kill()
        watch.wait()

    raw = json.loads(cli("stats", "TestVenue/Shown", home=home).stdout)
    live = [w["pid"] for w in raw["workers"] if w["pid"]]  # the rest are cheap slots
    assert live == [w.pid for w in act.sess.workers]
    assert cli("stats", "--path", "TestVenue/Shown", home=home).stdout.strip() == act.stats_path
    done = run_cli("stats", "TestVenue/Resting", home=home, check=False)
    assert done.returncode == 1 and "not running" in done.stderr
    done = run_cli("top", home=home, check=False)  # no terminal here: one clear line
    assert done.returncode == 1 and "terminal" in done.stderr and "Traceback" not in done.stderr


class Tmux:
    """A tmux server of our own (-L), so nothing touches the user's, killed at the end."""

    def __init__(self) -> None:
        self.server = f"bstop{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [TMUX, "-L", self.server, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def start(self, command: str, width: int, height: int) -> None:
        # The shell line keeps the pane after the program exits, to read its exit code.
        shell = f'{command}; echo "exited=$?"; sleep 600'
        self("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), shell)

    def screen(self, target: str = "t:0", *options: str) -> str:
        return self("capture-pane", "-p", "-t", target, *options)

    def wait_for(self, predicate, timeout: float = 30.0, target: str = "t:0", *options) -> str:
        def matched() -> str:
            shown = self.screen(target, *options)
            return shown if predicate(shown) else ""

        try:
            return poll(matched, timeout)
        except AssertionError:
            shown = self.screen(target)
            raise AssertionError(f"screen never matched; it shows:\n{shown}") from None

    def kill(self) -> None:
        socket_path = self("display", "-p", "#{socket_path}").strip()
        self("kill-server")
        if socket_path:  # kill-server leaves the socket file behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)


@pytest.fixture
def tmux():
    server = Tmux()
    yield server
    server.kill()


def row_of(screen: str, key: str) -> list[str]:
    return next((line.split() for line in screen.splitlines() if line.startswith(key)), [])


def test_top_under_tmux(production, venue, tmux):
    busy = venue.new_act("Busy", processes=2)
    other = venue.new_act("Other", processes=1)
    env = f"env PYTHONPATH={os.pathsep.join(sys.path)} BACKSTAGE_HOME={production.home}"
    tmux.start(f"{env} {sys.executable} -m backstage top --interval 0.5", 120, 30)

    screen = tmux.wait_for(lambda s: row_of(s, "TestVenue/Other")[1:2] == ["running"])
    assert row_of(screen, "TestVenue/Busy")[1:3] == ["running", str(busy.sess.pid)]

    # The stock uwsgitop on the path `backstage stats --path` prints shows the workers.
    path = cli("stats", "--path", "TestVenue/Busy", home=production.home).stdout.strip()
    tmux("new-window", "-d", "-t", "t:1", f"{UWSGITOP} {path}; sleep 600")
    pids = [str(w.pid) for w in busy.sess.workers]
    tmux.wait_for(lambda s: "WID" in s and all(pid in s for pid in pids), 15, "t:1")

    # `backstage status` on a terminal colours the states (-e keeps the escapes).
    tmux("new-window", "-d", "-t", "t:2", f"{env} {sys.executable} -m backstage status; sleep 600")
    green_running = "\x1b[32mrunning"
    tmux.wait_for(lambda s: green_running in s, 15, "t:2", "-e")

    # Enter opens Busy (the first row); c chain-reloads it: new worker pids on screen.
    tmux("send-keys", "-t", "t:0", "Enter")
    tmux.wait_for(lambda s: all(pid in s for pid in pids) and "STATUS" in s)
    tmux("send-keys", "-t", "t:0", "c")
    screen = tmux.wait_for(lambda s: "TestVenue/Busy: reload done" in s, 60)
    renewed = {str(w.pid) for w in busy.sess.workers}
    assert len(renewed) == 2 and not renewed & set(pids)
    tmux.wait_for(lambda s: all(pid in s for pid in renewed))

    # Back to the list; stop Busy after the confirmation.
    tmux("send-keys", "-t", "t:0", "Escape")
    tmux.wait_for(lambda s: "ACT" in s and "TestVenue/Other" in s)
    tmux("send-keys", "-t", "t:0", "x")
    tmux.wait_for(lambda s: "stop TestVenue/Busy?" in s)
    tmux("send-keys", "-t", "t:0", "y")
    tmux.wait_for(lambda s: row_of(s, "TestVenue/Busy")[1:2] == ["stopped"], 40)
    assert busy.state == "stopped" and http_get(busy.port, timeout=1)[0] == 0

    # A tiny window does not crash it, and it draws again when given room.
    tmux("resize-window", "-t", "t", "-x", "40", "-y", "10")
    tmux.wait_for(lambda s: max(map(len, s.splitlines())) <= 40 and "TestVenue/Other" in s)
    tmux("resize-window", "-t", "t", "-x", "120", "-y", "30")

    # The Emperor killed: it shows down or its Acts gone, then the Manager's new Emperor.
    emperor = production.stage.pid()
    os.kill(emperor, signal.SIGKILL)
    tmux.wait_for(
        lambda s: (
            f"Emperor pid {emperor}," not in s
            and "Emperor pid" in s
            and row_of(s, "TestVenue/Other")[1:2] == ["running"]
        ),
        60,
    )
    assert row_of(tmux.screen(), "TestVenue/Other")[2] == str(other.sess.pid)

    tmux("send-keys", "-t", "t:0", "q")
    tmux.wait_for(lambda s: "exited=" in s, 10)
    assert "exited=0" in tmux.screen()
