"""A Production: one Backstage instance, its home folder and everything in it.

<home>/production.toml   settings and the list of Venues
<home>/run/              0700: the Emperor's and every Act's sockets, FIFOs, pidfiles
<home>/log/              the Emperor's, the Production Manager's and every Act's log
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any

from . import spec as specs
from .errors import AlreadyExists, InvalidSetting, NotFound
from .spec import ProductionSpec

if TYPE_CHECKING:
    from .act import Act
    from .booking import BookingManager
    from .gig import Gig
    from .manager import ProductionManager
    from .router import Router
    from .snapshot import Snapshot
    from .stage import Stage
    from .venue import Venue

log = logging.getLogger(__name__)

DEFAULT_HOME = "~/.backstage"


def default_home() -> str:
    return os.environ.get("BACKSTAGE_HOME") or DEFAULT_HOME


class Production:
    def __init__(self, home: str | None = None) -> None:
        self.home = os.path.abspath(os.path.expanduser(home or default_home()))
        self.spec_path = os.path.join(self.home, "production.toml")
        self.run_dir = os.path.join(self.home, "run")
        self.log_dir = os.path.join(self.home, "log")

    def __repr__(self) -> str:
        return f"Production({self.home!r})"

    @functools.cached_property
    def prefix(self) -> str:
        """Starts every vassal name of this Production, so two on one host never collide."""
        return "bs" + hashlib.sha1(self.home.encode()).hexdigest()[:8]

    @property
    def exists(self) -> bool:
        return os.path.isfile(self.spec_path)

    @property
    def spec(self) -> ProductionSpec:
        if not self.exists:
            return ProductionSpec()
        return specs.load(ProductionSpec, self.spec_path)

    def create(self) -> Production:
        """Make the home folder on first use; safe to call again."""
        try:
            os.makedirs(self.log_dir, exist_ok=True)
            os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
            os.chmod(self.run_dir, 0o700)
            if not self.exists:
                specs.dump(self.spec_path, ProductionSpec())
        except OSError as exc:
            raise InvalidSetting(
                f"cannot create the Production at {self.home} ({exc.strerror}): "
                "set BACKSTAGE_HOME to a folder you can write"
            ) from exc
        return self

    def declare(self, **changes: Any) -> ProductionSpec:
        self.create()
        new = dataclasses.replace(self.spec, **changes)
        specs.dump(self.spec_path, new)
        return new

    # Venues and Acts

    @property
    def venues(self) -> list[Venue]:
        from .venue import Venue

        found = []
        for path in self.spec.venues:
            try:
                found.append(Venue(path, self))
            except NotFound:
                log.warning("Venue %s is gone; `backstage venue forget %s` drops it", path, path)
        return found

    def venue(self, name: str) -> Venue:
        for venue in self.venues:
            if venue.name == name:
                return venue
        raise NotFound(
            f"no Venue {name!r} in the Production at {self.home}: "
            f"create it with `backstage venue new {name}`"
        )

    def check_venue_name(self, name: str) -> None:
        clash = [v for v in self.venues if v.name == name]
        if clash:
            raise AlreadyExists(
                f"the Production at {self.home} has a Venue named {name!r} already "
                f"(at {clash[0].path}): pick another name"
            )

    def add_venue(self, venue: Venue) -> None:
        """Make `venue` one of ours. A Venue belongs to one Production only: two would
        play its Acts twice, on the same ports."""
        paths = self.spec.venues
        if venue.path in paths:
            return
        owner = venue.spec.production
        if owner and owner != self.home and venue.path in Production(owner).spec.venues:
            raise AlreadyExists(
                f"Venue {venue.name} belongs to the Production at {owner}: "
                f"run `backstage --home {owner} venue forget {venue.name}` first"
            )
        self.check_venue_name(venue.name)
        venue.declare(production=self.home)
        self.declare(venues=paths + (venue.path,))

    def forget_venue(self, venue: Venue | str) -> None:
        """Drop a Venue (or the path of one that is gone) from this Production, leaving
        its files alone."""
        path = venue if isinstance(venue, str) else venue.path
        path = os.path.abspath(os.path.expanduser(path))
        if path not in self.spec.venues:
            raise NotFound(f"{path} is not a Venue of the Production at {self.home}")
        self.declare(venues=tuple(p for p in self.spec.venues if p != path))
        if not isinstance(venue, str) and venue.spec.production == self.home:
            venue.declare(production="")

    @property
    def acts(self) -> list[Act]:
        return [act for venue in self.venues for act in venue.acts]

    def act(self, key: str) -> Act:
        """An Act by `VENUE/NAME`."""
        venue, sep, name = key.partition("/")
        if not sep or not venue or not name:
            raise InvalidSetting(f"{key!r} does not name an Act: write VENUE/NAME")
        return self.venue(venue).act(name)

    # Running

    @functools.cached_property
    def stage(self) -> Stage:
        from .stage import Stage

        return Stage(self)

    @functools.cached_property
    def manager(self) -> ProductionManager:
        from .manager import ProductionManager

        return ProductionManager(self)

    @functools.cached_property
    def router(self) -> Router:
        from .router import Router

        return Router(self)

    @functools.cached_property
    def booking(self) -> BookingManager:
        from .booking import BookingManager

        return BookingManager(self)

    @property
    def gigs(self) -> list[Gig]:
        """Every booked or live host, from the router's stats and the declared bookings."""
        from .gig import gigs

        return gigs(self)

    def up(self) -> None:
        self.manager.up()

    def snapshot(self, previous: Snapshot | None = None, detail: str | None = None) -> Snapshot:
        """Everything playing, as plain data; rates are over the time since `previous`."""
        from .snapshot import take

        return take(self, previous, detail)

    def down(self) -> None:
        self.manager.down()
