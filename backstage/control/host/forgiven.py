"""Vassals a user's start forgave: the Emperor's blacklist was cleared for them, after a
failure the user says is fixed. The start says so in `run/forgiven/` (one empty file a
vassal) and pokes the Production Manager, whose next pass takes the word and forgets
when it last pushed each: it pushes at once rather than wait out `reconcile.SETTLE`
since its push of the broken app. Its own retries of a broken app, with no such word,
keep their pacing (the Emperor's throttle, SETTLE).
"""

from __future__ import annotations

import os

from ...files.fs import unlink_if_present
from ...model.layout import Layout


def say(layout: Layout, vassal: str) -> None:
    """The user forgave `vassal`: its next push is not to wait on the last one."""
    os.makedirs(layout.forgiven_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(layout.forgiven_dir, vassal), "w"):
        pass


def take(layout: Layout) -> frozenset[str]:
    """The vassals forgiven since the last look, each said once: one listing a pass,
    most often of nothing."""
    try:
        names = os.listdir(layout.forgiven_dir)
    except FileNotFoundError:
        return frozenset()
    for name in names:
        unlink_if_present(os.path.join(layout.forgiven_dir, name))
    return frozenset(names)
