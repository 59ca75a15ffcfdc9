"""The socket holder, end to end: each Act is handed its own sockets only, and a port
it holds closes with the Act that stops (the chaos tests show what it is for)."""

from __future__ import annotations

import os
import signal
import socket

from backstage.scripts import nogig
from emperor.process import pid_alive, read_pidfile
from tests.chaos_helpers import small_act
from tests.helpers import free_port, http_get, listening_ports, poll


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


def node_get(address: tuple[str, int], host: str, timeout: float = 20.0) -> bytes:
    """The first bytes of the answer to a GET sent in the uwsgi protocol to `address`,
    as a router on another host passes one to an Act's node."""
    environ = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1",
    }
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(nogig.uwsgi_packet(environ))
        return conn.recv(64)


def test_the_node_address_socket_is_held_too(production, venue):
    """An Act's uwsgi socket for routers on other hosts (node_address) outlives its
    master as its port does: a request sent there while the master is dead waits in
    the held backlog and is answered by the next one."""
    node_ip = "127.0.0.2"  # loopback, as another host's router would reach this one
    production.declare(subscribe_to=(f"127.0.0.1:{free_port()}",), node_address=node_ip)
    venue.add_domain("node.test")
    act = small_act(venue, "Noded", processes=1)
    act.book("a.node.test")
    node = (node_ip, act.port)
    assert node_get(node, "a.node.test").startswith(b"HTTP/1.1 200")
    holder = read_pidfile(production.layout.holder_pidfile)
    assert holder is not None and act.port in listening_ports(holder)
    sess = act.sess
    master, workers = sess.pid, [w.pid for w in sess.workers]
    os.kill(master, signal.SIGKILL)
    # once its workers are gone too (they serve a moment more), and before the next
    # master can be there: only a held socket takes the request, which then waits
    poll(lambda: not any(pid_alive(pid) for pid in workers), 10, 0.005)
    assert node_get(node, "a.node.test").startswith(b"HTTP/1.1 200")
    poll(lambda: (s := act.sess) is not None and s.pid != master, 30)
