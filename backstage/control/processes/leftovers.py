"""Leftovers in run/: files of Acts that are no longer declared, and, once the Production
is down, those of every Act and of the Stage.

An Act's run files are named VENUE.NAME.SUFFIX. What the Manager writes for an Act
(its env file, hosts, subscriptions) can outlive it: an `act add` that fails and is
discarded while a pass had just read it declared, an `act rm`. Each pass removes
those of Acts no longer declared; `down` removes the rest, leaving only the locks (a
lock file removed while another process waits on it locks nothing), the last good
production.toml, and the folders of what is pending or withheld.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from emperor.heldbuild import PREFIX as COMPILED_WRAPPER

from ...files.declared import Declared
from ...files.fs import unlink_if_present
from ...model.layout import Layout, venue_run_dir, venue_user_dir

# What the Manager writes for an Act (and `reexec`, a reload's): removed once the Act is
# gone, and at `down`
WRITTEN = ("env.json", "hosts", "gigs.ini", "reexec")
# Why a save was refused: said until the Act is gone, through a `down` and `up`
REFUSED = ("refused",)
# What its vassal makes (vacuumed by uWSGI, but for the FIFO and after a kill -9)
MADE = ("stats", "fifo", "sock", "wake", "ondemand")  # the Emperor leaves its on-demand one
_ACT_FILE = re.compile(
    r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)\.(" + "|".join(map(re.escape, WRITTEN + REFUSED + MADE)) + r")"
)
# The Stage's own, stale once it is down
STAGE_FILES = (
    "emperor.pid", "emperor.stats", "emperor.ipc", "manager.pid", "keeper.pid",
    "router.sub", "router.stats", "router.sock", "router.booked.json", "holder.sock",
    "holder.pid", "vassal-wrapper",  # written again at each start of the Emperor
    "unplayable.json",  # written again at each pass of the Manager
)  # fmt: skip


def stale(names: Iterable[str], declared: set[str], suffixes: Iterable[str]) -> list[str]:
    """Of the file `names` in a run folder, those of an Act whose VENUE/NAME is not in
    `declared`, with one of `suffixes`."""
    wanted = set(suffixes)
    found = []
    for name in names:
        match = _ACT_FILE.fullmatch(name)
        if match and match[3] in wanted and f"{match[1]}/{match[2]}" not in declared:
            found.append(name)
    return found


def _run_folders(layout: Layout, production: Declared) -> list[str]:
    folders = [layout.run_dir]
    for venue in production.venues:
        folders += [venue_run_dir(venue.path), venue_user_dir(venue.path)]
    return folders


# A file younger than this may be of an Act declared since `production` was read
SETTLED = 5.0  # seconds


def sweep(layout: Layout, production: Declared, now: float) -> list[str]:
    """Remove what the Manager wrote for Acts no longer declared (each pass)."""
    keys = {found.ref.key for found in production.acts}
    return _remove(_run_folders(layout, production), keys, WRITTEN + REFUSED, now - SETTLED)


def sweep_down(layout: Layout, production: Declared) -> list[str]:
    """Once nothing of the Production runs: every Act's run files and the Stage's."""
    removed = _remove(_run_folders(layout, production), set(), WRITTEN + MADE, None)
    # the compiled vassal wrapper, copied in again at each start of the Emperor
    try:
        names = os.listdir(layout.run_dir)
    except FileNotFoundError:
        names = []
    compiled = [name for name in names if name.startswith(COMPILED_WRAPPER)]
    for name in (*STAGE_FILES, *compiled):
        path = layout.run(name)
        if os.path.lexists(path):
            unlink_if_present(path)
            removed.append(path)
    return removed


def _remove(
    folders: list[str], keys: set[str], suffixes: tuple[str, ...], before: float | None
) -> list[str]:
    """Remove the stale files of `folders` last changed `before` (any, if None)."""
    removed = []
    for folder in folders:
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in stale(names, keys, suffixes):
            path = os.path.join(folder, name)
            try:
                if before is not None and os.lstat(path).st_mtime > before:
                    continue
            except FileNotFoundError:
                continue
            unlink_if_present(path)
            removed.append(path)
    return removed
