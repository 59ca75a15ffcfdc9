"""What watching a Production costs: one Snapshot of 50 running Acts, and `backstage top`.

  snapshot    production.snapshot(): the Emperor's and all 50 Acts' stats servers
              read side by side (one poll(2) loop), parsed, with the declared files
  one by one  the same 51 stats servers read one after another and json-decoded,
              as uwsgitop reads its one socket per refresh
  top CPU     `backstage top` (interval 1 s) drawing the 50 Acts under a private
              tmux server for a minute: its process CPU time from /proc

The 50 Acts run one worker each; they are created stopped, then declared enabled
all at once so the Emperor spawns them together. Everything is brought down and
removed at the end.

    python benchmarks/monitor.py [--acts 50] [--rounds 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from _common import arguments, median, poll, print_table, production_in, scratch, timed

if TYPE_CHECKING:
    from backstage import Production

TARGET_SNAPSHOT = 0.250  # seconds
TARGET_TOP_CPU = 5.0  # percent of one core
PLAY_TIMEOUT = 300.0


def all_running(production: Production, count: int) -> bool:
    rows = production.snapshot().acts
    return len(rows) == count and all(row.state == "running" for row in rows)


def one_by_one(paths: Sequence[str]) -> None:
    from emperor.stats import read_stats

    for path in paths:
        json.loads(read_stats(path, 0.5))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    # utime and stime: fields 14 and 15 of stat(5), counted after the ")" from field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def top_cpu(
    production: Production, count: int, seconds: float, state: str = "running"
) -> tuple[float, float]:
    """CPU seconds `backstage top` used over `seconds` of wall time, and that wall time,
    from the moment it shows `count` Acts in `state` (as many as fit)."""
    tmux = shutil.which("tmux")
    if tmux is None:
        raise RuntimeError("the top measurement runs it under tmux: install tmux")
    server = [tmux, "-L", f"bsm{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
    env = f"env BACKSTAGE_HOME={production.home} PYTHONPATH={os.pathsep.join(sys.path)}"
    # exec: the pane's process is top itself, so its pid is the one to measure
    command = f"exec {env} {sys.executable} -m backstage top --interval 1"
    subprocess.run([*server, "new-session", "-d", "-x", "160", "-y", "60", command], check=True)
    try:
        pane = subprocess.run(
            [*server, "display", "-p", "#{pane_pid}"], capture_output=True, text=True, check=True
        )
        pid = int(pane.stdout)

        def drawn() -> bool:
            shown = subprocess.run(
                [*server, "capture-pane", "-p"], capture_output=True, text=True
            ).stdout
            return shown.count(f" {state} ") >= min(count, 50)

        if not poll(drawn, 30.0, 0.1):
            raise RuntimeError("backstage top did not show the Acts within 30 s")
        start_cpu, start = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)  # the measurement itself: top refreshes on its own meanwhile
        return cpu_seconds(pid) - start_cpu, time.monotonic() - start
    finally:
        socket_path = subprocess.run(
            [*server, "display", "-p", "#{socket_path}"], capture_output=True, text=True
        ).stdout.strip()
        subprocess.run([*server, "kill-server"], capture_output=True)
        if socket_path:  # kill-server leaves the socket file behind
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=int, default=50, help="running Acts (default 50)")
    parser.add_argument("--rounds", type=int, default=20, help="timed snapshots (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="top run (default 60)")
    args = arguments(parser, argv, acts=2, rounds=2, seconds=3.0)

    from backstage.shortcuts import new_venue

    with scratch("bsm-") as folder, production_in(folder) as production:
        venue = new_venue("Bench", folder, production)
        started = time.perf_counter()
        acts = [venue.new_act(f"A{i:02d}", processes=1, start=False) for i in range(args.acts)]
        for act in acts:
            act.manager.declare(enabled=True)
        production.up()
        production.manager.poke()
        if not poll(lambda: all_running(production, args.acts), PLAY_TIMEOUT, 0.5):
            raise RuntimeError(f"the {args.acts} Acts were not all running after {PLAY_TIMEOUT} s")
        print(f"{args.acts} Acts created and playing in {time.perf_counter() - started:.0f} s")

        paths = [production.stage.stats_path] + [act.stats_path for act in acts]
        production.snapshot()  # warm: imports, first reads
        snap = [timed(production.snapshot)[0] for _ in range(args.rounds)]
        seq = [timed(one_by_one, paths)[0] for _ in range(args.rounds)]
        top_used, top_wall = top_cpu(production, args.acts, args.seconds)

    snap_median, seq_median = median(snap), median(seq)
    top_percent = 100 * top_used / top_wall
    print_table(
        ["what", "median", "max", "target"],
        [
            [
                f"snapshot of {args.acts} Acts",
                f"{snap_median * 1000:.1f} ms",
                f"{max(snap) * 1000:.1f} ms",
                f"< {TARGET_SNAPSHOT * 1000:.0f} ms",
            ],
            [
                f"{len(paths)} stats servers one by one",
                f"{seq_median * 1000:.1f} ms",
                f"{max(seq) * 1000:.1f} ms",
                "",
            ],
            [
                f"top CPU over {top_wall:.0f} s",
                f"{top_percent:.2f} %",
                f"{top_used:.2f} s",
                f"< {TARGET_TOP_CPU:.0f} %",
            ],
        ],
    )
    ok = snap_median < TARGET_SNAPSHOT and top_percent < TARGET_TOP_CPU
    print(
        f"snapshot/one-by-one = {snap_median / seq_median:.2f}; "
        f"snapshot {snap_median * 1000:.0f} ms, top {top_percent:.1f} % of a core: "
        f"{'within' if ok else 'OUTSIDE'} the targets"
    )
    return 0 if ok or args.quick else 1  # a quick round fails on errors only


if __name__ == "__main__":
    raise SystemExit(main())
