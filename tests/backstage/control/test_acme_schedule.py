"""When ACME is tried: the renewal window and the growing retry delays, on files in a
temporary home and a clock passed in; no CA."""

from __future__ import annotations

import datetime

from backstage.control.host.acme import RETRY_FIRST, RETRY_MOST, Acme, renew_now, retry_delay
from backstage.control.host.certificates import Certificates
from backstage.model import certificate
from backstage.model.certificate import CertInfo
from backstage.model.layout import Layout
from backstage.model.spec import ProductionSpec

UTC = datetime.UTC


def test_retry_delays_grow_and_stop_at_a_day():
    delays = [retry_delay(n) for n in range(1, 20)]
    assert delays[0] == RETRY_FIRST and delays[1] == 2 * RETRY_FIRST
    assert delays == sorted(delays) and delays[-1] == RETRY_MOST


def test_renewal_window():
    start = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    ninety = CertInfo(("a",), "CA", start + datetime.timedelta(days=90), start)
    at = lambda days: (start + datetime.timedelta(days=days)).timestamp()  # noqa: E731
    assert not renew_now(ninety, at(59)) and renew_now(ninety, at(61))
    short = CertInfo(("a",), "CA", start + datetime.timedelta(seconds=45), start)
    assert not renew_now(short, start.timestamp() + 1)  # never due as it is issued
    assert renew_now(short, start.timestamp() + 31)


def test_due_skips_imported_fresh_and_waiting(tmp_path):
    layout = Layout(str(tmp_path))
    spec = ProductionSpec(https="127.0.0.1:8443", acme={"email": "a@example.com"})
    certs = Certificates(layout, lambda: spec)
    now = [datetime.datetime.now(UTC).timestamp()]
    acme = Acme(layout, lambda: spec, certs, clock=lambda: now[0])
    cert, key = certificate.self_signed("mine.example.com")
    certs.install("mine.example.com", cert, key)  # imported: its owner renews it
    cert, key = certificate.self_signed("fresh.example.com", days=90)
    certs.install("fresh.example.com", cert, key, source="acme")
    hosts = ["mine.example.com", "fresh.example.com", "new.example.com"]
    assert acme.due(hosts) == ["new.example.com"]
    assert acme.due(hosts, force=True) == ["fresh.example.com", "new.example.com"]
    acme._failed("new.example.com", OSError("connection refused"))
    assert acme.due(hosts) == []  # waiting for its retry
    assert acme.attempt("new.example.com").error == "connection refused"
    now[0] += RETRY_FIRST + 1
    assert acme.due(hosts) == ["new.example.com"]
    now[0] += 61 * 86400  # fresh.example.com is within 30 days of its end
    assert "fresh.example.com" in acme.due(hosts)
