"""The Act Manager: looks after one Act. Scaffold, declare, and start, stop, reload it
through the Stage; read its stats. Holds no state of its own.

Starting and stopping are declarations (`enabled` in act.toml) that the Production
Manager carries out; the Act Manager pokes it and waits until the Act serves, or is
gone, reading only the Act's stats server, the Emperor's stats and its port.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

from emperor import fifo, stopping
from emperor.atomic import write_atomic
from emperor.errors import FifoNotReading
from emperor.process import (
    forked_since_boot,
    pid_alive,
    started,
    tail,
    telling_line,
    wait_for,
)
from emperor.stats import EmperorStats, InstanceStats, parse_instance_stats, stats_or_none

from ...errors import (
    ActFailed,
    AlreadyExists,
    BackstageError,
    ConfigRefused,
    InvalidSetting,
    NotRunning,
    PortBusy,
)
from ...files import declared
from ...files.account import account
from ...files.fs import (
    holds,
    log_backups,
    read_from,
    size_of,
    unlink_if_present,
    write_if_changed,
)
from ...files.inotify import Written
from ...model.layout import ActRef
from ...model.names import check_name
from ...model.sess import Sess
from ...model.spec import ActSpec, unfold_processes
from ...model.state import (
    FAILED,
    INVALID,
    RUNNING,
    SLEEPING,
    STARTING,
    STOPPED,
    derive_state,
    explain,
)
from ...render.shim import LIVE_HOSTS
from ...render.stageset import PRELOAD_FROM, env_json, reload_touch, uses_shim
from ..build import scaffold, warmrun
from ..build.virtualenv import site_packages
from ..host import forgiven, ownership, ports, shared, unplayables
from ..processes import holding
from ..processes.crew import Crew

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
ASK_EMPEROR_EVERY = 0.25  # seconds, while a start is waited for
MASTER_BEGINS = "*** Starting uWSGI "  # the first line each master writes to the Act's log
# While a start is waited for: the Act's stats and port are looked at again when its log
# is written, or after WAIT_SERVING; never sooner than LOOK_AFTER_LOG after the last look.
# A worker logs its app loaded 0.1-10 ms before it accepts (measured under load): while
# workers load, a write is followed by a look every LOOK_AFTER_LOG for FOLLOW_LOG.
WAIT_SERVING = 0.02
LOOK_AFTER_LOG = 0.003
FOLLOW_LOG = 0.015
# Seconds with every worker accepting and none replaced after which a chain reload is
# taken as over (uWSGI moves to the next worker within its master's one-second cycle)
CHAIN_STILL = 3.0

# Appended to a new Act's settings.py: the hosts it is booked at come from its
# vassal config (BACKSTAGE_HOSTS), so booking never edits the project.
SETTINGS_TAIL = (
    """
# Added by Backstage: booked hosts come from the Act's hosts file, read again when it
# changes (a booking needs no reload); local ones always work.
import os as _os  # noqa: E402
"""
    + LIVE_HOSTS
    + """
ALLOWED_HOSTS = _BookedHosts((), ["localhost", "127.0.0.1", "[::1]"])
STATIC_ROOT = BASE_DIR / "static"
"""
)


def http_answers(port: int, timeout: float = 2.0) -> bool:
    """True when something on 127.0.0.1:port answers an HTTP request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


class LogPace:
    """When to look again at a vassal that starts: see WAIT_SERVING. `wait` blocks until
    then; `loading` says its workers are loading the app (a write may be one saying so)."""

    def __init__(self, written: Written) -> None:
        self._written = written
        self._follow_until = 0.0

    def wait(self, loading: bool) -> None:
        looked = time.monotonic()
        timeout = LOOK_AFTER_LOG if looked < self._follow_until else WAIT_SERVING
        if self._written.wait(timeout):
            if loading:
                self._follow_until = time.monotonic() + FOLLOW_LOG
            time.sleep(max(0.0, looked + LOOK_AFTER_LOG - time.monotonic()))


class ActManager:
    def __init__(self, crew: Crew, ref: ActRef) -> None:
        self.crew = crew
        self.ref = ref
        layout = crew.layout
        self.vassal = layout.vassal(ref)
        self.stats_path = layout.act_stats(ref)
        self.fifo_path = layout.act_fifo(ref)
        self.log_path = layout.act_log(ref)

    # Declared

    def spec(self) -> ActSpec:
        return declared.act_spec(self.ref)

    def declare(self, **changes: Any) -> ActSpec:
        new = dataclasses.replace(self.spec(), **changes)
        declared.dump(self.ref.spec_path, new, ownership.owner(self.ref))
        return new

    def sync_env(self, spec: ActSpec) -> bool:
        """Write the Act's env file from its spec (0600 in run/); True when it changed.
        Its vassal's master loads it at start: see `backstage/scripts/vassalenv.py`."""
        path = self.crew.layout.act_env(self.ref)
        text = env_json(spec.env)
        # readable by the Act's user alone: its master reads it after it dropped to them
        return write_if_changed(path, text, 0o600, ownership.owner(self.ref))

    def env_synced(self, spec: ActSpec) -> bool:
        """The Act's env file is as `sync_env` would write it (read, nothing written)."""
        return holds(
            self.crew.layout.act_env(self.ref), env_json(spec.env), ownership.owner(self.ref)
        )

    # Live, from stats only

    def stats(self, timeout: float = 1.0) -> InstanceStats | None:
        return stats_or_none(self.stats_path, parse_instance_stats, timeout)

    def sess(self) -> Sess | None:
        stats = self.stats()
        return Sess.from_stats(stats) if stats else None

    def state(self) -> str:
        """The Act's state from the facts its row of `status` is made of (observe.read):
        its declaration as read among the others (another Act's name, a host outside its
        Venue's domains: invalid, where its act.toml alone reads fine), what the
        Production Manager found it cannot play, the Emperor's stats and its own."""
        found = declared.act(self.ref)
        problem = found.error or unplayables.why(self.crew.layout, self.ref)
        emperor = self.crew.stage.stats()
        sess = self.sess()
        return derive_state(
            enabled=found.spec.enabled if found.spec else False,
            blacklisted=emperor is not None and emperor.blacklisted(self.vassal),
            serving=sess is not None and sess.accepting,
            invalid=bool(problem),
            sleeping=emperor is not None and emperor.waiting(self.vassal),
        )

    def playable_or_raise(self, since: float = 0.0) -> None:
        """ActFailed, with the line `status` shows, when the Production Manager found
        the Act's act.toml cannot be played, in a pass that began at `since` (time.time())
        or later: a wait for it to play would otherwise run out its whole timeout."""
        why = unplayables.why(self.crew.layout, self.ref, since)
        if why:
            problem = explain(INVALID, self.ref.key, 0, problem=why)
            raise ActFailed(f"{self.ref.key} is invalid, {problem}")

    def usable_or_raise(self) -> None:
        """ActFailed, with the line `status` shows, when the act.toml reads alone but the
        Production Manager cannot use it among the others (another Act's name, a host
        outside its Venue's domains): it keeps the Act playing as it was, and a wait for
        it to stop would run out its whole timeout."""
        found = declared.act(self.ref)
        if found.spec is None:
            problem = explain(INVALID, self.ref.key, 0, problem=found.error)
            raise ActFailed(f"{self.ref.key} is invalid, {problem}")

    def sleeping(self) -> bool:
        """The Emperor waits to spawn the Act on demand, with no process behind it: the
        next request at its port wakes it (see `idle`)."""
        emperor = self.crew.stage.stats()
        return emperor is not None and emperor.waiting(self.vassal)

    def _blacklisted(self) -> bool:
        emperor = self.crew.stage.stats()
        return emperor is not None and emperor.blacklisted(self.vassal)

    # Creation

    @classmethod
    def create(
        cls,
        crew: Crew,
        ref: ActRef,
        port: int | None = None,
        processes: int | str | None = None,
        force: bool = False,
        build: Callable[[ActSpec], ActSpec] | None = None,
    ) -> ActManager:
        """Make a new Act and declare it, not enabled yet: `build` fills its folder and
        returns its spec (by default a scaffolded Django project); all or nothing. A port
        outside the Production's `ports` is refused unless `force`."""
        check_name("Act", ref.name)
        layout = crew.layout
        if os.path.lexists(ref.path):
            raise AlreadyExists(f"Act {ref.key} exists already ({ref.path}): pick another name")
        too_long = layout.too_long(ref)
        if too_long:
            raise InvalidSetting(
                f"{too_long} is too long for a unix socket: use a shorter BACKSTAGE_HOME or names"
            )
        declared.create_home(layout, ports.new_production)
        with declared.locked(layout.create_lock):
            if os.path.lexists(ref.path):  # made by another `act new` while this one waited
                raise AlreadyExists(f"Act {ref.key} exists already ({ref.path}): pick another name")
            production = declared.read(layout)
            settings = production.production
            taken = {act.spec.port for act in production.acts if act.spec is not None}
            if port is None:
                port = ports.allocate(*settings.ports, taken)
            elif not force and not settings.ports[0] <= port <= settings.ports[1]:
                first, last = settings.ports
                raise InvalidSetting(
                    f"port {port} is outside ports = [{first}, {last}] of {layout.spec_path}: "
                    "pick one inside, leave it out, or force it"
                )
            elif port in taken:
                raise PortBusy(
                    f"port {port} belongs to another Act of this Production: pick another"
                )
            elif not (0 < port < 65536 and ports.port_free(port)):
                raise PortBusy(f"port {port} is in use or invalid: pick another, or leave it out")
            processes = settings.processes if processes is None else processes
            # checked as act.toml is (too few, too many, a range) before anything is made
            workers = unfold_processes({"processes": processes}, f"Act {ref.key}")
            spec = ActSpec(name=ref.name, port=port, enabled=False, **workers)
            os.makedirs(os.path.dirname(ref.path), exist_ok=True)
            try:
                if build is None:
                    _scaffold(ref)
                else:
                    spec = build(spec)
                declared.dump(ref.spec_path, spec, ownership.owner(ref))
            except BaseException:
                shutil.rmtree(ref.path, ignore_errors=True)
                raise
        return cls(crew, ref)

    # Control

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Make the Act play; return once it answers HTTP, or raise with the reason, all
        within `timeout`."""
        since = time.time()  # before the poke: the Manager's word on it from then on
        deadline = time.monotonic() + timeout
        spec = self.spec()
        stage = self.crew.stage
        emperor = stage.stats() if stage.alive() else None
        listed = emperor is not None and emperor.vassal(self.vassal) is not None
        if not listed:
            self._port_unclaimed(spec.port)
        if not listed and holding.taken_elsewhere(self.crew.layout, spec.port):
            raise PortBusy(
                f"port {spec.port} of {self.ref.key} is held by another process: free it, or "
                f"set another port in {self.ref.spec_path}"
            )
        log_offset = size_of(self.log_path)
        self.crew.manager.up()  # first: a Stage that cannot come up changes nothing
        if not spec.enabled:
            self.declare(enabled=True)
        if emperor is None or emperor.blacklisted(self.vassal):  # its stats read once
            self._forgive(deadline)
        self.crew.manager.poke()
        self._wait_serving(timeout, deadline, log_offset, since)

    def _port_unclaimed(self, port: int) -> None:
        """PortBusy naming the other Act of the Production that declares `port`, as the
        Production Manager names it: that Act keeps it, and this one would never play."""
        for found in declared.read(self.crew.layout).acts:
            if found.ref.key != self.ref.key and found.spec is not None and found.spec.port == port:
                raise PortBusy(
                    f"port {port} is {found.ref.key}'s: pick another "
                    f"(`backstage act set {self.ref.key} port=N`)"
                )

    def _forgive(self, deadline: float) -> None:
        """Clear an earlier failure from the Emperor's blacklist, which would refuse the
        Act silently for up to three minutes even after it is fixed. Waited for until
        `deadline` at most (a system Emperor is not ours to clear: its entry stays until
        its throttle runs out), 5 s at most."""
        if not self._blacklisted():
            return
        cleared = self.crew.stage.manager.clear_blacklist()
        wait_for(lambda: not self._blacklisted(), min(5.0, max(0.0, deadline - time.monotonic())))
        if cleared:
            # and the Manager's wait on its push of the broken app (SETTLE): over too
            forgiven.say(self.crew.layout, self.vassal)
            self.crew.manager.poke()

    def _wait_serving(self, timeout: float, deadline: float, log_offset: int, since: float) -> None:
        port = self.spec().port
        asked_emperor, sleeping = 0.0, False
        answered = 0  # the master one of whose workers answered HTTP
        with Written(self.log_path) as log_written:
            pace = LogPace(log_written)
            while True:
                # The Emperor's stats (a refusal, a sleep) a few times a second only: each
                # reading is a JSON of every vassal, written while this one starts
                if time.monotonic() - asked_emperor >= ASK_EMPEROR_EVERY:
                    asked_emperor = time.monotonic()
                    self.playable_or_raise(since)  # its old config may play: checked first
                    emperor = self.crew.stage.stats()
                    if emperor is not None and emperor.blacklisted(self.vassal):
                        # refused, unless a master of it runs (uWSGI keeps the entry of a
                        # failure from before the fix until the new master is loyal) or it
                        # has not tried since this start (an entry from before it: cleared)
                        vassal = emperor.vassal(self.vassal)
                        if vassal is None or not vassal.pid or not pid_alive(vassal.pid):
                            if size_of(self.log_path) <= log_offset:
                                self._forgive(deadline)
                            else:
                                raise self._failed("failed to start", log_offset)
                    sleeping = emperor is not None and emperor.waiting(self.vassal)
                sess = self.sess()
                # Asked as soon as one worker takes requests, while the others still load
                # the app (as a plain uWSGI's first request is answered): of this master
                if sess is not None and sess.accepting and answered != sess.pid:
                    answered = sess.pid if http_answers(port) else 0
                # All workers, not the first: lazy workers still importing the app would
                # be cut off by a stop, and can stall a chain reload, right after start
                # returns.
                if sess is not None and sess.ready and answered == sess.pid:
                    return
                if sess is not None and sess.ready and any(w.exceptions for w in sess.workers):
                    # loaded, yet no answer and an exception per request: the app is not a
                    # WSGI app (a factory named without its call), waiting will not mend it
                    raise self._failed("fails every request", log_offset)
                if sess is None and sleeping:
                    http_answers(port, min(10.0, max(0.1, deadline - time.monotonic())))  # wakes it
                if time.monotonic() >= deadline:
                    raise self._failed(f"did not serve within {timeout:.0f} s", log_offset)
                # Until the Act's log is written (a worker logs that its app is loaded just
                # before it takes requests), WAIT_SERVING at most: a step of 20 ms showed
                # as 10 ms more in a start of 0.3 s
                pace.wait(loading=sess is not None and not sess.ready)

    def _failed(self, what: str, log_offset: int) -> ActFailed:
        new_log, _ = read_from(self.log_path, log_offset)
        log_tail = "\n".join(new_log.splitlines()[-80:])
        return ActFailed(
            f"{self.ref.key} {what}: {telling_line(new_log)} "
            f"(fix it, then start it again; log: {self.log_path})",
            log_tail,
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the Act; return once its vassal is gone and its port closed."""
        spec = self.spec()
        if spec.enabled:
            self.declare(enabled=False)
        stage = self.crew.stage
        if not stage.alive():
            return
        self.usable_or_raise()
        self.crew.manager.up()
        self.crew.manager.poke()
        # once withdrawn, its master naps up to a second before it reaps its workers
        waker = stopping.Waker(stage.pid() or 0)

        def gone() -> bool:
            emperor = stage.stats()
            entry = emperor.vassal(self.vassal) if emperor is not None else None
            if entry is not None:
                waker.look([entry])
                return False
            return self.stats() is None and not http_answers(spec.port, 0.5)

        if not wait_for(gone, timeout):
            raise BackstageError(
                f"{self.ref.key} did not stop within {timeout:.0f} s; see {self.log_path}"
            )

    def settled(self) -> bool:
        """Every worker accepts, or the Act is not meant to play, failed, sleeps or
        cannot be played: nothing is on its way."""
        sess = self.sess()
        if sess is not None:
            return sess.ready
        return self.state() in (STOPPED, FAILED, SLEEPING, INVALID)

    def settle(self, timeout: float) -> Sess | None:
        """Wait until the Act is settled; its Sess, or None when it is not playing. A
        reload that comes while a worker is still loading the app is ignored by that
        worker until uWSGI's reload mercy (60 s) runs out."""
        wait_for(self.settled, timeout)
        return self.sess()

    def renew(self, command: str, timeout: float) -> bool:
        """Send a reload `command` ("c" chain, "r" graceful) to a settled Act and wait
        until every worker is new and accepting; False when that did not happen in time."""
        sess = self.settle(timeout)
        if sess is None or not sess.ready:
            raise NotRunning(
                f"{self.ref.key} is not serving with all its workers: see {self.log_path}"
            )
        old = {w.pid for w in sess.workers}
        # adaptive workers come and go meanwhile: every one that runs is new then
        same_count = not self.spec().adaptive
        self.fifo(command)
        seen: tuple[frozenset[int], float] = (frozenset(), 0.0)

        def renewed() -> bool:
            nonlocal seen
            now = self.sess()
            if now is None or not now.workers:
                return False
            pids = frozenset(w.pid for w in now.workers)
            if (len(pids) == len(old) or not same_count) and not pids & old and now.ready:
                return True
            if command == "c" and now.ready and pids & old:
                # every worker accepts, some are old, and none moved for a while: the
                # chain is over, or uWSGI ignored this one as another ran (a chain
                # reload the Manager sent for the same change): it is asked again
                if pids != seen[0]:
                    seen = (pids, time.monotonic())
                elif time.monotonic() - seen[1] > CHAIN_STILL:
                    seen = (pids, time.monotonic())
                    self.fifo(command)
            return False

        return wait_for(renewed, timeout, 0.05)

    def on_its_way(self) -> bool:
        """No master of it answered a moment ago, and the Manager is to play it: enabled,
        neither refused, asleep nor unplayable (a restart for a change before is under
        way, its vassal withdrawn or pushed anew, or a start)."""
        return self.state() in (STARTING, RUNNING)

    def await_restart(
        self, before: Sess | None, timeout: float, written: float = 0.0, log_offset: int = -1
    ) -> bool:
        """Wait for the restart a changed vassal config makes: a new master (not
        `before`, and forked after `written`, a `since_boot()` taken before the change
        was written: one pushed for a change before it, still under way, plays the
        config before) serving with every worker, or the Act asleep on its port (a
        config that sleeps when idle starts asleep); False when neither within
        `timeout`. ActFailed at once when the Manager finds the new act.toml cannot be
        played: the caller has just written it, so what the Manager says of it is of a
        pass that read it; and, given the size of the Act's log before the change
        (`log_offset`), when uWSGI refused the new config: a master began in the log
        since, and none lives while the Emperor lists the vassal as refused (an entry
        alone says nothing: the old master's exit before its first request makes one)."""
        asked, asleep = 0.0, False
        tick = 1 / os.sysconf("SC_CLK_TCK")  # a fork's time is floored to it

        def restarted() -> bool:
            nonlocal asked, asleep
            if time.monotonic() - asked >= ASK_EMPEROR_EVERY:  # a JSON of every vassal
                self.playable_or_raise()
                asked, emperor = time.monotonic(), self.crew.stage.stats()
                asleep = emperor is not None and emperor.waiting(self.vassal)
                if log_offset >= 0 and emperor is not None and self._refused(emperor, log_offset):
                    failed = self._failed("was refused on its new config", log_offset)
                    raise ConfigRefused(str(failed), failed.log_tail)
            now = self.sess()
            if now is None:
                return asleep
            if (before is not None and now.pid == before.pid) or not now.ready:
                return False
            forked = forked_since_boot(now.pid) if written else None
            return not written or (forked is not None and forked >= written - tick)

        return wait_for(restarted, timeout)

    def _refused(self, emperor: EmperorStats, log_offset: int) -> bool:
        """The Emperor refuses the vassal, no master of it lives, and one began in the
        log since `log_offset`: uWSGI ended what the change pushed."""
        if not emperor.blacklisted(self.vassal):
            return False
        listed = emperor.vassal(self.vassal)
        if listed is not None and listed.pid and pid_alive(listed.pid):
            return False
        return MASTER_BEGINS in read_from(self.log_path, log_offset)[0]

    def restarted_or_raise(
        self, before: Sess | None, timeout: float, log_offset: int, written: float = 0.0
    ) -> None:
        """`await_restart`, or ActFailed with what the log says since `log_offset`."""
        if not self.await_restart(before, timeout, written, log_offset):
            raise self._failed(
                f"did not restart on its new config within {timeout:.0f} s", log_offset
            )

    def running_or_raise(self) -> None:
        if self.sess() is None:
            raise NotRunning(f"{self.ref.key} is not running: start it first")

    def reload(self, timeout: float = START_TIMEOUT) -> None:
        """Chain-reload: new code, one worker at a time, no failed request; the Act's
        workers (attached daemons) restart through their touch file."""
        self.running_or_raise()
        if self.spec().workers:
            touch = reload_touch(self.ref)
            with open(touch, "a"):
                os.utime(touch)
        master = self.sess()
        if master is not None and self._preloaded_stale(master.pid):
            # its master imported Django before the Venue's packages changed: workers
            # forked from it would serve that Django, so it re-execs (a new interpreter)
            asked = time.time()
            if not self.renew("r", timeout):
                raise ActFailed(
                    f"{self.ref.key} did not restart on its Venue's new packages within "
                    f"{timeout:.0f} s: {telling_line(tail(self.log_path))} (log: {self.log_path})"
                )
            marker = self.crew.layout.act_reexec(self.ref)
            write_atomic(marker, f"{master.pid}\n")
            os.utime(marker, (asked, asked))  # what is installed meanwhile is not in it
            return
        if not self.renew("c", timeout):
            raise ActFailed(
                f"{self.ref.key} did not finish its chain reload within {timeout:.0f} s: "
                f"{telling_line(tail(self.log_path))} (log: {self.log_path})"
            )

    def _preloaded_stale(self, master: int) -> bool:
        """Whether the Act's master preloaded Django (`stageset.PRELOAD_FROM`) and the
        Venue's packages changed since its interpreter started: at its fork, or at its
        last re-exec for such a change (recorded with its pid)."""
        spec = self.spec()
        # as the vassal config has it: a Django project's master, two workers or more
        if spec.processes < PRELOAD_FROM or not (spec.django_settings or uses_shim(spec)):
            return False
        forked = started(master)
        if forked is None:
            return False
        # the kernel's boot time is in whole seconds: a change within one before counts
        since = forked - 1.0
        marker = self.crew.layout.act_reexec(self.ref)
        try:
            with open(marker) as recorded:
                if recorded.read().strip() == str(master):
                    since = max(since, os.stat(marker).st_mtime)
        except OSError:
            pass
        return packages_changed(self.ref.venue_path) > since

    def fifo(self, commands: str) -> None:
        try:
            fifo.send(self.fifo_path, commands)
        except ValueError as exc:
            raise InvalidSetting(str(exc)) from None
        except FifoNotReading:
            raise NotRunning(f"{self.ref.key} is not running: start it first") from None

    def discard(self) -> None:
        """Delete an Act that never played (a creation that failed half-way), and what
        the Manager wrote for it meanwhile: under the lock it writes Acts' files under,
        so that a pass that read it before does not write them again."""
        layout = self.crew.layout
        with declared.locked(layout.acts_lock):
            shutil.rmtree(self.ref.path, ignore_errors=True)
            for path in (
                layout.act_env(self.ref),
                layout.act_gigs(self.ref),
                layout.act_hosts(self.ref),
            ):
                unlink_if_present(path)

    def remove(self, keep_data: bool = False, keep_log: bool = False) -> str | None:
        """Stop the Act and delete its project, declaration and log (unless `keep_log`,
        as after a failed start whose message names it), and its shared data unless
        `keep_data`: then that is moved, with its act.toml, to a folder of the Venue's
        `kept/`, whose path is returned. The Act goes in one step: its folder is renamed
        out of `acts/` under the lock the Manager writes Acts' files under, then
        deleted; a pass that read it before never writes it again."""
        self.stop()
        warmrun.stop(self.crew.layout.act_check(self.ref))  # its warm check, if any
        kept = keep_shared(self.ref) if keep_data else None
        shared.drop_links_to(self.ref)
        trash = tempfile.mkdtemp(prefix=f".removing-{self.ref.name}-", dir=self.ref.venue_path)
        try:
            with declared.locked(self.crew.layout.acts_lock):
                os.rename(self.ref.path, os.path.join(trash, self.ref.name))
        finally:
            shutil.rmtree(trash, onerror=_left_behind)
        layout = self.crew.layout
        for path in (
            self.fifo_path,
            layout.act_gigs(self.ref),
            layout.act_env(self.ref),
            layout.act_env_lock(self.ref),
            layout.act_hosts(self.ref),
            *(() if keep_log else (self.log_path, *log_backups(self.log_path))),
        ):
            unlink_if_present(path)
        return kept


def keep_shared(ref: ActRef) -> str | None:
    """The Act's shared data and act.toml moved out of its folder, to
    `VENUE/kept/NAME-<time>/`; None when it has no shared data."""
    if not os.path.isdir(ref.shared_dir):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = os.path.join(ref.venue_path, "kept", f"{ref.name}-{stamp}")
    os.makedirs(kept)
    os.rename(ref.shared_dir, os.path.join(kept, "shared"))
    shutil.copy2(ref.spec_path, os.path.join(kept, "act.toml"))
    return kept


def _left_behind(function: object, path: str, exc_info: object) -> None:
    """The Act is gone already: a file its folder kept is not worth failing for."""
    log.warning("could not delete %s of a removed Act: %s", path, exc_info)


def _scaffold(ref: ActRef) -> None:
    """Django's startproject's project in the Act's folder; for a Venue with a user, in
    a folder given to that user first (startproject, if it runs, runs as them: the
    Venue's packages are the user's)."""
    if ref.user:
        os.mkdir(ref.path, 0o755)
        ownership.give(ref.path, account(ref.user))
    scaffold.django_project(ref)
    settings = os.path.join(ref.path, ref.name, "settings.py")
    # in the user's folder, for a Venue with a user: a link put there is not followed
    fd = os.open(settings, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    with os.fdopen(fd, "a") as out:
        os.fchmod(fd, 0o600)  # it holds the project's SECRET_KEY
        out.write(SETTINGS_TAIL)


def packages_changed(venue_path: str) -> float:
    """When a package was last installed into or removed from the Venue: the latest
    change of its site-packages folders (an install adds and removes entries there)."""
    return max((os.stat(path).st_mtime for path in site_packages(venue_path)), default=0.0)
