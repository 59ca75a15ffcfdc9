"""The system Emperor as a Stage: an Emperor the host runs already (Debian's
`uwsgi-emperor`), not the Production's own (`stage = "system"` in production.toml).

Its Stage Manager writes each rendered vassal config into `run/linked/` and links it into
the Emperor's vassal directory (`system_vassals`) under the vassal's name, which starts
with the Production's prefix: two Productions, and whatever else the host runs there,
never collide. The Emperor's directory monitor does the rest: a new link spawns the
vassal, a rewritten config (the link's target, whose mtime it reads) reloads it, a
removed link stops it, and a vassal that dies is brought back by the Emperor itself.

What plays is what is linked, and an Act unlinked until its processes are gone: with no
Emperor stats of ours to read, the Stage lists those as its vassals, and each Act's own
stats socket says how it does. An Emperor that has stats (`system_stats`) is read instead.

The Emperor's life is not Backstage's: nothing here starts, stops or signals it. It is
found by the directory it watches (see `emperor.process.emperor_in`), for Debian's
systemd unit keeps no pidfile. With no
zmq channel, an Act cannot sleep on it either (the directory would need an on-demand
socket file for each, and the Emperor's `--emperor-on-demand-extension`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from emperor import binary as uwsgi_binary
from emperor.atomic import unlink_if_present, write_atomic
from emperor.channel import VASSAL_SUFFIX
from emperor.errors import UwsgiError
from emperor.process import emperor_in, pids_named, process_names, wait_for
from emperor.stats import EmperorStats, VassalEntry, parse_emperor_stats, stats_or_none

from ...errors import InvalidSetting, StageError
from ...model.layout import Layout
from ...model.spec import ProductionSpec
from ...render.stageset import ACT_PLUGINS
from ..build.virtualenv import python_version

if TYPE_CHECKING:
    from emperor.binary import UwsgiBinary

log = logging.getLogger(__name__)

SYSTEM_UWSGI = "/usr/bin/uwsgi"
# The interpreter Debian's python3 plugin embeds: a Venue on the system Stage is made with it
SYSTEM_PYTHON = "/usr/bin/python3"
CHANNEL_KIND = "system"  # how the status names the channel: links in the Emperor's directory


class SystemStage:
    """The system Emperor, as far as one Production sees it: its links and its Acts."""

    modular = True  # Debian's uwsgi has its plugins in files: each config names its own
    plugins = ACT_PLUGINS  # what its uwsgi must be told to load to run an Act
    holds = False  # the system Emperor runs no wrapper of ours: vassals bind their own

    def __init__(self, layout: Layout, settings: Callable[[], ProductionSpec]) -> None:
        self.layout = layout
        self._settings = settings
        self.configs = layout.linked_configs  # the links' targets

    @property
    def vassals_dir(self) -> str:
        return self._settings().system_vassals

    @property
    def stats_path(self) -> str:
        return self._settings().system_stats

    @property
    def log_path(self) -> str:
        return f"the system Emperor's log (and each Act's in {self.layout.log_dir})"

    @functools.cached_property
    def binary(self) -> UwsgiBinary:
        """The system's uwsgi; the Python it runs is its python3 plugin's, Debian's own."""
        try:
            found = uwsgi_binary.probe(self._settings().uwsgi or SYSTEM_UWSGI)
        except UwsgiError as exc:
            raise StageError(f"{exc} (the system Emperor's uwsgi: apt install uwsgi-core)") from exc
        return dataclasses.replace(found, python_version=python_version(SYSTEM_PYTHON))

    def uwsgi(self) -> list[str]:
        """The command that runs an Act's uWSGI outside the Emperor (a release's check)."""
        return [self.binary.path, "--plugins", self.plugins]

    def python_for(self, major_minor: str) -> str:
        """The interpreter a new Venue is made with: the plugin's, and no other."""
        embedded = self.binary.python_major_minor
        if major_minor != embedded:
            raise InvalidSetting(
                f"python {major_minor}: the system Emperor's python3 plugin runs Python "
                f"{embedded or '(none found)'} ({SYSTEM_PYTHON}), and a Venue on it must too"
            )
        return SYSTEM_PYTHON

    @functools.cached_property
    def manager(self) -> LinkManager:
        return LinkManager(self)

    def check(self) -> None:
        """Raise, with what to do, unless the system Emperor runs and watches its directory."""
        directory = self.vassals_dir
        if not os.path.isdir(directory):
            raise StageError(
                f"stage = system: no directory {directory}: install uwsgi-emperor, or set "
                f"system_vassals in {self.layout.spec_path}"
            )
        if self.pid() is None:
            raise StageError(
                f"stage = system: no uwsgi Emperor watches {directory}: start it "
                "(systemctl start uwsgi-emperor); Backstage never starts or stops it"
            )

    def wraps(self) -> bool:
        return False  # see `holds`

    def pid(self) -> int | None:
        return emperor_in(self.vassals_dir)

    def alive(self) -> bool:
        return self.pid() is not None

    def links(self) -> list[str]:
        """The names of this Production's links in the Emperor's directory."""
        return self._ours(self.vassals_dir)

    def _ours(self, directory: str) -> list[str]:
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        return sorted(
            name for name in names if self.layout.is_ours(name) and name.endswith(VASSAL_SUFFIX)
        )

    def playing(self) -> list[str]:
        """The vassals this Production has on the Emperor: those linked, and Acts whose
        link is gone but whose processes are not yet (the Emperor stops a vassal at its
        next scan, and its workers hold the Act's port until they exit)."""
        linked = self._ours(self.vassals_dir)
        leaving = [name for name in self._ours(self.configs) if name not in linked]
        if not leaving:
            return linked
        running = process_names(self.layout.prefix + " ")
        for name in leaving:
            named = self.layout.act_processes(name)
            if named is not None and any(process.startswith(named) for process in running):
                linked.append(name)
        return sorted(linked)

    def stats(self, timeout: float = 1.0) -> EmperorStats | None:
        """The Emperor's own stats when it has them, else this Production's links as its
        vassals; None when the Emperor is not running."""
        pid = self.pid()
        if pid is None:
            return None
        if self.stats_path:
            reported = stats_or_none(self.stats_path, parse_emperor_stats, timeout)
            if reported is not None:
                return reported.by_plain_names()
        return EmperorStats(
            version="",
            pid=pid,
            monitors=(self.vassals_dir,),
            throttle_level=0,
            vassals=tuple(linked(name) for name in self.playing()),
            blacklist=(),
        )

    def channel_kind(self, stats: EmperorStats | None = None) -> str | None:
        return CHANNEL_KIND


def linked(name: str) -> VassalEntry:
    """A vassal known only by its link: how it does is its own stats socket's to say."""
    return VassalEntry(
        id=name, pid=0, born=0, last_mod=0, last_heartbeat=0, loyal=0, ready=0, accepting=0,
        last_loyal=0, last_ready=0, last_accepting=0, first_run=0, last_run=0, cursed=0,
        zerg=0, on_demand="", respawns=0,
    )  # fmt: skip


def read_or_empty(path: str) -> str:
    try:
        with open(path) as found:
            return found.read()
    except OSError:
        return ""


class LinkManager:
    """Links and unlinks vassal configs in the system Emperor's directory. Holds no state."""

    def __init__(self, stage: SystemStage) -> None:
        self.stage = stage

    def start(self) -> int:
        """The Emperor is the host's: say what to do rather than start it."""
        self.stage.check()
        return self.stage.pid() or 0

    def push(self, name: str, config: str, on_demand: str = "") -> None:
        if on_demand:
            raise StageError(
                f"{name} cannot sleep on the system Emperor (no on-demand sockets there): "
                "unset idle in its act.toml"
            )
        self.stage.check()
        configs = self.stage.configs
        os.makedirs(configs, mode=0o700, exist_ok=True)
        target = os.path.join(configs, name)
        if read_or_empty(target) != config:  # a newer mtime would reload the vassal
            write_atomic(target, config, 0o600, advance_mtime=True)
        link = os.path.join(self.stage.vassals_dir, name)
        if os.path.islink(link) and os.readlink(link) == target:
            return  # the Emperor reads the target's mtime: a changed config reloads it
        # a dot name the Emperor's glob skips, renamed over the link at once
        temporary = os.path.join(self.stage.vassals_dir, f".{name}.{os.getpid()}")
        unlink_if_present(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, link)

    def withdraw(self, name: str) -> None:
        """Remove the link: the Emperor stops the vassal. Its config stays, and tells the
        Stage what to look for until the vassal's processes are gone."""
        unlink_if_present(os.path.join(self.stage.vassals_dir, name))

    def stop(self, timeout: float = 15.0) -> None:
        """Withdraw every vassal of this Production and wait until its processes are gone;
        the Emperor plays on, with whatever else it runs."""
        for name in self.stage.links():
            self.withdraw(name)
        mine = self.stage.layout.prefix + " "  # every vassal's process name starts so
        if not wait_for(lambda: not pids_named(mine), timeout):
            for pid in pids_named(mine):
                log.warning("killing %d, left behind by the system Emperor", pid)
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pids_named(mine), 5.0)

    def clear_blacklist(self) -> bool:
        return False  # the Emperor is not ours to signal

    def reap(self) -> None:
        pass  # nothing of ours to reap: the Emperor is not our child
