"""A fake Production for the views: a recorded Snapshot whose counters move at each
reading, a router, Gigs, and a recorder of the actions asked for."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time

import pytest

from backstage.model.gig import Gig
from backstage.model.snapshot import RouterRow, Snapshot

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "snapshot.json")
PROMTOOL = shutil.which("promtool")


def recorded() -> Snapshot:
    import json

    with open(DATA) as file:
        return Snapshot.from_dict(json.load(file))


def many(snapshot: Snapshot, count: int) -> Snapshot:
    """The recorded Acts copied under new names, for scrolling."""
    rows = []
    for i in range(count):
        row = snapshot.acts[i % len(snapshot.acts)]
        name = f"{row.act}{i:02d}"
        rows.append(dataclasses.replace(row, act=name, key=f"{row.venue}/{name}"))
    return dataclasses.replace(snapshot, acts=tuple(rows))


def with_gigs(snapshot: Snapshot, address: str = "127.0.0.1:8000") -> Snapshot:
    """The Snapshot with a running router and two Gigs of its first Act, one playing."""
    key = snapshot.acts[0].key
    gigs = (
        Gig("shop.example.com", (key,), ("/run/a.sock",), 42, (key,), (42,)),
        Gig("soon.example.com", (), (), 0, (key,)),
    )
    return dataclasses.replace(snapshot, router=RouterRow(True, address), gigs=gigs)


class FakeProduction:
    """`snapshot(previous)`: each reading adds `step` requests to every running Act."""

    def __init__(self, snapshot: Snapshot, step: int = 10) -> None:
        self.base = snapshot
        self.step = step
        self.readings = 0
        self.actions: list[tuple[str, str]] = []

    def snapshot(self, previous: Snapshot | None = None) -> Snapshot:
        self.readings += 1
        at, wall = time.monotonic(), time.time()
        rows = []
        for i, row in enumerate(self.base.acts):
            moved = row.requests + self.readings * self.step * (i + 1)
            rate = None
            if previous is not None and previous.act(row.key) is not None and at > previous.at:
                rate = (moved - previous.act(row.key).requests) / (at - previous.at)
            rows.append(dataclasses.replace(row, requests=moved, rps=rate))
        return with_gigs(dataclasses.replace(self.base, at=at, wall=wall, acts=tuple(rows)))

    def act(self, key: str, action: str) -> None:
        self.actions.append((key, action))


def promtool_check(text: str) -> None:
    """`promtool check metrics` has nothing to say about `text`."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian: prometheus)")
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )
