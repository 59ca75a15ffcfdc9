"""An Act: a runnable Django project in a Venue (runnable, not necessarily running).

    <venue>/acts/<NAME>/manage.py, <NAME>/   the Django project
    <venue>/acts/<NAME>/act.toml             port, processes, env, enabled

What an Act *is doing* is never stored: `state` and `sess` are worked out each
time from the Emperor's stats and the Act's own stats server.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

from emperor import fifo
from emperor.errors import FifoNotReading
from emperor.process import tail, telling_line, wait_for
from emperor.stats import EmperorStats, InstanceStats, parse_instance_stats, stats_or_none

from . import ports
from . import spec as specs
from .errors import (
    ActFailed,
    AlreadyExists,
    BackstageError,
    InvalidSetting,
    NotFound,
    NotRunning,
    PortBusy,
)
from .names import check_name
from .sess import Sess
from .spec import ActSpec

if TYPE_CHECKING:
    from .gig import Gig
    from .production import Production
    from .stage import Stage
    from .venue import Venue

STOPPED, STARTING, RUNNING, FAILED = "stopped", "starting", "running", "failed"
STATES = (STOPPED, STARTING, RUNNING, FAILED)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
UNIX_PATH_MAX = 107


# Appended to a new Act's settings.py: the hosts it is booked at come from its
# vassal config (BACKSTAGE_HOSTS), so booking never edits the project.
SETTINGS_TAIL = """
# Added by Backstage: booked hosts come from the vassal config; local ones always work.
import os  # noqa: E402

ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", *os.environ.get("BACKSTAGE_HOSTS", "").split()]
STATIC_ROOT = BASE_DIR / "static"
"""


def derive_state(enabled: bool, stage_up: bool, blacklisted: bool, serving: bool) -> str:
    """An Act's state from what the Emperor and the Act's stats say, and what is declared."""
    if serving:
        return RUNNING
    if enabled and blacklisted:
        return FAILED  # the Emperor refused it after it died before it was ever loyal
    if enabled and stage_up:
        return STARTING  # declared and the Stage is up: listed, or about to be pushed
    return STOPPED


class Act:
    def __init__(self, venue: Venue, name: str) -> None:
        self.venue = venue
        self.name = name
        self.path = os.path.join(venue.acts_dir, name)
        self.spec_path = os.path.join(self.path, "act.toml")

    def __repr__(self) -> str:
        return f"<Act {self.key}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Act) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def key(self) -> str:
        return f"{self.venue.name}/{self.name}"

    @property
    def spec(self) -> ActSpec:
        try:
            return specs.load(ActSpec, self.spec_path)
        except FileNotFoundError:
            raise NotFound(f"Act {self.key} is gone (no {self.spec_path})") from None

    @property
    def production(self) -> Production:
        return self.venue.production

    # Where the Act's control surfaces and log are

    @property
    def vassal_name(self) -> str:
        return f"{self.production.prefix}.{self.venue.name}.{self.name}.ini"

    def _run_path(self, suffix: str) -> str:
        return os.path.join(self.production.run_dir, f"{self.venue.name}.{self.name}.{suffix}")

    @property
    def stats_path(self) -> str:
        return self._run_path("stats")

    @property
    def fifo_path(self) -> str:
        return self._run_path("fifo")

    @property
    def socket_path(self) -> str:
        """The uwsgi-protocol socket the router and nginx pass this Act's Gigs to."""
        return self._run_path("sock")

    @property
    def gigs_config_path(self) -> str:
        """The ini with the Act's subscribe2 lines, which its vassal config includes."""
        return self._run_path("gigs.ini")

    def withheld_path(self, host: str) -> str:
        """While this file exists the Act stops announcing itself for `host` (see booking)."""
        return os.path.join(
            self.production.run_dir, "withheld", f"{self.venue.name}.{self.name}", host
        )

    @property
    def static_root(self) -> str:
        """Django's STATIC_ROOT as the scaffold sets it: what nginx serves at /static/."""
        return os.path.join(self.path, "static")

    @property
    def log_path(self) -> str:
        return os.path.join(self.production.log_dir, f"{self.venue.name}.{self.name}.log")

    # What it is doing, from stats only

    def get_uwsgi_port(self) -> int:
        """The port the Act serves HTTP on, on 127.0.0.1."""
        return self.spec.port

    @property
    def port(self) -> int:
        return self.spec.port

    def stats(self, timeout: float = 1.0) -> InstanceStats | None:
        return stats_or_none(self.stats_path, parse_instance_stats, timeout)

    @property
    def sess(self) -> Sess | None:
        stats = self.stats()
        return Sess.from_stats(stats) if stats else None

    def state_from(self, emperor: EmperorStats | None, sess: Sess | None) -> str:
        return derive_state(
            enabled=self.spec.enabled,
            stage_up=emperor is not None,
            blacklisted=emperor is not None and emperor.blacklisted(self.vassal_name),
            serving=sess is not None and sess.accepting,
        )

    @property
    def state(self) -> str:
        return self.state_from(self.production.stage.stats(), self.sess)

    # What a user does with it: all through the Act Manager

    @functools.cached_property
    def manager(self) -> ActManager:
        return ActManager(self)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.manager.start(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.manager.stop(timeout)

    def reload(self, timeout: float = START_TIMEOUT) -> None:
        self.manager.reload(timeout)

    def fifo(self, commands: str) -> None:
        self.manager.fifo(commands)

    def remove(self) -> None:
        self.manager.remove()

    # Gigs: through the Booking Manager

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts this Act is booked at (declared), whether it plays or not."""
        return self.spec.hosts

    def book(self, host: str, timeout: float = START_TIMEOUT) -> None:
        self.production.booking.book(self, host, timeout)

    def unbook(self, host: str, timeout: float = STOP_TIMEOUT) -> None:
        self.production.booking.unbook(self, host, timeout)

    @property
    def gigs(self) -> list[Gig]:
        return [gig for gig in self.production.gigs if self.key in gig.acts + gig.booked]


def http_answers(port: int, timeout: float = 2.0) -> bool:
    """True when something on 127.0.0.1:port answers an HTTP request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


class ActManager:
    """Looks after one Act: scaffold, declare, and start/stop/reload through the Stage."""

    def __init__(self, act: Act) -> None:
        self.act = act

    @property
    def production(self) -> Production:
        return self.act.venue.production

    def declare(self, **changes: Any) -> ActSpec:
        new = dataclasses.replace(self.act.spec, **changes)
        specs.dump(self.act.spec_path, new)
        return new

    # Creation

    @classmethod
    def create(
        cls,
        venue: Venue,
        name: str,
        port: int | None = None,
        processes: int | None = None,
        start: bool = True,
    ) -> Act:
        """Scaffold a Django project as a new Act, declare it, and (by default) start it."""
        check_name("Act", name)
        production = venue.production
        act = Act(venue, name)
        if os.path.lexists(act.path):
            raise AlreadyExists(f"Act {act.key} exists already ({act.path}): pick another name")
        for path in (act.stats_path, act.fifo_path, act.socket_path):
            if len(os.fsencode(path)) > UNIX_PATH_MAX:
                raise InvalidSetting(
                    f"{path} is too long for a unix socket: use a shorter BACKSTAGE_HOME or names"
                )
        production.create()
        production.add_venue(venue)
        settings = production.spec
        taken = {other.port for other in production.acts}
        if port is None:
            port = ports.allocate(*settings.ports, taken)
        elif port in taken:
            raise PortBusy(f"port {port} belongs to another Act of this Production: pick another")
        elif not (0 < port < 65536 and ports.port_free(port)):
            raise PortBusy(f"port {port} is in use or invalid: pick another, or leave it out")
        processes = settings.processes if processes is None else processes
        if processes < 1:
            raise InvalidSetting(f"processes must be at least 1, not {processes}")
        os.makedirs(venue.acts_dir, exist_ok=True)
        try:
            cls._scaffold(venue, name)
            specs.dump(
                act.spec_path, ActSpec(name=name, port=port, processes=processes, enabled=False)
            )
        except BaseException:
            shutil.rmtree(act.path, ignore_errors=True)
            raise
        if start:
            act.start()
        return act

    @staticmethod
    def _scaffold(venue: Venue, name: str) -> None:
        admin = os.path.join(venue.path, "bin", "django-admin")
        try:
            done = subprocess.run(
                [admin, "startproject", name],
                cwd=venue.acts_dir,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except OSError as exc:
            raise ActFailed(
                f"cannot run {admin} ({exc.strerror}): is Django installed in Venue {venue.name}?"
            ) from exc
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise ActFailed(
                f"django-admin startproject {name} failed: {lines[-1] if lines else ''}"
            )
        with open(os.path.join(venue.acts_dir, name, name, "settings.py"), "a") as settings:
            settings.write(SETTINGS_TAIL)

    # Control

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Make the Act play; return once it answers HTTP, or raise with the reason."""
        act, production = self.act, self.production
        spec = act.spec
        stage = production.stage
        emperor = stage.stats() if stage.running else None
        listed = emperor is not None and emperor.vassal(act.vassal_name) is not None
        if not listed and not ports.port_free(spec.port):
            raise PortBusy(
                f"port {spec.port} of {act.key} is held by another process: free it, or set "
                f"another port in {act.spec_path}"
            )
        log_offset = _size(act.log_path)
        production.manager.up()  # first: a Stage that cannot come up changes nothing
        if not spec.enabled:
            self.declare(enabled=True)
        self._forgive(stage)
        production.manager.poke()
        self._wait_serving(timeout, log_offset)

    def _forgive(self, stage: Stage) -> None:
        """Clear an earlier failure from the Emperor's blacklist, which would refuse the
        Act silently for up to three minutes even after it is fixed."""
        name = self.act.vassal_name
        emperor = stage.stats()
        if emperor is None or not emperor.blacklisted(name):
            return
        stage.manager.clear_blacklist()
        wait_for(lambda: not _blacklisted(stage, name), 5.0)

    def _wait_serving(self, timeout: float, log_offset: int) -> None:
        act = self.act
        stage = act.production.stage
        deadline = time.monotonic() + timeout
        while True:
            if _blacklisted(stage, act.vassal_name):
                raise self._failed("failed to start", log_offset)
            sess = act.sess
            # All workers, not the first: lazy workers still importing the app would be
            # cut off by a stop, and can stall a chain reload, right after start returns.
            if sess is not None and sess.ready and http_answers(act.spec.port):
                return
            if time.monotonic() >= deadline:
                raise self._failed(f"did not serve within {timeout:.0f} s", log_offset)
            time.sleep(0.02)  # two cheap socket reads a round; a coarse step shows in start time

    def _failed(self, what: str, log_offset: int) -> ActFailed:
        act = self.act
        new_log = _read_from(act.log_path, log_offset)
        log_tail = "\n".join(new_log.splitlines()[-80:])
        return ActFailed(
            f"{act.key} {what}: {telling_line(new_log)} "
            f"(fix it, then start it again; log: {act.log_path})",
            log_tail,
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the Act; return once its vassal is gone and its port closed."""
        act, production = self.act, self.production
        if act.spec.enabled:
            self.declare(enabled=False)
        stage = production.stage
        if not stage.running:
            return
        production.manager.up()
        production.manager.poke()
        port = act.spec.port

        def gone() -> bool:
            emperor = stage.stats()
            listed = emperor is not None and emperor.vassal(act.vassal_name) is not None
            return not listed and act.stats() is None and not http_answers(port, 0.5)

        if not wait_for(gone, timeout):
            raise BackstageError(
                f"{act.key} did not stop within {timeout:.0f} s; see {act.log_path}"
            )

    def reload(self, timeout: float = START_TIMEOUT) -> None:
        """Chain-reload: new code, one worker at a time, no failed request."""
        act = self.act
        sess = act.sess
        if sess is None:
            raise NotRunning(f"{act.key} is not running: start it first")
        # A chain reload that starts while a worker is still loading the app can stall
        # until uWSGI's reload mercy (60 s) runs out: begin from a settled Act.
        settled = wait_for(lambda: (now := act.sess) is not None and now.ready, timeout)
        sess = act.sess
        if not settled or sess is None:
            raise NotRunning(f"{act.key} is not serving with all its workers: see {act.log_path}")
        old = {w.pid for w in sess.workers}
        self.fifo("c")

        def renewed() -> bool:
            now = act.sess
            return (
                now is not None
                and all(w.pid not in old and w.accepting for w in now.workers)
                and len(now.workers) == len(sess.workers)
            )

        if not wait_for(renewed, timeout, 0.1):
            raise ActFailed(
                f"{act.key} did not finish its chain reload within {timeout:.0f} s: "
                f"{telling_line(tail(act.log_path))} (log: {act.log_path})"
            )

    def fifo(self, commands: str) -> None:
        act = self.act
        try:
            fifo.send(act.fifo_path, commands)
        except ValueError as exc:
            raise InvalidSetting(str(exc)) from None
        except FifoNotReading:
            raise NotRunning(f"{act.key} is not running: start it first") from None

    def remove(self) -> None:
        """Stop the Act and delete its project, declaration and log."""
        act = self.act
        self.stop()
        shutil.rmtree(act.path)
        for path in (act.log_path, act.fifo_path, act.gigs_config_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _blacklisted(stage: Stage, name: str) -> bool:
    emperor = stage.stats()
    return emperor is not None and emperor.blacklisted(name)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            if size < offset:  # rotated or truncated meanwhile
                offset = 0
            log.seek(max(offset, size - 256 * 1024))
            return log.read().decode(errors="replace")
    except OSError:
        return ""
