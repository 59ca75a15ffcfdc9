"""An Act's environment, loaded into its vassal's master before anything is forked.

uWSGI loads this file by path (`shared-import` in the vassal config) in the master, so
the workers, attached daemons and cron jobs forked from it all inherit the Act's
`[env]`. The values come from a JSON file Backstage writes 0600 in `run/`, never through
the vassal config: uWSGI's config parser expands `$(..)`, `@(..)` and `%(..)` in any
value, with no escape, so a value there could read a file or run a command.

Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import json
import os
import sys

FILE = "BACKSTAGE_ENV_FILE"  # where the JSON object of the Act's env is
KEYS = "BACKSTAGE_ENV_KEYS"  # what this loader set last, so a reload can drop removed keys


def load() -> None:
    with open(os.environ[FILE], encoding="utf-8", errors="surrogateescape") as source:
        env = json.load(source)
    # A graceful reload re-execs the master with the environment it has: a key removed
    # from the file since must go, not linger from the last load.
    for key in os.environ.get(KEYS, "").split():
        os.environ.pop(key, None)
    for key, value in env.items():
        os.environ[key] = value
    os.environ[KEYS] = " ".join(sorted(env))


try:
    load()
except Exception as exc:  # uWSGI only prints a failed shared-import: stop the instance
    print(f"backstage: cannot load the Act's environment: {exc!r}", file=sys.stderr, flush=True)
    os._exit(1)
