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

Most Acts need no reload at all: their settings read the hosts file as it changes
(the scaffold's, and adopted projects'), so a booking is one announce (then the
Manager's, each second, until the vassal next reads its file: "pending"), and an
unbooking takes the node out of the router and leaves the Act running as it was.
Unbooking takes the Act out of the router first in every case: the Act is told to
stop announcing the host (its subscribe2 `check=` file appears, and stays until
its config no longer names the host), an unsubscribe datagram for its node goes to
the router, and only once the router no longer lists the node is an Act that needs
it reloaded without the host. Traffic moves to the other Acts booked at the host
with no failed request.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from emperor.process import wait_for

from ...errors import ActFailed, BackstageError, NotBookable, NotFound, PortBusy
from ...files import declared
from ...files.declared import Declared, DeclaredAct
from ...files.fs import unlink_if_present, write_if_changed
from ...model.domains import check_hostname, domain_of
from ...render.shim import LIVE_MARK, shim_path
from ...render.stageset import uses_shim
from ..host import ownership
from ..processes import holding
from ..processes.crew import Crew
from .acts import ActManager

log = logging.getLogger(__name__)

RESEND_EVERY = 0.5  # an announce already on its way can re-add the node once
# A withheld file older than this under a host the Act is booked at again (by hand:
# `book` removes it) is left from an unbooking long over: it goes, so the Act announces
# the host once its config names it again
WITHHELD_STALE = 120.0


class BookingManager:
    def __init__(self, crew: Crew) -> None:
        self.crew = crew
        self._context: tuple[object, ...] | None = None  # the router sync_all last saw

    def check(self, act: ActManager, host: str) -> str:
        """The folded host, if `act` may be booked there; else an error saying why."""
        host = check_hostname(host)
        ref = act.ref
        if not os.path.isfile(ref.spec_path):
            raise NotFound(
                f"no Act {ref.key}: create it with `backstage act new {ref.venue} {ref.name}`"
            )
        domains = declared.venue_spec(ref.venue_path).domains
        if domain_of(host, domains) is None:
            listed = ", ".join(domains) or "none yet"
            raise NotBookable(
                f"{host} is not a domain of Venue {ref.venue} (its domains: {listed}): "
                f"add one with `backstage venue domain add {ref.venue} DOMAIN`"
            )
        return host

    def book(self, act: ActManager, host: str, timeout: float = 60.0) -> None:
        """Book `act` at `host`; when it plays, return once the router passes the host to it."""
        since = time.time()  # what the Manager finds of the Act from now on
        host = self.check(act, host)
        router = self.crew.router
        layout = self.crew.layout
        socket_path = layout.act_socket(act.ref)
        if host not in act.spec().hosts:
            if not router.answering() and holding.taken_elsewhere(layout, router.port):
                raise PortBusy(
                    f"the router's address {router.address} is held by another process: free "
                    f'it, or set router = "HOST:PORT" in {layout.spec_path}'
                )
            unlink_if_present(layout.withheld(act.ref, host))
            act.declare(hosts=(*act.spec().hosts, host))
        self.publish_booked()
        if not act.spec().enabled:
            self.sync(act)
            return  # booked; the Gig goes live when the Act starts
        self.crew.manager.up()
        if act.settle(timeout) is not None and self._live(act):
            self._announce(act, host)
        else:
            self._apply(act, timeout)

        wake_path = layout.act_wake(act.ref)

        def live() -> bool:
            nodes = router.live_nodes(host)
            if socket_path in nodes and act.settled():
                return True
            if wake_path in nodes and act.sleeping():  # announced by the Manager
                return True
            if act.sess() is None:  # one that cannot play never comes
                try:
                    act.playable_or_raise(since)
                except ActFailed as exc:
                    raise ActFailed(f"{exc} (booked at {host}: live once it plays)") from None
            return False

        if not wait_for(live, timeout, 0.05):
            raise BackstageError(
                f"{act.ref.key} did not reach the router for {host} within {timeout:.0f} s; "
                f"see {act.log_path} and {router.log_path}"
            )

    def unbook(self, act: ActManager, host: str, timeout: float = 30.0) -> None:
        """Take `act` off `host`: out of the router first, then out of its config."""
        host = check_hostname(host)
        hosts = act.spec().hosts
        if host not in hosts:
            raise NotFound(
                f"{act.ref.key} is not booked at {host} (booked: {', '.join(hosts) or '-'})"
            )
        router = self.crew.router
        layout = self.crew.layout
        socket_path = layout.act_socket(act.ref)
        withheld = layout.withheld(act.ref, host)
        # a user's vassal looks for it as the user: it may pass, not list or write
        os.makedirs(os.path.dirname(withheld), mode=0o711 if act.ref.user else 0o700, exist_ok=True)
        with open(withheld, "w"):
            pass
        self.publish_booked()  # nor does the router's fallback pass it the host's requests
        deadline = time.monotonic() + timeout
        domains = declared.venue_spec(act.ref.venue_path).domains
        private = router.keys.private_for(host, domains) if router.signed else ""
        router.remote(host, act.spec().port, private, unsubscribe=True)
        while socket_path in router.live_nodes(host):
            router.unsubscribe(host, socket_path, private)
            wait_for(
                lambda: socket_path not in router.live_nodes(host),
                min(RESEND_EVERY, max(0.0, deadline - time.monotonic())),
            )
            if time.monotonic() >= deadline:
                raise BackstageError(
                    f"the router still passes {host} to {act.ref.key} after {timeout:.0f} s; "
                    f"see {router.log_path}"
                )
        act.declare(hosts=tuple(h for h in hosts if h != host))
        self.publish_booked()
        if act.sess() is not None and self._live(act):
            # its settings read the hosts file as it changes, and its running config
            # still names the host: the withheld file keeps it from announcing that
            # one until it next starts, and a new booking of the host removes it
            self.sync(act)
            return
        self._apply(act, max(1.0, deadline - time.monotonic()))
        unlink_if_present(withheld)  # its subscriptions no longer name the host

    @staticmethod
    def _live(act: ActManager) -> bool:
        """Whether a booking of the playing `act` needs no reload. An Act that may sleep
        reloads: a host announced for it by the Manager would stay in the router after
        it fell asleep, and only its own announces leave with it."""
        return follows_bookings(act) and not act.spec().idle

    def publish_booked(self) -> None:
        """Write which hosts are booked for the router's fallback (a 503 for a booked host
        nobody plays, a 308 to a booked host's own spelling), from the declared files as
        they are now: by a booking as soon as it is declared, and by the Manager each pass.
        Under a lock, read and write: the last to write read last, so no one writes a
        list older than the other's."""
        layout = self.crew.layout
        with declared.locked(layout.router_booked_lock):
            production = declared.read(layout)
            booked: dict[str, list[str]] = {}
            for act in production.acts:
                for host in act.spec.hosts if act.spec else ():
                    booked.setdefault(host, []).extend(self._nodes(act, host))
            self.crew.router.write_booked(booked)

    def _nodes(self, act: DeclaredAct, host: str) -> list[str]:
        """Where the router's fallback may pass a request for `host` to the Act: its
        uwsgi socket, and the wake node for one that may sleep (its socket is closed
        while it sleeps); none while it is stopped or being unbooked from the host."""
        spec, layout = act.spec, self.crew.layout
        if spec is None or not spec.enabled or os.path.exists(layout.withheld(act.ref, host)):
            return []
        nodes = [layout.act_socket(act.ref)]
        return nodes + [layout.act_wake(act.ref)] if spec.idle else nodes

    # The Act's subscriptions file

    def sync(self, act: ActManager) -> bool:
        """Write the Act's subscriptions file from its `act.toml`; True when it changed.
        Called by the Production Manager too, so a hand edit is picked up at the next
        start or reload (it never reloads an Act itself)."""
        crew = self.crew
        router = crew.router
        spec = act.spec()
        domains = declared.venue_spec(act.ref.venue_path).domains
        text = crew.stageset.gigs(
            crew.layout,
            act.ref,
            spec,
            router.address,
            lambda host: router.keys.vassal_sign_for(host, domains) if router.signed else "",
            router.remote_servers,
            router.node_address(spec.port),
        )
        if router.signed:  # the router refuses a key it has no public key for
            for host in spec.hosts:
                for key in router.keys_for(host):
                    router.keys.publish(key, domains)
        owner = ownership.owner(act.ref)
        hosts = "".join(h + "\n" for h in spec.hosts)
        write_if_changed(crew.layout.act_hosts(act.ref), hosts, 0o600, owner)
        for host in spec.hosts:
            withheld = crew.layout.withheld(act.ref, host)
            try:
                if time.time() - os.stat(withheld).st_mtime > WITHHELD_STALE:
                    unlink_if_present(withheld)
            except FileNotFoundError:
                pass
        path = crew.layout.act_gigs(act.ref)
        # A user's vassal reads it again when it reloads, after it dropped to the user:
        # readable then, in root's own folder, never theirs to write
        return write_if_changed(path, text, 0o644 if owner else 0o600)

    def sync_all(self, production: Declared) -> None:
        """Keep every Act's subscriptions file current (the Production Manager, each pass).
        When the router itself changed (its port, signing), a playing Act whose file
        changed reloads to announce itself as the new router expects."""
        router = self.crew.router
        settings = router.settings()
        context = (
            router.address,
            router.signed,
            settings.subscribe_to,
            settings.node_address,
        )
        router_changed = self._context is not None and context != self._context
        self._context = context
        for found in production.acts:
            if found.spec is None:
                continue
            act = ActManager(self.crew, found.ref)
            try:
                if self.sync(act) and router_changed and act.sess() is not None:
                    log.info("reloading %s for the changed router", found.ref.key)
                    act.fifo("r")
            except BackstageError as exc:
                log.error("the subscriptions of %s are left as they were: %s", found.ref.key, exc)

    def _announce(self, act: ActManager, host: str) -> None:
        """Bring a playing Act to `host` without a reload: its gigs ini names the host for
        its next start, and meanwhile the host is pending: announced now, here, and then
        each second by the Production Manager, until the vassal reads the file again."""
        self.sync(act)
        pending = self.crew.layout.pending(act.ref)
        os.makedirs(os.path.dirname(pending), mode=0o700, exist_ok=True)
        # O_NOFOLLOW: for a Venue with a user, the folder is theirs (its vassal removes
        # the file), and a link there must not have root append to another file
        fd = os.open(pending, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with open(fd, "a") as out:
            out.write(host + "\n")
        self.announce(act, (host,))

    def announce(self, act: ActManager, hosts: Iterable[str]) -> None:
        """One announce of the playing `act` for each of `hosts`, to every router."""
        router, layout = self.crew.router, self.crew.layout
        spec = act.spec()
        domains = declared.venue_spec(act.ref.venue_path).domains
        for host in hosts:
            # looked at again just before sending: an unbook that began since `hosts`
            # were read (the Act's stats were asked meanwhile, up to half a second)
            # withheld the host before taking the node out, and a late announce would
            # put it back, to answer 400 for a host it no longer allows
            if os.path.exists(layout.withheld(act.ref, host)):
                continue
            private = router.keys.private_for(host, domains) if router.signed else ""
            router.announce([(host, layout.act_socket(act.ref))], private)
            router.remote(host, spec.port, private)

    def leave_pending(self, act: ActManager) -> None:
        """Before the Act's vassal stops: take its pending hosts out of every router, which
        the vassal cannot do (its config does not name them), and forget them."""
        router, layout = self.crew.router, self.crew.layout
        hosts = self.pending(act)
        if hosts:
            domains = declared.venue_spec(act.ref.venue_path).domains
            for host in hosts:
                private = router.keys.private_for(host, domains) if router.signed else ""
                router.unsubscribe(host, layout.act_socket(act.ref), private)
                router.remote(host, act.spec().port, private, unsubscribe=True)
        unlink_if_present(layout.pending(act.ref))

    def pending(self, act: ActManager) -> list[str]:
        """The hosts the Manager announces for the Act: pending, still booked, not withheld;
        every booked one for an Act of a Venue with a user, which cannot announce itself
        (the router's subscription socket is the Production's alone)."""
        layout = self.crew.layout
        hosts = act.spec().hosts
        if act.ref.user:
            return [h for h in hosts if not os.path.exists(layout.withheld(act.ref, h))]
        try:
            with open(layout.pending(act.ref)) as src:
                found = dict.fromkeys(line.strip() for line in src if line.strip())
        except FileNotFoundError:
            return []
        return [h for h in found if h in hosts and not os.path.exists(layout.withheld(act.ref, h))]

    def _apply(self, act: ActManager, timeout: float) -> None:
        """Write the subscriptions file and have a playing Act reload to read it; return
        once every worker is new and accepting."""
        self.sync(act)
        if act.settle(timeout) is None:
            return  # not playing: it reads the file when it starts
        if not act.renew("r", timeout):
            raise BackstageError(
                f"{act.ref.key} did not reload within {timeout:.0f} s: see {act.log_path}"
            )


def follows_bookings(act: ActManager) -> bool:
    """The Act's Django settings read its hosts file as it changes (see render/shim.py),
    or it checks no hosts: a booking then needs no reload. A scaffold made before the
    hosts file reloads."""
    spec = act.spec()
    if not spec.django_settings:
        return True
    ref = act.ref
    if uses_shim(spec):
        settings = shim_path(ref.path)
    elif spec.adopted:
        return True  # booked_hosts = false: the project's own ALLOWED_HOSTS, reload or not
    else:
        settings = os.path.join(ref.path, *spec.django_settings.split(".")) + ".py"
    try:
        with open(settings) as src:
            return LIVE_MARK in src.read()
    except OSError:
        return False
