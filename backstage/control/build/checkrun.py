"""A new version's pre-flight and release steps in one start of the Venue's Python.

Django starts cold in each process: a check, `migrate` and `collectstatic` run one
after the other cost three starts, most of a reload's time. Here one process
(`backstage/scripts/appcheck.py`) imports and checks the app, then runs the steps in
order: Django's `migrate` and `collectstatic` inside it, and only when they have
something to do (a migration plan that is not empty; a static source changed since
the fingerprint kept in the Act's folder); any other step as a process of its own,
as before. Every refusal reads as it did when each ran alone: PreflightFailed for the
check, ReleaseFailed naming the step for a step.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ...errors import PreflightFailed, ReleaseFailed
from ...files.fs import write_atomic
from ...model.layout import venue_python
from . import commands, warmrun

# The check and the steps, run by `python -c` in the project's folder (the warm
# pre-flight's children call the same file's check)
APPCHECK = os.path.join(warmrun.SCRIPTS, "appcheck.py")
CHECK_TIMEOUT = 120.0
STEP_TIMEOUT = 600.0
# What the process may take to start and to end a phase beyond the phase's own budget
STARTING = 30.0
# Where the fingerprint of the static files last collected is kept, in the Act's folder
STATIC_FINGERPRINT = "static.sha256"


@dataclass(frozen=True)
class Phase:
    """What one phase of the run (the check, or step N) printed and how it ended."""

    output: str = ""
    code: int | None = None  # None: it never ended (the process died or was killed in it)
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    phases: dict[str, Phase]  # "check", "0", "1"...
    returncode: int
    timed_out: bool = False

    def last_begun(self) -> str | None:
        return next(reversed(self.phases), None)


def split_phases(output: str, mark: str) -> dict[str, Phase]:
    """The run's output cut at its mark lines, phase by phase, in order; what came
    before the first phase (Python's own complaints) under ""."""
    phases: dict[str, Phase] = {}
    current: str | None = ""
    lines: list[str] = []
    for line in output.splitlines(keepends=True):
        data = _marked(line, mark)
        if data is None:
            lines.append(line)
            continue
        text = "".join(lines)
        # the mark line is written after a newline of its own: not the phase's
        text = text[:-1] if text.endswith("\n") else text
        if "begin" in data:
            if current == "" and text.strip():
                phases[""] = Phase(text)
            current, lines = str(data["begin"]), []
            phases[current] = Phase()
        elif "end" in data and current == str(data["end"]):
            details = {k: v for k, v in data.items() if k not in ("end", "code")}
            code = data.get("code")
            phases[current] = Phase(text, code if isinstance(code, int) else 1, details)
            current, lines = None, []
    if current is not None and (current or "".join(lines).strip()):
        phases[current] = Phase("".join(lines))
    return phases


def _marked(line: str, mark: str) -> dict[str, object] | None:
    if not line.startswith(mark + " "):
        return None
    try:
        data = json.loads(line[len(mark) + 1 :])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def run(
    venue_path: str,
    project_dir: str,
    env: Mapping[str, str],
    wsgi: str | None,
    settings: str | None = None,
    steps: Sequence[str] = (),
    pythonpath: Sequence[str] = (),
    timeout: float = CHECK_TIMEOUT,
    step_timeout: float = STEP_TIMEOUT,
    user: str = "",
    act_dir: str | None = None,
    between: Callable[[dict[str, object]], None] | None = None,
    warm: warmrun.WarmSpot | None = None,
) -> dict[str, object]:
    """Check `wsgi` (None: no check) and run `steps`, in one process with the Venue's
    Python and the Act's env, as `user` when the Venue has one. `act_dir` keeps the
    static fingerprint (None: collectstatic always runs). `between` is given what the
    check found once it passed, before any step runs (the app's data is linked into a
    release then). What the check found (its JSON line) on success; PreflightFailed or
    ReleaseFailed at the first phase that fails. `warm`: where the Act's warm process
    (`warmrun`) listens, for a run that keeps the app imported from the last."""
    python = venue_python(venue_path)
    argvs = [commands.step_argv(step, python) for step in steps]  # unreadable: before anything
    fingerprint_path = os.path.join(act_dir, STATIC_FINGERPRINT) if act_dir else None
    mark = "@@backstage-" + secrets.token_hex(8)
    command = {
        "wsgi": wsgi,
        "django": bool(settings),
        "python": python,
        "steps": argvs,
        # a step as a process has the Python path it always had, not the check's
        "steps_pythonpath": commands.process_env(venue_path, env, settings, pythonpath).get(
            "PYTHONPATH"
        ),
        "step_timeout": step_timeout,
        "static_seen": _read(fingerprint_path),
        "hold": bool(between and wsgi and argvs),
        "mark": mark,
    }
    checked_path = [project_dir, *pythonpath] if wsgi else list(pythonpath)
    environment = commands.process_env(venue_path, env, settings, checked_path)
    with open(APPCHECK) as source:
        argv = [python, "-c", source.read(), json.dumps(command)]
    budgets = {"check": timeout, **{str(n): step_timeout + STARTING for n in range(len(argvs))}}
    held = None
    if command["hold"] and between is not None and wsgi:
        checked = between

        def held(output: str) -> None:
            checked(preflight_found(0, output, wsgi))

    try:
        done = _run(argv, project_dir, environment, budgets, user, mark, held, warm, command)
    except FileNotFoundError:
        raise PreflightFailed(f"{venue_path} has no bin/python: rebuild the Venue") from None
    found = _verdict(done, wsgi, steps, argvs, timeout, step_timeout)
    if between is not None and wsgi and not command["hold"]:
        between(found)
    static = next(
        (p.details["static"] for p in done.phases.values() if "static" in p.details), None
    )
    if fingerprint_path and isinstance(static, str) and static != command["static_seen"]:
        write_atomic(fingerprint_path, static + "\n", 0o644)
    return found


def _read(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path) as kept:
            return kept.read().strip() or None
    except OSError:
        return None


class _Cold:
    """A run in a process of its own, started for it: what `_run` reads and kills."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._process = process
        self.stdout_fd = process.stdout.fileno()
        self.stdin = process.stdin

    def kill(self) -> None:
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait(self) -> int:
        return self._process.wait()

    def close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


Started = _Cold | warmrun.WarmRun


def _start(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    user: str,
    stdin: bool,
    warm: warmrun.WarmSpot | None,
    command: Mapping[str, object],
) -> Started:
    """Through the Act's warm process where it has one and takes the run (not for a
    Venue's user: that process would be Backstage's own), else a process of its own."""
    if warm is not None and not commands.as_user(user):
        started = warmrun.start(warm, argv[0], cwd, env, command, stdin)
        if started is not None:
            return started
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        **commands.as_user(user),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return _Cold(process)


def _run(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    budgets: Mapping[str, float],
    user: str,
    mark: str,
    between: Callable[[str], None] | None = None,
    warm: warmrun.WarmSpot | None = None,
    command: Mapping[str, object] | None = None,
) -> Run:
    """The process run to its end, or killed with its whole group (the steps it started
    too) when a phase runs past its budget (`budgets[phase]` seconds from its begin).
    `between`: called with the check's output once it passed, while the process holds
    before its steps; they run when it returns, and when it raises, none does. `warm`:
    where the Act's warm process listens, given `command` (appcheck's)."""
    process = _start(argv, cwd, env, user, between is not None, warm, command or {})
    fd = process.stdout_fd
    chunks: list[bytes] = []
    pending = b""  # the unfinished last line, where a mark may be arriving
    deadline = time.monotonic() + STARTING
    timed_out = False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                timed_out = True
                process.kill()
                chunks += _rest(fd)
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                data = _marked(line.decode(errors="replace"), mark)
                if data is not None and "begin" in data:
                    deadline = time.monotonic() + budgets.get(str(data["begin"]), 0)
                if data is not None and data.get("end") == "check" and between is not None:
                    checked = split_phases(b"".join(chunks).decode(errors="replace"), mark)
                    _go_on(process, between, checked["check"].output, data.get("code") == 0)
                    deadline = time.monotonic() + STARTING
        returncode = process.wait()
    finally:
        process.close()
    text = b"".join(chunks).decode(errors="replace")
    return Run(split_phases(text, mark), returncode, timed_out)


def _rest(fd: int) -> list[bytes]:
    """What is left to read of a killed run's output."""
    rest: list[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return rest
        rest.append(chunk)


def _go_on(process: Started, between: Callable[[str], None], output: str, passed: bool) -> None:
    """Tell the process holding after its check to run its steps once `between` took the
    check's output, or to end; a failure of `between` kills it and is raised."""
    assert process.stdin is not None
    try:
        if passed:
            between(output)
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        process.stdin.write(b"go\n" if passed else b"stop\n")
        process.stdin.close()
    except OSError:
        pass  # gone already: its end says why


def _verdict(
    done: Run,
    wsgi: str | None,
    steps: Sequence[str],
    argvs: Sequence[Sequence[str]],
    timeout: float,
    step_timeout: float,
) -> dict[str, object]:
    found: dict[str, object] = {}
    if wsgi:
        check = done.phases.get("check", Phase())
        if done.timed_out and check.code is None:
            raise PreflightFailed(f"importing {wsgi} took longer than {timeout:g} s")
        code = done.returncode if check.code is None else check.code
        output = check.output if "check" in done.phases else _all(done)
        found = preflight_found(code, output, wsgi)
    for number, step in enumerate(steps):
        phase = done.phases.get(str(number))
        if phase is None:
            if done.returncode != 0:  # died before it: say what it printed
                raise ReleaseFailed(
                    f"release step {step!r} never ran: {commands.key_line(_all(done))}",
                    commands.tail(_all(done)),
                )
            break
        if phase.details.get("missing"):
            raise ReleaseFailed(f"release step {step!r}: no command {argvs[number][0]!r}")
        if phase.details.get("timeout") or (done.timed_out and phase.code is None):
            raise ReleaseFailed(
                f"release step {step!r} took longer than {step_timeout:g} s",
                commands.tail(phase.output),
            )
        code = done.returncode if phase.code is None else phase.code
        if code != 0:
            raise ReleaseFailed(
                f"release step {step!r} failed (exit {code}): {commands.key_line(phase.output)}",
                commands.tail(phase.output),
            )
    return found


def _all(done: Run) -> str:
    return "".join(phase.output for phase in done.phases.values())


def preflight_found(returncode: int, output: str, wsgi: str) -> dict[str, object]:
    """What a check's exit status and output say: PreflightFailed in one line, or what
    it found (its last line, JSON)."""
    if returncode != 0:
        what = "Django's checks fail" if "SystemCheckError" in output else f"{wsgi} does not load"
        raise PreflightFailed(f"{what}: {commands.key_line(output)}")
    last = output.rstrip().splitlines()[-1] if output.strip() else "{}"
    try:
        found = json.loads(last)
    except ValueError:
        found = {}
    return found if isinstance(found, dict) else {}


def run_release(
    venue_path: str,
    project_dir: str,
    env: Mapping[str, str],
    settings: str | None,
    steps: Sequence[str] | None = None,
    pythonpath: Sequence[str] = (),
    timeout: float = STEP_TIMEOUT,
    user: str = "",
    act_dir: str | None = None,
) -> None:
    """The release steps alone, in one process (`steps` None: the project's default,
    Django's when `settings` is given). ReleaseFailed, with the step's last lines in
    `log_tail`, at the first that fails."""
    if steps is None:
        steps = commands.default_steps(project_dir, settings is not None)
    if not steps:
        return
    run(
        venue_path, project_dir, env, None, settings, steps, pythonpath,
        step_timeout=timeout, user=user, act_dir=act_dir,
    )  # fmt: skip
