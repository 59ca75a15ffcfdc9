"""What the views read beside the Acts: the router and the Gigs.

A Snapshot carries them as `router` and `gigs` once it has them; until then the
caller passes a function that returns them. `node_requests` (requests per node, in
the order of `nodes`) is read where a Gig has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


class RouterView(Protocol):
    @property
    def running(self) -> bool: ...
    @property
    def address(self) -> str: ...


class GigView(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def acts(self) -> tuple[str, ...]: ...
    @property
    def nodes(self) -> tuple[str, ...]: ...
    @property
    def requests(self) -> int: ...
    @property
    def booked(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Extras:
    router: RouterView | None = None
    gigs: Sequence[GigView] = ()


ExtrasFn = Callable[[], Extras]


def extras_of(snapshot: Any, extras_fn: ExtrasFn | None) -> Extras:
    """The router and Gigs from the Snapshot when it has them, else from `extras_fn`."""
    if hasattr(snapshot, "gigs") and hasattr(snapshot, "router"):
        return Extras(snapshot.router, tuple(snapshot.gigs))
    return extras_fn() if extras_fn else Extras()


def responses_of(row: Any) -> dict[str, int] | None:
    """Responses by status class ("2xx"...), or None where the vassal does not count them."""
    counts = getattr(row, "responses", None)
    return dict(zip(STATUS_CLASSES, counts, strict=True)) if counts is not None else None


def node_requests(gig: GigView) -> dict[str, int] | None:
    counts = getattr(gig, "node_requests", None)
    return dict(zip(gig.nodes, counts, strict=True)) if counts is not None else None


def gig_dict(gig: GigView) -> dict[str, Any]:
    return {
        "host": gig.host,
        "acts": list(gig.acts),
        "nodes": list(gig.nodes),
        "requests": gig.requests,
        "booked": list(gig.booked),
        "playing": bool(gig.nodes),
        "node_requests": node_requests(gig),
    }
