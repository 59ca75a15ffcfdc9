"""The Production Manager: nothing plays unless it says so.

It is the one long-running Backstage process (`backstage up`, `--foreground`
under systemd). It owns the Emperor and reconciles every second, and at once
when a declared file changes or it is poked (SIGUSR1). Each pass reads the
declared files once, renders what should play, reads the Emperor's stats and
which ports are held, asks `reconcile` for a Plan and carries it out. Over zmq
the Emperor cannot be counted on to bring back a vassal that died (and it
refuses, for a while, one that died before it was loyal): this loop is what heals.

It wakes on events, not on a clock: a declared file changed, a run file deleted or
edited, a certificate file written or removed (`watcher`), the Emperor, the router or
the socket holder gone (`emperor.deaths`: one pidfd each, no polling), a poke. A vassal
master gone (an Act falling asleep, most often) changes no file: it is looked at in the
Emperor's stats against what the last pass wanted, and starts a pass only when something
is to be done. While what plays is not yet what is wanted (a push not yet listed, a
vassal withdrawn for its changed config not yet gone, a throttle to run out, a port
held), it looks again every second, as it always did; once settled, only such an event,
a deadline (the Producer's next sync, a certificate's renewal) or the slow safety net
(SAFETY_NET) starts a pass. A copy of a log uWSGI rotated (the `watcher` is told of each
file made in a log folder) is pruned to log_keep at once, without a pass; emperor.log
and manager.log are measured against log_max every few seconds while it rests.

It holds nothing that matters. Kill it and the next one adopts the running
Emperor. Other processes reach it through `client.py`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import resource
import signal
import stat
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from emperor.deaths import Deaths
from emperor.heldwire import HELD_ENV, held_fd_urls
from emperor.holder import HeldFile
from emperor.process import telling_line
from emperor.stats import EmperorStats

from ...errors import BackstageError, InvalidSetting, StageError
from ...files import declared
from ...files.account import account
from ...files.declared import Declared, DeclaredAct
from ...files.fs import prune_log_backups, read_from, rotate_in_place, unlink_if_present
from ...model.account import Account
from ...model.lastgood import LastGood
from ...model.layout import (
    ActRef,
    venue_challenges,
    venue_https_marks,
    venue_run_dir,
    venue_user_dir,
)
from ...model.reconcile import (
    Memory,
    Plan,
    Wanted,
    forget_pushes,
    reconcile,
    settled,
    unplayed_ports,
)
from ...model.spec import ActSpec, ProductionSpec
from ..host import forgiven, ownership, ports, unplayables
from ..host.certificates import https_port_suffix, user_venue_hosts
from ..host.ports import port_free
from ..managers import adoption, leaving, producer
from ..managers.acts import MASTER_BEGINS, ActManager
from ..managers.booking import BookingManager
from ..managers.devloop import CodeWatch
from ..processes import leftovers
from ..processes.crew import Crew
from ..processes.handover import Handover
from ..processes.holding import SocketHolder
from .announcing import Announcer
from .watcher import Watcher

log = logging.getLogger(__name__)

RECONCILE_EVERY = 1.0  # while what plays is not yet what is wanted
SAFETY_NET = 60.0  # once settled: a pass at least this often, whatever was missed
WATCH_ROUTER_EVERY = 0.1  # passes this often while the router is lost (router.lost)
OPEN_FILES = 65536  # the soft limit it raises itself to, the hard one permitting
RESTING = "what plays is what is declared: resting until something changes"
SLOW_PASS = 2.0
LOG_MADE = "log"  # a file made in a log folder: prune, no pass
# While it rests, how often emperor.log and manager.log are measured against log_max
# (two stat calls, no pass): nothing else would rotate them until the safety net
OWN_LOGS_EVERY = 5.0
MASTER = "master"  # a vassal master died: a look at the Emperor's stats, not a pass
A_MASTER_DIED = "a vassal's master is gone (asleep, or respawned): what plays is as wanted"
# A vassal master's death found nothing to do (it fell asleep, or the Emperor spawns it
# again itself) is looked at once more this much later: the Emperor may not have taken
# the death in yet when it is first looked at
LOOK_AGAIN = 1.0


class Service(Protocol):
    """Something that serves beside the Manager, for as long as it runs."""

    def start(self) -> object: ...

    def stop(self) -> None: ...


class ProductionManager:
    def __init__(
        self,
        crew: Crew,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.crew = crew
        self.booking = BookingManager(crew)
        self._clock = clock
        self._wall = wall  # the Emperor's blacklist speaks in wall-clock seconds
        self._memory = Memory()
        self._last_good = LastGood()  # what each Act last served with, what uWSGI refused
        self._refusals: dict[str, tuple[str, str]] = {}  # vassal: (digest, uWSGI's reason)
        # Acts whose env file this pass rewrote: reloaded unless the pass restarts them
        self._new_env: dict[str, ActRef] = {}
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._said: set[str] = set()  # what the last pass logged
        self._saying: set[str] = set()  # what this pass logged
        self._kept = False  # whether the keeper vassal is wanted (serve's `kept`)
        self._played: dict[str, int] = {}  # vassal name to the port it was last pushed on
        self.dns = producer.Syncing(crew.layout)
        self.announcer = Announcer(crew, self.booking)
        self.codewatch = CodeWatch(crew)  # watches nothing until a pass says what
        self.holder = SocketHolder(crew.layout)
        self.handover = Handover(crew.router, clock)
        self._deaths = Deaths(self._died)
        # the pids whose death starts a pass (the Emperor, the router, the holder): any
        # other is a vassal master's
        self._principals: frozenset[int] = frozenset()
        self._last: tuple[dict[str, Wanted], set[str]] | None = None  # the last pass's
        self._renewal: float | None = None  # when a certificate is due next (time.time())
        self._began = 0.0  # when this pass began (time.time()), before it read anything
        self._settled = False  # the last pass found what plays as wanted
        self._resting = False  # said so, and waits for an event
        self._failed = False  # a step of this pass failed: look again in a second
        # each log whose rotated copies it prunes, to how many it keeps (the last pass's)
        self._log_keep: dict[str, int] = {}
        self._logs_made: queue.SimpleQueue[str] = queue.SimpleQueue()  # paths, from the watcher
        self._own_logs: tuple[int, int] = (0, 0)  # the last pass's log_max and log_keep

    def serve(self, kept: bool = False, services: Sequence[Service] = ()) -> None:
        """Run as the Manager until SIGTERM or SIGINT; then stop the Emperor and its Acts.
        `kept`: have a keeper beside it, which starts it again should it die (not under
        a service manager, which does that itself); the keeper plays on the Stage, as
        a vassal whose master starts it again should it die too. `services` live as
        long as it does
        (the metrics and the dashboard, which the interface makes)."""
        layout = self.crew.layout
        self._kept = kept
        raise_open_files()
        declared.create_home(layout, ports.new_production)
        lock = os.open(layout.manager_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise StageError(
                f"a Production Manager runs already for {layout.home} "
                f"(pid {self.crew.manager.pid()})"
            ) from None
        with open(layout.manager_pidfile, "w") as pidfile:
            pidfile.write(f"{os.getpid()}\n")
        # Handlers only enqueue; the loop does the work.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._events.put("stop"))
        for signum in (signal.SIGUSR1, signal.SIGHUP):
            signal.signal(signum, lambda *_: self._events.put("reconcile"))
        watcher = Watcher(self._events, self._log_made)
        log.info("Production Manager %d for %s", os.getpid(), layout.home)
        started: list[Service] = []
        try:
            for service in services:
                if self._guarded(f"starting {service}", service.start):
                    started.append(service)
            while True:
                began = self._clock()
                self._began = self._wall()  # what the pass reads is read after this
                self._settled = self._failed = False
                self._guarded("this pass", lambda: self.reconcile(declared.read(layout)))
                if self._clock() - began > SLOW_PASS:
                    self._say(
                        logging.WARNING,
                        f"passes take over {SLOW_PASS:.0f} s: the machine is overloaded, "
                        "and Acts that die are brought back that much later",
                    )
                self._guarded("watching the files", lambda: self._follow(watcher))
                self._guarded("watching the vassals", self._watch_children)
                self._said, self._saying = self._saying, set()
                wait = self._next_pass_in()
                if (wait > RECONCILE_EVERY) != self._resting:
                    self._resting = wait > RECONCILE_EVERY
                    if self._resting:
                        log.info("%s", RESTING)
                if self._next_event(wait) == "stop":
                    break
        finally:
            for service in started:
                self._guarded(f"stopping {service}", service.stop)
            watcher.stop()
            self._deaths.stop()
            self.announcer.stop()
            self.codewatch.stop()
            self._guarded("the pending hosts", self._leave_all_pending)
            # the routers on other hosts stop sending before the Acts stop: what they
            # had queued at a node is served, not cut (see managers.leaving)
            self._guarded("leaving the routers on other hosts", self._leave_remote)
            # The holder first: each socket then closes with the last vassal process
            # that has it, and a router on another host is refused there and passes the
            # request to another node; held on until the Emperor was gone, a connection
            # it made after this Act died waited in the backlog and was cut unanswered.
            self._guarded("stopping the socket holder", self.holder.stop)
            log.info("stopping the Emperor")
            self.crew.stage.manager.stop()
            unlink_if_present(layout.manager_pidfile)
            os.close(lock)

    def _leave_remote(self) -> None:
        leaving.leave_remote_routers(self.crew)

    def _leave_all_pending(self) -> None:
        for found in declared.read(self.crew.layout).acts:
            if os.path.exists(self.crew.layout.pending(found.ref)) and found.spec is not None:
                self.booking.leave_pending(ActManager(self.crew, found.ref))

    def _follow(self, watcher: Watcher) -> None:
        layout = self.crew.layout
        venues = declared.production_playing(layout)[0].venues
        run_dirs = [layout.run_dir]
        run_dirs += [d for v in venues for d in (venue_run_dir(v), venue_user_dir(v))]
        log_dirs = {os.path.dirname(path) for path in self._log_keep}
        watcher.follow(layout.home, venues, run_dirs, log_dirs, layout.certs_dir)

    def _log_made(self, path: str) -> None:
        """In the watcher's thread: only enqueue, the loop prunes."""
        self._logs_made.put(path)
        self._events.put(LOG_MADE)

    def _prune_logs_made(self) -> None:
        """The copies beyond log_keep of each log a rotated copy was just made of: uWSGI
        rotates an Act's log, the router's and the keeper's past log_max, and keeps every
        copy; a pass, which prunes them all, may be a minute away once settled."""
        listings: dict[str, list[str]] = {}
        done: set[str] = set()
        while True:
            try:
                made = self._logs_made.get_nowait()
            except queue.Empty:
                break
            stem, _, stamp = made.rpartition(".")
            if stamp.isdigit() and stem in self._log_keep and stem not in done:
                done.add(stem)
                self._guarded(
                    f"pruning the copies of {stem}",
                    partial(prune_log_backups, stem, self._log_keep[stem], listings),
                )

    # Saying things once: a broken file or a full disk would otherwise fill the log with
    # the same line every second. A message is logged again only after a pass without it.

    def _say(self, level: int, message: str, exc_info: bool = False) -> None:
        if message not in self._said:
            log.log(level, "%s", message, exc_info=exc_info)
        self._saying.add(message)

    def _guarded(self, what: str, step: Callable[[], object]) -> bool:
        """Run one step of a pass; whatever it raises is said once, and the pass goes on:
        one bad file, a full or read-only disk, or a bug must not stop the healing.
        Whether the step went through."""
        try:
            step()
        except (BackstageError, OSError) as exc:
            self._say(logging.ERROR, f"{what}: {exc}")
        except Exception as exc:
            self._say(logging.ERROR, f"{what} failed: {exc!r}", exc_info=True)
        else:
            return True
        self._failed = True
        return False

    def _next_pass_in(self) -> float:
        """Seconds until the next pass with no event: one while anything is on its way
        or a step failed, else until the next deadline, at most SAFETY_NET."""
        if not self._settled or self._failed or self.crew.router.acme.busy():
            return RECONCILE_EVERY
        wait = SAFETY_NET
        produce = self.dns.next_due()
        if produce is not None:
            wait = min(wait, produce - self._clock())
        renew = self._renewal
        if renew is not None:
            wait = min(wait, renew - self._wall())
        return max(RECONCILE_EVERY, wait)

    def _next_event(self, wait: float) -> str:
        deadline = self._clock() + wait
        look_again: float | None = None  # when to look again after a master's death
        while True:
            lost = self.crew.router.lost()
            left = deadline - self._clock()
            if lost:
                left = min(left, WATCH_ROUTER_EVERY)
            if look_again is not None:
                left = min(left, look_again - self._clock())
            try:
                event = self._events.get(timeout=max(0.0, min(left, OWN_LOGS_EVERY)))
            except queue.Empty:
                if lost:
                    return "router"  # a pass at once tells the new one who plays
                if self._clock() >= deadline:
                    return "tick"
                if look_again is not None and self._clock() >= look_again:
                    look_again = None
                    if not self._still_as_wanted():
                        return "vassal"
                    continue
                self._guarded("rotating the Production's logs", self._rotate_own_logs)
                continue
            if event == LOG_MADE:
                self._prune_logs_made()  # and rest on
                continue
            event = self._coalesced(event)
            if event != MASTER:
                return event
            if not self._still_as_wanted():
                return "vassal"
            log.info("%s", A_MASTER_DIED)
            look_again = self._clock() + LOOK_AGAIN

    def _coalesced(self, event: str) -> str:
        """One event for a burst: a pass for any of them but a master's death (many Acts
        fall asleep together), which starts none by itself."""
        while event != "stop":
            try:
                more = self._events.get_nowait()
            except queue.Empty:
                break
            if more == LOG_MADE:
                self._prune_logs_made()
            elif event == MASTER or more == "stop":
                event = more  # the pass prunes every log's copies anyway
        return event

    def _died(self, pid: int) -> None:
        """In the deaths' thread: only enqueue, the loop looks."""
        self._events.put("vassal" if pid in self._principals else MASTER)

    def _still_as_wanted(self) -> bool:
        """After a vassal master's death (an Act fell asleep, or crashed): whether what
        plays is still what the last pass wanted, from the Emperor's stats alone. The
        death of one process changes no file: a pass would read a thousand Acts' files
        and render their configs again to find the same. Not so, a pass follows."""
        if not self._settled or self._failed or self._last is None:
            return False
        wanted, keep = self._last
        stage, ours = self.crew.stage, self.crew.layout.is_ours
        try:
            emperor = stage.stats()
            if unplayed_ports(wanted, emperor):
                return False  # one is not listed: the pass pushes it, or waits for its port
            plan = reconcile(
                wanted, emperor, stage.alive(), self._memory, self._clock(), self._wall(),
                frozenset(), ours, keep,
            )  # fmt: skip
        except (BackstageError, OSError):
            return False
        return settled(wanted, emperor, plan, ours, keep)

    def _watch_children(self) -> None:
        """Watch the Emperor, its children, the router and the socket holder after a
        pass, to start a pass the moment one dies: over zmq the Emperor brings nothing
        back, and each of their requests waits in a held backlog meanwhile; a holder
        gone holds no socket for the next vassal that starts."""
        others = (self.crew.router.greeted, self.holder.pid() if self.crew.stage.holds else 0)
        emperor = self.crew.stage.pid()
        self._principals = frozenset(pid for pid in (emperor, *others) if pid)
        self._deaths.watch(emperor, others)

    def desired(
        self, production: Declared
    ) -> tuple[dict[str, Wanted], set[str], dict[str, tuple[ActRef, str]]]:
        """Vassal name to rendered config and port, for every Act declared enabled, and
        the router, which plays with the Stage and is healed like any Act; the vassals to
        keep as they play: those of Acts whose declaration is unusable now; and those
        Acts (key to ref and why), to be published once the ports are settled."""
        crew = self.crew
        layout, stageset = crew.layout, crew.stageset
        wanted, keep = {}, set()
        unplayable: dict[str, tuple[ActRef, str]] = {}
        own_uwsgi = {v.path for v in production.venues if v.spec is not None and v.spec.own_uwsgi}
        settings = production.production
        redirect = (
            https_port_suffix(settings)
            if settings.https_redirect and crew.router.serves_tls()
            else None
        )
        # with a TLS listener, whether or not [acme] is there: adding it then restarts no
        # Act (each would take seconds, and the first booking's validation waited for it)
        challenges = crew.router.acme.challenges if crew.router.serves_tls() else ""
        hsts = {
            v.path: tuple(d for d in v.spec.hsts if d in v.spec.domains)
            for v in production.venues
            if v.spec is not None
        }
        for found in production.acts:
            name = layout.vassal(found.ref)
            if found.spec is None:
                self._say(logging.ERROR, f"{found.ref.key} is invalid: {found.error}")
                keep.add(name)
                continue
            if not found.spec.enabled:
                continue
            try:
                venue_path = found.ref.venue_path
                uwsgi = ownership.own_uwsgi(venue_path) if venue_path in own_uwsgi else ""
                ownership.check_python(venue_path, found.ref.user)
                # an Act of a Venue with a user cannot reach the home: its Venue's own
                marks, answers = layout.https_marks, challenges
                if found.ref.user:
                    marks = venue_https_marks(venue_path)
                    answers = venue_challenges(venue_path) if challenges else ""
                config = stageset.vassal(
                    layout,
                    found.ref,
                    found.spec,
                    uwsgi,
                    production.production.max_rss,
                    _account(found.ref.user),
                    redirect,
                    answers,
                    hsts.get(found.ref.venue_path, ()),
                    marks,
                    node=crew.router.node_address(found.spec.port),
                )
            except BackstageError as exc:
                self._say(logging.ERROR, f"{found.ref.key} is invalid: {exc}")
                unplayable[found.ref.key] = (found.ref, str(exc))
                keep.add(name)
                continue
            spec = found.spec
            held = None
            on_demand = on_demand_address(spec)
            if takes_held(config):
                owner = _owner(found.ref.user)
                ports = [f"127.0.0.1:{spec.port}", layout.act_socket(found.ref)]
                # and its socket for routers on other hosts, where its config takes it
                node = crew.router.node_address(spec.port)
                if node and f"socket = {held_fd_urls(3)[2]}" in config:
                    ports.append(node)
                if on_demand:
                    # its port held like an awake Act's; the holder wakes it through this
                    on_demand = layout.act_on_demand(found.ref)
                held = HeldFile(tuple(ports), owner, on_demand)
            wanted[name] = Wanted(config, spec.port, on_demand, held)
        if self._kept:
            try:
                # no port: 0 is never held
                # as this process's user (a system Emperor may run vassals as root)
                owner = (os.getuid(), os.getgid()) if os.getuid() else None
                config = stageset.keeper(
                    layout, sys.executable, owner, production.production.log_max
                )
                wanted[layout.keeper_vassal] = Wanted(config, 0)
            except BackstageError as exc:
                self._say(logging.ERROR, f"the keeper is left out: {exc}")
        router = crew.router
        try:
            config = router.render(stageset)
            addresses = (router.address, router.socket_path) + router.tls_addresses
            held = HeldFile(addresses) if takes_held(config) else None
            wanted[router.vassal_name(config)] = Wanted(config, router.port, held=held)
        except BackstageError as exc:
            self._say(logging.ERROR, f"the router is left out: {exc}")
        return wanted, keep, unplayable

    def _kept_ports(self, production: Declared, keep: set[str], live: set[str]) -> dict[str, int]:
        """The ports of the Acts that play on as they were (their act.toml cannot be used
        now): the one this Manager pushed them on, else what their declaration still
        says (one read while rewritten in place says nothing)."""
        layout = self.crew.layout
        kept = {}
        for found in production.acts:
            name = layout.vassal(found.ref)
            if name in keep and name in live:
                port = self._played.get(name) or (found.spec.port if found.spec else 0)
                if port:
                    kept[name] = port
        return kept

    def _refused_plays_last_good(
        self,
        production: Declared,
        wanted: dict[str, Wanted],
        unplayable: dict[str, tuple[ActRef, str]],
        emperor: EmperorStats,
    ) -> None:
        """An Act whose changed config uWSGI refused plays the config it last served
        with in its place, and is said invalid with uWSGI's reason (`model.lastgood`)."""
        layout = self.crew.layout
        for found in production.acts:
            name = layout.vassal(found.ref)
            want = wanted.get(name)
            if want is None:
                continue
            self._last_good = self._last_good.judged(name, want, emperor)
            last = self._last_good.playing(name, want)
            if last is None:
                self._refusals.pop(name, None)
                continue
            if self._refusals.get(name, ("", ""))[0] != want.digest:
                text = read_from(layout.act_log(found.ref), 0, 64 * 1024)[0]
                why = telling_line(text[max(text.rfind(MASTER_BEGINS), 0) :])  # its last master's
                self._refusals[name] = (want.digest, why)
                log.warning("%s: uWSGI refused its changed config: %s", found.ref.key, why)
            wanted[name] = last
            # `status` adds that it plays on as it was: on the config it last served with
            why = self._refusals[name][1].rstrip(".")
            unplayable[found.ref.key] = (found.ref, f"uWSGI refused its config: {why}")

    def _one_act_a_port(
        self,
        wanted: dict[str, Wanted],
        live: set[str],
        kept: dict[str, int],
        refused: tuple[set[str], dict[str, tuple[ActRef, str]], dict[str, ActRef]],
    ) -> None:
        """Two Acts that declare one port (an act.toml edited by hand; `act new` and
        `act set` refuse it) never both play: the one that played on that port keeps it
        (else the one that plays whose act.toml was written first, else the first by
        name). The other is refused: invalid, with who holds the port, and played on as
        it was if it plays (`keep`), else left out until its port is its own. Both
        playing, each would take some of the other's requests from the socket they would
        share. An Act that plays on as it was (`kept`) keeps its port too."""
        keep, unplayable, refs = refused
        claims = {name: want.port for name, want in wanted.items() if want.port}
        by_port: dict[int, list[str]] = {}
        for name, port in sorted({**claims, **kept}.items()):
            by_port.setdefault(port, []).append(name)
        for port, names in by_port.items():
            if len(names) < 2:
                continue
            playing = sorted((n for n in names if n in live), key=lambda n: _age(refs.get(n)))
            keeper = next(
                (n for n in playing if self._played.get(n) == port),
                playing[0] if playing else names[0],
            )
            for name in names:
                if name == keeper or name not in wanted:
                    continue
                del wanted[name]
                if name in live:
                    keep.add(name)  # its old config plays on, on its old port
                ref, holder = refs.get(name), refs.get(keeper)
                if ref is not None:
                    unplayable[ref.key] = (
                        ref,
                        f"port {port} is {holder.key if holder else keeper}'s: pick another "
                        f"(`backstage act set {ref.key} port=N`)",
                    )

    def _write_run_files(self, production: Declared) -> None:
        """What a vassal config refers to, written before it is pushed: each Act's env
        file and subscriptions. Each Act's own failure is its own."""
        listings: dict[str, list[str]] = {}  # of the log folders, read once a pass
        self._log_keep = self._logs_kept(production)
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(declared.locked(self.crew.layout.acts_lock))
            except OSError as exc:  # a full disk: the files matter more than the race
                self._say(logging.WARNING, f"the Acts' files are written unlocked: {exc}")
            for found in production.acts:
                # an Act removed since the pass read it is not brought back
                if found.spec is not None and os.path.isfile(found.ref.spec_path):
                    self._write_act_files(found, listings)
        self._guarded(
            "rotating the Production's logs",
            partial(self._rotate_logs, production.production, listings),
        )
        self._guarded("the subscriptions", lambda: self.booking.sync_all(production))
        self._guarded(
            "the files of Acts gone",
            partial(leftovers.sweep, self.crew.layout, production, self._wall()),
        )
        # which hosts each Venue with a user books: its marks and HTTP-01 answers are
        # kept in its own folder, which the router's prepare writes
        self.crew.router.certificates.share(user_venue_hosts(production.acts))
        self._guarded("the router's keys", self.crew.router.prepare)
        self._guarded("the booked hosts", self.booking.publish_booked)
        # certificates for booked hosts, in a thread: the pass never waits for the CA
        booked = [h for found in production.acts if found.spec for h in found.spec.hosts]
        self._guarded("the certificates", partial(self.crew.router.acme.start, booked))
        self._renewal = None
        self._guarded("the next renewal", partial(self._next_renewal, booked))

    def _logs_kept(self, production: Declared) -> dict[str, int]:
        """Each log whose rotated copies are pruned, to how many of them are kept."""
        layout, keep = self.crew.layout, production.production.log_keep
        logs = (layout.emperor_log, layout.manager_log, layout.router_log, layout.keeper_log)
        kept = dict.fromkeys(logs, keep)
        for found in production.acts:
            if found.spec is not None:
                kept[layout.act_log(found.ref)] = found.spec.log_keep
        return kept

    def _next_renewal(self, hosts: list[str]) -> None:
        self._renewal = self.crew.router.acme.next_due(hosts)

    def _rotate_logs(self, settings: ProductionSpec, listings: dict[str, list[str]]) -> None:
        """The Production's own logs, as an Act's: past log_max, to LOG.<unixtime>, and
        the newest log_keep of those kept. The router's and the keeper's uWSGI rotate
        router.log and keeper.log; the Emperor's and the Manager's outputs are files their
        processes never reopen, rotated here in place."""
        layout = self.crew.layout
        self._own_logs = (settings.log_max, settings.log_keep)
        for path in (layout.emperor_log, layout.manager_log):
            if rotate_in_place(path, settings.log_max, self._wall()):
                listings.pop(os.path.dirname(path), None)  # it holds one more file now
        logs = (layout.emperor_log, layout.manager_log, layout.router_log, layout.keeper_log)
        for path in logs:
            prune_log_backups(path, settings.log_keep, listings)

    def _rotate_own_logs(self) -> None:
        """emperor.log and manager.log past log_max rotated between two passes, as a pass
        does: their writers write on whether or not the Manager passes."""
        log_max, log_keep = self._own_logs
        layout = self.crew.layout
        for path in (layout.emperor_log, layout.manager_log):
            if rotate_in_place(path, log_max, self._wall()):
                prune_log_backups(path, log_keep, {})

    def _write_act_files(self, found: DeclaredAct, listings: dict[str, list[str]]) -> None:
        """One Act's run files; its own failure is its own."""
        assert found.spec is not None
        act = ActManager(self.crew, found.ref)
        if not self._guarded(f"{found.ref.key}'s folders", partial(ownership.prepare, act.ref)):
            return  # nothing is written where its user could have put a link
        self._guarded(f"{found.ref.key}'s env file", partial(self._sync_env, act, found.spec))
        self._guarded(f"{found.ref.key}'s declaration", partial(private_spec, act))
        self._guarded(
            f"{found.ref.key}'s files",
            partial(adoption.write_act_files, self.crew, found.ref, found.spec),
        )
        # uWSGI rotates a log past log_max but keeps every rotated copy
        self._guarded(
            f"{found.ref.key}'s rotated logs",
            partial(prune_log_backups, act.log_path, found.spec.log_keep, listings),
        )

    def _sync_env(self, act: ActManager, spec: ActSpec) -> None:
        """The env file written; where it changed (act.toml edited by hand; `config set`
        writes it itself, first) and no worker or cron of the Act needs a restart for it,
        the Act is reloaded after the pass's pushes, unless one restarts it. Left alone
        while a command that writes it and reloads the Act holds its lock."""
        if act.env_synced(spec):
            return  # each pass, every Act: one read, no lock
        with declared.unless_locked(self.crew.layout.act_env_lock(act.ref)) as free:
            if free and act.sync_env(spec) and not (spec.workers or spec.cron):
                self._new_env[self.crew.layout.vassal(act.ref)] = act.ref

    def _reload_for_env(self, pushed: set[str]) -> None:
        """A chain reload of each playing Act whose env file changed and that this pass
        did not restart: each new worker reads the file as it loads the app."""
        changed, self._new_env = self._new_env, {}
        for name, ref in changed.items():
            act = ActManager(self.crew, ref)
            if name not in pushed and act.sess() is not None:
                self._guarded(f"reloading {ref.key} for its new env", partial(act.fifo, "c"))

    def reconcile(self, production: Declared) -> None:
        """One pass: read, plan, carry out."""
        crew = self.crew
        stage, router = crew.stage, crew.router
        if production.problem:
            self._say(logging.ERROR, production.problem)
        stage.manager.reap()
        self._write_run_files(production)
        stats = stage.stats()
        wanted, keep, unplayable = self.desired(production)
        if stats is not None:
            self._refused_plays_last_good(production, wanted, unplayable, stats)
        live = {v.id for v in stats.vassals} if stats else set()
        refs = {crew.layout.vassal(found.ref): found.ref for found in production.acts}
        router_vassal = self._router_vassal(wanted)
        held = router_vassal in wanted and wanted[router_vassal].held is not None
        draining = self.handover.step(router_vassal, live, held)
        keep |= draining
        kept = self._kept_ports(production, keep, live)
        self._one_act_a_port(wanted, live, kept, (keep, unplayable, refs))
        self._guarded(
            "the unplayable Acts",
            partial(
                unplayables.publish,
                crew.layout,
                unplayable,
                self._began,
                {found.ref.key: found.mtime for found in production.acts if found.mtime},
            ),
        )
        if stage.holds:
            # before the Emperor: it spawns through the wrapper, which asks the holder
            self._guarded("the socket holder", partial(self._hold, wanted))
        emperor = stage.stats()
        plan = self._plan(wanted, keep, emperor, stage.alive())
        if plan.start_emperor:
            stage.manager.start()
            emperor = stage.stats()
            plan = self._plan(wanted, keep, emperor, True)
        self._settled = not draining and settled(wanted, emperor, plan, crew.layout.is_ours, keep)
        self._last = (wanted, keep)
        by_vassal = {crew.layout.vassal(found.ref): found.ref for found in production.acts}
        for name in plan.withdraw:
            if name in by_vassal:
                act = ActManager(crew, by_vassal[name])
                with self.announcer.lock:
                    self._guarded(
                        f"{name}'s pending hosts", partial(self.booking.leave_pending, act)
                    )
            self._guarded(f"withdrawing {name}", partial(stage.manager.withdraw, name))
        for name, config, on_demand in plan.push:
            if self._guarded(
                f"pushing {name}", partial(stage.manager.push, name, config, on_demand)
            ):
                self._played[name] = wanted[name].port if name in wanted else 0
        if emperor is not None:
            pushes = {name: wanted[name] for name, _, _ in plan.push if name in wanted}
            self._last_good = self._last_good.pushed(pushes, emperor).served(
                wanted, emperor, self._memory.pushed
            )
        self._reload_for_env({name for name, _, _ in plan.push} | set(plan.withdraw))
        self._guarded(
            "greeting the router",
            partial(router.keep_loyal, partial(self.announcer.playing, production)),
        )
        if not router.greeted:
            self._settled = False  # a router not yet told who plays: look again
        self._guarded("the Producer", partial(self.produce, production))
        self.announcer.follow(production)
        self._guarded("watching the code", partial(self.codewatch.follow, production))

    def _router_vassal(self, wanted: dict[str, Wanted]) -> str:
        """The router vassal this pass wants ("" when it is left out)."""
        is_router = self.crew.layout.is_router_vassal
        return next((name for name in wanted if is_router(name)), "")

    def _hold(self, wanted: dict[str, Wanted]) -> None:
        wraps = self.crew.stage.wraps()  # else nothing is handed over: hold nothing
        self.holder.keep({n: w.held for n, w in wanted.items() if w.held is not None and wraps})
        self.holder.start()

    def produce(self, production: Declared) -> None:
        failure = self.dns.step(production, self._clock())
        if failure:
            self._say(logging.ERROR, failure)

    def _plan(
        self,
        wanted: dict[str, Wanted],
        keep: set[str],
        emperor: EmperorStats | None,
        running: bool,
    ) -> Plan:
        unplayed = unplayed_ports(wanted, emperor)
        # a port the socket holder holds is the vassal's to take, not another's
        ours = self.holder.ports() if unplayed and self.crew.stage.holds else frozenset()
        held = frozenset(port for port in unplayed - ours if not port_free(port))
        # a user's start that cleared a vassal from the blacklist: pushed now, not SETTLE
        # after the push of its broken app
        forgiven_now = forgiven.take(self.crew.layout)
        self._memory = forget_pushes(self._memory, forgiven_now)
        self._last_good = self._last_good.forget(forgiven_now)
        plan = reconcile(
            wanted,
            emperor,
            running,
            self._memory,
            self._clock(),
            self._wall(),
            held,
            self.crew.layout.is_ours,
            keep,
        )
        for note in plan.notes:
            (log.warning if " waits: " in note else log.info)("%s", note)
        self._memory = plan.memory
        return plan


def raise_open_files(ceiling: int = OPEN_FILES) -> None:
    """Its soft limit of open files up towards the hard one, for the Emperor it starts,
    which inherits it: each sleeping Act is a socket the Emperor holds, and the usual
    soft limit of 1,024 stops at about a thousand Acts. At most `ceiling`: a process
    that closes every fd up to its limit before an exec (uWSGI does, in places) must
    not walk a billion."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _account(user: str) -> Account | None:
    """The Venue's user, whom its vassals drop to; InvalidSetting when this process cannot
    make them run as that user."""
    if not user:
        return None
    reason = ownership.runs_as(user)
    if reason:
        raise InvalidSetting(reason)
    return account(user)


def _age(ref: ActRef | None) -> int:
    """When the Act's act.toml was last written (0: unknown): of two that name one port,
    the one edited last is likelier the one that took it."""
    try:
        return os.stat(ref.spec_path).st_mtime_ns if ref else 0
    except OSError:
        return 0


def _owner(user: str) -> tuple[int, int] | None:
    """Whom an Act's held unix socket belongs to: its Venue's user, who unlinks it."""
    if not user:
        return None
    found = account(user)
    return (found.uid, found.gid)


def takes_held(config: str) -> bool:
    """The config takes held sockets from the wrapper (a template of a user's own may not:
    its vassal then binds its port itself, and the holder must not hold it)."""
    return f"if-env = {HELD_ENV}" in config


def on_demand_address(spec: ActSpec) -> str:
    """Where the Emperor waits for the first request of an Act that sleeps when idle:
    its own port, so a request there wakes it; "" for an Act that never sleeps. One
    whose sockets are held gets a unix socket in run/ instead (Layout.act_on_demand):
    its port is the holder's, which outlives the Emperor."""
    return f"127.0.0.1:{spec.port}" if spec.idle else ""


def private_spec(act: ActManager) -> None:
    """An act.toml is for its owner's eyes only (its env holds secrets, its settings say
    where everything is), whatever wrote it: a hand edit keeps the mode the editor gave
    it. Never through a link: in a Venue user's folder it could point anywhere."""
    try:
        fd = os.open(act.ref.spec_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) and os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
