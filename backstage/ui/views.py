"""Plain dictionaries of Snapshot parts, as the dashboard and the metrics read them."""

from __future__ import annotations

from typing import Any

from ..model.gig import Gig

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def responses_of(row: Any) -> dict[str, int] | None:
    """Responses by status class ("2xx"...), or None where the vassal does not count them."""
    counts = getattr(row, "responses", None)
    return dict(zip(STATUS_CLASSES, counts, strict=True)) if counts is not None else None


def node_requests(gig: Gig) -> dict[str, int]:
    return dict(zip(gig.nodes, gig.node_requests, strict=False))


def tls_mark(snapshot: Any, host: str) -> str:
    """A host's mark in the dashboard and `top`: "tls" (its certificate serves), "tls!"
    (it will not for long, or ACME keeps failing, or its file does not load), "" (none)."""
    cert = next((c for c in getattr(snapshot, "certificates", ()) if c.host == host), None)
    if cert is None:
        return ""
    if cert.warning(snapshot.wall) or cert.not_after is None:
        return "tls!"
    return "tls"


def gig_dict(gig: Gig, tls: str = "") -> dict[str, Any]:
    return {
        "host": gig.host,
        "acts": list(gig.acts),
        "nodes": list(gig.nodes),
        "requests": gig.requests,
        "booked": list(gig.booked),
        "playing": bool(gig.nodes),
        "node_requests": node_requests(gig),
        "tls": tls,
    }
