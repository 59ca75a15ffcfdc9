"""The master FIFO: single-byte commands to a running uWSGI master.

Written with O_WRONLY|O_NONBLOCK so that a FIFO nobody reads fails at once
(ENXIO) instead of blocking: that is how "not running" shows.
"""

from __future__ import annotations

import errno
import os

from .errors import FifoNotReading

#: The commands a master understands, and what each does.
COMMANDS: dict[str, str] = {
    "r": "graceful reload",
    "R": "brutal reload",
    "c": "chain reload (one worker at a time; zero downtime with lazy-apps)",
    "w": "graceful reload of the workers",
    "W": "brutal reload of the workers",
    "q": "graceful shutdown",
    "Q": "brutal shutdown",
    "+": "one worker more",
    "-": "one worker less",
    "p": "pause/resume the workers",
    "l": "reopen the log",
    "L": "rotate the log",
    "s": "print stats into the log",
    "S": "block/unblock subscriptions",
    "C": "go cheap until the next connection",
    **{str(slot): f"switch to FIFO slot {slot}" for slot in range(10)},
}


def encode(commands: str) -> bytes:
    """The bytes for `commands`, refusing any the master would silently ignore."""
    if not commands:
        raise ValueError("no FIFO command given")
    unknown = sorted(set(commands) - COMMANDS.keys())
    if unknown:
        raise ValueError(f"unknown FIFO command {''.join(unknown)!r}; known: {''.join(COMMANDS)}")
    return commands.encode("ascii")


def send(path: str, commands: str) -> None:
    data = encode(commands)
    try:
        # never through a link: the FIFO's folder may be a less trusted user's
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            raise FifoNotReading(f"no master reads {path}: the instance is not running") from exc
        raise
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
