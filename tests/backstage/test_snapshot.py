"""The parts of a Snapshot that are plain functions of what was read."""

from __future__ import annotations

from types import SimpleNamespace

from backstage.snapshot import _gigs_by_act, _rate, human_size


def test_gigs_per_act_only_where_there_are_gigs():
    assert _gigs_by_act(SimpleNamespace(gigs=[])) is None  # nothing booked, nothing live
    production = SimpleNamespace(
        gigs=[
            SimpleNamespace(host="shop.example.com", acts=("Shop/Front",), booked=("Shop/Front",)),
            SimpleNamespace(host="admin.example.com", acts=(), booked=("Shop/Admin",)),
            SimpleNamespace(host="www.example.com", acts=("Shop/Front", "Shop/Admin"), booked=()),
        ]
    )
    assert _gigs_by_act(production) == {
        "Shop/Front": ("shop.example.com", "www.example.com"),
        "Shop/Admin": ("(admin.example.com)", "www.example.com"),
    }


def test_rates_never_go_negative_when_counters_restart():
    assert _rate(130, 100, 2.0) == 15.0
    assert _rate(3, 100, 1.0) == 0.0  # a reloaded worker starts counting again
    assert _rate(5, 0, 0.0) == 0.0


def test_sizes_read_like_uwsgitop():
    assert [human_size(n) for n in (512, 3277, 43 * 2**20, 5 * 2**29)] == [
        "512",
        "3.2K",
        "43.0M",
        "2.5G",
    ]
