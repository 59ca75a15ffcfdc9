"""The Production Manager as seen from any other process: is it there, start it, poke
it, stop it. The API and the command use this; the Manager itself is `daemon.py`.

Whoever holds the lock on `run/manager.lock` is the Manager; the lock dies with its
process, so a crash never leaves a stale claim behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess

from emperor.process import pid_alive, read_pidfile, tail, wait_for
from emperor.stats import parse_router_stats, stats_or_none

from ...errors import BackstageError, StageError
from ...files import declared
from ...files.fs import lock_held, unlink_if_present
from ...model.gig import split_address
from ...model.layout import Layout
from ..build import warmrun
from ..host import ports
from . import holding, keeper, leftovers
from .stage import AnyStage

UP_TIMEOUT = 30.0

log = logging.getLogger(__name__)


class ManagerClient:
    def __init__(self, layout: Layout, stage: AnyStage) -> None:
        self.layout = layout
        self.stage = stage
        self.pidfile = layout.manager_pidfile
        self.lockfile = layout.manager_lock
        self.log_path = layout.manager_log

    def running(self) -> bool:
        return lock_held(self.lockfile)

    def pid(self) -> int | None:
        pid = read_pidfile(self.pidfile)
        return pid if pid is not None and self.running() and pid_alive(pid) else None

    def up(self, timeout: float = UP_TIMEOUT) -> None:
        """Have a Manager running, and the Stage answering; start one if there is none.
        Two `up` at once are fine: the Manager that loses the lock bows out."""
        declared.create_home(self.layout, ports.new_production)
        stage = self.stage
        if self.running() and stage.stats() is not None:
            return
        stage.check()  # a missing binary, an unusable channel, no system Emperor: at once
        self._check_router_port()
        child = None if self.running() else self._spawn()

        def ready() -> bool:
            if child is not None and child.poll() is not None and not self.running():
                return True  # ours stopped, and no other Manager took over
            return self.running() and stage.stats() is not None

        wait_for(ready, timeout)
        if self.running() and stage.stats() is not None:
            return
        if child is not None and child.poll() is not None:
            raise StageError(
                f"the Production Manager stopped: {tail(self.log_path, 1) or '(no log)'} "
                f"(log: {self.log_path})"
            )
        raise StageError(
            f"the Stage did not come up within {timeout:.0f} s; see {self.log_path} "
            f"and {stage.log_path}"
        )

    def _check_router_port(self) -> None:
        """Refuse at once, rather than wait on a router that cannot bind: its address is
        held by another program, or another Production's router."""
        settings = declared.production_playing(self.layout)[0]
        host, port = split_address(settings.router)
        answering = stats_or_none(self.layout.router_stats, parse_router_stats, 0.5)
        bound = host if host != "0.0.0.0" else ""
        if answering is None and holding.taken_elsewhere(self.layout, port, bound):
            raise StageError(
                f"the router's address {settings.router} is held by another program (another "
                f'Production?): set router = "127.0.0.1:PORT" in {self.layout.spec_path}'
            )

    def _spawn(self) -> subprocess.Popen[bytes]:
        return keeper.spawn_manager(self.layout)

    def poke(self) -> None:
        """Ask the running Manager to reconcile now rather than within the second."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGUSR1)

    def down(self, timeout: float = 60.0) -> None:
        """Stop every Act, the Emperor, the Manager and its keeper. The Manager's pidfile
        goes first: the keeper then takes the Manager's end for a stop, not a death (it
        ends with the Emperor, whose vassal runs it)."""
        pid = self.pid()
        unlink_if_present(self.layout.manager_pidfile)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not wait_for(lambda: not pid_alive(pid), timeout, 0.01):
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: not pid_alive(pid), 5.0)
        # the holder before the Emperor: a port closes with its vassal (see the Manager's)
        holding.SocketHolder(self.layout).stop()
        if self.stage.alive():  # an Emperor whose Manager was killed
            self.stage.manager.stop()
        warmrun.stop_all(self.layout.run_dir)
        nothing_runs = (
            not (self.pid() or self.stage.alive() or keeper.running(self.layout))
            and not holding.SocketHolder(self.layout).running()
        )
        if nothing_runs:
            try:
                leftovers.sweep_down(self.layout, declared.read(self.layout))
            except (BackstageError, OSError) as exc:  # a file it cannot read: left as it is
                log.warning("run/ is left as it is: %s", exc)
