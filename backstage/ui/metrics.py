"""The Production in the Prometheus text exposition format (version 0.0.4).

`render(snapshot)` is a pure function of plain data; `backstage metrics` prints
it and `MetricsServer` serves it at `/metrics`. Names follow Prometheus conventions:
the `backstage_` prefix, base units (`_bytes`, `_seconds`), counters end in `_total`,
and every Act series has `venue` and `act` labels. uWSGI's counters start again at 0
when a vassal restarts; Prometheus's `rate()` takes such resets in its stride.

Written by hand rather than with prometheus-client: a Snapshot is already one reading,
so a collector would only copy it into the library's families to print them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model.gig import Gig
from .views import node_requests, responses_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("stopped", "starting", "running", "failed", "sleeping", "invalid")

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    kind: str  # counter, gauge
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((tuple(labels.items()), value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_families(families: Iterable[Family]) -> str:
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(
                f"{family.name}{{{text}}} {_number(value)}"
                if text
                else f"{family.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def families(snapshot: Any) -> Iterator[Family]:
    emperor = snapshot.emperor
    up = Family("backstage_emperor_up", "gauge", "1 when the Stage's Emperor answers its stats.")
    up.add(emperor.running)
    yield up
    info = Family("backstage_emperor_info", "gauge", "The Emperor's uWSGI version and channel.")
    info.add(1, version=emperor.version or "", channel=emperor.channel or "")
    yield info
    vassals = Family("backstage_emperor_vassals", "gauge", "Vassals the Emperor runs.")
    vassals.add(emperor.vassals)
    yield vassals
    blacklisted = Family(
        "backstage_emperor_blacklisted_vassals", "gauge", "Vassals the Emperor refuses for now."
    )
    blacklisted.add(len(emperor.blacklisted))
    yield blacklisted

    router = Family("backstage_router_up", "gauge", "1 when the Production's HTTP router runs.")
    router.add(snapshot.router.running, address=snapshot.router.address)
    yield router

    yield from _act_families(snapshot.acts)
    yield from _gig_families(snapshot.gigs)
    yield from _certificate_families(getattr(snapshot, "certificates", ()))


def _act_families(rows: Iterable[Any]) -> Iterator[Family]:
    state = Family("backstage_act_state", "gauge", "1 for the state the Act is in, else 0.")
    enabled = Family("backstage_act_enabled", "gauge", "1 when the Act is declared to play.")
    workers = Family("backstage_act_workers", "gauge", "Workers of the Act by status.")
    requests = Family("backstage_act_requests_total", "counter", "Requests the Act served.")
    responses = Family(
        "backstage_act_responses_total", "counter", "Responses of the Act by status class."
    )
    exceptions = Family("backstage_act_exceptions_total", "counter", "Exceptions in requests.")
    harakiri = Family(
        "backstage_act_harakiri_total", "counter", "Requests killed for running too long."
    )
    respawns = Family("backstage_act_respawns_total", "counter", "Workers uWSGI replaced.")
    queue = Family("backstage_act_listen_queue", "gauge", "Connections waiting to be accepted.")
    memory = Family("backstage_act_resident_memory_bytes", "gauge", "Resident memory of workers.")
    rt = Family(
        "backstage_act_avg_response_time_seconds",
        "gauge",
        "uWSGI's running average of the response time, over the workers that served.",
    )
    wrong = Family(
        "backstage_act_wrong",
        "gauge",
        "1 while something is wrong with the Act: the reason says what, and what to do.",
    )
    for row in rows:
        act = {"venue": row.venue, "act": row.act}
        for name in STATES:
            state.add(row.state == name, **act, state=name)
        if row.reason:
            wrong.add(1, **act, state=row.state, reason=row.reason)
        enabled.add(row.enabled, **act)
        workers.add(row.busy, **act, status="busy")
        workers.add(row.idle, **act, status="idle")
        workers.add(max(0, row.workers - row.busy - row.idle), **act, status="other")
        requests.add(row.requests, **act)
        for code, count in (responses_of(row) or {}).items():
            responses.add(count, **act, code=code)
        exceptions.add(row.exceptions, **act)
        harakiri.add(row.harakiri, **act)
        respawns.add(row.respawns, **act)
        queue.add(row.listen_queue, **act)
        memory.add(row.rss, **act)
        rt.add(row.avg_rt / 1e6, **act)
    yield from (state, wrong, enabled, workers, requests, responses, exceptions, harakiri)
    yield respawns
    yield from (queue, memory, rt)


def _certificate_families(certificates: Iterable[Any]) -> Iterator[Family]:
    expiry = Family(
        "backstage_certificate_expiry_timestamp_seconds",
        "gauge",
        "When the host's certificate ends (Unix time); absent while none loads.",
    )
    failures = Family(
        "backstage_certificate_acme_failures",
        "gauge",
        "ACME tries for the host failed in a row (0 after one that succeeded).",
    )
    for cert in certificates:
        if cert.not_after is not None:
            expiry.add(cert.not_after, host=cert.host, source=cert.source)
        failures.add(cert.failures, host=cert.host)
    yield from (expiry, failures)


def _gig_families(gigs: Iterable[Gig]) -> Iterator[Family]:
    playing = Family("backstage_gig_playing", "gauge", "1 when some Act plays the booked host.")
    nodes = Family("backstage_gig_nodes", "gauge", "Nodes the router passes the host to.")
    requests = Family(
        "backstage_gig_requests_total", "counter", "Requests the router passed for the host."
    )
    per_node = Family(
        "backstage_gig_node_requests_total", "counter", "Requests the router passed to a node."
    )
    for gig in gigs:
        playing.add(bool(gig.nodes), host=gig.host)
        nodes.add(len(gig.nodes), host=gig.host)
        requests.add(gig.requests, host=gig.host)
        for node, count in node_requests(gig).items():
            per_node.add(count, host=gig.host, node=node)
    yield from (playing, nodes, requests, per_node)


def render(snapshot: Any) -> str:
    """The Prometheus text of a Snapshot."""
    return format_families(families(snapshot))
