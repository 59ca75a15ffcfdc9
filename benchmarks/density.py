"""Density: many declared Acts that sleep when idle, a few awake.

Declares `--acts` Acts (Django scaffolds, one worker each) with `idle` set, lets them
all fall asleep, then wakes `--awake` of them one after another and measures:

wake        seconds from a request at a sleeping Act's port to its 200 (failed: any other)
PSS         the whole Production's proportional memory (Manager, Emperor, router, the
            awake Acts), from /proc/PID/smaps_rollup; RSS beside it, which counts
            shared pages once per process
sleeping    processes of a sleeping Act (by its procname): 0 is the goal
snapshot    seconds for production.snapshot() of all the Acts (median of --rounds)
top         CPU of a `top` feed (one snapshot a second, drawing aside) as % of a core

  python benchmarks/density.py [--acts 1000] [--awake 30] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace

from _common import (
    arguments,
    free_ports,
    median,
    poll,
    print_table,
    production_in,
    scratch,
)

IDLE = 900  # long enough that the woken ones stay awake while they are measured


def pss_and_rss(pids: Sequence[int]) -> tuple[int, int]:
    """Bytes of PSS and RSS summed over `pids` (those gone meanwhile count 0)."""
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return pss, rss


def production_pids(production) -> list[int]:  # type: ignore[no-untyped-def]
    from emperor.process import pids_named

    pids = set(pids_named(production.prefix + " "))  # vassals and the router, by procname
    pids |= {pid for pid in (production.manager.pid(), production.stage.pid()) if pid}
    return sorted(pids)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=int, default=1000)
    parser.add_argument("--awake", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = arguments(parser, argv, acts=5, awake=2, rounds=1, seconds=2.0)

    from backstage.files import declared
    from backstage.shortcuts import new_venue
    from emperor.process import pids_named

    with scratch("bsd-") as folder, production_in(folder) as production:
        first = free_ports(args.acts + 100)
        production.declare(
            ports=(first, first + args.acts + 99), router=f"127.0.0.1:{first + args.acts + 99}"
        )
        venue = new_venue("Bench", folder, production)
        started = time.monotonic()
        # One scaffold (django-admin takes about a second), copied for the others: each
        # its own folder, port and act.toml, the same project package inside
        model = venue.new_act("A0000", processes=1, start=False)
        model.manager.declare(enabled=True, idle=IDLE)
        for i in range(1, args.acts):
            path = os.path.join(venue.acts_dir, f"A{i:04d}")
            shutil.copytree(model.path, path, symlinks=True)
            spec = replace(model.spec, name=f"A{i:04d}", port=first + i, module="A0000")
            declared.dump(os.path.join(path, "act.toml"), spec)
        acts = sorted(venue.acts, key=lambda act: act.name)
        assert len(acts) == args.acts and len({act.port for act in acts}) == args.acts
        declared_in = time.monotonic() - started
        started = time.monotonic()
        production.up()
        production.manager.poke()

        def all_asleep() -> bool:
            return all(row.state == "sleeping" for row in production.snapshot().acts)

        if not poll(all_asleep, timeout=600, interval=1.0):
            states: dict[str, int] = {}
            for row in production.snapshot().acts:
                states[row.state] = states.get(row.state, 0) + 1
            print(f"not all asleep after 600 s: {states}")
            return 1
        asleep_in = time.monotonic() - started
        idle_pss, idle_rss = pss_and_rss(production_pids(production))

        from _common import http_status

        wakes, failed = [], 0
        for act in acts[: args.awake]:
            began = time.monotonic()
            status = http_status(act.port, timeout=60)
            wakes.append(time.monotonic() - began)
            failed += status != 200
        awake_pss, awake_rss = pss_and_rss(production_pids(production))
        sleeper = acts[-1]
        sleeping_processes = len(pids_named(f"{production.prefix} {sleeper.key} "))

        snapshots = []
        for _ in range(args.rounds):
            began = time.monotonic()
            snapshot = production.snapshot()
            snapshots.append(time.monotonic() - began)
        rows = {row.state for row in snapshot.acts}

        # top's feed: one Snapshot a second, each from the one before (rates)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.monotonic()
        previous = None
        while time.monotonic() - began < args.seconds:
            tick = time.monotonic()
            previous = production.snapshot(previous)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - began
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
            cpu_after.ru_stime - cpu_before.ru_stime
        )
        manager = production.manager.pid()
        manager_cpu = ""
        if manager:
            with open(f"/proc/{manager}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            manager_cpu = f"{ticks / os.sysconf('SC_CLK_TCK'):.1f} s CPU in its life"

        mib = 2**20
        print_table(
            ["measure", "value"],
            [
                ["Acts declared (idle set)", str(args.acts)],
                ["declared in", f"{declared_in:.1f} s"],
                ["all asleep after up()", f"{asleep_in:.1f} s"],
                ["PSS, all asleep", f"{idle_pss / mib:.0f} MiB (RSS {idle_rss / mib:.0f})"],
                ["awake", str(args.awake)],
                [
                    "PSS, awake ones up",
                    f"{awake_pss / mib:.0f} MiB (RSS {awake_rss / mib:.0f})",
                ],
                [
                    "PSS per awake Act",
                    f"{(awake_pss - idle_pss) / max(1, args.awake) / mib:.1f} MiB",
                ],
                ["wake to 200, median", f"{median(wakes):.2f} s (max {max(wakes):.2f})"],
                ["failed wake requests", str(failed)],
                ["processes of a sleeping Act", str(sleeping_processes)],
                ["snapshot(), median", f"{median(snapshots) * 1000:.0f} ms"],
                ["states in the snapshot", ", ".join(sorted(rows))],
                ["top's feed CPU", f"{100 * cpu / wall:.1f} % of a core"],
                ["Production Manager", manager_cpu],
            ],
        )
        print(
            f"density: {args.acts} Acts, {args.awake} awake: PSS {awake_pss / mib:.0f} MiB, "
            f"wake median {median(wakes):.2f} s, {failed} failed, snapshot "
            f"{median(snapshots) * 1000:.0f} ms, top {100 * cpu / wall:.1f} % of a core"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
