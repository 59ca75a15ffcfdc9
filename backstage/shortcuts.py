"""The original Getting Started API.

from backstage.shortcuts import new_venue, new_act
venue = new_venue('MyVenue', '/tmp')
act = new_act(venue, 'MyAct')
"""

from __future__ import annotations

from typing import Any

from .act import Act
from .production import Production, Venue


def new_venue(
    name: str,
    path: str = ".",
    production: Production | None = None,
    requirements: tuple[str, ...] = ("django",),
    python: str | None = None,
    user: str | None = None,
) -> Venue:
    """Build a virtualenv with Django at `path/name`, as a Venue of the Production;
    on `python` ("3.12") if given, else on the Python the Stage's uwsgi embeds. Made by
    root, its Acts run as a system user of its own; `user="root"` runs them as root."""
    return Venue.create(name, path, production, requirements, python, user)


def new_act(venue: Venue, name: str, **options: Any) -> Act:
    """Create a Django project at `venue/acts/name` and launch it at once."""
    return venue.new_act(name, **options)
