"""The socket holder, end to end: each Act is handed its own sockets only, and a port
it holds closes with the Act that stops (the chaos tests show what it is for)."""

from __future__ import annotations

import socket

from emperor.process import read_pidfile
from tests.chaos_helpers import small_act
from tests.helpers import http_get, listening_ports, poll


def connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_each_act_gets_its_own_sockets_only_and_a_stopped_act_refuses(production, venue):
    one = small_act(venue, "HeldOne", processes=1)
    two = small_act(venue, "HeldTwo", processes=1)
    for act, other in ((one, two), (two, one)):
        ports = listening_ports(act.sess.pid)
        assert act.port in ports and other.port not in ports
        assert production.router.port not in ports
    holder = read_pidfile(production.layout.holder_pidfile)
    assert holder is not None
    assert {one.port, two.port, production.router.port} <= listening_ports(holder)
    two.stop()
    poll(lambda: not connects(two.port), 10)  # not held for an Act that does not play
    assert http_get(one.port)[0] == 200
    two.start()
    assert http_get(two.port)[0] == 200
