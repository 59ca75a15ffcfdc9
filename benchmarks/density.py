"""Density: many declared Acts that sleep when idle, a few awake.

Declares `--acts` Acts (Django scaffolds, one worker each) with `idle` set, lets them
all fall asleep, then wakes `--awake` of them one after another and measures:

wake        seconds from a request at a sleeping Act's port to its 200 (failed: any other)
PSS         the whole Production's proportional memory (Manager, Emperor, router, the
            awake Acts), from /proc/PID/smaps_rollup; RSS beside it, which counts
            shared pages once per process
sleeping    processes of a sleeping Act (by its procname): 0 is the goal
snapshot    seconds for production.snapshot() of all the Acts (median of --rounds)
top         CPU of a `top` feed (one snapshot a second, drawing aside) as % of a core,
            and of `backstage top` itself drawing under tmux (monitor.py's measure)
Manager     CPU of the Production Manager at rest (all asleep but the awake ones, no
            request) over --rest seconds, as % of a core, from /proc/PID/stat; and
            the file descriptors of the Emperor and the Manager

`--against REF` runs the same first with the code of git REF (extracted from this
repository, the benchmark itself unchanged) and prints both side by side: one run,
one machine, the load average of each beside it. Run it from the repository's root
(the Manager is started with `python -m backstage`, which looks there first). On a
machine others test on, run it in a network namespace of its own, so that its
thousands of ports take none of theirs (UV_OFFLINE=1: the Venue's packages come from
uv's cache there), and above the range they test in (BENCH_PORTS, see _common.py):
`UV_OFFLINE=1 BENCH_PORTS=33000-60000 unshare -n sh -c 'ip link set lo up && python
benchmarks/density.py ...'`.

  python benchmarks/density.py [--acts 1000] [--awake 30] [--rounds 5] [--against REF]

With --memory, one awake hello-world Django Act per way of running its workers, side
by side in one Production: what it costs at rest and under load (wrk, --clients
connections for --seconds), how many workers it ran, and for adaptive workers how soon
they reached the ceiling and went back to rest.

  python benchmarks/density.py --memory [--seconds 10] [--clients 8] [--python 3.12]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from _common import (
    arguments,
    free_ports,
    http_status,
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


def cpu_ticks(pid: int) -> int:
    """User and system clock ticks of a process, all its threads, in its life."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def fds(pid: int | None) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd")) if pid else 0
    except OSError:
        return 0


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def against(ref: str, argv: Sequence[str]) -> list[list[str]]:
    """The rows this benchmark gives with the code of git `ref`, in a process of its own."""
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with scratch("bsa-") as folder:
        code = os.path.join(folder, "code")
        os.makedirs(code)
        archive = subprocess.run(
            ["git", "-C", repository, "archive", ref], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", code], input=archive, check=True)
        # this benchmark, as it is, beside that code: its _common puts its own root first
        here = os.path.dirname(os.path.abspath(__file__))
        for name in ("density.py", "_common.py", "monitor.py"):
            shutil.copy(os.path.join(here, name), os.path.join(code, "benchmarks", name))
        out = os.path.join(folder, "rows.json")
        env = {**os.environ, "PYTHONPATH": code}
        # from there: `python -m backstage`, which starts the Manager, looks in its
        # working folder first
        script = os.path.join(code, "benchmarks", "density.py")
        command = [sys.executable, script, *argv, "--json", out]
        subprocess.run(command, env=env, cwd=code, check=True)
        with open(out) as rows:
            return json.load(rows)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=int, default=1000)
    parser.add_argument("--awake", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rest", type=float, default=120.0, help="seconds the Manager rests")
    parser.add_argument("--against", help="a git ref to measure first, side by side")
    parser.add_argument("--json", help=argparse.SUPPRESS)  # where --against's child writes
    parser.add_argument("--memory", action="store_true", help="awake Acts' memory, side by side")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections (--memory)")
    parser.add_argument(
        "--python", help="the Venue's Python, \"3.12\" (--memory; default: the Stage's)"
    )
    args = arguments(parser, argv, acts=5, awake=2, rounds=1, seconds=2.0, rest=2.0)
    if args.memory:
        return memory(args.seconds, args.clients, args.python)
    raw = list(sys.argv[1:] if argv is None else argv)
    before = None
    if args.against:
        at = raw.index("--against")
        before = against(args.against, raw[:at] + raw[at + 2 :])
    rows = measure(args)
    if rows is None:
        return 1
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out)
        return 0
    if before is None:
        print_table(["measure", "value"], rows)
    else:
        now = dict(rows)
        print_table(
            ["measure", args.against, "this code"],
            [[name, value, now.get(name, "")] for name, value in before]
            + [[name, "", value] for name, value in rows if name not in dict(before)],
        )
    return 0


def measure(args: argparse.Namespace) -> list[list[str]] | None:
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
            return None
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
        # `backstage top` itself, drawing under tmux (monitor.py's measure)
        from monitor import top_cpu

        try:
            # the awake ones come first (A0000...), and fill the screen from 60 on
            top_used, top_wall = top_cpu(production, min(20, args.awake), args.seconds)
            top_process = f"{100 * top_used / top_wall:.1f} % of a core"
        except RuntimeError as exc:  # no tmux, or it drew nothing in time: say so
            top_process = str(exc)

        # the Manager at rest: nothing declared changes, nobody asks anything
        manager = production.manager.pid()
        manager_cpu = "no Manager"
        if manager:
            began, ticks = time.monotonic(), cpu_ticks(manager)
            time.sleep(args.rest)
            used = (cpu_ticks(manager) - ticks) / os.sysconf("SC_CLK_TCK")
            rest = time.monotonic() - began
            manager_cpu = f"{100 * used / rest:.2f} % of a core over {rest:.0f} s"
        manager_fds = f"{fds(manager)} (Emperor {fds(production.stage.pid())})"

        mib = 2**20
        rows = [
            ["load average (1, 5, 15 min)", load_average()],
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
            ["`backstage top` process CPU", top_process],
            ["Production Manager at rest", manager_cpu],
            ["open files of the Manager", manager_fds],
        ]
        print(
            f"density: {args.acts} Acts, {args.awake} awake: PSS {awake_pss / mib:.0f} MiB, "
            f"wake median {median(wakes):.2f} s, {failed} failed, snapshot "
            f"{median(snapshots) * 1000:.0f} ms, top {100 * cpu / wall:.1f} % of a core, "
            f"Manager {manager_cpu}"
        )
    return rows


# (label, act.toml settings): two fixed workers (Django preloaded by the master), one,
# and adaptive workers. Run against code from before adaptive workers, the fixed ones
# run as that code renders them.
WAYS = (
    ("2 workers", ("processes=2",)),
    ("1 worker", ("processes=1",)),
    ('adaptive "1..4"', ("processes=1..4",)),
)


# The plain way beside the Acts: the Venue's Python importing Django, building the WSGI
# app and reading its URLconf (what a worker does as it loads), then at rest.
PLAIN_APP = """\
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = sys.argv[1]
from django.core.wsgi import get_wsgi_application
get_wsgi_application()
from django.urls import get_resolver
get_resolver().url_patterns
print("built", flush=True)
sys.stdin.read()
"""


def plain_app_pss(python: str, folder: str, settings: str) -> float:
    """PSS (bytes) of a plain Python that built the app, once at rest."""
    import subprocess

    child = subprocess.Popen(
        [python, "-c", PLAIN_APP, settings],
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "built\n"
        time.sleep(2.0)  # pacing: as the Acts are measured, 2 s after their last work
        return float(pss_and_rss([child.pid])[0])
    finally:
        child.kill()
        child.communicate()


def memory(seconds: float, clients: int, python: str | None = None) -> int:
    import subprocess

    from backstage.shortcuts import new_venue
    from emperor.process import pids_named

    wrk = shutil.which("wrk")
    if wrk is None:
        print("--memory needs wrk on PATH")
        return 1
    mib = 2**20
    with scratch("bsm-") as folder, production_in(folder) as production:
        first = free_ports(21)
        production.declare(ports=(first, first + 20), router=f"127.0.0.1:{first + 20}")
        venue = new_venue("Bench", folder, production, python=python)
        from backstage.model.spec import ActSpec

        ways = [
            way
            for way in WAYS
            if "adaptive" in ActSpec.__dataclass_fields__ or ".." not in way[1][0]
        ]
        acts = []
        for i, (_, settings) in enumerate(ways):
            act = venue.new_act(f"M{i}", start=False)
            act.set(*settings)
            act.start(120)
            acts.append(act)

        def pss(act) -> float:  # type: ignore[no-untyped-def]
            return pss_and_rss(pids_named(f"{production.prefix} {act.key} "))[0] / mib

        def workers(act) -> int:  # type: ignore[no-untyped-def]
            sess = act.sess
            return len(sess.workers) if sess else 0

        def at_rest(act) -> bool:  # type: ignore[no-untyped-def]
            sess = act.sess
            return sess is not None and sess.ready and len(sess.workers) == act.spec.processes

        rows = []
        for (label, _), act in zip(ways, acts, strict=True):
            for _ in range(5):
                http_status(act.port, timeout=10)
            poll(lambda act=act: at_rest(act), 60)
            time.sleep(2.0)  # pacing: what the first requests allocated settles
            rest = pss(act)
            began = time.monotonic()
            load = subprocess.Popen(
                [wrk, "-t2", f"-c{clients}", f"-d{seconds:g}s", "-H", "Connection: close",
                 f"http://127.0.0.1:{act.port}/"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            grown = None
            most, loaded = 0, 0.0
            while load.poll() is None:
                count = workers(act)
                if count > most:
                    most = count
                    if count == act.spec.ceiling and getattr(act.spec, "adaptive", False):
                        grown = time.monotonic() - began
                if time.monotonic() - began > seconds * 0.8 and not loaded:
                    loaded = pss(act)
                time.sleep(0.1)
            out = load.communicate()[0]
            rps = next(
                (line.split()[1] for line in out.splitlines() if "Requests/sec" in line), "?"
            )
            errors = "Non-2xx" in out or "Socket errors" in out
            ended = time.monotonic()
            back = None
            if getattr(act.spec, "adaptive", False) and poll(
                lambda act=act: at_rest(act), 120, 0.2
            ):
                back = time.monotonic() - ended
            time.sleep(2.0)  # pacing: a cheaped worker is gone from stats before it exits
            rows.append(
                [
                    label,
                    f"{rest:.1f} MiB",
                    f"{loaded:.1f} MiB",
                    str(most),
                    rps + (" (errors)" if errors else ""),
                    "-" if grown is None else f"{grown:.1f} s",
                    "-" if back is None else f"{back:.1f} s",
                    f"{pss(act):.1f} MiB",
                ]
            )
        served = os.path.realpath(os.path.join(acts[0].path, "current"))
        settings = f"{acts[0].spec.package}.settings"
        plain = plain_app_pss(venue.python, served, settings) / mib
        rows.append(["plain Python, the app built", f"{plain:.1f} MiB"] + ["-"] * 6)
        version = subprocess.run(
            [venue.python, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        print(f"one awake hello-world Act on Python {version}, wrk -c{clients} for "
              f"{seconds:g} s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print_table(
            ["workers", "PSS at rest", "under load", "most workers", "req/s",
             "to the ceiling", "back to rest", "PSS after"],
            rows,
        )  # fmt: skip
        print("memory: PSS at rest " + ", ".join(f"{row[0]} {row[1]}" for row in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
