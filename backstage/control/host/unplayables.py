"""Acts whose act.toml reads but cannot be played: a value uWSGI would expand, a user
who cannot be run as. The Production Manager finds them when it renders their vassal
configs, and keeps their old config playing; it says so in `run/unplayable.json`, so
that `status` and every other view show the Act as invalid, with why, rather than as
running as if nothing were wrong.

Each entry carries the act.toml's modification time it was found with: an act.toml
changed since (fixed while no Manager runs) is not taken for unplayable on old word.
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


def publish(layout: Layout, found: Mapping[str, tuple[ActRef, str]]) -> None:
    """Say which Acts cannot be played now (key to its ref and why)."""
    entries = {
        key: {"reason": why, "mtime": _mtime(ref.spec_path)}
        for key, (ref, why) in sorted(found.items())
    }
    write_if_changed(layout.unplayable, json.dumps(entries, indent=1) + "\n")


def read(layout: Layout, refs: Iterable[ActRef]) -> dict[str, str]:
    """Act key to why it cannot be played, for those of `refs` the Manager said so of
    and whose act.toml has not changed since."""
    try:
        with open(layout.unplayable) as file:
            entries = json.load(file)
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict) or not entries:
        return {}
    found = {}
    for ref in refs:
        entry = entries.get(ref.key)
        if isinstance(entry, dict) and entry.get("mtime") == _mtime(ref.spec_path):
            found[ref.key] = str(entry.get("reason", ""))
    return found
