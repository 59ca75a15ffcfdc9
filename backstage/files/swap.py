"""A symlink put where a folder or file is, in one step as whoever opens that path sees
it: a live app finds at every moment either what was there or the link, never nothing
and never a folder half removed.

A link replaces a file or another link by `os.replace` (rename(2) is atomic). A folder
cannot be renamed over, so the link made beside it is exchanged with it by renameat2(2)'s
RENAME_EXCHANGE (Linux 3.15, glibc 2.28), and the folder, now at the link's temporary
name, is removed after. Where the kernel, the file system or the C library cannot
exchange, the folder is renamed aside first: a window of one rename, not of a removal.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
from collections.abc import Callable

AT_FDCWD = -100
RENAME_EXCHANGE = 1 << 1
# what says "this kernel, file system or C library cannot exchange", not "this failed"
UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def exchange(first: str, second: str) -> bool:
    """Swap the two existing paths in one step; False where that is not supported."""
    call = _renameat2()
    if call is None:
        return False
    if call(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), first, None, second)


def put_link(target: str, path: str) -> None:
    """Make `path` a symlink to `target` in one step, whatever `path` was (a folder
    there is removed once the link has taken its place)."""
    temporary = path + ".link"
    _clear(temporary)  # one a step cut short left behind
    os.symlink(target, temporary)
    if os.path.isdir(path) and not os.path.islink(path):
        if not exchange(temporary, path):
            _clear(temporary + ".old")
            os.rename(path, temporary + ".old")
            os.replace(temporary, path)
            temporary += ".old"
        # the link is in place: what of the old folder a late writer holds open and
        # keeps is tidied the next time (`_clear`), not a failure of this step
        shutil.rmtree(temporary, ignore_errors=True)
    else:
        os.replace(temporary, path)


def _clear(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # a C library without it (musl before 1.2.5, not Linux)
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call
