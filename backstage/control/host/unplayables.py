"""Acts whose act.toml reads but cannot be played: a value uWSGI would expand, a user
who cannot be run as. The Production Manager finds them when it renders their vassal
configs, and keeps their old config playing; it says so in `run/unplayable.json`, so
that `status` and every other view show the Act as invalid, with why, rather than as
running as if nothing were wrong.

Each entry carries the modification time of the act.toml it was found in (as the pass
read it, not as the file is when the entry is written): an act.toml changed since (fixed
while no Manager runs, or while the pass worked) is not taken for unplayable on old word.
And the wall-clock time the pass that found it began (`seen`): whoever waits for the
Act to play takes the reason only from a pass that began after the wait did, not from
one that ran before its cause (another Act's port, a Venue's Python) was fixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

from ...files.fs import write_if_changed
from ...model.layout import ActRef, Layout


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def publish(
    layout: Layout,
    found: Mapping[str, tuple[ActRef, str]],
    seen: float,
    read: Mapping[str, int] | None = None,
) -> None:
    """Say which Acts cannot be played now (key to its ref and why), as found by the
    pass that began at `seen` (time.time()) on the act.toml files as they were when it
    read them (`read`: key to mtime in ns). The mtime is the one read, not the file's
    now: an act.toml fixed while the pass worked is not said to be wrong on old word."""
    read = read or {}
    entries = {
        key: {"reason": why, "mtime": read.get(key) or _mtime(ref.spec_path), "seen": seen}
        for key, (ref, why) in sorted(found.items())
    }
    write_if_changed(layout.unplayable, json.dumps(entries, indent=1) + "\n")


def _entries(layout: Layout) -> dict[str, object]:
    try:
        with open(layout.unplayable) as file:
            entries = json.load(file)
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _current(entry: object, ref: ActRef) -> bool:
    return isinstance(entry, dict) and entry.get("mtime") == _mtime(ref.spec_path)


def read(layout: Layout, refs: Iterable[ActRef]) -> dict[str, str]:
    """Act key to why it cannot be played, for those of `refs` the Manager said so of
    and whose act.toml has not changed since."""
    entries = _entries(layout)
    if not entries:
        return {}
    found = {}
    for ref in refs:
        entry = entries.get(ref.key)
        if isinstance(entry, dict) and _current(entry, ref):
            found[ref.key] = str(entry.get("reason", ""))
    return found


def why(layout: Layout, ref: ActRef, since: float = 0.0) -> str:
    """Why the Act cannot be played, as a pass that began at `since` or later found
    (and its act.toml is as that pass read it); "" when no such pass said so."""
    entry = _entries(layout).get(ref.key)
    if not isinstance(entry, dict) or not _current(entry, ref):
        return ""
    seen = entry.get("seen", 0.0)
    if not isinstance(seen, int | float) or seen < since:
        return ""
    return str(entry.get("reason", "")) or "the Production Manager cannot play it"
