"""The stats servers' wire: reading one document, and parsing what uWSGI writes leniently.

``ADDR`` is ``host:port`` (TCP) when it contains ``:``, else a unix socket path. The server writes
one JSON document as soon as it accepts a connection, then closes it; nothing is ever sent to it.
With ``stats-http`` the document is preceded by an HTTP/1.0 response header.

What uWSGI writes is not always valid JSON: a router that shares its instance with another router
leaves a trailing comma in its address list, and strings are copied out without checking their
encoding. Parsing is therefore lenient: missing keys default to 0, "" or (), values of the wrong
type are coerced where the intent is obvious, unknown keys are ignored. ``build`` makes a
dataclass from a JSON object that way.
"""

from __future__ import annotations

import json
import math
import re
import select
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from emperor.errors import StatsUnavailable, StatsUnparsable

# --- the wire ---------------------------------------------------------------------------------


def read_stats(address: str, timeout: float = 1.0) -> bytes:
    """Connect to the stats server at ``address`` and return everything it sends before closing.

    ``timeout`` bounds the whole exchange (connect and every read), not each step, so a server
    that trickles bytes cannot hold the caller longer than that.
    """
    deadline = time.monotonic() + timeout
    try:
        with _connect(address, timeout) as sock:
            chunks: list[bytes] = []
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:
        raise _unavailable(address, exc, timeout) from None
    return _answer(address, chunks)


# Servers read at once: each is an open file while it is read, and a viewer's limit of
# open files may be 1,024
AT_ONCE = 256


def read_many(addresses: Sequence[str], timeout: float = 1.0) -> list[bytes | StatsUnavailable]:
    """Every stats server of ``addresses`` read at once, in this thread: each unix socket
    connected without blocking, then all the answers gathered in one poll(2) loop, so that
    a hundred servers cost no thread each. ``timeout`` bounds the whole (of each AT_ONCE
    servers); a server not done by then is StatsUnavailable, and holds up none of the
    others. A TCP address (or a unix socket whose backlog is full) is read on its own, as
    ``read_stats`` does."""
    if len(addresses) > AT_ONCE:
        return [
            answer
            for at in range(0, len(addresses), AT_ONCE)
            for answer in read_many(addresses[at : at + AT_ONCE], timeout)
        ]
    deadline = time.monotonic() + timeout
    found: list[bytes | StatsUnavailable] = []
    poller = select.poll()
    reading: dict[int, tuple[int, str, socket.socket, list[bytes]]] = {}
    for at, address in enumerate(addresses):
        found.append(StatsUnavailable(f"stats server at {address} did not answer"))
        if ":" not in address:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            except OSError as exc:  # no file left to open
                found[at] = _unavailable(address, exc, timeout)
                continue
            try:
                sock.connect("\0" + address[1:] if address.startswith("@") else address)
            except BlockingIOError:  # its backlog is full: wait for it below, on its own
                sock.close()
            except OSError as exc:
                sock.close()
                found[at] = _unavailable(address, exc, timeout)
                continue
            else:
                reading[sock.fileno()] = (at, address, sock, [])
                poller.register(sock, select.POLLIN)
                continue
        try:
            found[at] = read_stats(address, max(0.0, deadline - time.monotonic()))
        except StatsUnavailable as exc:
            found[at] = exc
    try:
        while reading and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                at, address, sock, chunks = reading[fd]
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    found[at] = _unavailable(address, exc, timeout)
                    chunk = b""
                else:
                    if chunk:
                        chunks.append(chunk)
                        continue
                    try:
                        found[at] = _answer(address, chunks)
                    except StatsUnavailable as exc:
                        found[at] = exc
                poller.unregister(fd)
                sock.close()
                del reading[fd]
    finally:
        for at, address, sock, _ in reading.values():
            sock.close()
            found[at] = _unavailable(address, TimeoutError(), timeout)
    return found


def _answer(address: str, chunks: list[bytes]) -> bytes:
    raw = b"".join(chunks)
    if not raw:
        raise StatsUnavailable(f"stats server at {address} closed without answering")
    return raw


def _unavailable(address: str, exc: OSError, timeout: float) -> StatsUnavailable:
    """What a failed read of the stats server at ``address`` says."""
    if isinstance(exc, FileNotFoundError):
        return StatsUnavailable(f"no stats server at {address}: no such socket")
    if isinstance(exc, ConnectionRefusedError):
        return StatsUnavailable(f"stats server at {address} refused the connection")
    if isinstance(exc, TimeoutError):
        return StatsUnavailable(f"stats server at {address} did not answer within {timeout:g} s")
    return StatsUnavailable(f"cannot read the stats server at {address}: {exc.strerror or exc}")


def _connect(address: str, timeout: float) -> socket.socket:
    if ":" in address:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"  # uWSGI reads ":PORT" as every interface
        if not port.isdigit():
            raise StatsUnavailable(f"stats address {address} has no valid port")
        return socket.create_connection((host, int(port)), timeout=timeout)
    # uWSGI's "@name" is a socket in the abstract namespace
    path = "\0" + address[1:] if address.startswith("@") else address
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


# --- lenient JSON -----------------------------------------------------------------------------

# A string literal (kept as is) or a comma with only whitespace before a closing bracket (dropped).
# Matching strings first keeps ",]" inside a string value (request vars, paths) untouched.
_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[\]}])', re.DOTALL)


def _drop_trailing_commas(text: str) -> str:
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: "" if m.group() == "," else m.group(), text)


def _strip_http_header(raw: bytes) -> bytes:
    if not raw.startswith(b"HTTP/"):
        return raw
    for separator in (b"\r\n\r\n", b"\n\n"):
        _, found, body = raw.partition(separator)
        if found:
            return body
    raise StatsUnparsable("stats answer has an HTTP header but no body")


def parse_json_lenient(raw: bytes) -> dict[str, Any]:
    """Decode one stats document into a dict, forgiving the known uWSGI defects."""
    text = _strip_http_header(raw).decode("utf-8", errors="replace")
    # strict=False: uWSGI does not escape control characters inside strings
    try:
        document = json.loads(text, strict=False)
    except ValueError:
        try:
            document = json.loads(_drop_trailing_commas(text), strict=False)
        except ValueError as exc:
            message = f"stats answer is not JSON ({exc}); it starts with {raw[:60]!r}"
            raise StatsUnparsable(message) from None
    if not isinstance(document, dict):
        raise StatsUnparsable(f"stats answer is JSON but not an object: {type(document).__name__}")
    return document


# --- coercion ---------------------------------------------------------------------------------


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                return _as_int(float(value))
            except ValueError:
                return 0
    return 0


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return _as_int(value) != 0


_COERCE: dict[str, Callable[[object], object]] = {"int": _as_int, "str": _as_str, "bool": _as_bool}

_T = TypeVar("_T")


def build(cls: type[_T], obj: Mapping[str, object], **computed: object) -> _T:
    """Make ``cls`` from ``obj``: every scalar field from the key of the same name, coerced by its
    annotation; the other fields come from ``computed``."""
    values: dict[str, Any] = dict(computed)
    for name, coerce in _scalars(cls):
        if name not in values:
            values[name] = coerce(obj.get(name))
    return cls(**values)


_Scalars = tuple[tuple[str, Callable[[object], object]], ...]
_scalars_of: dict[type, _Scalars] = {}


def _scalars(cls: type) -> _Scalars:
    """(name, coercion) of each scalar field of ``cls``: worked out once per class, for an
    Emperor's stats list a thousand vassals a second."""
    found = _scalars_of.get(cls)
    if found is None:
        # a field's type is a string under `from __future__ import annotations`
        found = tuple(
            (field.name, coerce)
            for field in fields(cls)
            if (coerce := _COERCE.get(str(getattr(field.type, "__name__", field.type))))
        )
        _scalars_of[cls] = found
    return found


def objects(value: object) -> Iterator[Mapping[str, object]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(s for s in map(_as_str, value) if s)
