"""How long `Production.down()` and `backstage down` take, and where the time goes.

A Production with 1 and with 5 Acts (one worker each, every one serving), brought up
and down round after round. While `down()` runs, a thread reads /proc every 5 ms and
notes when the last process of each part is gone, counted from the call:

  manager    the Production Manager (`backstage up --foreground`)
  holder     the socket holder (`python -m emperor.holder`)
  acts       every Act's vassal: its master and its workers
  router     the router's vassal (master, worker, http process)
  keeper     the keeper's vassal and the keeper it runs
  emperor    the Emperor itself
  down()     until the call returns

`backstage down` is timed the same way, from the command's start to its exit (which
includes the 0.3 s any `backstage` process takes to start).

    python benchmarks/down.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from _common import (
    arguments,
    http_status,
    median,
    poll,
    print_table,
    production_in,
    scratch,
)

if TYPE_CHECKING:
    from backstage import Production

SIZES = (1, 5)
PARTS = ("manager", "holder", "acts", "router", "keeper", "emperor")
SERVE_TIMEOUT = 60.0


def part_of(cmdline: bytes, prefix: str) -> str | None:
    """Which part of the Production a process is, by its command line."""
    if cmdline.startswith(prefix.encode() + b" "):
        name = cmdline[len(prefix) + 1 :].split(b" ", 1)[0]
        return {b"keeper": "keeper", b"router": "router"}.get(name, "acts")
    args = cmdline.split(b"\0")
    if b"emperor.holder" in args:
        return "holder"
    if b"backstage" in args and b"up" in args:
        return "manager"
    if b"backstage" in args and b"keep" in args:
        return "keeper"
    if args and args[0].endswith(b"uwsgi") and b"--emperor" in args:
        return "emperor"
    return None


def processes(home: str, prefix: str) -> dict[int, str]:
    """Every live process of the Production at `home`, with its part."""
    from tests.helpers import processes_of

    found = {}
    for pid in processes_of(home):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as raw:
                part = part_of(raw.read(), prefix)
        except OSError:
            continue
        if part is not None:
            found[pid] = part
    return found


def gone_at(pids: dict[int, str], action: Callable[[], object]) -> dict[str, float]:
    """Run `action`; the seconds from its start until the last process of each part was
    gone, and "down()" until it returned."""
    from emperor.process import pid_alive

    left = dict(pids)
    gone: dict[int, float] = {}
    began = time.perf_counter()
    done = threading.Event()

    def watch() -> None:
        while left and not done.wait(0.005):
            for pid in [pid for pid in left if not pid_alive(pid)]:
                gone[pid] = time.perf_counter() - began
                del left[pid]

    watcher = threading.Thread(target=watch)
    watcher.start()
    action()
    returned = time.perf_counter() - began
    poll(lambda: not left, 10.0)
    done.set()
    watcher.join()
    times = {"down()": returned}
    for part in PARTS:
        mine = [gone.get(pid, float("nan")) for pid, p in pids.items() if p == part]
        if mine:
            times[part] = max(mine)
    return times


def serving(production: Production, ports: Sequence[int]) -> bool:
    rows = production.snapshot().acts
    return all(row.state == "running" for row in rows) and all(
        http_status(port) == 200 for port in ports
    )


def command_down(home: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "backstage", "--home", home, "down"], check=True, capture_output=True
    )


def measure(size: int, rounds: int) -> tuple[dict[str, list[float]], list[float]]:
    from backstage.files import declared
    from backstage.shortcuts import new_venue

    times: dict[str, list[float]] = {}
    cli: list[float] = []
    with scratch("bsw-") as folder, production_in(folder) as production:
        venue = new_venue("Bench", folder, production)
        model = venue.new_act("A0", processes=1, start=False)
        model.manager.declare(enabled=True)
        first = model.port
        for i in range(1, size):
            path = os.path.join(venue.acts_dir, f"A{i}")
            shutil.copytree(model.path, path, symlinks=True)
            spec = replace(model.spec, name=f"A{i}", port=first + i, module="A0")
            declared.dump(os.path.join(path, "act.toml"), spec)
        ports = [act.port for act in venue.acts]
        home, prefix = production.home, production.prefix
        for round_ in range(rounds * 2):
            production.up()
            production.manager.poke()
            if not poll(lambda: serving(production, ports), SERVE_TIMEOUT):
                raise TimeoutError(f"the {size} Acts did not serve within {SERVE_TIMEOUT:.0f} s")
            pids = processes(home, prefix)
            if round_ % 2 == 0:
                for part, seconds in gone_at(pids, production.down).items():
                    times.setdefault(part, []).append(seconds)
            else:  # the command, in a process of its own
                cli.append(gone_at(pids, lambda: command_down(home))["down()"])
    return times, cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="downs of each kind (default 5)")
    args = arguments(parser, argv, rounds=1)
    results = {size: measure(size, args.rounds) for size in SIZES}
    headers = ["last gone (median s)"] + [f"{size} Act{'s' * (size > 1)}" for size in SIZES]
    rows = [
        [part] + [f"{median(results[size][0][part]):.2f}" for size in SIZES]
        for part in (*PARTS, "down()")
    ]
    rows.append(["backstage down"] + [f"{median(results[size][1]):.2f}" for size in SIZES])
    print_table(headers, rows)
    worst = max(max(results[size][0]["down()"]) for size in SIZES)
    print(f"down() took {median(results[1][0]['down()']):.2f} s with 1 Act (worst {worst:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
