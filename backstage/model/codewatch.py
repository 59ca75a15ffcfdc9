"""What a watched Act's saves are: which files count as its code, and when a burst of
saves has settled into one reload. Pure: paths and times in, answers out.

Code is every `.py` file, every file under a `templates` folder, and what `watch_paths`
adds (globs from the project folder, e.g. `config/*.yaml`). Never code: version control,
bytecode, the static and media roots, databases, editors' scratch files, and what
`watch_ignore` says.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

# Folder names never looked into.
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", "media", "static",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "releases"}
)  # fmt: skip
# File names never code, whatever folder they are in.
SKIPPED_FILES = ("*.pyc", "*.pyo", "*.sqlite3", "*.sqlite", "*.db", "*.db-journal", "*.log",
                 "*~", ".#*", "#*#", "*.swp", "*.swx", "*.tmp", "4913")  # fmt: skip
CODE_FILES = ("*.py",)
TEMPLATE_DIR = "templates"

DEBOUNCE = 0.08  # seconds of quiet after a save before the reload starts
LONGEST_WAIT = 1.0  # a burst that never goes quiet still reloads this long after it began


@dataclass(frozen=True)
class WatchRules:
    root: str  # the project folder
    extra: tuple[str, ...] = ()  # watch_paths
    ignore: tuple[str, ...] = ()  # watch_ignore
    skipped_roots: tuple[str, ...] = ()  # absolute folders never code: static and media roots

    def is_code(self, path: str) -> bool:
        path = os.path.normpath(path)
        if any(path == r or path.startswith(r + os.sep) for r in self.skipped_roots):
            return False
        relative = os.path.relpath(path, self.root)
        if relative.startswith(os.pardir + os.sep) or relative == os.pardir:
            relative = path  # outside the project folder (its pythonpath): judged whole
        parts = relative.split(os.sep)
        name = parts[-1]
        if any(part in SKIPPED_DIRS for part in parts[:-1]):
            return False
        if any(fnmatch.fnmatch(name, pattern) for pattern in SKIPPED_FILES):
            return False
        if any(_matches(relative, pattern) for pattern in self.ignore):
            return False
        if any(fnmatch.fnmatch(name, pattern) for pattern in CODE_FILES):
            return True
        if TEMPLATE_DIR in parts[:-1]:
            return True
        return any(_matches(relative, pattern) for pattern in self.extra)


def _matches(relative: str, pattern: str) -> bool:
    """A glob against the path from the project folder, or against any folder on it
    (`docs` ignores `docs/x.py`), or against the file name when it has no slash."""
    pattern = pattern.strip().rstrip("/")
    if fnmatch.fnmatch(relative, pattern):
        return True
    parts = relative.split(os.sep)
    if "/" not in pattern:
        return any(fnmatch.fnmatch(part, pattern) for part in parts)
    return any(fnmatch.fnmatch(os.sep.join(parts[:i]), pattern) for i in range(1, len(parts)))


@dataclass
class Debounce:
    """A burst of saves as one reload: due `quiet` seconds after the last save, or
    `longest` after the first, whichever comes first."""

    quiet: float = DEBOUNCE
    longest: float = LONGEST_WAIT
    first: float | None = None
    last: float = 0.0
    saves: int = 0

    def saved(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.last = now
        self.saves += 1

    def due(self) -> float | None:
        """When the reload is due; None while nothing was saved."""
        if self.first is None:
            return None
        return min(self.last + self.quiet, self.first + self.longest)

    def take(self) -> int:
        """The saves of this burst, and start the next one."""
        saves, self.first, self.saves = self.saves, None, 0
        return saves
