"""A router replaced without cutting a request: the old one drains before it is stopped.

uWSGI 2.0 kills a router's HTTP process whenever the router stops, gracefully or not,
and with it the requests that process holds (a certificate change replaces the router:
it reads each pair once). So the old router is emptied first. Its subscription and
stats sockets are moved aside (`Layout.draining`), so that the new one binds the usual
names afresh and the Acts' announces reach only the new one; every node the old one
knows is unsubscribed at its moved socket; with no node left it takes no connection
(`http-cheap`), and those that come wait in the held port for the new one. Once its
stats say so with no session left, or after DRAIN_LIMIT seconds, it is withdrawn.

Not with `subscription_server`, nor on a system Emperor (which holds no port): the new
router could not bind that UDP port, or its own ports, while the old one lives, so the
old one is withdrawn at once, as it always was.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Set

from emperor.atomic import unlink_if_present
from emperor.stats import RouterStats, parse_router_stats, stats_or_none
from emperor.subscription import send_packet, subscription_packet

from ...model.gig import FALLBACK_KEY
from .router import Router

log = logging.getLogger(__name__)

DRAIN_LIMIT = 10.0  # seconds a replaced router may finish its requests in
MARK_WAIT = 0.5  # seconds an unsubscribe may take to be read by the router


def unsubscribes(stats: RouterStats) -> list[tuple[str, str]]:
    """(key, node) of every node a router's stats list, to be unsubscribed."""
    return [(s.key, n.name) for s in stats.subscriptions for n in s.nodes]


def drained(stats: RouterStats | None) -> bool:
    """The router takes no connection and holds none (or no longer answers)."""
    return stats is None or (bool(stats.cheap) and stats.active_sessions == 0)


class Handover:
    def __init__(self, router: Router, clock: Callable[[], float] = time.monotonic) -> None:
        self.router = router
        self._clock = clock
        self._draining: dict[str, float] = {}  # vassal name -> when its drain began
        self._done: set[str] = set()  # of those, drained: withdrawn, until gone
        layout = router.layout
        self._subscriptions = layout.draining(layout.router_subscriptions)
        self._stats = layout.draining(layout.router_stats)

    def step(self, wanted: str, live: Set[str], held: bool) -> set[str]:
        """The replaced routers to keep playing this pass, while they drain. `wanted` is
        the router vassal the pass wants, `live` every vassal the Emperor lists, `held`
        whether the router's ports are held (else the new one could not bind them while
        the old one lives). Called before the pass pushes the new router: it binds the
        usual names anew."""
        layout = self.router.layout
        old = {name for name in live if layout.is_router_vassal(name) and name != wanted}
        for name in set(self._draining) - old:
            del self._draining[name]  # withdrawn, or gone
            self._done.discard(name)
        if not old:
            for path in (self._subscriptions, self._stats):
                unlink_if_present(path)  # uWSGI leaves a router's own sockets behind
            return set()
        if held and not self._draining and len(old) == 1 and wanted not in live:
            self._begin(next(iter(old)))
        for name in set(self._draining) - self._done:
            if not self._drains_on(name):
                self._done.add(name)
        return set(self._draining) - self._done

    def _begin(self, name: str) -> None:
        """Move the old router's sockets aside; not when the new one may have them already
        (a Manager restarted), nor with a UDP subscription server (see the module)."""
        if self.router.subscription_server:
            return
        layout = self.router.layout
        try:
            os.rename(layout.router_stats, self._stats)
            os.rename(layout.router_subscriptions, self._subscriptions)
        except OSError as exc:
            log.info("the replaced router %s is stopped at once: %s", name, exc)
            return
        log.info("the replaced router %s drains", name)
        self._draining[name] = self._clock()

    def _drains_on(self, name: str) -> bool:
        """False once the router `name` is drained, or past its time: withdraw it.

        The Acts' nodes go first, while the router passes their hosts' requests through
        its own worker (the fallback), whose node is kept alive meanwhile. A node a
        request still uses is only marked, and uWSGI goes cheap only with no node left at
        all, so the fallback's node goes last, when the router holds no session: it is
        then removed at once and the router goes cheap in the same step. Had a connection
        come in between, the node is only marked and the router would drop what comes
        next: it is subscribed again at once, and taken out again at the next pass."""
        stats = stats_or_none(self._stats, parse_router_stats, 0.5)
        if drained(stats):
            log.info("the replaced router %s is drained", name)
            return False
        if self._clock() - self._draining[name] > DRAIN_LIMIT:
            log.warning("the replaced router %s is stopped undrained after %gs", name, DRAIN_LIMIT)
            return False
        assert stats is not None
        nodes = unsubscribes(stats)
        acts = [(key, node) for key, node in nodes if key != FALLBACK_KEY]
        fallback = [pair for pair in nodes if pair not in acts]
        if acts or stats.active_sessions:
            self._send(acts, unsubscribe=True)
            # the fallback's node announced again: no longer announced by its worker (the
            # socket moved), it would expire after subscription-tolerance, and the router
            # drop what it cannot pass on
            self._send(fallback, unsubscribe=False)
        else:
            self._send(fallback, unsubscribe=True)
            if self._marked_only():
                self._send(fallback, unsubscribe=False)
        return True

    def _marked_only(self) -> bool:
        """After the fallback's unsubscribe: True when the router kept its node marked
        (a request used it), False once it went cheap, or when it no longer answers."""
        deadline = self._clock() + MARK_WAIT
        while True:
            stats = stats_or_none(self._stats, parse_router_stats, 0.5)
            if stats is None or stats.cheap:
                return False
            fallback = stats.subscription(FALLBACK_KEY)
            if fallback is not None and any(node.death_mark for node in fallback.nodes):
                return True
            if self._clock() >= deadline:
                return True  # unread yet: subscribe it again all the same, and retry
            time.sleep(0.01)

    def _send(self, nodes: list[tuple[str, str]], unsubscribe: bool) -> None:
        sign = self.router.signer()
        for key, node in nodes:
            packet = subscription_packet(key, node, unsubscribe=unsubscribe, sign=sign)
            try:
                send_packet(self._subscriptions, packet)
            except OSError as exc:
                log.debug("(un)subscribing %s at %s: %s", node, key, exc)
