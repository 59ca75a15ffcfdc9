"""The parts of a Snapshot that are plain functions of what was read."""

from __future__ import annotations

import dataclasses
import json

from backstage.model import snapshot
from backstage.model.gig import Gig, gigs_by_act
from backstage.model.snapshot import (
    ActReading,
    EmperorRow,
    ManagerRow,
    RouterRow,
    Snapshot,
    human_size,
    rate,
)
from emperor.stats import parse_emperor_stats, parse_instance_stats


def test_gigs_per_act_only_where_there_are_gigs():
    assert gigs_by_act([]) is None  # nothing booked, nothing live
    gigs = [
        Gig("shop.example.com", ("Shop/Front",), ("n1",), 0, ("Shop/Front",)),
        Gig("admin.example.com", (), (), 0, ("Shop/Admin",)),
        Gig("www.example.com", ("Shop/Front", "Shop/Admin"), ("n1", "n2"), 0, ()),
    ]
    assert gigs_by_act(gigs) == {
        "Shop/Front": ("shop.example.com", "www.example.com"),
        "Shop/Admin": ("(admin.example.com)", "www.example.com"),
    }


def test_rates_never_go_negative_when_counters_restart():
    assert rate(130, 100, 2.0) == 15.0
    assert rate(3, 100, 1.0) == 0.0  # a reloaded worker starts counting again
    assert rate(5, 0, 0.0) == 0.0


def test_sizes_read_like_uwsgitop():
    assert [human_size(n) for n in (512, 3277, 43 * 2**20, 5 * 2**29)] == [
        "512",
        "3.2K",
        "43.0M",
        "2.5G",
    ]


def _rows(readings, emperor, previous=None):
    return snapshot.build(
        production="/home",
        at=(previous.at + 1) if previous else 1.0,
        wall=0.0,
        emperor=EmperorRow(True, 1, "zmq", "2.0.31", len(emperor.vassals), (), 0),
        emperor_stats=emperor,
        readings=readings,
        router=RouterRow(running=False, address="127.0.0.1:8000", warning=""),
        gigs=None,
        manager=ManagerRow(running=True, pid=2),
        previous=previous,
    )


def test_a_row_nothing_moved_in_is_the_one_before():
    sleeper = {"id": "v.sleeps.ini", "pid": -1, "on_demand": "/run/v.sleeps.sock"}
    stopped = {"id": "v.stopped.ini", "pid": 0}
    emperor = parse_emperor_stats(json.dumps({"vassals": [sleeper, stopped]}).encode())

    def reading(name, enabled=True, **changed):
        found = ActReading(
            key=f"V/{name}",
            venue="V",
            act=name,
            vassal=f"v.{name}.ini",
            enabled=enabled,
            port=8001,
            stats=None,
            log_path=f"/log/V.{name}.log",
        )
        return dataclasses.replace(found, **changed)

    first = _rows([reading("sleeps"), reading("stopped", enabled=False)], emperor)
    assert [row.state for row in first.acts] == ["sleeping", "stopped"]
    second = _rows([reading("sleeps"), reading("stopped", enabled=False)], emperor, first)
    assert all(now is before for now, before in zip(second.acts, first.acts, strict=True))
    # anything that moved makes the row again
    for changed in (
        {"enabled": False},
        {"port": 8002},
        {"problem": "act.toml: bad"},
        {"refused": "SyntaxError"},
        {"log_tail": ("a line",)},
    ):
        third = _rows([reading("sleeps", **changed)], emperor, first)
        assert third.acts[0] is not first.acts[0], changed
        for field, value in changed.items():
            assert getattr(third.acts[0], field) == value
    assert _rows([reading("sleeps", enabled=False)], emperor, first).acts[0].state == "stopped"
    # a row read from stats is never kept for one without: its pid and workers go
    starting = parse_instance_stats(json.dumps({"pid": 7, "workers": []}).encode())
    before = _rows([reading("stopped", stats=starting)], emperor)
    assert (before.acts[0].state, before.acts[0].pid) == ("starting", 7)
    after = _rows([reading("stopped")], emperor, before)
    assert (after.acts[0].state, after.acts[0].pid) == ("starting", None)


def test_a_row_says_why_it_is_in_its_state():
    emperor = parse_emperor_stats(
        json.dumps({"vassals": [], "blacklist": [{"id": "v.broken.ini", "attempt": 4}]}).encode()
    )

    def reading(name, **changed):
        found = ActReading("V/" + name, "V", name, f"v.{name}.ini", True, 8001, None, "/l")
        return dataclasses.replace(found, **changed)

    rows = _rows(
        [reading("held", port_holder="V/other"), reading("broken"), reading("fine")], emperor
    ).acts
    assert [row.state for row in rows] == ["starting", "failed", "starting"]
    assert "port 8001 is held by V/other" in rows[0].reason
    assert "(4 tries)" in rows[1].reason
    assert "yet to start it" in rows[2].reason  # not listed by the Emperor
    back = Snapshot.from_dict(
        json.loads(json.dumps(_rows([reading("held", port_holder="x")], emperor).to_dict()))
    )
    assert "held by x" in back.acts[0].reason
