"""What making a Django Act costs: its project rendered from the Venue's Django's
template, against `django-admin startproject` as every Act was made before.

  startproject   `new_act(start=False)` with the project made by startproject
                 (in the Venue's Python, as before: forced here for the comparison)
  rendered       `new_act(start=False)` as it is: the Venue's first Act was made by
                 startproject and found the same, so each one here is rendered
  cli            `backstage act new VENUE NAME --no-start`: a process of Backstage's
                 own, rendered
  cli-floor      `backstage --help`: what any command costs before it does anything

Wall and CPU seconds (this process's and its children's) of each, one Act a round.

    python benchmarks/act_new.py [--rounds N]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from _common import arguments, median, print_table, production_in, scratch


def cpu() -> float:
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def measured(action: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, float]:
    """Wall and CPU seconds of `action(*args, **kwargs)`."""
    began, spent = time.perf_counter(), cpu()
    action(*args, **kwargs)
    return time.perf_counter() - began, cpu() - spent


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "backstage", *args], check=True, capture_output=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="Acts of each kind (default 10)")
    args = arguments(parser, argv, rounds=2)

    from backstage.control.build import scaffold
    from backstage.model.layout import ActRef
    from backstage.shortcuts import new_venue

    kinds = ("startproject", "rendered", "cli", "cli-floor")
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
    with scratch("bsn-") as folder, production_in(folder) as production:
        venue = new_venue("Bench", folder, production)
        venue.new_act("First", start=False)  # the Venue's first: startproject's, judged
        rendering = scaffold.django_project
        made: list[bool] = []

        def as_before(ref: ActRef) -> bool:
            scaffold.startproject(ref)
            return False

        def counted(ref: ActRef) -> bool:
            made.append(rendering(ref))
            return made[-1]

        for i in range(args.rounds):
            scaffold.django_project = as_before
            try:
                took = measured(venue.new_act, f"Before{i}", start=False)
            finally:
                scaffold.django_project = counted
            for kind, (seconds, spent) in (
                ("startproject", took),
                ("rendered", measured(venue.new_act, f"Now{i}", start=False)),
                ("cli", measured(cli, "act", "new", "Bench", f"Cli{i}", "--no-start")),
                ("cli-floor", measured(cli, "--help")),
            ):
                wall[kind].append(seconds)
                cpus[kind].append(spent)
        scaffold.django_project = rendering
        if not all(made):
            print(f"rendered {made.count(True)} of {len(made)}: the others were startproject's")
            return 1

    what = {
        "startproject": "new_act, startproject (as before)",
        "rendered": "new_act, rendered",
        "cli": "act new --no-start, rendered",
        "cli-floor": "backstage --help",
    }
    rows = [
        [label, f"{median(wall[k]) * 1000:.1f}", f"{median(cpus[k]) * 1000:.1f}"]
        for k, label in what.items()
    ]
    print(f"making a Django Act, {args.rounds} round(s) each, median ms")
    print_table(["", "wall", "CPU"], rows)
    saved = median(cpus["startproject"]) - median(cpus["rendered"])
    print(
        f"new_act: {median(cpus['startproject']) * 1000:.0f} ms of CPU with startproject, "
        f"{median(cpus['rendered']) * 1000:.1f} ms rendered ({saved * 1000:.0f} ms saved per Act)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
