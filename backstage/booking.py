"""The Booking Manager: books Acts at their Venue's domains, and refuses the rest.

A booking is a host in the Act's `act.toml`. The Act's vassal config then
subscribes it to the router under that host, so the Gig is live as soon as the
Act plays and leaves the router when it stops.

Changing a vassal's config makes the Emperor reload it, which is not free of
failed requests. Booking only adds a node, so that is harmless. Unbooking must
take the Act out of the router *before* anything reloads it: the Act is told to
stop announcing the host (its subscribe2 `check=` file appears), an unsubscribe
datagram for its node goes to the router, and only once the router no longer
lists the node is the new config declared. Traffic moves to the other Acts
booked at the host with no failed request (blue/green).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from emperor.process import wait_for

from .domains import check_hostname, domain_of
from .errors import BackstageError, NotBookable, NotFound, PortBusy
from .ports import port_free

if TYPE_CHECKING:
    from .act import Act
    from .production import Production

log = logging.getLogger(__name__)

RESEND_EVERY = 0.5  # an announce already on its way can re-add the node once


class BookingManager:
    def __init__(self, production: Production) -> None:
        self.production = production

    def check(self, act: Act, host: str) -> str:
        """The folded host, if `act` may be booked there; else an error saying why."""
        host = check_hostname(host)
        if not os.path.isfile(act.spec_path):
            raise NotFound(
                f"no Act {act.key}: create it with `backstage act new {act.venue.name} {act.name}`"
            )
        venue = act.venue
        domains = venue.spec.domains
        if domain_of(host, domains) is None:
            listed = ", ".join(domains) or "none yet"
            raise NotBookable(
                f"{host} is not a domain of Venue {venue.name} (its domains: {listed}): "
                f"add one with `backstage venue domain add {venue.name} DOMAIN`"
            )
        return host

    def book(self, act: Act, host: str, timeout: float = 60.0) -> None:
        """Book `act` at `host`; when it plays, return once the router passes the host to it."""
        host = self.check(act, host)
        router = self.production.router
        if host not in act.spec.hosts:
            if not router.running and not port_free(router.port):
                raise PortBusy(
                    f"the router's address {router.address} is held by another process: free "
                    f'it, or set router = "HOST:PORT" in {self.production.spec_path}'
                )
            _settle(act, timeout)
            _unlink(act.withheld_path(host))
            if router.signed:
                for key in router.keys_for(host):
                    router.keys.publish(key)
            act.manager.declare(hosts=(*act.spec.hosts, host))
        if not act.spec.enabled:
            return  # booked; the Gig goes live when the Act starts
        manager = self.production.manager
        manager.up()
        manager.poke()
        if not wait_for(lambda: act.socket_path in router.live_nodes(host), timeout, 0.05):
            raise BackstageError(
                f"{act.key} did not reach the router for {host} within {timeout:.0f} s; "
                f"see {act.log_path} and {router.log_path}"
            )

    def unbook(self, act: Act, host: str, timeout: float = 30.0) -> None:
        """Take `act` off `host`: out of the router first, then out of its config."""
        host = check_hostname(host)
        hosts = act.spec.hosts
        if host not in hosts:
            raise NotFound(f"{act.key} is not booked at {host} (booked: {', '.join(hosts) or '-'})")
        router = self.production.router
        withheld = act.withheld_path(host)
        os.makedirs(os.path.dirname(withheld), mode=0o700, exist_ok=True)
        with open(withheld, "w"):
            pass
        deadline = time.monotonic() + timeout
        while act.socket_path in router.live_nodes(host):
            router.unsubscribe(host, act.socket_path)
            wait_for(
                lambda: act.socket_path not in router.live_nodes(host),
                min(RESEND_EVERY, max(0.0, deadline - time.monotonic())),
            )
            if time.monotonic() >= deadline:
                raise BackstageError(
                    f"the router still passes {host} to {act.key} after {timeout:.0f} s; "
                    f"see {router.log_path}"
                )
        _settle(act, timeout)
        sess = act.sess
        old = {w.pid for w in sess.workers} if sess else set()
        count = len(old)
        act.manager.declare(hosts=tuple(h for h in hosts if h != host))
        self.production.manager.poke()
        if not old:
            return

        # The new config reloads the Act; return once it has, so that a stop right
        # after does not catch it mid-reload (which uWSGI ignores until reload-mercy).
        def reloaded() -> bool:
            now = act.sess
            return (
                now is not None
                and all(w.pid not in old and w.accepting for w in now.workers)
                and len(now.workers) == count
            )

        if not wait_for(reloaded, max(1.0, deadline - time.monotonic()), 0.05):
            raise BackstageError(
                f"{act.key} left {host} but did not reload within {timeout:.0f} s; "
                f"see {act.log_path}"
            )


def _settle(act: Act, timeout: float) -> None:
    """Wait until every worker of a playing Act accepts. The config change a booking
    makes reloads the Act, and a worker still loading the app when the reload comes
    ignores it until uWSGI's mercy (60 s) runs out."""
    if act.sess is None:
        return
    wait_for(lambda: (s := act.sess) is None or all(w.accepting for w in s.workers), timeout)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
