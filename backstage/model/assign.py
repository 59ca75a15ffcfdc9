"""`KEY=VALUE` as the command takes them: `act set`, `config set`, `act add --env`.

A value is read as TOML when it is one (`processes=3`, `enabled=false`,
`release=["python manage.py migrate"]`), else as the plain string it is
(`workers.celery=celery -A proj worker`). A dotted key names an entry of a table
(`workers`, `cron`, `uwsgi`); an empty value removes that entry. The result goes
through the spec's own checks, so a bad value is refused as a hand edit would be.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidSetting
from .spec import ActSpec, from_dict, to_dict

# Set elsewhere: its name is its folder, its env through `config`, its hosts by booking.
NOT_SET_HERE = {
    "name": "an Act's name is its folder's",
    "env": "use `backstage config set VENUE/NAME KEY=VALUE`",
    "hosts": "use `backstage book` and `backstage unbook`",
}
TABLES = ("workers", "cron", "uwsgi")


# What each kind of KEY=VALUE looks like, for the message that says how to write one.
EXAMPLES = {"setting": "processes=4", "--env": "DEBUG=0", "config set": "DEBUG=0"}


def split_assignment(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        example = EXAMPLES.get(what, "KEY=VALUE")
        raise InvalidSetting(f"{what} {text!r} is not KEY=VALUE: write it as {example}")
    return key.strip(), value


def parse_assignments(items: Iterable[str], what: str = "setting") -> dict[str, str]:
    """KEY=VALUE strings as a dict of plain strings (environment values)."""
    return dict(split_assignment(item, what) for item in items)


def toml_value(text: str) -> Any:
    """`text` as a TOML value when it is one, else the string itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_settings(spec: ActSpec, items: Iterable[str], where: str) -> ActSpec:
    """`spec` with each KEY=VALUE of `items` applied, checked as act.toml is."""
    data = to_dict(spec)
    for item in items:
        key, raw = split_assignment(item, "setting")
        table, dot, entry = key.partition(".")
        if table in NOT_SET_HERE:
            raise InvalidSetting(f"{table} is not set with `act set`: {NOT_SET_HERE[table]}")
        if dot:
            if table not in TABLES or not entry:
                raise InvalidSetting(
                    f"{key!r}: only {', '.join(TABLES)} take TABLE.ENTRY=VALUE, "
                    "e.g. workers.celery=celery -A proj worker"
                )
            current = dict(data.get(table) or {})
            if raw == "":
                current.pop(entry, None)
            else:
                current[entry] = raw if table != "uwsgi" else toml_value(raw)
            data[table] = current
        elif key in TABLES:
            raise InvalidSetting(f"{key} is a table: write {key}.NAME=VALUE")
        else:
            value = toml_value(raw)
            if key == "processes" and str in (type(value), type(data.get(key))):
                data.pop("max_processes", None)  # a range ("1..4") names its own ceiling
            data[key] = value
    return from_dict(ActSpec, _as_toml(data), where)


def _as_toml(data: dict[str, Any]) -> dict[str, Any]:
    """The spec's values as TOML would have given them (lists, not tuples)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, tuple):
            out[key] = list(value)
        elif isinstance(value, dict):
            out[key] = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
        else:
            out[key] = value
    return out
