"""Subscription packets, checked byte by byte against the layout uWSGI 2.0 builds."""

from __future__ import annotations

import struct

import pytest

from emperor.subscription import parse_packet, subscription_packet


def pair(key: bytes, value: bytes) -> bytes:
    return struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value


BODY = b"".join(
    [
        pair(b"key", b"kittens.example.com"),
        pair(b"address", b"/run/a.sock"),
        pair(b"modifier1", b"0"),
        pair(b"modifier2", b"0"),
        pair(b"cores", b"1"),
        pair(b"load", b"0"),
        pair(b"weight", b"1"),
    ]
)


def test_subscribe_packet_bytes():
    packet = subscription_packet("kittens.example.com", "/run/a.sock")
    assert packet == bytes([224]) + struct.pack("<H", len(BODY)) + b"\x00" + BODY
    assert packet[:4] == b"\xe0" + struct.pack("<H", len(BODY)) + b"\x00"


def test_unsubscribe_differs_only_in_modifier2():
    sub = subscription_packet("kittens.example.com", "/run/a.sock")
    unsub = subscription_packet("kittens.example.com", "/run/a.sock", unsubscribe=True)
    assert unsub[3] == 1 and unsub[:3] + unsub[4:] == sub[:3] + sub[4:]


def test_signed_packet_stamps_time_then_signs_everything_before():
    signed = []

    def sign(body: bytes) -> bytes:
        signed.append(body)
        return b"SIG"

    packet = subscription_packet(
        "kittens.example.com", "/run/a.sock", unsubscribe=True, sign=sign, now=lambda: 1000.7
    )
    expected_base = BODY + pair(b"unix", b"1001")  # now + cmd, as uWSGI stamps it
    assert signed == [expected_base]
    assert packet[4:] == expected_base + pair(b"sign", b"SIG")
    unsubscribe, pairs = parse_packet(packet)
    assert unsubscribe and pairs["sign"] == b"SIG" and pairs["unix"] == b"1001"


def test_parse_round_trip_and_refusals():
    unsubscribe, pairs = parse_packet(subscription_packet("h", "127.0.0.1:9", weight=3))
    assert not unsubscribe
    assert pairs == {
        "key": b"h",
        "address": b"127.0.0.1:9",
        "modifier1": b"0",
        "modifier2": b"0",
        "cores": b"1",
        "load": b"0",
        "weight": b"3",
    }
    with pytest.raises(ValueError):
        parse_packet(b"\x00\x00\x00")
    with pytest.raises(ValueError):
        parse_packet(b"\x00\x02\x00\x00ab")
    with pytest.raises(ValueError):
        parse_packet(b"\xe0\x03\x00\x00\x05\x00a")
