"""How long `act add` of a small Django project takes to serve, and what the pre-flight
adds to a reload.

  add      venue.add_act(NAME, FOLDER, env=...) of a Django project (settings split in
           base/prod, one extra requirement, python-decouple, a migration, a static
           file) until GET / answers 200 with every worker up: its requirements
           installed into the Venue with uv (warm cache: one untimed add first), the
           app imported once in a separate process and `check`ed, the release steps
           (`migrate`, `collectstatic`) run, the vassal pushed and started. Each round
           adopts a new copy into a new Venue, so the requirement is installed each time.
  reload   act.reload(): requirements (unchanged), pre-flight and release steps, then
           the chain reload, until every worker has the new code
  bare     the same chain reload alone (the FIFO's `c`), with no pre-flight: what
           `act.reload()` did before adoption came
  check    of that pre-flight: requirements and the import (and `check`) alone
  release  and the release steps (`migrate`, `collectstatic`), each a process of its own

    python benchmarks/adopt.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from _common import median, print_table, production_in, scratch, seconds, timed, wait_for_ok

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.projects import make_django_project  # noqa: E402

TARGET_ADDED = 1.0  # seconds the pre-flight may add to a reload


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    args = parser.parse_args(argv)

    from backstage.act import Act
    from backstage.control import adoption
    from backstage.shortcuts import new_venue

    times: dict[str, list[float]] = {k: [] for k in ("add", "reload", "bare", "check", "all")}
    with scratch("bsa-") as folder, production_in(folder) as production:

        def adopt(round_: str) -> tuple[float, Act]:
            venue = new_venue(f"V{round_}", folder, production)
            project = make_django_project(os.path.join(folder, f"projects{round_}"))
            env = {"DATABASE_PATH": os.path.join(folder, f"db{round_}.sqlite3")}
            seconds_, act = timed(venue.add_act, "Site", project.path, env=env)
            wait_for_ok(act.port, 10.0)
            return seconds_, act

        _, act = adopt("warm")  # fills the uv cache and starts the Stage
        act.stop()
        for round_ in range(args.rounds):
            spent, act = adopt(str(round_))
            times["add"].append(spent)
            crew = production.crew
            for _ in range(2):
                times["reload"].append(timed(act.reload)[0])
                times["bare"].append(timed(act.manager.reload)[0])
                times["check"].append(timed(adoption.prepare, crew, act.manager, False)[0])
                times["all"].append(timed(adoption.prepare, crew, act.manager)[0])
            act.stop()

    what = {
        "add": "act add until serving (warm uv cache)",
        "reload": "act.reload(): pre-flight + chain reload",
        "bare": "chain reload alone",
        "check": "pre-flight: requirements, import, check",
        "all": "pre-flight and release steps",
    }
    print(f"A small Django project with one extra requirement, {args.rounds} round(s)")
    rows = [
        [label, seconds(median(times[kind])), seconds(min(times[kind]))]
        for kind, label in what.items()
    ]
    print_table(["", "median", "min"], rows)
    releasing = median(times["all"]) - median(times["check"])
    print(f"of which the release steps: {releasing:.2f} s")
    added = median(times["reload"]) - median(times["bare"])
    verdict = "met" if added < TARGET_ADDED else "NOT met"
    print(
        f"act add serves in {median(times['add']):.2f} s; the pre-flight adds {added:.2f} s "
        f"to a reload (target < {TARGET_ADDED:.0f} s: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
