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
from typing import Any, ClassVar, TypeVar

from ..errors import InvalidSetting
from .account import ROOT, check_user_name
from .checks import (
    CHANNELS,
    LOG_MAX_DEFAULT,
    PROCESS_NAME,
    SYSTEM_VASSALS,
    check_at_least,
    check_domain,
    check_env_key,
    check_folded_host,
    check_module,
    check_option,
    check_port,
    check_processes,
    check_producer,
    check_shared,
    check_stage,
    split_cron,
)
from .gig import split_address
from .project import WsgiTarget, parse_wsgi

S = TypeVar("S")
ACME_KEYS = ("directory", "email", "ca_bundle")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class ProductionSpec:
    ports: tuple[int, int] = (8100, 8999)  # where new Acts get their port, both ends included
    channel: str = "auto"  # how vassals reach the Emperor: auto, zmq or dir
    uwsgi: str = ""  # the uwsgi binary; "" finds the one beside Python, then on PATH
    processes: int = 2  # workers of a new Act
    venues: tuple[str, ...] = ()  # paths of the Venues of this Production
    router: str = "127.0.0.1:8000"  # where the router serves the Gigs, HOST:PORT
    # Acts sign their announces and the router checks them; unset: signed when
    # subscriptions cross hosts (subscription_server beyond loopback, or subscribe_to)
    router_sign: bool | None = None
    # the router's TLS listener, HOST:PORT ("0.0.0.0:443" faces the world); "" = none. A
    # host with a certificate answers plain HTTP with a 308 to https, unless https_redirect
    # is false (ACME's challenge path excepted)
    https: str = ""
    https_redirect: bool = True  # with https: a host with a certificate answers HTTP with a 308
    # with https: offer TLS 1.3 beside TLS 1.2. Off: uWSGI 2.0 limits the router's key
    # exchange to P-256, so a client leading with X25519 (wrk, Chrome) takes a second round
    # trip, and each resumed TLS 1.3 session pays a key exchange a TLS 1.2 one does not
    https_tls13: bool = False
    # ACME, with https: each booked host gets a certificate from this CA (HTTP-01, answered
    # on `router`), renewed by the Production Manager. Keys: directory (default: Let's
    # Encrypt's), email, ca_bundle (a CA file to trust the ACME server's own TLS). A table
    # with no key is none
    acme: dict[str, str] = field(default_factory=dict)
    metrics: str = ""  # HOST:PORT where the Production Manager serves /metrics; "" = none
    dashboard: str = ""  # HOST:PORT of the live web dashboard; "" = none
    # The Producer: a PowerDNS server whose zones (one per Venue domain) Backstage keeps
    # in step with the bookings. "" = none; else its API's URL, e.g. http://127.0.0.1:8081
    producer: str = ""
    producer_key: str = ""  # absolute path of a 0600 file that holds the API key
    public_address: str = ""  # the IPv4 or IPv6 address every booked host points at

    # Many hosts. The router also takes subscriptions over UDP here, from other hosts:
    subscription_server: str = ""  # HOST:PORT; "" = only this host's Acts (unix socket)
    # Routers on other hosts this Production's playing Acts announce their Gigs to too,
    subscribe_to: tuple[str, ...] = ()  # HOST:PORT of each one's subscription_server
    # from a uwsgi socket on this host's address that those hosts reach (port: the Act's)
    node_address: str = ""
    max_rss: int = 0  # MiB: an Act's worker past it is reloaded, unless the Act says; 0 = none
    # Where the Acts play: "own", the Production's own Emperor, or "system", an Emperor
    # already running on the host (Debian's uwsgi-emperor), whose vassal directory the
    # Production links its configs into; it reports in `system_stats` if it has stats
    stage: str = "own"
    system_vassals: str = SYSTEM_VASSALS  # stage = "system": the directory that Emperor watches
    system_stats: str = ""  # stage = "system": that Emperor's --emperor-stats address, if any
    # The Production's own logs (router.log, emperor.log, manager.log) rotate as an Act's:
    # past log_max bytes to LOG.<unixtime>, of which the newest log_keep are kept
    log_max: int = LOG_MAX_DEFAULT
    log_keep: int = 5  # rotated logs kept
    # Who a new Venue's Acts run as, when Backstage runs as root: "" = a system user of
    # its own, made with the Venue and removed with it; "root" = as root, asked for (a
    # warning each time a Venue is made so)
    venue_user: str = ""

    # written only when set, so that a production.toml holds what its owner chose
    QUIET_DEFAULTS: ClassVar[tuple[str, ...]] = (
        "router_sign", "https", "https_redirect", "https_tls13", "acme", "metrics", "dashboard",
        "producer", "producer_key", "public_address",
        "subscription_server", "subscribe_to", "node_address", "max_rss", "stage",
        "system_vassals", "system_stats", "log_max", "log_keep", "venue_user",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.producer:
            check_producer(self.producer, self.producer_key, self.public_address)
        if self.subscription_server:
            split_address(self.subscription_server, "subscription_server")
        for server in self.subscribe_to:
            split_address(server, "subscribe_to")
        if self.subscribe_to and not self.node_address:
            raise InvalidSetting(
                'subscribe_to needs node_address = "ADDR": this host\'s address the '
                "routers there reach"
            )
        if self.node_address in ("0.0.0.0", "::", "*") or ":" in self.node_address.strip("[]"):
            raise InvalidSetting(
                f"node_address = {self.node_address!r}: write this host's IPv4 address "
                "other hosts reach, e.g. 10.0.0.2"
            )
        unknown = sorted(set(self.acme) - set(ACME_KEYS))
        if unknown:
            raise InvalidSetting(f"[acme] {unknown[0]!r} is unknown: write {', '.join(ACME_KEYS)}")
        if not self.acme.get("ca_bundle", "/").startswith("/") and self.acme["ca_bundle"]:
            raise InvalidSetting("[acme] ca_bundle must be an absolute path")
        if self.https and split_address(self.https, "https") == split_address(self.router):
            raise InvalidSetting(
                f"https = {self.https!r} is the router's HTTP address: give TLS a port of its own"
            )
        for key in ("metrics", "dashboard", "https"):
            if getattr(self, key):
                split_address(getattr(self, key), key)
        if self.channel not in CHANNELS:
            raise InvalidSetting(f"channel = {self.channel!r}: write one of {', '.join(CHANNELS)}")
        check_processes("processes", self.processes, 1)
        check_at_least("max_rss", self.max_rss, 0)
        check_at_least("log_max", self.log_max, 0)
        check_at_least("log_keep", self.log_keep, 0)
        split_address(self.router)
        check_stage(self.stage, self.system_vassals, self.system_stats)
        if self.venue_user not in ("", ROOT):
            raise InvalidSetting(
                f'venue_user = {self.venue_user!r}: write "root" (new Venues run as root) '
                "or leave it out (each new Venue gets a system user of its own)"
            )

    @property
    def beyond_loopback(self) -> bool:
        """The router takes subscriptions from other hosts."""
        if not self.subscription_server:
            return False
        host = split_address(self.subscription_server)[0].strip("[]")
        return not (host.startswith("127.") or host in ("localhost", "::1"))

    @property
    def signs(self) -> bool:
        """Announces are signed and checked: as router_sign says, else when they cross hosts."""
        if self.router_sign is not None:
            return self.router_sign
        return self.beyond_loopback or bool(self.subscribe_to)


@dataclass(frozen=True)
class VenueSpec:
    name: str  # the Venue's name, a Python identifier, unique in its Production
    python: str  # major.minor of the Venue's Python, which its uwsgi embeds
    requirements: tuple[str, ...] = ("django",)  # what its virtualenv was built with
    domains: tuple[str, ...] = ()  # DNS names (and their subdomains) its Acts may be booked at
    production: str = ""  # home of the one Production this Venue belongs to
    # Its Acts run on its own uwsgi (bin/uwsgi), built for its Python at creation because
    # the Stage's uwsgi embeds another one
    own_uwsgi: bool = False
    # The system user its Acts run as (vassals, workers, cron, release steps) when
    # Backstage runs as root; a Venue made by root gets one of its own by default.
    # "root" = as Backstage itself, asked for; "" = as Backstage itself (a Venue made
    # before the default, or by a Backstage that is not root)
    user: str = ""

    # Venue domains whose hosts send HSTS (Strict-Transport-Security, a year) over HTTPS:
    # browsers then refuse plain HTTP for them. Off unless listed
    hsts: tuple[str, ...] = ()

    QUIET_DEFAULTS: ClassVar[tuple[str, ...]] = ("own_uwsgi", "user", "hsts")

    def __post_init__(self) -> None:
        for domain in self.domains:
            check_domain("domains", domain)
        for domain in self.hsts:
            check_domain("hsts", domain)  # one no longer in domains does nothing
        if self.runs_as:
            check_user_name(self.user)  # and `declared` asks the host whether it exists

    @property
    def runs_as(self) -> str:
        """The system user its Acts run as; "" = as Backstage itself."""
        return "" if self.user == ROOT else self.user


@dataclass(frozen=True)
class ActSpec:
    name: str  # the Act's name, as its folder in VENUE/acts/ names it
    port: int  # where it serves HTTP on 127.0.0.1: chosen free at creation, then kept
    module: str = ""  # the Django project package; "" means the Act's name
    # workers at start; "1..4": adaptive, 1 at rest and up to 4 under load (uWSGI's
    # busyness algorithm), the range's second number its max_processes
    processes: int = 2
    max_processes: int = 0  # how far "+" on the FIFO may go; 0 means twice `processes`
    # Adaptive workers, written `processes = "1..4"` in act.toml (never `adaptive =`):
    # uWSGI's busyness algorithm keeps `processes` at rest and spawns up to
    # `max_processes` under load, and cheaps them again once idle
    adaptive: bool = False
    enabled: bool = True  # false: the Production Manager stops it (`act stop` writes it)
    env: dict[str, str] = field(default_factory=dict)  # its environment (`backstage config`)
    hosts: tuple[str, ...] = ()  # where it is booked: Venue domains or their subdomains
    # An adopted project (`act add`): its folder, served where it is and never written;
    # "" for a scaffolded Act, whose project is the Act's own folder.
    source: str = ""
    wsgi: str = ""  # MODULE:CALLABLE; "" means <package>.wsgi:application
    # The project's Django settings module; "" means <package>.settings for a scaffold
    # and "not Django" for an adopted project.
    settings: str = ""
    pythonpath: tuple[str, ...] = ()  # folders the project's modules import from
    booked_hosts: bool = True  # Django: a generated settings module allows booked hosts
    static_url: str = ""  # served from static_root by the vassal itself; "" serves none
    static_root: str = ""  # the folder static_url serves
    media_url: str = ""  # Django's MEDIA_URL, served from media_root likewise; "" serves none
    media_root: str = ""  # the folder media_url serves
    release: tuple[str, ...] = ()  # commands run in the project before a new version serves
    workers: dict[str, str] = field(default_factory=dict)  # name = command, beside web
    cron: dict[str, str] = field(default_factory=dict)  # name = "M H DOM MON DOW command"
    # options added to its vassal config: only those allowed (model/options.py)
    uwsgi: dict[str, str | int | bool | tuple[str, ...]] = field(default_factory=dict)
    log_max: int = LOG_MAX_DEFAULT  # bytes; the log is rotated past it
    log_keep: int = 5  # rotated logs kept
    memory_report: bool = False  # uWSGI's per-request memory line in the log
    # Seconds without a request before the Act sleeps (no process; the next request at
    # its port or a Gig wakes it); 0 = never.
    idle: int = 0
    max_rss: int = 0  # MiB a worker may reach before it is reloaded; 0 = the Production's
    # The development loop: the Production Manager watches the project's code and
    # chain-reloads on a save once the pre-flight passes (`backstage dev` turns it on).
    watch: bool = False
    # Served from `current` in the Act's folder, a symlink to a release (`backstage
    # deploy`) or to `source`: a deploy or a rollback moves it and chain-reloads.
    current: bool = False
    watch_paths: tuple[str, ...] = ()  # more files to watch: globs from the project folder
    watch_ignore: tuple[str, ...] = ()  # files or folders never watched, globs likewise
    # What the app writes inside its project (uploads, a SQLite file, Flask's instance/),
    # relative to it: kept in the Act's shared/ and linked into every version. Django's
    # MEDIA_ROOT and SQLite files and Flask's instance/ are found and added by the pre-flight.
    shared: tuple[str, ...] = ()

    # Written to act.toml only when they differ from the default: an Act of old reads
    # and writes back as it was.
    QUIET_DEFAULTS: ClassVar[tuple[str, ...]] = (
        "source", "wsgi", "settings", "pythonpath", "booked_hosts", "static_url",
        "static_root", "media_url", "media_root", "release", "workers", "cron", "uwsgi", "log_max",
        "log_keep",
        "memory_report", "idle", "max_rss", "watch", "current", "watch_paths", "watch_ignore",
        "shared", "adaptive",
    )  # fmt: skip
    # Fields no file names: `adaptive` is written as `processes = "1..4"`
    NOT_KEYS: ClassVar[tuple[str, ...]] = ("adaptive",)

    def __post_init__(self) -> None:
        check_port("port", self.port)
        if self.adaptive and self.max_processes <= self.processes:
            raise InvalidSetting(
                f'processes = "{self.processes}..{self.max_processes}": the second number must '
                f'be above the first, e.g. "{self.processes}..{self.processes + 2}"'
            )
        check_processes("processes", self.processes, 1)
        check_processes("max_processes", self.max_processes, 0)
        if 0 < self.max_processes < self.processes:
            raise InvalidSetting(
                f"max_processes = {self.max_processes} is below processes = {self.processes}: "
                f"write {self.processes} or more (0: twice processes)"
            )
        check_at_least("log_max", self.log_max, 0)
        check_at_least("log_keep", self.log_keep, 0)
        check_at_least("idle", self.idle, 0)
        check_at_least("max_rss", self.max_rss, 0)
        if self.module:
            check_module(self.module)
        if self.source and not self.source.startswith("/"):
            raise InvalidSetting(f"source = {self.source!r}: write the project's absolute path")
        if self.wsgi:
            parse_wsgi(self.wsgi, "wsgi =")
        if self.settings:
            check_module(self.settings)
        roots = tuple(p for p in (self.static_root, self.media_root) if p)
        for path in self.pythonpath + roots:
            if not path.startswith("/"):
                raise InvalidSetting(f"{path!r} is not an absolute path: write one")
        for kind in ("static", "media"):
            if bool(getattr(self, f"{kind}_url")) != bool(getattr(self, f"{kind}_root")):
                raise InvalidSetting(f"{kind}_url and {kind}_root go together: set both or neither")
        for kind, table in (("workers", self.workers), ("cron", self.cron)):
            for name in table:
                if not PROCESS_NAME.fullmatch(name):
                    raise InvalidSetting(
                        f"{kind} name {name!r}: use letters, digits, _ and -, e.g. celery"
                    )
        for name, command in self.workers.items():
            if not command.strip() or "\n" in command:
                raise InvalidSetting(f"workers {name}: write one command on one line")
        for name, entry in self.cron.items():
            split_cron(name, entry)
        for key, value in self.uwsgi.items():
            check_option(key, value)
        for key, value in self.env.items():
            check_env_key(key)
            if "\0" in value:
                raise InvalidSetting(f"env {key} holds a NUL character, which no variable can")
        for host in self.hosts:
            check_folded_host("hosts", host)
        for path in self.shared:
            check_shared(path)
        for key in ("watch_paths", "watch_ignore"):
            for pattern in getattr(self, key):
                if not pattern.strip() or "\0" in pattern:
                    raise InvalidSetting(f"{key}: {pattern!r} is not a glob, e.g. config/*.yaml")

    @property
    def package(self) -> str:
        return self.module or self.name

    @property
    def adopted(self) -> bool:
        """A project served where it is (`act add`), not one scaffolded in the Act."""
        return bool(self.source)

    @property
    def wsgi_target(self) -> str:
        return self.wsgi or f"{self.package}.wsgi:application"

    @property
    def wsgi_app(self) -> WsgiTarget:
        return parse_wsgi(self.wsgi_target, "wsgi =")

    @property
    def django_settings(self) -> str:
        """The project's settings module; "" when it is not a Django project."""
        if self.settings or self.adopted:
            return self.settings
        return f"{self.package}.settings"

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
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError("a table of strings")
    return dict(value)


def _options(value: Any) -> dict[str, str | int | bool | tuple[str, ...]]:
    if not isinstance(value, dict):
        raise TypeError("a table of uWSGI options")
    options: dict[str, str | int | bool | tuple[str, ...]] = {}
    for key, item in value.items():
        if isinstance(item, (str, int, bool)):
            options[key] = item
        elif isinstance(item, list) and all(isinstance(v, (str, int)) for v in item):
            options[key] = tuple(str(v) for v in item)  # an option given several times
        else:
            raise TypeError(f"a table of strings, numbers, booleans or lists of them ({key})")
    return options


# How each annotated type is read from TOML.
_READERS: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "str": _str,
    "bool": _bool,
    "bool | None": _bool,
    "tuple[str, ...]": _strs,
    "tuple[int, int]": _port_range,
    "dict[str, str]": _env,
    "dict[str, str | int | bool | tuple[str, ...]]": _options,
}


def from_dict(cls: type[S], data: dict[str, Any], where: str) -> S:
    if cls is ActSpec:
        data = unfold_processes(data, where)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {}
    for key, raw in data.items():
        if key not in known:
            raise InvalidSetting(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        try:
            values[key] = _READERS[str(known[key].type)](raw)
        except TypeError as exc:
            raise InvalidSetting(f"{where}: {key} must be {exc}") from None
    missing = [
        name
        for name, f in known.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidSetting(
            f"{where}: {' and '.join(missing)} missing: write {' and '.join(missing)} = ..."
        )
    try:
        return cls(**values)
    except (TypeError, InvalidSetting) as exc:
        raise InvalidSetting(f"{where}: {exc}") from None


def to_dict(spec: Any) -> dict[str, Any]:
    """The fields to write; those a spec lists in QUIET_DEFAULTS only when set, so that a
    file stays as short as what it says."""
    quiet = getattr(spec, "QUIET_DEFAULTS", ())
    data = {
        f.name: getattr(spec, f.name)
        for f in dataclasses.fields(spec)
        if f.name not in quiet or getattr(spec, f.name) != _default(f)
    }
    if data.pop("adaptive", False):
        data["processes"] = f"{data.pop('processes')}..{data.pop('max_processes')}"
    return data


def unfold_processes(data: dict[str, Any], where: str) -> dict[str, Any]:
    """act.toml's `processes = "1..4"` as the fields it stands for (adaptive, at rest 1,
    up to 4); an integer stays as it is. `adaptive` itself is never written by hand."""
    if any(key in data for key in ActSpec.NOT_KEYS):
        raise InvalidSetting(f"{where}: unknown setting 'adaptive': write processes = \"1..4\"")
    value = data.get("processes")
    if not isinstance(value, str):
        return data
    low, dots, high = value.partition("..")
    if not (dots and low.strip().isdigit() and high.strip().isdigit()):
        raise InvalidSetting(
            f"{where}: processes must be an integer (2), or a range of workers at rest and "
            f'under load ("1..4"), not {value!r}'
        )
    ceiling = data.get("max_processes", 0)
    if ceiling not in (0, int(high)):
        raise InvalidSetting(
            f'{where}: processes = "{value}" names its own ceiling: '
            f"remove max_processes = {ceiling}"
        )
    return {**data, "processes": int(low), "max_processes": int(high), "adaptive": True}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default
