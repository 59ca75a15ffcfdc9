"""A Production, one Backstage instance, and its Venues.

<home>/production.toml   settings and the list of Venues
<home>/run/              0700: the Emperor's and every Act's sockets, FIFOs, pidfiles
<home>/log/              the Emperor's, the Production Manager's and every Act's log

A Venue is a virtual environment holding Acts (VENue = Virtual ENvironment), and a
DNS namespace where they can be booked:

<venue>/bin, lib, pyvenv.cfg   the virtualenv, with Django
<venue>/venue.toml             name, python, requirements, domains
<venue>/acts/<NAME>/           one folder per Act

They share a module because each opens the other: a Production lists its Venues,
and a Venue opened on its own finds the Production it belongs to.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from .act import Act
from .control.build import virtualenv
from .control.host import ownership, ports
from .control.host.certificates import Certificates, HostCert
from .control.managers import adoption, backup, observe
from .control.managers.acts import ActManager
from .control.managers.booking import BookingManager
from .control.managers.producer import Producer
from .control.processes import keeper
from .control.processes.client import ManagerClient
from .control.processes.crew import Crew
from .control.processes.router import Router
from .control.processes.stage import AnyStage
from .errors import AlreadyExists, BackstageError, InvalidSetting, NotFound, StageError
from .files import account, declared
from .model.account import ROOT, own_user_name
from .model.domains import check_hostname, check_venue_domain, domain_of, within
from .model.gig import Gig
from .model.layout import (
    ActRef,
    Layout,
    acts_dir,
    home_folder,
    venue_python,
    venue_spec_path,
    venue_user_dir,
)
from .model.names import check_name
from .model.producer import Report
from .model.snapshot import Snapshot
from .model.spec import ProductionSpec, VenueSpec

log = logging.getLogger(__name__)


class Production:
    def __init__(self, home: str | None = None) -> None:
        self.home = home_folder(home)
        self.layout = Layout(self.home)
        self.crew = Crew(self.layout)
        self.spec_path = self.layout.spec_path
        self.run_dir = self.layout.run_dir
        self.log_dir = self.layout.log_dir

    def __repr__(self) -> str:
        return f"Production({self.home!r})"

    @property
    def prefix(self) -> str:
        """Starts every vassal name of this Production, so two on one host never collide."""
        return self.layout.prefix

    @property
    def exists(self) -> bool:
        return os.path.isfile(self.spec_path)

    @property
    def spec(self) -> ProductionSpec:
        """What production.toml says; InvalidSetting when it cannot be used."""
        return declared.production_spec(self.layout)

    @property
    def problem(self) -> str:
        """Why production.toml is not what plays ("" when it is): while it cannot be used,
        the last good one plays on."""
        return declared.production_playing(self.layout)[1]

    def create(self) -> Production:
        """Make the home folder on first use; safe to call again."""
        declared.create_home(self.layout, ports.new_production)
        return self

    def declare(self, **changes: Any) -> ProductionSpec:
        self.create()
        new = dataclasses.replace(self.spec, **changes)
        declared.dump(self.spec_path, new)
        return new

    # Venues and Acts

    @property
    def venues(self) -> list[Venue]:
        found = []
        for path in self.crew.settings().venues:  # the last good ones while it is broken
            try:
                found.append(Venue(path, self))
            except NotFound:
                log.warning("Venue %s is gone; `backstage venue forget %s` drops it", path, path)
        return found

    def venues_as_root(self) -> list[str]:
        """The Venues whose Acts run as root: those without `user` while this process is
        root (the Production Manager it starts is too). Empty when it is not root."""
        if os.geteuid() != 0:
            return []
        names = []
        for venue in self.venues:
            try:
                if not venue.user:
                    names.append(venue.name)
            except (BackstageError, OSError):
                continue  # a venue.toml that cannot be read: `status` says why elsewhere
        return names

    def venue(self, name: str) -> Venue:
        missing = f"no Venue {name!r} in the Production at {self.home}"
        return _named(self.venues, name, f"{missing}: create it with `backstage venue new {name}`")

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

    def restore(self, archive: str, key: str | None = None) -> tuple[Act, list[str], bool]:
        """The shared data of a backup put back into the Act it was made of (or `key`),
        while it serves; an Act that is gone is made again from it (not started). The Act,
        the shared paths restored, and whether it was made again."""
        key = key or backup.archived_act(archive)
        venue_name, _, name = key.partition("/")
        venue = self.venue(venue_name)
        if name in declared.act_names(venue.path):
            act = venue.act(name)
            return act, act.restore(archive), False
        ref = ActRef(venue.name, venue.path, name, venue.user)
        backup.recreate(self.crew, ref, archive)
        act = venue.act(name)
        return act, list(act.spec.shared), True

    # Running

    @property
    def stage(self) -> AnyStage:
        return self.crew.stage

    @property
    def manager(self) -> ManagerClient:
        """The Production Manager, as other processes reach it."""
        return self.crew.manager

    @property
    def router(self) -> Router:
        return self.crew.router

    @functools.cached_property
    def booking(self) -> BookingManager:
        return BookingManager(self.crew)

    @property
    def gigs(self) -> list[Gig]:
        """Every booked or live host, from the router's stats and the declared bookings."""
        return observe.gigs(self.crew)

    def sync_dns(self, dry_run: bool = False) -> Report:
        """Bring the Producer's zones (PowerDNS) in step with the bookings; `dry_run`
        only says what would change. The Production Manager does it by itself too."""
        return Producer(self.layout).sync(dry_run=dry_run)

    @property
    def certificates(self) -> Certificates:
        """The hosts' certificates the router's TLS listener serves (`https`)."""
        return self.crew.router.certificates

    def import_certificate(self, host: str, cert: str, key: str, chain: str = "") -> HostCert:
        """Serve the certificate in the file `cert` (with its `key`, and `chain` if
        given) for `host`; refused, nothing written, when it cannot serve it."""

        def read(path: str, what: str) -> bytes:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as exc:
                raise InvalidSetting(
                    f"cannot read the {what} file {path}: {exc.strerror}"
                ) from None

        found = self.certificates.install(
            host,
            read(cert, "certificate"),
            read(key, "key"),
            read(chain, "chain") if chain else b"",
        )
        # the router reads each pair once: the Manager replaces it at its next pass,
        # and a Manager at rest passes on a declared file's change only
        self.manager.poke()
        return found

    def up(self) -> None:
        self.manager.up()

    def snapshot(self, previous: Snapshot | None = None, detail: str | None = None) -> Snapshot:
        """Everything playing, as plain data; rates are over the time since `previous`."""
        return observe.take(self.crew, previous, detail)

    def down(self) -> None:
        self.manager.down()


class Venue:
    def __init__(self, path: str, production: Production | None = None) -> None:
        """Open the Venue at `path`, in the Production it belongs to unless one is given."""
        self.path = os.path.abspath(os.path.expanduser(path))
        self.spec_path = venue_spec_path(self.path)
        self.acts_dir = acts_dir(self.path)
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
        return declared.venue_spec(self.path)

    @functools.cached_property
    def name(self) -> str:
        # Fixed at creation (every Act's key, vassal name and run/ paths hang on it):
        # read once per Venue object, not once per Act path a snapshot asks for.
        return self.spec.name

    @property
    def user(self) -> str:
        """The system user its Acts run as; "" = as Backstage itself."""
        return self.spec.runs_as

    def set_user(self, user: str) -> VenueSpec:
        """Run the Venue's Acts as the system user `user` ("" or "root" = as Backstage):
        the Production Manager restarts those playing, and makes their folders the
        user's."""
        if user == ROOT:
            warn_root(self.name)
        elif user:
            ownership.check_python(self.path, user)
        new = self.declare(user=user)
        if not new.runs_as:
            ownership.take_packages(self.path)  # its user installed them: no more
        return new

    @property
    def python(self) -> str:
        return venue_python(self.path)

    def declare(self, **changes: Any) -> VenueSpec:
        new = dataclasses.replace(self.spec, **changes)
        declared.dump(self.spec_path, new)
        return new

    # Venue domains: where its Acts may be booked

    @property
    def domains(self) -> tuple[str, ...]:
        return self.spec.domains

    def add_domain(self, domain: str) -> str:
        """Declare `domain` (and its subdomains) as this Venue's; one Venue per domain."""
        domain = check_hostname(domain)
        check_venue_domain(domain)  # before the overlaps: "com" overlaps every domain
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
        return [Act(self, name) for name in declared.act_names(self.path)]

    def act(self, name: str) -> Act:
        create = f"create it with `backstage act new {self.name} {name}`"
        return _named(self.acts, name, f"no Act {name!r} in Venue {self.name}: {create}")

    def new_act(
        self,
        name: str,
        port: int | None = None,
        processes: int | str | None = None,
        start: bool = True,
        force: bool = False,
    ) -> Act:
        """Scaffold a Django project as a new Act, declare it, and (by default) start it;
        all or nothing: an Act that cannot start is removed again. A `port` outside the
        Production's `ports` is refused unless `force`."""
        check_name("Act", name)
        self.production.create()
        self.production.add_venue(self)
        ref = ActRef(self.name, self.path, name, self.user)
        playing = self._playing()
        ActManager.create(self.production.crew, ref, port, processes, force)
        act = Act(self, name)
        if start:
            self._start_unless_downed(act, playing)
        return act

    def add_act(
        self,
        name: str,
        source: str,
        wsgi: str | None = None,
        settings: str | None = None,
        port: int | None = None,
        processes: int | str | None = None,
        env: Mapping[str, str] | None = None,
        start: bool = True,
        force: bool = False,
        release: Sequence[str] | None = None,
    ) -> Act:
        """Adopt the project at `source` as a new Act: a folder is served where it is
        (never written), a git URL is cloned into the Act's folder. Django's settings
        and WSGI callable are found in the project; `wsgi` (MODULE:CALLABLE, or an
        application factory MODULE:FACTORY(ARGS) with literal arguments) names another
        WSGI app, `settings` overrides the one found. `release` lists its release steps
        (default: Django's migrate and collectstatic). Its requirements go into the
        Venue, it must import, and by default it starts (release steps first); all or
        nothing."""
        check_name("Act", name)
        self.production.create()
        self.production.add_venue(self)
        ref = ActRef(self.name, self.path, name, self.user)
        playing = self._playing()
        asked = adoption.Adoption(source, wsgi, settings, port, processes, env, force, release)
        adoption.adopt(self.production.crew, ref, asked)
        act = Act(self, name)
        if start:
            self._start_unless_downed(act, playing)
        return act

    def _start_unless_downed(self, act: Act, playing: tuple[bool, bool]) -> None:
        """Start a new Act, unless the Production was playing when it was asked for and
        was downed meanwhile (an install takes minutes): that `down` is not undone. A
        `down` stops the keeper first, and waits for it: the sooner seen."""
        now = self._playing()
        if (playing[1] and not now[1]) or (playing[0] and not any(now)):
            raise StageError(
                f"the Production went down while {act.key} was being made: it is there, "
                f"not started (`backstage up`, then `backstage act start {act.key}`)"
            )
        self._start_or_remove(act)

    def _playing(self) -> tuple[bool, bool]:
        """Whether the Production Manager runs, and its keeper (which `down` stops first)."""
        production = self.production
        return production.manager.running(), keeper.running(production.layout)

    def _start_or_remove(self, act: Act) -> None:
        try:
            act.start()
        except BaseException:
            try:
                act.manager.remove(keep_log=True)  # the failure's message names the log
            except (BackstageError, OSError) as exc:
                log.warning("%s could not be removed after it failed: %s", act.key, exc)
            raise

    @classmethod
    def create(
        cls,
        name: str,
        parent: str,
        production: Production | None = None,
        requirements: tuple[str, ...] = ("django",),
        python: str | None = None,
        user: str | None = None,
    ) -> Venue:
        """Build a Venue at `parent/name` and add it to the Production; all or nothing.
        `python` (major.minor, e.g. "3.12"; default: the one the Stage's uwsgi embeds)
        wherever it is installed; on another Python than the Stage's, the Venue gets its
        own uwsgi, built for it (about 25 s). Made by root, its Acts run as a system user
        of its own, made with it (`remove()` removes it), unless `user` is "root" (or
        the Production's `venue_user` is) or names an existing user; or, when that
        user could not read the Python or reach `parent`, as root with one line of
        warning that says what to change."""
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
        stage_uwsgi = production.stage.binary
        embedded = stage_uwsgi.python_major_minor
        interpreter = production.stage.python_for(python or embedded)
        own_uwsgi = (python or embedded) != embedded
        runs_as = _new_venue_user(production, name, user)
        own = runs_as == own_user_name(production.prefix, name)
        instead = ""  # why a Venue that would have a user of its own runs as root
        if own:
            account.check_free(runs_as)
            instead = ownership.why_no_new_user(interpreter, parent) or ""
            if instead:  # the seed's new_venue(name, parent) plays wherever it is called
                runs_as, own = ROOT, False
        elif runs_as not in ("", ROOT):
            account.account(runs_as)
        production.create()
        if own:
            account.make(runs_as, venue_user_dir(path), account.own_comment(path))
        try:
            virtualenv.create_venue(
                path,
                name,
                interpreter,
                requirements,
                production.home,
                uwsgi=stage_uwsgi.version if own_uwsgi else "",
                build_log=production.layout.venue_build_log(name),
                user=runs_as,
            )
            try:
                if runs_as not in ("", ROOT) and not own:
                    ownership.check_python(path, runs_as)
                venue = cls(path, production)
                production.add_venue(venue)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
        except BaseException:
            if own:
                account.remove(runs_as, account.own_comment(path))
            raise
        if instead:
            log.warning(
                "Venue %s runs its Acts as root, not as a user of its own: %s, to give it "
                "one (venue new again, or `venue set %s user=NAME`)",
                name, instead, name,
            )  # fmt: skip
        elif runs_as == ROOT:
            warn_root(name)
        return venue

    def remove(self) -> None:
        """Remove the Venue: its Acts (stopped and deleted), its folder, its place in
        the Production, and the system user Backstage made for it."""
        for act in self.acts:
            act.remove()
        user, comment = self.spec.user, account.own_comment(self.path)
        if user and user != ROOT:
            ownership.await_no_process(user)
        if self.path in self.production.spec.venues:
            self.production.forget_venue(self)  # venue.toml names the user: read before
        if user and user != ROOT:
            account.remove(user, comment)  # only the one made for it
        shutil.rmtree(self.path)


def _new_venue_user(production: Production, name: str, asked: str | None) -> str:
    """Who a new Venue's Acts run as: `asked` if given; else, when Backstage runs as
    root, root if the Production's venue_user says so, or a system user of the
    Venue's own; else as Backstage itself ("")."""
    if asked:
        return asked
    if os.geteuid() != 0:
        return ""
    if production.spec.venue_user == ROOT:
        return ROOT
    return own_user_name(production.prefix, name)


def warn_root(venue: str) -> None:
    log.warning(
        'Venue %s runs its Acts as root, as asked (user = "root"): anyone who can change '
        "its code or its packages can act as root",
        venue,
    )


Named = TypeVar("Named", "Venue", Act)


def _named(items: Sequence[Named], name: str, missing: str) -> Named:
    """The one of `items` called `name`; NotFound saying `missing` when none is."""
    for item in items:
        if item.name == name:
            return item
    raise NotFound(missing)
