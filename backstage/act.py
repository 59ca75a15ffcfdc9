"""An Act: a runnable Django project in a Venue (runnable, not necessarily running).

    <venue>/acts/<NAME>/manage.py, <NAME>/   the Django project
    <venue>/acts/<NAME>/act.toml             port, processes, env, enabled

What an Act *is doing* is never stored: `state` and `sess` are worked out each
time from the Emperor's stats and the Act's own stats server. What a user does
with it goes through its Act Manager (`backstage.control.managers.acts`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from emperor.stats import InstanceStats

from .control.host import shared as shared_control
from .control.managers import adoption, versions
from .control.managers import backup as backup_control
from .control.managers import releases as release_control
from .control.managers.acts import START_TIMEOUT, STOP_TIMEOUT, ActManager
from .control.managers.booking import BookingManager
from .control.managers.releases import Release
from .model.gig import Gig
from .model.layout import ActRef
from .model.sess import Sess
from .model.spec import ActSpec
from .model.state import FAILED, INVALID, RUNNING, STARTING, STATES, STOPPED, derive_state

if TYPE_CHECKING:
    from .production import Production, Venue

__all__ = [
    "FAILED",
    "INVALID",
    "RUNNING",
    "STARTING",
    "STATES",
    "STOPPED",
    "Act",
    "derive_state",
]


class Act:
    def __init__(self, venue: Venue, name: str) -> None:
        self.venue = venue
        self.name = name
        self.ref = ActRef(venue.name, venue.path, name, venue.user)
        self.path = self.ref.path
        self.spec_path = self.ref.spec_path

    def __repr__(self) -> str:
        return f"<Act {self.key}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Act) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def production(self) -> Production:
        return self.venue.production

    @functools.cached_property
    def manager(self) -> ActManager:
        return ActManager(self.production.crew, self.ref)

    @property
    def spec(self) -> ActSpec:
        """What act.toml declares, read now."""
        return self.manager.spec()

    # Where the Act's control surfaces and log are

    @property
    def vassal_name(self) -> str:
        return self.manager.vassal

    @property
    def stats_path(self) -> str:
        return self.manager.stats_path

    @property
    def fifo_path(self) -> str:
        return self.manager.fifo_path

    @property
    def socket_path(self) -> str:
        """The uwsgi-protocol socket the router and nginx pass this Act's Gigs to."""
        return self.production.layout.act_socket(self.ref)

    @property
    def gigs_config_path(self) -> str:
        """The ini with the Act's subscribe2 lines, which its vassal config includes."""
        return self.production.layout.act_gigs(self.ref)

    def withheld_path(self, host: str) -> str:
        return self.production.layout.withheld(self.ref, host)

    @property
    def static_root(self) -> str:
        return self.ref.static_root

    @property
    def log_path(self) -> str:
        return self.manager.log_path

    # What it is doing, from stats only

    @property
    def port(self) -> int:
        """The port the Act serves HTTP on, on 127.0.0.1 (declared: it holds while stopped)."""
        return self.spec.port

    def get_uwsgi_port(self) -> int:
        """`port`, by the name the first README gave it, which keeps working."""
        return self.port

    def stats(self, timeout: float = 1.0) -> InstanceStats | None:
        """What its stats server says now, or None when it does not answer."""
        return self.manager.stats(timeout)

    @property
    def sess(self) -> Sess | None:
        """The live Sess, read from its stats server now (None when not playing)."""
        return self.manager.sess()

    @property
    def state(self) -> str:
        """stopped, starting, running, failed, sleeping or invalid, worked out now from
        stats."""
        return self.manager.state()

    # What a user does with it

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Play the Act. Its code not yet playing is a new version: for an adopted
        project its requirements, pre-flight and release steps come first. A folder's
        code that fails them is not served: the version that served last starts, else
        nothing. (A scaffold's first version, and one of a folder unchanged since, start
        unchecked: see `control.versions`.)"""
        spec = self.spec
        if self.manager.sess() is None:
            if versions.follows_source(self.ref, spec):
                versions.before_start(self.production.crew, self.manager)
            else:
                adoption.prepare(self.production.crew, self.manager)
        self.manager.start(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.manager.stop(timeout)

    def reload(self, timeout: float = START_TIMEOUT) -> None:
        """New code with no failed request, once it is known to import: the pre-flight
        (and for an adopted project its requirements and release steps) come first, and a
        failure leaves the running workers serving the old code. A folder's code becomes
        a version first (`control.versions`): what serves is what was checked."""
        self.manager.running_or_raise()
        if versions.follows_source(self.ref, self.spec):
            versions.serve(self.production.crew, self.manager, timeout=timeout)
            return
        adoption.prepare(self.production.crew, self.manager)
        self.manager.reload(timeout)

    # Releases

    def deploy(
        self, commit: str | None = None, timeout: float = release_control.HEALTH_TIMEOUT
    ) -> Release:
        """Build the next release (a commit of its git source, else a copy of its folder),
        check it answers beside the running one, then move the Act to it with no failed
        request. A release that fails a step or never answers is removed; the running
        one serves on."""
        return release_control.deploy(self.production.crew, self.manager, commit, timeout)

    @property
    def releases(self) -> list[Release]:
        """Its releases, oldest first, from the folders in `releases/`."""
        return release_control.releases(self.ref)

    @property
    def shared_data(self) -> list[tuple[str, int]]:
        """What the app wrote that outlives its releases (`shared` in act.toml, in the
        Act's shared/ folder): each path there with its size in bytes."""
        return shared_control.present(self.ref, self.spec.shared)

    def backup(self, out: str | None = None) -> str:
        """One archive of act.toml and the shared data (SQLite copied with its backup
        API), 0600, at `out` (default VENUE.NAME-<time>.tar.gz here); its path."""
        path = out or backup_control.default_name(self.ref)
        backup_control.backup(self.manager, path)
        return path

    def restore(self, archive: str) -> list[str]:
        """The shared data of a backup put back while the Act serves; the paths."""
        return backup_control.restore(self.manager, archive)

    def rollback(self, number: int | None = None) -> Release:
        """Back to release `number` (by default the one before the live one)."""
        return release_control.rollback(self.manager, number)

    # Settings and environment

    def set(self, *items: str) -> ActSpec:
        """Apply `KEY=VALUE` settings to act.toml (`processes=4`, `release=[...]`,
        `workers.celery=celery -A proj worker`, `uwsgi.harakiri=30`); an empty value
        removes a table entry. A playing Act restarts with a changed vassal config, and
        reloads (checked first) where only the code generated for it changed: a reload
        refused puts the settings back, and says why. A git Act's changed `wsgi` is a new
        release of its live commit, checked and served as a deploy."""
        crew = self.production.crew

        def rebuild() -> Release:
            return release_control.rebuild(crew, self.manager)

        return adoption.configure(crew, self.manager, items, self.reload, rebuild)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.spec.env)

    def set_env(self, **values: str) -> None:
        """Set variables of the Act's environment (act.toml becomes 0600). A playing Act
        reloads (checked first) to apply them, or restarts when it has workers or cron
        (forked by its master, which read the env at its start)."""
        adoption.set_env(self.production.crew, self.manager, values, self.reload)

    def unset_env(self, *keys: str) -> None:
        adoption.unset_env(self.production.crew, self.manager, keys, self.reload)

    def run(self, argv: Sequence[str]) -> int:
        """Run a command in the Act's folder with its Venue and environment; its status."""
        return adoption.run(self.manager, argv)

    def manage(self, args: Sequence[str]) -> int:
        """Django's manage.py with the Act's settings and environment; its status."""
        return adoption.manage(self.manager, args)

    def prepare(self) -> None:
        """Requirements, pre-flight and release steps, as before a start or reload."""
        adoption.prepare(self.production.crew, self.manager)

    def fifo(self, commands: str) -> None:
        self.manager.fifo(commands)

    def remove(self, keep_data: bool = False) -> str | None:
        """Stop and delete the Act, its shared data too unless `keep_data` (then the
        folder it was moved to is returned)."""
        return self.manager.remove(keep_data)

    # Gigs

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts this Act is booked at (declared), whether it plays or not."""
        return self.spec.hosts

    @functools.cached_property
    def _booking(self) -> BookingManager:
        return BookingManager(self.production.crew)

    def book(self, host: str, timeout: float = START_TIMEOUT) -> None:
        self._booking.book(self.manager, host, timeout)

    def unbook(self, host: str, timeout: float = STOP_TIMEOUT) -> None:
        self._booking.unbook(self.manager, host, timeout)

    @property
    def gigs(self) -> list[Gig]:
        return [gig for gig in self.production.gigs if self.key in gig.acts + gig.booked]
