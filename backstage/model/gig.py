"""A Gig: a live website, an Act booked at a Venue's domain and playing.

Which Gigs are live is read from the router's stats only: the nodes subscribed
under each host. The declared bookings add the hosts nobody plays yet, so a
host booked but not playing shows as such (no acts, no nodes).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from emperor.stats import RouterStats

from ..errors import InvalidSetting

# The subscription key of the router's own 404 worker.
FALLBACK_KEY = "backstage-no-gig"
MAX_KEY = 255  # uWSGI ignores longer subscription keys
# The router's weight for the node of an Act that may sleep, against 1 for the wake
# node beside it (control/waker.py): one request in 101 goes through the waker while
# the Act is awake, and every one once it has left
SLEEPER_WEIGHT = 100


@dataclass(frozen=True)
class Gig:
    host: str
    acts: tuple[str, ...]  # VENUE/NAME of the Acts the router passes this host to now
    nodes: tuple[str, ...]  # their subscribed addresses, as the router lists them
    requests: int  # passed through the router to those nodes
    booked: tuple[str, ...]  # VENUE/NAME of the Acts declared at this host
    node_requests: tuple[int, ...] = ()  # requests per node, in the order of `nodes`

    @property
    def playing(self) -> bool:
        return bool(self.nodes)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "playing": self.playing}


def split_address(address: str, key: str = "router") -> tuple[str, int]:
    """(host, port) of a `HOST:PORT` setting (the router's, unless `key` says)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidSetting(
            f"{key} = {address!r} in production.toml: write HOST:PORT, e.g. 127.0.0.1:8000"
        )
    return host or "0.0.0.0", int(port)


def keys_for(host: str, router_port: int) -> tuple[str, ...]:
    """The subscription keys of a host. The router matches the Host header whole, port
    included, and browsers send the port unless it is 80."""
    with_port = f"{host}:{router_port}"
    if router_port == 80 or len(with_port) > MAX_KEY:
        return (host,)
    return (host, with_port)


def _host_of(key: str, port: int) -> str:
    """The host of a subscription key: the key without the router's own port."""
    suffix = f":{port}"
    return key[: -len(suffix)] if key.endswith(suffix) else key


def live_nodes(stats: RouterStats | None, host: str, router_port: int) -> set[str]:
    """Addresses the router would pass a request for `host` to now."""
    if stats is None:
        return set()
    found = set()
    for key in keys_for(host, router_port):
        subscription = stats.subscription(key)
        if subscription is not None:
            found |= {n.name for n in subscription.nodes if not n.death_mark}
    return found


def gigs_from(
    stats: RouterStats | None,
    router_port: int,
    acts_by_node: Mapping[str, str],
    bookings: Iterable[tuple[str, str]],
    silent: Collection[str] = (),
) -> list[Gig]:
    """Gigs from router stats, the socket address of each Act, and (act, host) bookings.
    The nodes of `silent` Acts (known to serve nothing now) do not count: the router
    lists a dead node until the next request for its host."""
    nodes: dict[str, dict[str, int]] = {}
    for subscription in stats.subscriptions if stats else ():
        if subscription.key == FALLBACK_KEY:
            continue
        host = _host_of(subscription.key, router_port)
        live = nodes.setdefault(host, {})
        for node in subscription.nodes:
            if acts_by_node.get(node.name) in silent:
                continue
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
                node_requests=tuple(live[node] for node in sorted(live)),
            )
        )
    return found


def gigs_by_act(gigs: Iterable[Gig]) -> dict[str, tuple[str, ...]] | None:
    """Act key to the hosts it plays at, or None while the Production has no Gigs.
    A host booked but not playing shows in brackets."""
    found: dict[str, list[str]] = {}
    for gig in gigs:
        for key in gig.acts:
            found.setdefault(key, []).append(gig.host)
        for key in gig.booked:
            if key not in gig.acts:
                found.setdefault(key, []).append(f"({gig.host})")
    return {key: tuple(hosts) for key, hosts in found.items()} if found else None
