"""What decides a replaced router's drain, on stats recorded from a real uWSGI 2.0.31
HTTP router: every node it knows is unsubscribed, and it is drained once it takes no
connection (`http-cheap` with no node left) and holds none."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from backstage.control.processes.handover import drained, unsubscribes
from emperor.stats import parse_router_stats

DATA = Path(__file__).parents[2] / "emperor" / "data"


def test_a_router_with_nodes_is_not_drained_and_each_node_is_unsubscribed():
    stats = parse_router_stats((DATA / "router_stats.json").read_bytes())
    assert stats.cheap == 0 and not drained(stats)
    pairs = unsubscribes(stats)
    assert pairs and all(key and node for key, node in pairs)
    listed = sum(len(s.nodes) for s in stats.subscriptions)
    assert len(pairs) == listed


def test_a_cheap_router_with_no_session_is_drained():
    stats = parse_router_stats((DATA / "router_stats_cheap.json").read_bytes())
    assert stats.cheap == 1 and stats.active_sessions == 0 and stats.subscriptions == ()
    assert drained(stats) and unsubscribes(stats) == []
    # cheap, but a request still on its way: not yet
    assert not drained(replace(stats, active_sessions=1))
    assert drained(None)  # no longer answering: nothing left to wait for
