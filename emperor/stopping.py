"""Stopping an Emperor's vassals, and then the Emperor, without uWSGI's one-second naps.

Where the time of a stop goes in uWSGI 2.0.31 when the Emperor is simply told to stop
(SIGINT), read from emperor.c and master*.c and measured at 3.2 s for a single vassal:

- The Emperor's stop loop (`on_royal_death`) looks whether each vassal was reaped,
  then sleeps a whole second, and exits on the pass after the one that found the last
  vassal gone: 2 s at the least, 3 s as soon as a vassal takes a second to go. With no
  vassal left it exits at once.
- A vassal master told to stop naps too. On a graceful stop (`q` on its FIFO, or the
  Emperor's graceful byte) it sends its workers SIGHUP, finds them still there, sleeps
  a second and looks again (`gracefully_kill_them_all`); on a brutal one it waits for
  its next event or its check interval (1 s, the least it takes: a whole number of
  seconds) before it reaps them; each attach-daemon it stops gets a second of its own
  (`uwsgi_detach_daemons`). Its SIGCHLD is left at the default, so a child's death
  does not wake it.

Every one of those naps ends early when a signal with a handler comes, and neither
handler used here does anything else at that moment: SIGINT to a master that is
already stopping returns at once (`kill_them_all`), and SIGWINCH only wakes the
Emperor (which rescans its monitors and reaps its dead vassals as it wakes). So a stop
withdraws each vassal through the channel (the Emperor marks it cursed and sends it
its stop byte; a cursed vassal that exits is not spawned again), wakes each master
once it has no live child left to wait for, and tells the Emperor to stop only once
it lists none of them: it then exits at once. A master whose child still lives is left
to its nap: a worker finishing its request, a daemon stopping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterable

from .channel import Channel, vassal_name
from .process import children, pid_alive, wait_for
from .stats import VassalEntry, parse_emperor_stats, stats_or_none

LOOK_EVERY = 0.01  # seconds between looks at the Emperor's stats while vassals go
NUDGE_EVERY = 0.05  # a process is woken at most this often: each wake interrupts a call
# A worker (re)spawned just before its master is told to stop (a chain reload under way,
# a restart) is still loading its app with its master's signal handlers, which take
# the master's SIGHUP for something else: it loads, then serves on and its master waits
# for it without end. Told again once it runs its own, it finishes its request and goes
TELL_AGAIN_AFTER = 0.5  # seconds a stopping master's workers have before they are told again
TELL_AGAIN_EVERY = 0.5


def napping(left: Iterable[VassalEntry], busy: Callable[[int], bool]) -> list[int]:
    """The masters among the vassals `left` that only nap: the Emperor cursed them (they
    are stopping, and will not be spawned again) and `busy` says no child of theirs
    lives. A master with no child and not yet stopping (its stop byte still unread)
    loses nothing by a brutal stop, which is what SIGINT then does."""
    return [v.pid for v in left if v.cursed and v.pid > 0 and not busy(v.pid)]


def has_live_child(pid: int) -> bool:
    return any(pid_alive(child) for child in children(pid) or ())


class Waker:
    """Wakes the stopping masters among the vassals it is shown, and the Emperor when one
    of them is gone but still listed, each at most every NUDGE_EVERY."""

    def __init__(self, emperor_pid: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.emperor_pid = emperor_pid
        self._clock = clock
        self._woken: dict[int, float] = {}
        self._first_seen: dict[int, float] = {}  # stopping master: when first shown

    def wake(self, pid: int, signum: int, every: float = NUDGE_EVERY) -> None:
        now = self._clock()
        if pid > 0 and now - self._woken.get(pid, float("-inf")) >= every:
            self._woken[pid] = now
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def look(self, left: Iterable[VassalEntry]) -> None:
        """`left`: the Emperor's entries of the vassals being stopped, still listed."""
        left = list(left)
        for pid in napping(left, has_live_child):
            self.wake(pid, signal.SIGINT)
        if any(v.pid <= 0 or not pid_alive(v.pid) for v in left):
            self.wake(self.emperor_pid, signal.SIGWINCH)  # to reap it now, not at its tick
        now = self._clock()
        for master in (v.pid for v in left if v.cursed and v.pid > 0):
            if now - self._first_seen.setdefault(master, now) >= TELL_AGAIN_AFTER:
                for worker in workers_of(master):
                    self.wake(worker, signal.SIGHUP, TELL_AGAIN_EVERY)


def workers_of(master: int) -> list[int]:
    """The live children of `master` named as uWSGI names its workers (`auto-procname`):
    not its attach-daemons, which SIGHUP could tell to reload."""
    found = []
    for child in children(master) or ():
        try:
            with open(f"/proc/{child}/cmdline", "rb") as raw:
                named = b" uWSGI worker " in raw.read()
        except OSError:
            continue
        if named and pid_alive(child):
            found.append(child)
    return found


def withdraw(
    channel: Channel,
    emperor_pid: int,
    stats_path: str,
    names: Collection[str],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Withdraw the vassals `names` (plain names) through `channel`, and wait until the
    Emperor lists none of them; False when some are still listed after `timeout`.
    True too when the Emperor stops answering: there is nothing left to wait for here."""
    wanted = set(names)
    for name in wanted:
        channel.destroy(name)
    waker = Waker(emperor_pid, clock)
    waker.wake(emperor_pid, signal.SIGWINCH)  # the directory monitor looks now, not at its tick

    def gone() -> bool:
        stats = stats_or_none(stats_path, parse_emperor_stats, 1.0)
        if stats is None:
            return True
        left = [v for v in stats.vassals if vassal_name(v.id) in wanted]
        waker.look(left)
        return not left

    return wait_for(gone, timeout, LOOK_EVERY)


class Hastener:
    """Wakes the masters of vassals withdrawn one at a time (a changed config, a stopped
    vassal) until the Emperor lists them no more, from a thread of its own: each naps up to
    a second before it reaps its workers, and the restart or the stop waits on it. Made
    by the process that withdraws; its thread runs only while something is watched."""

    WATCH_FOR = 10.0  # seconds a withdrawn vassal is watched at most
    LOOK_EVERY = 0.05  # an Emperor of a thousand vassals answers a long document

    def __init__(self, stats_path: str) -> None:
        self.stats_path = stats_path
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}  # plain name: watched until then
        self._thread: threading.Thread | None = None

    def add(self, name: str) -> None:
        with self._lock:
            self._until[name] = time.monotonic() + self.WATCH_FOR
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hastener", daemon=True)
                self._thread.start()

    def _watched(self) -> set[str]:
        """What is still watched; the thread ends, under the lock, when nothing is."""
        with self._lock:
            now = time.monotonic()
            self._until = {name: until for name, until in self._until.items() if until > now}
            if not self._until:
                self._thread = None
            return set(self._until)

    def _run(self) -> None:
        waker: Waker | None = None
        while watched := self._watched():
            stats = stats_or_none(self.stats_path, parse_emperor_stats, 1.0)
            if stats is not None:
                if waker is None or waker.emperor_pid != stats.pid:
                    waker = Waker(stats.pid)
                left = [v for v in stats.vassals if vassal_name(v.id) in watched]
                waker.look(left)
                gone = watched - {vassal_name(v.id) for v in left}
                with self._lock:
                    for name in gone:
                        self._until.pop(name, None)
            time.sleep(self.LOOK_EVERY)
