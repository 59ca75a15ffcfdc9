"""Helpers the tests share: HTTP with a Host header, polling with a deadline,
and finding the processes a Production left behind."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

# A long case on both channels: its dir channel variant runs with the slow ones (-m slow)
dir_channel_slow = pytest.mark.parametrize(
    "channel", ["zmq", pytest.param("dir", marks=pytest.mark.slow)], indirect=True
)


def http_get(port: int, path: str = "/", host: str = "localhost", timeout: float = 5.0):
    """(status, body) of a GET to 127.0.0.1:port; status 0 when nothing answered."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError:
        return 0, ""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05):
    """The first truthy value of `predicate()`, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


def started_processes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of each process this one starts through subprocess from now on, until
    `monkeypatch` is undone."""
    started: list[list[str]] = []

    class Counted(subprocess.Popen):
        def __init__(self, args, *rest, **options):
            started.append([str(args)] if isinstance(args, str | bytes) else [str(a) for a in args])
            super().__init__(args, *rest, **options)

    monkeypatch.setattr(subprocess, "Popen", Counted)
    return started


def processes_of(*homes: str) -> list[int]:
    """Pids of the live processes of these Productions: the Manager and the Emperor
    carry BACKSTAGE_HOME in their environment; vassals rename themselves after the
    Production's prefix, which also overwrites what /proc shows of their environment."""
    from backstage import Production
    from emperor.process import pid_alive, pids_named

    found = {pid for home in homes for pid in pids_named(Production(home).prefix + " ")}
    needles = [f"BACKSTAGE_HOME={home}".encode() for home in homes]
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                env = environ.read().split(b"\0")
        except OSError:
            continue
        if any(var.startswith(n) for var in env for n in needles) and pid_alive(int(entry)):
            found.add(int(entry))
    found.discard(os.getpid())
    return sorted(found)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def render_vassal(act) -> str:
    """The vassal config the Production Manager would push for `act` now."""
    crew = act.production.crew
    return crew.stageset.vassal(crew.layout, act.ref, act.spec)


def render_gigs(act) -> str:
    """The subscriptions file the Booking Manager would write for `act` now."""
    crew = act.production.crew
    router = crew.router
    return crew.stageset.gigs(crew.layout, act.ref, act.spec, router.address, router.vassal_sign)


class RequestLoop:
    """GETs of `path` on 127.0.0.1:`port` one after another in a thread, bounded in count
    and time: what was served (when, body) and what failed (status, body)."""

    def __init__(self, port: int, path: str = "/", limit: int = 6000, seconds: float = 150):
        self.port, self.path, self.limit, self.seconds = port, path, limit, seconds
        self.served: list[tuple[float, str]] = []
        self.failed: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            if len(self.served) + len(self.failed) >= self.limit:
                break
            status, body = http_get(self.port, self.path, timeout=5)
            if status == 200:
                self.served.append((time.monotonic(), body))
            else:
                self.failed.append((status, body))
            time.sleep(0.01)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def bodies(self) -> list[str]:
        return [body for _, body in self.served]

    def serves(self, text: str, timeout: float = 30, since: float = 0.0) -> float:
        """When `text` was first served after `since`, once it is what is served."""
        poll(lambda: self.served and self.served[-1][1] == text, timeout=timeout)
        return next(at for at, body in self.served if body == text and at >= since)


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process has listening sockets of, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


BASH_BLOCK = re.compile(r"```bash\n(?P<code>.*?)```", re.S)


def bash_blocks(path: str) -> list[tuple[int, str]]:
    """(first line, code) of every bash block of a Markdown file."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return [
        (text.count("\n", 0, match.start("code")) + 1, match["code"])
        for match in BASH_BLOCK.finditer(text)
    ]


def backstage_commands(line: str) -> list[list[str]]:
    """The argv of each `backstage` command in one shell line (in a pipe, after `&&`,
    inside `$(...)`), comments and redirections left out."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[list[str]] = []
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token in {"$", "$("} or token[0] in "();<>|&":
            if words[:1] == ["backstage"]:
                found.append(words)
            words = [] if token[0] != ">" else ["redirected"]
        else:
            words.append(token.removeprefix("$("))
    return found
