"""Building a Venue's virtual environment, on any installed Python.

uv builds it in a fraction of a second where it is installed (seeded, so that it has
its own pip); stdlib venv otherwise. A vassal's interpreter is its uwsgi's own: a
Venue on the Python the Stage's uwsgi embeds plays on that uwsgi, and one on another
Python gets its own uwsgi, built inside it at creation (`pip install uwsgi==<the
Stage's version>` compiles against the Venue's Python; about 25 s on two cores) and
kept in its libexec/, root's.

Interpreters are found without uv's help (`uv python find` stops at a pyenv shim):
this one, pyenv's `versions/X.Y*/`, then `pythonX.Y` on PATH, each run to check it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

from ...errors import InvalidSetting, VenueBuildError
from ...files import declared
from ...model.layout import venue_python, venue_spec_path, venue_uwsgi, venue_uwsgi_before
from ...model.spec import VenueSpec

MAJOR_MINOR = re.compile(r"^[0-9]+\.[0-9]+$")


def site_packages(venue_path: str) -> list[str]:
    """The Venue's site-packages folders: one, or more where its Python changed."""
    return glob.glob(os.path.join(venue_path, "lib", "python*", "site-packages"))


def python_version(python: str) -> str:
    """The major.minor of the interpreter at `python`, or "" when it does not run (a
    pyenv shim of a version not installed exits non-zero)."""
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def pyenv_root() -> str:
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def _release(path: str) -> tuple[int, ...]:
    """3.12.10 sorts after 3.12.9: the numbers in a pyenv version folder's name."""
    name = os.path.basename(os.path.dirname(os.path.dirname(path)))
    return tuple(int(part) for part in re.findall(r"[0-9]+", name))


def candidates(major_minor: str) -> Iterator[str]:
    """Where an interpreter of this version may be, best first; none checked yet."""
    if "{}.{}".format(*sys.version_info[:2]) == major_minor:
        yield sys.executable
    pattern = os.path.join(pyenv_root(), "versions", f"{major_minor}*", "bin")
    found = glob.glob(os.path.join(pattern, f"python{major_minor}"))
    yield from sorted(found, key=_release, reverse=True)
    on_path = shutil.which(f"python{major_minor}")
    if on_path:
        yield on_path


def find_python(major_minor: str, embedded: bool = True) -> str:
    """An installed interpreter of this version, checked by running it. `embedded`: the
    version is the one the Stage's uwsgi embeds (the default for a new Venue)."""
    if not MAJOR_MINOR.match(major_minor):
        raise InvalidSetting(f"python {major_minor!r}: write a major.minor version, e.g. 3.12")
    for path in candidates(major_minor):
        if python_version(path) == major_minor:
            return path
    if embedded:
        raise VenueBuildError(
            f"uwsgi embeds Python {major_minor} but no python{major_minor} is installed: "
            f"install it, or rebuild uwsgi with the Python you have"
        )
    raise VenueBuildError(
        f"Python {major_minor} is not installed (looked in {pyenv_root()}/versions and for "
        f"python{major_minor} on PATH): install it, e.g. `pyenv install {major_minor}`, "
        f"or pick an installed one with --python"
    )


# uv installs no bytecode unless told to; an Act's processes then compile every module
# they import at each start (they may not write the Venue, or their environment says
# PYTHONDONTWRITEBYTECODE): a master killed -9 came back serving after 4.2-5.8 s that
# way, 1.0-2.6 s with Django compiled (load 9-13). pip compiles by default.
UV_COMPILE = "--compile-bytecode"


def find_uv() -> str | None:
    """uv beside Backstage's Python, else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("uv")


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenueBuildError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise VenueBuildError(f"{what} failed: {lines[-1] if lines else f'exit {done.returncode}'}")


def build(path: str, python: str, requirements: tuple[str, ...]) -> None:
    uv = find_uv()
    if uv:
        # seeded: the Venue has its own bin/pip, as one made by venv has
        args = [uv, "venv", "--quiet", "--seed", "--python", python, path]
        _run(args, "creating the virtualenv")
    else:
        _run([python, "-m", "venv", path], "creating the virtualenv")
    install(path, requirements)
    private_lock(path)


def private_lock(path: str) -> None:
    """uv's `.lock` in the Venue, which it makes 0666: anyone could hold it and stall
    every install. Backstage's alone."""
    lock = os.path.join(path, ".lock")
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(lock).st_mode & 0o077:
            os.chmod(lock, 0o600)


# What a failed uwsgi build says, and what it means.
BUILD_CAUSES = (
    ("Python.h: No such file", "the headers of Python {mm} are missing"),
    ("cannot find -lpython", "libpython{mm} is missing, or was built static"),
    ("gcc: not found", "a C compiler (gcc) is missing"),
    ("No such file or directory: 'gcc'", "a C compiler (gcc) is missing"),
)


def build_uwsgi(path: str, version: str, log_path: str) -> None:
    """Compile uwsgi `version` inside the Venue at `path`, against its Python: its
    bin/uwsgi. Its output goes to `log_path`; a failure is one line."""
    venv_python = venue_python(path)
    major_minor = python_version(venv_python)
    uv = find_uv()
    requirement = f"uwsgi=={version}"
    if uv:
        args = [uv, "pip", "install", "--python", venv_python, requirement]
    else:
        args = [venv_python, "-m", "pip", "install", "--no-cache-dir", requirement]
    what = f"building uwsgi {version} for Python {major_minor}"
    try:
        done = subprocess.run(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenueBuildError(f"{what} failed: {exc}") from exc
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as log:
        log.write(done.stdout)
    built = venue_uwsgi_before(path)
    if done.returncode == 0 and os.access(built, os.X_OK):
        # out of bin/, which becomes the Venue's user's: the vassal runs it as root
        # until it drops to that user
        kept = venue_uwsgi(path)
        os.makedirs(os.path.dirname(kept), mode=0o755, exist_ok=True)
        os.rename(built, kept)
        return
    cause = next(
        (why for mark, why in BUILD_CAUSES if mark in done.stdout),
        "see the log",
    ).format(mm=major_minor)
    raise VenueBuildError(
        f"{what} failed: {cause} (it needs python{major_minor}-config and a shared "
        f"libpython{major_minor}, e.g. pyenv's or Debian's python{major_minor}-dev; "
        f"log: {log_path})"
    )


def install(path: str, requirements: tuple[str, ...]) -> None:
    if not requirements:
        return
    venv_python = venue_python(path)
    uv = find_uv()
    if uv:
        args = [uv, "pip", "install", "--quiet", UV_COMPILE, "--python", venv_python]
        args += requirements
    else:
        args = [venv_python, "-m", "pip", "install", "--quiet", *requirements]
    _run(args, f"installing {' '.join(requirements)}")
    private_lock(path)


def create_venue(
    path: str,
    name: str,
    python: str,
    requirements: tuple[str, ...],
    home: str,
    uwsgi: str = "",
    build_log: str = "",
    user: str = "",
) -> None:
    """Build the Venue at `path` with `python`, and declare it as one of the Production at
    `home`, its Acts to run as `user`; with `uwsgi` (a version), build its own uwsgi too,
    its output to `build_log`. All or nothing: a failure leaves no folder behind."""
    try:
        build(path, python, requirements)
        if uwsgi:
            build_uwsgi(path, uwsgi, build_log)
        os.makedirs(os.path.join(path, "acts"))
        spec = VenueSpec(
            name=name,
            python=python_version(venue_python(path)),
            requirements=requirements,
            production=home,
            own_uwsgi=bool(uwsgi),
            user=user,
        )
        declared.dump(venue_spec_path(path), spec)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
