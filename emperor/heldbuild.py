"""The vassal wrapper compiled (`heldwrap.c`): heldwrap.py without a Python started at
each vassal spawn, which was 15-25 ms of a 0.3 s start.

Built once per source and constants by the C compiler uWSGI itself was built with (`pip
install uwsgi` compiles, so one is usually there), into the user's cache (0.1-0.3 s of
CPU; once per cache folder), and copied into the folder the Emperor
runs it from. No compiler, or a failed build: None, and the Python wrapper does the same.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess

from .heldwire import ASK_FOR, FD_BASE, HELD_ENV, MAGIC, MAX_FDS

log = logging.getLogger(__name__)

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "heldwrap.c")
PREFIX = "heldwrap-"
BUILD_FOR = 60.0  # seconds


def flags() -> list[str]:
    """heldwire's constants for the C source: the wire is written down once."""
    return [
        f"-DFD_BASE={FD_BASE}",
        f'-DHELD_ENV="{HELD_ENV}"',
        f'-DMAGIC="{MAGIC.decode()}"',
        f"-DMAX_FDS={MAX_FDS}",
        f"-DASK_FOR={ASK_FOR}",
    ]


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def user_cache(name: str) -> str:
    """The user's cache folder `name` (XDG_CACHE_HOME, else ~/.cache)."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, name)


def build(folder: str, cache: str) -> str | None:
    """The compiled wrapper in `folder`, there already, copied from the folder `cache`
    (built there once), or built now; None without a compiler or when the build fails."""
    with open(SOURCE, "rb") as source:
        digest = hashlib.sha256(source.read() + " ".join(flags()).encode()).hexdigest()[:16]
    name = PREFIX + digest
    target = os.path.join(folder, name)
    if os.access(target, os.X_OK):
        return target
    cached = os.path.join(cache, name)
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
    except OSError:
        pass
    # a cache another user may write is never run from: built where it runs
    usable = _ours(cache)
    if usable and (_ours(cached) or _compile(cached)):
        _copy(cached, target)
    elif not _compile(target):
        return None
    for other in os.listdir(folder):  # builds of an older source
        path = os.path.join(folder, other)
        if other.startswith(PREFIX) and not other.endswith(".tmp") and path != target:
            _remove(path)
    return target


def _ours(path: str) -> bool:
    """`path` is there, this user's, and no one else may write it."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _compile(target: str) -> bool:
    cc = compiler()
    if cc is None:
        return False
    building = f"{target}.{os.getpid()}.tmp"
    command = [cc, "-O2", "-std=gnu99", *flags(), "-o", building, SOURCE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_FOR)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("the compiled vassal wrapper is not built (%s): the Python one runs", exc)
        _remove(building)
        return False
    if done.returncode != 0:
        log.info("the compiled vassal wrapper is not built: %s", done.stderr.strip()[-500:])
        _remove(building)
        return False
    os.replace(building, target)
    return True


def _copy(origin: str, target: str) -> None:
    copying = f"{target}.{os.getpid()}.tmp"
    try:
        shutil.copyfile(origin, copying)
        os.chmod(copying, 0o700)
        os.replace(copying, target)
    finally:
        _remove(copying)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
