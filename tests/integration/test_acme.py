"""Certificates from ACME: a real Pebble, real HTTP-01 validations through the router to
the Act, the served chain verified against Pebble's root by SNI."""

from __future__ import annotations

import json
import ssl

import pytest

from tests.conftest import cli, run_cli
from tests.gigs_helpers import named_act
from tests.helpers import free_port, http_get, poll
from tests.pebble_helpers import Pebble, PebbleRoot
from tests.tls_helpers import TestCA, http_raw, https_get


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(str(tmp_path / "ca"))


@pytest.fixture
def pebble(production, ca, tmp_path):
    server = Pebble(str(tmp_path), production.router.port, ca)
    yield server
    server.stop()


def acme_on(production, venue, pebble, ca, acme: bool = True) -> int:
    """The Production's TLS listener (its port) and ACME from `pebble` (unless not
    `acme`); example.com the Venue's domain."""
    tls = free_port()
    production.declare(https=f"127.0.0.1:{tls}", acme=acme_table(pebble, ca) if acme else {})
    venue.add_domain("example.com")
    return tls


def acme_table(pebble, ca) -> dict[str, str]:
    return {"directory": pebble.directory, "email": "ops@example.com", "ca_bundle": ca.root_path}


def test_booking_obtains_a_certificate(production, venue, ca, pebble):
    tls = acme_on(production, venue, pebble, ca, acme=False)
    act = named_act(venue, "Shop")
    master = act.sess.pid
    # [acme] added while the Act plays: it is not restarted for it
    production.declare(acme=acme_table(pebble, ca))
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
    (listed,) = json.loads(cli("tls", "ls", "--json", home=production.home).stdout)
    assert listed["host"] == "shop.example.com" and listed["source"] == "acme"
    assert listed["error"] is None and "Pebble" in listed["issuer"]
    status, headers = http_raw(production.router.port, "shop.example.com", "/p?q=1")
    assert status == 308  # the Act now sends plain HTTP to https
    assert headers["Location"] == f"https://shop.example.com:{tls}/p?q=1"
    assert act.sess.pid == master


def test_a_host_booked_with_no_act_playing_gets_its_certificate(production, venue, ca, pebble):
    """The router's own worker answers the CA's HTTP-01 for a host whose Act is stopped:
    its certificate is there when the Act plays."""
    tls = acme_on(production, venue, pebble, ca)
    act = named_act(venue, "Idle", start=False)
    act.book("idle.example.com")
    production.up()
    poll(lambda: http_get(production.router.port, host="idle.example.com")[0] == 503, timeout=20)

    def listed() -> dict:
        found = json.loads(cli("tls", "ls", "--json", home=production.home).stdout)
        return next((c for c in found if c["host"] == "idle.example.com"), {})

    try:
        poll(lambda: listed().get("source") == "acme", timeout=90, interval=0.1)
    except AssertionError:
        raise AssertionError(f"no certificate: {listed()}") from None
    assert listed()["error"] is None
    act.start()
    root = PebbleRoot(pebble.root())
    poll(lambda: _https_ok(tls, "idle.example.com", root, "Idle"), timeout=30)


@pytest.fixture
def short_lived(production, ca, tmp_path):
    server = Pebble(str(tmp_path), production.router.port, ca, validity=45)
    yield server
    server.stop()


@pytest.mark.slow
def test_renewal_failures_and_the_ca_down(production, venue, ca, short_lived):
    pebble = short_lived
    tls = acme_on(production, venue, pebble, ca)
    act = named_act(venue, "Shop")
    # a host whose DNS points elsewhere: no certificate, HTTP as before, the error shown
    pebble.point("away.example.com", "127.0.0.2")
    act.book("away.example.com")
    act.book("shop.example.com")
    home = production.home

    def listing() -> dict[str, dict]:
        return {c["host"]: c for c in json.loads(cli("tls", "ls", "--json", home=home).stdout)}

    poll(
        lambda: listing().get("shop.example.com", {}).get("source") == "acme",
        timeout=90,
        interval=0.1,
    )
    first = listing()["shop.example.com"]["not_after"]
    poll(lambda: listing().get("away.example.com", {}).get("last_error"), timeout=90, interval=0.1)
    away = listing()["away.example.com"]
    assert away["not_after"] is None and away["next_try"] is not None
    assert http_get(production.router.port, host="away.example.com") == (200, "Shop")
    assert "next try" in cli("tls", "ls", home=home).stdout

    # a 45 s certificate is renewed in its last third by the Manager, by itself
    try:
        poll(lambda: listing()["shop.example.com"]["not_after"] != first, timeout=60, interval=0.1)
    except AssertionError:
        raise AssertionError(f"not renewed: {listing()}") from None
    renewed = listing()["shop.example.com"]
    root = PebbleRoot(pebble.root())
    poll(lambda: _https_ok(tls, "shop.example.com", root), timeout=30)

    # the CA down: a renewal fails, said in one line, and what serves stays
    pebble.stop_acme()
    failed = run_cli("tls", "renew", "shop.example.com", home=home, check=False)
    assert failed.returncode == 1 and "not renewed" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert listing()["shop.example.com"]["not_after"] == renewed["not_after"]
    assert listing()["shop.example.com"]["last_error"]
    assert _https_ok(tls, "shop.example.com", root)


def _https_ok(port: int, host: str, root: TestCA, body: str = "Shop") -> bool:
    try:
        return https_get(port, host, root)[:2] == (200, body)
    except (OSError, ssl.SSLError):
        return False
