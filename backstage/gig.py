"""A Gig: a live website, an Act booked at a Venue's domain and playing.

Which Gigs are live is read from the router's stats only: the nodes subscribed
under each host. The declared bookings add the hosts nobody plays yet, so a
host booked but not playing shows as such (no acts, no nodes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from emperor.stats import RouterStats

from .router import FALLBACK_KEY

if TYPE_CHECKING:
    from .production import Production


@dataclass(frozen=True)
class Gig:
    host: str
    acts: tuple[str, ...]  # VENUE/NAME of the Acts the router passes this host to now
    nodes: tuple[str, ...]  # their subscribed addresses, as the router lists them
    requests: int  # passed through the router to those nodes
    booked: tuple[str, ...]  # VENUE/NAME of the Acts declared at this host

    @property
    def playing(self) -> bool:
        return bool(self.nodes)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "playing": self.playing}


def _host_of(key: str, port: int) -> str:
    """The host of a subscription key: the key without the router's own port."""
    suffix = f":{port}"
    return key[: -len(suffix)] if key.endswith(suffix) else key


def gigs_from(
    stats: RouterStats | None,
    router_port: int,
    acts_by_node: Mapping[str, str],
    bookings: Iterable[tuple[str, str]],
) -> list[Gig]:
    """Gigs from router stats, the socket address of each Act, and (act, host) bookings."""
    nodes: dict[str, dict[str, int]] = {}
    for subscription in stats.subscriptions if stats else ():
        if subscription.key == FALLBACK_KEY:
            continue
        host = _host_of(subscription.key, router_port)
        live = nodes.setdefault(host, {})
        for node in subscription.nodes:
            if not node.death_mark:
                live[node.name] = live.get(node.name, 0) + node.requests
    booked: dict[str, list[str]] = {}
    for act, host in bookings:
        booked.setdefault(host, []).append(act)
    found = []
    for host in sorted(nodes.keys() | booked.keys()):
        live = nodes.get(host, {})
        found.append(
            Gig(
                host=host,
                acts=tuple(sorted({acts_by_node.get(n, n) for n in live})),
                nodes=tuple(sorted(live)),
                requests=sum(live.values()),
                booked=tuple(sorted(booked.get(host, ()))),
            )
        )
    return found


def gigs(production: Production) -> list[Gig]:
    router = production.router
    acts = production.acts
    return gigs_from(
        router.stats(),
        router.port,
        {act.socket_path: act.key for act in acts},
        [(act.key, host) for act in acts for host in act.hosts],
    )
