"""Values in a uWSGI ini file: what may go there, and how it must be written.

uWSGI's config parser expands `$(VAR)` from the environment, `@(file)` and
`@(exec://cmd)` from a file or a command, and `%(option)` from another option, in any
value and with no escape; it trims blanks, and `%` starts a magic variable (`%%` is a
`%`). A value that holds what it would expand is refused, never escaped.
"""

from __future__ import annotations

import re

from ..errors import InvalidSetting
from ..model.checks import EXPANSIONS  # data that holds one cannot go into a config


def ini_value(value: object) -> str:
    """A value safe on one line of a uWSGI ini file, or InvalidSetting: what uWSGI would
    expand, split or trim is refused, and `%` (a magic variable there) doubled."""
    text = str(value)
    if any(c in text for c in "\n\r\0"):
        raise InvalidSetting(f"{text!r} spans lines and cannot go into a vassal config")
    if text != text.strip():
        raise InvalidSetting(f"{text!r} starts or ends with blanks, which uWSGI would drop")
    found = next((e for e in EXPANSIONS if e in text), None)
    if found:
        raise InvalidSetting(
            f"{text!r} holds {found!r}, which uWSGI would expand: it cannot go into a config"
        )
    return text.replace("%", "%%")


# What a path may hold to go into a config untouched: nothing uWSGI would expand
# (`$(`, `@(`, `%(`), take for a comment (`;`, `#`) or trim.
_PATH = re.compile(r"^/[A-Za-z0-9_./+-]*$")


def path_value(value: object) -> str:
    """An absolute path of plain characters, or InvalidSetting."""
    text = str(value)
    if not _PATH.match(text):
        raise InvalidSetting(
            f"{text!r} holds characters other than letters, digits and _ . / + -, which "
            "cannot go into the router's config: move the Production to a plainer path"
        )
    return text


def kv_value(value: object) -> str:
    """A value inside a `key=value,key=value` option such as subscribe2."""
    text = ini_value(value)
    if "," in text:
        raise InvalidSetting(f"{text!r} holds a comma and cannot go into a subscribe2 line")
    return text
