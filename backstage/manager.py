"""The Production Manager: nothing plays unless it says so.

It is the one long-running Backstage process (`backstage up`, `--foreground`
under systemd). It owns the Emperor and reconciles every second, and at once
when a declared file changes or it is poked (SIGUSR1): the declared enabled
Acts against the Emperor's vassals. Missing ones are pushed, unknown ones with
this Production's prefix withdrawn, and a dead Emperor is started again.
Over zmq the Emperor cannot be counted on to bring back a vassal that died (and it
refuses, for a while, one that died before it was loyal): this loop is what heals.

It holds nothing that matters. Kill it and the next one adopts the running
Emperor. Whoever holds the lock on `run/manager.lock` is the Manager; the lock
dies with its process, so a crash never leaves a stale claim behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emperor.process import pid_alive, read_pidfile, tail, wait_for

from .errors import BackstageError, StageError
from .ports import port_free

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from .production import Production

log = logging.getLogger(__name__)

RECONCILE_EVERY = 1.0
# A pushed vassal shows in the Emperor's list almost at once; until this has passed
# a missing one is taken as "on its way", not pushed again.
SETTLE = 3.0
UP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Pushed:
    digest: str
    at: float


@dataclass(frozen=True)
class Wanted:
    config: str
    port: int


class ProductionManager:
    def __init__(
        self,
        production: Production,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.production = production
        self.pidfile = os.path.join(production.run_dir, "manager.pid")
        self.lockfile = os.path.join(production.run_dir, "manager.lock")
        self.log_path = os.path.join(production.log_dir, "manager.log")
        self._clock = clock
        self._wall = wall  # the Emperor's blacklist speaks in wall-clock seconds
        self._pushed: dict[str, Pushed] = {}
        self._withdrawn: dict[str, float] = {}
        self._waiting: set[str] = set()
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()

    # Seen from any process

    def running(self) -> bool:
        try:
            fd = os.open(self.lockfile, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we may just have taken
        return False

    def pid(self) -> int | None:
        pid = read_pidfile(self.pidfile)
        return pid if pid is not None and self.running() and pid_alive(pid) else None

    def up(self, timeout: float = UP_TIMEOUT) -> None:
        """Have a Manager running, and the Stage answering; start one if there is none."""
        self.production.create()
        stage = self.production.stage
        if self.running() and stage.stats() is not None:
            return
        stage.channel  # noqa: B018 - a missing binary or an unusable channel fails here, at once
        child = None if self.running() else self._spawn()

        def ready() -> bool:
            if child is not None and child.poll() is not None:
                return True
            return self.running() and stage.stats() is not None

        wait_for(ready, timeout)
        if child is not None and child.poll() is not None:
            raise StageError(
                f"the Production Manager stopped: {tail(self.log_path, 1) or '(no log)'} "
                f"(log: {self.log_path})"
            )
        if not (self.running() and stage.stats() is not None):
            raise StageError(
                f"the Stage did not come up within {timeout:.0f} s; see {self.log_path} "
                f"and {stage.log_path}"
            )

    def _spawn(self) -> subprocess.Popen[bytes]:
        home = self.production.home
        with open(self.log_path, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "backstage", "--home", home, "up", "--foreground"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, BACKSTAGE_HOME=home),
            )

    def poke(self) -> None:
        """Ask the running Manager to reconcile now rather than within the second."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGUSR1)

    def down(self, timeout: float = 60.0) -> None:
        """Stop every Act, the Emperor and the Manager."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not wait_for(lambda: not pid_alive(pid), timeout):
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: not pid_alive(pid), 5.0)
        stage = self.production.stage
        if stage.running:  # an Emperor whose Manager was killed
            stage.manager.stop()

    # Inside the Manager

    def serve(self) -> None:
        """Run as the Manager until SIGTERM or SIGINT; then stop the Emperor and its Acts."""
        production = self.production.create()
        lock = os.open(self.lockfile, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise StageError(
                f"a Production Manager runs already for {production.home} (pid {self.pid()})"
            ) from None
        with open(self.pidfile, "w") as pidfile:
            pidfile.write(f"{os.getpid()}\n")
        # Handlers only enqueue; the loop does the work.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._events.put("stop"))
        for signum in (signal.SIGUSR1, signal.SIGHUP):
            signal.signal(signum, lambda *_: self._events.put("reconcile"))
        watcher = _Watcher(self._events)
        log.info("Production Manager %d for %s", os.getpid(), production.home)
        try:
            while True:
                try:
                    self.reconcile()
                    watcher.follow(production)
                except BackstageError as exc:
                    log.error("%s", exc)
                except Exception:
                    log.exception("reconcile failed")
                if self._next_event() == "stop":
                    break
        finally:
            watcher.stop()
            log.info("stopping the Emperor")
            production.stage.manager.stop()
            try:
                os.unlink(self.pidfile)
            except FileNotFoundError:
                pass
            os.close(lock)

    def _next_event(self) -> str:
        try:
            event = self._events.get(timeout=RECONCILE_EVERY)
        except queue.Empty:
            return "tick"
        while event != "stop":  # coalesce a burst into one pass
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
        return event

    def desired(self) -> dict[str, Wanted]:
        """Vassal name to rendered config and port, for every Act declared enabled."""
        stage = self.production.stage
        wanted = {}
        for act in self.production.acts:
            try:
                spec = act.spec
                if spec.enabled:
                    wanted[act.vassal_name] = Wanted(stage.set.render_vassal(act), spec.port)
            except BackstageError as exc:
                log.error("%s is left out: %s", act.key, exc)
        # The router plays with the Stage, healed like any Act.
        router = self.production.router
        try:
            config = router.render()
            wanted[router.vassal_name(config)] = Wanted(config, router.port)
        except BackstageError as exc:
            log.error("the router is left out: %s", exc)
        return wanted

    def reconcile(self) -> None:
        stage = self.production.stage
        stage_manager = stage.manager
        stage_manager.reap()
        if not stage.running:
            log.info("starting the Emperor (%s channel)", stage.channel.kind)
            stage_manager.start()
            self._pushed.clear()
            self._withdrawn.clear()
        emperor = stage.stats()
        if emperor is None:
            return  # not answering this instant; the next pass looks again
        now = self._clock()
        router = self.production.router
        self.production.booking.sync_all()
        try:
            router.prepare()
        except BackstageError as exc:
            log.error("the router's keys: %s", exc)
        wanted = self.desired()
        live = {vassal.id for vassal in emperor.vassals}
        for name, want in wanted.items():
            refused = emperor.blacklist_entry(name)
            if refused is not None and (name in live or self._wall() < refused.refused_until()):
                # It died before it was ever loyal. Retried once its throttle has run out,
                # as the Emperor's directory monitor does by itself: a passing cause (a port
                # still held by the workers of a killed vassal) heals, a broken app is
                # retried ever more slowly and shows failed meanwhile.
                continue
            digest = hashlib.sha1(want.config.encode()).hexdigest()
            pushed = self._pushed.get(name)
            if name not in live:
                if pushed is not None and now - pushed.at < SETTLE:
                    continue
                if not port_free(want.port):
                    # Workers of a vassal whose Emperor was killed hold the port for a
                    # moment; pushed now it would fail to bind and be blacklisted.
                    if name not in self._waiting:
                        log.warning("%s waits: port %d is held by another process", name, want.port)
                        self._waiting.add(name)
                    continue
                self._waiting.discard(name)
                log.info("pushing %s", name)
            elif pushed is None:
                self._pushed[name] = Pushed(digest, now)  # adopted as it runs
                continue
            elif pushed.digest == digest:
                continue
            else:
                # Not a reload: from the second Emperor-sent reload on, uWSGI 2.0's zmq
                # channel hands a vassal the config before last. Withdrawn now, it is pushed
                # with its new config once it is gone and its port is free.
                if now - self._withdrawn.get(name, -SETTLE) >= SETTLE:
                    log.info("withdrawing %s to play its changed config", name)
                    stage_manager.withdraw(name)
                    self._withdrawn[name] = now
                continue
            stage_manager.push(name, want.config)
            self._pushed[name] = Pushed(digest, now)
            self._withdrawn.pop(name, None)
        mine = self.production.prefix + "."
        for name in live - wanted.keys():
            if not name.startswith(mine):
                continue
            if now - self._withdrawn.get(name, -SETTLE) < SETTLE:
                continue
            log.info("withdrawing %s", name)
            stage_manager.withdraw(name)
            self._withdrawn[name] = now
            self._pushed.pop(name, None)
        router.keep_loyal()


CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})


class _Watcher:
    """Turns changes of declared files into reconcile events (watchdog)."""

    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self._events = events
        self._observer: BaseObserver | None = None
        self._watched: set[str] = set()

    def follow(self, production: Production) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        events = self._events

        class OnToml(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # Not "opened" or "closed_no_write": every pass reads these files itself.
                if event.event_type not in CHANGES:
                    return
                paths = (event.src_path, getattr(event, "dest_path", ""))
                if any(str(p).endswith(".toml") for p in paths):
                    events.put("reconcile")

        if self._observer is None:
            observer = Observer()
            observer.daemon = True
            observer.start()
            self._observer = observer
        observer = self._observer
        wanted = {production.home} | {venue.path for venue in production.venues}
        for path in wanted - self._watched:
            target = os.path.join(path, "acts") if path != production.home else path
            try:
                observer.schedule(OnToml(), path, recursive=False)
                if target != path and os.path.isdir(target):
                    observer.schedule(OnToml(), target, recursive=True)
            except OSError as exc:
                log.warning("cannot watch %s: %s", path, exc)
            self._watched.add(path)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
