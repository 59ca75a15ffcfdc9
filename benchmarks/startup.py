"""How long an Act takes to serve its first page, against plain uWSGI and a floor.

Three ways to the same Django project, side by side, round after round:

  backstage  act.start() until it returns: every worker accepts and GET / answers
             200 (Manager poke, zmq push, the Emperor spawns the vassal)
  plain      the exact vassal config Backstage renders, run as `uwsgi --ini FILE`
             by the same binary, from Popen until the same holds (every worker
             accepts, read from its stats, and GET / answers 200); its first 200
             is shown too, which comes before that by up to a worker's load
  floor      the Venue's Python importing Django and building the WSGI app once,
             from Popen until it exits
  wake       a request at a sleeping Act's port (idle set, no process: the Emperor
             holds the port) until its 200, once the Act is asleep again

The first act.start() also starts the Production Manager and the Emperor; it is
the warm-up, reported apart as "cold". Between rounds each server is stopped and
its port seen closed.

    python benchmarks/startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from _common import (
    arguments,
    http_status,
    median,
    poll,
    print_table,
    production_in,
    scratch,
    seconds,
    stop_process,
    timed,
    wait_for_ok,
    wait_port_closed,
)

if TYPE_CHECKING:
    from backstage import Act

TARGET_RATIO = 1.10
WAKE_RATIO = 1.2  # a cold sleeping Act's wake against the floor
SERVE_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

FLOOR_CODE = """\
import os, sys
import django
os.environ["DJANGO_SETTINGS_MODULE"] = sys.argv[1]
from django.core.wsgi import get_wsgi_application
get_wsgi_application()
"""


def backstage_start(act: Act) -> float:
    """Seconds from act.start() until every worker accepts and GET / answers 200: when
    act.start() returns (a stop right after must not cut off a worker still loading)."""
    port = act.port
    started = time.perf_counter()
    act.start(SERVE_TIMEOUT)
    served = wait_for_ok(port, SERVE_TIMEOUT) - started
    wait_all_workers(act)
    return served


def wait_all_workers(act: Act) -> None:
    """Wait, untimed, until every worker has loaded the app and accepts.

    The first 200 comes from the first lazy worker; stopping before the others are
    up interrupts their import (a KeyboardInterrupt, then need-app's GAME OVER) and
    makes stop times incomparable. The plain instance runs the same ini, so the
    Act's stats socket shows it too.
    """

    def all_accepting() -> bool:
        sess = act.sess
        return (
            sess is not None
            and len(sess.workers) == act.spec.processes
            and all(worker.accepting for worker in sess.workers)
        )

    if not poll(all_accepting, SERVE_TIMEOUT):
        raise TimeoutError(f"not every worker of {act.key} accepts after {SERVE_TIMEOUT:.0f} s")


def backstage_stop(act: Act) -> float:
    port = act.port

    def stop() -> None:
        act.stop(STOP_TIMEOUT)
        wait_port_closed(port, STOP_TIMEOUT)

    return timed(stop)[0]


def plain_uwsgi(act: Act, binary: str, ini: str, env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds from Popen to the first 200, to every worker accepting (what act.start()
    waits for), and from SIGINT to the port closed."""
    port = act.port
    started = time.perf_counter()
    child = subprocess.Popen(
        [binary, "--ini", ini],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # the ini's logto gets uwsgi's own log
        start_new_session=True,
        env=env,
        # Started from a shell script's `&`, we inherit SIGINT ignored; uwsgi workers
        # would keep ignoring the master's SIGINT and it would wait out its 60 s mercy.
        preexec_fn=_default_sigint,
    )
    try:
        first = wait_for_ok(port, SERVE_TIMEOUT) - started
        wait_all_workers(act)
        served = time.perf_counter() - started
    finally:

        def stop() -> None:
            stop_process(child, STOP_TIMEOUT)
            wait_port_closed(port, STOP_TIMEOUT)

        stopped = timed(stop)[0]
    return first, served, stopped


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def floor(python: str, project: str, settings: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [python, "-c", FLOOR_CODE, settings],
        cwd=project,
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=SERVE_TIMEOUT,
    )
    return time.perf_counter() - started


SLEEP_AFTER = 8  # the sleeper's idle: seconds after its answer until it sleeps again


def wake(act: Act) -> float:
    """Seconds from a request at a sleeping Act's port to its 200, once it slept again."""
    if not poll(act.manager.sleeping, SERVE_TIMEOUT, 0.05):
        raise TimeoutError(f"{act.key} did not fall asleep within {SERVE_TIMEOUT:.0f} s")
    started = time.perf_counter()
    status = http_status(act.get_uwsgi_port(), timeout=SERVE_TIMEOUT)
    if status != 200:
        raise RuntimeError(f"{act.key} woke with {status}, not 200")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    args = arguments(parser, argv, rounds=1)

    from backstage.shortcuts import new_act, new_venue

    with scratch("bsb-") as folder, production_in(folder) as production:
        venue = new_venue("BenchVenue", folder, production)
        act = new_act(venue, "BenchAct", start=False)
        binary = production.stage.binary.path
        env = dict(os.environ, BACKSTAGE_HOME=production.home)
        settings = f"{act.spec.package}.settings"
        workers = act.spec.processes

        sleeper = new_act(venue, "BenchSleeper", start=False)
        sleeper.set(f"idle={SLEEP_AFTER}")

        cold = backstage_start(act)  # the warm-up: Manager and Emperor start here too
        cold_stop = backstage_stop(act)
        # the config the Act plays, rendered after its first start: it serves the version
        # that start made (`current`), not the folder `act new` wrote
        ini = os.path.join(folder, "plain.ini")
        with open(ini, "w") as out:
            out.write(production.crew.stageset.vassal(production.crew.layout, act.ref, act.spec))
        sleeper.start(SERVE_TIMEOUT)  # on demand: it plays at its first request
        served: dict[str, list[float]] = {
            "backstage": [],
            "plain": [],
            "plain first": [],
            "floor": [],
            "wake": [],
        }
        stopped: dict[str, list[float]] = {"backstage": [], "plain": []}
        for _ in range(args.rounds):
            served["backstage"].append(backstage_start(act))
            stopped["backstage"].append(backstage_stop(act))
            first, up, down = plain_uwsgi(act, binary, ini, env)
            served["plain first"].append(first)
            served["plain"].append(up)
            stopped["plain"].append(down)
            served["floor"].append(floor(venue.python, act.path, settings))
            served["wake"].append(wake(sleeper))

    what = {
        "backstage": "backstage: act.start(), every worker up",
        "plain": "plain: uwsgi --ini, every worker up",
        "plain first": "plain: uwsgi --ini -> first 200",
        "floor": "floor: venue python builds WSGI app",
        "wake": "wake: a sleeping Act's port -> 200",
    }
    print(
        f"Act startup, {workers} lazy workers, {args.rounds} rounds "
        f"after 1 warm-up start/stop (the cold one)"
    )
    rows = [["cold: first act.start() (+Manager, Emperor)", seconds(cold), "-", seconds(cold_stop)]]
    for kind, label in what.items():
        stops = stopped.get(kind)
        rows.append(
            [
                label,
                seconds(median(served[kind])),
                seconds(min(served[kind])),
                seconds(median(stops)) if stops else "-",
            ]
        )
    print_table(["", "median", "min", "stop (median)"], rows)
    ratio = median(served["backstage"]) / median(served["plain"])
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    to_first = median(served["backstage"]) / median(served["plain first"])
    woke = median(served["wake"]) / median(served["floor"])
    print(
        f"backstage/plain startup ratio {ratio:.2f}, every worker up in both (medians; target "
        f"<= {TARGET_RATIO}: {verdict}); against the plain's first 200 {to_first:.2f}, "
        f"floor {median(served['floor']):.2f} s, cold {cold:.2f} s, "
        f"wake/floor {woke:.2f} (target <= {WAKE_RATIO}), load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
