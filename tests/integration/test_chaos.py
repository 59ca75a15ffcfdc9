"""kill -9, one process at a time, under a bounded request loop: each test prints its
figure (failed requests, seconds until serving again) and asserts the heal."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from backstage.control.processes.holding import held_ports
from backstage.model.state import RUNNING, SLEEPING
from emperor.process import pid_alive, read_pidfile
from emperor.statswire import read_stats
from tests.chaos_helpers import HELD_WAIT, Load, small_act, wait_served
from tests.helpers import dir_channel_slow, free_port, http_get, listening_ports, poll
from tests.tls_helpers import TestCA, https_get


def test_a_worker_killed(production, venue):
    act = small_act(venue, "Worker")
    victim = act.sess.workers[0].pid
    with Load(act.port) as load:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.ready and victim not in {w.pid for w in s.workers}, 30)
        wait_served(load, killed)
    load.figure("worker kill -9", killed)
    assert load.failed <= 1  # at most the request the worker held
    assert act.state == "running"


def routed(production, venue, name: str, processes: int = 2):
    """A small Act booked at NAME.chaos.test, once the router passes it its requests."""
    if "chaos.test" not in venue.spec.domains:
        venue.add_domain("chaos.test")
    act = small_act(venue, name, processes=processes)
    host = f"{name.lower()}.chaos.test"
    act.book(host)
    poll(lambda: http_get(production.router.port, host=host) == (200, "ok"), 15)
    return act, host


def sleeping(production, venue, name: str):
    """A one-worker Act that sleeps after 3 idle seconds, booked at NAME.chaos.test,
    once it served a request through the router and fell asleep again."""
    venue.add_domain("chaos.test")
    act = small_act(venue, name, processes=1, start=False)
    act.set("idle=3")  # seconds without a request, then it sleeps
    act.start()
    host = f"{name.lower()}.chaos.test"
    act.book(host)
    poll(lambda: http_get(production.router.port, host=host) == (200, "ok"), 15)
    poll(lambda: act.state == SLEEPING and act.sess is None, 30)
    return act, host


def test_an_act_master_killed(production, venue, channel):
    """Its port and uwsgi socket are held by the socket holder: connections wait in the
    backlog while the Emperor (or the Manager) brings the master back."""
    act, host = routed(production, venue, "Master")
    other = small_act(venue, "Bystander", processes=1)
    master = act.sess.pid
    router = production.router.port
    with (
        Load(act.port, timeout=HELD_WAIT) as load,
        Load(router, host=host, timeout=HELD_WAIT) as through,
        Load(other.port) as bystander,
    ):
        wait_served(load, 0.0)
        wait_served(through, 0.0)
        killed = time.monotonic()
        os.kill(master, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.pid != master and s.ready, 30)
        wait_served(load, killed)
        wait_served(through, killed)
    figures = [
        load.figure(f"master kill -9 ({channel}), straight", killed),
        through.figure(f"master kill -9 ({channel}), through the router", killed),
    ]
    assert (load.failed, through.failed, bystander.failed) == (0, 0, 0), figures
    assert act.state == "running" and http_get(act.port)[0] == 200


def test_the_router_killed(production, venue):
    """Its port is held: a request waits while the router's process comes back, and
    one for a host the new process does not know yet is passed to the Act by its
    fallback worker. Only the request the killed process held may fail."""
    act, host = routed(production, venue, "Routed")
    router = production.router
    pid = router.stats().pid
    with Load(router.port, host=host, timeout=HELD_WAIT) as load, Load(act.port) as direct:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        dead = time.monotonic()
        poll(lambda: (s := router.stats()) is not None and s.pid != pid, 30)
        wait_served(load, killed, count=20)
    figure = load.figure("router kill -9", killed)
    assert_only_in_flight(load, dead, figure)
    assert direct.failed == 0  # the Act itself never stopped


def assert_only_in_flight(load: Load, dead: float, figure: str) -> None:
    """At most one request failed, with no answer, and it was sent before the router's
    HTTP process was killed: the one that process held (the loop sends one at a time),
    which no process can answer. A request sent later waited in the held port."""
    lost = [(began - dead, ended - dead, status) for began, ended, status in load.failures()]
    print(f"failed requests (sent, ended, status; seconds from the kill): {lost}")
    assert len(lost) <= 1, figure
    assert all(status == 0 and began < 0 for began, _, status in lost), (lost, figure)


def test_the_router_master_killed(production, venue):
    """The router's vassal, master and HTTP process, gone at once: its port is held, and
    the Emperor or the Manager brings it back. The connections that waited meanwhile
    reach the new router before it is told who plays: its fallback passes them to the
    Act, and announces itself before the router routes any. What may fail is only the
    request the killed HTTP process held: the loop sends one at a time, so at most one
    was in it, sent before it died, and no answer can come to it."""
    act, host = routed(production, venue, "Routed")
    router = production.router
    gateway = router.stats().pid
    stats = production.stage.stats()
    master = next(v.pid for v in stats.vassals if ".router-" in v.id)
    with Load(router.port, host=host, timeout=HELD_WAIT) as load, Load(act.port) as direct:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(master, signal.SIGKILL)
        os.kill(gateway, signal.SIGKILL)
        dead = time.monotonic()
        poll(lambda: (s := router.stats()) is not None and s.pid != gateway, 30)
        wait_served(load, killed, count=20)
    figure = load.figure("router master and HTTP process kill -9", killed)
    assert_only_in_flight(load, dead, figure)
    assert direct.failed == 0


@pytest.mark.slow
def test_a_sleeping_acts_host_while_the_router_master_is_killed(production, venue):
    """A request for a sleeping Act's host while the router's master and HTTP process
    are killed waits in the router's held port; the new router passes it to the
    Manager's wake node (its fallback forwards to the sockets booked there, the wake
    node among them), which wakes the Act: a 200, not a 503."""
    act, host = sleeping(production, venue, "Dozy")
    router = production.router
    gateway = router.stats().pid
    master = next(v.pid for v in production.stage.stats().vassals if ".router-" in v.id)
    os.kill(master, signal.SIGKILL)
    os.kill(gateway, signal.SIGKILL)
    sent = time.monotonic()
    assert http_get(router.port, host=host, timeout=HELD_WAIT) == (200, "ok")
    print(f"a sleeping Act through a killed router: answered after {time.monotonic() - sent:.2f} s")
    assert act.state == RUNNING  # woken by it
    assert (s := router.stats()) is not None and s.pid != gateway


@dir_channel_slow
def test_a_sleeping_act_while_the_emperor_is_killed(production, venue, channel):
    """A sleeping Act's port is held like an awake Act's, not by the Emperor: requests
    straight at it and through the router while no Emperor runs wait, and once the next
    one listens on the Act's on-demand socket, the holder (which saw them waiting)
    connects there and the Emperor spawns the Act, which serves them. The Manager is
    paused from the kill until both loops have sent a request, so that they surely come
    while no Emperor runs (it starts the next one within a second)."""
    act, host = sleeping(production, venue, "Nappy")
    router = production.router
    layout = production.layout
    vassal = production.stage.stats().vassal(layout.vassal(act.ref))
    assert vassal is not None and vassal.on_demand == layout.act_on_demand(act.ref)
    assert act.port in held_ports(layout)  # the holder's, while it sleeps
    emperor, manager = production.stage.pid(), production.manager.pid()
    gateway = router.stats().pid
    os.kill(manager, signal.SIGSTOP)
    try:
        killed = time.monotonic()
        os.kill(emperor, signal.SIGKILL)
        # and the router's HTTP process, a moment later: one it took would be lost with it
        poll(lambda: not pid_alive(emperor) and not pid_alive(gateway), 10, 0.01)
        with (
            Load(act.port, timeout=HELD_WAIT) as straight,
            Load(router.port, host=host, timeout=HELD_WAIT) as through,
        ):
            poll(lambda: straight.sent and through.sent, 10, 0.01)
            assert not straight.results and not through.results  # both wait
            os.kill(manager, signal.SIGCONT)
            poll(lambda: production.stage.pid() not in (None, emperor), 20)
            wait_served(straight, killed, count=20)
            wait_served(through, killed, count=20)
    finally:
        os.kill(manager, signal.SIGCONT)
    figures = [
        straight.figure(f"a sleeping Act, Emperor kill -9 ({channel}), straight", killed),
        through.figure(f"a sleeping Act, Emperor kill -9 ({channel}), through the router", killed),
    ]
    assert (straight.failed, through.failed) == (0, 0), figures
    # and it sleeps again, with no process of its own
    poll(lambda: act.state == SLEEPING and act.sess is None, 30)


@pytest.mark.slow
def test_the_socket_holder_killed_while_an_act_sleeps(production, venue):
    """No process of a sleeping Act holds a copy of its port, but the Manager does: the
    holder killed -9, requests at the port wait, and the next holder, started with the
    Manager's copies, holds the very sockets and wakes the Act."""
    act, host = sleeping(production, venue, "Drowsy")
    router = production.router
    holder = read_pidfile(production.layout.holder_pidfile)
    assert holder is not None
    killed = time.monotonic()
    os.kill(holder, signal.SIGKILL)
    poll(lambda: not pid_alive(holder), 10, 0.01)
    with (
        Load(act.port, timeout=HELD_WAIT) as straight,
        Load(router.port, host=host, timeout=HELD_WAIT) as through,
    ):
        wait_served(straight, killed, count=20)
        wait_served(through, killed, count=20)
    figures = [
        straight.figure("the socket holder kill -9, a sleeping Act, straight", killed),
        through.figure("the socket holder kill -9, a sleeping Act, through the router", killed),
    ]
    assert (straight.failed, through.failed) == (0, 0), figures
    assert read_pidfile(production.layout.holder_pidfile) not in (None, holder)


SLOW = "/slow?s=3"


def test_a_certificate_change_replaces_the_router(production, venue, tmp_path):
    """A new certificate replaces the router (it reads each pair once): the new one
    knows no Act at first, and its fallback passes their requests on, so none is a
    503; the old one drains before it is stopped (uWSGI kills a router's HTTP process,
    even to stop it gracefully, and the requests it held were cut), so a request it
    holds through the change is answered. What may still fail, rarely, is a connection
    the old one accepted in the instant before its last node was taken out (handover.py)."""
    tls = free_port()
    production.declare(https=f"127.0.0.1:{tls}", https_redirect=False)
    act, host = routed(production, venue, "Certain")
    router = production.router
    gateway = router.stats().pid
    ca = TestCA(str(tmp_path / "ca"))
    cert, key = ca.leaf(host)
    # a request the old router holds through the change: 3 s long, begun before it
    held: list[tuple[int, str]] = []
    slow = threading.Thread(target=lambda: held.append(http_get(router.port, SLOW, host, 30)))
    with Load(router.port, host=host, timeout=HELD_WAIT) as load:
        wait_served(load, 0.0)
        slow.start()
        # the Act serves it (a busy core's stats list its request's variables)
        poll(lambda: SLOW.encode() in read_stats(act.stats_path, 1.0), 10)
        changed = time.monotonic()
        production.import_certificate(host, cert, key, chain=ca.chain_path)
        poll(lambda: (s := router.stats()) is not None and s.pid != gateway, 30)
        wait_served(load, changed, count=20)
        slow.join(30)
    figure = load.figure("a certificate imported (the router replaced)", changed)
    lost = [(began - changed, ended - changed, s) for began, ended, s in load.failures()]
    print(f"failed requests (sent, ended, status; seconds from the import): {lost}")
    assert held == [(200, "slow")]
    assert len(lost) <= 1 and all(status == 0 for _, _, status in lost), figure

    def served() -> bool:
        try:
            return https_get(tls, host, ca)[:2] == (200, "ok")
        except OSError:  # the old router, still draining, shows the old certificate
            return False

    poll(served, 15)


@pytest.mark.slow
def test_the_emperor_killed(production, venue):
    """Every vassal dies with it; their sockets, held apart, do not."""
    act, host = routed(production, venue, "Emp1", processes=1)
    other = small_act(venue, "Emp2", processes=1)
    emperor = production.stage.pid()
    router = production.router.port
    gateway = production.router.stats().pid
    with (
        Load(act.port, timeout=HELD_WAIT) as load,
        Load(router, host=host, timeout=HELD_WAIT) as through,
    ):
        wait_served(load, 0.0)
        wait_served(through, 0.0)
        killed = time.monotonic()
        os.kill(emperor, signal.SIGKILL)
        # the router's HTTP process dies a moment later (the parent-death signals of its
        # master, then its own): a request sent meanwhile is still the one it held
        poll(lambda: not pid_alive(gateway), 5, 0.002)
        dead = time.monotonic()
        poll(lambda: production.stage.pid() not in (None, emperor), 15)
        poll(lambda: all(a.state == "running" for a in (act, other)), 60)
        wait_served(load, killed, count=20)
        wait_served(through, killed, count=20)
    figures = [
        load.figure("Emperor kill -9 (every Act with it), straight", killed),
        through.figure("Emperor kill -9 (every Act with it), through the router", killed),
    ]
    assert load.failed == 0, figures
    # the router is a vassal too: it dies with the Emperor, and the request its HTTP
    # process held then is lost as in the router's own kill
    assert_only_in_flight(through, dead, figures[1])
    assert http_get(other.port)[0] == 200


def test_the_manager_killed(production, venue):
    act = small_act(venue, "Managed")
    manager = production.manager.pid()
    with Load(act.port) as load:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(manager, signal.SIGKILL)
        poll(lambda: production.manager.pid() not in (None, manager), 2, 0.02)
        back = time.monotonic() - killed
        time.sleep(0.5)  # a few requests under the new Manager, which adopts
    load.figure(f"Manager kill -9 (back after {back:.2f} s)", killed)
    assert load.failed == 0 and back < 2
    snapshot = production.snapshot()
    assert snapshot.manager.running and snapshot.manager.pid not in (None, manager)


@pytest.mark.slow
def test_the_manager_then_a_master_killed(production, venue):
    act = small_act(venue, "Orphan")
    manager, master = production.manager.pid(), act.sess.pid
    with Load(act.port, timeout=HELD_WAIT) as load:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(manager, signal.SIGKILL)
        os.kill(master, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.pid != master and s.ready, 30)
        wait_served(load, killed)
    figure = load.figure("Manager, then a master, kill -9", killed)
    assert production.manager.pid() not in (None, manager)
    assert load.failed == 0, figure  # the new Manager brings the master back; requests wait


@pytest.mark.slow
def test_the_holder_then_a_master_killed(production, venue):
    """The holder killed costs nothing at once (each vassal keeps its copy of its
    sockets) and comes back within a pass; a master killed next is healed, and its port
    is held again by the new holder: the one kill after it costs latency only."""
    act = small_act(venue, "Unheld")
    layout = production.layout
    holder = read_pidfile(layout.holder_pidfile)
    assert holder is not None
    with Load(act.port, timeout=HELD_WAIT) as load:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(holder, signal.SIGKILL)
        poll(lambda: read_pidfile(layout.holder_pidfile) not in (None, holder), 15)
        master = act.sess.pid
        os.kill(master, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.pid != master and s.ready, 30)
        wait_served(load, killed)
    load.figure("holder, then a master, kill -9", killed)
    assert act.state == "running"
    assert act.port in listening_ports(read_pidfile(layout.holder_pidfile))
    again = act.sess.pid
    with Load(act.port, timeout=HELD_WAIT) as load:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(again, signal.SIGKILL)
        poll(lambda: (s := act.sess) and s.pid != again and s.ready, 30)
        wait_served(load, killed)
    figure = load.figure("then a master again", killed)
    assert load.failed == 0, figure
