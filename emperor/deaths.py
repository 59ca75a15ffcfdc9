"""Being told at once when a process, or one of its children, exits: no polling.

`Deaths` watches one parent (an Emperor) and its children (its vassal masters), plus
any other pids it is given, through one pidfd each (Linux 5.3+), which a thread waits
on in poll(2): a death wakes it, and it calls `on_death(pid)`. The parent's children
are listed again (one read of /proc, however many) only every `refresh` seconds, to
watch those born meanwhile; a process that is born and dies between two listings is
not seen. Where pidfds are missing, the children listing is read every `fallback`
seconds instead: a pid gone from it counts as a death, and the other pids are looked
up one by one.

Each pid is told of once; `watch()` replaces what is watched.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable, Iterable

from .process import children, pid_alive

REFRESH = 1.0  # seconds between two listings of the parent's children
FALLBACK = 0.1  # the same, where no pidfd can be opened


def _pidfd(pid: int) -> int | None:
    """A pidfd of `pid`; None when it is gone already; OSError when pidfds are missing."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


class Deaths:
    def __init__(
        self,
        on_death: Callable[[int], object],
        refresh: float = REFRESH,
        fallback: float = FALLBACK,
        pidfds: bool = True,
    ) -> None:
        self._on_death = on_death
        self._refresh = refresh
        self._fallback = fallback
        self._lock = threading.Lock()
        self._parent: int | None = None
        self._wanted: set[int] = set()  # the other pids to watch
        self._fds: dict[int, int] = {}  # pid to its pidfd; owned by the thread
        self._known: set[int] = set()  # the pids watched or told of
        self._told: set[int] = set()  # each death is told once
        self._pidfds = pidfds and hasattr(os, "pidfd_open")
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._changed = True
        self._stopping = False
        self._thread: threading.Thread | None = None

    def watch(self, parent: int | None, others: Iterable[int] = ()) -> None:
        """From now on: `parent` (None: none), its children, and `others`."""
        with self._lock:
            self._parent = parent
            self._wanted = {pid for pid in others if pid > 0}
            self._changed = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="deaths", daemon=True)
            self._thread.start()
        self._wake()

    def stop(self) -> None:
        self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (*self._fds.values(), self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        while not self._stopping:
            self._update(poller)
            timeout = self._refresh if self._pidfds else self._fallback
            for fd, _ in poller.poll(timeout * 1000):
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                pid = next((p for p, f in self._fds.items() if f == fd), None)
                if pid is not None:
                    self._forget(poller, pid)
                    self._died(pid)

    def _update(self, poller: select.poll) -> None:
        """Open a pidfd for each pid now wanted and not yet known; close the others."""
        with self._lock:
            parent, wanted, changed = self._parent, set(self._wanted), self._changed
            self._changed = False
        if changed:  # what died before is forgotten: a pid may come again
            self._known = set(self._fds)
            self._told.clear()
        current: set[int] = set()
        if parent is not None:
            listed = children(parent)
            if listed is None:  # the parent is gone
                self._forget(poller, parent)
                self._died(parent)
                return
            current = {parent} | set(listed)
        current |= wanted
        if not self._pidfds:
            for pid in self._known - current:
                if pid != parent and pid not in wanted:
                    self._died(pid)
            for pid in wanted:
                if not pid_alive(pid):
                    self._died(pid)
            self._known = current
            return
        for pid in set(self._fds) - current:
            if changed:  # no longer wanted (a death is seen by its pidfd, not here)
                self._forget(poller, pid)
        for pid in current - set(self._fds) - self._known:
            try:
                fd = _pidfd(pid)
            except OSError:  # no pidfds here: list the children instead
                self._pidfds = False
                self._known |= current
                return
            self._known.add(pid)
            if fd is None:
                self._died(pid)
                continue
            self._fds[pid] = fd
            poller.register(fd, select.POLLIN)

    def _forget(self, poller: select.poll, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                poller.unregister(fd)
            os.close(fd)

    def _died(self, pid: int) -> None:
        if pid not in self._told:
            self._told.add(pid)
            self._on_death(pid)
