"""How long `act add` of a small Django project takes to serve, and what the pre-flight
adds to a reload.

  add      venue.add_act(NAME, FOLDER, env=...) of a Django project (settings split in
           base/prod, one extra requirement, python-decouple, a migration, a static
           file) until GET / answers 200 with every worker up: its requirements
           installed into the Venue with uv (warm cache: one untimed add first), the
           app imported once in a separate process and `check`ed, the release steps
           (`migrate`, `collectstatic`) run, the vassal pushed and started. Each round
           adopts a new copy into a new Venue, so the requirement is installed each time.
  reload   act.reload() of the unchanged project: requirements (unchanged), then the
           pre-flight and the release steps in one process of the Venue's Python
           (`migrate` and `collectstatic` skipped: nothing to do), then the chain
           reload, until every worker has the new code
  bare     the same chain reload alone (the FIFO's `c`), with no pre-flight: what
           `act.reload()` did before adoption came
  manage   one cold `python manage.py check` in the project's folder
  check    the pre-flight alone: requirements and the import (and `check`)
  all      the pre-flight and the release steps (one process)
  apart    the same, a process for the check and one for each step, as before:
           three starts of Django

Target: reload at most 1.5x (bare + manage).

    python benchmarks/adopt.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from _common import (
    arguments,
    check_apart,
    manage_check,
    median,
    print_timings,
    production_in,
    scratch,
    timed,
    wait_for_ok,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.projects import make_django_project  # noqa: E402

if TYPE_CHECKING:
    from backstage.act import Act

TARGET_RATIO = 1.5  # a checked reload against a chain reload and one `manage.py check`


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    args = arguments(parser, argv, rounds=1)

    from backstage.control.managers import adoption
    from backstage.shortcuts import new_venue

    kinds = ("add", "reload", "bare", "manage", "check", "all", "apart")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    with scratch("bsa-") as folder, production_in(folder) as production:

        def adopt(round_: str) -> tuple[float, Act]:
            venue = new_venue(f"V{round_}", folder, production)
            project = make_django_project(os.path.join(folder, f"projects{round_}"))
            env = {"DATABASE_PATH": os.path.join(folder, f"db{round_}.sqlite3")}
            seconds_, act = timed(venue.add_act, "Site", project.path, env=env)
            wait_for_ok(act.port, 10.0)
            return seconds_, act

        if not args.quick:  # a quick round's one adoption is the cold one too
            _, act = adopt("warm")  # fills the uv cache and starts the Stage
            act.stop()
        for round_ in range(args.rounds):
            spent, act = adopt(str(round_))
            times["add"].append(spent)
            crew = production.crew
            for _ in range(1 if args.quick else 2):
                times["reload"].append(timed(act.reload)[0])
                times["bare"].append(timed(act.manager.reload)[0])
                times["manage"].append(timed(manage_check, act)[0])
                times["check"].append(timed(adoption.prepare, crew, act.manager, False)[0])
                times["all"].append(timed(adoption.prepare, crew, act.manager)[0])
                times["apart"].append(
                    timed(adoption.prepare, crew, act.manager, True, check_apart)[0]
                )
            act.stop()

    what = {
        "add": "act add until serving (warm uv cache)",
        "reload": "act.reload(): pre-flight + chain reload",
        "bare": "chain reload alone",
        "manage": "one cold `manage.py check`",
        "check": "pre-flight: requirements, import, check",
        "all": "pre-flight and release steps, one process",
        "apart": "the same, a process each (as before)",
    }
    print(f"A small Django project with one extra requirement, {args.rounds} round(s)")
    print_timings(what, times)
    releasing = median(times["all"]) - median(times["check"])
    print(f"of which the release steps: {releasing:.2f} s (a process each: "
          f"{median(times['apart']) - median(times['check']):.2f} s)")  # fmt: skip
    ratio = median(times["reload"]) / (median(times["bare"]) + median(times["manage"]))
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(
        f"act add serves in {median(times['add']):.2f} s; a checked reload takes "
        f"{ratio:.2f}x a chain reload and one `manage.py check` (target <= {TARGET_RATIO}: "
        f"{verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
