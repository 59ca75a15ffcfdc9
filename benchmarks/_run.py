"""Run every benchmark (each `benchmarks/*.py` not starting with `_`) with the options
given, print each one's output and time as it ends, and exit 1 when any failed.

The full run takes them one at a time, so that none skews another's figures. With
`--quick` (one small round each, as CI runs them, to see that they still work) two run
at a time, the longest first: they mostly wait on processes they started, and a quick
round's figures are not the ones to report.

    python benchmarks/_run.py [--quick] [options every benchmark takes]
"""

from __future__ import annotations

import glob
import os
import queue
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

HERE = os.path.dirname(os.path.abspath(__file__))
# the longest quick rounds, started first so that the two lanes end together
LONGEST = ("large_reload", "adopt", "devloop")


def benchmarks() -> list[str]:
    found = sorted(glob.glob(os.path.join(HERE, "[!_]*.py")))
    name = lambda path: os.path.basename(path)[:-3]  # noqa: E731
    first = [path for key in LONGEST for path in found if name(path) == key]
    return first + [path for path in found if path not in first]


def run(
    path: str, options: Sequence[str], lanes: queue.Queue[int], count: int
) -> tuple[str, int, float, str]:
    """Its name, exit status, seconds and output (with one lane, it prints as it goes).
    It runs in a lane of its own: its ports are drawn from that lane's share."""
    began = time.monotonic()
    capture = count > 1
    if not capture:
        print(f"== {os.path.basename(path)} {' '.join(options)}", flush=True)
    lane = lanes.get()
    try:
        done = subprocess.run(
            [sys.executable, path, *options],
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            text=True,
            errors="replace",
            env=dict(os.environ, BENCH_LANE=str(lane), BENCH_LANES=str(count)),
        )
    finally:
        lanes.put(lane)
    return os.path.basename(path), done.returncode, time.monotonic() - began, done.stdout or ""


def main(argv: Sequence[str]) -> int:
    options = list(argv)
    lanes = 2 if "--quick" in options else 1
    free: queue.Queue[int] = queue.Queue()
    for lane in range(lanes):
        free.put(lane)
    began = time.monotonic()
    failed = []
    with ThreadPoolExecutor(lanes) as pool:
        futures = [pool.submit(run, path, options, free, lanes) for path in benchmarks()]
        for future in as_completed(futures):
            name, code, seconds, output = future.result()
            if output:
                print(f"== {name} {' '.join(options)}\n{output.rstrip()}")
            verdict = "ok" if code == 0 else f"FAILED (exit {code})"
            print(f"== {name}: {verdict} in {seconds:.0f} s\n", flush=True)
            if code != 0:
                failed.append(name)
    total = time.monotonic() - began
    print(f"benchmarks: {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}, "
          f"{total:.0f} s in all, {lanes} at a time")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
