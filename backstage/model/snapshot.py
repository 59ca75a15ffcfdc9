"""A Snapshot: the whole Production at one instant, as plain frozen data.

What `backstage top`, `backstage status` and any script see: every Act's row, the
Emperor, the router and the Gigs. `build` makes one from what was read (the declared
files and the stats servers); reading is `backstage.control.managers.observe`'s.

Rates (requests per second) need two readings: pass the previous Snapshot and
they come from the difference of the counters over the monotonic time between.
A Snapshot round-trips through JSON (`to_dict`/`from_dict`), so the drawing can
be tested on recorded ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emperor.stats import EmperorStats, InstanceStats

from .gig import Gig, gigs_by_act
from .sess import Sess, SessWorker, port_of
from .state import derive_state, explain


@dataclass(frozen=True)
class WorkerRow(SessWorker):
    """A worker of the Sess, with its rate since the previous Snapshot."""

    rps: float | None = None  # None until a previous Snapshot saw the same worker process


@dataclass(frozen=True)
class DaemonRow:
    """A process of the Act beside its web workers: a worker (an attached daemon, `cmd`
    its script) or a cron job (pid 0)."""

    kind: str  # worker or cron
    name: str  # as act.toml names it, from the script's name
    pid: int
    respawns: int


@dataclass(frozen=True)
class ActRow:
    key: str  # VENUE/NAME
    venue: str
    act: str
    state: str  # stopped, starting, running, failed, sleeping, invalid
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
    problem: str = ""  # why it is invalid: its declaration cannot be used
    daemons: tuple[DaemonRow, ...] = ()  # its workers and cron jobs, from its stats
    # responses by status class (RESPONSE_CLASSES), counted by the vassal's metrics;
    # None where it does not count them (a vassal rendered before it did)
    responses: tuple[int, int, int, int] | None = None
    refused: str = ""  # watched: why its last save was refused (the old code serves)
    reason: str = ""  # what is wrong and what to do (state.explain), "" when nothing is
    # the most workers it may run: its worker slots, adaptive or "+" on the FIFO (0: not playing)
    max_workers: int = 0


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
class ManagerRow:
    """The Production Manager: while it runs, what is declared heals."""

    running: bool
    pid: int | None


EXPIRES_SOON = 14 * 86400.0  # seconds: a certificate this close to its end is warned of
KEEPS_FAILING = 2  # ACME tries failed in a row before a host is warned of


@dataclass(frozen=True)
class CertRow:
    """A host's certificate, or a host ACME could not get one for yet."""

    host: str
    source: str  # imported | acme
    not_after: float | None  # time.time() of its end; None: no certificate that loads
    error: str = ""  # its file does not load, or ACME's last error
    failures: int = 0  # ACME's tries failed in a row

    def warning(self, wall: float) -> str:
        """What an operator must know, or ""."""
        if self.failures >= KEEPS_FAILING:
            return f"{self.host}: ACME failed {self.failures} times in a row: {self.error}"
        if self.not_after is not None and self.not_after - wall < EXPIRES_SOON:
            days = max(0.0, (self.not_after - wall) / 86400)
            return f"{self.host}: its certificate expires in {days:.1f} days"
        if self.not_after is None and self.source == "imported":
            return f"{self.host}: its certificate does not load: {self.error}"
        return ""


@dataclass(frozen=True)
class RouterRow:
    running: bool
    address: str  # HOST:PORT, as production.toml declares it
    warning: str = ""  # what an operator must know about it, e.g. unsigned from other hosts


@dataclass(frozen=True)
class Snapshot:
    production: str  # the home folder
    at: float  # time.monotonic() of the reading: only differences mean anything
    wall: float  # time.time() of the reading, for display
    emperor: EmperorRow
    acts: tuple[ActRow, ...]
    has_gigs: bool
    router: RouterRow = RouterRow(False, "")
    gigs: tuple[Gig, ...] = ()
    manager: ManagerRow = ManagerRow(False, None)
    problem: str = ""  # why production.toml is not what plays ("" when it is)
    certificates: tuple[CertRow, ...] = ()

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
                    "daemons": tuple(DaemonRow(**d) for d in row.get("daemons", ())),
                }
            )

        def gig(found: dict[str, Any]) -> Gig:
            return Gig(
                host=found["host"],
                acts=tuple(found["acts"]),
                nodes=tuple(found["nodes"]),
                requests=found["requests"],
                booked=tuple(found["booked"]),
                node_requests=tuple(found.get("node_requests", ())),
            )

        emperor = dict(data["emperor"], blacklisted=tuple(data["emperor"]["blacklisted"]))
        return cls(
            production=data["production"],
            at=data["at"],
            wall=data["wall"],
            emperor=EmperorRow(**emperor),
            acts=tuple(act_row(row) for row in data["acts"]),
            has_gigs=data["has_gigs"],
            router=RouterRow(**data.get("router", {"running": False, "address": ""})),
            gigs=tuple(gig(g) for g in data.get("gigs", ())),
            manager=ManagerRow(**data.get("manager", {"running": False, "pid": None})),
            problem=data.get("problem", ""),
            certificates=tuple(CertRow(**c) for c in data.get("certificates", ())),
        )


@dataclass(frozen=True)
class ActReading:
    """What was read of one Act: its declaration and its stats server's answer."""

    key: str
    venue: str
    act: str
    vassal: str  # its name on the Emperor
    enabled: bool
    port: int
    stats: InstanceStats | None
    log_path: str
    log_tail: tuple[str, ...] | None = None  # only for the Act a viewer has open
    problem: str = ""  # why its declaration cannot be used, when it cannot
    refused: str = ""  # why the last save of a watched Act was refused, until one serves
    # who holds its port while it does not listen there: an Act's key, or a process
    # outside the Production; "" when nobody does or it was not looked at
    port_holder: str = ""


def build(
    production: str,
    at: float,
    wall: float,
    emperor: EmperorRow,
    emperor_stats: EmperorStats | None,
    readings: Sequence[ActReading | ActRow],
    router: RouterRow,
    gigs: Sequence[Gig] | None,
    manager: ManagerRow,
    previous: Snapshot | None = None,
    problem: str = "",
) -> Snapshot:
    """The Snapshot of what was read at `at`; `gigs` is None when the router could not be
    read. Rates are over the time since `previous`. A row among `readings` is taken as
    it is: the reader found it made of the same as before."""
    earlier = {row.key: row for row in previous.acts} if previous else {}
    elapsed = at - previous.at if previous else 0.0
    per_act = gigs_by_act(gigs or ())
    rows = tuple(
        reading
        if isinstance(reading, ActRow)
        else _act_row(reading, emperor_stats, earlier.get(reading.key), elapsed, per_act, manager)
        for reading in readings
    )
    return Snapshot(
        production=production,
        at=at,
        wall=wall,
        emperor=emperor,
        acts=rows,
        has_gigs=per_act is not None,
        router=router,
        gigs=tuple(gigs or ()),
        manager=manager,
        problem=problem,
    )


def emperor_row(stats: EmperorStats | None, pid: int | None, channel: str | None) -> EmperorRow:
    if stats is None:
        return EmperorRow(False, pid, None, "", 0, (), 0)
    return EmperorRow(
        running=True,
        pid=stats.pid,
        channel=channel,
        version=stats.version,
        vassals=len(stats.vassals),
        blacklisted=tuple(entry.id for entry in stats.blacklist),
        throttle_level=stats.throttle_level,
    )


def rate(now: int, before: int, elapsed: float) -> float:
    # Counters restart at 0 when a worker or master is replaced: never a negative rate.
    return max(0, now - before) / elapsed if elapsed > 0 else 0.0


def _act_row(
    reading: ActReading,
    emperor: EmperorStats | None,
    earlier: ActRow | None,
    elapsed: float,
    gigs: dict[str, tuple[str, ...]] | None,
    manager: ManagerRow = ManagerRow(True, None),
) -> ActRow:
    stats = reading.stats
    sess = Sess.from_stats(stats) if stats else None
    state = derive_state(
        enabled=reading.enabled,
        blacklisted=emperor is not None and emperor.blacklisted(reading.vassal),
        serving=sess is not None and sess.accepting,
        invalid=bool(reading.problem),
        sleeping=emperor is not None and emperor.waiting(reading.vassal),
    )
    refused = emperor.blacklist_entry(reading.vassal) if emperor is not None else None
    reason = explain(
        state,
        reading.key,
        reading.port,
        problem=reading.problem,
        refused=reading.refused,
        port_holder=reading.port_holder,
        attempts=refused.attempt if refused is not None else 0,
        manager_running=manager.running,
        emperor_running=emperor is not None,
        spawned=(entry := emperor.vassal(reading.vassal) if emperor else None) is not None
        and entry.pid > 0,
    )
    hosts = None if gigs is None else gigs.get(reading.key, ())
    if (
        stats is None
        and earlier is not None
        and earlier.reason == reason
        and _still(earlier, reading, state, hosts)
    ):
        return earlier  # most Acts of a big Production sleep: nothing to work out again
    workers = sess.workers if sess else ()
    before = {(w.id, w.pid): w for w in earlier.worker_rows} if earlier else {}
    worker_rows = []
    for w in workers:
        seen = before.get((w.id, w.pid))
        rps = rate(w.requests, seen.requests, elapsed) if seen and elapsed else None
        # its fields as they are: asdict would deep-copy each of them
        worker_rows.append(WorkerRow(**vars(w), rps=rps))
    served = [w.avg_rt for w in workers if w.requests]
    comparable = earlier is not None and earlier.pid is not None and stats is not None
    requests = stats.requests if stats else 0
    return ActRow(
        key=reading.key,
        venue=reading.venue,
        act=reading.act,
        state=state,
        enabled=reading.enabled,
        pid=stats.pid if stats else None,
        port=(port_of(stats) if stats else None) or reading.port,
        workers=len(workers),
        busy=stats.busy if stats else 0,
        idle=stats.idle if stats else 0,
        requests=requests,
        rps=rate(requests, earlier.requests, elapsed) if comparable and earlier else None,
        avg_rt=sum(served) // len(served) if served else 0,
        rss=stats.rss if stats else 0,
        exceptions=stats.exceptions if stats else 0,
        harakiri=sum(w.harakiri for w in workers),
        respawns=sum(w.respawns for w in worker_rows),
        listen_queue=stats.listen_queue if stats else 0,
        gigs=hosts,
        worker_rows=tuple(worker_rows),
        log_path=reading.log_path,
        log_tail=reading.log_tail,
        problem=reading.problem,
        daemons=daemon_rows(stats) if stats else (),
        responses=_responses(reading.stats),
        refused=reading.refused,
        reason=reason,
        max_workers=len(stats.workers) if stats else 0,
    )


def _still(row: ActRow, reading: ActReading, state: str, hosts: tuple[str, ...] | None) -> bool:
    """`row`, of an Act without stats then, is what `reading` (without stats) makes now."""
    return row.pid is None and (
        row.key,
        row.state,
        row.enabled,
        row.port,
        row.gigs,
        row.log_path,
        row.log_tail,
        row.problem,
        row.refused,
    ) == (
        reading.key,
        state,
        reading.enabled,
        reading.port,
        hosts,
        reading.log_path,
        reading.log_tail,
        reading.problem,
        reading.refused,
    )


def _script_name(path: str) -> tuple[str, str]:
    """("worker", "celery") from ".../bin/worker-celery", as the Stage Set names scripts."""
    base = path.split()[-1].rsplit("/", 1)[-1] if path.split() else path
    kind, sep, name = base.partition("-")
    return (kind, name) if sep and kind in ("worker", "cron") else ("worker", base)


def daemon_rows(stats: InstanceStats) -> tuple[DaemonRow, ...]:
    rows = [DaemonRow(*_script_name(d.cmd), pid=d.pid, respawns=d.respawns) for d in stats.daemons]
    rows += [DaemonRow("cron", _script_name(c.command)[1], 0, 0) for c in stats.crons]
    return tuple(rows)


RESPONSE_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def _responses(stats: InstanceStats | None) -> tuple[int, int, int, int] | None:
    """The vassal's `responses.Nxx` metrics (see vassal.ini.j2), or None without them."""
    if stats is None or f"responses.{RESPONSE_CLASSES[0]}" not in stats.metrics:
        return None
    a, b, c, d = (stats.metrics.get(f"responses.{name}", 0) for name in RESPONSE_CLASSES)
    return a, b, c, d


def human_size(n: int) -> str:
    """Bytes as uwsgitop shows them: 512, 3.2K, 41.0M, 1.2G."""
    for unit, size in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
