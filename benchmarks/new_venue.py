"""How long new_venue() takes to build a virtualenv with Django, against venv + pip.

  cold  new_venue() with an empty uv cache (UV_CACHE_DIR set to a new folder):
        Django and its dependencies are downloaded
  warm  new_venue() again, a new Venue, the same uv cache
  pip   `python -m venv` then `pip install django`, with pip's cache warmed by
        one untimed run first (a scratch PIP_CACHE_DIR; the machine's pip config holds)

Each new_venue() also probes the uwsgi binary and records the Venue in the
Production, as a user's call does.

    python benchmarks/new_venue.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from _common import (
    arguments,
    env_set,
    median,
    print_timings,
    production_in,
    scratch,
    timed,
)

TARGET_WARM = 5.0
BUILD_TIMEOUT = 900.0


def venv_and_pip(path: str) -> None:
    for args in (
        [sys.executable, "-m", "venv", path],
        [os.path.join(path, "bin", "pip"), "install", "--quiet", "django"],
    ):
        # Captured: the machine's pip config makes pip warn about index folders it lacks.
        done = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            last = lines[-1] if lines else f"exit {done.returncode}"
            raise RuntimeError(f"{' '.join(args)} failed: {last}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each (default 1)")
    args = arguments(parser, argv, rounds=1)

    from backstage.shortcuts import new_venue

    times: dict[str, list[float]] = {"cold": [], "warm": [], "pip": []}
    with scratch("bsv-") as folder, production_in(folder) as production:
        for round_ in range(args.rounds):
            cache = os.path.join(folder, f"uv-cache-{round_}")
            os.mkdir(cache)
            with env_set(UV_CACHE_DIR=cache):
                for kind in ("cold", "warm"):
                    name = f"{kind.title()}{round_}"
                    times[kind].append(timed(new_venue, name, folder, production)[0])
        # the baseline has no Backstage in it and takes 40 s: a quick round leaves it out
        with env_set(PIP_CACHE_DIR=os.path.join(folder, "pip-cache")):
            if not args.quick:
                venv_and_pip(os.path.join(folder, "pip-warm-up"))
            for round_ in range(0 if args.quick else args.rounds):
                path = os.path.join(folder, f"pip-{round_}")
                times["pip"].append(timed(venv_and_pip, path)[0])

    what = {
        "cold": "new_venue, empty uv cache",
        "warm": "new_venue, warm uv cache",
        "pip": "python -m venv + pip install django, warm pip cache",
    }
    print(f"Venue with Django, {args.rounds} round(s) each")
    print_timings(what, times)
    warm = median(times["warm"])
    verdict = "met" if warm < TARGET_WARM else "NOT met"
    pip = f"; venv + pip is {median(times['pip']) / warm:.1f}x warm" if times["pip"] else ""
    print(
        f"new_venue warm {warm:.2f} s (target < {TARGET_WARM:.0f} s: {verdict}), "
        f"cold {median(times['cold']):.2f} s{pip}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
