"""The router under load, for real: a steady wrk through it to one Act, a flood of
unknown Hosts, and the Production's own logs rotating by size."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess

import pytest

from backstage.files.fs import log_backups
from emperor.process import read_pidfile
from emperor.subscription import send_packet, subscription_packet
from tests.gigs_helpers import named_act
from tests.helpers import http_get, poll

# Counts the answers by status across wrk's threads and prints them after its summary.
STATUSES = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\\n", status, n)) end
end
"""


def wrk(port: int, host: str, seconds: int, connections: int, script: str) -> dict[str, int]:
    """wrk's counts: `requests`, the socket errors (`connect`, `read`, `write`,
    `timeout`), and `status NNN` for each status answered."""
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script,
         "-H", f"Host: {host}", "-H", "Connection: close", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    out = done.stdout
    counts = {"requests": int(re.search(r"(\d+) requests in", out).group(1))}  # type: ignore[union-attr]
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    values = errors.groups() if errors else ("0",) * 4  # wrk prints none when there are none
    counts.update(zip(("connect", "read", "write", "timeout"), map(int, values), strict=True))
    for status, n in re.findall(r"^status (\d+) (\d+)$", out, re.MULTILINE):
        counts[f"status {status}"] = int(n)
    print(f"\nwrk -c{connections} {seconds} s, Host {host}: {counts}")
    return counts


def answered_all(counts: dict[str, int], status: int) -> None:
    """Every request answered `status`, and no socket error."""
    assert counts["requests"] > 0
    assert {k: v for k, v in counts.items() if k.startswith("status")} == {
        f"status {status}": counts["requests"]
    }
    assert counts["connect"] == counts["read"] == counts["write"] == counts["timeout"] == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")
def test_a_steady_load_through_the_router_is_answered_whole(production, venue, tmp_path):
    script = str(tmp_path / "statuses.lua")
    with open(script, "w") as out:
        out.write(STATUSES)
    venue.add_domain("example.test")
    act = named_act(venue, "Steady")
    act.book("steady.example.test")
    port = production.router.port
    # Far more connections than workers: the Act's listen queue holds them (uWSGI's 100
    # did not: the router's connect failed and clients got no answer at all)
    answered_all(wrk(port, "steady.example.test", 10, 128, script), 200)

    # a flood of Hosts nobody plays: each a 404 from the router's own worker, and its
    # log a line every few seconds, not one per request
    log = production.router.log_path
    before = os.path.getsize(log)
    answered_all(wrk(port, "nobody.example.test", 5, 128, script), 404)
    grown = os.path.getsize(log) - before
    print(f"router.log grew {grown} bytes under the flood")
    assert grown < 2048

    # clients that hang up at once (a reset): no line each either
    before = os.path.getsize(log)
    for _ in range(1000):
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: nobody.example.test\r\n\r\n")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert http_get(port, host="steady.example.test")[0] == 200  # and then a line at most
    grown = os.path.getsize(log) - before
    print(f"router.log grew {grown} bytes for 1,000 clients that reset")
    assert grown < 2048


def test_the_productions_own_logs_rotate_by_size(production, venue):
    production.declare(log_max=2048, log_keep=2)
    layout = production.layout
    act = named_act(venue, "Logs")
    router_log = production.router.log_path

    # router.log: uWSGI rotates it; each new key announced is a line or two in it
    for batch in range(4):
        for key in range(30):
            packet = subscription_packet(f"k{batch}-{key}.rotate.test", "/nonexistent.sock")
            send_packet(production.router.subscription_path, packet)
        poll(lambda b=batch: len(log_backups(router_log)) >= min(b + 1, 2), 15)
    # the Manager keeps the newest log_keep copies of it
    poll(lambda: len(log_backups(router_log)) == 2, 10)
    assert all(os.path.getsize(backup) > 2048 for backup in log_backups(router_log))

    # emperor.log and manager.log: the Manager rotates them, and their writers go on.
    # The Emperor's writes a few lines for each Act that starts; the keeper writes to
    # manager.log too, as this test does here
    with open(layout.manager_log, "a") as other:
        other.write("a line of another writer\n" * 100)
    act.stop()
    act.start()
    for log in (layout.emperor_log, layout.manager_log):
        poll(lambda log=log: log_backups(log), 20)
    act.stop()
    act.start()
    for log in (layout.emperor_log, layout.manager_log):
        poll(lambda log=log: os.path.getsize(log) > 0, 20)
        with open(log, "rb") as written:
            head = written.read(64)
        assert not head.startswith(b"\0"), f"{log} has a hole where the old lines were"
        assert len(log_backups(log)) <= 2

    # keeper.log: the keeper's uWSGI rotates it past log_max when its master next looks
    # (each second), by the offset of its own writes: here the keeper, killed, is
    # started again and writes its lines after the ones this test wrote
    keeper_log = layout.keeper_log
    with open(keeper_log, "a") as log:
        log.write("a line of the keeper\n" * 150)
    kept_by = poll(lambda: read_pidfile(layout.keeper_pidfile), 10)
    os.kill(kept_by, signal.SIGKILL)
    (backup,) = poll(lambda: log_backups(keeper_log), 20)
    assert os.path.getsize(backup) > 2048
    poll(lambda: read_pidfile(layout.keeper_pidfile) not in (None, kept_by), 20)
