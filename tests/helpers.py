"""Helpers the tests share: HTTP with a Host header, polling with a deadline,
and finding the processes a Production left behind."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable


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


def processes_of(*homes: str) -> list[int]:
    """Pids of the live processes of these Productions: the Manager and the Emperor
    carry BACKSTAGE_HOME in their environment; vassals rename themselves after the
    Production's prefix, which also overwrites what /proc shows of their environment."""
    from backstage import Production

    env_needles = [f"BACKSTAGE_HOME={home}".encode() for home in homes]
    name_needles = [Production(home).prefix.encode() + b" " for home in homes]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                name = cmdline.read()
            with open(f"/proc/{entry}/environ", "rb") as environ:
                env = environ.read().split(b"\0")
        except OSError:
            continue
        if any(name.startswith(n) for n in name_needles) or any(
            var.startswith(needle) for var in env for needle in env_needles
        ):
            found.append(int(entry))
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
