"""The Producer against a real PowerDNS (Debian's pdns-server and pdns-backend-sqlite3),
asked over DNS: records appear when a host is booked and go when it is unbooked."""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request

import pytest

from tests.conftest import ROOT, cli, run_cli
from tests.dns_helpers import PowerDNSServer, free_port, pdns_server, query
from tests.helpers import poll

pytestmark = pytest.mark.skipif(
    pdns_server() is None, reason="pdns_server is not installed (apt-get install pdns-server)"
)

NOERROR, NXDOMAIN = 0, 3
ADDRESS = "203.0.113.7"


@pytest.fixture
def pdns():
    server = PowerDNSServer(tempfile.mkdtemp(prefix="pdns", dir=ROOT))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def producing(production, venue, pdns):
    """The test's Production with its Producer pointed at `pdns`."""
    key_file = os.path.join(production.home, "pdns.key")
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as key:
        key.write(pdns.key + "\n")
    production.declare(producer=pdns.url, producer_key=key_file, public_address=ADDRESS)
    venue.add_domain("example.com")
    return production


def _theirs(pdns, zone, name, address):
    """A record of the zone's owner, which Backstage must leave alone."""
    body = {
        "rrsets": [
            {
                "name": name,
                "type": "A",
                "ttl": 300,
                "changetype": "REPLACE",
                "records": [{"content": address, "disabled": False}],
            }
        ]
    }
    request = urllib.request.Request(
        f"{pdns.url}/api/v1/servers/localhost/zones/{zone}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"X-API-Key": pdns.key},
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_records_appear_and_go_with_the_bookings(producing, venue, pdns):
    home = producing.home
    act = venue.new_act("Web", processes=1, start=False)
    act.book("kittens.example.com")

    dry = cli("producer", "sync", "--dry-run", home=home).stdout
    assert "(dry run) example.com: create the zone" in dry
    assert f"(dry run) example.com: + kittens.example.com. A {ADDRESS}" in dry
    assert query(pdns.dns_port, "kittens.example.com")[1] == []  # nothing made

    done = cli("producer", "sync", home=home).stdout
    assert f"example.com: + kittens.example.com. A {ADDRESS}" in done
    assert query(pdns.dns_port, "kittens.example.com") == (NOERROR, [ADDRESS])
    assert "in step: 1 records in 1 zones" in cli("producer", "sync", home=home).stdout

    _theirs(pdns, "example.com.", "www.example.com.", "198.51.100.1")
    act.unbook("kittens.example.com")
    done = cli("producer", "sync", home=home).stdout
    assert "example.com: - kittens.example.com. A" in done
    assert query(pdns.dns_port, "kittens.example.com") == (NXDOMAIN, [])
    assert query(pdns.dns_port, "www.example.com") == (NOERROR, ["198.51.100.1"])

    # booked where the owner has a record already: theirs stays, and the sync says so
    act.book("www.example.com")
    done = cli("producer", "sync", home=home).stdout
    assert "www.example.com. A is not Backstage's: left as it is" in done
    assert query(pdns.dns_port, "www.example.com") == (NOERROR, ["198.51.100.1"])


def test_the_production_manager_keeps_the_zone_in_step(producing, venue, pdns):
    act = venue.new_act("Web", processes=1, start=False)
    producing.up()
    poll(producing.router.answering, 30)
    act.book("kittens.example.com")
    poll(lambda: query(pdns.dns_port, "kittens.example.com") == (NOERROR, [ADDRESS]), 15, 0.2)
    act.unbook("kittens.example.com")
    poll(lambda: query(pdns.dns_port, "kittens.example.com")[1] == [], 15, 0.2)


def test_unreachable_or_refusing_is_one_line_and_exit_1(producing, pdns):
    home = producing.home
    with open(producing.spec.producer_key, "w") as key:
        key.write("not-the-key\n")
    done = run_cli("producer", "sync", home=home, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("backstage: PowerDNS at") and "refuses the API key" in done.stderr
    assert done.stderr.count("\n") == 1

    producing.declare(producer=f"http://127.0.0.1:{free_port()}")
    done = run_cli("producer", "sync", home=home, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "PowerDNS does not answer at" in done.stderr
