"""The pre-flight: new code imported once in a process of its own, with the Venue's
Python and the Act's environment (Django: `check` too), before any worker serves it.
`WarmPreflight` keeps that process's imports warm between the saves of a watched Act.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import PreflightFailed
from .release import key_line, process_env, run_step, venue_python

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
# The warm pre-flight's process, run with the Venue's Python.
CHECKER = os.path.join(SCRIPTS, "checker.py")
# The check itself, run by `python -c` in the project's folder (the warm pre-flight's
# children call the same file's function)
APPCHECK = os.path.join(SCRIPTS, "appcheck.py")


@dataclass(frozen=True)
class Preflight:
    """What the passing check read from the project's settings (Django only)."""

    static_url: str | None = None
    static_root: str | None = None
    media_url: str | None = None
    media_root: str | None = None
    data: tuple[str, ...] = ()  # absolute paths the app writes to (control.shared)


def preflight(
    venue_path: str,
    project_dir: str,
    env: Mapping[str, str],
    wsgi: str,
    settings: str | None = None,
    pythonpath: Sequence[str] = (),
    timeout: float = 120,
    user: str = "",
) -> Preflight:
    """Import `wsgi` (MODULE:CALLABLE) in a separate process with the Venue's Python and
    the Act's env, as the Venue's `user` if it has one, and for Django (`settings` given)
    run `check`. Raises PreflightFailed with one line when the app would not serve."""
    with open(APPCHECK) as source:
        argv = [venue_python(venue_path), "-c", source.read(), wsgi, "1" if settings else "0"]
    environment = process_env(venue_path, env, settings, [project_dir, *pythonpath])
    try:
        done = run_step(argv, project_dir, environment, timeout, user)
    except FileNotFoundError:
        raise PreflightFailed(f"{venue_path} has no bin/python: rebuild the Venue") from None
    except subprocess.TimeoutExpired:
        raise PreflightFailed(f"importing {wsgi} took longer than {timeout:g} s") from None
    return preflight_result(done.returncode, done.stdout, wsgi)


def preflight_result(returncode: int, output: str, wsgi: str) -> Preflight:
    """What a pre-flight's exit status and output say: PreflightFailed in one line, or
    what it found."""
    if returncode != 0:
        what = "Django's checks fail" if "SystemCheckError" in output else f"{wsgi} does not load"
        raise PreflightFailed(f"{what}: {key_line(output)}")
    last = output.rstrip().splitlines()[-1] if output.strip() else "{}"
    try:
        found = json.loads(last)
    except ValueError:
        found = {}
    return Preflight(
        static_url=found.get("static_url"),
        static_root=found.get("static_root"),
        media_url=found.get("media_url"),
        media_root=found.get("media_root"),
        data=tuple(str(p) for p in found.get("data") or ()),
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

    def __call__(
        self,
        venue_path: str,
        project_dir: str,
        env: Mapping[str, str],
        wsgi: str,
        settings: str | None = None,
        pythonpath: Sequence[str] = (),
        timeout: float = 120,
        user: str = "",
    ) -> Preflight:
        if user:  # the cold one drops to the user; the checker writes root's files
            return preflight(
                venue_path, project_dir, env, wsgi, settings, pythonpath, timeout, user
            )
        environment = process_env(venue_path, env, settings, [project_dir, *pythonpath])
        key = (venue_path, project_dir, tuple(sorted(environment.items())))
        with self._lock:
            process = self._checker(key, venue_path, project_dir, environment)
            if process is None:
                return preflight(venue_path, project_dir, env, wsgi, settings, pythonpath, timeout)
            fd, out = tempfile.mkstemp(prefix="backstage-preflight-")
            os.close(fd)
            try:
                assert process.stdin is not None
                command = {"wsgi": wsgi, "django": bool(settings), "out": out, "cwd": project_dir}
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
