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
import hashlib
import os
import socket
from typing import TYPE_CHECKING

from emperor.stats import RouterStats, parse_router_stats, stats_or_none
from emperor.subscription import send_packet, subscription_packet

from .errors import InvalidSetting
from .signing import Keys

if TYPE_CHECKING:
    from .production import Production

# The subscription key of the router's own 404 worker.
FALLBACK_KEY = "backstage-no-gig"
MAX_KEY = 255
NOGIG_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nogig.py")


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidSetting(
            f"router = {address!r} in production.toml: write HOST:PORT, e.g. 127.0.0.1:8000"
        )
    return host or "0.0.0.0", int(port)


def _local(host: str) -> str:
    """Where to reach a router bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "*") else host.strip("[]")


class Router:
    def __init__(self, production: Production) -> None:
        self.production = production
        run = production.run_dir
        self.subscription_path = os.path.join(run, "router.sub")
        self.stats_path = os.path.join(run, "router.stats")
        self.socket_path = os.path.join(run, "router.sock")
        self.log_path = os.path.join(production.log_dir, "router.log")
        self._greeted = 0  # pid of the router process last greeted (keep_loyal)

    def vassal_name(self, config: str) -> str:
        """Named after its config. On the zmq channel uWSGI 2.0 hands a vassal the config
        before last from the second Emperor-sent reload on (see booking.py), so a changed
        router config is a new vassal, pushed once the old one is withdrawn and its port
        is free, rather than a reload."""
        digest = hashlib.sha1(config.encode()).hexdigest()[:8]
        return f"{self.production.prefix}.router-{digest}.ini"

    @property
    def address(self) -> str:
        return self.production.spec.router

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    @property
    def signed(self) -> bool:
        return self.production.spec.router_sign

    @functools.cached_property
    def keys(self) -> Keys:
        return Keys(self.production)

    def keys_for(self, host: str) -> tuple[str, ...]:
        """The subscription keys of a host. The router matches the Host header whole,
        port included, and browsers send the port unless it is 80."""
        port = self.port
        with_port = f"{host}:{port}"
        # uWSGI ignores keys longer than 255 bytes
        return (host,) if port == 80 or len(with_port) > MAX_KEY else (host, with_port)

    # Live

    def stats(self, timeout: float = 1.0) -> RouterStats | None:
        return stats_or_none(self.stats_path, parse_router_stats, timeout)

    @property
    def running(self) -> bool:
        return self.stats() is not None

    def live_nodes(self, host: str, stats: RouterStats | None = None) -> set[str]:
        """Addresses the router would pass a request for `host` to now."""
        stats = stats if stats is not None else self.stats()
        if stats is None:
            return set()
        found = set()
        for key in self.keys_for(host):
            subscription = stats.subscription(key)
            if subscription is not None:
                found |= {n.name for n in subscription.nodes if not n.death_mark}
        return found

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

    def render(self) -> str:
        split_address(self.address)
        production = self.production
        return production.stage.set.render(
            "router.ini.j2",
            production=production,
            prefix=production.prefix,
            router=self,
            fallback_key=FALLBACK_KEY,
            nogig_app=NOGIG_APP,
            sign=self.keys.vassal_sign if self.signed else "",
            sign_check=self.keys.router_check if self.signed else "",
        )
