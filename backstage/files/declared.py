"""Reading and writing the declared files, and the whole Production read in one pass.

`read(layout)` loads `production.toml`, every Venue's `venue.toml` and every Act's
`act.toml` once: the Production Manager's pass and a Snapshot work from what it
returns, not from a file read per Act per question. A file that cannot be read
leaves only its own Venue or Act out, with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import BackstageError, InvalidSetting, NotFound
from ..model.layout import ActRef, Layout, acts_dir, venue_spec_path
from ..model.spec import ActSpec, ProductionSpec, VenueSpec, from_dict, to_dict
from . import tomlfile
from .fs import write_atomic

S = TypeVar("S")


def load(cls: type[S], path: str) -> S:
    return from_dict(cls, tomlfile.load(path), path)


def dump(path: str, spec: Any) -> None:
    data = to_dict(spec)
    # An environment may hold secrets: such a file is for its owner's eyes only.
    private = bool(data.get("env"))
    write_atomic(path, tomlfile.dumps(data), 0o600 if private else 0o644)


def production_spec(layout: Layout) -> ProductionSpec:
    if not os.path.isfile(layout.spec_path):
        return ProductionSpec()
    return load(ProductionSpec, layout.spec_path)


def create_home(layout: Layout) -> None:
    """Make the home folder on first use; safe to call again."""
    try:
        os.makedirs(layout.log_dir, exist_ok=True)
        os.makedirs(layout.run_dir, mode=0o700, exist_ok=True)
        os.chmod(layout.run_dir, 0o700)
        if not os.path.isfile(layout.spec_path):
            dump(layout.spec_path, ProductionSpec())
    except OSError as exc:
        raise InvalidSetting(
            f"cannot create the Production at {layout.home} ({exc.strerror}): "
            "set BACKSTAGE_HOME to a folder you can write"
        ) from exc


def venue_spec(venue_path: str) -> VenueSpec:
    return load(VenueSpec, venue_spec_path(venue_path))


def act_spec(ref: ActRef) -> ActSpec:
    try:
        return load(ActSpec, ref.spec_path)
    except FileNotFoundError:
        raise NotFound(f"Act {ref.key} is gone (no {ref.spec_path})") from None


def act_names(venue_path: str) -> list[str]:
    """The Acts of a Venue: the folders of `acts/` that hold an `act.toml`."""
    folder = acts_dir(venue_path)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    return [name for name in names if os.path.isfile(os.path.join(folder, name, "act.toml"))]


@dataclass(frozen=True)
class DeclaredVenue:
    path: str
    spec: VenueSpec | None
    error: str = ""  # why `spec` is None


@dataclass(frozen=True)
class DeclaredAct:
    ref: ActRef
    spec: ActSpec | None
    error: str = ""  # why `spec` is None


@dataclass(frozen=True)
class Declared:
    """Everything the files of one Production declare, read once."""

    production: ProductionSpec
    venues: tuple[DeclaredVenue, ...]
    acts: tuple[DeclaredAct, ...]

    def domains_of(self, venue: str) -> tuple[str, ...]:
        for found in self.venues:
            if found.spec is not None and found.spec.name == venue:
                return found.spec.domains
        return ()


def read(layout: Layout) -> Declared:
    production = production_spec(layout)
    venues, acts = [], []
    for path in production.venues:
        try:
            spec = venue_spec(path)
        except (BackstageError, OSError) as exc:
            venues.append(DeclaredVenue(path, None, _reason(exc, path)))
            continue
        venues.append(DeclaredVenue(path, spec))
        for name in act_names(path):
            ref = ActRef(spec.name, path, name)
            try:
                acts.append(DeclaredAct(ref, act_spec(ref)))
            except (BackstageError, OSError) as exc:
                acts.append(DeclaredAct(ref, None, _reason(exc, ref.spec_path)))
    return Declared(production, tuple(venues), tuple(acts))


def _reason(exc: Exception, path: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path} is gone"
    if isinstance(exc, OSError):
        return f"cannot read {path}: {exc.strerror}"
    return str(exc)
