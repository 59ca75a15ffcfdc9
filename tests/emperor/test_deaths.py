"""Deaths on real processes: a parent, its children (one born after the watch began),
and another pid; each death told once, with pidfds and with the /proc fallback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from emperor.deaths import Deaths
from tests.helpers import poll

# reaps its children at once, as an Emperor does; a second child when told, then waits
PARENT = """
import signal, subprocess, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
for _ in range(2):
    print(subprocess.Popen(["sleep", "300"]).pid, flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("pidfds", [True, False], ids=["pidfd", "proc"])
def test_each_death_is_told_once(pidfds):
    told: list[int] = []
    deaths = Deaths(told.append, refresh=0.2, fallback=0.05, pidfds=pidfds)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    other = subprocess.Popen(["sleep", "300"])
    assert parent.stdout is not None and parent.stdin is not None
    first = int(parent.stdout.readline())
    try:
        deaths.watch(parent.pid, (other.pid,))
        poll(lambda: first in _watching(deaths, pidfds), 5)
        os.kill(first, signal.SIGKILL)
        poll(lambda: told == [first], 5)

        parent.stdin.write("go\n")
        parent.stdin.flush()
        second = int(parent.stdout.readline())  # born after the watch began
        poll(lambda: second in _watching(deaths, pidfds), 5)
        os.kill(second, signal.SIGKILL)
        poll(lambda: told == [first, second], 5)

        os.kill(other.pid, signal.SIGKILL)
        other.wait()
        poll(lambda: told == [first, second, other.pid], 5)
        parent.kill()
        parent.wait()
        poll(lambda: parent.pid in told, 5)
        assert len(told) == len(set(told)), told
    finally:
        deaths.stop()
        for process in (parent, other):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


def _watching(deaths: Deaths, pidfds: bool) -> set[int]:
    return set(deaths._fds) if pidfds else set(deaths._known)
