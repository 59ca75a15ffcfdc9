"""Certificates from ACME: a real Pebble, real HTTP-01 validations through the router to
the Act, the served chain verified against Pebble's root by SNI."""

from __future__ import annotations

import json
import ssl

import pytest

from tests.conftest import run_cli
from tests.gigs_helpers import named_act
from tests.helpers import free_port, http_get, poll
from tests.pebble_helpers import Pebble
from tests.tls_helpers import TestCA, http_raw, https_get


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(str(tmp_path / "ca"))


@pytest.fixture
def pebble(production, ca, tmp_path):
    server = Pebble(str(tmp_path), production.router.port, ca)
    yield server
    server.stop()


class PebbleRoot(TestCA):
    def __init__(self, pem: str) -> None:
        self.pem = pem

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem)


def test_booking_obtains_a_certificate(production, venue, ca, pebble):
    tls = free_port()
    production.declare(
        https=f"127.0.0.1:{tls}",
        acme={"directory": pebble.directory, "email": "ops@example.com", "ca_bundle": ca.root_path},
    )
    venue.add_domain("example.com")
    act = named_act(venue, "Shop")
    act.book("shop.example.com")
    # the booking did not wait: HTTP serves at once
    assert http_get(production.router.port, host="shop.example.com") == (200, "Shop")
    root = PebbleRoot(pebble.root())

    def served() -> bool:
        try:
            return https_get(tls, "shop.example.com", root)[:2] == (200, "Shop")
        except (OSError, ssl.SSLError):
            return False

    poll(served, timeout=90, interval=0.5)
    (listed,) = json.loads(run_cli("tls", "ls", "--json", home=production.home).stdout)
    assert listed["host"] == "shop.example.com" and listed["source"] == "acme"
    assert listed["error"] is None and "Pebble" in listed["issuer"]
    status, headers = http_raw(production.router.port, "shop.example.com", "/p?q=1")
    assert status == 308  # the Act now sends plain HTTP to https
    assert headers["Location"] == f"https://shop.example.com:{tls}/p?q=1"
