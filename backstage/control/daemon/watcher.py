"""Turns changes of declared files, and run files gone, into reconcile events for the
Production Manager.

watchdog watches the home (production.toml) and each Venue's folder and `acts/`
(venue.toml, every act.toml); any change to a `.toml` there queues one event, and the
loop coalesces a burst into one pass. It also watches the run folders (the home's
`run/`, a user Venue's `run/` and `run/user/`): a file the Manager writes there that
is deleted, or written by another (an edit by hand), queues a pass, which writes it
again; its own writes queue nothing. It watches the certificates' folder: the router
reads each pair once, so a certificate written, replaced or removed there (by `tls
import`, ACME, or by hand) queues the pass that replaces the router. And it watches the
log folders for files made there (a log uWSGI rotated past log_max is renamed to
`LOG.<unixtime>`): each is handed to `on_log`, which prunes that log's copies without a
pass.

Only changes are asked of the kernel: never opens, reads or closes without a write,
which every pass and every reader of these files would otherwise send back here, a
few thousand events a pass with a thousand Acts.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from ...files.fs import holds_as_kept

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})
# What a declared file's change can be: a write, a chmod, an editor's rename, a removal.
DECLARED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
# The run files a pass writes, by how their names end; sockets, FIFOs, pidfiles and
# locks come and go with the processes that make them, and are not watched.
RUN_FILES = (".env.json", ".hosts", ".gigs.ini", "vassal-wrapper", ".booked.json")
# A run file deleted, or written whole (closed after a write, or renamed into place)
RUN_EVENTS: list[type[FileSystemEvent]] = [
    FileDeletedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
]
# A file made in a log folder: by a rename (uWSGI's rotation) or created (the Manager's
# own rotation, a new log). Never a write: logs are written all the time.
LOG_EVENTS: list[type[FileSystemEvent]] = [FileCreatedEvent, FileMovedEvent]


class _OnToml(FileSystemEventHandler):
    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self._events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES:
            return
        paths = (event.src_path, getattr(event, "dest_path", ""))
        if any(str(p).endswith(".toml") for p in paths):
            self._events.put("reconcile")


class _OnRunFile(FileSystemEventHandler):
    """A run file deleted, moved away, or written by another than this process (an edit
    by hand): the Manager's own writes (`write_if_changed`) are told apart by what the
    file holds, so that they start no pass."""

    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self._events = events

    def on_deleted(self, event: FileSystemEvent) -> None:
        if os.fsdecode(event.src_path).endswith(RUN_FILES):
            self._events.put("reconcile")

    def on_closed(self, event: FileSystemEvent) -> None:
        self._written(os.fsdecode(event.src_path))

    def on_created(self, event: FileSystemEvent) -> None:
        self._written(os.fsdecode(event.src_path))

    def on_moved(self, event: FileSystemEvent) -> None:
        self.on_deleted(event)
        self._written(os.fsdecode(event.dest_path))

    def _written(self, path: str) -> None:
        if path.endswith(RUN_FILES) and not holds_as_kept(path):
            self._events.put("reconcile")


class _OnCertificate(FileSystemEventHandler):
    """A certificate (`HOST.crt`) written, moved or removed. Its key is written before
    it and removed after it: a pass started by the key alone would give the router a
    new key with the old certificate."""

    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self._events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = (event.src_path, getattr(event, "dest_path", ""))
        if event.event_type in CHANGES and any(os.fsdecode(p).endswith(".crt") for p in paths):
            self._events.put("reconcile")


class _OnLogMade(FileSystemEventHandler):
    def __init__(self, on_log: Callable[[str], None]) -> None:
        self._on_log = on_log

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._on_log(os.fsdecode(event.src_path))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._on_log(os.fsdecode(event.dest_path))


class Watcher:
    def __init__(
        self, events: queue.SimpleQueue[str], on_log: Callable[[str], None] | None = None
    ) -> None:
        self._events = events
        self._on_log = on_log
        self._observer: BaseObserver | None = None
        self._watched: set[str] = set()
        self._logs_watched: set[str] = set()

    def follow(
        self,
        home: str,
        venues: Iterable[str],
        run_dirs: Iterable[str] = (),
        log_dirs: Iterable[str] = (),
        certs_dir: str = "",
    ) -> None:
        """Watch `home` and the Venues at these paths, the run folders `run_dirs` for
        files gone, the log folders `log_dirs` for files made and `certs_dir` for a
        certificate written or removed, adding those not watched yet."""
        if self._observer is None:
            observer = Observer()
            observer.daemon = True
            observer.start()
            self._observer = observer
        observer = self._observer
        for path in ({home} | set(venues)) - self._watched:
            acts = os.path.join(path, "acts")
            try:
                observer.schedule(_OnToml(self._events), path, event_filter=DECLARED_EVENTS)
                if path != home and os.path.isdir(acts):
                    observer.schedule(
                        _OnToml(self._events), acts, recursive=True, event_filter=DECLARED_EVENTS
                    )
            except OSError as exc:
                log.warning("cannot watch %s: %s", path, exc)
            self._watched.add(path)
        for path in set(run_dirs) - self._watched:
            _watch_folder(observer, _OnRunFile(self._events), path, RUN_EVENTS, self._watched)
        if certs_dir and certs_dir not in self._watched:
            handler = _OnCertificate(self._events)
            _watch_folder(observer, handler, certs_dir, DECLARED_EVENTS, self._watched)
        if self._on_log is None:
            return
        for path in set(log_dirs) - self._logs_watched:
            _watch_folder(observer, _OnLogMade(self._on_log), path, LOG_EVENTS, self._logs_watched)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)


def _watch_folder(
    observer: BaseObserver,
    handler: FileSystemEventHandler,
    path: str,
    events: list[type[FileSystemEvent]],
    watched: set[str],
) -> None:
    """Watch `path` for `events` once it exists (the next pass that makes it watches it)."""
    if not os.path.isdir(path):
        return
    try:
        observer.schedule(handler, path, event_filter=events)
    except OSError as exc:
        log.warning("cannot watch %s: %s", path, exc)
    watched.add(path)
