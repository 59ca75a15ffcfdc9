"""The Stage: the Production's own uWSGI Emperor, and the Stage Manager that drives it.

The Stage knows where the Emperor's control surfaces are (all in `run/`) and
reads what it reports. The Stage Manager starts and stops it and pushes and
withdraws vassal configs through whichever channel the uwsgi binary allows.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from emperor import binary as uwsgi_binary
from emperor import fifo, stopping
from emperor.channel import CHANNELS, Channel, kind_of_monitor, usable
from emperor.errors import FifoNotReading, UwsgiError
from emperor.process import Emperor, cmdline, pids_named, stop_pid, wait_for
from emperor.stats import EmperorStats, parse_emperor_stats, stats_or_none

from ...errors import BackstageError, InvalidSetting, StageError
from ...files import declared
from ...model.layout import Layout
from ...model.spec import ProductionSpec
from ..build import virtualenv
from . import holding
from .systemstage import SystemStage

if TYPE_CHECKING:
    from emperor.binary import UwsgiBinary

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds the vassals have to go once they are told to stop
LAST_WORD = 1.0  # seconds of STOP_GRACE kept for withdrawing the router, whatever the Acts do
FINE = 0.02  # seconds between looks while processes go: a look lists /proc

_fallback_said: set[str] = set()


def choose_channel(setting: str, binary: UwsgiBinary) -> str:
    """The channel kind to use: the one asked for, or with "auto" the best the binary has."""
    if setting == "auto":
        kind = next(kind for kind in CHANNELS if usable(kind, binary))
        if kind != next(iter(CHANNELS)) and binary.path not in _fallback_said:
            _fallback_said.add(binary.path)
            log.warning(
                "%s has no emperor_zeromq plugin: using the Emperor's directory channel "
                "(rebuild with UWSGI_EMBED_PLUGINS=emperor_zeromq for the zmq channel)",
                binary.path,
            )
        return kind
    if setting not in CHANNELS:
        raise InvalidSetting(f"channel = {setting!r}: use one of auto, {', '.join(CHANNELS)}")
    if not usable(setting, binary):
        raise StageError(
            f"channel = {setting!r} needs a uwsgi built with emperor_zeromq: rebuild it with "
            "UWSGI_EMBED_PLUGINS=emperor_zeromq pip install --no-cache-dir --force-reinstall uwsgi"
        )
    return setting


class Stage:
    """The Emperor of one Production. `settings` reads production.toml when the binary
    and the channel are first needed, not before."""

    modular = False  # its uwsgi has the plugins the configs need built in
    plugins = ""  # what its uwsgi must be told to load to run an Act: nothing
    holds = True  # runs its vassals through the wrapper that hands them held sockets

    def __init__(self, layout: Layout, settings: Callable[[], ProductionSpec]) -> None:
        self.layout = layout
        self._settings = settings
        self.stats_path = layout.emperor_stats
        self.pidfile = layout.emperor_pidfile
        self.log_path = layout.emperor_log
        self._emperor: Emperor | None = None

    @functools.cached_property
    def binary(self) -> UwsgiBinary:
        try:
            return uwsgi_binary.probe(self._settings().uwsgi or None)
        except UwsgiError as exc:
            raise StageError(str(exc)) from exc

    @functools.cached_property
    def channel(self) -> Channel:
        kind = choose_channel(self._settings().channel, self.binary)
        return CHANNELS[kind](self.layout.channel_target(kind), self.layout.vassal_files)

    @property
    def emperor(self) -> Emperor:
        """The Emperor this process drives, made on first use (it needs the binary)."""
        if self._emperor is None:
            env = dict(os.environ, BACKSTAGE_HOME=self.layout.home)
            wrapper = ["--emperor-wrapper", self.layout.vassal_wrapper]
            self._emperor = Emperor(
                self.binary,
                self.channel,
                self.stats_path,
                self.pidfile,
                self.log_path,
                extra_args=wrapper,
                env=env,
            )
        return self._emperor

    @functools.cached_property
    def manager(self) -> StageManager:
        return StageManager(self)

    def uwsgi(self) -> list[str]:
        """The command that runs an Act's uWSGI outside the Emperor (a release's check)."""
        return [self.binary.path]

    def check(self) -> None:
        """Raise, with what to do, when the binary is missing or cannot drive the channel."""
        self.channel  # noqa: B018 - made here, it fails at once

    def python_for(self, major_minor: str) -> str:
        """The interpreter a new Venue on this Python is made with (on another than the
        binary's, the Venue builds a uwsgi of its own)."""
        return virtualenv.find_python(major_minor, major_minor == self.binary.python_major_minor)

    def pid(self) -> int | None:
        """The Emperor's pid, found without probing the binary."""
        return Emperor.find(self.stats_path, self.pidfile)

    def wraps(self) -> bool:
        """Its Emperor runs vassals through the wrapper that hands them held sockets: the
        one it starts does; one started by an older Backstage does not, and its vassals
        must bind their sockets themselves, so nothing may hold them meanwhile."""
        pid = self.pid()
        return pid is None or self.layout.vassal_wrapper in cmdline(pid)

    def alive(self) -> bool:
        """The Emperor's process lives (found by its pidfile and command line)."""
        return self.pid() is not None

    def stats(self, timeout: float = 1.0) -> EmperorStats | None:
        """What the Emperor reports, or None when it does not answer."""
        stats = stats_or_none(self.stats_path, parse_emperor_stats, timeout)
        return stats.by_plain_names() if stats is not None else None

    def channel_kind(self, stats: EmperorStats | None = None) -> str | None:
        """The channel the running Emperor listens on, read from its stats."""
        stats = stats or self.stats()
        if stats is None or not stats.monitors:
            return None
        return kind_of_monitor(stats.monitors[0])


class StageManager:
    """Starts and stops the Emperor, pushes and withdraws vassals. Holds no state but
    the thread that wakes the masters it withdrew (emperor.stopping.Hastener)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def start(self) -> int:
        try:
            holding.write_wrapper(self.stage.layout, self.stage.binary.path)
        except OSError as exc:
            raise StageError(f"cannot write {exc.filename}: {exc.strerror}") from exc
        try:
            return self.stage.emperor.start()
        except UwsgiError as exc:
            raise StageError(f"{exc} (log: {self.stage.log_path})") from exc

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every vassal, then the Emperor, then wait until no process of this
        Production's vassals is left: the workers of a master can outlive it for a moment,
        holding their ports. An Emperor this process never drove is stopped by its pid:
        stopping needs no binary, nor a readable production.toml."""
        mine = self.stage.layout.prefix + " "  # every vassal's process name starts so
        # A vassal told to stop in the middle of a chain reload can hang until the
        # Emperor's mercy runs out (30 s), and the Emperor with it; a worker whose request
        # does not end holds its graceful stop as long: what is left after STOP_GRACE is
        # killed, and the Emperor goes at once.
        killer = threading.Timer(min(timeout, STOP_GRACE), _kill_left, (mine,))
        killer.start()
        try:
            if (pid := self.stage.pid()) is not None:
                self._withdraw_all(pid, min(timeout, STOP_GRACE))
            if self.stage._emperor is not None:
                self.stage._emperor.stop()
            elif (pid := self.stage.pid()) is not None:
                stop_pid(pid)
        finally:
            killer.cancel()
        if not wait_for(lambda: not pids_named(mine), timeout, FINE):
            _kill_left(mine)
            wait_for(lambda: not pids_named(mine), 5.0)

    def _withdraw_all(self, pid: int, timeout: float) -> None:
        """Withdraw every vassal before the Emperor is told to stop, which then exits at
        once (see emperor.stopping; told first, it takes 2-3 s more). The Acts go first,
        gracefully (their workers finish what they serve, through the router), with the
        keeper; then the router. Whatever fails here is left to the Emperor's own stop."""
        layout = self.stage.layout
        stats = self.stage.stats()
        kind = self.stage.channel_kind(stats) if stats is not None else None
        if stats is None or kind is None:
            return
        names = [vassal.id for vassal in stats.vassals]
        routers = [name for name in names if layout.is_router_vassal(name)]
        first = [name for name in names if name not in routers]
        deadline = time.monotonic() + timeout
        channel: Channel | None = None
        try:
            _stop_gracefully(layout, first)
            channel = CHANNELS[kind](layout.channel_target(kind), layout.vassal_files)
            # the router is withdrawn even when an Act is not gone in time (a worker
            # still loading its app ends that load first): a vassal killed before the
            # Emperor was told to withdraw it is spawned again, and outlives the kill
            stats_path = layout.emperor_stats
            acts = stopping.withdraw(channel, pid, stats_path, first, timeout - LAST_WORD)
            left = max(deadline - time.monotonic(), LAST_WORD / 2)
            if not (stopping.withdraw(channel, pid, stats_path, routers, left) and acts):
                log.warning("vassals still there after %.0f s: the Emperor stops them", timeout)
        except Exception as exc:  # zmq's own errors too: this step only saves time
            log.warning("stopping the vassals one by one: %s; the Emperor stops them", exc)
        finally:
            if channel is not None:
                channel.close()

    def push(self, name: str, config: str, on_demand: str = "") -> None:
        self.stage.channel.touch(name, config, on_demand)

    def withdraw(self, name: str) -> None:
        self.stage.channel.destroy(name)
        self._hastener.add(name)

    @functools.cached_property
    def _hastener(self) -> stopping.Hastener:
        # a restart for a changed config pushes anew once the old vassal is gone
        return stopping.Hastener(self.stage.layout.emperor_stats)

    def clear_blacklist(self) -> bool:
        return self.stage.emperor.clear_blacklist()

    def reap(self) -> None:
        self.stage.emperor.reap()


AnyStage = Stage | SystemStage

#: Where Acts play, by production.toml's `stage`.
STAGES: dict[str, type[Stage] | type[SystemStage]] = {"own": Stage, "system": SystemStage}


def _stop_gracefully(layout: Layout, vassals: list[str]) -> None:
    """Ask each Act among `vassals` for its graceful stop (`q` on its FIFO), before the
    Emperor sends its own stop byte, a brutal one: the master reads the FIFO first, as it
    was ready first, and the byte finds it stopping already."""
    wanted = set(vassals)
    try:
        refs = [found.ref for found in declared.read(layout).acts]
    except (BackstageError, OSError) as exc:  # the Emperor's brutal stop does it
        log.warning("the Acts stop without finishing their requests: %s", exc)
        return
    for ref in refs:
        if layout.vassal(ref) in wanted:
            try:
                fifo.send(layout.act_fifo(ref), "q")
            except (FifoNotReading, OSError):
                pass  # not running, or sleeping: nothing in flight


def _kill_left(name_prefix: str) -> None:
    for pid in pids_named(name_prefix):
        log.warning("killing %d, left behind by the Emperor", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
