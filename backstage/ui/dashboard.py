"""The live dashboard: one plain HTML page and a small script (package data, no build
step, nothing from the network) over a JSON API.

    GET  /                          the page
    GET  /static/NAME               its script and style
    GET  /api/snapshot?since=WALL   the Acts, Gigs and router now, and the requests per
                                    second of every Act sampled after WALL (the chart)
    GET  /api/acts/VENUE/NAME       one Act: its workers and the end of its log
    POST /api/acts/VENUE/NAME/ACTION   reload, stop or start
    GET  /metrics                   the Prometheus text, as `MetricsServer` serves it

A sampler thread reads the Production every `interval` seconds and keeps the last
`history` seconds of requests per second per Act in memory: however many pages are
open, the Production is read once per interval, and a page opened late still draws
the last minutes.

The token lives in a 0600 file in the Production's home. Every API call needs it
(`Authorization: Bearer TOKEN`; a header, so another site cannot forge one from a
browser), on loopback too: what it shows (every Act, its log's tail) is the
Production's, and any local user reaches loopback. Only the page and its script are
open. On loopback the token file is made at first start; bound elsewhere, without one
the dashboard refuses to start.
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import os
import secrets
import stat
import threading
import urllib.parse
from collections.abc import Callable
from importlib import resources
from typing import Any

from emperor.errors import UwsgiError
from emperor.process import tail

from ..errors import BackstageError, InvalidSetting, NotFound
from .httpd import HTTPService, is_loopback
from .metrics import CONTENT_TYPE, render
from .views import gig_dict, responses_of, tls_mark

log = logging.getLogger(__name__)

ACTIONS = ("reload", "stop", "start")
LOG_LINES = 40
STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

SnapshotFn = Callable[..., Any]  # (previous Snapshot or None) -> Snapshot
ActionFn = Callable[[str, str], object]  # (VENUE/NAME, "reload" | "stop" | "start")


def read_token(path: str) -> str | None:
    """The token in `path`, or None when there is no such file. A file others may read
    is refused: the token is worth what its secrecy is."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise InvalidSetting(f"{path} may be read by others: chmod 600 {path}")
    with open(path) as file:
        token = file.read().strip()
    if len(token) < 16:
        raise InvalidSetting(f"{path} holds no usable token (16 characters at least)")
    return token


def ensure_token(path: str) -> str:
    """The token in `path`, made (0600) when missing."""
    token = read_token(path)
    if token is not None:
        return token
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def act_dict(row: Any) -> dict[str, Any]:
    return {
        "key": row.key,
        "venue": row.venue,
        "act": row.act,
        "state": row.state,
        "reason": row.reason,
        "enabled": row.enabled,
        "pid": row.pid,
        "port": row.port,
        "workers": row.workers,
        "busy": row.busy,
        "idle": row.idle,
        "requests": row.requests,
        "rps": row.rps,
        "avg_rt": row.avg_rt,
        "rss": row.rss,
        "exceptions": row.exceptions,
        "harakiri": row.harakiri,
        "respawns": row.respawns,
        "listen_queue": row.listen_queue,
        "gigs": list(row.gigs or ()),
        "responses": responses_of(row),
    }


def worker_dict(worker: Any) -> dict[str, Any]:
    return {
        name: getattr(worker, name)
        for name in (
            "id",
            "pid",
            "status",
            "requests",
            "rps",
            "exceptions",
            "harakiri",
            "avg_rt",
            "rss",
            "tx",
            "respawns",
            "last_spawn",
        )
    }


class Dashboard(HTTPService):
    what = "dashboard"

    def __init__(
        self,
        address: str,
        token_path: str,
        snapshot_fn: SnapshotFn,
        action_fn: ActionFn,
        interval: float = 2.0,
        history: float = 600.0,
    ) -> None:
        super().__init__(address)
        self.token_path = token_path
        self.snapshot_fn = snapshot_fn
        self.action_fn = action_fn
        self.interval = interval
        self.loopback = is_loopback(self.host)
        self._token: str | None = None
        self._latest: Any = None
        self._history: collections.deque[tuple[float, dict[str, float]]] = collections.deque(
            maxlen=max(2, int(history / interval))
        )
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sampler: threading.Thread | None = None

    # Life

    def start(self) -> Dashboard:
        if self.loopback:
            self._token = ensure_token(self.token_path)
        else:
            self._token = read_token(self.token_path)
            if self._token is None:
                raise InvalidSetting(
                    f"the dashboard on {self.address} reaches beyond this host: it needs "
                    f"a token in {self.token_path} (mode 0600) to start"
                )
        self.sample()  # the first page already has data
        super().start()
        self._stopping.clear()
        self._sampler = threading.Thread(
            target=self._sample_forever, name="backstage-dashboard-sampler", daemon=True
        )
        self._sampler.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        super().stop()
        if self._sampler is not None:
            self._sampler.join(5)
            self._sampler = None

    def _sample_forever(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.sample()
            except Exception:  # a bad reading must not end the sampling
                log.exception("dashboard: reading the Production failed")

    def sample(self) -> Any:
        """Read the Production once and add its rates to the history."""
        snapshot = self.snapshot_fn(self._latest)
        with self._lock:
            self._latest = snapshot
            rates = {row.key: row.rps for row in snapshot.acts if row.rps is not None}
            if rates:
                self._history.append((snapshot.wall, rates))
        return snapshot

    # HTTP

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        url = urllib.parse.urlsplit(path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        if method == "GET" and not parts:
            return 200, "text/html; charset=utf-8", _asset("dashboard.html")
        if method == "GET" and len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC:
            return 200, STATIC[parts[1]], _asset(parts[1])
        if not parts or parts[0] not in ("api", "metrics"):
            return _json(404, {"error": "no such page"})
        if not self._authorized(headers):
            return _json(
                401, {"error": "this dashboard needs its token: paste it in the token field"}
            )
        if method == "GET" and parts == ["metrics"]:
            snapshot = self._snapshot()
            return 200, CONTENT_TYPE, render(snapshot).encode()
        if method == "GET" and parts == ["api", "snapshot"]:
            since = _float(urllib.parse.parse_qs(url.query).get("since", ["0"])[0])
            return _json(200, self.state(since))
        if parts[:2] == ["api", "acts"] and len(parts) == 4 and method == "GET":
            return self._act(f"{parts[2]}/{parts[3]}")
        if parts[:2] == ["api", "acts"] and len(parts) == 5 and method == "POST":
            return self._action(f"{parts[2]}/{parts[3]}", parts[4])
        return _json(404, {"error": "no such page"})

    def _authorized(self, headers: Any) -> bool:
        given = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        return bool(self._token and given) and hmac.compare_digest(
            given.encode(), (self._token or "").encode()
        )

    def _snapshot(self) -> Any:
        with self._lock:
            latest = self._latest
        return latest if latest is not None else self.sample()

    def state(self, since: float = 0.0) -> dict[str, Any]:
        """What the page draws: the latest reading and the samples taken after `since`."""
        snapshot = self._snapshot()
        with self._lock:
            history = [[wall, rates] for wall, rates in self._history if wall > since]
        emperor = snapshot.emperor
        return {
            "production": snapshot.production,
            "wall": snapshot.wall,
            "interval": self.interval,
            "emperor": {
                "running": emperor.running,
                "pid": emperor.pid,
                "channel": emperor.channel,
                "version": emperor.version,
                "blacklisted": list(emperor.blacklisted),
            },
            "router": {"running": snapshot.router.running, "address": snapshot.router.address},
            "gigs": [gig_dict(gig, tls_mark(snapshot, gig.host)) for gig in snapshot.gigs],
            "acts": [act_dict(row) for row in snapshot.acts],
            "history": history,
        }

    def _act(self, key: str) -> tuple[int, str, bytes]:
        row = self._snapshot().act(key)
        if row is None:
            return _json(404, {"error": f"no Act {key}"})
        return _json(
            200,
            {
                **act_dict(row),
                "workers_detail": [worker_dict(w) for w in row.worker_rows],
                "log_path": row.log_path,
                "log_tail": tail(row.log_path, LOG_LINES).splitlines(),
            },
        )

    def _action(self, key: str, action: str) -> tuple[int, str, bytes]:
        if action not in ACTIONS:
            return _json(404, {"error": f"no action {action!r}: {', '.join(ACTIONS)}"})
        if self._snapshot().act(key) is None:
            return _json(404, {"error": f"no Act {key}"})
        log.info("dashboard: %s %s", action, key)
        try:
            self.action_fn(key, action)
        except NotFound as exc:
            return _json(404, {"error": str(exc)})
        except (BackstageError, UwsgiError) as exc:
            return _json(409, {"error": str(exc)})
        self.sample()
        return _json(200, {"ok": True, "key": key, "action": action})


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _json(status: int, data: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(data).encode()


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
