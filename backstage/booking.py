"""The Booking Manager: books Acts at their Venue's domains, and refuses the rest.

A booking is a host in the Act's `act.toml`. The Act's subscriptions to the
router (one `subscribe2` per host) live in a small ini of their own,
`run/VENUE.NAME.gigs.ini`, which the vassal config includes when it exists. So
the Gig is live as soon as the Act plays and leaves the router when it stops.

Why a file of its own and a reload through the Act's FIFO, rather than a changed
vassal config pushed to the Emperor: on the zmq channel uWSGI 2.0 queues the
config twice for every Emperor-sent reload (the Emperor pushes it, and the
reloading vassal asks for it again), so from the second change on a vassal reads
the config before last. A reload the vassal starts itself asks once and reads
once; the vassal config never changes, so the Emperor never reloads it.

A reload is not free of failed requests, and booking only adds a node, so that
is harmless. Unbooking must take the Act out of the router *before* it reloads:
the Act is told to stop announcing the host (its subscribe2 `check=` file
appears), an unsubscribe datagram for its node goes to the router, and only once
the router no longer lists the node is the Act reloaded without the host.
Traffic moves to the other Acts booked at the host with no failed request.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from emperor.process import wait_for

from .act import FAILED, STOPPED
from .domains import check_hostname, domain_of
from .errors import BackstageError, NotBookable, NotFound, PortBusy
from .ports import port_free
from .tomlfile import write_atomic

if TYPE_CHECKING:
    from .act import Act
    from .production import Production

log = logging.getLogger(__name__)

RESEND_EVERY = 0.5  # an announce already on its way can re-add the node once


class BookingManager:
    def __init__(self, production: Production) -> None:
        self.production = production
        self._context: tuple[str, bool] | None = None  # the router sync_all last saw

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
            _unlink(act.withheld_path(host))
            act.manager.declare(hosts=(*act.spec.hosts, host))
        if not act.spec.enabled:
            self.sync(act)
            return  # booked; the Gig goes live when the Act starts
        self.production.manager.up()
        self._apply(act, timeout)

        def live() -> bool:
            return act.socket_path in router.live_nodes(host) and _settled(act)

        if not wait_for(live, timeout, 0.05):
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
        act.manager.declare(hosts=tuple(h for h in hosts if h != host))
        self._apply(act, max(1.0, deadline - time.monotonic()))
        _unlink(withheld)  # its subscriptions no longer name the host

    # The Act's subscriptions file

    def sync(self, act: Act) -> bool:
        """Write the Act's subscriptions file from its `act.toml`; True when it changed.
        Called by the Production Manager too, so a hand edit is picked up at the next
        start or reload (it never reloads an Act itself)."""
        text = self.production.stage.set.render_gigs(act)
        router = self.production.router
        if router.signed:  # the router refuses a key it has no public key for
            for host in act.hosts:
                for key in router.keys_for(host):
                    router.keys.publish(key)
        path = act.gigs_config_path
        try:
            with open(path) as current:
                if current.read() == text:
                    return False
        except FileNotFoundError:
            pass
        write_atomic(path, text, 0o600)
        return True

    def sync_all(self) -> None:
        """Keep every Act's subscriptions file current (the Production Manager, each pass).
        When the router itself changed (its port, signing), a playing Act whose file
        changed reloads to announce itself as the new router expects."""
        router = self.production.router
        context = (router.address, router.signed)
        router_changed = self._context is not None and context != self._context
        self._context = context
        for act in self.production.acts:
            try:
                if self.sync(act) and router_changed and act.sess is not None:
                    log.info("reloading %s for the changed router", act.key)
                    act.manager.fifo("r")
            except BackstageError as exc:
                log.error("the subscriptions of %s are left as they were: %s", act.key, exc)

    def _apply(self, act: Act, timeout: float) -> None:
        """Write the subscriptions file and have a playing Act reload to read it; return
        once every worker is new and accepting."""
        self.sync(act)
        _settle(act, timeout)
        sess = act.sess
        if sess is None:
            return  # not playing: it reads the file when it starts
        old = {w.pid for w in sess.workers}
        count = len(old)
        act.manager.fifo("r")

        def reloaded() -> bool:
            now = act.sess
            return (
                now is not None
                and all(w.pid not in old and w.accepting for w in now.workers)
                and len(now.workers) == count
            )

        if not wait_for(reloaded, timeout, 0.05):
            raise BackstageError(
                f"{act.key} did not reload within {timeout:.0f} s: see {act.log_path}"
            )


def _settled(act: Act) -> bool:
    """Every worker of the Act accepts, or it is not meant to play (or failed)."""
    sess = act.sess
    if sess is not None:
        return bool(sess.workers) and all(w.accepting for w in sess.workers)
    return act.state in (STOPPED, FAILED)


def _settle(act: Act, timeout: float) -> None:
    """Wait until a playing or starting Act is settled. The config change a booking
    makes reloads the Act, and a worker still loading the app when the reload comes
    ignores it until uWSGI's mercy (60 s) runs out."""
    wait_for(lambda: _settled(act), timeout)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
