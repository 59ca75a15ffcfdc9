"""The router under faults: Hosts in another case or with a trailing dot, booked hosts
nobody plays, and the router killed -9 while a client keeps asking."""

from __future__ import annotations

import collections
import http.client
import os
import signal
import threading
import time
import urllib.parse

from backstage.model.reconcile import SETTLE
from emperor import fifo
from tests.gigs_helpers import named_act
from tests.helpers import poll


def get(port: int, host: str, path: str = "/", timeout: float = 2.0):
    """(status, headers, body) of a GET to 127.0.0.1:port, redirects not followed;
    status 0 when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    except (OSError, http.client.HTTPException):
        return 0, {}, ""
    finally:
        conn.close()


def follow(port: int, location: str):
    """GET the Location of a redirect, still at 127.0.0.1:port, with its Host."""
    url = urllib.parse.urlsplit(location)
    return get(port, url.netloc, (url.path or "/") + (f"?{url.query}" if url.query else ""))


def router_vassal(production):
    emperor = production.stage.stats()
    found = [v for v in emperor.vassals if v.id.startswith(production.prefix + ".router-")]
    return found[0] if found and found[0].loyal else None


def test_a_booked_host_answers_in_any_case_and_with_a_trailing_dot(production, venue):
    venue.add_domain("example.test")
    act = named_act(venue, "Plays")
    act.book("host.example.test")
    act.book("upper.example.test")
    port = production.router.port
    assert get(port, "host.example.test")[::2] == (200, "Plays")

    status, headers, _ = get(port, "UPPER.EXAMPLE.TEST", "/x?y=1")
    assert (status, headers["Location"]) == (308, "http://upper.example.test/x?y=1")
    assert follow(port, headers["Location"])[0] == 404  # Django has no /x: the Act answered
    status, headers, _ = get(port, "UPPER.EXAMPLE.TEST")
    assert follow(port, headers["Location"])[::2] == (200, "Plays")

    status, headers, _ = get(port, "host.example.test.")
    assert (status, headers["Location"]) == (308, "http://host.example.test/")
    assert follow(port, headers["Location"])[::2] == (200, "Plays")
    status, headers, _ = get(port, f"Host.Example.Test.:{port}")
    assert (status, headers["Location"]) == (308, f"http://host.example.test:{port}/")
    assert follow(port, headers["Location"])[::2] == (200, "Plays")

    # nothing is redirected but a booked host; a bad Host is refused
    status, headers, _ = get(port, "NOBODY.example.test.")
    assert status == 404 and "Location" not in headers
    assert get(port, "nobody.example.test")[0] == 404
    assert get(port, "host..example.test")[0] == 400

    # booked and playing, but unknown to the router (as a router just restarted knows
    # no Act): its fallback passes the request to the Act, which answers it
    socket_path = production.layout.act_socket(act.ref)
    fifo.send(production.layout.act_fifo(act.ref), "S")  # it announces nothing now
    try:
        router = production.router
        host = "host.example.test"
        poll(lambda: router.unsubscribe(host, socket_path) or not router.live_nodes(host), 10)
        assert get(port, "host.example.test")[::2] == (200, "Plays")
        assert not router.live_nodes("host.example.test")  # it was the fallback's doing
    finally:
        fifo.send(production.layout.act_fifo(act.ref), "S")
    poll(lambda: router.live_nodes("host.example.test") == {socket_path}, 10)

    # booked, not playing: 503 with Retry-After, not 404
    resting = named_act(venue, "Resting", start=False)
    resting.book("resting.example.test")
    status, headers, _ = poll(lambda: (r := get(port, "resting.example.test"))[0] == 503 and r, 10)
    assert headers["Retry-After"] == "2"
    act.stop()
    status, headers, _ = poll(lambda: (r := get(port, "host.example.test"))[0] == 503 and r, 10)
    assert headers["Retry-After"] == "2"


def test_a_booked_host_is_served_again_soon_after_the_router_is_killed(production, venue):
    venue.add_domain("example.test")
    act = named_act(venue, "Steady")
    act.book("steady.example.test")
    port = production.router.port
    master = poll(lambda: router_vassal(production), 20).pid
    # A router killed within SETTLE of its push is taken for one on its way (reconcile):
    # kill one that has played a while, as in life.
    poll(lambda: time.time() - router_vassal(production).born > SETTLE + 0.2, 10)

    answers: list[tuple[float, int]] = []
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            answers.append((time.monotonic(), get(port, "steady.example.test", timeout=1)[0]))
            stop.wait(0.005)  # pace it: a refused connect returns at once

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        poll(lambda: answers and answers[-1][1] == 200, 5)
        # the master and its http process, which would serve on alone for a while
        gateway = production.router.stats().pid
        killed = time.monotonic()
        for pid in (master, gateway):
            os.kill(pid, signal.SIGKILL)
        back = poll(lambda: next((t for t, s in answers if t > killed and s == 200), None), 5)
    finally:
        stop.set()
        thread.join(12)
    meanwhile = collections.Counter(s for t, s in answers if killed < t < back)
    answered = next((t for t, s in answers if t > killed and s), back)
    print(
        f"\nrouter killed -9: it answered again after {answered - killed:.3f} s, "
        f"served the booked host after {back - killed:.3f} s; meanwhile {dict(meanwhile)} "
        "(0: no answer)"
    )
    assert back - killed < 5
    assert 404 not in meanwhile
    assert production.router.stats().pid != gateway
