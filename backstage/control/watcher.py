"""Turns changes of declared files into reconcile events for the Production Manager.

watchdog watches the home (production.toml) and each Venue's folder and `acts/`
(venue.toml, every act.toml); any change to a `.toml` there queues one event, and the
loop coalesces a burst into one pass.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Iterable
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})


class _OnToml(FileSystemEventHandler):
    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self._events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Not "opened" or "closed_no_write": every pass reads these files itself.
        if event.event_type not in CHANGES:
            return
        paths = (event.src_path, getattr(event, "dest_path", ""))
        if any(str(p).endswith(".toml") for p in paths):
            self._events.put("reconcile")


class Watcher:
    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self._events = events
        self._observer: BaseObserver | None = None
        self._watched: set[str] = set()

    def follow(self, home: str, venues: Iterable[str]) -> None:
        """Watch `home` and the Venues at these paths, adding those not watched yet."""
        if self._observer is None:
            observer = Observer()
            observer.daemon = True
            observer.start()
            self._observer = observer
        observer = self._observer
        for path in ({home} | set(venues)) - self._watched:
            acts = os.path.join(path, "acts")
            try:
                observer.schedule(_OnToml(self._events), path, recursive=False)
                if path != home and os.path.isdir(acts):
                    observer.schedule(_OnToml(self._events), acts, recursive=True)
            except OSError as exc:
                log.warning("cannot watch %s: %s", path, exc)
            self._watched.add(path)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
