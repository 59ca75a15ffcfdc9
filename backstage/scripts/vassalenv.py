"""An Act's environment, loaded into its vassal's master before anything is forked.

uWSGI loads this file by path (`shared-import` in the vassal config) in the master, so
the workers, attached daemons and cron jobs forked from it all inherit the Act's
`[env]`. The values come from a JSON file Backstage writes 0600 in `run/`, never through
the vassal config: uWSGI's config parser expands `$(..)`, `@(..)` and `%(..)` in any
value, with no escape, so a value there could read a file or run a command.

Each worker also imports it (`import`, just before it loads the app), which reads the env
again and pins the worker to its version: the Python path and working folder through
`current` become the version's own path as the worker starts. A worker that loaded one
version and has not yet read a file beside its modules (a template not loaded yet) then
reads that version's, not the next one's that `current` already points at while a chain
reload comes to it. (Here rather than in a module of its own: a new `import` line would
change, and so restart, every Act's vassal config.)

Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import os
import sys

FILE = "BACKSTAGE_ENV_FILE"  # where the JSON object of the Act's env is
KEYS = "BACKSTAGE_ENV_KEYS"  # what this loader set last, so a reload can drop removed keys


SPACE = " \t\n\r"


def strings(text: str) -> dict[str, str] | None:
    """The JSON object of strings Backstage writes (`stageset.env_json`), read with the
    C string scanner alone; None for any other JSON. The `json` package imports `re`,
    `enum` and more: 0.7 MiB in a master that imports nothing else, a seventh of it."""
    from _json import scanstring

    def skip(at: int) -> int:
        while at < len(text) and text[at] in SPACE:
            at += 1
        return at

    def string(at: int) -> tuple[str, int]:
        if text[at : at + 1] != '"':
            raise ValueError(at)
        found: tuple[str, int] = scanstring(text, at + 1, True)
        return found

    env: dict[str, str] = {}
    try:
        at = skip(0)
        if text[at : at + 1] != "{":
            return None
        at = skip(at + 1)
        closing = text[at : at + 1] == "}"
        while not closing:
            key, at = string(at)
            at = skip(at)
            if text[at : at + 1] != ":":
                return None
            env[key], at = string(skip(at + 1))
            at = skip(at)
            closing = text[at : at + 1] == "}"
            if not closing and text[at : at + 1] != ",":
                return None
            at = skip(at + 1) if not closing else at
    except ValueError:
        return None
    return env if skip(at + 1) == len(text) else None


def load() -> None:
    with open(os.environ[FILE], encoding="utf-8", errors="surrogateescape") as source:
        text = source.read()
    env = strings(text)
    if env is None:  # not what Backstage writes: the full parser says why
        import json

        env = json.loads(text)
    # A graceful reload re-execs the master with the environment it has: a key removed
    # from the file since must go, not linger from the last load.
    for key in os.environ.get(KEYS, "").split():
        os.environ.pop(key, None)
    for key, value in env.items():
        os.environ[key] = value
    os.environ[KEYS] = " ".join(sorted(env))


def pin_version() -> None:
    try:
        import uwsgi  # type: ignore[import-not-found]
    except ImportError:
        return
    if not uwsgi.worker_id():
        return  # the master: each worker resolves `current` as it starts
    served = uwsgi.opt.get("chdir") or b""
    if isinstance(served, list):
        served = served[-1]
    current = os.fsdecode(served).rstrip(os.sep)
    if not current or not os.path.islink(current):
        return
    version = os.path.realpath(current)
    sys.path[:] = [
        version + entry[len(current) :]
        if entry == current or entry.startswith(current + os.sep)
        else entry
        for entry in sys.path
    ]
    os.chdir(version)


try:
    load()
except Exception as exc:  # uWSGI only prints a failed shared-import: stop the instance
    print(f"backstage: cannot load the Act's environment: {exc!r}", file=sys.stderr, flush=True)
    os._exit(1)
try:
    pin_version()
except OSError as exc:  # it serves through `current`, as it would without
    print(f"backstage: the worker is not pinned to its version: {exc!r}", file=sys.stderr)
