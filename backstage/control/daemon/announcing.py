"""Announcing to the router what it cannot learn from the Acts' own announces.

Each Act announces its Gigs itself, from its gigs ini, every second. The Production
Manager stands in where that cannot work: for hosts an Act was booked at since its
vassal last read that ini (booking needs no reload), for every host of an Act of a
Venue with a user (it cannot reach the router's subscription socket, the Production's
alone, so that it cannot announce another Venue's host), for an Act that may sleep (no
process announces while it sleeps; the waker's node stands by and wakes it), and for
a router just restarted
(it learns at once who plays, rather than within the next announce).

The pending hosts and the sleepers' wake nodes are announced from a thread of their
own, every second, apart from the Manager's pass: the router drops a node it has not
heard from for 3 s, and a pass under load (many Acts, a busy disk) can take that long.
Which Acts a round looks at is worked out once per pass's read (`_Cast`), not each
second: with five thousand Acts declared and none booked, a round was a walk over all
of them to find none.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from emperor.stats import parse_instance_stats, stats_or_none

from ...files.declared import Declared, DeclaredAct
from ...model.layout import ActRef
from ..managers.acts import ActManager
from ..managers.booking import BookingManager
from ..processes.crew import Crew
from .waker import Sleeper, Waker

log = logging.getLogger(__name__)

ANNOUNCE_EVERY = 1.0  # as often as an Act announces itself (gigs.ini.j2)
STATS_TIMEOUT = 0.5
PLAYING_GRACE = 2.0  # below the router's subscription-tolerance (3 s)


@dataclass(frozen=True)
class _Cast:
    """What one read of the declared files gives a round to look at."""

    # an Act without a user that is enabled, by the name its pending file would have
    by_pending: dict[str, DeclaredAct]
    users: tuple[DeclaredAct, ...]  # enabled Acts of Venues with a user: every round
    sleepers: tuple[DeclaredAct, ...]  # enabled, may sleep, booked


def _cast(production: Declared, pending: Callable[[ActRef], str]) -> _Cast:
    by_pending, users, sleepers = {}, [], []
    for found in production.acts:
        spec = found.spec
        if spec is None or not spec.enabled:
            continue
        if found.ref.user:
            users.append(found)
        else:
            by_pending[os.path.basename(pending(found.ref))] = found
        if spec.idle and spec.hosts:
            sleepers.append(found)
    return _Cast(by_pending, tuple(users), tuple(sleepers))


class Announcer:
    def __init__(self, crew: Crew, booking: BookingManager) -> None:
        self.crew = crew
        self.booking = booking
        self.waker = Waker()
        # held for a round of announces: what takes a node out of the router (an Act's
        # pending hosts as it stops) holds it too, so no round puts the node back
        self.lock = threading.Lock()
        self._wake_nodes: set[tuple[str, str]] = set()  # (host, wake path) in the router
        self._production: Declared | None = None
        self._new_pass = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._said = ""
        self._answered: dict[str, float] = {}  # Act key: when its stats server last answered
        self._cast: tuple[Declared | None, _Cast] = (None, _Cast({}, (), ()))

    def follow(self, production: Declared) -> None:
        """Announce from now on for what this pass read (a pass of the Manager calls it)."""
        self._production = production
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
            self._thread.start()
        self._new_pass.set()

    def stop(self) -> None:
        self._stopping.set()
        self._new_pass.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.waker.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._new_pass.clear()
            production = self._production
            if production is not None:
                with self.lock:
                    self._round(production)
            self._new_pass.wait(ANNOUNCE_EVERY)

    def _cast_of(self, production: Declared) -> _Cast:
        """Which Acts a round looks at, worked out again only for a new read."""
        read, cast = self._cast
        if read is not production:
            cast = _cast(production, self.crew.layout.pending)
            self._cast = (production, cast)
        return cast

    def _round(self, production: Declared) -> None:
        """One round of announces; a failure is logged once, until a round goes through."""
        try:
            self.pending(production)
            self.sleepers(production)
        except Exception as exc:  # the next round tries again; the thread must not end
            message = f"announcing failed: {exc!r}"
            if message != self._said:
                log.error("%s", message, exc_info=not isinstance(exc, OSError))
            self._said = message
        else:
            self._said = ""

    def pending(self, production: Declared) -> None:
        """Announce, for each playing Act, the hosts it was booked at without a reload."""
        layout = self.crew.layout
        cast = self._cast_of(production)
        # one listing of the folder, not one look-up per Act each second
        try:
            listed = sorted(os.listdir(os.path.join(layout.run_dir, "pending")))
        except OSError:
            listed = []
        found_pending = [cast.by_pending[name] for name in listed if name in cast.by_pending]
        # a user's Act never announces itself: all of its hosts are, each round
        for found in (*found_pending, *cast.users):
            act = ActManager(self.crew, found.ref)
            hosts = self.booking.pending(act)
            if hosts and self._playing(act):
                self.booking.announce(act, hosts)

    def _playing(self, act: ActManager) -> bool:
        """The Act's stats server answers, or it answered within the last PLAYING_GRACE
        seconds and its socket still takes connections. A busy master can be slow to
        answer for a round or two, and a host no longer announced drops out of the
        router after 3 s; an Act that died (nobody listens at its socket) is not
        announced again, and its node expires."""
        now, key = time.monotonic(), act.ref.key
        if act.stats(STATS_TIMEOUT) is not None:
            self._answered[key] = now
            return True
        if not _listening(self.crew.layout.act_socket(act.ref)):
            self._answered.pop(key, None)  # nobody listens there: it is gone, not busy
            return False
        return now - self._answered.get(key, now - PLAYING_GRACE) < PLAYING_GRACE

    def sleepers(self, production: Declared) -> None:
        """A sleeping Act's Gigs stay routed: the waker listens for every booked Act that
        may sleep, and its wake node stands under each of the Act's hosts, asleep or
        awake, weighed far below the Act's own node (see SLEEPER_WEIGHT): the router has
        it at hand from the moment the Act leaves, with no pass in between."""
        layout = self.crew.layout
        sleepers, wanted = [], set()
        for act in self._cast_of(production).sleepers:
            spec = act.spec
            assert spec is not None  # as cast
            wake_path = layout.act_wake(act.ref)
            sleepers.append(Sleeper(wake_path, spec.port, layout.act_socket(act.ref)))
            wanted |= {
                (host, wake_path)
                for host in spec.hosts
                if not os.path.exists(layout.withheld(act.ref, host))
            }
        self.waker.keep(sleepers)
        router = self.crew.router
        for host, path in sorted(self._wake_nodes - wanted):
            router.unsubscribe(host, path)
        router.announce(sorted(wanted))  # again each round: a node unheard of expires
        self._wake_nodes = wanted

    def playing(self, production: Declared) -> list[tuple[str, str]]:
        """(host, node address) of every booked Act whose stats server answers now, but
        for a host it is being unbooked from (withheld: it no longer announces that one)."""
        layout = self.crew.layout
        found = []
        for act in production.acts:
            if act.spec is None or not act.spec.enabled or not act.spec.hosts:
                continue
            stats = stats_or_none(layout.act_stats(act.ref), parse_instance_stats, STATS_TIMEOUT)
            if stats is None:
                continue
            address = layout.act_socket(act.ref)
            found += [
                (host, address)
                for host in act.spec.hosts
                if not os.path.exists(layout.withheld(act.ref, host))
            ]
        return found


def _listening(path: str) -> bool:
    """Something listens at the unix socket `path` (the kernel takes the connection even
    while the process behind it is too busy to answer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(STATS_TIMEOUT)
        return probe.connect_ex(path) == 0
