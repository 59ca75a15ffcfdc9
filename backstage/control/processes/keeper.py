"""The keeper: brings the Production Manager back when it dies.

`backstage up` starts the Manager, and the Manager pushes the keeper's vassal
(`<prefix>.keeper.ini`) to its Emperor: a uWSGI master with no workers whose one
attached daemon is `backstage keep`. The keeper watches the Manager's lock: when the
lock is free but the Manager's pidfile is still there, the Manager died without
stopping (killed, out of memory), and the keeper starts a new one at once, which
adopts the running Emperor. A Manager that stops on purpose (`backstage down`)
removes its pidfile before it lets go of its lock, and the keeper then ends too.

Should both die (kill -9 of the Manager and the keeper), the vassal's master starts
the keeper again (within about 1.5 s), which starts the Manager: no process has to
outlive the other for the Production to heal, only the Emperor must live, and
the Emperor's death is what the Manager heals. Should the Emperor and the Manager
both die, nothing is left to start anything: that is the service manager's case
(systemd: `Restart=always`, see the README).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from ...files.fs import lock_held, unlink_if_present
from ...model.layout import Layout

log = logging.getLogger(__name__)

WATCH_EVERY = 0.1  # seconds between looks at the Manager's lock
# what uWSGI sets for a vassal and its processes (seen in a keeper's environment)
HANDED_DOWN = ("UWSGI_EMPEROR_", "UWSGI_VASSAL", "UWSGI_ORIGINAL_PROC_NAME", "UWSGI_RELOADS")


def spawn(layout: Layout, *command: str) -> subprocess.Popen[bytes]:
    """Start `python -m backstage --home HOME COMMAND...` apart from this process, its
    output to the Manager's log."""
    home = layout.home
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    with os.fdopen(os.open(layout.manager_log, flags, 0o600), "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "backstage", "--home", home, *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(_outside_uwsgi(os.environ), BACKSTAGE_HOME=home),
        )


def _outside_uwsgi(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without what uWSGI hands its vassals (the keeper runs in one): a
    Manager the keeper starts starts Emperors, which with UWSGI_EMPEROR_FD would take
    themselves for vassals of the keeper's Emperor. Any other UWSGI_ option stays, as
    it was when the first Manager started."""
    return {key: value for key, value in environ.items() if not key.startswith(HANDED_DOWN)}


def spawn_manager(layout: Layout) -> subprocess.Popen[bytes]:
    return spawn(layout, "up", "--foreground", "--kept")


def running(layout: Layout) -> bool:
    return lock_held(layout.keeper_lock)


def keep(layout: Layout) -> None:
    """Run as the keeper until the Manager stops on purpose, or SIGTERM. Returns at once
    when another keeper holds the lock."""
    lock = os.open(layout.keeper_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # only note it
    with open(layout.keeper_pidfile, "w") as pidfile:
        pidfile.write(f"{os.getpid()}\n")
    child: subprocess.Popen[bytes] | None = None
    try:
        while not stopping:
            if child is not None and child.poll() is not None:
                child = None  # reaped
            if not lock_held(layout.manager_lock):
                if not os.path.exists(layout.manager_pidfile):
                    break  # stopped on purpose: so do we
                log.warning("the Production Manager died; starting it again")
                child = spawn_manager(layout)
                wait_until = time.monotonic() + 10
                while not lock_held(layout.manager_lock) and time.monotonic() < wait_until:
                    if child.poll() is not None:
                        time.sleep(1.0)  # it could not start: try again, not in a tight loop
                        break
                    time.sleep(WATCH_EVERY)
            time.sleep(WATCH_EVERY)
    finally:
        unlink_if_present(layout.keeper_pidfile)
        os.close(lock)
