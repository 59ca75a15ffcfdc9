"""Reading and parsing uWSGI stats servers.

uWSGI has three kinds of stats server, all with the same framing:

- an instance's own ``stats = ADDR`` (a vassal, or any uWSGI master): its sockets and workers;
- the Emperor's ``--emperor-stats ADDR``: its monitors, its vassals and its blacklist;
- a router's ``http-stats`` / ``fastrouter-stats``: its bound addresses and subscriptions.

Reading and the lenient parsing every kind shares are in ``statswire``; here are the three
documents as dataclasses, each parsed by a pure function of the bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TypeVar

from emperor.channel import vassal_name
from emperor.errors import StatsUnavailable, StatsUnparsable
from emperor.statswire import build, objects, parse_json_lenient, read_many, read_stats, strings

_T = TypeVar("_T")

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
    "read_many",
    "read_stats",
    "stats_or_none",
]


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
class DaemonStats:
    """A process attached to the master (`attach-daemon2`): uWSGI lists them as `daemons`."""

    cmd: str
    pid: int
    respawns: int


@dataclass(frozen=True)
class CronStats:
    """A cron job of the master (`cron2`): -1 means every, -N every N."""

    command: str
    minute: int
    hour: int
    day: int
    month: int
    week: int
    unique: int


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
    daemons: tuple[DaemonStats, ...] = ()
    crons: tuple[CronStats, ...] = ()
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
    return build(
        InstanceStats,
        document,
        sockets=tuple(build(SocketStats, s) for s in objects(document.get("sockets"))),
        workers=tuple(build(WorkerStats, w) for w in objects(document.get("workers"))),
        daemons=tuple(build(DaemonStats, d) for d in objects(document.get("daemons"))),
        crons=tuple(build(CronStats, c) for c in objects(document.get("crons"))),
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

    @property
    def waiting(self) -> bool:
        """An on-demand vassal with no process: the Emperor holds its socket and spawns
        it at the next connection (again after `idle` + `die-on-idle`)."""
        return self.pid <= 0 and bool(self.on_demand)

    @functools.cached_property
    def plainly(self) -> VassalEntry:
        """The same listed by its plain name (see `EmperorStats.by_plain_names`); kept,
        since parsing hands back the same entry while its vassal reads the same."""
        return _plainly(self)


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
        return self.by_id.get(id)

    @functools.cached_property
    def by_id(self) -> dict[str, VassalEntry]:
        # a caller looking up a thousand vassals asks once for each
        return {v.id: v for v in self.vassals}

    def waiting(self, id: str) -> bool:
        """The vassal is on demand and has no process now (see VassalEntry.waiting)."""
        entry = self.vassal(id)
        return entry is not None and entry.waiting

    def blacklisted(self, id: str) -> bool:
        return self.blacklist_entry(id) is not None

    def blacklist_entry(self, id: str) -> BlacklistEntry | None:
        return self._blacklist_by_id.get(id)

    @functools.cached_property
    def _blacklist_by_id(self) -> dict[str, BlacklistEntry]:
        # a pass asks for each wanted vassal: a scan each was thousands times thousands
        # with many refused at once (an Emperor's restart under load)
        found: dict[str, BlacklistEntry] = {}
        for entry in self.blacklist:
            found.setdefault(entry.id, entry)  # the first, as a scan would find
        return found

    def by_plain_names(self) -> EmperorStats:
        """The same, every vassal listed by its plain name: one pushed by the absolute
        path of its config file (see `channel.py`) is listed by that path."""
        return dataclasses.replace(
            self,
            vassals=tuple(v.plainly for v in self.vassals),
            blacklist=tuple(_plainly(b) for b in self.blacklist),
        )


_Named = TypeVar("_Named", VassalEntry, BlacklistEntry)


def _plainly(entry: _Named) -> _Named:
    name = vassal_name(entry.id)
    return entry if name == entry.id else dataclasses.replace(entry, id=name)


def stats_or_none(address: str, parse: Callable[[bytes], _T], timeout: float = 1.0) -> _T | None:
    """What the stats server at `address` reports, parsed; None when it does not answer
    or answers garbage, which is how a stopped instance shows."""
    try:
        return parse(read_stats(address, timeout))
    except (StatsUnavailable, StatsUnparsable):
        return None


def parse_emperor_stats(raw: bytes) -> EmperorStats:
    global _last_vassals
    split = _split_vassals(raw)
    if split is not None:
        head, pieces = split
        try:
            document = parse_json_lenient(head)
            vassals, seen = _vassals_from(pieces, _last_vassals)
        except StatsUnparsable:
            split = None  # something the split did not foresee: parse it whole
    if split is None:
        document = parse_json_lenient(raw)
        seen = {}
        vassals = tuple(
            _vassal(json.dumps(v, sort_keys=True).encode(), v, seen)
            for v in objects(document.get("vassals"))
        )
    _last_vassals = seen
    return build(
        EmperorStats,
        document,
        monitors=strings(document.get("emperor")),
        vassals=vassals,
        blacklist=tuple(build(BlacklistEntry, b) for b in objects(document.get("blacklist"))),
    )


# The vassals of the last Emperor stats parsed, by their bytes: a sleeping or idle
# vassal reads the same from one second to the next, and a thousand of them are most
# of what a refresh of `top` parses. The document is cut into its vassals' objects
# (each a flat object: uWSGI writes no nested value in one) at each closing brace
# before any JSON is parsed, so that one read as before costs one lookup, not a parse.
# A brace inside a string cuts an object where it does not end: that piece does not
# parse, and the whole document is parsed instead.
_last_vassals: dict[bytes, VassalEntry] = {}
_VASSALS = re.compile(rb'"vassals"\s*:\s*\[')
_BLACKLIST = re.compile(rb'\]\s*,\s*"blacklist"\s*:')
_BLANKS = b", \t\r\n"


def _split_vassals(raw: bytes) -> tuple[bytes, list[bytes]] | None:
    """The document without its vassals, and each vassal's object as written up to its
    closing brace (with what separates it from the one before); None when it does not
    have the shape uWSGI writes."""
    opening = _VASSALS.search(raw)
    if opening is None:
        return None
    closing = _BLACKLIST.search(raw, opening.end())
    if closing is None:
        return None
    pieces = raw[opening.end() : closing.start()].split(b"}")
    if pieces.pop().strip(_BLANKS):  # after the last object: blanks only
        return None
    return raw[: opening.end()] + raw[closing.start() :], pieces


def _vassals_from(
    pieces: list[bytes], last: dict[bytes, VassalEntry]
) -> tuple[tuple[VassalEntry, ...], dict[bytes, VassalEntry]]:
    seen: dict[bytes, VassalEntry] = {}
    vassals = []
    for piece in pieces:
        entry = last.get(piece)
        if entry is None:
            start = piece.find(b"{")
            if start < 0 or piece[:start].strip(_BLANKS):
                raise StatsUnparsable("a vassal's object is not where uWSGI writes it")
            entry = build(VassalEntry, parse_json_lenient(piece[start:] + b"}"))
        seen[piece] = entry
        vassals.append(entry)
    return tuple(vassals), seen


def _vassal(key: bytes, raw: Mapping[str, object], seen: dict[bytes, VassalEntry]) -> VassalEntry:
    entry = seen[key] = _last_vassals.get(key) or build(VassalEntry, raw)
    return entry


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
    # 1 while the router takes no connection (`http-cheap` with no node subscribed)
    cheap: int = 0

    def subscription(self, key: str) -> RouterSubscription | None:
        return next((s for s in self.subscriptions if s.key == key), None)


def _router_addresses(document: Mapping[str, object]) -> tuple[str, ...]:
    # The key is the router's name, which the document does not state otherwise: take the first
    # top-level list of strings. "subscriptions" is a list of objects and never matches.
    for value in document.values():
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return strings(value)
    return ()


def parse_router_stats(raw: bytes) -> RouterStats:
    document = parse_json_lenient(raw)
    return build(
        RouterStats,
        document,
        addresses=_router_addresses(document),
        subscriptions=tuple(
            build(
                RouterSubscription,
                s,
                nodes=tuple(build(RouterNode, n) for n in objects(s.get("nodes"))),
            )
            for s in objects(document.get("subscriptions"))
        ),
    )
