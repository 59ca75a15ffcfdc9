"""Replacing a file in one step, and removing one that may be gone: what the Emperor's
directory channel and every caller above it write their files with."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping


def write_atomic(
    path: str,
    text: str,
    mode: int = 0o644,
    owner: tuple[int, int] | None = None,
    *,
    advance_mtime: bool = False,
    xattrs: Mapping[str, bytes] | None = None,
) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new.
    `owner` (uid, gid) is given to the new file before it takes the name: in a folder
    another user may write, a chown by name would follow a link they put there.
    `advance_mtime` pushes the mtime past the old file's: the Emperor compares whole
    seconds, and a config rewritten within one would not be reloaded. `xattrs` are set on
    the new file before it takes the name, where the file system keeps them (else none)."""
    directory = os.path.dirname(path) or "."
    previous = 0.0
    if advance_mtime:
        try:
            previous = os.stat(path).st_mtime
        except FileNotFoundError:
            pass
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")  # created 0600
    except OSError as exc:  # a read-only disk: name the file meant, not a temporary name
        raise OSError(exc.errno, exc.strerror, path) from exc
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        for name, value in (xattrs or {}).items():
            try:
                os.setxattr(fd, name, value)
            except OSError:
                pass  # not kept here (a file system without user xattrs): a hint only
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if advance_mtime:
            stamp = max(previous + 1.0, os.stat(tmp).st_mtime)
            os.utime(tmp, (stamp, stamp))
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
