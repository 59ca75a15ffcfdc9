"""The values a declared file may hold: each check refuses what Backstage cannot use,
with one line naming the key and what to write. The specs call them as they are made."""

from __future__ import annotations

import ipaddress
import keyword
import os
import re
import urllib.parse

from ..errors import InvalidHostname, InvalidSetting
from .domains import check_hostname, check_venue_domain
from .options import KIND_HINTS, allowed_kind, fits

CHANNELS = ("auto", "zmq", "dir")
# Where Acts play: the Production's own Emperor, or one the host runs already
STAGES = ("own", "system")
SYSTEM_VASSALS = "/etc/uwsgi-emperor/vassals"  # Debian's uwsgi-emperor watches it
# An environment variable Python can set and uWSGI will not read as one of its own
# options (it reads any UWSGI_* when it re-execs); BACKSTAGE_* are Backstage's.
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = ("UWSGI_", "BACKSTAGE_")
# Names of workers and cron jobs: each becomes a script file in the Act's folder.
PROCESS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
# uWSGI option names as an ini writes them.
OPTION_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
# What Backstage sets in every vassal config itself: its sockets, stats, FIFO, name,
# virtualenv, and what the Stage relies on to know and control it.
OWNED_OPTIONS = frozenset(
    {
        "master", "socket", "uwsgi-socket", "http-socket", "https-socket", "http", "https",
        "fastcgi-socket", "scgi-socket", "shared-socket", "stats", "stats-server",
        "stats-http", "master-fifo", "procname", "procname-prefix", "procname-prefix-spaced",
        "procname-append", "procname-master", "auto-procname", "virtualenv", "venv", "home",
        "pyhome", "chdir", "module", "wsgi-file", "wsgi", "env", "shared-import", "logto",
        "logto2", "daemonize", "daemonize2", "logfile-chmod", "log-maxsize",
        "log-backupname", "lazy-apps", "need-app", "vacuum", "die-on-term", "processes",
        "workers", "cheaper", "cheaper-algo", "cheaper-initial", "subscribe2",
        "subscribe-to", "emperor", "pidfile", "pidfile2", "uid", "gid", "ini", "include",
        "idle", "die-on-idle",
    }
)  # fmt: skip
# uWSGI expands these in any config value, with no escape: `$(VAR)` from the
# environment, `@(file)` and `@(exec://cmd)` from a file or a command, `%(opt)` from
# another option.
EXPANSIONS = ("$(", "@(", "%(")
LOG_MAX_DEFAULT = 10 * 1024 * 1024
# uWSGI's cron fields in crontab order; -1 is "every", -N "every N".
CRON_FIELDS = ("minute", "hour", "day", "month", "week")
CRON_RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "week": (0, 6)}
# Workers of one Act. uWSGI maps a scoreboard for every one at start: a million asked
# for 2 GB on each try and failed; past a few hundred an Act wants threads or more Acts.
MAX_PROCESSES = 512


def check_port(key: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise InvalidSetting(f"{key} = {value} is not a port: write a number from 1 to 65535")


def check_at_least(key: str, value: int, least: int) -> None:
    if value < least:
        raise InvalidSetting(f"{key} = {value} is too small: write {least} or more")


def check_processes(key: str, value: int, least: int) -> None:
    check_at_least(key, value, least)
    if value > MAX_PROCESSES:
        raise InvalidSetting(
            f"{key} = {value} is too many workers for one Act: write {MAX_PROCESSES} or fewer "
            "(beyond, give it threads or split it into more Acts)"
        )


def check_env_key(key: str) -> str:
    if not ENV_KEY.fullmatch(key):
        raise InvalidSetting(
            f"env key {key!r} is not a variable name: use letters, digits and _, "
            "starting with a letter or _"
        )
    if key.upper().startswith(RESERVED_ENV):
        raise InvalidSetting(f"env key {key!r} is reserved (UWSGI_*, BACKSTAGE_*): rename it")
    return key


def check_option(key: str, value: object) -> None:
    """One entry of an Act's [uwsgi] table: an option name Backstage does not own."""
    if not OPTION_NAME.fullmatch(key):
        raise InvalidSetting(
            f"[uwsgi] {key!r} is not a uWSGI option name: write it as in an ini, e.g. harakiri"
        )
    if key in OWNED_OPTIONS or "socket" in key or key.startswith(("procname", "stats")):
        raise InvalidSetting(
            f"[uwsgi] {key} is set by Backstage for every Act (sockets, stats, FIFO, name, "
            f"virtualenv, logs, workers): remove it from act.toml"
        )
    kind = allowed_kind(key)
    if kind is None:
        raise InvalidSetting(
            f"[uwsgi] {key} is not an option an Act may set (uWSGI reads the config as "
            "root; only options that tune requests, workers and logs are, see the README's "
            "table): remove it from act.toml"
        )
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str) and any(c in item for c in "\n\r\0"):
            raise InvalidSetting(f"[uwsgi] {key} spans lines: write it on one line")
        if not fits(kind, item):
            raise InvalidSetting(f"[uwsgi] {key} = {item!r}: write {KIND_HINTS[kind]}")
        found = next((e for e in EXPANSIONS if e in str(item)), None)
        if found:
            raise InvalidSetting(
                f"[uwsgi] {key} holds {found!r}, which uWSGI would expand as root: remove it"
            )


def cron_fields(name: str, line: str) -> tuple[tuple[str, int], ...]:
    """The uWSGI cron2 fields of a crontab-like line "M H DOM MON DOW" (each `*`, `*/N`
    or a number), without the command."""
    parts = line.split()
    if len(parts) != len(CRON_FIELDS):
        raise InvalidSetting(
            f'cron {name} = {line!r}: write five fields and no command, e.g. "*/5 * * * *"'
        )
    fields = []
    for field_name, part in zip(CRON_FIELDS, parts, strict=True):
        if part == "*":
            continue
        first, last = CRON_RANGES[field_name]
        if part.startswith("*/") and part[2:].isdigit() and 0 < int(part[2:]) <= last:
            fields.append((field_name, -int(part[2:])))
        elif part.isdigit() and first <= int(part) <= last:
            fields.append((field_name, int(part)))
        elif part.isdigit() or part.startswith("*/"):
            raise InvalidSetting(
                f"cron {name}: {field_name} {part!r} is out of range: write a number from "
                f"{first} to {last}, or */N with N from 1 to {last}"
            )
        else:
            raise InvalidSetting(
                f"cron {name}: {field_name} {part!r} is not *, */N or a number "
                "(uWSGI's cron knows no lists or ranges)"
            )
    return tuple(fields)


def split_cron(name: str, entry: str) -> tuple[str, str]:
    """A [cron] entry "M H DOM MON DOW command" as (schedule, command)."""
    parts = entry.split(None, len(CRON_FIELDS))
    if len(parts) <= len(CRON_FIELDS):
        raise InvalidSetting(
            f"cron {name} = {entry!r}: write five schedule fields then the command, "
            f'e.g. "*/5 * * * * python manage.py clearsessions"'
        )
    schedule = " ".join(parts[: len(CRON_FIELDS)])
    cron_fields(name, schedule)
    return schedule, parts[-1]


def check_producer(url: str, key_file: str, address: str) -> None:
    """The Producer's settings go together: its URL, its key file and the address."""
    parsed = urllib.parse.urlsplit(url)
    try:
        parsed.port  # noqa: B018 (it raises for a port that is not one)
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidSetting(
            f"producer = {url!r} is not the URL of PowerDNS's API: write one like "
            '"http://127.0.0.1:8081"'
        )
    if not key_file.startswith("/"):
        raise InvalidSetting(
            f"producer_key = {key_file!r}: write the absolute path of a 0600 file that holds "
            "PowerDNS's api-key"
        )
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise InvalidSetting(
            f"public_address = {address!r} is not an IP address: write the IPv4 or IPv6 "
            "address the booked hosts point at, e.g. 203.0.113.7"
        ) from None


def check_module(value: str) -> str:
    """A dotted Python module name, e.g. mysite.wsgi."""
    parts = value.split(".")
    if not all(p.isidentifier() and p.isascii() and not keyword.iskeyword(p) for p in parts):
        raise InvalidSetting(
            f"module = {value!r} is not a Python module name: write one like mysite or "
            "mysite.settings"
        )
    return value


def check_folded_host(key: str, host: str) -> None:
    try:
        folded = check_hostname(host)
    except InvalidHostname as exc:
        raise InvalidSetting(f"{key}: {exc}") from None
    if folded != host:
        raise InvalidSetting(f"{key}: write {host!r} as {folded!r}")


def check_domain(key: str, domain: str) -> None:
    """A Venue domain: a hostname, folded, and not a public suffix."""
    check_folded_host(key, domain)
    try:
        check_venue_domain(domain)
    except InvalidHostname as exc:
        raise InvalidSetting(f"{key}: {exc}") from None


def check_stage(stage: str, system_vassals: str, system_stats: str) -> None:
    """`stage` and the system Emperor's surfaces: absolute paths, for the Production
    Manager runs in no particular folder."""
    if stage not in STAGES:
        raise InvalidSetting(f"stage = {stage!r}: write one of {', '.join(STAGES)}")
    if not os.path.isabs(system_vassals) or "\n" in system_vassals:
        raise InvalidSetting(
            f"system_vassals = {system_vassals!r}: write the absolute path of the directory "
            f"the system Emperor watches, e.g. {SYSTEM_VASSALS}"
        )
    if system_stats and not (os.path.isabs(system_stats) or ":" in system_stats):
        raise InvalidSetting(
            f"system_stats = {system_stats!r}: write the system Emperor's --emperor-stats "
            "address (an absolute socket path, or HOST:PORT), or leave it out"
        )


def check_shared(path: str) -> None:
    """A `shared` entry: a path inside the project, relative to it."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\0" in path or ".." in parts or path in (".", "./"):
        raise InvalidSetting(
            f"shared: {path!r} is not a path inside the project: write one relative to it, "
            "e.g. media or db.sqlite3"
        )
