"""Backstage: many Django projects (Acts) in virtualenvs (Venues), played live on
the Production's own uWSGI Emperor (the Stage)."""

from __future__ import annotations

from .act import Act
from .errors import BackstageError
from .production import Production, Venue

__all__ = ["Act", "BackstageError", "Production", "Venue"]
__version__ = "0.1.0"
