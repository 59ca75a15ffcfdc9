"""Gigs through the real router: real Emperor, real Acts, real HTTP with Host headers."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from backstage.errors import InvalidHostname, NotBookable
from emperor.process import tail
from emperor.subscription import send_packet, subscription_packet
from tests.gigs_helpers import named_act
from tests.helpers import free_port, http_get, poll


def test_two_acts_on_two_hosts_answer_their_own(production, venue):
    venue.add_domain("example.com")
    alpha = named_act(venue, "Alpha")
    beta = named_act(venue, "Beta")
    port = production.router.port
    started = time.monotonic()
    alpha.book("alpha.example.com")
    assert http_get(port, host="alpha.example.com") == (200, "Alpha")
    assert time.monotonic() - started < 10
    beta.book("Beta.Example.com")  # folded to lowercase
    assert beta.hosts == ("beta.example.com",)
    assert http_get(port, host="beta.example.com") == (200, "Beta")
    assert http_get(port, host="alpha.example.com") == (200, "Alpha")
    # the Host header with the router's port, as a browser sends it
    assert http_get(port, host=f"beta.example.com:{port}") == (200, "Beta")

    gigs = {gig.host: gig for gig in production.gigs}
    assert gigs["alpha.example.com"].acts == ("TestVenue/Alpha",)
    assert gigs["alpha.example.com"].requests >= 2
    assert [gig.host for gig in alpha.gigs] == ["alpha.example.com"]

    # a host nobody plays: a clean 404, at once
    started = time.monotonic()
    status, body = http_get(port, host="nobody.example.com", timeout=3)
    assert status == 404 and "nobody.example.com" in body
    assert time.monotonic() - started < 1.0

    # unbooking removes the Gig within 2 s
    workers = _workers(beta)
    started = time.monotonic()
    beta.unbook("beta.example.com")
    poll(lambda: http_get(port, host="beta.example.com")[0] == 404, timeout=2)
    assert time.monotonic() - started < 2.0
    assert beta.hosts == ()
    # with no reload: its settings read the hosts file as it changes, and refuse the host
    assert http_get(beta.port, host="beta.example.com")[0] == 400
    assert _workers(beta) == workers
    # each change is the one applied, not the one before (see booking.py)
    beta.book("b1.example.com")
    beta.book("b2.example.com")
    beta.unbook("b1.example.com")
    assert http_get(beta.port, host="b2.example.com") == (200, "Beta")
    assert http_get(beta.port, host="b1.example.com")[0] == 400
    assert http_get(port, host="b2.example.com") == (200, "Beta")

    # stopping an Act takes it out of the router; booked, not playing, it shows so,
    # and the router says to try again (503) rather than that there is no such site
    alpha.stop()
    poll(lambda: http_get(port, host="alpha.example.com")[0] == 503, timeout=5)
    (gig,) = [g for g in production.gigs if g.host == "alpha.example.com"]
    assert gig.booked == ("TestVenue/Alpha",) and gig.acts == () and not gig.playing
    alpha.start()
    poll(lambda: http_get(port, host="alpha.example.com") == (200, "Alpha"), timeout=10)


def test_bad_bookings_change_nothing(production, venue):
    venue.add_domain("example.com")
    act = named_act(venue, "Solo", start=False)
    before = open(act.spec_path).read()
    with pytest.raises(InvalidHostname, match="empty label"):
        act.book("a..example.com")
    with pytest.raises(ValueError):
        act.book("x" * 64 + ".example.com")
    with pytest.raises(NotBookable, match="not a domain of Venue TestVenue"):
        act.book("kittens.example.org")
    with pytest.raises(NotBookable):
        act.book("notexample.com")
    assert open(act.spec_path).read() == before


def test_blue_green_switch_fails_no_request(production, venue, channel):
    venue.add_domain("example.com")
    host = "shop.example.com"
    blue = named_act(venue, "Blue")
    green = named_act(venue, "Green")
    port = production.router.port
    blue.book(host)
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            seen.append(http_get(port, host=host, timeout=10))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        poll(lambda: len(seen) > 20, timeout=10)
        both = len(seen)
        green.book(host)  # both behind the host now
        poll(lambda: (200, "Green") in seen[-50:] and (200, "Blue") in seen[-50:], timeout=10)
        old_workers = _workers(blue)
        blue.unbook(host)  # all traffic to Green; Blue plays on, with no reload
        mark = len(seen)
        assert _workers(blue) == old_workers
        poll(lambda: len(seen) > mark + 50, timeout=10)
    finally:
        stop.set()
        loader.join(timeout=15)
    failures = [i for i, answer in enumerate(seen) if answer[0] != 200]
    assert not failures, (
        f"{len(failures)} of {len(seen)} requests failed, the first at {failures[0]} "
        f"(green booked at {both}, blue unbooked at {mark}): {seen[failures[0]]}\n"
        f"router log:\n{tail(production.router.log_path, 30)}\n"
        f"manager log:\n{tail(production.layout.manager_log, 30)}"
    )
    assert set(seen[mark:]) == {(200, "Green")}
    assert {gig.host: gig.acts for gig in production.gigs}[host] == ("TestVenue/Green",)


def _workers(act) -> set[int]:
    sess = act.sess
    return {w.pid for w in sess.workers if w.accepting} if sess else set()


def _nodes(production, host: str) -> set[str]:
    return production.router.live_nodes(host)


def test_a_hand_built_datagram_subscribes_without_signing(production, venue):
    """The control for the signed test: the same unsigned datagram is taken when
    the router does not check signatures."""
    venue.add_domain("example.com")
    act = named_act(venue, "Plain")
    act.book("plain.example.com")
    router = production.router
    bogus = "127.0.0.1:9"
    send_packet(router.subscription_path, subscription_packet("plain.example.com", bogus))
    poll(lambda: bogus in _nodes(production, "plain.example.com"), timeout=3)
    send_packet(
        router.subscription_path,
        subscription_packet("plain.example.com", bogus, unsubscribe=True),
    )
    poll(lambda: bogus not in _nodes(production, "plain.example.com"), timeout=3)
    assert act.socket_path in _nodes(production, "plain.example.com")


def test_signed_subscriptions_refuse_an_unsigned_datagram(production, venue):
    production.declare(router_sign=True)
    venue.add_domain("example.com")
    act = named_act(venue, "Signed")
    act.book("signed.example.com")  # signed announces reach the router
    router = production.router
    port = router.port
    assert "subscriptions-sign-check" in router.render(production.crew.stageset)
    assert http_get(port, host="signed.example.com") == (200, "Signed")
    bogus = "127.0.0.1:9"
    for _ in range(3):
        send_packet(router.subscription_path, subscription_packet("signed.example.com", bogus))
    # the router has read them (a later signed unsubscribe of the real node is obeyed
    # only after them), and took none
    act.unbook("signed.example.com")
    assert bogus not in _nodes(production, "signed.example.com")
    # (an announce of the Manager's sent as the unbook began can put the Act's node back
    # once, until it expires: the router's subscription tolerance)
    poll(lambda: _nodes(production, "signed.example.com") == set(), timeout=5)
    assert bogus not in _nodes(production, "signed.example.com")
    poll(lambda: http_get(port, host="signed.example.com")[0] == 404, timeout=2)


def test_the_router_is_healed_and_follows_its_address(production, venue):
    venue.add_domain("example.com")
    act = named_act(venue, "Steady")
    act.book("steady.example.com")
    router = production.router

    def loyal_router():
        emperor = production.stage.stats()
        found = [v for v in emperor.vassals if v.id.startswith(production.prefix + ".router-")]
        return found[0] if found and found[0].loyal else None

    # (one that dies before it is loyal is blacklisted by the Emperor, as any vassal)
    os.kill(poll(loyal_router, 20).pid, signal.SIGKILL)
    poll(lambda: http_get(router.port, host="steady.example.com") == (200, "Steady"), 20)
    # a changed router config is a new router vassal, every time (see Router.vassal_name)
    for _ in range(2):
        new_port = free_port()
        production.declare(router=f"127.0.0.1:{new_port}")
        poll(lambda p=new_port: http_get(p, host="steady.example.com") == (200, "Steady"), 20)
        # the Act reloaded to announce the host with the new port, as browsers send it
        with_port = f"steady.example.com:{new_port}"
        poll(lambda p=new_port, h=with_port: http_get(p, host=h) == (200, "Steady"), 20)
    # signing turned on while playing: a new router that checks, the Act signs
    production.declare(router_sign=True)
    poll(lambda: "subscriptions-sign-check" in _router_config(production), 10)
    poll(lambda: http_get(new_port, host="steady.example.com") == (200, "Steady"), 20)

    def routers() -> list[str]:
        return [v.id for v in production.stage.stats().vassals if ".router-" in v.id]

    poll(lambda: len(routers()) == 1, 10)  # the old ones withdrawn


def _router_config(production) -> str:
    emperor = production.stage.stats()
    names = [v.id for v in emperor.vassals if ".router-" in v.id] if emperor else []
    config = production.router.render(production.crew.stageset)
    return config if names == [production.router.vassal_name(config)] else ""
