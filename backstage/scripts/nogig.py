"""The router's answer for a Host no playing Act is subscribed under, at once.

Loaded by the router vassal's own worker (`wsgi-file`), which the router falls
back to for any Host header that matches no live subscription key. uWSGI's router
matches the Host byte for byte (no case folding, no trailing-dot folding), so this
is where such a Host is put right:

- a Host that is not a hostname (or an IP literal), with an optional port: 400;
- a Host that names a booked key once folded (lowercase, one trailing dot off, the
  port kept) but was sent otherwise: 308 to the folded Host, same scheme and URI;
- ACME's HTTP-01 path of a booked key nobody plays, whose answer the Production
  keeps in $BACKSTAGE_ROUTER_CHALLENGES: that answer (a host booked to a stopped Act
  gets its certificate too);
- a booked key the router knows no node of, while one of the Acts booked there
  takes connections (the router was just restarted and is not yet told who plays,
  or the Act's announces were late): passed to that Act here, as the router would
  have, so a restart of the router costs no request;
- a booked key nobody plays now (the Act is starting or stopped): 503 with
  Retry-After, so clients try again rather than give up;
- anything else: 404.

Its router logs no line per request: what it answered is said in one line at most
every SAY_EVERY seconds, with the counts (a flood of unknown Hosts would otherwise
write a line each, and fill the disk). Only booked keys are redirected to, so this
is no open redirect, and requests are passed only to the nodes the Production
Manager lists for a key, never to one the request names. The booked keys, each with
the uwsgi sockets of the Acts booked there, are a JSON object in the file named by
$BACKSTAGE_ROUTER_BOOKED, which the Production Manager rewrites atomically when the
bookings change; it is read again when its stat changes. Standard library only:
uWSGI loads this file by its path.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

BOOKED_ENV = "BACKSTAGE_ROUTER_BOOKED"
CHALLENGES_ENV = "BACKSTAGE_ROUTER_CHALLENGES"
CHALLENGE_PATH = "/.well-known/acme-challenge/"
RETRY_AFTER = "2"  # seconds: an Act re-announces itself every 2 s
SAY_EVERY = 10.0  # seconds between two lines of what was answered, at least
# How long a passed request waits for its Act's answer to begin: an Act whose master
# crashed comes back on its held socket within a start (2-7 s on a loaded machine),
# and its request waits in the backlog meanwhile, as the router's would
PASS_WAIT = 30.0
PASSING_AT_ONCE = 6  # requests passed at once, so the worker's threads (8) keep
# answering the rest (404s of a flood) while Acts that came back slowly are waited for
# How long a request waits for one of those places before its 503: a burst (wrk -c16
# just after the router was replaced) is passed on in turn within the moment the router
# is not yet told who plays, rather than answered 503 past the sixth
PLACE_WAIT = 2.0
CHUNK = 65536
# hop-by-hop: the router's own Connection: close stands for them
_HOP = frozenset({"connection", "keep-alive"})

_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")
_URI_SAFE = re.compile(r"^/[\x21-\x7e]*$")  # printable ASCII, no blank: safe in a header
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # an ACME token: base64url, no path

StartResponse = Callable[..., object]


def fold(host: str) -> str | None:
    """The Host as the router's keys spell it (lowercase, without one trailing dot, the
    port kept), or None when it is no hostname or IP literal with an optional port."""
    if not host or len(host) > 260 or not host.isascii():
        return None
    host = host.lower()
    name, colon, port = host, "", ""
    if host.startswith("["):
        end = host.find("]") + 1
        name, rest = host[:end], host[end:]
        if not end or not _IPV6.match(name) or rest[:1] not in ("", ":"):
            return None
        colon, port = rest[:1], rest[1:]
    elif ":" in host:
        name, colon, port = host.rpartition(":")
    if colon and not (port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        return None
    if not name.startswith("["):
        if name.endswith("."):
            name = name[:-1]
        labels = name.split(".")
        if len(name) > 253 or not all(_NAME.match(label) for label in labels):
            return None
    return f"{name}:{port}" if port else name


class Booked:
    """The booked keys and their nodes, read from a JSON file again whenever its stat
    changes: {key: [uwsgi socket of an Act booked there, ...]} (a list of keys, as an
    older Manager wrote, is keys without nodes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._nodes: Mapping[str, tuple[str, ...]] = {}

    def nodes(self) -> Mapping[str, tuple[str, ...]]:
        """Each booked key, with the nodes its requests may be passed to."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._seen, self._nodes = None, {}
            return self._nodes
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            try:
                with open(self.path, encoding="utf-8") as booked:
                    data = json.load(booked)
            except (OSError, ValueError):
                return self._nodes  # half there: keep what was known, read it next time
            if isinstance(data, list):
                data = {key: [] for key in data if isinstance(key, str)}
            if isinstance(data, dict):
                self._nodes = {
                    key: tuple(n for n in nodes if isinstance(n, str))
                    for key, nodes in data.items()
                    if isinstance(key, str) and isinstance(nodes, list)
                }
            self._seen = seen
        return self._nodes

    def keys(self) -> frozenset[str]:
        return frozenset(self.nodes())


def _answer(
    start_response: StartResponse,
    status: str,
    text: str,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    body = text.encode("ascii", "replace")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def _request_uri(environ: dict[str, object]) -> str:
    uri = environ.get("REQUEST_URI")
    if isinstance(uri, str) and _URI_SAFE.match(uri):
        return uri
    return "/"  # absent, absolute-form or odd: the front page is a safe place to land


def challenge_answer(environ: dict[str, object], folder: str) -> str | None:
    """The HTTP-01 answer the request asks for, when the Production keeps one."""
    path = environ.get("PATH_INFO")
    if not folder or not isinstance(path, str) or not path.startswith(CHALLENGE_PATH):
        return None
    token = path[len(CHALLENGE_PATH) :]
    if not _TOKEN.match(token):
        return None
    try:
        with open(os.path.join(folder, token), encoding="ascii") as answer:
            return answer.read(512)
    except (OSError, ValueError):
        return None


def respond(
    environ: dict[str, object],
    start_response: StartResponse,
    booked: Mapping[str, tuple[str, ...]],
    challenges: str = "",
) -> Iterable[bytes]:
    sent = environ.get("HTTP_HOST", "")
    sent = sent if isinstance(sent, str) else ""
    folded = fold(sent)
    if folded is None:
        return _answer(start_response, "400 Bad Request", "400 Bad Request: no valid Host\n")
    if folded in booked:
        answer = challenge_answer(environ, challenges)
        if answer is not None:
            return _answer(start_response, "200 OK", answer)
        if folded != sent:
            scheme = environ.get("wsgi.url_scheme")
            scheme = scheme if scheme in ("http", "https") else "http"
            location = f"{scheme}://{folded}{_request_uri(environ)}"
            return _answer(
                start_response,
                "308 Permanent Redirect",
                f"308 Permanent Redirect: {location}\n",
                [("Location", location)],
            )
        passed = pass_on(environ, start_response, booked[folded])
        if passed is not None:
            return passed
        return _answer(
            start_response,
            "503 Service Unavailable",
            f"503 Service Unavailable: the Gig at {folded} is not playing now, try again\n",
            [("Retry-After", RETRY_AFTER)],
        )
    return _answer(
        start_response, "404 Not Found", f"404 Not Found: no Gig plays at {sent!r} here\n"
    )


# Passing a request on: what the router does with a node, in the uwsgi protocol

_passing = threading.BoundedSemaphore(PASSING_AT_ONCE)


def uwsgi_packet(environ: Mapping[str, object]) -> bytes:
    """The request's variables, as the router sent them here, in a uwsgi packet
    (modifier1 0: WSGI): every text value whose name has no dot (the server's own
    wsgi.* and uwsgi.* entries have one). ValueError when they do not fit in one."""
    pairs = []
    for key, value in environ.items():
        if isinstance(value, str) and "." not in key:
            name, text = key.encode("latin-1", "replace"), value.encode("latin-1", "replace")
            if len(name) > 0xFFFF or len(text) > 0xFFFF:
                raise ValueError(f"{key} is too long for a uwsgi packet")
            pairs.append(struct.pack("<H", len(name)) + name + struct.pack("<H", len(text)) + text)
    body = b"".join(pairs)
    if len(body) > 0xFFFF:
        raise ValueError("the request's variables are too long for a uwsgi packet")
    return struct.pack("<BHB", 0, len(body), 0) + body


def _connect(nodes: Iterable[str]) -> socket.socket | None:
    """A connection to the first of `nodes` (unix socket paths) that takes one."""
    for node in nodes:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(PASS_WAIT)
        try:
            conn.connect(node)
        except OSError:
            conn.close()  # gone, or stopped: the next node, if any
            continue
        return conn
    return None


def _send_body(environ: Mapping[str, object], conn: socket.socket) -> None:
    try:
        left = int(str(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        left = 0
    stream = environ.get("wsgi.input")
    while left > 0 and stream is not None:
        chunk = stream.read(min(left, CHUNK))  # type: ignore[attr-defined]
        if not chunk:
            break
        conn.sendall(chunk)
        left -= len(chunk)


def split_head(data: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(status, headers, what follows) of an HTTP answer's first bytes; None while the
    head is not all there. ValueError for what is no HTTP answer. Hop-by-hop headers
    are left out: the router's own Connection: close stands for them."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    version, _, status = lines[0].partition(" ")
    if not version.startswith("HTTP/") or not status[:3].isdigit():
        raise ValueError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a header: {line[:80]!r}")
        if name.strip().lower() not in _HOP:
            headers.append((name.strip(), value.strip()))
    return status.strip(), headers, data[end + 4 :]


def _read_head(conn: socket.socket) -> tuple[str, list[tuple[str, str]], bytes]:
    data = b""
    while True:
        chunk = conn.recv(CHUNK)
        if not chunk:
            raise ValueError("the Act closed the connection without an answer")
        data += chunk
        head = split_head(data)
        if head is not None:
            return head
        if len(data) > 4 * CHUNK:
            raise ValueError("no end of the answer's head")


class _Relay:
    """The rest of a passed answer, as it comes; closing it lets the node go."""

    def __init__(self, conn: socket.socket, first: bytes) -> None:
        self._conn, self._first = conn, first
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        while True:
            try:
                chunk = self._conn.recv(CHUNK)
            except OSError:
                return  # cut off: the client sees the answer end early, as via the router
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()
            _passing.release()


def pass_on(
    environ: Mapping[str, object], start_response: StartResponse, nodes: Iterable[str]
) -> Iterable[bytes] | None:
    """The answer of the first of `nodes` that takes the request, passed on as it comes;
    None when none does (no Act booked there listens), or when PASSING_AT_ONCE requests
    were being passed all through PLACE_WAIT. A node that took the request and did not
    answer is a 502."""
    if not _passing.acquire(timeout=PLACE_WAIT):
        return None
    conn = _connect(nodes)
    if conn is None:
        _passing.release()
        return None
    try:
        conn.sendall(uwsgi_packet(environ))
        _send_body(environ, conn)
        status, headers, first = _read_head(conn)
    except (OSError, ValueError) as exc:
        conn.close()
        _passing.release()
        return _answer(start_response, "502 Bad Gateway", f"502 Bad Gateway: {exc}\n")
    start_response(status, headers)
    return _Relay(conn, first)


class Tally:
    """What was answered, said in one line at most every `every` seconds: the first
    answer after a quiet spell at once, the ones that follow in the next line, counted
    by status, with one Host that was sent (quoted, cut short: it is the client's)."""

    def __init__(self, every: float = SAY_EVERY, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._host = ""
        self._since: float | None = None
        self._said: float | None = None

    def count(self, status: str, host: str) -> str | None:
        """Count one answer; the line to say now, if it is time."""
        now = self._clock()
        code = status.split(" ", 1)[0]
        self._counts[code] = self._counts.get(code, 0) + 1
        self._host = self._host or host
        self._since = now if self._since is None else self._since
        if self._said is not None and now - self._said < self.every:
            return None
        counts = ", ".join(f"{n} x {code}" for code, n in sorted(self._counts.items()))
        seconds = f" in {now - self._since:.0f} s" if now > self._since else ""
        line = f"backstage-no-gig: answered {counts}{seconds}, e.g. Host {self._host[:80]!r}"
        self._counts, self._host, self._since, self._said = {}, "", None, now
        return line


# The fallback first. uWSGI's master spawns the router's HTTP process, then announces
# its own worker under the fallback key: a connection that waited in the held port is
# accepted and routed at once, and found no fallback node then (the router closes it
# unanswered) when the HTTP process ran ahead of its master. This file is loaded by
# the master before either, once the subscription socket is bound: the announce is
# put first in that socket's queue here, ahead of the Acts' announces already queued
# (the router reads one a turn, and routes a request it accepted at its second), so
# the fallback is known before any request is routed.

FALLBACK_ENV = "BACKSTAGE_ROUTER_FALLBACK"  # "KEY SOCKET" of its worker's node
SUBSCRIPTIONS_ENV = "BACKSTAGE_ROUTER_SUBSCRIPTIONS"  # the subscription socket's path


def subscription_packet(key: str, address: str) -> bytes:
    """An unsigned announce of `address` under `key` (modifier1 0), as uWSGI sends it."""

    def pair(name: str, value: str) -> bytes:
        a, b = name.encode(), value.encode()
        return struct.pack("<H", len(a)) + a + struct.pack("<H", len(b)) + b

    values = [("key", key), ("address", address), ("modifier1", "0"), ("modifier2", "0")]
    values += [("cores", "1"), ("load", "0"), ("weight", "1")]
    body = b"".join(pair(name, value) for name, value in values)
    return struct.pack("<BHB", 224, len(body), 0) + body


def _bound_at(path: str) -> socket.socket | None:
    """A copy of this process's datagram socket bound at `path`, if it has one."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return None
    for fd in fds:
        try:
            copy = os.dup(fd)
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=copy)
        except OSError:
            os.close(copy)  # no socket
            continue
        try:
            name = sock.getsockname()
        except OSError:
            name = None
        if sock.type == socket.SOCK_DGRAM and name in (path, os.fsencode(path)):
            return sock
        sock.close()
    return None


def announce_first(path: str, packet: bytes) -> int:
    """Put `packet` first in the queue of the datagram socket this process has bound at
    `path`: take what waits there, send `packet`, then what waited, in its order. The
    count of what waited; -1 when this process has no socket bound there (it is not
    the router's master: nothing is done)."""
    server = _bound_at(path)
    if server is None:
        return -1
    waiting = []
    with server:
        while True:
            try:
                waiting.append(server.recv(65536, socket.MSG_DONTWAIT))
            except OSError:
                break  # none left (EAGAIN)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        for datagram in (packet, *waiting):
            try:
                sender.sendto(datagram, socket.MSG_DONTWAIT, path)
            except OSError:
                break  # the queue is full: its senders announce again within a second
    return len(waiting)


def _fallback_first() -> None:
    path = os.environ.get(SUBSCRIPTIONS_ENV, "")
    key, _, address = os.environ.get(FALLBACK_ENV, "").partition(" ")
    if path and key and address:
        try:
            announce_first(path, subscription_packet(key, address))
        except OSError as exc:  # the master's own announce follows anyway
            print(f"backstage-no-gig: announcing the fallback first: {exc}", file=sys.stderr)


_fallback_first()
_booked = Booked(os.environ.get(BOOKED_ENV, ""))
_challenges = os.environ.get(CHALLENGES_ENV, "")
_tally = Tally()
_tally_lock = threading.Lock()  # the worker answers in threads


def application(environ, start_response):  # type: ignore[no-untyped-def]
    answered: list[str] = []

    def noting(status, headers):  # type: ignore[no-untyped-def]
        answered.append(status)
        return start_response(status, headers)

    body = respond(environ, noting, _booked.nodes(), _challenges)
    host = environ.get("HTTP_HOST", "")
    with _tally_lock:
        line = _tally.count(answered[0], host if isinstance(host, str) else "")
    if line:
        print(line, file=sys.stderr, flush=True)
    return body
