"""Which vassal masters a stop wakes from their nap: on entries of recorded Emperor stats."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from emperor.stats import VassalEntry, parse_emperor_stats
from emperor.stopping import napping

RECORDED = Path(__file__).parent / "data" / "emperor_stats.json"
CURSED = 1795282360


def entry(**changes: object) -> VassalEntry:
    return dataclasses.replace(parse_emperor_stats(RECORDED.read_bytes()).vassals[0], **changes)


def test_a_master_is_woken_once_it_is_cursed_and_no_child_of_it_lives():
    left = [
        entry(id="playing.ini", pid=10, cursed=0),  # not told to stop: it could be respawned
        entry(id="idle.ini", pid=11, cursed=CURSED),
        entry(id="serving.ini", pid=12, cursed=CURSED),  # a worker finishes its request
        entry(id="sleeping.ini", pid=-1, cursed=CURSED),  # on demand, no process
    ]
    assert napping(left, {12}.__contains__) == [11]


def test_nothing_is_woken_while_every_master_has_a_live_child():
    left = [entry(pid=20, cursed=CURSED), entry(id="other.ini", pid=21, cursed=CURSED)]
    assert napping(left, lambda pid: True) == []
