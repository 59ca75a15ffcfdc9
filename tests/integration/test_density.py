"""Density: Acts that sleep when idle (no process at all) and wake at the next request,
on a real Emperor over zmq: the Emperor holds the Act's port while it sleeps and
spawns it at the first connection, which waits and is answered."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backstage.control.daemon.loop import A_MASTER_DIED
from backstage.model.state import RUNNING, SLEEPING, STOPPED
from emperor.process import pid_alive, pids_named
from tests.gigs_helpers import named_act
from tests.helpers import dir_channel_slow, http_get, poll
from tests.integration.test_failures import rested_since

# seconds; the master looks about once a second. uWSGI counts idle from the master's
# start and a worker loading the app is not busy: keep it above a loaded box's start time
IDLE = 3


def processes(act) -> list[int]:
    """The Act's processes (master, workers, its own workers), by their procname."""
    return pids_named(f"{act.production.prefix} {act.key} ")


def sleepy(venue, name: str, **options):
    act = named_act(venue, name, start=False, **options)
    act.set(f"idle={IDLE}")
    act.start()
    return act


def listening(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        return probe.connect_ex(path) == 0


def made(path: str) -> tuple[int, int] | None:
    """Which file is at `path` now: its inode, and when it was made (inodes are reused)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_ctime_ns


def gig_acts(production, host: str) -> tuple[str, ...]:
    return next((g.acts for g in production.gigs if g.host == host), ())


def asleep(act) -> bool:
    return act.state == SLEEPING and not processes(act)


@dir_channel_slow
def test_an_idle_act_sleeps_with_no_process_and_a_request_wakes_it(production, venue, channel):
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
    # booked while it sleeps: live at once at the wake node, and the Act sleeps on
    started = time.monotonic()
    act.book("late.example.com")
    assert time.monotonic() - started < 10
    assert asleep(act)
    assert gig_acts(production, "late.example.com") == (act.key,)
    seen = load_until(lambda: http_get(router, host="booked.example.com", timeout=15), 30)
    assert set(seen) == {(200, "Booked")}, [s for s in seen if s[0] != 200][:3]
    assert act.state == RUNNING
    # awake, it takes nearly every request itself: the wake node beside it weighs 1 in 101
    (gig,) = [g for g in production.gigs if g.host == "booked.example.com"]
    served = dict(zip(gig.nodes, gig.node_requests, strict=True))
    wake = production.layout.act_wake(act.ref)
    assert served[act.socket_path] >= 20 and served.get(wake, 0) <= 5, served


def test_many_sleeping_acts_woken_at_once_all_answer(production, venue):
    acts = [sleepy(venue, f"Many{i}") for i in range(3)]
    poll(lambda: all(asleep(act) for act in acts), timeout=20)
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda act: (act.name, http_get(act.port, timeout=30)), acts * 4))
    assert all(answer == (200, name) for name, answer in answers), answers
    assert all(act.state == RUNNING for act in acts)


@pytest.mark.slow
def test_stop_and_start_of_a_sleeping_act(production, venue):
    act = sleepy(venue, "Nap")
    poll(lambda: asleep(act), timeout=15)
    act.stop()  # for good: its port is closed, no request wakes it
    assert act.state == STOPPED and not processes(act)
    assert http_get(act.port, timeout=2) == (0, "")
    assert production.crew.stage.stats().vassal(production.layout.vassal(act.ref)) is None
    act.start()
    assert act.state == RUNNING and http_get(act.port) == (200, "Nap")
    poll(lambda: asleep(act), timeout=15)
    act.start()  # wakes it
    assert act.state == RUNNING and processes(act)


@pytest.mark.slow
def test_acts_sleep_on_through_a_manager_and_an_emperor_restart(production, venue):
    venue.add_domain("example.com")
    act = sleepy(venue, "Deep")
    act.book("deep.example.com")
    poll(lambda: asleep(act), timeout=15)

    manager = production.manager.pid()
    wake = production.layout.act_wake(act.ref)
    killed = made(wake)
    os.kill(manager, signal.SIGKILL)
    poll(lambda: not pid_alive(manager), timeout=10)
    production.manager.up()  # a new Manager adopts the Emperor and its sleeping vassal
    assert production.manager.pid() != manager
    assert act.state == SLEEPING and not processes(act)
    # Gigs of sleeping Acts wake through the Manager: once its first pass listens again.
    # At a socket of its own: the killed one's may take connections a moment longer
    # (its threads still exiting, though it shows as a zombie), only to reset them.
    poll(lambda: made(wake) not in (None, killed) and listening(wake), timeout=10)
    assert act.state == SLEEPING  # a connection that sends nothing wakes nobody
    poll(lambda: gig_acts(production, "deep.example.com") == (act.key,), timeout=10)
    assert http_get(production.router.port, host="deep.example.com", timeout=30) == (200, "Deep")
    poll(lambda: asleep(act), timeout=15)

    emperor = production.stage.pid()
    os.kill(emperor, signal.SIGKILL)  # its vassals go with it; the Manager starts another
    poll(lambda: production.stage.pid() not in (None, emperor), timeout=20)
    poll(lambda: act.state == SLEEPING, timeout=20)
    assert http_get(act.port, timeout=30) == (200, "Deep")
    answer = poll(
        lambda: http_get(production.router.port, host="deep.example.com", timeout=30)[0] == 200,
        timeout=20,
    )
    assert answer


def test_an_act_falling_asleep_starts_no_pass(production, venue):
    """Its master's death changes no file: the Manager looks at the Emperor's stats,
    finds what plays as wanted and rests on, rather than read and write every Act's
    files. A file only a pass removes (what was said of an Act gone) is still there
    after the Act fell asleep, and gone after a poke."""
    layout = production.crew.layout
    act = sleepy(venue, "Dozy")
    pushed = f"pushing {layout.vassal(act.ref)}"
    poll(lambda: rested_since(layout.manager_log, pushed), 30)
    ghost = os.path.join(layout.run_dir, "TestVenue.Ghost.refused")
    open(ghost, "w").close()
    os.utime(ghost, (time.time() - 60, time.time() - 60))  # not one of a new Act
    poll(lambda: asleep(act), timeout=15)
    poll(lambda: said_since(layout.manager_log, pushed, A_MASTER_DIED), 10)
    assert os.path.exists(ghost)
    production.manager.poke()
    poll(lambda: not os.path.exists(ghost), 10)


def said_since(log: str, mark: str, line: str) -> bool:
    with open(log) as lines:
        _, found, after = lines.read().rpartition(mark)
    return bool(found) and line in after
