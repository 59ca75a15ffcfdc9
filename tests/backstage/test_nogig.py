"""The router's fallback app on plain WSGI environs: fold, redirect, 503, 404, 400."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import threading

import pytest

from backstage.control.processes.router import Router
from backstage.model.layout import Layout
from backstage.model.spec import ProductionSpec
from backstage.scripts import nogig
from backstage.scripts.nogig import Booked, fold, respond
from emperor import subscription

BOOKED = {"host.example.test": (), "host.example.test:8123": (), "upper.example.test": ()}


def call(host: str | None, uri: str = "/a/b?c=1", scheme: str = "http", booked=BOOKED):
    environ: dict[str, object] = {"REQUEST_URI": uri, "wsgi.url_scheme": scheme}
    if host is not None:
        environ["HTTP_HOST"] = host
    seen: dict[str, object] = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(respond(environ, start_response, booked))
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["Content-Length"] == str(len(body))
    return str(seen["status"])[:3], headers, body


@pytest.mark.parametrize(
    "sent, folded",
    [
        ("host.example.test", "host.example.test"),
        ("HOST.Example.TEST", "host.example.test"),
        ("host.example.test.", "host.example.test"),
        ("Host.Example.Test.:8123", "host.example.test:8123"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("[::1]:8000", "[::1]:8000"),
        ("[::1]", "[::1]"),
        ("backstage-no-gig", "backstage-no-gig"),
    ],
)
def test_fold(sent, folded):
    assert fold(sent) == folded


@pytest.mark.parametrize(
    "sent",
    [
        "",
        "host..example.test",
        "host.example.test..",
        ".host.example.test",
        "host.example.test:",
        "host.example.test:0",
        "host.example.test:99999",
        "host.example.test:80a",
        "host example.test",
        "host/example.test",
        "hôst.example.test",
        "-host.example.test",
        "a:b:c",
        "[::1",
        "[::1]x",
        "[zz]",
        "x" * 64 + ".example.test",
        "evil.test@host.example.test",
    ],
)
def test_fold_refuses_what_is_no_host(sent):
    assert fold(sent) is None


def test_a_booked_host_sent_otherwise_is_redirected_with_its_port_and_uri():
    status, headers, _ = call("UPPER.EXAMPLE.TEST")
    assert (status, headers["Location"]) == ("308", "http://upper.example.test/a/b?c=1")
    status, headers, _ = call("host.example.test.:8123", uri="/x", scheme="https")
    assert (status, headers["Location"]) == ("308", "https://host.example.test:8123/x")


def test_the_location_keeps_to_the_booked_host():
    # An absolute-form or odd request target never leaves the booked host.
    for uri in ("http://evil.test/", "//evil.test/", "/a\r\nSet-Cookie: x", ""):
        status, headers, _ = call("HOST.EXAMPLE.TEST", uri=uri)
        assert status == "308"
        location = headers["Location"]
        assert location.startswith("http://host.example.test/")
        assert location in ("http://host.example.test/", "http://host.example.test//evil.test/")
    status, headers, _ = call("HOST.EXAMPLE.TEST", scheme="javascript")
    assert headers["Location"].startswith("http://host.example.test/")


def test_acmes_challenge_of_a_booked_host_nobody_plays_is_answered(tmp_path):
    (tmp_path / "t0k-3n_").write_text("t0k-3n_.thumbprint")
    (tmp_path / "secret").write_text("not an answer")

    def ask(host: str, path: str) -> tuple[int, bytes]:
        environ = {"HTTP_HOST": host, "PATH_INFO": path, "REQUEST_URI": path}
        seen: list[str] = []
        body = b"".join(respond(environ, lambda s, h: seen.append(s), BOOKED, str(tmp_path)))
        return int(seen[0][:3]), body

    known = "/.well-known/acme-challenge/t0k-3n_"
    assert ask("host.example.test:8123", known) == (200, b"t0k-3n_.thumbprint")
    # the answer of a token only, for a booked host only
    assert ask("nobody.example.test", known)[0] == 404
    assert ask("host.example.test", "/.well-known/acme-challenge/../secret")[0] == 503
    assert ask("host.example.test", "/.well-known/acme-challenge/none")[0] == 503
    assert ask("host.example.test", "/t0k-3n_")[0] == 503


def test_a_booked_host_nobody_plays_is_503_with_retry_after():
    status, headers, body = call("host.example.test:8123")
    assert (status, headers["Retry-After"]) == ("503", "2")
    assert b"not playing" in body
    assert "Location" not in headers


def test_an_unbooked_host_is_404_in_any_case():
    for host in ("other.example.test", "OTHER.example.test.", "backstage-no-gig", "127.0.0.1"):
        status, headers, _ = call(host)
        assert status == "404"
        assert "Location" not in headers
    # a booked host at a port the router does not listen on is no key of it
    assert call("HOST.EXAMPLE.TEST:9999")[0] == "404"


def test_a_bad_or_missing_host_is_400():
    assert call("host..example.test")[0] == "400"
    assert call("a b")[0] == "400"
    assert call(None)[0] == "400"


def test_booked_keys_are_read_again_when_the_file_changes(tmp_path):
    path = tmp_path / "booked.json"
    booked = Booked(str(path))
    assert booked.keys() == frozenset()
    path.write_text(json.dumps({"a.example.test": ["/run/a.sock"]}))
    assert booked.nodes() == {"a.example.test": ("/run/a.sock",)}
    replacement = tmp_path / "new.json"
    replacement.write_text(json.dumps({"b.example.test": [], "b.example.test:8000": [3], "c": 1}))
    os.replace(replacement, path)
    assert booked.nodes() == {"b.example.test": (), "b.example.test:8000": ()}
    path.write_text("{")  # never written so by Backstage, which replaces it whole
    assert booked.keys() == {"b.example.test", "b.example.test:8000"}
    path.unlink()
    assert booked.keys() == frozenset()
    path.write_text(json.dumps(["old.example.test", 3]))  # as an older Manager wrote it
    assert booked.nodes() == {"old.example.test": ()}


def test_the_app_reads_the_file_named_by_its_env(tmp_path, monkeypatch):
    path = tmp_path / "booked.json"
    path.write_text(json.dumps({"x.example.test": []}))
    monkeypatch.setattr(nogig, "_booked", Booked(str(path)))
    seen = []
    body = nogig.application(
        {"HTTP_HOST": "X.example.test", "REQUEST_URI": "/"}, lambda s, h: seen.append(s)
    )
    assert seen == ["308 Permanent Redirect"] and body


def test_the_router_writes_the_booked_keys_only_when_they_change(tmp_path):
    layout = Layout(str(tmp_path))
    os.makedirs(layout.run_dir)
    router = Router(layout, lambda: ProductionSpec(router="127.0.0.1:8123"))
    assert router.booked_path == layout.router_booked
    assert router.write_booked({"b.example.test": ["/b", "/c"], "a.example.test": []})
    keys = {
        "a.example.test": [],
        "a.example.test:8123": [],
        "b.example.test": ["/b", "/c"],
        "b.example.test:8123": ["/b", "/c"],
    }
    with open(router.booked_path) as written:
        assert json.load(written) == keys
    assert oct(os.stat(router.booked_path).st_mode & 0o777) == "0o600"
    assert not router.write_booked({"a.example.test": [], "b.example.test": ["/b", "/c"]})
    assert router.write_booked({})
    assert Booked(router.booked_path).keys() == frozenset()


class Node:
    """A uwsgi-protocol server at a unix socket, in a thread: it answers each request
    with `answer` and keeps what it was sent, as an Act's worker would."""

    def __init__(self, path: str, answer: bytes = b"", accept: bool = True) -> None:
        self.path, self.answer = path, answer
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        if accept:
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while len(data) < 4 or len(data) < 4 + struct.unpack("<H", data[1:3])[0]:
                    data += conn.recv(65536)
                size = struct.unpack("<H", data[1:3])[0]
                env, pos, end = {}, 4, 4 + size
                while pos < end:
                    (n,) = struct.unpack("<H", data[pos : pos + 2])
                    key = data[pos + 2 : pos + 2 + n].decode()
                    pos += 2 + n
                    (n,) = struct.unpack("<H", data[pos : pos + 2])
                    env[key] = data[pos + 2 : pos + 2 + n].decode("latin-1")
                    pos += 2 + n
                body = data[end:]
                while len(body) < int(env.get("CONTENT_LENGTH") or 0):
                    body += conn.recv(65536)
                self.got.append((env, body))
                conn.sendall(self.answer)

    def close(self) -> None:
        self.listener.close()


def passed(environ: dict[str, object], nodes: tuple[str, ...]):
    seen: dict[str, object] = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, headers

    body = respond(environ, start_response, {"host.example.test": nodes})
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return seen["status"], seen["headers"], data


def test_a_booked_host_is_passed_to_the_first_of_its_acts_that_listens(tmp_path):
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nmade!"
    )
    node = Node(str(tmp_path / "act.sock"), answer)
    try:
        environ = {
            "HTTP_HOST": "host.example.test",
            "REQUEST_METHOD": "POST",
            "REQUEST_URI": "/x?y=1",
            "PATH_INFO": "/x",
            "QUERY_STRING": "y=1",
            "CONTENT_LENGTH": "4",
            "REMOTE_ADDR": "192.0.2.7",
            "HTTP_X_NAME": "caf\xe9",
            "wsgi.input": io.BytesIO(b"body and more"),
            "wsgi.url_scheme": "http",
            "uwsgi.node": b"router",
        }
        gone = str(tmp_path / "gone.sock")  # a stopped Act's: nothing listens
        status, headers, body = passed(environ, (gone, node.path))
        assert (status, body) == ("201 Created", b"made!")
        # its headers as it sent them, but hop-by-hop ones: the router says its own
        assert headers == [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-Length", "5"),
        ]
        ((env, sent),) = node.got
        # the request as the router would have passed it: its variables, not the
        # server's own entries, and exactly CONTENT_LENGTH bytes of its body
        assert env == {k: v for k, v in environ.items() if isinstance(v, str) and "." not in k}
        assert sent == b"body"
    finally:
        node.close()


def test_a_booked_host_none_of_whose_acts_listens_is_503(tmp_path):
    status, headers, body = passed({"HTTP_HOST": "host.example.test"}, (str(tmp_path / "x"),))
    assert status.startswith("503") and ("Retry-After", "2") in headers


def test_an_act_that_takes_the_request_and_closes_is_502(tmp_path):
    node = Node(str(tmp_path / "act.sock"), b"")
    try:
        status, _, body = passed({"HTTP_HOST": "host.example.test"}, (node.path,))
        assert status.startswith("502") and b"without an answer" in body
    finally:
        node.close()


def test_so_many_requests_are_passed_at_once_and_no_more(tmp_path, monkeypatch):
    """An Act that never answers holds a thread of the worker each request: past
    PASSING_AT_ONCE the others wait PLACE_WAIT for a place, then are answered 503, and
    each one passed lets its place go when it ends."""
    monkeypatch.setattr(nogig, "PASS_WAIT", 0.2)
    monkeypatch.setattr(nogig, "PLACE_WAIT", 0.1)
    silent = Node(str(tmp_path / "silent.sock"), accept=False)  # a held, idle backlog
    try:
        for _ in range(3):
            status, _, body = passed({"HTTP_HOST": "host.example.test"}, (silent.path,))
            assert status.startswith("502") and b"timed out" in body
        for _ in range(nogig.PASSING_AT_ONCE):  # as many passing now as may be
            assert nogig._passing.acquire(blocking=False)
        status, _, _ = passed({"HTTP_HOST": "host.example.test"}, (silent.path,))
        assert status.startswith("503")
        for _ in range(nogig.PASSING_AT_ONCE):
            nogig._passing.release()
        status, _, _ = passed({"HTTP_HOST": "host.example.test"}, (silent.path,))
        assert status.startswith("502")
    finally:
        silent.close()


def test_split_head():
    assert nogig.split_head(b"HTTP/1.1 200 OK\r\nA: b") is None
    assert nogig.split_head(b"HTTP/1.0 404 Not Found\r\nKeep-Alive: 5\r\nX: y\r\n\r\nrest") == (
        "404 Not Found",
        [("X", "y")],
        b"rest",
    )
    for bad in (
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
    ):
        with pytest.raises(ValueError):
            nogig.split_head(bad)


def test_what_was_answered_is_said_once_a_while_with_the_counts():
    now = [100.0]
    tally = nogig.Tally(every=10, clock=lambda: now[0])
    # the first answer after a quiet spell at once
    first = tally.count("404 Not Found", "a.test")
    assert first == "backstage-no-gig: answered 1 x 404, e.g. Host 'a.test'"
    # a flood: nothing more within the interval, then one line with the counts
    for step in range(1000):
        now[0] = 100.0 + step * 0.009
        assert tally.count("404 Not Found", f"h{step}.test") is None
    now[0] = 110.0
    assert tally.count("503 Service Unavailable", "b.test") == (
        "backstage-no-gig: answered 1000 x 404, 1 x 503 in 10 s, e.g. Host 'h0.test'"
    )
    now[0] = 125.0
    line = tally.count("400 Bad Request", "x" * 500)
    assert line is not None and len(line) < 150  # a client's Host, cut short


def test_the_app_logs_no_line_per_request(monkeypatch, capsys):
    monkeypatch.setattr(nogig, "_tally", nogig.Tally(every=3600))
    for _ in range(50):
        nogig.application({"HTTP_HOST": "nobody.test", "REQUEST_URI": "/"}, lambda s, h: None)
    assert capsys.readouterr().err.splitlines() == [
        "backstage-no-gig: answered 1 x 404, e.g. Host 'nobody.test'"
    ]


def test_the_fallback_is_announced_ahead_of_what_waits(tmp_path):
    """As in the router's master before its HTTP process runs: the subscription socket
    is bound and Acts' announces wait in it; the fallback's goes first, then those."""
    path = str(tmp_path / "router.sub")
    assert nogig.announce_first(path, b"x") == -1  # no such socket here: nothing done
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as act:
            for key in ("a.test", "a.test:80"):
                act.sendto(nogig.subscription_packet(key, "/run/a.sock"), path)
        fallback = nogig.subscription_packet("backstage-no-gig", "/run/router.sock")
        assert nogig.announce_first(path, fallback) == 2
        server.settimeout(1)
        got = [server.recv(65536) for _ in range(3)]
    assert got[0] == fallback
    assert [subscription.parse_packet(p)[1]["key"] for p in got] == [
        b"backstage-no-gig",
        b"a.test",
        b"a.test:80",
    ]
    # the packet is the one uWSGI takes (as emperor.subscription builds it)
    assert fallback == subscription.subscription_packet("backstage-no-gig", "/run/router.sock")
