"""Listening sockets held outside the vassals, so a crash costs latency, not requests:
the wire. Stdlib only and no more: the wrapper imports it at every vassal spawn.

A vassal's master binds its sockets; kill it -9 and, until the next one binds them
again, every connection is refused. A socket that a small process of its own holds
(the holder, `emperor.holder`) outlives the master, the Emperor and the router: the
kernel queues connections in its backlog until a new master accepts them.

How a vassal gets them: the Emperor runs every vassal through a wrapper
(`--emperor-wrapper`, `heldwrap.py`), which asks the holder for the sockets of that
vassal by its name, puts them at fds FD_BASE, FD_BASE+1, ... in the order the
vassal's held file lists them, sets HELD_ENV and execs uwsgi. The vassal's config
then says `http-socket = fd://FD_BASE` (within `if-env = HELD_ENV`): uWSGI takes the
socket as it is, protocol and all, and keeps it through its own reloads. Without the
holder nothing is passed and the config binds as before.

A vassal gets its own sockets only: each held file (`DIR/NAME.json`, written by
whoever pushes the vassal, in a folder only it and the Emperor may read) names the
addresses of one vassal.

The wire, on the holder's unix stream socket (one request a connection):
    request  "get NAME\\n"   reply  b"held" + u32 count, the fds as SCM_RIGHTS
    request  "list\\n"       reply  JSON list of the addresses held, then EOF
"""

from __future__ import annotations

import _socket  # not `socket`: with what it imports, a third of the wrapper's start
import os
import struct  # not `array`, which imports `collections`: 4 ms of the wrapper's 15

FD = struct.Struct("i")  # one fd in SCM_RIGHTS

FD_BASE = 60  # the first fd a held socket is put at: far above what the Emperor passes
HELD_ENV = "UWSGI_HELD_SOCKETS"  # set by the wrapper when the vassal got its sockets
MAGIC = b"held"
MAX_FDS = 8
ASK_FOR = 10  # seconds: the holder may wait up to 3 s for a port a dead master's workers hold


def held_fd_urls(count: int) -> list[str]:
    """What a vassal config names its held sockets by, in order."""
    return [f"fd://{FD_BASE + index}" for index in range(count)]


def split_tcp(address: str) -> tuple[str, int]:
    """("127.0.0.1", 8001) of "127.0.0.1:8001"; ":80" and "0.0.0.0:80" bind every address."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return ("0.0.0.0" if host in ("", "*") else host), int(port)


def encode_reply(count: int) -> bytes:
    return MAGIC + struct.pack("<I", count)


def decode_reply(data: bytes) -> int:
    """The count of fds a reply announces; ValueError for anything else."""
    if len(data) != len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise ValueError(f"not a holder's reply: {data[:16]!r}")
    count: int = struct.unpack("<I", data[len(MAGIC) :])[0]
    return count


def hand(conn: _socket.socket, fds: list[int]) -> None:
    """Send `fds` (none: a reply that says so) down a connection."""
    rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, b"".join(map(FD.pack, fds)))] if fds else []
    conn.sendmsg([encode_reply(len(fds))], rights)


def ask(path: str, name: str, timeout: float = 10.0) -> list[int]:
    """The held sockets of vassal `name`, as new fds of this process; [] when the holder
    holds none for it. OSError when there is no holder."""
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(f"get {name}\n".encode())
        data, ancillary, _, _ = conn.recvmsg(64, _socket.CMSG_LEN(MAX_FDS * 4))
    finally:
        conn.close()
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if (level, kind) == (_socket.SOL_SOCKET, _socket.SCM_RIGHTS):
            whole = payload[: len(payload) - len(payload) % FD.size]
            fds += [fd for (fd,) in FD.iter_unpack(whole)]
    try:
        if decode_reply(data) != len(fds):
            raise ValueError("the fds received are not the fds announced")
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise
    return fds
