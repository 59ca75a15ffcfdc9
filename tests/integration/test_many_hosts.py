"""Many hosts, for real: three Productions, each in a network namespace of its own on a
bridge (10.77.0.0/24), as three machines would be. A runs the router and takes
subscriptions over UDP; B and C play the same Act and announce it to A's router.

Every request is sent from inside A's namespace (to its router on 127.0.0.1); the
test process only reads the router's stats over its unix socket, which a namespace
does not hide. Needs root and `ip`; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

from backstage import Production, Venue
from emperor.subscription import subscription_packet
from tests.conftest import HOMES, ROOT
from tests.helpers import kill_all, poll, processes_of

# Each case makes its own bridge and namespaces, named after it (Net), and the addresses
# and ports it uses are inside them: two cases run beside each other on two test processes.
pytestmark = pytest.mark.timeout(400)

NET = "10.77.0"
A, B, C = "a", "b", "c"
ADDRESS = {A: f"{NET}.11", B: f"{NET}.12", C: f"{NET}.13"}
SUBSCRIPTIONS = f"{ADDRESS[A]}:7000"
ROUTER_PORT = 8000
ACT_PORTS = range(20100, 20199)  # inside B's and C's declared ports
HOST = "shop.example.com"

# Requests from inside A, for at most `seconds` or until the file `stop` is there (the
# namespaces share the file system), one after another, each read whole: how
# many answered 200 and how many not, the seconds from the start to the last failed
# and to the last slow (> 0.5 s) request (-1 for none), the slowest, and the first
# failures (when each was sent, on the machine's monotonic clock, which namespaces
# share, and the status or what was raised).
LOOP = """
import http.client, json, os, sys, time
seconds, host, PORT, stop = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ok = 0; failures = []; last_slow = -1.0; slowest = 0.0; start = time.monotonic()
while time.monotonic() - start < seconds and not (stop and os.path.exists(stop)):
    sent = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        conn.close()
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        status = type(exc).__name__
    if status == 200:
        ok += 1
    else:
        last_failed = time.monotonic()
        failures.append([round(sent, 3), status])
    took = time.monotonic() - sent
    slowest = max(slowest, took)
    if took > 0.5:
        last_slow = time.monotonic() - start
    time.sleep(0.005)
print(json.dumps({"ok": ok, "failed": len(failures),
                  "last_failed": round(last_failed - start, 3) if failures else -1.0,
                  "last_slow": last_slow, "slowest": round(slowest, 3),
                  "failures": failures[:10]}))
"""


def _act_port() -> int:
    """A port of ACT_PORTS free on this machine now: the Act plays inside the namespaces,
    but `new_act` checks its port here, where another test's Production (drawn from 20000
    up) or another many-hosts run may hold 20100."""
    for port in ACT_PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {ACT_PORTS}")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


class Net:
    """A bridge and a namespace per host, named after this run; removed whole."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.bridge = f"bsbr{tag}"
        self.ns = {h: f"bs{h}{tag}" for h in (A, B, C)}
        self.veth = {h: f"bs{h}{tag}" for h in (A, B, C)}

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        for host, ns in self.ns.items():
            _ip("netns", "add", ns)
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            veth = self.veth[host]
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{ADDRESS[host]}/24", "dev", "eth0")
            _ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")

    def remove(self) -> None:
        for host, ns in self.ns.items():
            _ip("link", "del", self.veth[host], check=False)
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.bridge, check=False)

    def run(self, host: str, *args: str, **kwargs) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns[host], *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )


def _reason_no_namespaces() -> str:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"bsprobe{uuid.uuid4().hex[:6]}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"cannot make a network namespace: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return ""


@pytest.fixture
def hosts(shared_venue_path):
    reason = _reason_no_namespaces()
    if reason:
        pytest.skip(reason)
    net = Net()
    homes = {h: os.path.join(ROOT, f"mh{h}{uuid.uuid4().hex[:4]}") for h in (A, B, C)}
    HOMES.extend(homes.values())
    productions = {h: Production(home) for h, home in homes.items()}
    try:
        net.create()
        yield net, productions
    finally:
        for host in (A, B, C):
            _backstage(net, productions[host], "down", check=False)
        kill_all(processes_of(*homes.values()))
        net.remove()
        for production in productions.values():
            if shared_venue_path in production.spec.venues:
                production.declare(venues=())
        # the session's Venue as the other tests expect it: no Acts, no domains
        shutil.rmtree(os.path.join(shared_venue_path, "acts"), ignore_errors=True)
        os.makedirs(os.path.join(shared_venue_path, "acts"))
        shared = Venue(shared_venue_path, productions[B])
        if shared.spec.domains:
            shared.declare(domains=())


def _backstage(net: Net, production: Production, *args: str, check: bool = True) -> str:
    proc = net.run(
        _host_of(net, production),
        sys.executable,
        "-m",
        "backstage",
        "--home",
        production.home,
        *args,
        env=dict(os.environ, BACKSTAGE_HOME=production.home),
    )
    out, err = proc.communicate(timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"backstage {' '.join(args)} exited {proc.returncode}: {err}")
    return out


_HOSTS: dict[str, str] = {}


def _host_of(net: Net, production: Production) -> str:
    return _HOSTS[production.home]


def _loop(net: Net, seconds: float, stop: str = "") -> subprocess.Popen[str]:
    """The request loop; with `stop`, it ends early once that file is written."""
    if stop and os.path.exists(stop):
        os.unlink(stop)
    return net.run(A, sys.executable, "-c", LOOP, str(seconds), HOST, str(ROUTER_PORT), stop)


def _stop_after(stop: str, seconds: float) -> None:
    """The loop runs `seconds` more (what comes just after an event is watched too), then
    ends: not to its full length, which is only a bound for the event to happen in."""
    time.sleep(seconds)
    open(stop, "w").close()


def _result(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out)


def _wrk(net: Net) -> str:
    """Requests/s through A's router (wrk, 16 connections) when BACKSTAGE_BENCH_HOSTS is
    set and wrk is installed: the README's figures; else ""."""
    seconds = os.environ.get("BACKSTAGE_BENCH_HOSTS", "")
    if not seconds or shutil.which("wrk") is None:
        return ""
    proc = net.run(A, "wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Host: {HOST}",
                   f"http://127.0.0.1:{ROUTER_PORT}/")  # fmt: skip
    out, _ = proc.communicate(timeout=float(seconds) + 30)
    found = [line for line in out.splitlines() if "Requests/sec" in line or "Non-2xx" in line]
    return " ".join(" ".join(line.split()) for line in found)


def _nodes(router: Production) -> dict[str, int]:
    """Node address to requests, of the host's live nodes in A's router."""
    stats = router.router.stats()
    found: dict[str, int] = {}
    for subscription in stats.subscriptions if stats else ():
        if subscription.key == HOST:
            for node in subscription.nodes:
                if not node.death_mark:
                    found[node.name] = node.requests
    return found


@pytest.mark.slow
@pytest.mark.parametrize("run", range(5))  # five runs in a row: a rare loss shows
def test_many_hosts(hosts, shared_venue_path, tmp_path, run):
    net, productions = hosts
    a, b, c = productions[A], productions[B], productions[C]
    for host, production in productions.items():
        _HOSTS[production.home] = host
    act_port = _act_port()
    node = {h: f"{ADDRESS[h]}:{act_port}" for h in (B, C)}
    a.declare(ports=(20000, 20098), router=f"127.0.0.1:{ROUTER_PORT}",
              subscription_server=SUBSCRIPTIONS)  # fmt: skip
    for host in (B, C):
        productions[host].declare(
            ports=(20000, 20198),
            router=f"127.0.0.1:{ROUTER_PORT}",
            subscribe_to=(SUBSCRIPTIONS,),
            node_address=ADDRESS[host],
        )
    venue = Venue(shared_venue_path, b)
    if "example.com" not in venue.domains:
        venue.add_domain("example.com")
    act = venue.new_act("Shop", port=act_port, start=False)
    act.manager.declare(hosts=(HOST,), enabled=True)
    c.declare(venues=(shared_venue_path,))  # the same Venue: its files are only read

    # trust: B's domain key, imported by C, trusted by A's router
    bundle = str(tmp_path / "example.keys")
    _backstage(net, b, "keys", "export", venue.name, "-o", bundle)
    assert os.stat(bundle).st_mode & 0o777 == 0o600
    _backstage(net, c, "keys", "import", bundle)
    _backstage(net, a, "keys", "trust", "example.com", bundle, HOST)
    lost: list[str] = []  # request loops that lost more than they should (see the end)
    try:
        for production in (a, b, c):
            _backstage(net, production, "up")
        assert "subscriptions-sign-check" in a.router.render(a.crew.stageset)

        # requests at A's router reach the Act on B and on C
        poll(lambda: set(_nodes(a)) == {node[B], node[C]}, 20)
        result = _result(_loop(net, 3))
        assert result["failed"] == 0 and result["ok"] > 20, result
        served = _nodes(a)
        assert served[node[B]] > 0 and served[node[C]] > 0, served
        listing = _backstage(net, a, "gigs")
        assert f"{node[B]}  {ADDRESS[B]}  {HOST}" in listing, listing
        assert f"{node[C]}  {ADDRESS[C]}  {HOST}" in listing, listing

        two = _wrk(net)

        # B leaves under a request loop: no request fails
        stop = str(tmp_path / "stop")
        loop = _loop(net, 8, stop)
        time.sleep(2)
        _backstage(net, b, "down")
        assert node[B] not in _nodes(a)
        _stop_after(stop, 1.5)
        result = _result(loop)
        print(f"\nB left under load: {result}")
        if result["failed"]:
            lost.append(f"B left: {result}")

        one = _wrk(net)
        if one:
            print(f"wrk through A's router: one remote host {one}; two remote hosts {two}")

        # B comes back: served within 5 s of `up` returning
        _backstage(net, b, "up")
        back = time.monotonic()
        poll(lambda: node[B] in _nodes(a), 5)
        before = _nodes(a)[node[B]]
        _result(_loop(net, 0.5))
        assert _nodes(a)[node[B]] > before
        print(f"B served again {time.monotonic() - back:.2f} s after `up` returned")

        # an unsigned announce, and one signed with a key A does not trust, are refused
        intruder = f"{ADDRESS[C]}:9"
        send = (
            "import sys; from emperor.subscription import send_packet, subscription_packet;"
            f"send_packet({SUBSCRIPTIONS!r}, bytes.fromhex(sys.argv[1]))"
        )
        packet = subscription_packet(HOST, intruder)
        for _ in range(3):
            net.run(C, sys.executable, "-c", send, packet.hex(), cwd=os.getcwd()).communicate(
                timeout=30
            )
        time.sleep(1.5)
        assert intruder not in _nodes(a)

        # C's host dies (its link goes down, its processes play on unheard): how long
        # until no request goes there; then it comes back and is served again
        loop = _loop(net, 12, stop)
        started = time.monotonic()
        time.sleep(1)
        died = time.monotonic() - started
        _ip("link", "set", net.veth[C], "down")
        poll(lambda: node[C] not in _nodes(a), 12)
        out = time.monotonic() - started - died
        _stop_after(stop, 2)
        result = _result(loop)
        last = max(result["last_failed"], result["last_slow"])
        hurt = f"{last - died:.2f} s after" if last >= 0 else "none"
        print(
            f"C's host died: {result}; requests failed or waited: {hurt}; its node out "
            f"of A's router after {out:.2f} s"
        )
        # The one request the loop may have had at C as its link went down is lost (C
        # had accepted it, and its answer never comes); every other goes to B, or waits
        # at most the router's 2 s connect timeout on C and is sent on to B.
        if result["failed"] > 1:
            lost.append(f"C's host died: {result}")
        _ip("link", "set", net.veth[C], "up")
        returned = time.monotonic()
        poll(lambda: node[C] in _nodes(a), 5)
        print(f"C's host back: served again after {time.monotonic() - returned:.2f} s")

        # C's processes killed with -9: how long until no request goes there
        loop = _loop(net, 12, stop)
        time.sleep(1)
        killed = time.monotonic()
        kill_all(processes_of(c.home))
        poll(lambda: node[C] not in _nodes(a), 12)
        out = time.monotonic()
        _stop_after(stop, 2)
        result = _result(loop)
        sent = [at for at, _ in result["failures"]]
        print(
            f"C killed: {result}; requests failed for {max(sent, default=killed) - killed:.2f} s "
            f"after the kill; its node out of A's router after {out - killed:.2f} s"
        )
        # Its processes die one by one, and until the last one that holds its socket is
        # gone C accepts connections and drops them: each request it had taken then is
        # lost (one, or two under load), cut off; one sent once A's router had taken C
        # out, or answered otherwise, is not, nor are more than a few.
        cut_off = {"RemoteDisconnected", "ConnectionResetError", "IncompleteRead"}
        reasons = {why for _, why in result["failures"]}
        if result["failed"] > 3 or any(at > out for at in sent) or reasons - cut_off:
            lost.append(f"C killed: {result}")
        # Before the connect timeout was 2 s, requests were lost here in some runs: after
        # one node had left, a connect to the other that began late in a second and was
        # done early in the next was failed by the 1 s timeout (uWSGI counts it in whole
        # seconds), the node marked failed, and the host's requests answered 503 by the
        # fallback until it announced itself again, a second later; with two nodes the
        # request had been passed to the other one.
        assert not lost, f"requests lost: {'; '.join(lost)}"
    finally:
        for production in (a, b, c):
            _backstage(net, production, "down", check=False)
