"""What changed in some folders and files since last asked, told by the kernel (inotify(7)).

A reader that keeps what it read of thousands of files (a `top` feed taking a Snapshot
a second) asks here which of them changed rather than stat each one each time. The
kernel queues an event inside the write, rename or unlink itself, so what `changed()`
drains holds every change made before the call: a change is never seen late, as it
could be through another process (the Manager's watcher) or a thread.

Read without blocking and without a thread; the file descriptor is this process's
alone (a forked child starts a watcher of its own rather than steal these events).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
import time

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

# every change to a name in the folder or to the file behind it; no opens, reads or
# closes without a write (every reader's would come back here)
CHANGES = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
# the folder itself went (deleted, moved, unmounted): what was under it is unknown
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def parse(data: bytes) -> list[tuple[int, int, str]]:
    """The events of `data` (what read(2) of an inotify descriptor returned) as (watch
    descriptor, mask, name)."""
    events, at = [], 0
    while at + _EVENT.size <= len(data):
        wd, mask, _cookie, size = _EVENT.unpack_from(data, at)
        at += _EVENT.size
        name = data[at : at + size].rstrip(b"\0").decode("utf-8", "surrogateescape")
        at += size
        events.append((wd, mask, name))
    return events


class Folders:
    """Watched folders, and what changed in them since the last `changed()`."""

    def __init__(self) -> None:
        self._fd = -1
        self._pid = 0
        self._by_wd: dict[int, str] = {}
        self._by_path: dict[str, int] = {}
        self._files: set[int] = set()  # the watches of files, not folders

    def _open(self) -> bool:
        if self._fd >= 0 and self._pid == os.getpid():
            return True
        # a fork's copy of the parent's descriptor would read the parent's events
        # away: start anew (the parent's is left to the parent)
        self._by_wd.clear()
        self._by_path.clear()
        self._files.clear()
        self._fd = _libc().inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        self._pid = os.getpid()
        return self._fd >= 0

    def watch(self, path: str, folder: bool = True) -> bool:
        """Watch the folder (or with `folder` False, the file) at `path` now (asked
        again after it was replaced: the new one); False when the kernel will not (no
        such folder, no inotify, out of watches): then nothing is told of it.

        A file's own watch hears a write through any of its links; its folder's hears
        only the writes through the name in it."""
        if not self._open():
            return False
        mask = CHANGES | IN_ONLYDIR if folder else CHANGES
        wd = _libc().inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd < 0:
            return False
        self._by_wd[wd] = path
        self._by_path[path] = wd
        if not folder:
            self._files.add(wd)
        return True

    def fileno(self) -> int:
        """The descriptor that turns readable when something changed; -1 without one."""
        return self._fd if self._pid == os.getpid() else -1

    def close(self) -> None:
        """Stop watching: the descriptor is closed (a later `watch` opens a new one)."""
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = -1

    def changed(self) -> set[str] | None:
        """The paths changed since the last call (FOLDER/NAME for a name in a watched
        folder), or None when anything may have changed: the kernel lost count (its
        queue overflowed), a watched folder itself went, or there is no watcher."""
        if not self._open():
            return None
        paths: set[str] = set()
        lost = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return None
            for wd, mask, name in parse(data):
                path = self._by_wd.get(wd)
                if mask & IN_Q_OVERFLOW:
                    lost = True
                if path is None:
                    continue
                if name:
                    paths.add(f"{path}/{name}")
                elif wd in self._files:
                    paths.add(path)  # the file itself: written, linked, gone
                elif mask & GONE:
                    lost = True
                if mask & IN_IGNORED:  # the kernel dropped the watch: watch it again
                    del self._by_wd[wd]
                    self._files.discard(wd)
                    if self._by_path.get(path) == wd:
                        del self._by_path[path]
        return None if lost else paths


class Written:
    """A wake-up for whoever waits on what a process writes to one file (a vassal's
    worker logs that its app is loaded just before it takes requests): `wait` returns
    when the file is written, or at its timeout, whichever is first. The file's own
    watch when it exists, else its folder's (any name in it wakes too); without
    inotify, `wait` only sleeps. Owns a descriptor of its own: `close` it (it closes
    in the background)."""

    def __init__(self, path: str) -> None:
        self._folders = Folders()
        if not (os.path.isfile(path) and self._folders.watch(path, folder=False)):
            self._folders.watch(os.path.dirname(path) or ".")
        self._poll: select.poll | None = None
        if self._folders.fileno() >= 0:
            self._poll = select.poll()
            self._poll.register(self._folders.fileno(), select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """Block until the file is written or `timeout` seconds pass; whether it was."""
        if self._poll is None:
            time.sleep(max(0.0, timeout))
            return False
        if not self._poll.poll(max(0.0, timeout) * 1000):
            return False
        self._folders.changed()  # drained: the next wait waits for the next write
        return True

    def close(self) -> None:
        # Closing an inotify descriptor waits for the kernel's grace period (16-20 ms
        # measured here, asleep): in a thread, not in the caller's time
        threading.Thread(target=self._folders.close, daemon=True).start()

    def __enter__(self) -> Written:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_lib: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(None, use_errno=True)
    return _lib
