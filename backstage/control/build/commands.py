"""Getting a new version of an Act ready to serve, in processes of their own with the
Venue's Python and the Act's environment, never Backstage's interpreter.

- `install_requirements`: the project's requirements.txt (or pyproject.toml's
  dependencies) into the Venue, with uv when there is one, else the Venue's pip;
  skipped while the file (and what it includes) is unchanged since the last install.
- the release steps (for Django `migrate --noinput` and `collectstatic --noinput`):
  read here, run by `checkrun` in the pre-flight's process.

Each failure is one line a user can act on; the output behind it rides along.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import InstallFailed, ReleaseFailed
from ...files.account import account
from ...files.fs import write_atomic
from ...files.project import find_requirements
from ...model.layout import venue_python, venue_user_dir
from ...model.project import Requirements
from .virtualenv import UV_COMPILE, find_uv

DJANGO_RELEASE = ("python manage.py migrate --noinput", "python manage.py collectstatic --noinput")
HASH_FILE = "requirements.sha256"
TAIL_LINES = 20

# The line of a traceback or a tool's output that says what went wrong.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Failed)\b.*")
_SYNTAX_ERROR = re.compile(r"^(SyntaxError|IndentationError|TabError)\b")
_FILE_LINE = re.compile(r'^File "(.+)", line (\d+)')
# Hints tools print after the line that matters.
_HINT_LINE = re.compile(r"^(Type '.*' for usage\.|usage: .*|Run '.*' for help.*)$")


def process_env(
    venue_path: str,
    env: Mapping[str, str],
    settings: str | None = None,
    pythonpath: Sequence[str] = (),
) -> dict[str, str]:
    """The environment a step runs in: the Act's env over this process's, the Venue
    first on PATH, the Act's settings module and Python path."""
    result = {**os.environ, **env}
    result["VIRTUAL_ENV"] = venue_path
    result["PATH"] = os.path.join(venue_path, "bin") + os.pathsep + result.get("PATH", "")
    result.pop("PYTHONHOME", None)
    if settings:
        result["DJANGO_SETTINGS_MODULE"] = settings
    if pythonpath:
        result["PYTHONPATH"] = os.pathsep.join(
            [*pythonpath, *filter(None, [env.get("PYTHONPATH")])]
        )
    return result


def tail(output: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(output.rstrip().splitlines()[-lines:])


def key_line(output: str) -> str:
    """The line that says what went wrong: the first error Django's checks list, else
    the last exception line of a traceback, else the last line printed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    while len(lines) > 1 and _HINT_LINE.match(lines[-1]):
        lines.pop()
    if "ERRORS:" in lines:
        following = lines[lines.index("ERRORS:") + 1 :]
        if following:
            return following[0]
    exceptions = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if exceptions:
        return _where_if_syntax(lines, exceptions[-1])
    return lines[-1] if lines else "(it printed nothing)"


def _where_if_syntax(lines: list[str], index: int) -> str:
    """A SyntaxError's line with the file and line it names, which its traceback gives
    above it and the message alone does not (`invalid syntax`)."""
    line = lines[index]
    if not _SYNTAX_ERROR.match(line):
        return line
    for before in reversed(lines[:index]):
        found = _FILE_LINE.match(before)
        if found:
            return f"{line} ({found.group(1)} line {found.group(2)})"
    return line


def as_user(user: str) -> dict[str, Any]:
    """subprocess's arguments that run a command as a Venue's `user` (its uid, its group,
    no other group): the project's code is theirs to write, so it never runs as root.
    Not root, Backstage can only be that user already (`ownership.runs_as`)."""
    if not user or os.geteuid() != 0:
        return {}
    found = account(user)
    return {"user": found.uid, "group": found.gid, "extra_groups": []}


def run_step(
    argv: Sequence[str], cwd: str, env: Mapping[str, str], timeout: float, user: str = ""
) -> subprocess.CompletedProcess[str]:
    """`user`: the Venue's, whom the step runs as (see `as_user`)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        **as_user(user),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
    )


# -- release steps ----------------------------------------------------------------------


def default_steps(project_dir: str, django: bool) -> tuple[str, ...]:
    """Django's migrate and collectstatic (through manage.py, else `python -m django`);
    nothing for another WSGI app."""
    if not django:
        return ()
    if os.path.isfile(os.path.join(project_dir, "manage.py")):
        return DJANGO_RELEASE
    return tuple(step.replace("manage.py", "-m django") for step in DJANGO_RELEASE)


def step_argv(step: str, python: str) -> list[str]:
    """A declared step as argv; a leading `python` is the Venue's."""
    try:
        argv = shlex.split(step)
    except ValueError as exc:
        raise ReleaseFailed(f"release step {step!r} cannot be read: {exc}") from None
    if not argv:
        raise ReleaseFailed("a release step is empty: remove it from release in act.toml")
    if argv[0] in ("python", "python3"):
        argv[0] = python
    return argv


# -- requirements -------------------------------------------------------------------------


def requirements_hash(requirements: Requirements, venue_path: str) -> str:
    """A digest of the requirements file, of the files it includes (-r, -c), and of the
    Venue it goes into."""
    digest = hashlib.sha256(f"{requirements.kind}\0{os.path.realpath(venue_path)}\0".encode())
    pending, seen = [requirements.path], set()
    while pending:
        path = os.path.realpath(pending.pop(0))
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, "rb") as source:
                content = source.read()
        except OSError:
            content = b"(missing)"
        digest.update(path.encode() + b"\0" + content + b"\0")
        if requirements.kind == "requirements":
            for line in content.decode(errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("-r", "-c", "--requirement", "--constraint"):
                    pending.append(os.path.join(os.path.dirname(path), parts[1]))
    return digest.hexdigest()


def pyproject_dependencies(path: str) -> list[str]:
    try:
        with open(path, "rb") as source:
            data = tomllib.load(source)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InstallFailed(f"{path} cannot be read: {exc}") from None
    dependencies = data.get("project", {}).get("dependencies", [])
    return [str(d) for d in dependencies]


def install_command(requirements: Requirements, python: str, uv: str | None) -> list[str] | None:
    """The command that installs these requirements into the Venue of `python`; None
    when there is nothing to install. Whatever it builds runs the package's code: for a
    Venue with a user it runs as that user (`install_requirements`)."""
    if uv:
        # with bytecode, which the Act's processes may not write (virtualenv.UV_COMPILE)
        compiled = [UV_COMPILE, "--python", python]
        return [uv, "pip", "install", *compiled, "-r", requirements.path]
    if requirements.kind == "requirements":
        return [
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-r",
            requirements.path,
        ]
    dependencies = pyproject_dependencies(requirements.path)
    if not dependencies:
        return None
    return [python, "-m", "pip", "install", "--disable-pip-version-check", *dependencies]


def installer_env(venue_path: str, user: str) -> dict[str, str]:
    """The installer's environment: for a Venue's `user`, its home and caches in the
    Venue's run/user/ (the user's), never root's, which another Venue's installs share."""
    env = process_env(venue_path, {})
    if user:
        home = venue_user_dir(venue_path)
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
            env.pop(name, None)
        env["HOME"] = home
        env["UV_CACHE_DIR"] = os.path.join(home, ".cache", "uv")
        env["PIP_CACHE_DIR"] = os.path.join(home, ".cache", "pip")
    return env


def install_failure(output: str) -> str:
    """One line out of a failed uv or pip install, naming the package when they do."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error:")]
    causes = [line for line in lines if line.startswith(("cause:", "Caused by:", "╰─▶"))]
    if errors and causes and "no solution found" in errors[0].lower():
        return causes[0].split(":", 1)[-1].strip() if ":" in causes[0] else causes[0]
    if errors:
        return errors[0].split(":", 1)[1].strip()
    return key_line(output)


def install_requirements(
    venue_path: str,
    project_dir: str,
    act_dir: str,
    uv: str | None = "auto",
    timeout: float = 900,
    user: str = "",
) -> bool:
    """Install the project's requirements into the Venue unless they are unchanged since
    the last install from this Act (the digest is kept in `act_dir`). True when it
    installed; InstallFailed with one line when it could not, and the Venue's packages
    are then whatever the installer left (uv and pip change nothing when resolution fails).
    `user`: the Venue's, whom it runs as (a package's build runs its code), into packages
    given to that user (`ownership.give_packages`) and with caches of its own."""
    requirements = find_requirements(project_dir)
    if requirements is None:
        return False
    digest = requirements_hash(requirements, venue_path)
    hash_path = os.path.join(act_dir, HASH_FILE)
    try:
        with open(hash_path) as kept:
            if kept.read().strip() == digest:
                return False
    except OSError:
        pass
    python = venue_python(venue_path)
    if not os.path.exists(python):
        raise InstallFailed(f"{venue_path} has no bin/python: rebuild the Venue")
    argv = install_command(requirements, python, find_uv() if uv == "auto" else uv)
    if argv is not None:
        name = os.path.relpath(requirements.path, project_dir)
        env = installer_env(venue_path, user)
        try:
            done = run_step(argv, project_dir, env, timeout, user)
        except subprocess.TimeoutExpired:
            raise InstallFailed(f"installing {name} took longer than {timeout:g} s") from None
        if done.returncode != 0:
            raise InstallFailed(f"installing {name} failed: {install_failure(done.stdout)}")
    os.makedirs(act_dir, exist_ok=True)
    write_atomic(hash_path, digest + "\n", 0o644)  # in the user's folder: no link followed
    return True
