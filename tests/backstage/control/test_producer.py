from __future__ import annotations

import logging
import os

import pytest

from backstage.control.daemon.loop import ProductionManager
from backstage.control.managers import producer
from backstage.control.managers.producer import PRODUCE_EVERY, PRODUCE_RETRY
from backstage.control.processes.crew import Crew
from backstage.errors import ProducerError
from backstage.files.declared import Declared, DeclaredAct, DeclaredVenue
from backstage.model.layout import ActRef, Layout
from backstage.model.spec import ActSpec, ProductionSpec, VenueSpec


class FakePowerDNS:
    """PowerDNS's zones in memory, as its API answers; `down` makes it unreachable."""

    def __init__(self):
        self.zones: dict[str, dict] = {}
        self.calls: list[str] = []
        self.down = False

    def connect(self, url, key, key_file):
        assert key == "s3cret"
        return self

    def _check(self, what):
        self.calls.append(what)
        if self.down:
            raise ProducerError("PowerDNS does not answer at http://x: start it")

    def zone(self, zone):
        self._check(f"GET {zone}")
        return self.zones.get(zone)

    def create_zone(self, zone):
        self._check(f"POST {zone}")
        self.zones[zone] = {"rrsets": []}

    def patch(self, zone, rrsets):
        self._check(f"PATCH {zone}")
        kept = [
            rr
            for rr in self.zones[zone]["rrsets"]
            if (rr["name"], rr["type"]) not in {(r["name"], r["type"]) for r in rrsets}
        ]
        kept += [rr for rr in rrsets if rr["changetype"] == "REPLACE"]
        self.zones[zone]["rrsets"] = kept

    def names(self, zone):
        return sorted(rr["name"] for rr in self.zones[zone]["rrsets"])


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "pdns.key"
    path.write_text("s3cret\n")
    path.chmod(0o600)
    return str(path)


def _declared(key_file, *hosts, valid=True):
    settings = ProductionSpec(
        producer="http://127.0.0.1:1", producer_key=key_file, public_address="203.0.113.7"
    )
    venue = DeclaredVenue("/v", VenueSpec("V", "3.11", domains=("example.com",)))
    spec = ActSpec("A", 8100, hosts=hosts) if valid else None
    return Declared(settings, (venue,), (DeclaredAct(ActRef("V", "/v", "A"), spec, "broken"),))


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def _manager(tmp_path, fake, clock):
    manager = ProductionManager(Crew(Layout(str(tmp_path / "home"))), clock=clock)
    manager.dns.producer = producer.Producer(manager.crew.layout, fake.connect)
    return manager


def test_records_follow_the_bookings(tmp_path, key_file):
    fake = FakePowerDNS()
    layout = Layout(str(tmp_path))
    sync = producer.Producer(layout, fake.connect).sync
    dry = sync(_declared(key_file, "k.example.com"), dry_run=True)
    assert [c.action for c in dry.changes] == ["create", "REPLACE"] and not fake.zones
    sync(_declared(key_file, "k.example.com", "example.com"))
    assert fake.names("example.com") == ["example.com.", "k.example.com."]
    sync(_declared(key_file, "example.com"))
    assert fake.names("example.com") == ["example.com."]
    assert "in step" in sync(_declared(key_file, "example.com")).lines()[-1]


def test_an_invalid_act_leaves_its_venues_zones_alone(tmp_path, key_file):
    fake = FakePowerDNS()
    sync = producer.Producer(Layout(str(tmp_path)), fake.connect).sync
    sync(_declared(key_file, "k.example.com"))
    report = sync(_declared(key_file, valid=False))
    assert fake.names("example.com") == ["k.example.com."]
    assert "V/A is invalid" in report.lines()[0]


def test_the_key_file_must_be_private(tmp_path, key_file):
    os.chmod(key_file, 0o644)
    with pytest.raises(ProducerError, match="chmod 600"):
        producer.Producer(Layout(str(tmp_path)), FakePowerDNS().connect).sync(_declared(key_file))


def test_the_manager_syncs_on_change_or_every_minute_and_says_a_failure_once(
    tmp_path, key_file, caplog
):
    fake, clock = FakePowerDNS(), Clock()
    manager = _manager(tmp_path, fake, clock)
    manager.produce(_declared(key_file, "k.example.com"))
    assert fake.names("example.com") == ["k.example.com."]
    fake.calls.clear()
    manager.produce(_declared(key_file, "k.example.com"))
    assert fake.calls == []  # nothing changed
    clock.now += PRODUCE_EVERY
    manager.produce(_declared(key_file, "k.example.com"))
    assert fake.calls == ["GET example.com"]

    fake.down = True
    caplog.set_level(logging.ERROR)
    for _ in range(3):  # each pass, as the loop does
        manager.produce(_declared(key_file))
        manager._said, manager._saying = manager._saying, set()
        clock.now += 1
    said = [r.getMessage() for r in caplog.records]
    assert said == ["the Producer: PowerDNS does not answer at http://x: start it"]
    fake.down = False
    clock.now += PRODUCE_RETRY
    manager.produce(_declared(key_file))
    assert fake.names("example.com") == []


def test_off_unless_configured(tmp_path):
    fake = FakePowerDNS()
    manager = _manager(tmp_path, fake, Clock())
    manager.produce(Declared(ProductionSpec(), (), ()))
    assert fake.calls == []
    with pytest.raises(ProducerError, match="no Producer in"):
        manager.dns.producer.sync(Declared(ProductionSpec(), (), ()))
