"""Density: Acts that sleep when idle (no process at all) and wake at the next request,
on a real Emperor over zmq: the Emperor holds the Act's port while it sleeps and
spawns it at the first connection, which waits and is answered."""

from __future__ import annotations

import threading

from backstage.model.state import RUNNING, SLEEPING
from emperor.process import pids_named
from tests.gigs_helpers import named_act
from tests.helpers import http_get, poll

IDLE = 2  # seconds; the master looks about once a second, so it sleeps within ~4 s


def processes(act) -> list[int]:
    """The Act's processes (master, workers, its own workers), by their procname."""
    return pids_named(f"{act.production.prefix} {act.key} ")


def sleepy(venue, name: str, **options):
    act = named_act(venue, name, start=False, **options)
    act.set(f"idle={IDLE}")
    act.start()
    return act


def asleep(act) -> bool:
    return act.state == SLEEPING and not processes(act)


def test_an_idle_act_sleeps_with_no_process_and_a_request_wakes_it(production, venue):
    act = sleepy(venue, "Sleepy")
    assert act.state == RUNNING and processes(act)
    poll(lambda: asleep(act), timeout=15)
    assert {row.key: row.state for row in production.snapshot().acts}[act.key] == SLEEPING

    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        for _ in range(2000):
            if stop.is_set():
                break
            seen.append(http_get(act.port, timeout=10))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        poll(lambda: len(seen) > 20, timeout=15)
    finally:
        stop.set()
        loader.join(timeout=15)
    assert set(seen) == {(200, "Sleepy")}, [s for s in seen if s[0] != 200][:3]
    assert act.state == RUNNING
    poll(lambda: asleep(act), timeout=15)  # and back to sleep


def load_until(get, enough: int, timeout: float = 20.0) -> list[tuple[int, str]]:
    """Requests one after another (bounded) until `enough` came back; what came back."""
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        for _ in range(5000):
            if stop.is_set():
                break
            seen.append(get())

    loader = threading.Thread(target=load)
    loader.start()
    try:
        poll(lambda: len(seen) >= enough, timeout=timeout)
    finally:
        stop.set()
        loader.join(timeout=15)
    return seen


def test_a_sleeping_acts_gig_stays_listed_and_a_request_there_wakes_it(production, venue):
    venue.add_domain("example.com")
    act = sleepy(venue, "Booked")
    act.book("booked.example.com")
    router = production.router.port
    assert http_get(router, host="booked.example.com") == (200, "Booked")
    poll(lambda: asleep(act), timeout=15)
    # still listed while it sleeps, at the Manager's wake node
    gig = poll(lambda: [g for g in production.gigs if g.host == "booked.example.com" and g.acts])
    assert gig[0].acts == (act.key,)
    seen = load_until(lambda: http_get(router, host="booked.example.com", timeout=15), 30)
    assert set(seen) == {(200, "Booked")}, [s for s in seen if s[0] != 200][:3]
    assert act.state == RUNNING
