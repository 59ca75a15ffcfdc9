"""A Venue: a virtual environment holding Acts (VENue = Virtual ENvironment).

<venue>/bin, lib, pyvenv.cfg   the virtualenv, with Django
<venue>/venue.toml             name, python, requirements, domains
<venue>/acts/<NAME>/           one folder per Act
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
from typing import TYPE_CHECKING, Any

from . import spec as specs
from . import virtualenv
from .domains import check_hostname, domain_of, within
from .errors import AlreadyExists, InvalidSetting, NotFound
from .names import check_name
from .production import Production
from .spec import VenueSpec

if TYPE_CHECKING:
    from .act import Act


class Venue:
    def __init__(self, path: str, production: Production | None = None) -> None:
        """Open the Venue at `path`, in the Production it belongs to unless one is given."""
        self.path = os.path.abspath(os.path.expanduser(path))
        self.spec_path = os.path.join(self.path, "venue.toml")
        self.acts_dir = os.path.join(self.path, "acts")
        if not os.path.isfile(self.spec_path):
            raise NotFound(
                f"no Venue at {self.path}: create one with new_venue() or `backstage venue new`"
            )
        self.production = production or Production(self.spec.production or None)

    def __repr__(self) -> str:
        return f"Venue({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Venue) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def spec(self) -> VenueSpec:
        return specs.load(VenueSpec, self.spec_path)

    @functools.cached_property
    def name(self) -> str:
        # Fixed at creation (every Act's key, vassal name and run/ paths hang on it):
        # read once per Venue object, not once per Act path a snapshot asks for.
        return self.spec.name

    @property
    def python(self) -> str:
        return os.path.join(self.path, "bin", "python")

    def declare(self, **changes: Any) -> VenueSpec:
        new = dataclasses.replace(self.spec, **changes)
        specs.dump(self.spec_path, new)
        return new

    # Venue domains: where its Acts may be booked

    @property
    def domains(self) -> tuple[str, ...]:
        return self.spec.domains

    def add_domain(self, domain: str) -> str:
        """Declare `domain` (and its subdomains) as this Venue's; one Venue per domain."""
        domain = check_hostname(domain)
        if domain in self.domains:
            return domain
        for other in self.production.venues:
            for theirs in other.domains if other != self else ():
                if within(domain, theirs) or within(theirs, domain):
                    raise AlreadyExists(
                        f"{domain} overlaps {theirs} of Venue {other.name}: a host belongs to "
                        f"one Venue only; remove it there first"
                    )
        self.declare(domains=(*self.domains, domain))
        return domain

    def remove_domain(self, domain: str) -> None:
        """Drop a Venue domain; refused while an Act is booked under it."""
        domain = check_hostname(domain)
        if domain not in self.domains:
            raise NotFound(f"{domain} is not a domain of Venue {self.name}")
        rest = tuple(d for d in self.domains if d != domain)
        for act in self.acts:
            stranded = [h for h in act.hosts if within(h, domain) and domain_of(h, rest) is None]
            if stranded:
                raise AlreadyExists(
                    f"{act.key} is booked at {stranded[0]}: "
                    f"`backstage unbook {act.key} {stranded[0]}` first"
                )
        self.declare(domains=rest)

    @property
    def acts(self) -> list[Act]:
        from .act import Act

        try:
            names = sorted(os.listdir(self.acts_dir))
        except FileNotFoundError:
            return []
        return [
            Act(self, name)
            for name in names
            if os.path.isfile(os.path.join(self.acts_dir, name, "act.toml"))
        ]

    def act(self, name: str) -> Act:
        for act in self.acts:
            if act.name == name:
                return act
        raise NotFound(
            f"no Act {name!r} in Venue {self.name}: "
            f"create it with `backstage act new {self.name} {name}`"
        )

    def new_act(self, name: str, **options: Any) -> Act:
        from .act import ActManager

        return ActManager.create(self, name, **options)

    @classmethod
    def create(
        cls,
        name: str,
        parent: str,
        production: Production | None = None,
        requirements: tuple[str, ...] = ("django",),
    ) -> Venue:
        """Build a Venue at `parent/name` and add it to the Production; all or nothing."""
        check_name("Venue", name)
        production = production or Production()
        parent = os.path.abspath(os.path.expanduser(parent))
        path = os.path.join(parent, name)
        if not os.path.isdir(parent):
            raise NotFound(f"folder {parent} does not exist: create it first or pick another")
        if not os.access(parent, os.W_OK):
            raise InvalidSetting(f"folder {parent} is not writable: pick another folder")
        if os.path.lexists(path):
            raise AlreadyExists(
                f"{path} already exists: open it with Venue({path!r}) or pick another name"
            )
        production.check_venue_name(name)
        python = virtualenv.find_python(production.stage.binary.python_major_minor)
        production.create()
        try:
            virtualenv.build(path, python, requirements)
            os.makedirs(os.path.join(path, "acts"))
            spec = VenueSpec(
                name=name,
                python=virtualenv.python_version(os.path.join(path, "bin", "python")),
                requirements=requirements,
                production=production.home,
            )
            specs.dump(os.path.join(path, "venue.toml"), spec)
            venue = cls(path, production)
            production.add_venue(venue)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return venue
