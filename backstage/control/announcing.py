"""Announcing to the router what it cannot learn from the Acts' own announces.

Each Act announces its Gigs itself, from its gigs ini, every second. The Production
Manager stands in where that cannot work: for hosts an Act was booked at since its
vassal last read that ini (booking needs no reload), for an Act asleep (no process
announces; the waker's node stands in and wakes it), and for a router just restarted
(it learns at once who plays, rather than within the next announce).
"""

from __future__ import annotations

import os

from emperor.stats import parse_instance_stats, stats_or_none

from ..files.declared import Declared
from .acts import ActManager
from .booking import BookingManager
from .crew import Crew
from .waker import Sleeper, Waker


class Announcer:
    def __init__(self, crew: Crew, booking: BookingManager) -> None:
        self.crew = crew
        self.booking = booking
        self.waker = Waker()
        self._wake_nodes: set[tuple[str, str]] = set()  # (host, wake path) in the router

    def stop(self) -> None:
        self.waker.stop()

    def pending(self, production: Declared) -> None:
        """Announce, for each playing Act, the hosts it was booked at without a reload."""
        layout = self.crew.layout
        for found in production.acts:
            if found.spec is None or not found.spec.enabled:
                continue
            if not os.path.exists(layout.pending(found.ref)):
                continue
            act = ActManager(self.crew, found.ref)
            hosts = self.booking.pending(act)
            if hosts and act.stats(0.2) is not None:
                self.booking.announce(act, hosts)

    def sleepers(self, production: Declared) -> None:
        """A sleeping Act's Gigs stay routed: the waker listens for every booked Act that
        may sleep, and its wake node is announced while the Act sleeps and taken out once
        the Act announces itself again (see waker.py)."""
        layout = self.crew.layout
        sleepers, asleep, awake = [], set(), set()
        for act in production.acts:
            spec = act.spec
            if spec is None or not spec.enabled or not spec.idle or not spec.hosts:
                continue
            wake_path = layout.act_wake(act.ref)
            sleepers.append(Sleeper(wake_path, spec.port, layout.act_socket(act.ref)))
            hosts = {
                (host, wake_path)
                for host in spec.hosts
                if not os.path.exists(layout.withheld(act.ref, host))
            }
            # awake: its master answers, and announces itself; otherwise (asleep, falling
            # asleep, waking) the wake node stands in for it
            if stats_or_none(layout.act_stats(act.ref), parse_instance_stats, 0.2):
                awake |= hosts
            else:
                asleep |= hosts
        self.waker.keep(sleepers)
        router = self.crew.router
        router.announce(sorted(asleep))  # again each pass: a node unheard of expires
        gone = {node for node in self._wake_nodes if node[1] not in {s.wake_path for s in sleepers}}
        for host, path in sorted((self._wake_nodes & awake) | gone):
            router.unsubscribe(host, path)
        self._wake_nodes = (self._wake_nodes | asleep) - awake - gone

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
