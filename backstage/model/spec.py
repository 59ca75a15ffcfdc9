"""What the files declare: one frozen dataclass per file, loaded and written whole.

`production.toml`, `venue.toml` and `act.toml` map one to one onto
`ProductionSpec`, `VenueSpec` and `ActSpec`. `from_dict` checks every value's type
and refuses unknown keys, so a typo in a file is an error, not a silent default.
Reading and writing the files is `backstage.files.declared`'s.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import InvalidHostname, InvalidSetting
from .domains import check_hostname
from .gig import split_address

S = TypeVar("S")

CHANNELS = ("auto", "zmq", "dir")
# An environment variable Python can set and uWSGI will not read as one of its own
# options (it reads any UWSGI_* when it re-execs); BACKSTAGE_* are Backstage's.
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = ("UWSGI_", "BACKSTAGE_")


def _port(key: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise InvalidSetting(f"{key} = {value} is not a port: write a number from 1 to 65535")


def _at_least(key: str, value: int, least: int) -> None:
    if value < least:
        raise InvalidSetting(f"{key} = {value} is too small: write {least} or more")


def check_env_key(key: str) -> str:
    if not ENV_KEY.fullmatch(key):
        raise InvalidSetting(
            f"env key {key!r} is not a variable name: use letters, digits and _, "
            "starting with a letter or _"
        )
    if key.upper().startswith(RESERVED_ENV):
        raise InvalidSetting(f"env key {key!r} is reserved (UWSGI_*, BACKSTAGE_*): rename it")
    return key


def check_module(value: str) -> str:
    """A dotted Python module name, e.g. mysite.wsgi."""
    parts = value.split(".")
    if not all(p.isidentifier() and p.isascii() and not keyword.iskeyword(p) for p in parts):
        raise InvalidSetting(
            f"module = {value!r} is not a Python module name: write one like mysite or "
            "mysite.settings"
        )
    return value


@dataclass(frozen=True)
class ProductionSpec:
    ports: tuple[int, int] = (8100, 8999)  # where new Acts get their port, both ends included
    channel: str = "auto"  # how vassals reach the Emperor: auto, zmq or dir
    uwsgi: str = ""  # the uwsgi binary; "" finds the one beside Python, then on PATH
    processes: int = 2  # workers of a new Act
    venues: tuple[str, ...] = ()  # paths of the Venues of this Production
    router: str = "127.0.0.1:8000"  # where the router serves the Gigs, HOST:PORT
    router_sign: bool = False  # Acts sign their announces; the router checks them

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise InvalidSetting(f"channel = {self.channel!r}: write one of {', '.join(CHANNELS)}")
        _at_least("processes", self.processes, 1)
        split_address(self.router)


@dataclass(frozen=True)
class VenueSpec:
    name: str
    python: str  # major.minor of the Venue's Python, which uwsgi must embed
    requirements: tuple[str, ...] = ("django",)
    domains: tuple[str, ...] = ()
    production: str = ""  # home of the one Production this Venue belongs to

    def __post_init__(self) -> None:
        for domain in self.domains:
            _folded_host("domains", domain)


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

    def __post_init__(self) -> None:
        _port("port", self.port)
        _at_least("processes", self.processes, 1)
        _at_least("max_processes", self.max_processes, 0)
        if self.module:
            check_module(self.module)
        for key, value in self.env.items():
            check_env_key(key)
            if "\0" in value:
                raise InvalidSetting(f"env {key} holds a NUL character, which no variable can")
        for host in self.hosts:
            _folded_host("hosts", host)

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


def _folded_host(key: str, host: str) -> None:
    try:
        folded = check_hostname(host)
    except InvalidHostname as exc:
        raise InvalidSetting(f"{key}: {exc}") from None
    if folded != host:
        raise InvalidSetting(f"{key}: write {host!r} as {folded!r}")


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
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError("a table of strings")
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
    except (TypeError, InvalidSetting) as exc:
        raise InvalidSetting(f"{where}: {exc}") from None


def to_dict(spec: Any) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
