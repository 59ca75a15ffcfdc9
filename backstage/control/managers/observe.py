"""Taking a Snapshot: the declared files read once, every stats server read at once.

Each stats server is read in a thread of its own with a short timeout, so an Act
whose server hangs costs the refresh at most that timeout, not one timeout per Act
in a row. The router's stats are read here too, once: the view takes the router and
the Gigs from the Snapshot rather than asking again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

from emperor.process import tail
from emperor.stats import (
    EmperorStats,
    InstanceStats,
    RouterStats,
    parse_instance_stats,
    stats_or_none,
)

from ...errors import BackstageError
from ...files import declared
from ...files.declared import Declared, DeclaredAct
from ...model import snapshot
from ...model.gig import Gig, gigs_from, split_address
from ...model.layout import ActRef, Layout
from ...model.sess import Sess, port_of
from ...model.snapshot import ActReading, CertRow, ManagerRow, RouterRow, Snapshot
from ..host import unplayables
from ..host.ports import port_free
from ..processes.crew import Crew

READ_TIMEOUT = 0.5  # seconds one stats server may take before its Act shows "no stats"
LOG_LINES = 20
# Threads, not processes: each read mostly waits on a socket. Enough that a few
# stuck servers do not queue the healthy ones behind them.
MAX_READERS = 64

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


@dataclasses.dataclass(frozen=True)
class _Paths:
    vassal: str
    stats: str
    log: str
    socket: str
    wake: str


_paths: dict[tuple[str, ActRef], _Paths] = {}


def _paths_of(layout: Layout, ref: ActRef) -> _Paths:
    """An Act's names and paths, worked out once: a Snapshot of a thousand Acts a
    second would otherwise build five thousand strings a second, the same ones."""
    found = _paths.get((layout.home, ref))
    if found is None:
        found = _paths[(layout.home, ref)] = _Paths(
            layout.vassal(ref),
            layout.act_stats(ref),
            layout.act_log(ref),
            layout.act_socket(ref),
            layout.act_wake(ref),
        )
    return found


def take(
    crew: Crew,
    previous: Snapshot | None = None,
    detail: str | None = None,
    timeout: float = READ_TIMEOUT,
) -> Snapshot:
    """Read the Production now. `detail` names an Act (VENUE/NAME) whose last log lines
    to include: only the one a viewer has open, so a refresh reads one log, not all."""
    layout, stage, router = crew.layout, crew.stage, crew.router
    production = declared.read(layout)
    acts = production.acts
    pool = _readers()
    router_future = pool.submit(router.stats, timeout)
    # first the Emperor: a sleeping Act has no stats server to ask
    emperor = stage.stats(timeout)
    paths = [_paths_of(layout, found.ref) for found in acts]
    futures = [
        None
        if emperor is not None and emperor.waiting(path.vassal)
        else pool.submit(stats_or_none, path.stats, parse_instance_stats, timeout)
        for path in paths
    ]
    manager_pid = crew.manager.pid()
    unplayable = unplayables.read(layout, (found.ref for found in acts if found.spec))
    stats = [future.result() if future else None for future in futures]
    holders = _port_holders(acts, stats, emperor, layout, production.production.router)
    readings = []
    for found, read_stats, path in zip(acts, stats, paths, strict=True):
        ref, spec = found.ref, found.spec
        log_path = path.log
        readings.append(
            ActReading(
                key=ref.key,
                venue=ref.venue,
                act=ref.name,
                vassal=path.vassal,
                enabled=spec.enabled if spec else False,
                port=spec.port if spec else 0,
                stats=read_stats,
                log_path=log_path,
                log_tail=tuple(tail(log_path, LOG_LINES).splitlines())
                if ref.key == detail
                else None,
                problem=found.error or unplayable.get(ref.key, ""),
                port_holder=holders.get(ref.key, ""),
                # only an adopted Act's code is refused (a scaffold's file is never there):
                # a thousand opens of files that are not there are most of a refresh
                refused=_first_line(layout.act_refused(ref))
                if not spec or spec.watch or spec.adopted
                else "",
            )
        )
    router_stats = router_future.result()
    address = production.production.router
    silent = {reading.key for reading in readings if not _serves(reading, emperor)}
    try:
        gigs: list[Gig] | None = _gigs(layout, production, router_stats, silent)
    except BackstageError:
        gigs = None  # a router address that cannot be read: no Gigs to show
    at, wall = time.monotonic(), time.time()
    taken = snapshot.build(
        production=layout.home,
        at=at,
        wall=wall,
        emperor=snapshot.emperor_row(
            emperor,
            stage.pid() if emperor is None else emperor.pid,
            stage.channel_kind(emperor) if emperor else None,
        ),
        emperor_stats=emperor,
        readings=readings,
        router=RouterRow(
            running=router_stats is not None, address=address, warning=router_warning(crew)
        ),
        gigs=gigs,
        manager=ManagerRow(running=manager_pid is not None, pid=manager_pid),
        previous=previous,
        problem=production.problem,
    )
    return dataclasses.replace(taken, certificates=certificates(crew))


def certificates(crew: Crew) -> tuple[CertRow, ...]:
    """Each host's certificate, and each host ACME failed for, from their files."""
    acme = crew.router.acme
    certs = {c.host: c for c in crew.router.certificates.all()}
    rows = []
    for host in sorted(set(certs) | set(acme.tried())):
        cert = certs.get(host)
        attempt = acme.attempt(host)
        info = cert.info if cert else None
        rows.append(
            CertRow(
                host=host,
                source=cert.source if cert else "acme",
                not_after=info.not_after.timestamp() if info else None,
                error=(cert.error if cert else "") or attempt.error,
                failures=attempt.failures,
            )
        )
    return tuple(rows)


def _serves(reading: ActReading, emperor: EmperorStats | None) -> bool:
    """The Act takes requests now, or the Emperor does for it (asleep): what its state
    says (running or sleeping), so that a Gig is live exactly when its Act shows so."""
    if reading.stats is not None:
        return Sess.from_stats(reading.stats).accepting
    return emperor is not None and emperor.waiting(reading.vassal)


def _first_line(path: str) -> str:
    try:
        with open(path, errors="replace") as found:
            return found.readline().strip()
    except OSError:
        return ""


def gigs(crew: Crew) -> list[Gig]:
    """Every booked or live host, from the declared bookings and the router's stats only."""
    return _gigs(crew.layout, declared.read(crew.layout), crew.router.stats())


def _gigs(
    layout: Layout,
    production: Declared,
    stats: RouterStats | None,
    silent: Collection[str] = (),
) -> list[Gig]:
    """`silent`: the Acts that serve nothing now, whose nodes the router may still list
    (it drops a dead node only at the next request for its host): no Gig is live
    through them."""
    acts = production.acts
    return gigs_from(
        stats,
        split_address(production.production.router)[1],
        # a sleeping Act is live at its wake node (the Manager's, see waker.py)
        {path: found.ref.key for found in acts for path in _sockets(layout, found.ref)},
        [(found.ref.key, host) for found in acts if found.spec for host in found.spec.hosts],
        silent,
    )


def _sockets(layout: Layout, ref: ActRef) -> tuple[str, str]:
    paths = _paths_of(layout, ref)
    return paths.socket, paths.wake


def _port_holders(
    acts: Sequence[DeclaredAct],
    stats: Sequence[InstanceStats | None],
    emperor: EmperorStats | None,
    layout: Layout,
    router: str,
) -> dict[str, str]:
    """Act key to who holds its port, for each enabled Act that does not play although
    the Emperor runs and does not list it: what keeps it `starting`. One bind attempt
    for each such Act, none for the others."""
    if emperor is None:
        return {}
    listed = {vassal.id for vassal in emperor.vassals}
    playing = {
        port_of(found): found_act.ref.key
        for found_act, found in zip(acts, stats, strict=True)
        if found is not None
    }
    try:
        playing.setdefault(split_address(router)[1], "the Production's router")
    except BackstageError:
        pass
    holders = {}
    for found, read in zip(acts, stats, strict=True):
        spec = found.spec
        if spec is None or not spec.enabled or read is not None:
            continue
        if _paths_of(layout, found.ref).vassal in listed or port_free(spec.port):
            continue
        holders[found.ref.key] = playing.get(spec.port) or "another process"
    return holders


def router_warning(crew: Crew) -> str:
    """Why the router is open to abuse, or ""."""
    settings = crew.router.settings()
    if settings.beyond_loopback and not settings.signs:
        return (
            f"the router takes unsigned subscriptions from other hosts at "
            f"{settings.subscription_server}: whoever reaches it can serve any Gig; "
            "remove router_sign = false from production.toml"
        )
    if settings.https and not crew.router.serves_tls():
        return (
            f"https = {settings.https!r}, but the router's uwsgi has no SSL: no TLS "
            "listener (install uwsgi with libssl-dev present, not the pyuwsgi wheel)"
        )
    return ""
