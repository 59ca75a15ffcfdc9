"""The Production Manager: nothing plays unless it says so.

It is the one long-running Backstage process (`backstage up`, `--foreground`
under systemd). It owns the Emperor and reconciles every second, and at once
when a declared file changes or it is poked (SIGUSR1). Each pass reads the
declared files once, renders what should play, reads the Emperor's stats and
which ports are held, asks `reconcile` for a Plan and carries it out. Over zmq
the Emperor cannot be counted on to bring back a vassal that died (and it
refuses, for a while, one that died before it was loyal): this loop is what heals.

It holds nothing that matters. Kill it and the next one adopts the running
Emperor. Other processes reach it through `client.py`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import signal
import time
from collections.abc import Callable

from emperor.stats import EmperorStats, parse_instance_stats, stats_or_none

from ..errors import BackstageError, StageError
from ..files import declared
from ..files.declared import Declared
from ..files.fs import unlink_if_present
from .booking import BookingManager
from .crew import Crew
from .ports import port_free
from .reconcile import Memory, Plan, Wanted, reconcile, unplayed_ports
from .watcher import Watcher

log = logging.getLogger(__name__)

RECONCILE_EVERY = 1.0
WATCH_ROUTER_EVERY = 0.1  # a pass starts this soon after the router process is gone


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
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()

    def serve(self) -> None:
        """Run as the Manager until SIGTERM or SIGINT; then stop the Emperor and its Acts."""
        layout = self.crew.layout
        declared.create_home(layout)
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
        watcher = Watcher(self._events)
        log.info("Production Manager %d for %s", os.getpid(), layout.home)
        try:
            while True:
                try:
                    production = declared.read(layout)
                    self.reconcile(production)
                    watcher.follow(layout.home, [v.path for v in production.venues])
                except BackstageError as exc:
                    log.error("%s", exc)
                except Exception:
                    log.exception("reconcile failed")
                if self._next_event() == "stop":
                    break
        finally:
            watcher.stop()
            log.info("stopping the Emperor")
            self.crew.stage.manager.stop()
            unlink_if_present(layout.manager_pidfile)
            os.close(lock)

    def _next_event(self) -> str:
        deadline = self._clock() + RECONCILE_EVERY
        while True:
            try:
                event = self._events.get(timeout=WATCH_ROUTER_EVERY)
                break
            except queue.Empty:
                if self.crew.router.lost():
                    return "router"  # a pass at once tells the new one who plays
                if self._clock() >= deadline:
                    return "tick"
        while event != "stop":  # coalesce a burst into one pass
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
        return event

    def desired(self, production: Declared) -> dict[str, Wanted]:
        """Vassal name to rendered config and port, for every Act declared enabled, and
        the router, which plays with the Stage and is healed like any Act."""
        crew = self.crew
        layout, stageset = crew.layout, crew.stageset
        wanted = {}
        for found in production.acts:
            if found.spec is None:
                log.error("%s is left out: %s", found.ref.key, found.error)
                continue
            if not found.spec.enabled:
                continue
            try:
                config = stageset.vassal(layout, found.ref, found.spec)
            except BackstageError as exc:
                log.error("%s is left out: %s", found.ref.key, exc)
                continue
            wanted[layout.vassal(found.ref)] = Wanted(config, found.spec.port)
        router = crew.router
        try:
            config = router.render(stageset)
            wanted[router.vassal_name(config)] = Wanted(config, router.port)
        except BackstageError as exc:
            log.error("the router is left out: %s", exc)
        return wanted

    def reconcile(self, production: Declared) -> None:
        """One pass: read, plan, carry out."""
        crew = self.crew
        stage, router = crew.stage, crew.router
        stage.manager.reap()
        self.booking.sync_all(production)  # before a push: the vassal config includes them
        router.write_booked(host for act in production.acts if act.spec for host in act.spec.hosts)
        try:
            router.prepare()
        except BackstageError as exc:
            log.error("the router's keys: %s", exc)
        wanted = self.desired(production)
        plan = self._plan(wanted, stage.stats(), stage.alive())
        if plan.start_emperor:
            stage.manager.start()
            plan = self._plan(wanted, stage.stats(), True)
        for name in plan.withdraw:
            stage.manager.withdraw(name)
        for name, config in plan.push:
            stage.manager.push(name, config)
        router.keep_loyal(lambda: self.playing(production))

    def playing(self, production: Declared) -> list[tuple[str, str]]:
        """(host, node address) of every booked Act whose stats server answers now, but
        for a host it is being unbooked from (withheld: it no longer announces that one)."""
        layout = self.crew.layout
        found = []
        for act in production.acts:
            if act.spec is None or not act.spec.enabled or not act.spec.hosts:
                continue
            if stats_or_none(layout.act_stats(act.ref), parse_instance_stats, 0.2) is None:
                continue
            address = layout.act_socket(act.ref)
            found += [
                (host, address)
                for host in act.spec.hosts
                if not os.path.exists(layout.withheld(act.ref, host))
            ]
        return found

    def _plan(self, wanted: dict[str, Wanted], emperor: EmperorStats | None, running: bool) -> Plan:
        held = frozenset(port for port in unplayed_ports(wanted, emperor) if not port_free(port))
        plan = reconcile(
            wanted,
            emperor,
            running,
            self._memory,
            self._clock(),
            self._wall(),
            held,
            self.crew.layout.is_ours,
        )
        for note in plan.notes:
            (log.warning if " waits: " in note else log.info)("%s", note)
        self._memory = plan.memory
        return plan
