"""What the Production Manager tells a router that was restarted: who plays, at once."""

from __future__ import annotations

import os
import socket
import subprocess

from backstage.control.processes.router import COMEBACK, Router
from backstage.model.layout import Layout
from backstage.model.spec import ProductionSpec
from emperor.subscription import parse_packet


def router_at(tmp_path) -> Router:
    layout = Layout(str(tmp_path))
    os.makedirs(layout.run_dir)
    return Router(layout, lambda: ProductionSpec(router="127.0.0.1:8123"))


def test_announce_subscribes_each_node_under_each_key_of_its_host(tmp_path):
    router = router_at(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(router.subscription_path)
        server.settimeout(1)
        router.announce([("a.example.test", "/run/a.sock"), ("b.example.test", "/run/b.sock")])
        got = []
        for _ in range(4):
            unsubscribe, pairs = parse_packet(server.recv(65536))
            assert not unsubscribe
            got.append((pairs["key"].decode(), pairs["address"].decode()))
    assert got == [
        ("a.example.test", "/run/a.sock"),
        ("a.example.test:8123", "/run/a.sock"),
        ("b.example.test", "/run/b.sock"),
        ("b.example.test:8123", "/run/b.sock"),
    ]


def test_announce_with_no_router_listening_is_quiet_and_keeps_nothing(tmp_path):
    router = router_at(tmp_path)
    router.announce([("a.example.test", "/run/a.sock")])  # raises nothing
    assert not os.path.exists(router.subscription_path)  # and makes no socket of its own
    # Nothing was queued for later either: a router that starts listening now hears
    # only what is announced from now on.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(router.subscription_path)
        server.settimeout(1)
        router.announce([("b.example.test", "/run/b.sock")])
        unsubscribe, pairs = parse_packet(server.recv(65536))
        assert not unsubscribe
        assert (pairs["key"], pairs["address"]) == (b"b.example.test", b"/run/b.sock")


def test_lost_from_the_greeted_process_gone_until_a_new_one_or_a_while(tmp_path):
    now = [100.0]
    layout = Layout(str(tmp_path))
    router = Router(layout, lambda: ProductionSpec(router="127.0.0.1:8123"), lambda: now[0])
    assert not router.lost()  # nothing greeted yet
    child = subprocess.Popen(["sleep", "30"])
    router._greeted = child.pid
    assert not router.lost()
    child.kill()
    child.wait()
    assert router.lost()
    now[0] += COMEBACK - 0.1
    assert router.lost()  # still coming back
    now[0] += 0.1
    assert not router.lost()  # long enough: back to the every-second pass
    assert not router.lost()
