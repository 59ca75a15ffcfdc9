"""Building a Venue's virtual environment with the Python that uwsgi embeds.

uv builds it in about a second where it is installed; stdlib venv and pip
otherwise. A vassal's interpreter is uwsgi's own, so the Venue's Python must
have the same major.minor or Django will not import inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ..errors import VenueBuildError
from ..files import declared
from ..model.layout import venue_spec_path
from ..model.spec import VenueSpec


def python_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip()


def find_python(major_minor: str) -> str:
    """An interpreter of this version: this one if it matches, else pythonX.Y on PATH."""
    if "{}.{}".format(*sys.version_info[:2]) == major_minor:
        return sys.executable
    found = shutil.which(f"python{major_minor}")
    if found and python_version(found) == major_minor:
        return found
    raise VenueBuildError(
        f"uwsgi embeds Python {major_minor} but no python{major_minor} is installed: "
        f"install it, or rebuild uwsgi with the Python you have"
    )


def find_uv() -> str | None:
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
        _run([uv, "venv", "--quiet", "--python", python, path], "creating the virtualenv")
    else:
        _run([python, "-m", "venv", path], "creating the virtualenv")
    install(path, requirements)


def install(path: str, requirements: tuple[str, ...]) -> None:
    if not requirements:
        return
    venv_python = os.path.join(path, "bin", "python")
    uv = find_uv()
    if uv:
        args = [uv, "pip", "install", "--quiet", "--python", venv_python, *requirements]
    else:
        args = [venv_python, "-m", "pip", "install", "--quiet", *requirements]
    _run(args, f"installing {' '.join(requirements)}")


def create_venue(
    path: str, name: str, python: str, requirements: tuple[str, ...], home: str
) -> None:
    """Build the Venue at `path` with `python`, and declare it as one of the Production at
    `home`; all or nothing: a failure leaves no folder behind."""
    try:
        build(path, python, requirements)
        os.makedirs(os.path.join(path, "acts"))
        spec = VenueSpec(
            name=name,
            python=python_version(os.path.join(path, "bin", "python")),
            requirements=requirements,
            production=home,
        )
        declared.dump(venue_spec_path(path), spec)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
