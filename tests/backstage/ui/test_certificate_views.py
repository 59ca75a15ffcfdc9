"""Certificates in what a user looks at: /metrics, status --json and its warnings, the
snapshot's round trip; on recorded snapshots, no process."""

from __future__ import annotations

import dataclasses

from backstage.model.snapshot import CertRow, Snapshot
from backstage.ui.metrics import render
from backstage.ui.status import status
from tests.backstage.ui.fakes import promtool_check, recorded
from tests.backstage.ui.test_metrics import sample

DAY = 86400.0


def _with_certs(snapshot: Snapshot) -> Snapshot:
    wall = snapshot.wall
    return dataclasses.replace(
        snapshot,
        certificates=(
            CertRow("ok.example.com", "acme", wall + 60 * DAY),
            CertRow("soon.example.com", "imported", wall + 3 * DAY),
            CertRow("away.example.com", "acme", None, "connection refused", failures=3),
            CertRow("once.example.com", "acme", wall + 20 * DAY, "timeout", failures=1),
        ),
    )


def test_warnings():
    snapshot = _with_certs(recorded())
    warned = {c.host: c.warning(snapshot.wall) for c in snapshot.certificates}
    assert warned["ok.example.com"] == ""
    assert warned["soon.example.com"] == "soon.example.com: its certificate expires in 3.0 days"
    assert "failed 3 times in a row: connection refused" in warned["away.example.com"]
    assert warned["once.example.com"] == ""  # one failure, a retry is on its way
    listed = {c["host"]: c for c in status(snapshot)["certificates"]}
    assert listed["soon.example.com"]["warning"].endswith("3.0 days")
    assert listed["ok.example.com"]["warning"] is None


def test_metrics_and_round_trip():
    snapshot = _with_certs(recorded())
    text = render(snapshot)
    promtool_check(text)
    expiry = "backstage_certificate_expiry_timestamp_seconds"
    assert sample(text, expiry, host="ok.example.com", source="acme") == snapshot.wall + 60 * DAY
    assert f'{expiry}{{host="away.example.com"' not in text  # none loads: no sample
    assert sample(text, "backstage_certificate_acme_failures", host="away.example.com") == 3
    assert Snapshot.from_dict(snapshot.to_dict()) == snapshot


def test_marks_in_the_dashboard_and_top():
    from backstage.model.gig import Gig
    from backstage.ui import top
    from backstage.ui.views import gig_dict, tls_mark

    snapshot = _with_certs(recorded())
    assert tls_mark(snapshot, "ok.example.com") == "tls"
    assert tls_mark(snapshot, "soon.example.com") == "tls!"
    assert tls_mark(snapshot, "away.example.com") == "tls!"  # none, and failing
    assert tls_mark(snapshot, "plain.example.com") == ""
    gig = Gig("ok.example.com", (), (), 0, ())
    assert gig_dict(gig, "tls")["tls"] == "tls"
    row = dataclasses.replace(snapshot.acts[0], gigs=("ok.example.com", "plain.example.com"))
    snapshot = dataclasses.replace(snapshot, acts=(row, *snapshot.acts[1:]))
    lines = top.render(snapshot, top.View(detail=row.key), 200, 40)
    text = "".join(part for line in lines for part, _ in line)
    assert "gigs ok.example.com[tls],plain.example.com" in text
