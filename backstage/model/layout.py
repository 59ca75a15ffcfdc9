"""Where everything of a Production lives: the one place that names paths and vassals.

<home>/production.toml      settings and the list of Venues
<home>/run/                 0700: every socket, FIFO and pidfile
    emperor.stats, emperor.pid, emperor.ipc (zmq) or vassals/ (dir)
    configs/NAME.ini        zmq: configs of vassals that re-exec into their Venue's uwsgi
    linked/NAME.ini         stage = "system": configs linked into the system Emperor's directory
    manager.pid, manager.lock
    holder.sock, holder.pid, holder.lock, vassal-wrapper   the socket holder (emperor.holder)
    held/NAME.json          the addresses the holder holds for vassal NAME
    router.sub, router.stats, router.sock, router.booked.json
    VENUE.NAME.stats, .fifo, .sock, .gigs.ini      one set per Act
    withheld/VENUE.NAME/HOST                       unbooked, still in its running config
<home>/log/                 emperor.log, manager.log, router.log, VENUE.NAME.log,
                            uwsgi-build.VENUE.log
<home>/keys/                production.key, production.pub, hosts/HOST.pem
<home>/tls/                 default.crt/.key (self-signed, for hosts without one),
                            hosts/HOST.crt, .key (0600), .toml, redirect/KEY (0755)
<home>/templates/           a user's overrides of the packaged templates
<venue>/venue.toml, <venue>/acts/NAME/act.toml
<venue>/.startproject.json  whether its Django's startproject is rendered without Django
A Venue with `user` (its vassals drop to that user before they bind a socket or open a
file, so nothing of theirs can be in the home's run/ or log/):
<venue>/run/                0711, root's: VENUE.NAME.gigs.ini (read as root at start,
                            so never the user's to write), VENUE.NAME.bin/ (its workers'
                            and cron jobs' scripts), withheld/VENUE.NAME/HOST,
                            tls/redirect/KEY and tls/challenges/TOKEN (0711: its own
                            hosts' marks and HTTP-01 answers, the home's are out of reach)
<venue>/run/user/           0700, the user's: VENUE.NAME.stats, .fifo, .sock, .env.json,
                            .hosts, .pending
<venue>/log/                0700, the user's: VENUE.NAME.log

A running Emperor knows a Production by these names alone: changing one would orphan
every vassal that plays. tests/backstage/test_golden.py pins them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property

UNIX_PATH_MAX = 107  # bytes of a unix socket path, less its terminating NUL
ON_DEMAND_PATH_MAX = 102  # uWSGI 2.0.31's on_demand_bind() cuts a path there
CLONE_DIR = "src"  # a git Act's clone, in its folder


def _join(folder: str, *names: str) -> str:
    """os.path.join for plain names under a folder, as fast as a string join: a Snapshot
    of a thousand Acts asks for seven paths of each, once a second."""
    return "/".join((folder.rstrip("/"), *names)) if folder else "/".join(names)


@dataclass(frozen=True)
class ActRef:
    """Which Act: its Venue's name and folder, and its own name."""

    venue: str
    venue_path: str
    name: str
    user: str = ""  # its Venue's `user`: the Act runs as them, from their own run folder

    @cached_property
    def key(self) -> str:
        # made once: a Snapshot of a thousand Acts looks each up by it several times
        return f"{self.venue}/{self.name}"

    @property
    def path(self) -> str:
        return _join(self.venue_path, "acts", self.name)

    @property
    def spec_path(self) -> str:
        return _join(self.path, "act.toml")

    @property
    def current(self) -> str:
        """The symlink an Act with releases serves from: to a release, or its source."""
        return _join(self.path, "current")

    @property
    def clone(self) -> str:
        """Where an Act added from a git repository keeps its clone."""
        return _join(self.path, CLONE_DIR)

    @property
    def releases_dir(self) -> str:
        """Its releases, one folder each: `<n>-<sha>/`."""
        return _join(self.path, "releases")

    @property
    def shared_dir(self) -> str:
        """What the app writes (`shared` in act.toml), outside every version and linked
        into each one: the same relative paths as in the project."""
        return _join(self.path, "shared")

    @property
    def static_root(self) -> str:
        """Django's STATIC_ROOT as the scaffold sets it: what nginx serves at /static/."""
        return _join(self.path, "static")


def venue_spec_path(venue_path: str) -> str:
    return _join(venue_path, "venue.toml")


def acts_dir(venue_path: str) -> str:
    return _join(venue_path, "acts")


def venue_bin(venue_path: str, program: str) -> str:
    """A program the Venue's virtualenv installed (django-admin, pip, a console script)."""
    return _join(venue_path, "bin", program)


def venue_python(venue_path: str) -> str:
    """The Venue's Python: every step, check and install of its Acts runs under it."""
    return venue_bin(venue_path, "python")


def venue_uwsgi(venue_path: str) -> str:
    """A Venue's own uwsgi, built for its Python where the Stage's embeds another: in
    libexec/, root's, because the vassal runs it as root until it drops to the Venue's
    user, and bin/ is that user's to write."""
    return _join(venue_path, "libexec", "uwsgi")


def venue_uwsgi_before(venue_path: str) -> str:
    """Where a Venue built before libexec/ keeps its own uwsgi (`ownership.own_uwsgi`
    moves it)."""
    return venue_bin(venue_path, "uwsgi")


def venue_run_dir(venue_path: str) -> str:
    """A Venue with `user`: root's folder of what its vassals read but must not write."""
    return _join(venue_path, "run")


def venue_user_dir(venue_path: str) -> str:
    """A Venue with `user`: the user's folder of its Acts' sockets and run files."""
    return _join(venue_run_dir(venue_path), "user")


def venue_https_marks(venue_path: str) -> str:
    """A Venue with `user`: the redirect marks of its own hosts (the home's tls/redirect
    is out of its user's reach, and holds every Venue's)."""
    return _join(venue_run_dir(venue_path), "tls", "redirect")


def venue_challenges(venue_path: str) -> str:
    """A Venue with `user`: ACME's HTTP-01 answers for its own hosts."""
    return _join(venue_run_dir(venue_path), "tls", "challenges")


def venue_startproject_check(venue_path: str) -> str:
    """Whether a new Act's project can be rendered from the Venue's Django's template
    (control.build.scaffold): a hidden file beside venue.toml, read by nothing else."""
    return _join(venue_path, ".startproject.json")


def venue_log_dir(venue_path: str) -> str:
    """A Venue with `user`: the user's folder of its Acts' logs, which uWSGI rotates."""
    return _join(venue_path, "log")


DEFAULT_HOME = "~/.backstage"


def default_home() -> str:
    return os.environ.get("BACKSTAGE_HOME") or DEFAULT_HOME


def home_folder(home: str | None) -> str:
    """The absolute folder `home` names; None: $BACKSTAGE_HOME, else ~/.backstage."""
    return os.path.abspath(os.path.expanduser(home or default_home()))


# A home's path goes into every vassal config: `:` would make a socket TCP, `,` split a
# subscribe2 line, and uWSGI expands `$(`, `@(` and `%(` wherever they stand.
UNSAFE_IN_HOME = (":", ",", "\n", "\r", "\0", "$(", "@(", "%(")


def unsafe_in_home(home: str) -> str | None:
    """What in `home` cannot go into a uWSGI config, if anything."""
    return next((part for part in UNSAFE_IN_HOME if part in home), None)


class Layout:
    """Every path and name under one Production's home. Computes; touches nothing."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.spec_path = _join(home, "production.toml")
        # A copy of the last production.toml that could be used: what plays while the
        # file itself cannot be (a bad edit, emptied, unreadable)
        self.last_good_spec = _join(home, "run", "production.last-good.toml")
        self.run_dir = _join(home, "run")
        self.log_dir = _join(home, "log")
        self.templates_dir = _join(home, "templates")
        self.keys_dir = _join(home, "keys")
        self.tls_dir = _join(home, "tls")

    def __repr__(self) -> str:
        return f"Layout({self.home!r})"

    @cached_property
    def prefix(self) -> str:
        """Starts every vassal name and process name of this Production, so two on one
        host never collide."""
        return "bs" + hashlib.sha1(self.home.encode()).hexdigest()[:8]

    def run(self, name: str) -> str:
        return _join(self.run_dir, name)

    def log(self, name: str) -> str:
        return _join(self.log_dir, name)

    # The Emperor

    @property
    def emperor_stats(self) -> str:
        return self.run("emperor.stats")

    @property
    def emperor_pidfile(self) -> str:
        return self.run("emperor.pid")

    @property
    def emperor_log(self) -> str:
        return self.log("emperor.log")

    def channel_target(self, kind: str) -> str:
        """The zmq channel's ipc path, or the directory the dir channel writes to."""
        return self.run("emperor.ipc" if kind == "zmq" else "vassals")

    @property
    def vassal_files(self) -> str:
        """On the zmq channel, where the configs of vassals that re-exec into their Venue's
        own uwsgi are written: the Emperor is sent their path, not their text."""
        return self.run("configs")

    @property
    def linked_configs(self) -> str:
        """With the system Emperor as the Stage, the configs its vassal directory links to."""
        return self.run("linked")

    @property
    def create_lock(self) -> str:
        """Held while an Act is created: two creations never choose the same port."""
        return self.run("create.lock")

    @property
    def acts_lock(self) -> str:
        """Held while the Manager writes the Acts' files and while an Act is removed: the
        removal never races a pass that read the Act before it went."""
        return self.run("acts.lock")

    def venue_build_log(self, venue: str) -> str:
        """What building a Venue's own uwsgi printed: kept when the build fails and the
        Venue with it."""
        return self.log(f"uwsgi-build.{venue}.log")

    # The Production Manager

    @property
    def manager_pidfile(self) -> str:
        return self.run("manager.pid")

    @property
    def manager_lock(self) -> str:
        return self.run("manager.lock")

    @property
    def manager_log(self) -> str:
        return self.log("manager.log")

    @property
    def keeper_lock(self) -> str:
        return self.run("keeper.lock")

    @property
    def keeper_pidfile(self) -> str:
        return self.run("keeper.pid")

    @property
    def unplayable(self) -> str:
        """The Acts whose declaration reads but cannot be rendered into a vassal config,
        and why: written by the Manager each pass, read by `status` and the other views."""
        return self.run("unplayable.json")

    @property
    def keeper_vassal(self) -> str:
        """The vassal whose master runs the keeper (two dots less than an Act's)."""
        return f"{self.prefix}.keeper.ini"

    @property
    def keeper_log(self) -> str:
        return self.log("keeper.log")

    # The socket holder: the Acts' and the router's listening sockets, held apart from
    # them so that a crash of one costs its requests a wait, not a refusal

    @property
    def holder_socket(self) -> str:
        return self.run("holder.sock")

    @property
    def holder_pidfile(self) -> str:
        return self.run("holder.pid")

    @property
    def holder_lock(self) -> str:
        return self.run("holder.lock")

    @property
    def held_dir(self) -> str:
        return self.run("held")

    def held_file(self, vassal: str) -> str:
        return _join(self.held_dir, vassal + ".json")

    @property
    def vassal_wrapper(self) -> str:
        """What the Emperor runs each vassal through: it fetches the vassal's held sockets."""
        return self.run("vassal-wrapper")

    # The router

    @property
    def router_subscriptions(self) -> str:
        return self.run("router.sub")

    @property
    def router_stats(self) -> str:
        return self.run("router.stats")

    @property
    def router_socket(self) -> str:
        return self.run("router.sock")

    @property
    def router_booked(self) -> str:
        """The keys of every booked host, as JSON: the router's fallback tells a booked
        host nobody plays now (503) from an unknown one (404) by it."""
        return self.run("router.booked.json")

    @property
    def router_booked_lock(self) -> str:
        """Held while that file is read from the declared files and written."""
        return self.run("router.booked.lock")

    @property
    def router_log(self) -> str:
        return self.log("router.log")

    def is_router_vassal(self, vassal: str) -> bool:
        return vassal.startswith(f"{self.prefix}.router-")

    def draining(self, path: str) -> str:
        """Where a replaced router's socket at `path` is moved while it drains."""
        return path + ".draining"

    def router_vassal(self, config: str) -> str:
        """Named after its config: on the zmq channel uWSGI 2.0 hands a vassal the config
        before last from the second Emperor-sent reload on, so a changed router config is
        a new vassal rather than a reload."""
        digest = hashlib.sha1(config.encode()).hexdigest()[:8]
        return f"{self.prefix}.router-{digest}.ini"

    # Certificates (the router's TLS listener)

    @property
    def certs_dir(self) -> str:
        """0700: HOST.crt (the chain) and HOST.key (0600) of each host with a certificate,
        each named by an `sni` line of the router's config."""
        return _join(self.tls_dir, "hosts")

    def cert_path(self, host: str) -> str:
        return _join(self.certs_dir, host + ".crt")

    def cert_key_path(self, host: str) -> str:
        return _join(self.certs_dir, host + ".key")

    def cert_meta_path(self, host: str) -> str:
        """Where the certificate came from (imported, acme), as TOML."""
        return _join(self.certs_dir, host + ".toml")

    @property
    def default_cert(self) -> str:
        """A self-signed pair the TLS listener answers a host without a certificate by."""
        return _join(self.tls_dir, "default.crt")

    @property
    def default_cert_key(self) -> str:
        return _join(self.tls_dir, "default.key")

    @property
    def https_marks(self) -> str:
        """0755, no secrets: an empty file per router key whose host answers plain HTTP
        with a 308 to https; the Acts (their Venue's users) test it per request."""
        return _join(self.tls_dir, "redirect")

    @property
    def challenges(self) -> str:
        """0755, no secrets: ACME's HTTP-01 answers, by token, while a CA validates."""
        return _join(self.tls_dir, "challenges")

    @property
    def dashboard_token(self) -> str:
        """The dashboard's token (0600): actions need it, and reading too off loopback."""
        return _join(self.home, "dashboard.token")

    # Keys for signed subscriptions

    @property
    def private_key(self) -> str:
        return _join(self.keys_dir, "production.key")

    @property
    def public_key(self) -> str:
        return _join(self.keys_dir, "production.pub")

    @property
    def host_keys_dir(self) -> str:
        return _join(self.keys_dir, "hosts")

    # Acts

    def vassal(self, ref: ActRef) -> str:
        return f"{self.prefix}.{ref.venue}.{ref.name}.ini"

    def is_ours(self, vassal: str) -> bool:
        return vassal.startswith(self.prefix + ".")

    def act_processes(self, vassal: str) -> str | None:
        """How the processes of an Act's vassal are named, up to the space after (the
        vassal template's procname-prefix-spaced); None for another vassal (the router's
        keep one name whatever its config, so they tell no config from another)."""
        if not self.is_ours(vassal) or not vassal.endswith(".ini"):
            return None
        venue, dot, name = vassal[len(self.prefix) + 1 : -len(".ini")].partition(".")
        if not dot or "." in name:
            return None
        return f"{self.prefix} {venue}/{name} "

    def _act_run(self, ref: ActRef, suffix: str) -> str:
        """What the Act's vassal makes, writes or reads after it dropped to its user."""
        name = f"{ref.venue}.{ref.name}.{suffix}"
        return _join(venue_user_dir(ref.venue_path), name) if ref.user else self.run(name)

    def _own_run(self, ref: ActRef, suffix: str) -> str:
        """What only root may write: the Manager's own, or read by the vassal as root."""
        return self.run(f"{ref.venue}.{ref.name}.{suffix}")

    def act_stats(self, ref: ActRef) -> str:
        return self._act_run(ref, "stats")

    def act_reexec(self, ref: ActRef) -> str:
        """The master pid that last re-exec'd for a change of its Venue's packages."""
        return self._own_run(ref, "reexec")

    def act_fifo(self, ref: ActRef) -> str:
        return self._act_run(ref, "fifo")

    def act_socket(self, ref: ActRef) -> str:
        """The uwsgi-protocol socket the router and nginx pass this Act's Gigs to."""
        return self._act_run(ref, "sock")

    def act_wake(self, ref: ActRef) -> str:
        """Where the Production Manager wakes a sleeping Act for its Gigs (control.waker)."""
        return self._own_run(ref, "wake")

    def act_on_demand(self, ref: ActRef) -> str:
        """The Emperor's on-demand socket of an Act that sleeps: a connection there spawns
        it (the socket holder makes one when a request waits at the Act's held port)."""
        return self._own_run(ref, "ondemand")

    def act_gigs(self, ref: ActRef) -> str:
        """The ini with the Act's subscribe2 lines, which its vassal config includes."""
        if ref.user:
            return _join(venue_run_dir(ref.venue_path), f"{ref.venue}.{ref.name}.gigs.ini")
        return self._own_run(ref, "gigs.ini")

    def act_env(self, ref: ActRef) -> str:
        """The Act's `[env]` as JSON (0600), loaded by its vassal's master at start."""
        return self._act_run(ref, "env.json")

    def act_env_lock(self, ref: ActRef) -> str:
        """Held by a command that writes the Act's env file and reloads it itself: the
        Production Manager then leaves both to it. In `run/`, never where the Act's
        user could put a link in its place."""
        return self._own_run(ref, "env.lock")

    def act_hosts(self, ref: ActRef) -> str:
        """The hosts the Act is booked at, one a line: its Django settings read them."""
        return self._act_run(ref, "hosts")

    def pending(self, ref: ActRef) -> str:
        """Hosts the Act was booked at since its vassal last read its gigs ini, one a
        line: the Production Manager announces them for it until it reads it again."""
        if ref.user:  # its vassal removes it, as the user
            return self._act_run(ref, "pending")
        return _join(self.run_dir, "pending", f"{ref.venue}.{ref.name}")

    def act_check(self, ref: ActRef) -> str:
        """The socket of the Act's warm check (`control.warmrun`); its pidfile beside it."""
        return self._own_run(ref, "check")

    @property
    def forgiven_dir(self) -> str:
        """The vassals a user's start forgave (cleared from the Emperor's blacklist), one
        empty file each, until the Production Manager's next pass takes them."""
        return _join(self.run_dir, "forgiven")

    @property
    def refused_dir(self) -> str:
        """Refusals, one file an Act: one listing tells a snapshot which Acts have one."""
        return _join(self.run_dir, "refused")

    def act_refused(self, ref: ActRef) -> str:
        """Why the pre-flight refused the Act's code on disk (one line), until a version
        of it serves again."""
        return _join(self.refused_dir, f"{ref.venue}.{ref.name}")

    def withheld(self, ref: ActRef, host: str) -> str:
        """While this file exists the Act stops announcing itself for `host`."""
        # a user's vassal looks for it, in a folder only root writes
        run = venue_run_dir(ref.venue_path) if ref.user else self.run_dir
        return _join(run, "withheld", f"{ref.venue}.{ref.name}", host)

    def act_log(self, ref: ActRef) -> str:
        name = f"{ref.venue}.{ref.name}.log"
        return _join(venue_log_dir(ref.venue_path), name) if ref.user else self.log(name)

    def act_sockets(self, ref: ActRef) -> tuple[str, ...]:
        return (self.act_stats(ref), self.act_fifo(ref), self.act_socket(ref), self.act_wake(ref))

    def too_long(self, ref: ActRef) -> str | None:
        """The first socket path of `ref` over the unix limit, if any."""
        for path in self.act_sockets(ref):
            if len(os.fsencode(path)) > UNIX_PATH_MAX:
                return path
        # the Emperor binds it and takes no more than 102 bytes of its path
        on_demand = self.act_on_demand(ref)
        if len(os.fsencode(on_demand)) > ON_DEMAND_PATH_MAX:
            return on_demand
        return None
