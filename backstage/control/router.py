"""The router: the Production's one uWSGI HTTP router, the embedded front of every Gig.

It runs as a vassal of the Production's own Emperor (`<prefix>.router-<digest>.ini`),
pushed and healed by the Production Manager like any Act. Playing Acts announce
themselves to its subscription server (a unix datagram socket in `run/`) under
each host they are booked at; what it reports on its stats socket is the only
record of which Gigs are live.

A host nobody plays falls back to the router's own worker (`nogig.py`), which
answers 404 at once: without a fallback uWSGI closes the connection unanswered.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable

from emperor.stats import RouterStats, parse_router_stats, stats_or_none
from emperor.subscription import send_packet, subscription_packet

from ..model import gig
from ..model.gig import FALLBACK_KEY, split_address
from ..model.layout import Layout
from ..model.spec import ProductionSpec
from ..render.stageset import StageSet
from .signing import Keys


def _local(host: str) -> str:
    """Where to reach a router bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "*") else host.strip("[]")


class Router:
    def __init__(self, layout: Layout, settings: Callable[[], ProductionSpec]) -> None:
        self.layout = layout
        self._settings = settings
        self.subscription_path = layout.router_subscriptions
        self.stats_path = layout.router_stats
        self.socket_path = layout.router_socket
        self.log_path = layout.router_log
        self._greeted = 0  # pid of the router process last greeted (keep_loyal)

    def vassal_name(self, config: str) -> str:
        return self.layout.router_vassal(config)

    @property
    def address(self) -> str:
        return self._settings().router

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    @property
    def signed(self) -> bool:
        return self._settings().router_sign

    @functools.cached_property
    def keys(self) -> Keys:
        return Keys(self.layout)

    def keys_for(self, host: str) -> tuple[str, ...]:
        return gig.keys_for(host, self.port)

    @property
    def vassal_sign(self) -> str:
        """The `sign=` value of an Act's subscribe2 line, or "" when unsigned."""
        return self.keys.vassal_sign if self.signed else ""

    # Live

    def stats(self, timeout: float = 1.0) -> RouterStats | None:
        return stats_or_none(self.stats_path, parse_router_stats, timeout)

    def answering(self) -> bool:
        """The router's stats server answers now."""
        return self.stats() is not None

    def live_nodes(self, host: str, stats: RouterStats | None = None) -> set[str]:
        """Addresses the router would pass a request for `host` to now."""
        return gig.live_nodes(stats if stats is not None else self.stats(), host, self.port)

    def keep_loyal(self) -> None:
        """Greet the router's own worker once per start. The Emperor blacklists, and
        never respawns, a vassal that dies before it is loyal, and a vassal turns loyal
        only after its worker served a request: the router's serves hosts nobody plays."""
        stats = self.stats(0.5)
        if stats is None or stats.pid == self._greeted:
            return
        host, port = split_address(self.address)
        try:
            with socket.create_connection((_local(host), port), timeout=1.0) as conn:
                conn.sendall(f"GET / HTTP/1.0\r\nHost: {FALLBACK_KEY}\r\n\r\n".encode())
                conn.recv(16)
        except OSError:
            return
        self._greeted = stats.pid

    def unsubscribe(self, host: str, address: str) -> None:
        """Take the node at `address` out of `host` at once, as the node itself would."""
        sign = self.keys.sign if self.signed else None
        for key in self.keys_for(host):
            packet = subscription_packet(key, address, unsubscribe=True, sign=sign)
            try:
                send_packet(self.subscription_path, packet)
            except OSError:
                pass  # no router listening: nothing to take out

    # Declared

    def prepare(self) -> None:
        """Write what the router's config refers to: the keys, when announces are signed."""
        if self.signed:
            self.keys.publish(FALLBACK_KEY)

    def render(self, stageset: StageSet) -> str:
        address = self.address
        split_address(address)
        return stageset.router(
            self.layout,
            address,
            sign=self.vassal_sign,
            sign_check=self.keys.router_check if self.signed else "",
        )
