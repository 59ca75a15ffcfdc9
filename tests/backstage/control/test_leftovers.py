"""Which files of a run folder are leftovers of Acts no longer declared."""

from __future__ import annotations

import os

from backstage.control.processes import leftovers
from backstage.files.declared import Declared
from backstage.model.layout import Layout
from backstage.model.spec import ProductionSpec

NAMES = [
    "Shop.Front.env.json", "Shop.Front.hosts", "Shop.Front.gigs.ini", "Shop.Front.stats",
    "Shop.Gone.env.json", "Shop.Gone.hosts", "Shop.Gone.gigs.ini", "Shop.Gone.refused",
    "Shop.Gone.fifo", "Shop.Gone.sock", "emperor.pid", "create.lock", "Shop.Gone.hostsx",
    "production.last-good.toml", "Shop.Gone", "x.y.z.hosts", "pending",
]  # fmt: skip


def test_only_the_files_of_acts_not_declared_are_stale():
    written = leftovers.WRITTEN + leftovers.REFUSED
    assert leftovers.stale(NAMES, {"Shop/Front"}, written) == [
        "Shop.Gone.env.json", "Shop.Gone.hosts", "Shop.Gone.gigs.ini", "Shop.Gone.refused",
    ]  # fmt: skip
    # at `down`, every Act's, but what the Act was refused (said on through an up)
    everything = leftovers.WRITTEN + leftovers.MADE
    assert leftovers.stale(NAMES, set(), everything) == [
        "Shop.Front.env.json", "Shop.Front.hosts", "Shop.Front.gigs.ini", "Shop.Front.stats",
        "Shop.Gone.env.json", "Shop.Gone.hosts", "Shop.Gone.gigs.ini", "Shop.Gone.fifo",
        "Shop.Gone.sock",
    ]  # fmt: skip


def test_a_pass_spares_a_file_written_since_it_read(tmp_path):
    layout = Layout(str(tmp_path))
    os.makedirs(layout.run_dir)
    for name in ("Shop.Old.hosts", "Shop.New.hosts", "emperor.pid"):
        open(layout.run(name), "w").close()
    os.utime(layout.run("Shop.Old.hosts"), (1000.0, 1000.0))
    os.utime(layout.run("Shop.New.hosts"), (2000.0, 2000.0))
    nothing = Declared(ProductionSpec(), (), ())
    assert leftovers.sweep(layout, nothing, 2000.0) == [layout.run("Shop.Old.hosts")]
    assert sorted(os.listdir(layout.run_dir)) == ["Shop.New.hosts", "emperor.pid"]
    removed = leftovers.sweep_down(layout, nothing)
    assert sorted(removed) == [layout.run("Shop.New.hosts"), layout.run("emperor.pid")]
    assert os.listdir(layout.run_dir) == []
