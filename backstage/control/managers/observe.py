"""Taking a Snapshot: the declared files read once, every stats server read at once.

The awake Acts' stats servers are read together in one poll(2) loop with a short
timeout, so an Act whose server hangs costs the refresh at most that timeout, not
one timeout per Act in a row (and no thread each: waking fifty threads a second cost
more than the reading). The Emperor's and the router's are read in two threads while
the declared files are. The router's stats are read here once: the view takes the
router and the Gigs from the Snapshot rather than asking again.

Most Acts of a big Production sleep: what an Act without stats was made of (its
declaration, its entry in the Emperor's stats, ...) is kept with its row, and the same
objects again make the same row without working it out again. An awake Act's stats
that read the same bytes as before are not parsed again.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

from emperor.errors import StatsUnavailable, StatsUnparsable
from emperor.process import tail
from emperor.stats import (
    EmperorStats,
    InstanceStats,
    RouterStats,
    VassalEntry,
    parse_instance_stats,
)
from emperor.statswire import read_many

from ...errors import BackstageError
from ...files import declared
from ...files.declared import Declared, DeclaredAct
from ...model import snapshot
from ...model.gig import Gig, gigs_by_act, gigs_from, split_address
from ...model.layout import ActRef, Layout
from ...model.sess import Sess, port_of
from ...model.snapshot import ActReading, ActRow, CertRow, ManagerRow, RouterRow, Snapshot
from ..host import unplayables
from ..host.ports import port_free
from ..processes.crew import Crew

READ_TIMEOUT = 0.5  # seconds one stats server may take before its Act shows "no stats"
LOG_LINES = 20
# The Emperor's stats and the router's, read while the declared files are
MAX_READERS = 2

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _readers() -> ThreadPoolExecutor:
    """The reader threads, kept from one snapshot to the next: starting threads every
    second would cost `backstage top` more than the reading itself."""
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


_paths: dict[tuple[str, str], tuple[ActRef, _Paths]] = {}


def _paths_of(layout: Layout, ref: ActRef) -> _Paths:
    """An Act's names and paths, worked out once: a Snapshot of a thousand Acts a
    second would otherwise build five thousand strings a second, the same ones. Looked
    up by its key (a string, which keeps its hash), for the same ref."""
    found = _paths.get((layout.home, ref.key))
    if found is None or (found[0] is not ref and found[0] != ref):
        found = _paths[(layout.home, ref.key)] = (
            ref,
            _Paths(
                layout.vassal(ref),
                layout.act_stats(ref),
                layout.act_log(ref),
                layout.act_socket(ref),
                layout.act_wake(ref),
            ),
        )
    return found[1]


def take(
    crew: Crew,
    previous: Snapshot | None = None,
    detail: str | None = None,
    timeout: float = READ_TIMEOUT,
) -> Snapshot:
    """Read the Production now. `detail` names an Act (VENUE/NAME) whose last log lines
    to include: only the one a viewer has open, so a refresh reads one log, not all."""
    layout, stage, router = crew.layout, crew.stage, crew.router
    pool = _readers()
    # the Emperor's stats and the router's are read while the declared files are
    router_future = pool.submit(router.stats, timeout)
    emperor_future = pool.submit(stage.stats, timeout)
    production = declared.read(layout)
    acts = production.acts
    # first the Emperor: a sleeping Act has no stats server to ask
    emperor = emperor_future.result()
    entries = emperor.by_id if emperor is not None else {}
    paths = [_paths_of(layout, found.ref) for found in acts]
    listed = [entries.get(path.vassal) for path in paths]
    # the awake Acts' stats servers, all at once in one poll(2): no thread each
    asking = [path.stats for path, entry in zip(paths, listed, strict=True) if not _waits(entry)]
    answers = _instance_stats(_instances.get(layout.home, {}), asking, timeout)
    _instances[layout.home] = {path: answer for path, answer in answers.items() if answer}
    stats = [(answers.get(path.stats) or (b"", None))[1] for path in paths]
    manager_pid = crew.manager.pid()
    unplayable = unplayables.read(layout, (found.ref for found in acts if found.spec))
    holders = _port_holders(acts, stats, listed, emperor, production.production.router)
    router_stats = router_future.result()
    address = production.production.router
    try:
        gigs: list[Gig] | None = _gigs(
            layout, production, router_stats, _silent(acts, stats, listed)
        )
    except BackstageError:
        gigs = None  # a router address that cannot be read: no Gigs to show
    hosts_of = gigs_by_act(gigs or ())
    blacklist = {entry.id: entry for entry in emperor.blacklist} if emperor else {}
    facts = (manager_pid is not None, emperor is not None)
    quiet = _quiet.get(layout.home, {})
    made: dict[str, tuple[object, ...]] = {}
    try:
        refusals = set(os.listdir(layout.refused_dir))
    except OSError:
        refusals = set()
    readings: list[ActReading | ActRow] = []
    for found, read, path, entry in zip(acts, stats, paths, listed, strict=True):
        ref, spec = found.ref, found.spec
        problem = found.error or unplayable.get(ref.key, "")
        holder = holders.get(ref.key, "")
        # one listing rather than a thousand opens of files that are not there, which
        # would be most of a refresh
        refused = ""
        if refusals:  # most often none: no path made for each Act
            refusal = layout.act_refused(ref)
            if os.path.basename(refusal) in refusals:
                refused = _first_line(refusal)
        if read is None and ref.key != detail:
            # An Act without stats (most of a big Production sleep) whose row would be
            # made of the same as the last one's is that row: the same objects in, the
            # same row out, without working it out again
            hosts = None if hosts_of is None else hosts_of.get(ref.key, ())
            made_of: tuple[object, ...] = (found, entry, blacklist.get(path.vassal), problem)
            made_of += (holder, refused, hosts, *facts)
            made[ref.key] = made_of
            before = quiet.get(ref.key)
            if before is not None and before[0] == made_of:
                readings.append(before[1])
                continue
        readings.append(
            ActReading(
                key=ref.key,
                venue=ref.venue,
                act=ref.name,
                vassal=path.vassal,
                enabled=spec.enabled if spec else False,
                port=spec.port if spec else 0,
                stats=read,
                log_path=path.log,
                log_tail=tuple(tail(path.log, LOG_LINES).splitlines())
                if ref.key == detail
                else None,
                problem=problem,
                port_holder=holder,
                refused=refused,
            )
        )
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
    rows = {row.key: row for row in taken.acts}
    _quiet[layout.home] = {key: (made_of, rows[key]) for key, made_of in made.items()}
    return dataclasses.replace(taken, certificates=certificates(crew))


# The rows of the Acts without stats in the last Snapshot of each Production, with
# what each was made of: most Acts of a big Production sleep, and the row of one is
# the same from one refresh to the next.
_quiet: dict[str, dict[str, tuple[tuple[object, ...], ActRow]]] = {}  # by Act key


# What each Act's stats server answered at the last Snapshot of each Production, and
# what it parsed to: an awake Act that served nothing since answers the same bytes.
_instances: dict[str, dict[str, tuple[bytes, InstanceStats]]] = {}


def _instance_stats(
    last: dict[str, tuple[bytes, InstanceStats]], paths: list[str], timeout: float
) -> dict[str, tuple[bytes, InstanceStats] | None]:
    """What each stats server of `paths` answers, and its parsed stats (the ones of
    `last` where it answers the same); None where it does not answer or answers garbage."""
    found: dict[str, tuple[bytes, InstanceStats] | None] = {}
    for path, raw in zip(paths, read_many(paths, timeout), strict=True):
        before = last.get(path)
        if isinstance(raw, StatsUnavailable):
            found[path] = None
        elif before is not None and before[0] == raw:
            found[path] = before
        else:
            try:
                found[path] = raw, parse_instance_stats(raw)
            except StatsUnparsable:
                found[path] = None
    return found


def _waits(entry: VassalEntry | None) -> bool:
    """Its vassal has no process: the Emperor waits for its next request."""
    return entry is not None and entry.waiting


def _silent(
    acts: Sequence[DeclaredAct],
    stats: Sequence[InstanceStats | None],
    listed: Sequence[VassalEntry | None],
) -> set[str]:
    """The Acts that take no request now, nor does the Emperor for them (asleep): a Gig
    is live exactly when its Act shows running or sleeping."""
    silent = set()
    for found, read, entry in zip(acts, stats, listed, strict=True):
        if read is not None:
            if not Sess.from_stats(read).accepting:
                silent.add(found.ref.key)
        elif entry is None or not entry.waiting:
            silent.add(found.ref.key)
    return silent


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
    # the Acts behind the nodes the router lists, not a map of every Act's two sockets
    # (a sleeping Act is live at its wake node, the Manager's, see waker.py)
    names = {node.name for sub in stats.subscriptions for node in sub.nodes} if stats else set()
    by_node = {}
    if names:
        for found in acts:
            for path in _sockets(layout, found.ref):
                if path in names:
                    by_node[path] = found.ref.key
    return gigs_from(
        stats,
        split_address(production.production.router)[1],
        by_node,
        [(found.ref.key, host) for found in acts if found.spec for host in found.spec.hosts],
        silent,
    )


def _sockets(layout: Layout, ref: ActRef) -> tuple[str, str]:
    paths = _paths_of(layout, ref)
    return paths.socket, paths.wake


def _port_holders(
    acts: Sequence[DeclaredAct],
    stats: Sequence[InstanceStats | None],
    listed: Sequence[VassalEntry | None],
    emperor: EmperorStats | None,
    router: str,
) -> dict[str, str]:
    """Act key to who holds its port, for each enabled Act that does not play although
    the Emperor runs and does not list it (`listed`: each Act's entry, or None): what
    keeps it `starting`. One bind attempt for each such Act, none for the others."""
    if emperor is None:
        return {}
    held = [
        (found.ref.key, found.spec.port)
        for found, read, entry in zip(acts, stats, listed, strict=True)
        if read is None and entry is None and found.spec is not None and found.spec.enabled
    ]
    held = [(key, port) for key, port in held if not port_free(port)]
    if not held:
        return {}
    playing = {
        port_of(found): found_act.ref.key
        for found_act, found in zip(acts, stats, strict=True)
        if found is not None
    }
    try:
        playing.setdefault(split_address(router)[1], "the Production's router")
    except BackstageError:
        pass
    return {key: playing.get(port) or "another process" for key, port in held}


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
