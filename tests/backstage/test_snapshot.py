"""The parts of a Snapshot that are plain functions of what was read."""

from __future__ import annotations

from backstage.model.gig import Gig, gigs_by_act
from backstage.model.snapshot import human_size, rate


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
