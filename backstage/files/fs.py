"""Small file operations every layer above needs: atomic writes, quiet removal, and
reading a log from an offset (what start failures and `logs -f` read)."""

from __future__ import annotations

import fcntl
import os
import tempfile


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new."""
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")  # created 0600
    except OSError as exc:  # a read-only disk: name the file meant, not a temporary name
        raise OSError(exc.errno, exc.strerror, path) from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        unlink_if_present(tmp)
        if exc.filename is None:  # a full disk fails the write, which names no file
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    except BaseException:
        unlink_if_present(tmp)
        raise


def unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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
