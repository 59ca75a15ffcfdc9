"""The status of a Production as plain data: what `backstage status --json` prints.

Later keys are added, never renamed: scripts read this.
"""

from __future__ import annotations

from typing import Any

from .production import Production


def status(production: Production) -> dict[str, Any]:
    stage = production.stage
    emperor = stage.stats()
    acts = []
    for act in production.acts:
        sess = act.sess
        acts.append(
            {
                "venue": act.venue.name,
                "act": act.name,
                "state": act.state_from(emperor, sess),
                "pid": sess.pid if sess else None,
                "port": sess.port if sess and sess.port else act.spec.port,
                "workers": len(sess.workers) if sess else 0,
                "requests": sess.requests if sess else 0,
                "rss": sess.rss if sess else 0,
            }
        )
    return {
        "production": production.home,
        "emperor": {
            "running": emperor is not None,
            "pid": emperor.pid if emperor else stage.pid(),
            "channel": stage.channel_kind(emperor),
        },
        "acts": acts,
        "router": {
            "running": production.router.running,
            "address": production.router.address,
        },
        "gigs": [gig.as_dict() for gig in production.gigs],
    }
