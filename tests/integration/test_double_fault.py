"""The Production Manager and its keeper killed -9 together: the keeper's vassal starts
the keeper again, which starts the Manager, which heals what dies after."""

from __future__ import annotations

import os
import signal
import time

from backstage.control.processes import keeper
from emperor.process import pid_alive, read_pidfile
from tests.chaos_helpers import Load, small_act, wait_served
from tests.helpers import poll


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as found:
        pairs = (item.partition(b"=") for item in found.read().split(b"\0") if item)
        return {key.decode(): value.decode(errors="replace") for key, _, value in pairs}


def test_the_keeper_and_the_manager_killed_heal(production, venue):
    act = small_act(venue, "Unkept", processes=1)
    layout = production.layout
    # the keeper's vassal writes its pidfile once it runs, a moment after the Act serves
    kept_by = poll(lambda: read_pidfile(layout.keeper_pidfile), 15)
    manager = production.manager.pid()
    assert kept_by is not None and manager is not None
    assert pid_alive(kept_by) and production.snapshot().emperor.vassals == 3  # Act, router, keeper
    with Load(act.port) as load:
        wait_served(load, 0.0)
        killed = time.monotonic()
        os.kill(kept_by, signal.SIGKILL)
        os.kill(manager, signal.SIGKILL)
        poll(lambda: production.manager.pid() not in (None, manager), 15, 0.02)
        back = time.monotonic() - killed
        poll(lambda: keeper.running(layout), 5)
    print(
        f"keeper and Manager kill -9: Manager back after {back:.2f} s; "
        f"{load.failed} of {load.total} requests failed"
    )
    assert load.failed == 0  # the Act never stopped
    new_manager = production.manager.pid()
    assert new_manager is not None
    # the new Manager starts no Emperor of its own: nothing of uWSGI's vassal handshake
    # reached it through the keeper
    assert not any(key.startswith("UWSGI_EMPEROR") for key in _environ(new_manager))
    status = production.snapshot()
    assert status.manager.running and status.manager.pid == new_manager
    # and it heals: a master killed now is brought back
    master = act.sess.pid
    os.kill(master, signal.SIGKILL)
    poll(lambda: (s := act.sess) and s.pid != master and s.ready, 30)
    assert act.state == "running"
    # killed again, both come back again (the keeper's master throttles a quick respawn)
    kept_by, manager = read_pidfile(layout.keeper_pidfile), new_manager
    assert kept_by is not None
    os.kill(kept_by, signal.SIGKILL)
    os.kill(manager, signal.SIGKILL)
    poll(lambda: production.manager.pid() not in (None, manager), 15, 0.02)
