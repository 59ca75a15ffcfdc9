"""The warm check: a process per Act that keeps the app imported from one check to the
next, and forks each run of the check and the release steps (`backstage/scripts/
warmcheck.py` says how, and when it refuses to).

A cold run starts the Venue's Python and imports the app: most of a large app's reload
(a Wagtail site: seconds). Through this process a version that changed no module, no file
its import read and no file name (a template edited) is checked and its steps run without
that import, and still on the version's own files: the modules kept are, file for file,
the ones a fresh import of that version would make. Anything else and the process says it
is stale: another starts, and that run is cold.

Its socket and pidfile are in the Production's `run/`; `down` ends them all
(`stop_all`), an Act's removal its own, and each ends by itself once idle.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from emperor.process import pid_alive, wait_for

from ... import scripts

log = logging.getLogger(__name__)

# The scripts a Venue's Python runs by path (standard library only).
SCRIPTS = os.path.dirname(os.path.abspath(scripts.__file__))
WARMCHECK = os.path.join(SCRIPTS, "warmcheck.py")
PID_SUFFIX = ".pid"
STARTING = 10.0  # for its process to listen, or to answer a request
ENDING = 10.0  # for the end of a run whose output ended


@dataclass(frozen=True)
class WarmSpot:
    """Where an Act's warm check listens, and the folder of the version it checks (the
    same path for every version: `releases.staging`)."""

    socket: str
    version: str


def key(python: str, cwd: str, env: Mapping[str, str], version: str) -> str:
    """What a warm process is started for: another of these, another process."""
    scripts = [
        os.stat(os.path.join(SCRIPTS, n)).st_mtime_ns for n in ("appcheck.py", "warmcheck.py")
    ]
    text = json.dumps([python, cwd, sorted(env.items()), version, scripts])
    return hashlib.sha256(text.encode()).hexdigest()


class WarmRun:
    """One run (the check and the steps) in a fork of the warm process, seen as a
    process: its output on `stdout_fd`, `stdin` to write to, its pid to kill."""

    def __init__(self, conn: socket.socket, stdout_fd: int, stdin_fd: int | None) -> None:
        self._conn = conn
        self.stdout_fd = stdout_fd
        self.stdin = os.fdopen(stdin_fd, "wb", buffering=0) if stdin_fd is not None else None
        self.pid = 0
        self.returncode: int | None = None

    def _receive(self, timeout: float) -> bool:
        """Take the next answer within `timeout`; False when none came."""
        ready, _, _ = select.select([self._conn], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            data = json.loads(self._conn.recv(65536) or b"null")
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            self.returncode = -signal.SIGKILL if self.returncode is None else self.returncode
            return True
        if isinstance(data.get("pid"), int):
            self.pid = data["pid"]
        if isinstance(data.get("exit"), int):
            self.returncode = data["exit"]
        return True

    def first(self) -> str:
        """The first answer: "" once it runs, else why the process did not take it."""
        ready, _, _ = select.select([self._conn], [], [], STARTING)
        if not ready:
            return "it did not answer"
        try:
            data = json.loads(self._conn.recv(65536) or b"null")
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            return "it ended"
        if "stale" in data:
            return str(data["stale"])
        if isinstance(data.get("pid"), int):
            self.pid = data["pid"]
            return ""
        return "it answered nonsense"

    def kill(self) -> None:
        while self.returncode is None and self._receive(0):
            pass
        if self.returncode is None and self.pid:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        deadline = time.monotonic() + ENDING
        while self.returncode is None and time.monotonic() < deadline:
            self._receive(deadline - time.monotonic())
        if self.returncode is None:
            self.kill()
            self.returncode = -signal.SIGKILL
        return self.returncode

    def close(self) -> None:
        if self.stdin is not None:
            with contextlib.suppress(OSError):
                self.stdin.close()
        with contextlib.suppress(OSError):
            os.close(self.stdout_fd)
        self._conn.close()


def start(
    spot: WarmSpot,
    python: str,
    cwd: str,
    env: Mapping[str, str],
    command: Mapping[str, object],
    stdin: bool,
) -> WarmRun | None:
    """The run of `command` through the Act's warm process, started when none listens or
    it is stale; None when no warm process takes it (the caller runs it cold)."""
    wanted = key(python, cwd, env, spot.version)
    for _ in range(2):
        conn = _connect(spot.socket)
        if conn is None:
            if not _spawn(spot, python, cwd, env, wanted):
                return None
            conn = _connect(spot.socket, STARTING)
            if conn is None:
                stop(spot.socket)
                return None
        run = _request(conn, wanted, command, stdin)
        if run is None:
            stop(spot.socket)
            continue
        why = run.first()
        if not why:
            return run
        log.info("the warm check at %s starts anew: %s", spot.socket, why)
        run.close()
        stop(spot.socket)
    return None


def _connect(path: str, timeout: float = 0.0) -> socket.socket | None:
    deadline = time.monotonic() + timeout
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(path)
            return conn
        except OSError:
            conn.close()
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _request(
    conn: socket.socket, wanted: str, command: Mapping[str, object], stdin: bool
) -> WarmRun | None:
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), None)
    message = json.dumps({"key": wanted, "command": dict(command)}).encode()
    try:
        socket.send_fds(conn, [message], [in_r, out_w])
    except OSError:
        for fd in (out_r, in_w):
            if fd is not None:
                os.close(fd)
        conn.close()
        return None
    finally:
        os.close(in_r)
        os.close(out_w)
    return WarmRun(conn, out_r, in_w)


def _spawn(spot: WarmSpot, python: str, cwd: str, env: Mapping[str, str], wanted: str) -> bool:
    """Start the warm process (it detaches itself and writes its pidfile)."""
    stop(spot.socket)
    try:
        done = subprocess.run(
            [python, WARMCHECK, spot.socket, wanted, spot.version],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=STARTING,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def stop(path: str) -> None:
    """End the warm process listening at `path`, if any, and what it forked meanwhile."""
    pidfile = path + PID_SUFFIX
    try:
        with open(pidfile) as kept:
            pid = int(kept.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid > 0:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 5.0)
    for stale in (pidfile, path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)


def stop_all(run_dir: str) -> None:
    for pidfile in glob.glob(os.path.join(glob.escape(run_dir), "*.check" + PID_SUFFIX)):
        stop(pidfile[: -len(PID_SUFFIX)])
