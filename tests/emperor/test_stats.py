"""Stats parsing, on bytes recorded from a real uWSGI 2.0.31; and read_stats, on tiny servers.

The files in data/ were recorded from real processes (a vassal with two workers after ten
requests, an Emperor on a zmq monitor with one loyal and one blacklisted vassal, an http router
with three subscribed nodes, an http router with `http-cheap` gone cheap once its only node
was unsubscribed: router_stats_cheap.json), except router_stats_trailing_comma.json: that one is
router_stats.json EDITED BY HAND to add the trailing comma uWSGI leaves in a router's address
list when two routers share an instance.
"""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from emperor import statswire
from emperor.errors import StatsUnavailable, StatsUnparsable
from emperor.stats import (
    parse_emperor_stats,
    parse_instance_stats,
    parse_json_lenient,
    parse_router_stats,
    read_many,
    read_stats,
)

DATA = Path(__file__).parent / "data"

# The header uWSGI 2.0.31 writes before the JSON with `stats-http`, as seen on the wire.
STATS_HTTP_HEADER = (
    b"HTTP/1.0 200 OK\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Content-Type: application/json\r\n\r\n"
)


def recorded(name: str) -> tuple[bytes, dict[str, Any]]:
    raw = (DATA / name).read_bytes()
    return raw, json.loads(raw)


# --- an instance's stats ----------------------------------------------------------------------


def test_instance_stats_from_a_real_vassal() -> None:
    raw, doc = recorded("vassal_stats.json")
    stats = parse_instance_stats(raw)

    assert stats.version == "2.0.31"
    assert stats.pid == doc["pid"]
    assert stats.cwd == doc["cwd"]
    assert [(s.name, s.proto) for s in stats.sockets] == [(doc["sockets"][0]["name"], "http")]
    assert [w.id for w in stats.workers] == [1, 2]
    assert [w.pid for w in stats.workers] == [w["pid"] for w in doc["workers"]]
    assert all(w.pid != stats.pid for w in stats.workers)
    assert stats.requests == 10
    assert stats.requests == sum(w.requests for w in stats.workers)
    assert stats.rss == sum(w["rss"] for w in doc["workers"]) > 0
    assert all(w.vsz > w.rss for w in stats.workers)
    assert stats.exceptions == 0
    assert (stats.idle, stats.busy, stats.accepting) == (2, 0, True)
    assert stats.workers[0].accepting is True
    assert stats.workers[1].avg_rt == doc["workers"][1]["avg_rt"]


def test_instance_properties_count_statuses() -> None:
    stats = parse_instance_stats(
        b'{"workers":[{"status":"busy","accepting":0,"exceptions":2},'
        b'{"status":"idle","accepting":0},{"status":"cheap","accepting":0}]}'
    )
    assert (stats.busy, stats.idle, stats.exceptions, stats.accepting) == (1, 1, 2, False)


def test_instance_stats_are_lenient() -> None:
    stats = parse_instance_stats(
        b'{"pid":"42","load":1.0,"novel":{"x":1},"sockets":"none",'
        b'"workers":[{"id":1,"accepting":"1","requests":3.7,"status":null,"rss":true},"junk",'
        b'{"id":"2","accepting":"0"}]}'
    )
    assert (stats.pid, stats.load, stats.version, stats.sockets) == (42, 1, "", ())
    worker, other = stats.workers
    assert (other.id, other.accepting) == (2, False)
    assert (worker.accepting, worker.requests, worker.status, worker.rss) == (True, 3, "", 1)
    assert (worker.pid, worker.avg_rt) == (0, 0)


# --- the Emperor's stats ----------------------------------------------------------------------


def test_emperor_stats_from_a_real_emperor() -> None:
    raw, doc = recorded("emperor_stats.json")
    stats = parse_emperor_stats(raw)

    assert stats.version == "2.0.31"
    assert stats.pid == doc["pid"]
    assert stats.monitors == ("zmq://ipc:///tmp/strec/e.ipc",)
    assert stats.throttle_level == 0

    good = stats.vassal("good.ini")
    assert good is not None
    assert good.pid == doc["vassals"][0]["pid"] != stats.pid
    assert (good.loyal, good.ready, good.accepting, good.cursed) == (1, 1, 1, 0)
    assert good.born > 1_600_000_000
    assert good.on_demand == ""
    assert not stats.blacklisted("good.ini")

    assert stats.vassal("broken.ini") is None
    assert stats.blacklisted("broken.ini")
    (entry,) = stats.blacklist
    assert (entry.id, entry.throttle_level) == ("broken.ini", 1)
    assert entry.first_attempt == doc["blacklist"][0]["first_attempt"]


def test_a_vassal_that_reads_the_same_is_not_built_again() -> None:
    raw, doc = recorded("emperor_stats.json")
    assert parse_emperor_stats(raw).vassals[0] is parse_emperor_stats(raw).vassals[0]
    first = parse_emperor_stats(json.dumps(doc).encode())
    good = doc["vassals"][0]
    doc["vassals"].append({**good, "id": "/abs/path/other.ini", "last_heartbeat": 1})
    second = parse_emperor_stats(json.dumps(doc).encode())
    assert second.vassals[0] is first.vassals[0]  # the same fields: the same entry
    moved = {**good, "last_heartbeat": good["last_heartbeat"] + 1}
    third = parse_emperor_stats(json.dumps({**doc, "vassals": [moved]}).encode())
    assert third.vassals[0] is not second.vassals[0]
    assert third.vassals[0].last_heartbeat == good["last_heartbeat"] + 1
    # an odd value (a list) is parsed, not used as a key
    odd = parse_emperor_stats(json.dumps({"vassals": [{**good, "zerg": [1]}]}).encode())
    assert odd.vassals[0].zerg == 0
    # a brace in a string: the document is parsed whole, and reads the same
    braced = {**doc, "vassals": [{**good, "id": "a}{b.ini"}, good]}
    parsed = parse_emperor_stats(json.dumps(braced).encode())
    assert [v.id for v in parsed.vassals] == ["a}{b.ini", good["id"]]
    assert parsed.vassals[1].last_heartbeat == good["last_heartbeat"]
    for odd_id in ("a{b.ini", "a}b.ini", 'a"}b.ini', "a},{b.ini"):
        braced = {**doc, "vassals": [good, {**good, "id": odd_id}, good]}
        parsed = parse_emperor_stats(json.dumps(braced, indent=1).encode())
        assert [v.id for v in parsed.vassals] == [good["id"], odd_id, good["id"]]
    # something between two vassals that is not an object: parsed whole, left out
    raw_doc = json.dumps({**doc, "vassals": [good, good]})
    junk = raw_doc.replace("}, {", '}, "x", {', 1).encode()
    assert [v.id for v in parse_emperor_stats(junk).vassals] == [good["id"]] * 2
    # plain names are kept with the entry: the same entry, the same plain one
    second = parse_emperor_stats(json.dumps(doc).encode())
    assert second.by_plain_names().vassal("other.ini") is not None
    again = parse_emperor_stats(json.dumps(doc).encode())
    assert again.by_plain_names().vassals[-1] is second.by_plain_names().vassals[-1]


def test_empty_emperor_stats_default_everything() -> None:
    stats = parse_emperor_stats(b"{}")
    assert (stats.version, stats.pid, stats.monitors, stats.vassals, stats.blacklist) == (
        "",
        0,
        (),
        (),
        (),
    )
    assert stats.vassal("x.ini") is None
    assert not stats.blacklisted("x.ini")


# --- a router's stats -------------------------------------------------------------------------


def test_router_stats_from_a_real_http_router() -> None:
    raw, doc = recorded("router_stats.json")
    stats = parse_router_stats(raw)

    assert stats.pid == doc["pid"]
    assert stats.active_sessions == 0
    # uWSGI lists the subscription server's address after the bound one
    assert stats.addresses == tuple(doc["http"])
    assert len(stats.addresses) == 2

    a = stats.subscription("a.example.com")
    assert a is not None
    assert a.hits == 4
    (raw_a,) = [s for s in doc["subscriptions"] if s["key"] == "a.example.com"]
    assert len(a.nodes) == 2
    assert [n.name for n in a.nodes] == [n["name"] for n in raw_a["nodes"]]
    assert sum(n.requests for n in a.nodes) == 4
    assert all((n.weight, n.cores, n.death_mark, n.pid) == (1, 1, 0, 0) for n in a.nodes)

    b = stats.subscription("b.example.com")
    assert b is not None
    assert (b.hits, len(b.nodes), b.nodes[0].requests) == (2, 1, 2)
    assert b.nodes[0].rx > b.nodes[0].tx > 0

    assert stats.subscription("c.example.com") is None


def test_router_stats_with_the_trailing_comma_bug() -> None:
    # router_stats_trailing_comma.json is hand-edited: see the module docstring
    raw = (DATA / "router_stats_trailing_comma.json").read_bytes()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    clean = parse_router_stats((DATA / "router_stats.json").read_bytes())
    assert parse_router_stats(raw) == clean


def test_router_addresses_under_another_router_name() -> None:
    stats = parse_router_stats(b'{"pid":7,"fastrouter":["/tmp/fr.sock",],"cheap":0}')
    assert (stats.pid, stats.addresses, stats.subscriptions) == (7, ("/tmp/fr.sock",), ())


# --- lenient JSON -----------------------------------------------------------------------------


def test_stats_http_header_is_stripped() -> None:
    raw, doc = recorded("vassal_stats.json")
    assert parse_json_lenient(STATS_HTTP_HEADER + raw) == doc
    assert parse_instance_stats(STATS_HTTP_HEADER + raw) == parse_instance_stats(raw)


def test_trailing_commas_are_dropped_outside_strings() -> None:
    assert parse_json_lenient(b'{"a":[1,2,],"b":{"c":1,},}') == {"a": [1, 2], "b": {"c": 1}}
    assert parse_json_lenient(b'{"v":["x,]", "y\\",}",\n\t]}') == {"v": ["x,]", 'y",}']}


def test_invalid_utf8_and_raw_control_characters_are_tolerated() -> None:
    assert parse_json_lenient(b'{"cwd":"/srv/\xff","v":"a\tb"}') == {
        "cwd": "/srv/\ufffd",
        "v": "a\tb",
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b'{"a":',
        b"[1, 2]",
        b'"text"',
        b"HTTP/1.0 500 Internal Server Error\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nnot json",
        b'{"a":[1,,]}',
    ],
)
def test_garbage_is_unparsable(raw: bytes) -> None:
    with pytest.raises(StatsUnparsable):
        parse_json_lenient(raw)


def test_parsers_raise_unparsable_too() -> None:
    for parse in (parse_instance_stats, parse_emperor_stats, parse_router_stats):
        with pytest.raises(StatsUnparsable):
            parse(b"<html>")


# --- read_stats -------------------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are limited to 108 bytes: stay out of pytest's deep tmp_path
    with tempfile.TemporaryDirectory(prefix="st-", dir="/tmp") as path:
        yield Path(path)


Serve = Callable[[socket.socket, threading.Event], object]


class TinyServer:
    """Accepts connections on a listening socket in a thread and hands each to ``serve``, with
    an event that is set when the test is done."""

    def __init__(self, listener: socket.socket, serve: Serve) -> None:
        self.listener = listener
        self.serve = serve
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                self.serve(conn, self.stop)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def unix_listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(8)
    return sock


def answer(payload: bytes) -> Serve:
    return lambda conn, stop: conn.sendall(payload)


def test_read_stats_returns_everything_until_close(short_dir: Path) -> None:
    raw = (DATA / "vassal_stats.json").read_bytes() * 200  # several recv() calls
    path = short_dir / "s.sock"
    with TinyServer(unix_listener(path), answer(raw)):
        assert read_stats(str(path)) == raw


def test_read_stats_over_tcp() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    raw = (DATA / "emperor_stats.json").read_bytes()
    with TinyServer(listener, answer(raw)):
        assert read_stats(f"127.0.0.1:{port}") == raw
        assert parse_emperor_stats(read_stats(f":{port}")).blacklisted("broken.ini")


def test_read_stats_missing_path(short_dir: Path) -> None:
    path = short_dir / "nothing.sock"
    with pytest.raises(StatsUnavailable, match=str(path)):
        read_stats(str(path))


def test_read_stats_refused(short_dir: Path) -> None:
    path = short_dir / "dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: ECONNREFUSED
    with pytest.raises(StatsUnavailable, match="refused"):
        read_stats(str(path))


def test_read_stats_refused_over_tcp() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(StatsUnavailable, match=f"127.0.0.1:{port}"):
            read_stats(f"127.0.0.1:{port}")


def test_read_stats_empty_answer(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with (
        TinyServer(unix_listener(path), answer(b"")),
        pytest.raises(StatsUnavailable, match="without answering"),
    ):
        read_stats(str(path))


def test_read_stats_silent_server_times_out(short_dir: Path) -> None:
    path = short_dir / "s.sock"
    with TinyServer(unix_listener(path), lambda conn, stop: stop.wait(10)):
        started = time.monotonic()
        with pytest.raises(StatsUnavailable, match=str(path)):
            read_stats(str(path), timeout=0.3)
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.0


def test_read_stats_deadline_covers_a_trickling_server(short_dir: Path) -> None:
    path = short_dir / "s.sock"

    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        # one byte every 50 ms until the test ends: only an overall deadline stops the reader
        while not stop.wait(0.05):
            try:
                conn.sendall(b" ")
            except OSError:
                return

    with TinyServer(unix_listener(path), trickle):
        started = time.monotonic()
        with pytest.raises(StatsUnavailable, match="did not answer"):
            read_stats(str(path), timeout=0.3)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0


def test_stats_or_none_reads_a_stopped_instance_as_none(tmp_path):
    from emperor.stats import parse_instance_stats, stats_or_none

    assert stats_or_none(str(tmp_path / "gone.stats"), parse_instance_stats, 0.2) is None


def test_vassals_pushed_by_path_are_named_plainly() -> None:
    raw, _ = recorded("emperor_stats.json")
    raw = raw.replace(b'"good.ini"', b'"/r/configs/good.ini"').replace(
        b'"broken.ini"', b'"/r/configs/broken.ini"'
    )
    stats = parse_emperor_stats(raw)
    assert stats.vassal("good.ini") is None  # the Emperor lists them by their path
    plain = stats.by_plain_names()
    assert plain.vassal("good.ini") is not None
    assert plain.blacklisted("broken.ini")


def test_read_many_reads_every_server_at_once_and_says_what_failed(short_dir: Path) -> None:
    raw = (DATA / "vassal_stats.json").read_bytes() * 50  # several recv() calls
    tcp = socket.create_server(("127.0.0.1", 0))
    paths = [short_dir / name for name in ("a.sock", "b.sock", "silent.sock", "empty.sock")]
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(short_dir / "dead.sock"))
    dead.close()  # nobody listens: refused
    with (
        TinyServer(unix_listener(paths[0]), answer(raw)),
        TinyServer(unix_listener(paths[1]), answer(b"{}")),
        TinyServer(unix_listener(paths[2]), lambda conn, stop: stop.wait(10)),
        TinyServer(unix_listener(paths[3]), answer(b"")),
        TinyServer(tcp, answer(b'{"pid": 1}')),
    ):
        addresses = [str(path) for path in paths]
        addresses += [f"127.0.0.1:{tcp.getsockname()[1]}", str(short_dir / "nothing.sock")]
        addresses.append(str(short_dir / "dead.sock"))
        found = read_many(addresses, timeout=0.5)
    assert found[:2] == [raw, b"{}"] and found[4] == b'{"pid": 1}'
    said = [str(answer) for answer in found[2:4] + found[5:]]
    assert all(isinstance(answer, StatsUnavailable) for answer in found[2:4] + found[5:])
    assert "did not answer within 0.5 s" in said[0] and "without answering" in said[1]
    assert "no such socket" in said[2] and "refused" in said[3]


def test_read_many_reads_a_few_at_a_time_in_order(short_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(statswire, "AT_ONCE", 2)  # each read is an open file
    paths = [short_dir / f"{n}.sock" for n in range(5)]
    with contextlib.ExitStack() as servers:
        for n, path in enumerate(paths):
            servers.enter_context(TinyServer(unix_listener(path), answer(b"%d" % n)))
        assert read_many([str(path) for path in paths], 1.0) == [b"0", b"1", b"2", b"3", b"4"]
