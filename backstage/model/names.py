"""Names of Venues and Acts: Python identifiers Django accepts as a project name.

An Act's name becomes the package of its Django project and a Venue's name a
folder and part of vassal names, so both are checked before anything is written.
"""

from __future__ import annotations

import keyword
import sys

from ..errors import InvalidName

MAX_LENGTH = 40  # keeps socket paths in run/ well under the 108-byte unix limit

# Top-level packages an Act's project package would shadow inside its Venue.
RESERVED = frozenset({"django", "backstage", "emperor", "uwsgi", "test", "tests", "site"})


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise InvalidName(
            f"{kind} name {name!r} is not valid: use letters, digits and _, starting with a letter"
        )
    if keyword.iskeyword(name) or name in sys.stdlib_module_names or name in RESERVED:
        raise InvalidName(
            f"{kind} name {name!r} clashes with a Python module or keyword: pick another name"
        )
    if name.startswith("_"):
        raise InvalidName(f"{kind} name {name!r} is not valid: start it with a letter")
    if len(name) > MAX_LENGTH:
        raise InvalidName(f"{kind} name {name!r} is longer than {MAX_LENGTH} characters")
    return name
