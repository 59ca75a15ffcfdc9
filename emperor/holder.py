"""The holder: a small process that binds vassals' listening sockets and keeps them,
so that they outlive any vassal master, the Emperor and the router (see `heldwire`).

It knows what to hold from the held files in its folder (`NAME.json`, one a vassal,
written by whoever pushes the vassal): it binds each address listed when it can,
hands a vassal's sockets to the wrapper that asks for them, and closes an address no
file lists any more (the vassal was withdrawn, or its port changed). It never
accepts a connection on a held socket: while no master does, the kernel queues them.

A vassal the Emperor spawns on demand (one that dies when idle) names a wake socket in its
held file: the Emperor's on-demand socket, a unix one. The holder watches that vassal's
held sockets and, when a connection waits at one, connects to the wake socket without
a word: the Emperor spawns the vassal, which takes its held sockets from the wrapper and
serves what waited (and accepts that empty connection too, so it wakes nobody again).
Connections keep waiting while no Emperor runs; the holder connects again every
WAKE_AGAIN seconds while any waits, so the next Emperor is told as soon as it listens.

    python -m emperor.holder SOCKET DIR PIDFILE LOCK

Run once per Emperor; a second one sees the lock taken and exits at once. Whoever
starts it may pass it sockets a holder before held (copies it kept, at fds named by
INHERITED_ENV as {"ADDRESS": FD}): those are held as they are, with the connections
that wait in them, rather than bound anew.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .heldwire import MAX_FDS, hand

log = logging.getLogger(__name__)

BACKLOG = 1024  # connections that wait while no master accepts (capped by somaxconn)
BIND_FOR = 3.0  # how long a request waits for an address still bound elsewhere: the
# workers of a master killed before the holder held its port let go of it in ~0.1 s
LOOK_EVERY = 0.5  # seconds between looks at the held files
INHERITED_ENV = "HELD_INHERITED"  # {"ADDRESS": FD} of the sockets a holder starts with
# seconds before a vassal whose sockets still have a connection waiting is woken again:
# its start takes longer (its socket is not watched meanwhile), and an awake vassal
# whose workers are all busy is told no more often than this (an empty connection)
WAKE_AGAIN = 0.5


@dataclass(frozen=True)
class HeldFile:
    """What the holder holds for one vassal: its addresses, in fd order. An address with
    a ":" is TCP (`host:port`), else a unix socket path; `owner` (uid, gid) is given to
    the unix ones, as if the vassal, dropped to that user, had bound them itself."""

    addresses: tuple[str, ...]
    owner: tuple[int, int] | None = None
    wake: str = ""  # a unix socket to connect to when a connection waits at one of them

    def dumps(self) -> str:
        data: dict[str, object] = {"addresses": list(self.addresses)}
        if self.owner is not None:
            data["owner"] = list(self.owner)
        if self.wake:
            data["wake"] = self.wake
        return json.dumps(data, sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> HeldFile:
        """ValueError for anything that is not a held file."""
        data = json.loads(text)
        addresses = data.get("addresses") if isinstance(data, dict) else None
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ValueError("no list of addresses")
        if not 0 < len(addresses) <= MAX_FDS:
            raise ValueError(f"not 1 to {MAX_FDS} addresses")
        owner = data.get("owner")
        if owner is not None and not (
            isinstance(owner, list) and len(owner) == 2 and all(isinstance(i, int) for i in owner)
        ):
            raise ValueError("owner is not [uid, gid]")
        wake = data.get("wake", "")
        if not isinstance(wake, str) or (wake and split_tcp(wake) is not None):
            raise ValueError("wake is not a unix socket path")
        return cls(tuple(addresses), (owner[0], owner[1]) if owner else None, wake)


def split_tcp(address: str) -> tuple[str, int] | None:
    """(host, port) of a TCP address ("127.0.0.1:8001", ":80", "[::1]:80"); None for a
    unix socket path."""
    if ":" not in address or address.startswith("/"):
        return None
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return ("0.0.0.0" if host in ("", "*") else host), int(port)


def held_addresses(path: str, timeout: float = 2.0) -> set[str]:
    """The addresses the holder at `path` holds now. OSError when there is none."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(b"list\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    try:
        return set(json.loads(b"".join(chunks)))
    except ValueError as exc:
        raise OSError(f"the holder answered no list: {exc}") from exc


class _Held:
    """One bound, listening socket, and for a unix one the inode of its path (a socket
    whose path someone removed is bound again: uWSGI's vacuum spares a socket it did not
    bind, but a hand or a cleaner may not)."""

    def __init__(self, sock: socket.socket, inode: int = 0) -> None:
        self.sock, self.inode = sock, inode

    def still_reachable(self, address: str) -> bool:
        if not self.inode:
            return True
        try:
            return os.stat(address).st_ino == self.inode
        except OSError:
            return False


def bind(address: str, owner: tuple[int, int] | None = None) -> _Held:
    """A listening socket at `address`; OSError (EADDRINUSE) when another binds it."""
    tcp = split_tcp(address)
    if tcp is not None:
        family = socket.AF_INET6 if ":" in tcp[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uWSGI binds
            sock.bind(tcp)
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        return _Held(sock)
    if os.path.exists(address):
        if _answers(address):
            raise OSError(errno.EADDRINUSE, f"{address} is bound by a live process")
        os.unlink(address)  # left by a process that was killed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address)
        os.chmod(address, 0o600)  # connecting is writing: its owner's alone
        if owner is not None:
            os.chown(address, *owner)
        sock.listen(BACKLOG)
        inode = os.stat(address).st_ino
    except OSError:
        sock.close()
        raise
    return _Held(sock, inode)


def poke(path: str) -> bool:
    """Connect to the unix socket at `path` and close at once, never waiting: True when
    the connection was queued there (False: nobody listens, or its backlog is full)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.setblocking(False)
        try:
            conn.connect(path)
        except OSError:
            return False
    return True


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


class Holder:
    """The sockets held for the vassals of one folder of held files. Constructing it
    does nothing; `serve` binds its own socket and runs until `stop`."""

    def __init__(
        self,
        socket_path: str,
        folder: str,
        clock: Callable[[], float] = time.monotonic,
        inherited: Mapping[str, int] | None = None,
    ) -> None:
        self.socket_path, self.folder = socket_path, folder
        self._inherited = dict(inherited or {})  # address: fd, held from serve() on
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._seen = -1  # the folder's mtime at the last look
        self._unbound = False  # some listed address could not be bound at the last look
        self._listed: dict[str, tuple[int, int] | None] = {}  # address: owner, by the files
        self._wakes: dict[str, str] = {}  # address: the wake socket its file names
        self._watched: dict[str, socket.socket] = {}  # registered in the selector, by address
        self._quiet_until: dict[str, float] = {}  # wake socket: not woken again before then
        # what is held, which wake sockets or what is quiet changed since _watch() looked:
        # at rest it looks at nothing (a thousand idle vassals, twice a second)
        self._changed = True
        self._selector: selectors.BaseSelector | None = None  # serve()'s, while it runs
        # serve()'s pipe that stop() writes to: a signal does not end the selector's wait
        # (Python retries it), which at rest lasts up to LOOK_EVERY
        self._stop_pipe: int | None = None

    def files(self) -> dict[str, HeldFile]:
        """The held files by vassal name; a file that cannot be read counts as absent."""
        found = {}
        try:
            names = os.listdir(self.folder)
        except OSError:
            return {}
        for entry in names:
            if entry.endswith(".json"):
                held = self._read(entry[: -len(".json")])
                if held is not None:
                    found[entry[: -len(".json")]] = held
        return found

    def _read(self, name: str) -> HeldFile | None:
        if "/" in name or name.startswith("."):
            return None
        try:
            with open(os.path.join(self.folder, name + ".json")) as file:
                return HeldFile.loads(file.read())
        except (OSError, ValueError):
            return None

    def look(self) -> None:
        """Close what no file lists; bind, once, what is listed and not held. Reads the
        files only when the folder changed: a holder started again while the vassals
        hold every port tries those binds each look, not a thousand reads."""
        try:
            changed = os.stat(self.folder).st_mtime_ns
        except OSError:
            changed = 0
        if changed != self._seen:
            self._seen = changed
            files = self.files()
            self._listed = {a: held.owner for held in files.values() for a in held.addresses}
            self._wakes = {a: h.wake for h in files.values() if h.wake for a in h.addresses}
            self._changed = True
        elif not self._unbound:
            return
        with self._lock:
            for address in set(self._held) - set(self._listed):
                self._release(address)
            for address, owner in self._listed.items():
                if address not in self._held:
                    try:
                        self._held[address] = bind(address, owner)
                        self._changed = True
                    except OSError:
                        pass  # bound by a vassal that bound it itself: asked for, retried
            self._unbound = any(address not in self._held for address in self._listed)

    def give(self, name: str) -> list[int]:
        """Copies of the fds of vassal `name`'s sockets, in its file's order, for the
        caller to close (a look may close the originals meanwhile); [] when it has no
        file, or not all of them could be bound within BIND_FOR (then none is held for
        it: the vassal binds them itself, as without a holder)."""
        held = self._read(name)
        if held is None:
            return []
        deadline = self._clock() + BIND_FOR
        while True:
            with self._lock:
                missing, busy = self._bind_missing(held)
                if not missing:
                    return [os.dup(self._held[a].sock.fileno()) for a in held.addresses]
                # only a port bound elsewhere frees itself: no other error is waited out
                if not busy or self._clock() >= deadline or self._stopping.is_set():
                    for address in held.addresses:
                        self._release(address)
                    log.warning("%s: cannot hold %s", name, ", ".join(missing))
                    return []
            time.sleep(0.02)

    def _bind_missing(self, held: HeldFile) -> tuple[list[str], bool]:
        """The addresses of `held` still not bound, and whether each was only busy."""
        missing, busy = [], True
        for address in held.addresses:
            current = self._held.get(address)
            if current is not None and not current.still_reachable(address):
                self._release(address)
                current = None
            if current is None:
                try:
                    self._held[address] = bind(address, held.owner)
                    self._changed = True
                except OSError as exc:
                    missing.append(address)
                    busy = busy and exc.errno == errno.EADDRINUSE
        return missing, busy

    def _release(self, address: str) -> None:
        held = self._held.pop(address, None)
        if held is None:
            return
        self._changed = True
        self._unwatch(address)  # before it closes: epoll would report a closed fd's events
        if held.still_reachable(address) and held.inode:
            try:
                os.unlink(address)
            except OSError:
                pass
        held.sock.close()

    def listing(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def serve(self) -> None:
        # bound and listening under a temporary name, then renamed: whoever sees the path
        # can connect (a path bound but not yet listening refuses, and a wrapper that
        # asked then would bind its vassal's sockets itself)
        temporary = self.socket_path + ".new"  # one holder runs at a time (its lock)
        if os.path.exists(temporary):
            os.unlink(temporary)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(temporary)
        os.chmod(temporary, 0o600)
        listener.listen(64)
        self._adopt()
        os.replace(temporary, self.socket_path)
        stop_r, self._stop_pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            with selectors.DefaultSelector() as selector:
                self._selector = selector
                selector.register(listener, selectors.EVENT_READ)
                selector.register(stop_r, selectors.EVENT_READ)
                last_look = float("-inf")
                while not self._stopping.is_set():
                    if self._clock() - last_look >= LOOK_EVERY:
                        self.look()
                        last_look = self._clock()
                    wait = self._watch()
                    for key, _ in selector.select(wait):
                        if key.fileobj == stop_r:
                            continue
                        if key.fileobj is not listener:
                            self._wake(key.data, key.fileobj)  # type: ignore[arg-type]
                            continue
                        try:
                            conn, _ = listener.accept()
                        except OSError:
                            continue
                        # a request can wait for an address (BIND_FOR): others go on
                        threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
        finally:
            listener.close()
            stop_w, self._stop_pipe = self._stop_pipe, None
            for fd in (stop_r, stop_w):
                os.close(fd)
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
            with self._lock:
                for address in list(self._held):
                    self._release(address)
                self._selector = None

    def _adopt(self) -> None:
        """Hold the inherited sockets as they are (a look lets go of those no file lists)."""
        with self._lock:
            for address, fd in self._inherited.items():
                try:
                    sock = socket.socket(fileno=fd)
                except OSError as exc:
                    log.warning("%s was not passed on: %s", address, exc)
                    continue
                try:
                    inode = 0 if split_tcp(address) else os.stat(address).st_ino
                except OSError:  # its path is gone: nobody reaches it, it is bound anew
                    sock.close()
                    continue
                self._held[address] = _Held(sock, inode)
                self._changed = True
            self._inherited.clear()

    def _watch(self) -> float:
        """Watch the held sockets of the vassals with a wake socket that are not quiet;
        the seconds until the next look or the end of a quiet spell."""
        now = self._clock()
        wait = LOOK_EVERY
        with self._lock:
            for wake, until in list(self._quiet_until.items()):
                if until <= now:
                    del self._quiet_until[wake]
                    self._changed = True
                else:
                    wait = min(wait, until - now)
            if not self._changed or self._selector is None:
                return wait
            self._changed = False
            wanted = {
                address: self._held[address].sock
                for address, wake in self._wakes.items()
                if address in self._held and wake not in self._quiet_until
            }
            for address, sock in list(self._watched.items()):
                if wanted.get(address) is not sock:
                    self._unwatch(address)
            selector = self._selector
            if selector is not None:
                for address, sock in wanted.items():
                    if address not in self._watched:
                        selector.register(sock, selectors.EVENT_READ, address)
                        self._watched[address] = sock
        return wait

    def _unwatch(self, address: str) -> None:
        sock = self._watched.pop(address, None)
        if sock is not None and self._selector is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass

    def _wake(self, address: str, sock: socket.socket) -> None:
        """A connection waits at `address`: connect to its vassal's wake socket (the
        Emperor spawns it), and leave its sockets unwatched for WAKE_AGAIN."""
        with self._lock:
            wake = self._wakes.get(address)
            if wake is None or wake in self._quiet_until or self._watched.get(address) is not sock:
                return  # woken already, or no longer watched: an event already on its way
            self._quiet_until[wake] = self._clock() + WAKE_AGAIN  # _watch() unwatches it
            self._changed = True
        if not poke(wake):
            log.debug("%s waits: nobody listens at %s yet", address, wake)

    def stop(self) -> None:
        """Have serve() return (from a signal handler too)."""
        self._stopping.set()
        if self._stop_pipe is not None:
            with contextlib.suppress(OSError):  # full already, or closed as serve() ends
                os.write(self._stop_pipe, b"x")

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(BIND_FOR + 5)
                request = conn.recv(1024).decode(errors="replace").strip()
                verb, _, name = request.partition(" ")
                if verb == "get":
                    fds = self.give(name)
                    try:
                        hand(conn, fds)
                    finally:
                        for fd in fds:
                            os.close(fd)
                elif verb == "list":
                    conn.sendall(json.dumps(self.listing()).encode())
            except OSError as exc:
                log.debug("answering a request: %s", exc)


def main(argv: list[str]) -> int:
    socket_path, folder, pidfile, lock_path = argv
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another holder holds them
    logging.basicConfig(level=logging.INFO, format="%(asctime)s holder %(message)s")
    # two fds a vassal: a thousand vassals want more than the usual soft limit of 1,024
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # an unlimited hard limit: the kernel's ceiling stands
        pass
    try:
        inherited = {
            str(a): int(fd) for a, fd in json.loads(os.environ.get(INHERITED_ENV) or "{}").items()
        }
    except (ValueError, AttributeError):
        inherited = {}
    holder = Holder(socket_path, folder, inherited=inherited)
    signal.signal(signal.SIGTERM, lambda *_: holder.stop())  # only note it
    signal.signal(signal.SIGINT, lambda *_: holder.stop())
    with open(pidfile, "w") as file:
        file.write(f"{os.getpid()}\n")
    try:
        holder.serve()
    finally:
        try:
            os.unlink(pidfile)
        except OSError:
            pass
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
