"""A Snapshot: the whole Production at one instant, as plain frozen data.

What `backstage top`, `backstage status` and any script see. It is built from
the declared files and the stats servers only (the Emperor's and every Act's),
read concurrently, each with a short timeout: an Act whose stats server hangs
costs the refresh at most that timeout, not one timeout per Act in a row.

Rates (requests per second) need two readings: pass the previous Snapshot and
they come from the difference of the counters over the monotonic time between.
A Snapshot round-trips through JSON (`to_dict`/`from_dict`), so the drawing can
be tested on recorded ones.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emperor.process import tail
from emperor.stats import EmperorStats, InstanceStats

from .errors import BackstageError
from .sess import Sess, SessWorker, port_of

if TYPE_CHECKING:
    from .act import Act
    from .production import Production

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.5  # seconds one stats server may take before its Act shows "no stats"
LOG_LINES = 20
# Threads, not processes: each read mostly waits on a socket. Enough that a few
# stuck servers do not queue the healthy ones behind them.
MAX_READERS = 64


@dataclass(frozen=True)
class WorkerRow(SessWorker):
    """A worker of the Sess, with its rate since the previous Snapshot."""

    rps: float | None = None  # None until a previous Snapshot saw the same worker process


@dataclass(frozen=True)
class ActRow:
    key: str  # VENUE/NAME
    venue: str
    act: str
    state: str  # stopped, starting, running, failed
    enabled: bool
    pid: int | None  # the vassal's master
    port: int
    workers: int
    busy: int
    idle: int
    requests: int
    rps: float | None
    avg_rt: int  # microseconds, the mean of the workers that served something
    rss: int
    exceptions: int
    harakiri: int
    respawns: int
    listen_queue: int
    gigs: tuple[str, ...] | None  # None where the Production has no Gigs
    worker_rows: tuple[WorkerRow, ...]
    log_path: str
    log_tail: tuple[str, ...] | None  # only for the Act asked for in `detail`
    # responses by status class (RESPONSE_CLASSES), counted by the vassal's metrics;
    # None where it does not count them (a vassal rendered before it did)
    responses: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class EmperorRow:
    running: bool
    pid: int | None
    channel: str | None
    version: str
    vassals: int
    blacklisted: tuple[str, ...]
    throttle_level: int


@dataclass(frozen=True)
class Snapshot:
    production: str  # the home folder
    at: float  # time.monotonic() of the reading: only differences mean anything
    wall: float  # time.time() of the reading, for display
    emperor: EmperorRow
    acts: tuple[ActRow, ...]
    has_gigs: bool

    def act(self, key: str) -> ActRow | None:
        return next((row for row in self.acts if row.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        def act_row(row: dict[str, Any]) -> ActRow:
            gigs = row.get("gigs")
            tail_lines = row.get("log_tail")
            responses = row.get("responses")
            return ActRow(
                **{
                    **row,
                    "gigs": None if gigs is None else tuple(gigs),
                    "log_tail": None if tail_lines is None else tuple(tail_lines),
                    "responses": None if responses is None else tuple(responses),
                    "worker_rows": tuple(WorkerRow(**w) for w in row["worker_rows"]),
                }
            )

        emperor = dict(data["emperor"], blacklisted=tuple(data["emperor"]["blacklisted"]))
        return cls(
            production=data["production"],
            at=data["at"],
            wall=data["wall"],
            emperor=EmperorRow(**emperor),
            acts=tuple(act_row(row) for row in data["acts"]),
            has_gigs=data["has_gigs"],
        )


def take(
    production: Production,
    previous: Snapshot | None = None,
    detail: str | None = None,
    timeout: float = READ_TIMEOUT,
) -> Snapshot:
    """Read the Production now. `detail` names an Act (VENUE/NAME) whose last log lines
    to include: only the one a viewer has open, so a refresh reads one log, not all."""
    stage = production.stage
    acts = production.acts
    pool = _readers()
    emperor_future = pool.submit(stage.stats, timeout)
    gigs_future = pool.submit(_gigs_by_act, production)  # the router's stats, when there is one
    futures = [pool.submit(_read_act, act, timeout) for act in acts]
    emperor = emperor_future.result()
    readings = [future.result() for future in futures]
    gigs = gigs_future.result()
    at, wall = time.monotonic(), time.time()
    earlier = {row.key: row for row in previous.acts} if previous else {}
    elapsed = at - previous.at if previous else 0.0
    rows = []
    for act, (enabled, port, stats) in zip(acts, readings, strict=True):
        rows.append(
            _act_row(
                act,
                enabled,
                port,
                stats,
                emperor,
                earlier.get(act.key),
                elapsed,
                gigs,
                act.key == detail,
            )
        )
    return Snapshot(
        production=production.home,
        at=at,
        wall=wall,
        emperor=_emperor_row(stage, emperor),
        acts=tuple(rows),
        has_gigs=gigs is not None,
    )


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _readers() -> ThreadPoolExecutor:
    """The reader threads, kept from one snapshot to the next: starting fifty threads
    every second would cost `backstage top` more than the reading itself."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_READERS, thread_name_prefix="stats-reader")
        return _pool


def _read_act(act: Act, timeout: float) -> tuple[bool, int, InstanceStats | None]:
    """What is declared and what the stats server says; runs in a reader thread."""
    try:
        spec = act.spec
        enabled, port = spec.enabled, spec.port
    except BackstageError:  # removed meanwhile, or its act.toml is being fixed
        enabled, port = False, 0
    return enabled, port, act.stats(timeout)


def _emperor_row(stage: Any, emperor: EmperorStats | None) -> EmperorRow:
    if emperor is None:
        return EmperorRow(False, stage.pid(), None, "", 0, (), 0)
    return EmperorRow(
        running=True,
        pid=emperor.pid,
        channel=stage.channel_kind(emperor),
        version=emperor.version,
        vassals=len(emperor.vassals),
        blacklisted=tuple(entry.id for entry in emperor.blacklist),
        throttle_level=emperor.throttle_level,
    )


def _rate(now: int, before: int, elapsed: float) -> float:
    # Counters restart at 0 when a worker or master is replaced: never a negative rate.
    return max(0, now - before) / elapsed if elapsed > 0 else 0.0


def _act_row(
    act: Act,
    enabled: bool,
    port: int,
    stats: InstanceStats | None,
    emperor: EmperorStats | None,
    earlier: ActRow | None,
    elapsed: float,
    gigs: dict[str, tuple[str, ...]] | None,
    with_log: bool,
) -> ActRow:
    from .act import derive_state

    sess = Sess.from_stats(stats) if stats else None
    state = derive_state(
        enabled=enabled,
        stage_up=emperor is not None,
        blacklisted=emperor is not None and emperor.blacklisted(act.vassal_name),
        serving=sess is not None and sess.accepting,
    )
    workers = sess.workers if sess else ()
    before = {(w.id, w.pid): w for w in earlier.worker_rows} if earlier else {}
    worker_rows = []
    for w in workers:
        seen = before.get((w.id, w.pid))
        rps = _rate(w.requests, seen.requests, elapsed) if seen and elapsed else None
        worker_rows.append(WorkerRow(**dataclasses.asdict(w), rps=rps))
    served = [w.avg_rt for w in workers if w.requests]
    comparable = earlier is not None and earlier.pid is not None and stats is not None
    requests = stats.requests if stats else 0
    return ActRow(
        key=act.key,
        venue=act.venue.name,
        act=act.name,
        state=state,
        enabled=enabled,
        pid=stats.pid if stats else None,
        port=(port_of(stats) if stats else None) or port,
        workers=len(workers),
        busy=stats.busy if stats else 0,
        idle=stats.idle if stats else 0,
        requests=requests,
        rps=_rate(requests, earlier.requests, elapsed) if comparable and earlier else None,
        avg_rt=sum(served) // len(served) if served else 0,
        rss=stats.rss if stats else 0,
        exceptions=stats.exceptions if stats else 0,
        harakiri=sum(w.harakiri for w in workers),
        respawns=sum(w.respawns for w in worker_rows),
        listen_queue=stats.listen_queue if stats else 0,
        gigs=None if gigs is None else gigs.get(act.key, ()),
        worker_rows=tuple(worker_rows),
        log_path=act.log_path,
        log_tail=tuple(tail(act.log_path, LOG_LINES).splitlines()) if with_log else None,
        responses=_responses(stats),
    )


RESPONSE_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def _responses(stats: InstanceStats | None) -> tuple[int, int, int, int] | None:
    """The vassal's `responses.Nxx` metrics (see vassal.ini.j2), or None without them."""
    if stats is None or f"responses.{RESPONSE_CLASSES[0]}" not in stats.metrics:
        return None
    a, b, c, d = (stats.metrics.get(f"responses.{name}", 0) for name in RESPONSE_CLASSES)
    return a, b, c, d


def _gigs_by_act(production: Production) -> dict[str, tuple[str, ...]] | None:
    """Act key to the hosts it plays at, or None while the Production has no Gigs.
    A host booked but not playing shows in brackets."""
    try:
        gigs = production.gigs
    except (BackstageError, OSError) as exc:
        log.warning("cannot read the Gigs: %s", exc)
        return None
    found: dict[str, list[str]] = {}
    for gig in gigs:
        for key in gig.acts:
            found.setdefault(key, []).append(gig.host)
        for key in gig.booked:
            if key not in gig.acts:
                found.setdefault(key, []).append(f"({gig.host})")
    return {key: tuple(hosts) for key, hosts in found.items()} if found else None


def human_size(n: int) -> str:
    """Bytes as uwsgitop shows them: 512, 3.2K, 41.0M, 1.2G."""
    for unit, size in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
