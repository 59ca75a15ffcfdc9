"""Small file operations every layer above needs: atomic writes and quiet removal (from
`emperor.atomic`, which the Emperor's directory channel writes with too), and reading a
log from an offset (what start failures and `logs -f` read)."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from typing import BinaryIO

from emperor.atomic import unlink_if_present, write_atomic

__all__ = [
    "LogFollower",
    "holds",
    "lock_held",
    "log_backups",
    "prune_log_backups",
    "read_from",
    "rotate_in_place",
    "size_of",
    "tail_across",
    "unlink_if_present",
    "write_atomic",
    "write_if_changed",
]


# What write_if_changed last made each file hold in this process (a hash of its text),
# noted before the write: the Manager's watcher tells its own writes of a run file,
# which it ignores, from another's (a hand edit), which a pass puts right.
_kept: dict[str, int] = {}


def holds_as_kept(path: str) -> bool:
    """`path` holds what write_if_changed last made it hold (or found it holding) in
    this process; False for a file it never wrote, or one it cannot read."""
    expected = _kept.get(path)
    if expected is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with open(fd, encoding="utf-8", errors="replace") as current:
        return hash(current.read()) == expected


def write_if_changed(
    path: str, text: str, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> bool:
    """Replace `path` with `text` atomically unless it holds that already, with that
    `mode` and `owner`; True when it was written. The run files the Manager keeps
    current each pass, without churn."""
    _kept[path] = hash(text)
    if holds(path, text, owner):
        return False
    write_atomic(path, text, mode, owner)
    return True


def holds(path: str, text: str, owner: tuple[int, int] | None = None) -> bool:
    """`path` is a file holding `text`, of `owner` when given (read, nothing written)."""
    # Neither a link nor a FIFO someone put in its place is followed or waited on.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with open(fd, encoding="utf-8", errors="replace") as current:
        st = os.fstat(fd)
        mine = owner is None or (st.st_uid, st.st_gid) == owner
        return stat.S_ISREG(st.st_mode) and mine and current.read() == text


def size_of(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_from(path: str, offset: int, limit: int = 256 * 1024) -> tuple[str, int]:
    """What a log holds past `offset` (its last `limit` bytes at most), and the offset to
    read from next. A log smaller than `offset` was rotated or truncated: read it whole."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            if size < offset:
                offset = 0
            log.seek(max(offset, size - limit))
            return log.read().decode(errors="replace"), size
    except OSError:
        return "", offset


def log_backups(path: str, listings: dict[str, list[str]] | None = None) -> list[str]:
    """The rotated copies of a log, oldest first: uWSGI renames it to `LOG.<unixtime>`.
    `listings` keeps each folder's listing for the next log asked about: the logs of a
    thousand Acts share one folder, which would otherwise be listed a thousand times."""
    folder, name = os.path.split(path)
    entries = listings.get(folder) if listings is not None else None
    if entries is None:
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            return []
        if listings is not None:
            listings[folder] = entries
    stamped = [
        (int(entry[len(name) + 1 :]), entry)
        for entry in entries
        if entry.startswith(name + ".") and entry[len(name) + 1 :].isdigit()
    ]
    return [os.path.join(folder, entry) for _, entry in sorted(stamped)]


def prune_log_backups(
    path: str, keep: int, listings: dict[str, list[str]] | None = None
) -> list[str]:
    """Remove all but the newest `keep` rotated copies of a log (uWSGI keeps them all);
    the ones removed. `listings`: as for `log_backups`."""
    backups = log_backups(path, listings)
    gone = backups[: max(0, len(backups) - keep)]
    for backup in gone:
        unlink_if_present(backup)
    return gone


def rotate_in_place(path: str, max_bytes: int, now: float) -> str | None:
    """Rotate a log its writers never reopen (the Emperor's output, the Manager's): past
    `max_bytes`, copy it to `LOG.<unixtime>`, as uWSGI names the logs it rotates, then
    empty it where it is; a writer that opened it with O_APPEND goes on at its new end.
    A line written between the copy and the emptying (a moment) is lost. The copy's
    path, or None when the log is small, or was rotated within the second."""
    if max_bytes <= 0 or size_of(path) <= max_bytes:
        return None
    backup = f"{path}.{int(now)}"
    try:
        out = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    except FileExistsError:
        return None
    with open(path, "rb") as log, os.fdopen(out, "wb") as copy:
        shutil.copyfileobj(log, copy, 1024 * 1024)
        os.truncate(path, 0)
    return backup


def tail_across(path: str, lines: int) -> str:
    """The last `lines` lines of a log and, when it was just rotated and holds fewer, of
    its newest rotated copy before it."""
    if lines <= 0:
        return ""
    text = _last_bytes(path)
    backups = log_backups(path)
    if text.count("\n") < lines and backups:
        text = _last_bytes(backups[-1]) + text
    return "\n".join(text.splitlines()[-lines:])


def _last_bytes(path: str, size: int = 64 * 1024) -> str:
    try:
        with open(path, "rb") as log:
            end = log.seek(0, os.SEEK_END)
            log.seek(max(0, end - size))
            data = log.read()
    except OSError:
        return ""
    text = data.decode(errors="replace")
    return text if not text or text.endswith("\n") else text + "\n"


class LogFollower:
    """What is appended to a log from now on, across rotations: the file it holds open
    is read to its end before the new one at the same path is followed from its start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = self._open()
        if self._file is not None:
            self._file.seek(0, os.SEEK_END)

    def _open(self) -> BinaryIO | None:
        try:
            return open(self.path, "rb")  # noqa: SIM115 (held across reads)
        except OSError:
            return None

    def read(self) -> str:
        chunks = []
        if self._file is not None:
            chunks.append(self._file.read())
        try:
            current = os.stat(self.path).st_ino
        except OSError:
            current = None
        held = os.fstat(self._file.fileno()).st_ino if self._file is not None else None
        if current is not None and current != held:
            if self._file is not None:
                chunks.append(self._file.read())
                self._file.close()
            self._file = self._open()
            if self._file is not None:
                chunks.append(self._file.read())
        return b"".join(chunks).decode(errors="replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def lock_held(path: str) -> bool:
    """Whether a process holds the exclusive lock on `path` (a lock dies with its process)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may just have taken
    return False
