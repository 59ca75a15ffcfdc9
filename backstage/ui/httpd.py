"""A small HTTP server run in a thread of its own: what the metrics endpoint and the
dashboard stand on. `start()` binds and returns at once; `stop()` closes and joins.
The constructor only checks its arguments."""

from __future__ import annotations

import ipaddress
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import InvalidSetting
from .metrics import CONTENT_TYPE, render

log = logging.getLogger(__name__)


def parse_address(address: str, what: str) -> tuple[str, int]:
    """HOST:PORT (HOST an IP address; [v6] in brackets) as a (host, port) pair."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not sep or not 0 <= number < 65536:
            raise ValueError(port)
    except ValueError:
        raise InvalidSetting(
            f"{what} = {address!r} is not an address: write IP:PORT, e.g. 127.0.0.1:9100"
        ) from None
    return host, number


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(BaseHTTPRequestHandler):
    """Routes to `app.handle(method, path, headers, body)`, which returns
    (status, content type, body bytes)."""

    server_version = "Backstage"
    app: Any  # set on the subclass made for each server

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 65536)) if length else b""
        try:
            status, ctype, payload = self.app.handle(method, self.path, self.headers, body)
        except Exception:  # one bad request must never take the server down
            log.exception("%s %s failed", method, self.path)
            status, ctype, payload = 500, "text/plain", b"internal error\n"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self._serve("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


class HTTPService:
    """Base of the servers: bind on `start()`, serve in a daemon thread, `stop()`."""

    what = "server"

    def __init__(self, address: str) -> None:
        self.address = address
        self.host, self.port = parse_address(address, self.what)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __str__(self) -> str:
        return f"the {self.what} on {self.address}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def start(self) -> HTTPService:
        handler = type("BoundHandler", (Handler,), {"app": self})
        try:
            server = _Server((self.host, self.port), handler)
        except OSError as exc:
            raise InvalidSetting(
                f"cannot serve the {self.what} on {self.address} ({exc.strerror}): "
                "pick another address"
            ) from None
        self._server = server
        self.port = server.server_address[1]  # port 0 picks a free one
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"backstage-{self.what}", daemon=True
        )
        self._thread.start()
        log.info("%s on %s", self.what, self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class MetricsServer(HTTPService):
    """Serves `render(snapshot_fn())` at /metrics, reading the Production at each scrape."""

    what = "metrics"

    def __init__(self, address: str, snapshot_fn: Any):
        super().__init__(address)
        self.snapshot_fn = snapshot_fn

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        if method != "GET":
            return 405, "text/plain", b"GET /metrics\n"
        if path.split("?")[0] != "/metrics":
            return 404, "text/plain", b"see /metrics\n"
        text = render(self.snapshot_fn())
        return 200, CONTENT_TYPE, text.encode()
