"""The socket holder of a Production: the Acts' and the router's listening sockets,
held by a process of their own so that a crash costs a request a wait, never a refusal.

A vassal master killed -9, the Emperor killed -9 (and every vassal with it), the
router killed: their listening sockets stay open in the holder, connections wait in
its backlog, and the next master takes the same sockets from it (`emperor.holder`,
`emperor.heldwire`). The holder has no logic that could crash with them: it binds
what its held files list, hands them over, and closes what they no longer list.

An Act that sleeps has its sockets held too, and the holder wakes it: when a
connection waits at one, it connects to the Act's on-demand socket, which the
Emperor answers by spawning the Act (`Layout.act_on_demand`). No process of its own
has a copy of them while it sleeps, so the Manager keeps one: the holder killed, the
port stays open and its connections wait, and the next holder is started with those
copies, the very sockets, rather than binding anew.

The Production Manager starts it beside the Emperor (on the own Stage: the system
Emperor runs no wrapper of ours), writes each vassal's held file before it pushes the
vassal, and stops it before the Emperor (a socket then closes with its vassal, and a
router on another host is refused there rather than left waiting on a backlog nobody
will serve). Killed, it is started again within a pass;
the vassals keep their copies meanwhile, and a new holder binds each address as soon
as it is free (until then a vassal binds its own, as without a holder).

Least privilege: a vassal is handed its own sockets only (its held file names them),
by the wrapper the Emperor runs as root or the Production's user; an Act's code,
dropped to its Venue's user, cannot reach the holder in run/ (0700).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping

import emperor
from emperor import heldbuild
from emperor.heldwire import ask
from emperor.holder import INHERITED_ENV, HeldFile, held_addresses
from emperor.process import pid_alive, read_pidfile, wait_for

from ...files.fs import lock_held, unlink_if_present, write_atomic, write_if_changed
from ...model.layout import Layout
from ..host.ports import port_free

log = logging.getLogger(__name__)

WRAPPER = os.path.join(os.path.dirname(emperor.__file__), "heldwrap.py")
COPY_WAIT = 0.5  # seconds a pass waits for the holder to hand a sleeping Act's sockets


def wrapper_script(layout: Layout, uwsgi: str, compiled: str | None = None) -> str:
    """The Emperor's `--emperor-wrapper`. A vassal with nothing held (the keeper, a
    template of a user's own) goes straight to uwsgi, without starting a Python; one
    with a held file goes through the wrapper that asks the holder: `compiled`
    (`emperor.heldbuild`) when there is one, else `heldwrap.py`."""
    wrapper = [compiled] if compiled else [sys.executable, "-IS", WRAPPER]
    command = [*wrapper, layout.holder_socket, uwsgi, "--"]
    held_dir = shlex.quote(layout.held_dir)
    return "\n".join(
        [
            "#!/bin/sh",
            "# the vassal's name: the config the Emperor gives it (--ini emperor://NAME)",
            "name= prev=",
            'for arg in "$@"; do',
            '    if [ "$prev" = --ini ]; then name=${arg#emperor://}; name=${name##*/}; fi',
            "    prev=$arg",
            "done",
            f'[ -n "$name" ] && [ -e {held_dir}/"$name".json ] || exec {shlex.quote(uwsgi)} "$@"',
            "exec " + " ".join(map(shlex.quote, command)) + ' "$@"',
            "",
        ]
    )


def write_wrapper(layout: Layout, uwsgi: str) -> str:
    # built once per user into its cache, and copied into each Production's run/
    cache = heldbuild.user_cache("backstage")
    compiled = heldbuild.build(os.path.dirname(layout.vassal_wrapper), cache)
    write_atomic(layout.vassal_wrapper, wrapper_script(layout, uwsgi, compiled), 0o700)
    return layout.vassal_wrapper


def held_ports(layout: Layout) -> frozenset[int]:
    """The TCP ports the Production's socket holder holds now (none when it does not
    answer): bound, but its Acts' and its router's to take, not another program's."""
    try:
        addresses = held_addresses(layout.holder_socket)
    except OSError:
        return frozenset()
    return frozenset(int(a.rpartition(":")[2]) for a in addresses if ":" in a)


def taken_elsewhere(layout: Layout, port: int, host: str = "127.0.0.1") -> bool:
    """Another program binds `port`: it is not free, and not held for this Production."""
    return not port_free(port, host) and port not in held_ports(layout)


class SocketHolder:
    """Starts, finds and stops the holder; writes its held files. Constructing it does
    nothing."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._child: subprocess.Popen[bytes] | None = None
        self._kept: dict[str, str] = {}  # the held files the last keep() left, by file name
        # copies of the sockets of the vassals that sleep (their held file names a wake
        # socket), by address: for the next holder, should this one be killed
        self._copies: dict[str, int] = {}

    def running(self) -> bool:
        return lock_held(self.layout.holder_lock)

    def pid(self) -> int:
        """Its pid, as its pidfile says; 0 when it has none."""
        return read_pidfile(self.layout.holder_pidfile) or 0

    def start(self) -> None:
        """Start it unless it runs; it lives on when this process dies."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None  # reaped
        if self.running() or self._child is not None:
            return
        layout = self.layout
        os.makedirs(layout.held_dir, mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        env = dict(os.environ, **{INHERITED_ENV: json.dumps(self._copies)})
        with os.fdopen(os.open(layout.manager_log, flags, 0o640), "ab") as out:
            self._child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "emperor.holder",
                    layout.holder_socket,
                    layout.held_dir,
                    layout.holder_pidfile,
                    layout.holder_lock,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the Manager's group: it outlives it
                pass_fds=tuple(self._copies.values()),
                env=env,
            )
        # the Emperor may spawn a vassal at once: have the holder answer first
        wait_for(lambda: os.path.exists(layout.holder_socket) or self._exited(), 5.0, 0.01)

    def _exited(self) -> bool:
        return self._child is None or self._child.poll() is not None

    def stop(self, timeout: float = 5.0) -> None:
        """Its copies of the sockets close; each port is refused once its vassal is gone."""
        pid = read_pidfile(self.layout.holder_pidfile)
        if pid is not None and self.running():
            os.kill(pid, signal.SIGTERM)
            if not wait_for(lambda: not pid_alive(pid), timeout, 0.01):
                os.kill(pid, signal.SIGKILL)
        if self._child is not None:
            self._child.wait()
            self._child = None
        self._let_go(set(self._copies))

    def ports(self) -> frozenset[int]:
        return held_ports(self.layout)

    def keep(self, held: Mapping[str, HeldFile]) -> None:
        """Held files for exactly these vassals: written before each is pushed, removed
        for a vassal that goes (its sockets close with it)."""
        folder = self.layout.held_dir
        wanted = {os.path.basename(self.layout.held_file(n)): h.dumps() for n, h in held.items()}
        if wanted != self._kept or not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)
            for entry in os.listdir(folder):
                if entry.endswith(".json") and entry not in wanted:
                    unlink_if_present(os.path.join(folder, entry))
            for entry, text in wanted.items():
                write_if_changed(os.path.join(folder, entry), text)
            self._kept = wanted
        self._copy(held)

    def _copy(self, held: Mapping[str, HeldFile]) -> None:
        """Copies of the sockets of the vassals that sleep, taken from the holder; those
        of any other address let go (its vassal withdrawn, its port changed: the port
        must close with the holder's). Every pass of a thousand Acts asks this: it asks
        the holder only for what it has no copy of."""
        sleeping = {name: h for name, h in held.items() if h.wake}
        self._let_go(set(self._copies) - {a for h in sleeping.values() for a in h.addresses})
        missing = [
            (name, h)
            for name, h in sleeping.items()
            if any(a not in self._copies for a in h.addresses)
        ]
        for name, h in missing:
            try:
                # short: the holder may wait for a port bound elsewhere; the next pass asks again
                fds = ask(self.layout.holder_socket, name, COPY_WAIT)
            except (OSError, ValueError):
                return  # no holder now: the next pass, once one runs
            if len(fds) != len(h.addresses):
                for fd in fds:
                    os.close(fd)
                continue
            for address, fd in zip(h.addresses, fds, strict=True):
                os.set_inheritable(fd, False)  # for the next holder only, by pass_fds
                old = self._copies.pop(address, None)
                if old is not None:
                    os.close(old)
                self._copies[address] = fd

    def _let_go(self, addresses: set[str]) -> None:
        for address in addresses:
            os.close(self._copies.pop(address))
