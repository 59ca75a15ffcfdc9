"""Backstage: many Django projects (Acts) in virtualenvs (Venues), played live on
the Production's own uWSGI Emperor (the Stage)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BackstageError

if TYPE_CHECKING:
    from .act import Act
    from .production import Production, Venue

__all__ = ["Act", "BackstageError", "Production", "Venue"]
__version__ = "0.1.0"

# Imported when first named: the `backstage` command imports this package, and most of
# its commands (the keeper above all, one per Production) need little of what these do.
_LAZY = {"Act": ".act", "Production": ".production", "Venue": ".production"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    found = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = found
    return found
