"""What the files declare: one frozen dataclass per file, loaded and written whole.

`production.toml`, `venue.toml` and `act.toml` map one to one onto
`ProductionSpec`, `VenueSpec` and `ActSpec`. `from_dict` checks every value's type
and refuses unknown keys, so a typo in a file is an error, not a silent default.
Reading and writing the files is `backstage.files.declared`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import InvalidSetting

S = TypeVar("S")


@dataclass(frozen=True)
class ProductionSpec:
    ports: tuple[int, int] = (8100, 8999)  # where new Acts get their port, both ends included
    channel: str = "auto"  # how vassals reach the Emperor: auto, zmq or dir
    uwsgi: str = ""  # the uwsgi binary; "" finds the one beside Python, then on PATH
    processes: int = 2  # workers of a new Act
    venues: tuple[str, ...] = ()  # paths of the Venues of this Production
    router: str = "127.0.0.1:8000"  # where the router serves the Gigs, HOST:PORT
    router_sign: bool = False  # Acts sign their announces; the router checks them


@dataclass(frozen=True)
class VenueSpec:
    name: str
    python: str  # major.minor of the Venue's Python, which uwsgi must embed
    requirements: tuple[str, ...] = ("django",)
    domains: tuple[str, ...] = ()
    production: str = ""  # home of the one Production this Venue belongs to


@dataclass(frozen=True)
class ActSpec:
    name: str
    port: int
    module: str = ""  # the Django project package; "" means the Act's name
    processes: int = 2  # workers at start
    max_processes: int = 0  # how far "+" on the FIFO may go; 0 means twice `processes`
    enabled: bool = True
    env: dict[str, str] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()  # where it is booked: Venue domains or their subdomains

    @property
    def package(self) -> str:
        return self.module or self.name

    @property
    def ceiling(self) -> int:
        return (
            max(self.max_processes, self.processes + 1)
            if self.max_processes
            else 2 * self.processes
        )


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("a list of strings")
    return tuple(value)


def _port_range(value: Any) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise TypeError("two integers [first, last]")
    first, last = value
    if not 1 <= first <= last <= 65535:
        raise TypeError("two ports with 1 <= first <= last <= 65535")
    return (first, last)


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in v for k, v in value.items()
    ):
        raise TypeError("a table of single-line strings")
    return dict(value)


# How each annotated type is read from TOML.
_READERS: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "str": _str,
    "bool": _bool,
    "tuple[str, ...]": _strs,
    "tuple[int, int]": _port_range,
    "dict[str, str]": _env,
}


def from_dict(cls: type[S], data: dict[str, Any], where: str) -> S:
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {}
    for key, raw in data.items():
        if key not in known:
            raise InvalidSetting(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        try:
            values[key] = _READERS[str(known[key].type)](raw)
        except TypeError as exc:
            raise InvalidSetting(f"{where}: {key} must be {exc}") from None
    try:
        return cls(**values)
    except TypeError as exc:
        raise InvalidSetting(f"{where}: {exc}") from None


def to_dict(spec: Any) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
