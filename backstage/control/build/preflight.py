"""The pre-flight: new code imported once in a process of its own, with the Venue's
Python and the Act's environment (Django: `check` too), before any worker serves it;
the release steps follow in the same process (`checkrun`). `WarmPreflight` keeps
that process's imports warm between the saves of a watched Act.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ...errors import PreflightFailed
from ...model.layout import venue_python
from . import checkrun, warmrun
from .commands import process_env
from .warmrun import WarmSpot

# The warm pre-flight's process, run with the Venue's Python.
CHECKER = os.path.join(warmrun.SCRIPTS, "checker.py")


@dataclass(frozen=True)
class Preflight:
    """What the passing check read from the project's settings (Django only)."""

    static_url: str | None = None
    static_root: str | None = None
    data: tuple[str, ...] = ()  # absolute paths the app writes to (control.shared)
    media_url: str | None = None
    media_root: str | None = None


# Given what the check found, once it passed and before any release step runs.
Between = Callable[[Preflight], None]


@dataclass(frozen=True)
class Check:
    """One pre-flight: what `preflight` and `WarmPreflight` are called with, so that a
    `check` of the managers is either of them."""

    venue_path: str
    project_dir: str
    env: Mapping[str, str]
    wsgi: str  # MODULE:CALLABLE
    settings: str | None = None  # Django's settings module: `check` runs too
    pythonpath: Sequence[str] = ()
    timeout: float = checkrun.CHECK_TIMEOUT
    user: str = ""  # the Venue's user, run as them
    steps: Sequence[str] = ()  # the release steps, run after the check in its process
    act_dir: str | None = None
    between: Between | None = None
    warm: WarmSpot | None = None  # through the Act's warm process (`warmrun`)


# A `check` of the managers: `preflight`, or a watched Act's `WarmPreflight`.
Checker = Callable[[Check], Preflight]


def preflight(check: Check) -> Preflight:
    """Import `check.wsgi` in a separate process with the Venue's Python and the Act's
    env, as the Venue's `user` if it has one, and for Django (`settings` given) run
    `check`; then, in the same process, the release `steps` (see `checkrun`), `between`
    called in between. Raises PreflightFailed with one line when the app would not
    serve, ReleaseFailed when a step fails. `warm`: through the Act's warm process
    (`warmrun`), which keeps the app imported from one version to the next."""
    hook = None if check.between is None else _found_by(check.between)
    found = checkrun.run(
        check.venue_path, check.project_dir, check.env, check.wsgi, check.settings,
        check.steps, check.pythonpath, timeout=check.timeout, user=check.user,
        act_dir=check.act_dir, between=hook, warm=check.warm,
    )  # fmt: skip
    return _preflight(found)


def _found_by(between: Between) -> Callable[[Mapping[str, object]], None]:
    return lambda found: between(_preflight(found))


def preflight_result(returncode: int, output: str, wsgi: str) -> Preflight:
    """What a pre-flight's exit status and output say: PreflightFailed in one line, or
    what it found."""
    return _preflight(checkrun.preflight_found(returncode, output, wsgi))


def _preflight(found: Mapping[str, object]) -> Preflight:
    def text(key: str) -> str | None:
        value = found.get(key)
        return None if value is None else str(value)

    data = found.get("data")
    paths = tuple(str(p) for p in data) if isinstance(data, list) else ()
    return Preflight(
        static_url=text("static_url"),
        static_root=text("static_root"),
        media_url=text("media_url"),
        media_root=text("media_root"),
        data=paths,
    )


class WarmPreflight:
    """`preflight` for the saves of one watched Act, through a checker process
    (`backstage/scripts/checker.py`) that keeps Django's own modules imported and forks a child
    per check: the same check, without an interpreter start and Django's import each
    time. A new environment or folder starts a new checker; where none can start, the
    cold pre-flight runs."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._key: tuple[object, ...] = ()
        self._lock = threading.Lock()

    def __call__(self, check: Check) -> Preflight:
        # the cold one drops to the user (the checker writes root's files), and runs steps;
        # a save's check has its own warm process, this one: `check.warm` is not used
        if check.user or check.steps:
            return preflight(replace(check, warm=None))
        found = self._check(check)
        if check.between is not None:
            check.between(found)
        return found

    def _check(self, check: Check) -> Preflight:
        venue_path, project_dir, wsgi, timeout = (
            check.venue_path, check.project_dir, check.wsgi, check.timeout
        )  # fmt: skip
        django = bool(check.settings)
        environment = process_env(
            venue_path, check.env, check.settings, [project_dir, *check.pythonpath]
        )
        key = (venue_path, project_dir, tuple(sorted(environment.items())))
        with self._lock:
            process = self._checker(key, venue_path, project_dir, environment)
            if process is None:
                return preflight(replace(check, act_dir=None, between=None, warm=None))
            fd, out = tempfile.mkstemp(prefix="backstage-preflight-")
            os.close(fd)
            try:
                assert process.stdin is not None
                command = {"wsgi": wsgi, "django": django, "out": out, "cwd": project_dir}
                try:
                    process.stdin.write(json.dumps(command) + "\n")
                    process.stdin.flush()
                    answer = _read_line(process, timeout)
                except OSError:
                    answer = None
                if answer is None:
                    self.close()
                    raise PreflightFailed(f"importing {wsgi} took longer than {timeout:g} s")
                with open(out, errors="replace") as found:
                    output = found.read()
            finally:
                os.unlink(out)
        return preflight_result(int(answer), output, wsgi)

    def _checker(
        self, key: tuple[object, ...], venue_path: str, cwd: str, env: Mapping[str, str]
    ) -> subprocess.Popen[str] | None:
        if self._process is not None and self._process.poll() is None and key == self._key:
            return self._process
        self.close()
        try:
            process = subprocess.Popen(
                [venue_python(venue_path), CHECKER],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
        except OSError:
            return None
        if _read_line(process, 60) != "ready":
            self._process = process
            self.close()
            return None
        self._process, self._key = process, key
        return process

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    """The checker's next line, or None when it has none within `timeout` or is gone."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        return None
    line = process.stdout.readline()
    return line.strip() or None


# -- requirements ---------------------------------------------------------------------
