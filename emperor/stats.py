"""Reading and parsing uWSGI stats servers.

uWSGI has three kinds of stats server, all with the same framing:

- an instance's own ``stats = ADDR`` (a vassal, or any uWSGI master): its sockets and workers;
- the Emperor's ``--emperor-stats ADDR``: its monitors, its vassals and its blacklist;
- a router's ``http-stats`` / ``fastrouter-stats``: its bound addresses and subscriptions.

``ADDR`` is ``host:port`` (TCP) when it contains ``:``, else a unix socket path. The server writes
one JSON document as soon as it accepts a connection, then closes it; nothing is ever sent to it.
With ``stats-http`` the document is preceded by an HTTP/1.0 response header.

What uWSGI writes is not always valid JSON: a router that shares its instance with another router
leaves a trailing comma in its address list, and strings are copied out without checking their
encoding. Parsing is therefore lenient: missing keys default to 0, "" or (), values of the wrong
type are coerced where the intent is obvious, unknown keys are ignored.

``read_stats`` does the I/O; everything else is a pure function of the bytes.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from typing import Any, TypeVar

from emperor.errors import StatsUnavailable, StatsUnparsable

__all__ = [
    "BlacklistEntry",
    "EmperorStats",
    "InstanceStats",
    "RouterNode",
    "RouterStats",
    "RouterSubscription",
    "SocketStats",
    "VassalEntry",
    "WorkerStats",
    "parse_emperor_stats",
    "parse_instance_stats",
    "parse_json_lenient",
    "parse_router_stats",
    "read_stats",
    "stats_or_none",
]


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
    except FileNotFoundError:
        raise StatsUnavailable(f"no stats server at {address}: no such socket") from None
    except ConnectionRefusedError:
        raise StatsUnavailable(f"stats server at {address} refused the connection") from None
    except TimeoutError:
        message = f"stats server at {address} did not answer within {timeout:g} s"
        raise StatsUnavailable(message) from None
    except OSError as exc:
        message = f"cannot read the stats server at {address}: {exc.strerror or exc}"
        raise StatsUnavailable(message) from None
    raw = b"".join(chunks)
    if not raw:
        raise StatsUnavailable(f"stats server at {address} closed without answering")
    return raw


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


def _build(cls: type[_T], obj: Mapping[str, object], **computed: object) -> _T:
    """Make ``cls`` from ``obj``: every scalar field from the key of the same name, coerced by its
    annotation; the other fields come from ``computed``."""
    values: dict[str, Any] = dict(computed)
    for field in fields(cls):  # type: ignore[arg-type]
        # a string under `from __future__ import annotations`, else the class itself
        coerce = _COERCE.get(str(getattr(field.type, "__name__", field.type)))
        if coerce is not None and field.name not in values:
            values[field.name] = coerce(obj.get(field.name))
    return cls(**values)


def _objects(value: object) -> Iterator[Mapping[str, object]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(s for s in map(_as_str, value) if s)


# --- an instance's own stats server -----------------------------------------------------------


@dataclass(frozen=True)
class WorkerStats:
    """One worker process. ``running_time`` and ``avg_rt`` are in microseconds; ``avg_rt`` is a
    running blend, not a true mean. ``rss``/``vsz`` stay 0 without ``memory-report``."""

    id: int
    pid: int
    accepting: bool
    requests: int
    delta_requests: int
    exceptions: int
    harakiri_count: int
    signals: int
    status: str  # idle, busy, cheap, pause or sig<N>
    rss: int
    vsz: int
    running_time: int
    last_spawn: int
    respawn_count: int
    tx: int
    avg_rt: int


@dataclass(frozen=True)
class SocketStats:
    name: str
    proto: str
    queue: int
    max_queue: int


@dataclass(frozen=True)
class InstanceStats:
    """What a uWSGI instance (a vassal, say) reports on its ``stats`` server."""

    version: str
    pid: int
    listen_queue: int
    listen_queue_errors: int
    load: int  # the listen backlog, measured on TCP sockets only
    cwd: str
    sockets: tuple[SocketStats, ...]
    workers: tuple[WorkerStats, ...]
    # ``metrics{}`` with ``enable-metrics``: name to value (custom ones included); empty without
    metrics: Mapping[str, int] = dataclass_field(default_factory=dict)

    @property
    def live_workers(self) -> tuple[WorkerStats, ...]:
        """The workers that exist: with `cheaper`, every slot up to `processes` is listed,
        and the unused ones show as status "cheap" (pid 0 once gone)."""
        return tuple(w for w in self.workers if w.pid > 0 and w.status != "cheap")

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.workers)

    @property
    def exceptions(self) -> int:
        return sum(w.exceptions for w in self.workers)

    @property
    def rss(self) -> int:
        return sum(w.rss for w in self.workers)

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.status == "busy")

    @property
    def idle(self) -> int:
        return sum(1 for w in self.workers if w.status == "idle")

    @property
    def accepting(self) -> bool:
        return any(w.accepting for w in self.workers)


def parse_instance_stats(raw: bytes) -> InstanceStats:
    document = parse_json_lenient(raw)
    return _build(
        InstanceStats,
        document,
        sockets=tuple(_build(SocketStats, s) for s in _objects(document.get("sockets"))),
        workers=tuple(_build(WorkerStats, w) for w in _objects(document.get("workers"))),
        metrics=_metric_values(document.get("metrics")),
    )


def _metric_values(value: object) -> dict[str, int]:
    """``{"name": {"type": .., "oid": .., "value": N}}`` as ``{"name": N}``."""
    if not isinstance(value, dict):
        return {}
    found = {}
    for name, metric in value.items():
        number = metric.get("value") if isinstance(metric, dict) else None
        if isinstance(number, int) and not isinstance(number, bool):
            found[str(name)] = number
    return found


# --- the Emperor's stats server ---------------------------------------------------------------


@dataclass(frozen=True)
class VassalEntry:
    """A vassal as the Emperor sees it. ``pid`` is -1 for an on-demand vassal not yet spawned;
    ``loyal``/``ready``/``accepting`` are 0 or 1 (``ready`` is not set again after an
    Emperor-sent reload: prefer ``accepting``); ``last_*``, ``*_run`` and ``cursed`` are Unix
    times or 0; ``respawns`` counts Emperor-sent reloads only."""

    id: str
    pid: int
    born: int
    last_mod: int
    last_heartbeat: int
    loyal: int
    ready: int
    accepting: int
    last_loyal: int
    last_ready: int
    last_accepting: int
    first_run: int
    last_run: int
    cursed: int
    zerg: int
    on_demand: str
    respawns: int


@dataclass(frozen=True)
class BlacklistEntry:
    """A vassal the Emperor refuses to spawn again until its throttle runs out.

    It is refused until `last_attempt` (seconds) plus `throttle_level` (ms): 1 ms
    after the first failure, a second more after each further one, up to the
    Emperor's maximum. The entry goes once the vassal becomes loyal."""

    id: str
    throttle_level: int
    attempt: int
    first_attempt: int
    last_attempt: int

    def refused_until(self) -> float:
        # last_attempt has whole seconds only: count the second it started in as spent
        return self.last_attempt + 1 + self.throttle_level / 1000


@dataclass(frozen=True)
class EmperorStats:
    """What the Emperor reports on ``--emperor-stats``."""

    version: str
    pid: int
    monitors: tuple[str, ...]  # e.g. "zmq://ipc:///run/x.ipc", as given to --emperor
    throttle_level: int
    vassals: tuple[VassalEntry, ...]
    blacklist: tuple[BlacklistEntry, ...]

    def vassal(self, id: str) -> VassalEntry | None:
        return next((v for v in self.vassals if v.id == id), None)

    def blacklisted(self, id: str) -> bool:
        return self.blacklist_entry(id) is not None

    def blacklist_entry(self, id: str) -> BlacklistEntry | None:
        return next((b for b in self.blacklist if b.id == id), None)


def stats_or_none(address: str, parse: Callable[[bytes], _T], timeout: float = 1.0) -> _T | None:
    """What the stats server at `address` reports, parsed; None when it does not answer
    or answers garbage, which is how a stopped instance shows."""
    try:
        return parse(read_stats(address, timeout))
    except (StatsUnavailable, StatsUnparsable):
        return None


def parse_emperor_stats(raw: bytes) -> EmperorStats:
    document = parse_json_lenient(raw)
    return _build(
        EmperorStats,
        document,
        monitors=_strings(document.get("emperor")),
        vassals=tuple(_build(VassalEntry, v) for v in _objects(document.get("vassals"))),
        blacklist=tuple(_build(BlacklistEntry, b) for b in _objects(document.get("blacklist"))),
    )


# --- a router's stats server ------------------------------------------------------------------


@dataclass(frozen=True)
class RouterNode:
    """A backend subscribed under a key. ``pid`` is 0 for nodes that came in by subscription
    packet; ``death_mark`` is 1 once the node unsubscribed or failed."""

    name: str
    requests: int
    last_requests: int
    tx: int
    rx: int
    cores: int
    load: int
    weight: int
    failcnt: int
    death_mark: int
    pid: int
    last_check: int


@dataclass(frozen=True)
class RouterSubscription:
    key: str
    hits: int
    nodes: tuple[RouterNode, ...]


@dataclass(frozen=True)
class RouterStats:
    """What an ``http-stats`` / ``fastrouter-stats`` server reports.

    ``addresses`` is the list uWSGI files under the router's name ("http", "fastrouter", ...): the
    bound router addresses followed by the router's subscription server address, if any.
    """

    version: str
    pid: int
    active_sessions: int
    addresses: tuple[str, ...]
    subscriptions: tuple[RouterSubscription, ...]

    def subscription(self, key: str) -> RouterSubscription | None:
        return next((s for s in self.subscriptions if s.key == key), None)


def _router_addresses(document: Mapping[str, object]) -> tuple[str, ...]:
    # The key is the router's name, which the document does not state otherwise: take the first
    # top-level list of strings. "subscriptions" is a list of objects and never matches.
    for value in document.values():
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return _strings(value)
    return ()


def parse_router_stats(raw: bytes) -> RouterStats:
    document = parse_json_lenient(raw)
    return _build(
        RouterStats,
        document,
        addresses=_router_addresses(document),
        subscriptions=tuple(
            _build(
                RouterSubscription,
                s,
                nodes=tuple(_build(RouterNode, n) for n in _objects(s.get("nodes"))),
            )
            for s in _objects(document.get("subscriptions"))
        ),
    )
