"""Backups: one archive of an Act's declared file (act.toml) and its shared data, and
back again, while the Act serves.

The archive is a gzipped tar, 0600 (act.toml may hold secrets): `backup.json` (which
Act, when, its shared paths), `act.toml`, and `shared/` as the Act keeps it. A SQLite
file is copied with SQLite's backup API, so a write under way never tears it. A restore
puts each shared path back: a SQLite database through the backup API into the live
file (the app's connections see the restored data at their next transaction), any
other file or folder beside it and renamed over it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tarfile
import tempfile
import time

from ...errors import InvalidSetting, NotFound
from ...files import tomlfile
from ...files.fs import write_atomic
from ...model.checks import check_shared
from ...model.layout import ActRef
from ...model.spec import ActSpec, from_dict
from ..host import ports, shared
from ..processes.crew import Crew
from . import adoption
from .acts import ActManager

MANIFEST = "backup.json"


def default_name(ref: ActRef) -> str:
    return f"{ref.venue}.{ref.name}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"


def backup(act: ActManager, out: str) -> list[str]:
    """Write the archive of the Act to `out`; the shared paths it holds."""
    ref, spec = act.ref, act.spec()
    held = [path for path in spec.shared if os.path.lexists(os.path.join(ref.shared_dir, path))]
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=ref.path) as staged:
        for path in held:
            target = os.path.join(staged, "shared", path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shared.copy_data(os.path.join(ref.shared_dir, path), target)
        manifest = {"act": ref.key, "made": time.time(), "shared": held}
        write_atomic(os.path.join(staged, MANIFEST), json.dumps(manifest, indent=2) + "\n", 0o600)
        shutil.copy2(ref.spec_path, os.path.join(staged, "act.toml"))
        partial = out + ".partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as file, tarfile.open(fileobj=file, mode="w:gz") as tar:
                for name in (MANIFEST, "act.toml", "shared"):
                    if os.path.lexists(os.path.join(staged, name)):
                        tar.add(os.path.join(staged, name), arcname=name)
            os.replace(partial, out)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
    return held


def archived_act(archive: str) -> str:
    """VENUE/NAME of the Act the archive was made of."""
    manifest = _manifest(archive)
    key = manifest.get("act")
    if not isinstance(key, str):
        raise InvalidSetting(f"{archive} names no Act: give VENUE/NAME")
    return key


def _manifest(archive: str) -> dict[str, object]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            found = json.load(member) if member is not None else None
    except (OSError, tarfile.TarError, KeyError, ValueError):
        found = None
    if not isinstance(found, dict):
        raise InvalidSetting(f"{archive} is not a backup of an Act (`backstage backup` makes one)")
    return found


def recreate(crew: Crew, ref: ActRef, archive: str) -> ActManager:
    """An Act that is gone made again from its backup: its act.toml (not enabled, on its
    port if that is still free) and its shared data, served from its folder when it
    starts. An Act added from git is added again instead, then restored."""
    _manifest(archive)
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile("act.toml")
        text = member.read().decode() if member is not None else ""
    where = f"act.toml in {archive}"
    spec = dataclasses.replace(
        from_dict(ActSpec, tomlfile.loads(text, where), where), name=ref.name
    )
    if spec.source == os.path.join(ref.path, adoption.CLONE_DIR) or not spec.source:
        raise InvalidSetting(
            f"{ref.key} was not added from a folder: add it again (`backstage act add`), "
            f"then restore {archive}"
        )
    if not os.path.isdir(spec.source):
        raise NotFound(f"{spec.source}, the folder {ref.key} served, is gone: restore it first")
    port = spec.port if ports.port_free(spec.port) else None

    def build(new: ActSpec) -> ActSpec:
        os.makedirs(ref.path)
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
        fields.update(port=new.port, enabled=False, current=False)
        made = ActSpec(**fields)
        adoption.write_act_files(crew, ref, made)
        return made

    act = ActManager.create(crew, ref, port, spec.processes, True, build)
    try:
        restore(act, archive)
    except BaseException:
        act.discard()
        raise
    return act


def restore(act: ActManager, archive: str) -> list[str]:
    """Put the shared data of the archive back into the Act; the paths restored."""
    ref = act.ref
    manifest = _manifest(archive)
    with (
        tarfile.open(archive, "r:gz") as tar,
        tempfile.TemporaryDirectory(prefix=".restore-", dir=ref.path) as staged,
    ):
        try:
            tar.extractall(staged, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise InvalidSetting(f"{archive} cannot be unpacked: {exc}") from None
        listed = manifest.get("shared")
        paths = [str(p) for p in listed] if isinstance(listed, list) else []
        for path in paths:
            check_shared(path)  # never a path out of shared/
        declared = act.spec().shared
        missing = [p for p in paths if p not in declared]
        if missing:
            act.declare(shared=declared + tuple(missing))
        for path in paths:
            _put_back(os.path.join(staged, "shared", path), os.path.join(ref.shared_dir, path))
    return paths


def _put_back(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if shared.is_sqlite(source) and shared.is_sqlite(target):
        shared.sqlite_into(source, target)
        return
    beside = target + ".restoring"
    if os.path.isdir(beside):
        shutil.rmtree(beside)
    shared.copy_data(source, beside)
    if os.path.isdir(target) and not os.path.islink(target):
        old = target + ".replaced"
        os.rename(target, old)
        os.rename(beside, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(beside, target)
