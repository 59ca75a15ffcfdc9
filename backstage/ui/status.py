"""The status of a Production as plain data: what `backstage status --json` prints.

Later keys are added, never renamed: scripts read this. It is a view of a
Snapshot, so the command, `backstage top` and the Python API agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..model.snapshot import RESPONSE_CLASSES, Snapshot


def status(snapshot: Snapshot, as_root: Sequence[str] = ()) -> dict[str, Any]:
    """`as_root`: the Venues whose Acts run as root (`Production.venues_as_root`)."""
    emperor = snapshot.emperor
    return {
        "production": snapshot.production,
        "emperor": {"running": emperor.running, "pid": emperor.pid, "channel": emperor.channel},
        "acts": [
            {
                "venue": row.venue,
                "act": row.act,
                "state": row.state,
                "pid": row.pid,
                "port": row.port,
                "workers": row.workers,
                "requests": row.requests,
                "rss": row.rss,
                # added with `backstage top`: the same numbers it shows
                "busy": row.busy,
                "idle": row.idle,
                "rps": row.rps,
                "avg_rt": row.avg_rt,
                "exceptions": row.exceptions,
                "harakiri": row.harakiri,
                "respawns": row.respawns,
                "listen_queue": row.listen_queue,
                # added with hardening: why an Act is invalid ("" when it is not)
                "problem": row.problem,
                # responses by status class, where the vassal counts them (else null)
                "responses": None
                if row.responses is None
                else dict(zip(RESPONSE_CLASSES, row.responses, strict=True)),
                # added with real applications: its workers and cron jobs, from its stats
                "daemons": [dataclasses.asdict(daemon) for daemon in row.daemons],
                # added with the development loop: why the last save was refused ("")
                "refused": row.refused,
                # added with truthful states: what is wrong and what to do ("" if nothing)
                "reason": row.reason,
                # added with adaptive workers: the most it may run (workers: how many run)
                "max_workers": row.max_workers,
            }
            for row in snapshot.acts
        ],
        # added with Gigs
        "router": {"running": snapshot.router.running, "address": snapshot.router.address},
        "gigs": [gig.as_dict() for gig in snapshot.gigs],
        # added with hardening: while the Production Manager runs, what is declared heals
        "manager": {"running": snapshot.manager.running, "pid": snapshot.manager.pid},
        # added with a Venue's user: Venues whose Acts run as root, Backstage being root
        "as_root": list(as_root),
        # added with bad input: why production.toml is not what plays ("" when it is)
        "problem": snapshot.problem,
        # added with HTTPS: each host's certificate (or ACME's failures for it), and what
        # to know: one expiring within 14 days, or ACME failing again and again
        "certificates": [
            {
                "host": cert.host,
                "source": cert.source,
                "not_after": cert.not_after,
                "error": cert.error or None,
                "failures": cert.failures,
                "warning": cert.warning(snapshot.wall) or None,
            }
            for cert in snapshot.certificates
        ],
    }
