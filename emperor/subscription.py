"""uWSGI subscription packets: what an instance sends a router's subscription server.

A packet is one datagram (UDP for ``host:port``, else a unix datagram socket):

    u8 modifier1 = 224 | u16le size of the body | u8 modifier2 (0 subscribe, else unsubscribe)
    body: pairs of (u16le len, key bytes, u16le len, value bytes), numbers as decimal text,
          in the order key, address, modifier1, modifier2, cores, load, weight

When signed, ``unix`` (the time, which must grow from one announce to the next) is
appended, then ``sign``: the signature of every body byte before it, made with the
private key whose public half the router finds as ``<dir>/<key>.pem``.

The router matches a node by key and address, so an unsubscribe built here for an
instance's own address takes that instance out of the key exactly as the instance
would itself (core/subscription.c, plugins/corerouter/cr_common.c in uWSGI 2.0).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

SUBSCRIPTION_MODIFIER1 = 224
SUBSCRIBE, UNSUBSCRIBE = 0, 1

Signer = Callable[[bytes], bytes]  # the body so far -> its signature


def _pair(key: str, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.encode()
    name = key.encode()
    if len(value) > 0xFFFF:
        raise ValueError(f"subscription value for {key} is too long ({len(value)} bytes)")
    return struct.pack("<H", len(name)) + name + struct.pack("<H", len(value)) + value


def subscription_packet(
    key: str,
    address: str,
    *,
    unsubscribe: bool = False,
    modifier1: int = 0,
    modifier2: int = 0,
    cores: int = 1,
    load: int = 0,
    weight: int = 1,
    sign: Signer | None = None,
    now: Callable[[], float] = time.time,
) -> bytes:
    """The datagram that (un)subscribes `address` under `key`; signed when `sign` is given."""
    cmd = UNSUBSCRIBE if unsubscribe else SUBSCRIBE
    body = b"".join(
        (
            _pair("key", key),
            _pair("address", address),
            _pair("modifier1", modifier1),
            _pair("modifier2", modifier2),
            _pair("cores", cores),
            _pair("load", load),
            _pair("weight", weight),
        )
    )
    if sign is not None:
        # uWSGI stamps now + cmd, so an unsubscribe never carries an older time than
        # the announce sent in the same second.
        body += _pair("unix", int(now()) + cmd)
        body += _pair("sign", sign(body))
    if len(body) > 0xFFFF:
        raise ValueError("subscription packet too large")
    return struct.pack("<BHB", SUBSCRIPTION_MODIFIER1, len(body), cmd) + body


def parse_packet(packet: bytes) -> tuple[bool, dict[str, bytes]]:
    """(unsubscribe, pairs) of a subscription datagram; ValueError when it is not one."""
    if len(packet) < 4:
        raise ValueError("too short for a uwsgi header")
    modifier1, size, modifier2 = struct.unpack("<BHB", packet[:4])
    if modifier1 != SUBSCRIPTION_MODIFIER1 or size != len(packet) - 4:
        raise ValueError("not a subscription packet")
    pairs: dict[str, bytes] = {}
    pos, end = 4, len(packet)
    while pos < end:
        parts = []
        for _ in range(2):
            if pos + 2 > end:
                raise ValueError("truncated pair")
            (length,) = struct.unpack("<H", packet[pos : pos + 2])
            pos += 2
            if pos + length > end:
                raise ValueError("truncated pair")
            parts.append(packet[pos : pos + length])
            pos += length
        pairs[parts[0].decode()] = parts[1]
    return modifier2 != SUBSCRIBE, pairs


def send_packet(server: str, packet: bytes) -> None:
    """Send one datagram to a subscription server: ``host:port`` is UDP, else a unix path."""
    if ":" in server:
        host, _, port = server.rpartition(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(packet, (host or "127.0.0.1", int(port)))
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(packet, server)
