"""The waker: how a Gig reaches an Act that sleeps.

A sleeping Act has no process, and it unsubscribed from the router when it went to
sleep: the router no longer passes its hosts' requests to the Act's own uwsgi socket in
`run/`. So the Production Manager keeps, for each
booked Act that may sleep, a unix socket of its own (`run/VENUE.NAME.wake`) and
announces it under the Act's hosts, weighed far below the Act's own node: while the
Act plays, nearly every request goes straight to it (and the few that come here are
passed to it), and once it has unsubscribed, falling asleep, every one comes here. A
connection here is passed to the Act's own socket: held by the socket holder while it
sleeps, it takes the connection at once, and the holder, seeing it wait, has the
Emperor spawn the Act (see `emperor.holder`). Where nothing holds that socket (a Stage
without the holder) it wakes the Act first by a connection to its port, which the
Emperor holds and answers by spawning it, and waits until the socket accepts. The bytes
go both ways: the request waits while the Act starts and is answered.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass

from ...files.fs import unlink_if_present

log = logging.getLogger(__name__)

WAKE_TIMEOUT = 60.0  # how long a request waits for its Act to start
MAX_RELAYS = 256  # requests relayed at once; more are closed (the router answers 502)
CHUNK = 65536


@dataclass(frozen=True)
class Sleeper:
    """An Act the waker wakes: where it listens for the router, the Act's port (which
    wakes it) and the Act's own uwsgi socket (where requests go once it is up)."""

    wake_path: str
    port: int
    socket_path: str


class Waker:
    """Listens at each Sleeper's wake path in one thread; relays each request in a
    thread of its own. Constructing it does nothing; `keep` binds and `stop` closes."""

    def __init__(self) -> None:
        self._selector: selectors.BaseSelector | None = None
        self._listeners: dict[str, tuple[socket.socket, Sleeper]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._relays = threading.BoundedSemaphore(MAX_RELAYS)

    def keep(self, sleepers: list[Sleeper]) -> None:
        """Listen for exactly these Acts (a pass of the Manager calls it)."""
        wanted = {s.wake_path: s for s in sleepers}
        with self._lock:
            if self._selector is None:
                self._selector = selectors.DefaultSelector()
            for path in list(self._listeners):
                listener, sleeper = self._listeners[path]
                if wanted.get(path) != sleeper:
                    self._selector.unregister(listener)
                    listener.close()
                    del self._listeners[path]
                    unlink_if_present(path)
            for path, sleeper in wanted.items():
                if path not in self._listeners:
                    listener = _listen(path)
                    self._selector.register(listener, selectors.EVENT_READ, sleeper)
                    self._listeners[path] = (listener, sleeper)
        if self._listeners and self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="waker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with self._lock:
            for path, (listener, _) in self._listeners.items():
                listener.close()
                unlink_if_present(path)
            self._listeners.clear()

    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        while not self._stopping.is_set():
            # keep() may register and close listeners meanwhile: epoll takes a new one at
            # once, and a closed one fails its accept, which is skipped
            for key, _ in selector.select(0.5):
                try:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                if not self._relays.acquire(blocking=False):
                    conn.close()
                    continue
                threading.Thread(
                    target=self._relay, args=(conn, key.data), name="wake", daemon=True
                ).start()

    def _relay(self, conn: socket.socket, sleeper: Sleeper) -> None:
        try:
            with conn:
                conn.settimeout(WAKE_TIMEOUT)
                first = conn.recv(CHUNK)  # a connection that says nothing wakes nobody
                if not first:
                    return
                backend = wake(sleeper, WAKE_TIMEOUT)
                if backend is None:
                    log.warning("%s did not wake within %.0f s", sleeper.socket_path, WAKE_TIMEOUT)
                    return
                with backend:
                    backend.sendall(first)
                    splice(conn, backend)
        except OSError as exc:
            log.debug("relaying to %s: %s", sleeper.socket_path, exc)
        finally:
            self._relays.release()


def wake(sleeper: Sleeper, timeout: float) -> socket.socket | None:
    """A connection to the Act's own socket, waking the Act first if need be; None when
    it did not come up in time."""
    deadline = time.monotonic() + timeout
    poked = False
    while time.monotonic() < deadline:
        try:
            backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            backend.settimeout(timeout)
            backend.connect(sleeper.socket_path)
            return backend
        except OSError:
            backend.close()
        if not poked:
            # a connection at its port is what the Emperor spawns it on; nothing is sent
            try:
                socket.create_connection(("127.0.0.1", sleeper.port), timeout=2.0).close()
                poked = True
            except OSError:
                pass
        time.sleep(0.01)
    return None


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides have finished sending."""
    a.setblocking(True)
    b.setblocking(True)
    open_ends = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        for sock in open_ends:
            selector.register(sock, selectors.EVENT_READ)
        while open_ends:
            events = selector.select(WAKE_TIMEOUT)
            if not events:
                return  # neither side said anything for that long
            for key, _ in events:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(CHUNK)
                target = open_ends[source]
                if data:
                    target.sendall(data)
                    continue
                selector.unregister(source)
                del open_ends[source]
                try:
                    target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


def _listen(path: str) -> socket.socket:
    unlink_if_present(path)  # left by a Manager that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)  # run/ is 0700 already; the router runs as the same user
    listener.listen(128)
    listener.setblocking(False)
    return listener
