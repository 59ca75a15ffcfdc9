"""How long an Act takes to serve its first page, against plain uWSGI and a floor.

Three ways to the same Django project, side by side, round after round:

  backstage  act.start() until it returns (every worker accepts: Manager poke, zmq
             push, the Emperor spawns the vassal) and GET / has answered 200
  plain      the exact vassal config Backstage renders, run as `uwsgi --ini FILE`
             by the same binary, from Popen until the same holds: every worker
             accepts, read from its stats as act.start() reads them (at each write
             to its log, every 20 ms at most), and GET / has answered 200; its
             first 200 is shown too, which comes before that by up to a worker's load

Both sides ask GET / from their start on, in a thread, as a client would: each first
200 is the one their first worker gives, while the other still loads.
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
from concurrent.futures import Future, ThreadPoolExecutor
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

from backstage.control.managers.acts import LogPace
from backstage.files.inotify import Written

if TYPE_CHECKING:
    from backstage import Act
    from backstage.model.sess import Sess

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


def backstage_start(act: Act, asking: ThreadPoolExecutor) -> float:
    """Seconds from act.start() until it returned (every worker accepts) and GET /
    answered 200 (a stop right after must not cut off a worker still loading)."""
    started = time.perf_counter()
    first = first_ok(asking, act.port)
    act.start(SERVE_TIMEOUT)
    up = time.perf_counter()
    served = max(up, first.result()) - started
    if not all_accepting(act, act.sess):
        raise RuntimeError(f"act.start() returned before every worker of {act.key} accepts")
    return served


def first_ok(asking: ThreadPoolExecutor, port: int) -> Future[float]:
    """GET / at `port` from now on, in a thread, until it answers 200: when it did."""
    return asking.submit(wait_for_ok, port, SERVE_TIMEOUT)


def all_accepting(act: Act, sess: Sess | None) -> bool:
    """Every worker of `sess` accepts, and it has as many as `act` declares."""
    return sess is not None and sess.ready and len(sess.workers) == act.spec.processes


def wait_all_workers(act: Act) -> None:
    """Wait until every worker has loaded the app and accepts, looking at the stats as
    act.start() does (`LogPace`): when the Act's log is written (a worker logs its app
    loaded just before it accepts), 20 ms at most.

    The plain instance runs the same ini: the Act's log and stats socket are its own.
    """
    deadline = time.monotonic() + SERVE_TIMEOUT
    with Written(act.log_path) as log_written:
        pace = LogPace(log_written)
        while not all_accepting(act, sess := act.sess):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"not every worker of {act.key} accepts after {SERVE_TIMEOUT:.0f} s"
                )
            pace.wait(loading=sess is not None)


def backstage_stop(act: Act) -> float:
    port = act.port

    def stop() -> None:
        act.stop(STOP_TIMEOUT)
        wait_port_closed(port, STOP_TIMEOUT)

    return timed(stop)[0]


def plain_uwsgi(
    act: Act, binary: str, ini: str, env: dict[str, str], asking: ThreadPoolExecutor
) -> tuple[float, float, float]:
    """Seconds from Popen to the first 200, to every worker accepting and that 200 (what
    backstage_start waits for), and from SIGINT to the port closed."""
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
        first = first_ok(asking, port)
        wait_all_workers(act)
        up = time.perf_counter()
        ok = first.result()
        served = max(up, ok) - started
    finally:

        def stop() -> None:
            stop_process(child, STOP_TIMEOUT)
            wait_port_closed(port, STOP_TIMEOUT)

        stopped = timed(stop)[0]
    return ok - started, served, stopped


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

    with (
        scratch("bsb-") as folder,
        production_in(folder) as production,
        ThreadPoolExecutor(1, "asking") as asking,  # GET / in the background
    ):
        venue = new_venue("BenchVenue", folder, production)
        act = new_act(venue, "BenchAct", start=False)
        binary = production.stage.binary.path
        env = dict(os.environ, BACKSTAGE_HOME=production.home)
        settings = f"{act.spec.package}.settings"
        workers = act.spec.processes

        sleeper = new_act(venue, "BenchSleeper", start=False)
        sleeper.set(f"idle={SLEEP_AFTER}")

        cold = backstage_start(act, asking)  # the warm-up: Manager and Emperor start here too
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
            served["backstage"].append(backstage_start(act, asking))
            stopped["backstage"].append(backstage_stop(act))
            first, up, down = plain_uwsgi(act, binary, ini, env, asking)
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
    # each start against the plain one right after it, at about the same load: the
    # machine's load swings within a run, and moves the two medians apart
    rounds = [b / p for b, p in zip(served["backstage"], served["plain"], strict=True)]
    paired = median(rounds)
    print("backstage/plain, round by round:", " ".join(f"{r:.2f}" for r in rounds))
    print(
        f"backstage/plain startup ratio {ratio:.2f}, every worker up in both (medians; target "
        f"<= {TARGET_RATIO}: {verdict}); round by round {paired:.2f} (median); "
        f"against the plain's first 200 {to_first:.2f}, "
        f"floor {median(served['floor']):.2f} s, cold {cold:.2f} s, "
        f"wake/floor {woke:.2f} (target <= {WAKE_RATIO}), load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
