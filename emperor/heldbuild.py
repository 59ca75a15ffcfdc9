"""The vassal wrapper compiled (`heldwrap.c`): heldwrap.py without a Python started at
each vassal spawn, which was 15-25 ms of a 0.3 s start.

Built once per source and constants into a folder the Emperor runs it from, by the C
compiler uWSGI itself was built with (`pip install uwsgi` compiles, so one is usually
there). No compiler, or a failed build: None, and the Python wrapper does the same.
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


def build(folder: str) -> str | None:
    """The compiled wrapper in `folder`, built now unless this source with these
    constants is there already; None without a compiler or when the build fails."""
    cc = compiler()
    if cc is None:
        return None
    with open(SOURCE, "rb") as source:
        digest = hashlib.sha256(source.read() + " ".join(flags()).encode()).hexdigest()[:16]
    target = os.path.join(folder, PREFIX + digest)
    if os.access(target, os.X_OK):
        return target
    building = f"{target}.{os.getpid()}.tmp"
    command = [cc, "-O2", "-std=gnu99", *flags(), "-o", building, SOURCE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_FOR)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("the compiled vassal wrapper is not built (%s): the Python one runs", exc)
        _remove(building)
        return None
    if done.returncode != 0:
        log.info("the compiled vassal wrapper is not built: %s", done.stderr.strip()[-500:])
        _remove(building)
        return None
    os.replace(building, target)
    for name in os.listdir(folder):  # builds of an older source
        path = os.path.join(folder, name)
        if name.startswith(PREFIX) and not name.endswith(".tmp") and path != target:
            _remove(path)
    return target


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
