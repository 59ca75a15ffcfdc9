"""A graceful leave: before the Acts stop with the Production, they leave the routers on
other hosts and serve what those had already sent them.

A stopping vassal unsubscribes and closes its sockets at once. A router on another host
that had connected to the Act's node just before the unsubscribe reached it (the
request waits in the node's backlog, no worker took it yet) then has its connection
cut, and its client no answer. So the Production Manager, as it stops, first blocks
each playing Act's own announces (`S` on its FIFO: it announces every second, and would
subscribe again), takes its node out of every router on another host (a signed
unsubscribe, as the Act would send), and waits until the Act has served nothing new for
QUIET seconds with no worker busy: the routers stopped sending, and what they had
queued is served. Then the vassals stop as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import BackstageError
from ...files import declared
from ..processes.crew import Crew
from .acts import ActManager

log = logging.getLogger(__name__)

QUIET = 0.5  # nothing new served for this long: the routers elsewhere stopped sending
DRAIN_TIMEOUT = 5.0  # at most this long for every Act together
RESEND_AFTER = 0.2  # an announce already on its way can re-add the node once
LOOK_EVERY = 0.05


@dataclass(frozen=True)
class Seen:
    """What a leaving Act had served when it last changed, and when."""

    requests: int
    since: float


def settled(seen: Seen | None, requests: int, busy: bool, now: float) -> tuple[bool, Seen]:
    """Whether the Act is drained (nothing new served for QUIET s, no worker busy), and
    what to remember of it for the next look."""
    if seen is None or seen.requests != requests or busy:
        return False, Seen(requests, now)
    return now - seen.since >= QUIET, seen


def leave_remote_routers(
    crew: Crew,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    router = crew.router
    if not router.remote_servers:
        return
    leaving: list[tuple[ActManager, list[tuple[str, int, str]]]] = []
    for found in declared.read(crew.layout).acts:
        spec = found.spec
        if spec is None or not spec.enabled or not spec.hosts:
            continue
        if not router.node_address(spec.port):
            continue
        act = ActManager(crew, found.ref)
        if act.sess() is None:
            continue  # asleep or down: it has no node to leave
        try:
            act.fifo("S")
        except BackstageError as exc:
            log.info("%s leaves as it stops: %s", found.ref.key, exc)
            continue
        domains = declared.venue_spec(found.ref.venue_path).domains
        nodes = []
        for host in spec.hosts:
            private = router.keys.private_for(host, domains) if router.signed else ""
            nodes.append((host, spec.port, private))
        leaving.append((act, nodes))
    if not leaving:
        return
    for _ in range(2):
        for _act, nodes in leaving:
            for host, port, private in nodes:
                router.remote(host, port, private, unsubscribe=True)
        sleep(RESEND_AFTER)
    drain([act for act, _ in leaving], clock, sleep)


def drain(
    acts: list[ActManager],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until every Act in `acts` settled, or DRAIN_TIMEOUT."""
    waiting = {act.ref.key: act for act in acts}
    seen: dict[str, Seen] = {}
    deadline = clock() + DRAIN_TIMEOUT
    while waiting and clock() < deadline:
        now = clock()
        for key, act in list(waiting.items()):
            sess = act.sess()
            if sess is None:
                del waiting[key]
                continue
            busy = any(w.status == "busy" for w in sess.workers)
            done, seen[key] = settled(seen.get(key), sess.requests, busy, now)
            if done:
                del waiting[key]
        if waiting:
            sleep(LOOK_EVERY)
    if waiting:
        log.warning("still serving after %.0f s: %s", DRAIN_TIMEOUT, ", ".join(sorted(waiting)))
