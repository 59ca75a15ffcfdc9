from __future__ import annotations

import dataclasses
import re
import urllib.error
import urllib.request

import pytest

from backstage.errors import InvalidSetting
from backstage.ui.httpd import MetricsServer
from backstage.ui.metrics import CONTENT_TYPE, render
from tests.backstage.ui.fakes import FakeProduction, promtool_check, recorded, with_gigs


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.partition("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in\n{text}")


def test_every_act_with_venue_and_act_labels():
    fake = FakeProduction(recorded())
    snapshot = fake.snapshot()
    text = render(snapshot)
    for row in snapshot.acts:
        act = {"venue": row.venue, "act": row.act}
        assert sample(text, "backstage_act_requests_total", **act) == row.requests
        assert sample(text, "backstage_act_state", **act, state=row.state) == 1
        assert sample(text, "backstage_act_workers", **act, status="busy") == row.busy
        assert sample(text, "backstage_act_resident_memory_bytes", **act) == row.rss
        assert sample(text, "backstage_act_avg_response_time_seconds", **act) == pytest.approx(
            row.avg_rt / 1e6
        )
        for name in ("exceptions", "harakiri", "respawns"):
            assert sample(text, f"backstage_act_{name}_total", **act) == getattr(row, name)
    assert sample(text, "backstage_emperor_up") == snapshot.emperor.running
    assert sample(text, "backstage_router_up", address="127.0.0.1:8000") == 1
    assert sample(text, "backstage_gig_requests_total", host="shop.example.com") == 42
    assert sample(text, "backstage_gig_node_requests_total", node="/run/a.sock") == 42
    assert sample(text, "backstage_gig_playing", host="soon.example.com") == 0
    promtool_check(text)


def test_responses_by_status_class_where_the_rows_have_them():
    snapshot = recorded()
    row = snapshot.acts[0]
    with_codes = dataclasses.replace(row, responses=(7, 1, 2, 3))
    text = render(dataclasses.replace(snapshot, acts=(with_codes,)))
    assert sample(text, "backstage_act_responses_total", act=row.act, code="2xx") == 7
    assert sample(text, "backstage_act_responses_total", act=row.act, code="5xx") == 3
    promtool_check(text)


def test_labels_are_escaped():
    snapshot = recorded()
    text = render(with_gigs(snapshot, address='odd"\\\nplace'))
    assert 'address="odd\\"\\\\\\nplace"' in text
    promtool_check(text)


def test_server_serves_a_fresh_reading_at_each_scrape():
    fake = FakeProduction(recorded())
    server = MetricsServer("127.0.0.1:0", fake.snapshot).start()
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
            assert response.headers["Content-Type"] == CONTENT_TYPE
            first = response.read().decode()
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
            second = response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url + "/", timeout=5)
        assert missing.value.code == 404
    finally:
        server.stop()
    key = {"venue": fake.base.acts[0].venue, "act": fake.base.acts[0].act}
    assert sample(second, "backstage_act_requests_total", **key) > sample(
        first, "backstage_act_requests_total", **key
    )
    promtool_check(second)


@pytest.mark.parametrize("address", ["nowhere", "127.0.0.1", "localhost:80", "1.2.3.4:99999"])
def test_a_bad_address_is_one_clear_error(address):
    with pytest.raises(InvalidSetting, match="IP:PORT"):
        MetricsServer(address, recorded)


def test_a_taken_port_is_one_clear_error():
    first = MetricsServer("127.0.0.1:0", recorded).start()
    try:
        with pytest.raises(InvalidSetting, match="pick another address"):
            MetricsServer(f"127.0.0.1:{first.port}", recorded).start()
    finally:
        first.stop()


def test_an_act_with_something_wrong_says_what_and_what_to_do():
    snapshot = FakeProduction(recorded()).snapshot()
    why = 'port 8001 is held by "V/Other": give it a free one'
    first = dataclasses.replace(snapshot.acts[0], state="starting", reason=why)
    rest = tuple(dataclasses.replace(row, reason="") for row in snapshot.acts[1:])
    text = render(dataclasses.replace(snapshot, acts=(first, *rest)))
    labels = {"venue": first.venue, "act": first.act, "state": "starting"}
    assert sample(text, "backstage_act_wrong", **labels, reason=why.replace('"', '\\"')) == 1
    assert text.count("backstage_act_wrong{") == 1  # nothing said of the others
    promtool_check(text)
