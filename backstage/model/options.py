"""The uWSGI options an Act's `[uwsgi]` table may set: a table of what is allowed.

uWSGI reads a vassal's config as root and drops to the Venue's user only after it; many
of its options run a command (`hook-*`, `exec-*`, `attach-daemon`, `cron`, `route`
actions), load code (`plugin`, `import`), open or chmod a file, or change a limit before
that drop, or stay root (`master-as-root`). Whoever can write an act.toml (a Venue's
user, its own Act's code) must gain nothing by it, so an option is allowed only when it
is here: each one tunes requests, workers or logging inside the dropped process, and
takes a number, a boolean or a plain value. A list of what is not allowed would miss the
next option uWSGI adds.
"""

from __future__ import annotations

# option -> the kind of value it takes: "int" (a number of seconds, bytes, requests...),
# "bool", or "text" (one plain line: a header, a pattern)
ALLOWED_OPTIONS: dict[str, str] = {
    # requests that run too long, workers that live too long
    "harakiri": "int",
    "harakiri-verbose": "bool",
    "harakiri-graceful-timeout": "int",
    "max-requests": "int",
    "max-requests-delta": "int",
    "max-worker-lifetime": "int",
    "max-worker-lifetime-delta": "int",
    "min-worker-lifetime": "int",
    "reload-mercy": "int",
    "worker-reload-mercy": "int",
    "reload-on-as": "int",
    # request bodies and buffers
    "buffer-size": "int",
    "post-buffering": "int",
    "post-buffering-bufsize": "int",
    "limit-post": "int",
    "body-read-warning": "int",
    "socket-timeout": "int",
    "listen": "int",
    "so-keepalive": "bool",
    "tcp-nodelay": "bool",
    "wsgi-disable-file-wrapper": "bool",
    "ignore-sigpipe": "bool",
    "ignore-write-errors": "bool",
    "disable-write-exception": "bool",
    # threads in each worker
    "threads": "int",
    "enable-threads": "bool",
    "threads-stacksize": "int",
    "thunder-lock": "bool",
    "single-interpreter": "bool",
    "offload-threads": "int",
    # what goes into the Act's log
    "disable-logging": "bool",
    "log-4xx": "bool",
    "log-5xx": "bool",
    "log-slow": "int",
    "log-big": "int",
    "log-zero": "bool",
    "log-sendfile": "bool",
    "log-ioerror": "bool",
    "log-x-forwarded-for": "bool",
    "log-micros": "bool",
    # response headers
    "add-header": "text",
    "del-header": "text",
    # the Python plugin: a full reload when an imported module's file changes (seconds)
    "py-autoreload": "int",
}

KIND_HINTS = {"int": "a number", "bool": "true or false", "text": "one line of text"}


def allowed_kind(option: str) -> str | None:
    """The kind of value `option` takes, or None: an option an Act may not set."""
    return ALLOWED_OPTIONS.get(option)


def fits(kind: str, value: object) -> bool:
    """`value` (from TOML) is of `kind`; "1"/"true" as text are accepted for numbers and
    booleans, since `act set uwsgi.X=30` may arrive as text."""
    text = str(value).strip().lower()
    if kind == "int":
        return (isinstance(value, int) and not isinstance(value, bool)) or text.isdigit()
    if kind == "bool":
        return isinstance(value, bool) or text in ("true", "false", "1", "0")
    return True
