"""Shared data: what an app writes inside its project (Django's MEDIA_ROOT, a SQLite
file, Flask's `instance/`, anything in `shared = [...]`) lives in the Act's `shared/`,
beside its versions, and each version has a symlink in its place. A new version, a
rollback or a respawn all see the same data; deleting a version deletes none.

The first version of an Act takes the data from its source (the folder it was served
from until then, SQLite files copied with SQLite's backup API, which a writer cannot
tear), or else from what the version itself holds at that path.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable

from ...files import swap
from ...model.layout import ActRef

SQLITE_HEADER = b"SQLite format 3\0"
INSTANCE = "instance"  # Flask's instance folder, in shared/


def is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def sqlite_into(source: str, target: str, timeout: float = 30.0) -> None:
    """Make the SQLite database at `target` (made when absent) hold what `source` holds,
    through SQLite's backup API: consistent even while `source` is written, and one
    transaction in `target`, which a live reader of it sees whole or not at all."""
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=timeout)
    try:
        writer = sqlite3.connect(target, timeout=timeout)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()


def copy_sqlite(source: str, target: str) -> None:
    """A consistent copy of the SQLite database at `source`, even while it is written."""
    temporary = target + ".copying"
    if os.path.exists(temporary):
        os.unlink(temporary)
    sqlite_into(source, temporary)
    shutil.copymode(source, temporary)
    os.replace(temporary, target)


def copy_data(source: str, target: str) -> None:
    """`source` (a file or a folder) to `target`, SQLite files through their backup API.
    A link stays a link, never followed: the data may be a Venue user's, copied by root."""
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    elif os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(source):
            copy_data(os.path.join(source, name), os.path.join(target, name))
    elif is_sqlite(source):
        copy_sqlite(source, target)
    elif os.path.isfile(source):
        shutil.copy2(source, target, follow_symlinks=False)


def inside(root: str, paths: Iterable[str]) -> tuple[str, ...]:
    """The paths under `root` (absolute, as a pre-flight found them), relative to it."""
    base = os.path.realpath(root)
    found = []
    for path in paths:
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        if real.startswith(base + os.sep):
            found.append(os.path.relpath(real, base))
    return tuple(found)


def venue_instance(ref: ActRef, path: str) -> bool:
    """Flask's instance folder where Flask puts it for an installed package: in the
    Venue's `var/` (an Act's code lives inside its Venue's folder, which is the
    virtualenv's prefix). Made a link to the Act's shared `instance`, so that it is the
    Act's own, is backed up with it, and survives its releases; True when it is that.
    A folder there already is the first data; the link of another Act that plays the
    same package is left alone, one whose Act is gone is taken over."""
    var = os.path.join(os.path.realpath(ref.venue_path), "var")
    parent, name = os.path.split(path)
    if os.path.realpath(parent) != var or not name.endswith("-instance"):
        return False
    kept = os.path.join(ref.shared_dir, INSTANCE)
    if os.path.islink(path) and os.readlink(path) == kept:
        return True
    if os.path.islink(path) and os.path.exists(path):
        return False  # another Act's, playing the same package
    if not os.path.exists(kept):
        if os.path.isdir(path) and not os.path.islink(path):
            copy_data(path, kept)
        else:
            os.makedirs(kept)
    os.makedirs(var, exist_ok=True)
    # the app may be serving from this folder (a git Act before its first release is
    # served from its clone, inside the Venue): the link takes its place in one step
    swap.put_link(kept, path)
    return True


def drop_dangling(venue_path: str) -> None:
    """Links of the Venue's var/ to the shared data of an Act that is gone: Flask's
    `os.makedirs(app.instance_path, exist_ok=True)` fails on one."""
    _drop_venue_links(venue_path, lambda link: not os.path.exists(link))


def drop_links_to(ref: ActRef) -> None:
    """The links of the Venue's var/ to the Act's shared data: gone with the Act."""
    _drop_venue_links(ref.venue_path, lambda link: os.readlink(link).startswith(ref.path + os.sep))


def _drop_venue_links(venue_path: str, drop: Callable[[str], bool]) -> None:
    var = os.path.join(venue_path, "var")
    try:
        names = os.listdir(var)
    except OSError:
        return
    for name in names:
        path = os.path.join(var, name)
        if os.path.islink(path) and drop(path):
            os.unlink(path)


def link(ref: ActRef, version: str, paths: Iterable[str], source: str = "") -> None:
    """Put a symlink to `shared/<path>` at each path of the `version` folder, the data
    taken first from `source`, else from the version's own, when shared/ has none yet."""
    for path in paths:
        kept = os.path.join(ref.shared_dir, path)
        here = os.path.join(version, path)
        if os.path.islink(here) and os.readlink(here) == kept:
            continue
        if not os.path.lexists(kept):
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            first = os.path.join(source, path) if source else ""
            for origin in (first, here):
                if origin and os.path.exists(origin) and not os.path.islink(origin):
                    copy_data(origin, kept)
                    break
            else:
                if path.endswith("/") or _looks_like_folder(path):
                    os.makedirs(kept, exist_ok=True)
        os.makedirs(os.path.dirname(here.rstrip("/")), exist_ok=True)
        swap.put_link(kept.rstrip("/"), here.rstrip("/"))


def _looks_like_folder(path: str) -> bool:
    """A data path with no file suffix (media, instance, uploads) is a folder to make; a
    database file is left for the app to create through its link."""
    return "." not in os.path.basename(path.rstrip("/"))


def present(ref: ActRef, paths: Iterable[str]) -> list[tuple[str, int]]:
    """The Act's shared data that exists, with its size in bytes."""
    found = []
    for path in paths:
        kept = os.path.join(ref.shared_dir, path)
        if os.path.exists(kept):
            found.append((path, _size(kept)))
    return found


def _size(path: str) -> int:
    if not os.path.isdir(path):
        return os.path.getsize(path)
    total = 0
    for parent, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass
    return total
