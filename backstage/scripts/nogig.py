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
- a booked key nobody plays now (the router just restarted, the Act is starting
  or stopped): 503 with Retry-After, so clients try again rather than give up;
- anything else: 404.

Its router logs no line per request: what it answered is said in one line at most
every SAY_EVERY seconds, with the counts (a flood of unknown Hosts would otherwise
write a line each, and fill the disk). Only booked keys are redirected to, so this
is no open redirect. The booked keys
are a JSON list in the file named by $BACKSTAGE_ROUTER_BOOKED, which the
Production Manager rewrites atomically when the bookings change; it is read again
when its stat changes. Standard library only: uWSGI loads this file by its path.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable

BOOKED_ENV = "BACKSTAGE_ROUTER_BOOKED"
CHALLENGES_ENV = "BACKSTAGE_ROUTER_CHALLENGES"
CHALLENGE_PATH = "/.well-known/acme-challenge/"
RETRY_AFTER = "2"  # seconds: an Act re-announces itself every 2 s
SAY_EVERY = 10.0  # seconds between two lines of what was answered, at least

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
    """The booked keys, read from a JSON file again whenever its stat changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._keys: frozenset[str] = frozenset()

    def keys(self) -> frozenset[str]:
        try:
            st = os.stat(self.path)
        except OSError:
            self._seen, self._keys = None, frozenset()
            return self._keys
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            try:
                with open(self.path, encoding="utf-8") as booked:
                    data = json.load(booked)
            except (OSError, ValueError):
                return self._keys  # half there: keep what was known, read it next time
            if isinstance(data, list):
                self._keys = frozenset(k for k in data if isinstance(k, str))
            self._seen = seen
        return self._keys


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
    booked: frozenset[str],
    challenges: str = "",
) -> list[bytes]:
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
        return _answer(
            start_response,
            "503 Service Unavailable",
            f"503 Service Unavailable: the Gig at {folded} is not playing now, try again\n",
            [("Retry-After", RETRY_AFTER)],
        )
    return _answer(
        start_response, "404 Not Found", f"404 Not Found: no Gig plays at {sent!r} here\n"
    )


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


_booked = Booked(os.environ.get(BOOKED_ENV, ""))
_challenges = os.environ.get(CHALLENGES_ENV, "")
_tally = Tally()


def application(environ, start_response):  # type: ignore[no-untyped-def]
    answered: list[str] = []

    def noting(status, headers):  # type: ignore[no-untyped-def]
        answered.append(status)
        return start_response(status, headers)

    body = respond(environ, noting, _booked.keys(), _challenges)
    host = environ.get("HTTP_HOST", "")
    line = _tally.count(answered[0], host if isinstance(host, str) else "")
    if line:
        print(line, file=sys.stderr, flush=True)
    return body
