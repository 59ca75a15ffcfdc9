"""The development loop: the Production Manager watches the code of each Act declared
`watch = true` and serves every good save, with no failed request.

One watchdog observer per watched Act, on its project folder and its Python path. A
save that is code (`model.codewatch`) starts a burst; once the burst is quiet the
Act's thread runs the pre-flight (requirements when they changed, the app imported in
a separate process, Django's checks) and chain-reloads (`renew("c")`). A save the
pre-flight refuses is said in the Act's log and kept in `run/` for `status` and
`top` until a save is served again; the running workers keep the old code. Saves made
during a reload make one more burst, so a burst of twenty is one or two reloads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ...errors import BackstageError
from ...files.declared import Declared
from ...files.fs import unlink_if_present, write_atomic
from ...model.codewatch import Debounce, WatchRules
from ...model.layout import ActRef
from ...model.spec import ActSpec
from ...render.stageset import project_view
from ..build import preflight
from ..processes.crew import Crew
from . import adoption, releases, versions
from .acts import ActManager

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

RELOAD_TIMEOUT = 60.0
CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})


@dataclass(frozen=True)
class Watched:
    """What one Act's watch is made of: a change of any of it means a new watch."""

    rules: WatchRules
    roots: tuple[str, ...]


def watched(ref: ActRef, spec: ActSpec) -> Watched:
    # the folder edited, not the version that serves it
    view = project_view(ref, edited(ref, spec))
    # a scaffold is edited in the Act's folder, beside its versions: not saves either
    skipped = [ref.static_root, os.path.join(ref.path, "pycache"), ref.releases_dir, ref.current]
    # what collectstatic and uploads write is not a save
    skipped += [root for root in (spec.static_root, spec.media_root) if root]
    rules = WatchRules(
        root=os.path.normpath(view.chdir),
        extra=spec.watch_paths,
        ignore=spec.watch_ignore,
        skipped_roots=tuple(os.path.normpath(p) for p in skipped),
    )
    # An adopted project's own folder in the Act's folder holds only what Backstage
    # writes (its generated settings): not the user's saves.
    paths = [view.chdir, *(p for p in view.pythonpath if not spec.adopted or p != ref.path)]
    roots: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths if os.path.isdir(p)}, key=len):
        if not any(path == r or path.startswith(r + os.sep) for r in roots):
            roots.append(path)
    return Watched(rules, tuple(roots))


def edited(ref: ActRef, spec: ActSpec) -> ActSpec:
    """The spec as if the Act served its source folder in place."""
    if versions.follows_source(ref, spec):
        return dataclasses.replace(spec, current=False)
    return spec


def act_note(path: str, line: str) -> None:
    """One line of Backstage's in the Act's log, beside uWSGI's (appended: uWSGI's
    own writes append too)."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"[backstage] {stamp} {line}\n".encode(errors="replace"))
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("cannot write to %s: %s", path, exc)


class _OnSave(FileSystemEventHandler):
    def __init__(self, rules: WatchRules, saved: Callable[[str], None]) -> None:
        self._rules = rules
        self._saved = saved

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES or event.is_directory:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(path) if path else ""
            if path and self._rules.is_code(path):
                self._saved(path)
                return


class ActWatch:
    """One watched Act: its observer, and a thread that turns bursts into reloads."""

    def __init__(
        self,
        crew: Crew,
        ref: ActRef,
        watch: Watched,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crew = crew
        self.ref = ref
        self.watch = watch
        self._clock = clock
        self._debounce = Debounce()
        self._changed: list[str] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._check = preflight.WarmPreflight()

    def start(self) -> None:
        observer = Observer()
        observer.daemon = True
        handler = _OnSave(self.watch.rules, self._saved)
        for root in self.watch.roots:
            observer.schedule(handler, root, recursive=True)
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(
            target=self._loop, name=f"watch {self.ref.key}", daemon=True
        )
        self._thread.start()
        log.info("%s: watching %s", self.ref.key, ", ".join(self.watch.roots))

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)  # a reload under way finishes on its own
        self._check.close()

    def _saved(self, path: str) -> None:
        with self._wake:
            self._debounce.saved(self._clock())
            if path not in self._changed:
                self._changed.append(path)
            self._wake.notify()

    def _prime(self) -> None:
        """The checker started, and the project checked once, before the first save."""
        act = ActManager(self.crew, self.ref)
        spec = act.spec()
        view = project_view(self.ref, spec)
        if versions.follows_source(self.ref, spec):
            # where each save's version is checked: the checker is kept for that path
            staged = releases.staging(self.ref)
            os.makedirs(staged, exist_ok=True)
            view = project_view(self.ref, releases.release_spec(spec, self.ref, staged))
        env = adoption.checked_env(self.ref, spec)  # as the check's: the same warm process
        try:
            self._check(
                preflight.Check(
                    self.ref.venue_path,
                    view.chdir,
                    env,
                    spec.wsgi_target,
                    view.settings or None,
                    view.pythonpath,
                    user=self.ref.user,
                )
            )
        except BackstageError:
            pass  # said when a save is refused

    def _loop(self) -> None:
        try:
            self._prime()
        except Exception:
            log.exception("%s: starting the pre-flight's checker failed", self.ref.key)
        while True:
            with self._wake:
                while not self._stopping:
                    due = self._debounce.due()
                    now = self._clock()
                    if due is not None and now >= due:
                        break
                    self._wake.wait(None if due is None else due - now)
                if self._stopping:
                    return
                saves = self._debounce.take()
                changed, self._changed = self._changed, []
            try:
                self.serve_save(saves, changed)
            except Exception:
                log.exception("%s: serving a save failed", self.ref.key)

    def serve_save(self, saves: int, changed: list[str]) -> bool:
        """Pre-flight, then chain reload; True when the new code serves."""
        act = ActManager(self.crew, self.ref)
        layout = self.crew.layout
        if act.sess() is None:
            return False  # not playing: its next start takes the new code
        started = time.monotonic()
        what = _names(changed, self.watch.rules.root)
        follows = versions.follows_source(self.ref, act.spec())
        try:
            if follows:  # a version of the save, checked, then served
                versions.serve(
                    self.crew, act, check=self._check, release_steps=False,
                    timeout=RELOAD_TIMEOUT,
                )  # fmt: skip
            else:
                adoption.prepare(self.crew, act, release_steps=False, check=self._check)
        except BackstageError as exc:
            if self._stopping:
                return False  # no longer watched: its checker was stopped under it
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            os.makedirs(layout.refused_dir, exist_ok=True)
            write_atomic(layout.act_refused(self.ref), line + "\n", 0o600)
            act_note(act.log_path, f"save refused ({what}), the old code serves: {line}")
            log.warning("%s: save refused (%s): %s", self.ref.key, what, line)
            return False
        checked = time.monotonic()
        try:
            if not follows:
                act.reload(RELOAD_TIMEOUT)
        except BackstageError as exc:
            act_note(act.log_path, f"reload for a save ({what}) failed: {exc}")
            log.warning("%s: reload for a save failed: %s", self.ref.key, exc)
            return False
        unlink_if_present(layout.act_refused(self.ref))
        took = time.monotonic() - started
        plural = "s" if saves != 1 else ""
        act_note(
            act.log_path,
            f"reloaded for {saves} save{plural} ({what}) in {took:.2f} s "
            f"(pre-flight {checked - started:.2f} s)",
        )
        log.info("%s: reloaded for %d save%s in %.2f s", self.ref.key, saves, plural, took)
        return True


def _names(paths: list[str], root: str) -> str:
    names = [os.path.relpath(p, root) if p.startswith(root + os.sep) else p for p in paths]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


class CodeWatch:
    """Every watched Act's watch, kept in step with what the files declare."""

    def __init__(self, crew: Crew) -> None:
        self.crew = crew
        self._watches: dict[str, ActWatch] = {}

    def follow(self, production: Declared) -> None:
        wanted: dict[str, tuple[ActRef, Watched]] = {}
        for found in production.acts:
            spec = found.spec
            if spec is None:  # invalid now: a watch of before goes on
                if found.ref.key in self._watches:
                    current = self._watches[found.ref.key]
                    wanted[found.ref.key] = (current.ref, current.watch)
                continue
            if spec.enabled and spec.watch:
                wanted[found.ref.key] = (found.ref, watched(found.ref, spec))
        for key, current in list(self._watches.items()):
            if key not in wanted or wanted[key][1] != current.watch:
                current.stop()
                del self._watches[key]
                unlink_if_present(self.crew.layout.act_refused(current.ref))
                if key not in wanted:
                    log.info("%s: no longer watched", key)
        for key, (ref, watch) in wanted.items():
            if key not in self._watches and watch.roots:
                act_watch = ActWatch(self.crew, ref, watch)
                act_watch.start()
                self._watches[key] = act_watch

    @property
    def watching(self) -> tuple[str, ...]:
        return tuple(sorted(self._watches))

    def stop(self) -> None:
        for current in self._watches.values():
            current.stop()
        self._watches.clear()
