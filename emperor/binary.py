"""What a uwsgi binary can do: its version, its plugins, the Python it embeds.

Probing runs the binary twice (`--version`, `--plugins-list`, `--python-version`
are cheap and start no server), so results are cached per path.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from .errors import BinaryError

ZMQ_PLUGIN = "emperor_zeromq"


@dataclass(frozen=True)
class UwsgiBinary:
    path: str
    version: str
    python_version: str  # the embedded interpreter, "3.11.7"
    plugins: frozenset[str]

    @property
    def has_zmq(self) -> bool:
        return ZMQ_PLUGIN in self.plugins

    @property
    def python_major_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])


def parse_plugins_list(text: str) -> frozenset[str]:
    """Plugin names from `uwsgi --plugins-list` output.

    Generic plugins are listed bare, request plugins as `N: name`; the banner
    that follows `--- end of plugins list ---` is ignored.
    """
    names: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("--- end"):
            break
        if not line or line.startswith("***"):
            continue
        if ":" in line:
            number, _, name = line.partition(":")
            if number.strip().isdigit():
                names.add(name.strip())
            continue
        if " " not in line:
            names.add(line)
    return frozenset(names)


def find_uwsgi() -> str:
    """The uwsgi beside this Python first (a virtualenv's own build), then PATH."""
    override = os.environ.get("BACKSTAGE_UWSGI")
    if override:
        return override
    beside = os.path.join(os.path.dirname(sys.executable), "uwsgi")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("uwsgi")
    if not found:
        raise BinaryError("no uwsgi binary found: install it with `pip install uwsgi`")
    return found


def _run(path: str, *args: str) -> str:
    try:
        done = subprocess.run(
            [path, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BinaryError(f"cannot run {path}: {exc}") from exc
    return done.stdout + done.stderr


@functools.lru_cache(maxsize=8)
def probe(path: str | None = None) -> UwsgiBinary:
    path = path or find_uwsgi()
    version = _run(path, "--version").strip().splitlines()
    if not version:
        raise BinaryError(f"{path} printed no version: is it a uwsgi binary?")
    python = _run(path, "--python-version").strip().splitlines()
    return UwsgiBinary(
        path=path,
        version=version[-1],
        python_version=python[-1] if python else "",
        plugins=parse_plugins_list(_run(path, "--plugins-list")),
    )


def parse_option_names(text: str) -> frozenset[str]:
    """Option names from `uwsgi --help`: lines like `    -s|--socket   bind to…` or
    `    --stats   enable…`."""
    names: set[str] = set()
    for line in text.splitlines():
        first = line.strip().split(" ", 1)[0]
        for part in first.split("|"):
            if part.startswith("--") and len(part) > 2:
                names.add(part[2:])
    return frozenset(names)


@functools.lru_cache(maxsize=8)
def option_names(path: str, plugins: str = "") -> frozenset[str]:
    """Every option the binary at `path` knows, its plugins' included: those built in,
    and those of `plugins` (a modular build's, loaded from files)."""
    load = ("--plugins", plugins) if plugins else ()
    return parse_option_names(_run(path, *load, "--help"))
