"""Declared state lives in small TOML files, always replaced atomically (`fs.write_atomic`).

`tomllib` reads; the writer below covers exactly what Backstage declares:
strings, integers, booleans, lists of those, and one level of tables.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidSetting


def load(path: str) -> dict[str, Any]:
    with open(path, "rb") as source:
        return loads(source.read().decode("utf-8", errors="replace"), path)


def loads(text: str, path: str) -> dict[str, Any]:
    """The TOML document `text`, read from `path` (named in the error)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSetting(f"{path} is not valid TOML ({exc}): fix or remove it") from exc


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON strings are TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def dumps(data: Mapping[str, Any]) -> str:
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    for name, table in data.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{_key(name)}]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
