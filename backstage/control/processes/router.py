"""The router: the Production's one uWSGI HTTP router, the embedded front of every Gig.

It runs as a vassal of the Production's own Emperor (`<prefix>.router-<digest>.ini`),
pushed and healed by the Production Manager like any Act. Playing Acts announce
themselves to its subscription server (a unix datagram socket in `run/`) under
each host they are booked at; what it reports on its stats socket is the only
record of which Gigs are live.

A host nobody plays falls back to the router's own worker (`nogig.py`), which
answers at once (without a fallback uWSGI closes the connection unanswered): 404,
or for a booked host (`run/router.booked.json`, written here, with the uwsgi
sockets of the Acts booked there) the answer of one of those Acts, passed on by the
worker itself, or 503 when none of them listens; or 308 to a booked host's own
spelling when it came in another case or with a trailing dot, which the router's
byte-exact match cannot fold.

Many hosts: with `subscription_server` the router also takes announces over UDP
from other hosts' Acts, checked against the Venue domains' keys it trusts. With
`subscribe_to` this Production's Acts announce to those routers too, from their
node address (`node_address`:their port, a uwsgi socket each Act binds).

A router that was restarted knows no Act until each announces itself again (every
second); the Production Manager tells it at once who plays (`keep_loyal`). The
connections that waited in its held port meanwhile are served before either: the
fallback passes those to the Act itself. (Its subscription socket cannot be held
like its port: uWSGI 2.0 binds that one anew at every start, and takes no fd for it.)
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping

from emperor import binary as uwsgi_binary
from emperor.errors import UwsgiError
from emperor.process import pid_alive
from emperor.stats import RouterStats, parse_router_stats, stats_or_none
from emperor.subscription import send_packet, subscription_packet

from ...errors import BackstageError
from ...files.fs import write_if_changed
from ...model import gig
from ...model.gig import FALLBACK_KEY, split_address
from ...model.layout import Layout
from ...model.spec import ProductionSpec
from ...render.stageset import StageSet
from ..host.acme import Acme
from ..host.certificates import Certificates
from ..host.signing import Keys

log = logging.getLogger(__name__)

COMEBACK = 5.0  # how long a router seen gone counts as coming back (lost())


def _local(host: str) -> str:
    """Where to reach a router bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "*") else host.strip("[]")


class Router:
    def __init__(
        self,
        layout: Layout,
        settings: Callable[[], ProductionSpec],
        clock: Callable[[], float] = time.monotonic,
        binary: Callable[[], str] = str,
    ) -> None:
        """`binary`: the path of the uwsgi that runs the router ("" unknown)."""
        self.layout = layout
        self._settings = settings
        self._binary = binary
        self.subscription_path = layout.router_subscriptions
        self.stats_path = layout.router_stats
        self.socket_path = layout.router_socket
        self.booked_path = layout.router_booked
        self.log_path = layout.router_log
        self._greeted = 0  # pid of the router process last greeted (keep_loyal)
        self._lost_at: float | None = None  # when that process was seen gone, until a new one
        self._clock = clock

    def vassal_name(self, config: str) -> str:
        return self.layout.router_vassal(config)

    @property
    def address(self) -> str:
        return self._settings().router

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    def settings(self) -> ProductionSpec:
        return self._settings()

    @property
    def signed(self) -> bool:
        return self._settings().signs

    @property
    def subscription_server(self) -> str:
        return self._settings().subscription_server

    @property
    def remote_servers(self) -> tuple[str, ...]:
        """The routers on other hosts this Production's Acts announce to."""
        return self._settings().subscribe_to

    def node_address(self, port: int) -> str:
        """Where routers on other hosts reach the Act on `port`, or "" for none."""
        address = self._settings().node_address
        return f"{address}:{port}" if address and self.remote_servers else ""

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

    @property
    def greeted(self) -> int:
        """The pid of the router process greeted last; 0 while none is."""
        return self._greeted

    def lost(self) -> bool:
        """The router process greeted last is gone, and no new one was greeted since, for
        up to COMEBACK seconds. Cheap (no socket): the Manager asks it often, and runs a
        pass at once while it holds, so that a new router is pushed if need be and told
        who plays as soon as it answers."""
        if self._greeted and not pid_alive(self._greeted):
            log.info("the router (pid %d) is gone", self._greeted)
            self._greeted, self._lost_at = 0, self._clock()
        if self._lost_at is not None and self._clock() - self._lost_at >= COMEBACK:
            self._lost_at = None  # not back yet: the Manager's every-second pass goes on
        return self._lost_at is not None

    def keep_loyal(self, playing: Callable[[], Iterable[tuple[str, str]]] = tuple) -> None:
        """Once per router process: tell it who plays, then greet its own worker.

        A new router knows no Act until each announces itself again (every 2 s), and
        meanwhile answers their hosts from the fallback: `playing()` lists the (host,
        node address) pairs to announce at once. The greeting: the Emperor blacklists,
        and never respawns, a vassal that dies before it is loyal, and a vassal turns
        loyal only after its worker served a request: the router's serves hosts nobody
        plays."""
        stats = self.stats(0.5)
        if stats is None or stats.pid == self._greeted:
            return
        nodes = list(playing())
        self.announce(nodes)
        if nodes:
            log.info("told the router (pid %d) of %d playing Gigs", stats.pid, len(nodes))
        host, port = split_address(self.address)
        try:
            with socket.create_connection((_local(host), port), timeout=1.0) as conn:
                conn.sendall(f"GET / HTTP/1.0\r\nHost: {FALLBACK_KEY}\r\n\r\n".encode())
                conn.recv(16)
        except OSError:
            return
        self._greeted, self._lost_at = stats.pid, None

    def signer(self) -> Callable[[bytes], bytes] | None:
        """What signs a packet with the Production's own key, when announces are signed."""
        return self._signer("")

    def _signer(self, private: str) -> Callable[[bytes], bytes] | None:
        if not self.signed:
            return None
        return functools.partial(self.keys.sign, private=private)

    def announce(self, playing: Iterable[tuple[str, str]], private: str = "") -> None:
        """Subscribe each node address under each key of its host, as the node itself
        would. Only for nodes that play: one that does not answer would be passed
        requests, and give empty replies, until it expires."""
        sign = self._signer(private)
        for host, address in playing:
            for key in self.keys_for(host):
                try:
                    packet = subscription_packet(key, address, sign=sign)
                    send_packet(self.subscription_path, packet)
                except OSError as exc:
                    log.debug("announcing %s at %s: %s", address, key, exc)
                    return  # no router listening: the nodes announce themselves later

    def unsubscribe(self, host: str, address: str, private: str = "") -> None:
        """Take the node at `address` out of `host` at once, as the node itself would."""
        sign = self._signer(private)
        for key in self.keys_for(host):
            packet = subscription_packet(key, address, unsubscribe=True, sign=sign)
            try:
                send_packet(self.subscription_path, packet)
            except OSError:
                pass  # no router listening: nothing to take out

    def remote(self, host: str, port: int, private: str = "", unsubscribe: bool = False) -> None:
        """(Un)subscribe the Act on `port` under `host` at every router on another host,
        as the Act itself would from its node address: one datagram each, no reply."""
        address = self.node_address(port)
        if not address:
            return
        sign = self._signer(private)
        for key in self.keys_for(host):
            packet = subscription_packet(key, address, unsubscribe=unsubscribe, sign=sign)
            for server in self.remote_servers:
                try:
                    send_packet(server, packet)
                except OSError as exc:
                    log.debug("announcing %s to %s: %s", address, server, exc)

    # Declared

    @property
    def https(self) -> str:
        """The address of the TLS listener, or "" for none."""
        return self._settings().https

    def serves_tls(self) -> bool:
        """A TLS listener is asked for and the router's uwsgi can have one (SSL)."""
        if not self.https:
            return False
        try:
            path = self._binary()
        except BackstageError:
            return False
        return not path or has_ssl(path)

    @property
    def tls_addresses(self) -> tuple[str, ...]:
        """What the router listens on beside `router` and its socket: held the same way."""
        return (self.https,) if self.serves_tls() else ()

    @functools.cached_property
    def certificates(self) -> Certificates:
        return Certificates(self.layout, self._settings)

    @functools.cached_property
    def acme(self) -> Acme:
        return Acme(self.layout, self._settings, self.certificates)

    def prepare(self) -> None:
        """Write what the router's config refers to: the keys, when announces are signed;
        the default certificate and the redirect marks, with a TLS listener."""
        if self.signed:
            self.keys.publish(FALLBACK_KEY)
        self.certificates.prepare()

    def write_booked(self, hosts: Mapping[str, Iterable[str]]) -> bool:
        """Write the keys of the booked `hosts` for the router's fallback, each with the
        nodes (uwsgi sockets) of the Acts booked there, atomically and only when they
        changed; True when written. The fallback passes a booked key's request to the
        first node that takes it: a router just restarted, which does not know the Acts
        yet, then costs no request."""
        booked: dict[str, list[str]] = {}
        for host, nodes in hosts.items():
            for key in self.keys_for(host):
                booked.setdefault(key, [])
                booked[key] += [n for n in nodes if n not in booked[key]]
        text = json.dumps(dict(sorted(booked.items())), indent=0) + "\n"
        return write_if_changed(self.booked_path, text)

    def render(self, stageset: StageSet) -> str:
        address = self.address
        split_address(address)
        return stageset.router(
            self.layout,
            address,
            sign=self.vassal_sign,
            sign_check=self.keys.router_check if self.signed else "",
            subscription_server=self.subscription_server,
            log_max=self.settings().log_max,
            drain=self._drains(),
            https=self.https if self.serves_tls() else "",
            tls_stamp=self.certificates.stamp() if self.serves_tls() else "",
            certs=tuple(self.certificates.hosts()) if self.serves_tls() else (),
            tls13=self.settings().https_tls13,
        )

    def _drains(self) -> bool:
        """The router's uwsgi can drop log lines by regular expression."""
        try:
            path = self._binary()
        except BackstageError:
            return False  # no uwsgi: nothing plays, and the Stage says why
        return bool(path) and drains_logs(path)


@functools.cache
def has_ssl(binary: str) -> bool:
    """The uwsgi at `binary` was built with SSL (`https` is one of its options); the
    pyuwsgi wheels are not. Asked once."""
    try:
        return "https" in uwsgi_binary.option_names(binary)
    except UwsgiError:
        return False


@functools.cache
def drains_logs(binary: str) -> bool:
    """`log-drain` is an option of the uwsgi at `binary` (it needs PCRE), asked once."""
    try:
        return "log-drain" in uwsgi_binary.option_names(binary)
    except UwsgiError:
        return False
