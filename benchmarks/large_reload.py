"""A checked reload of a larger app: a Wagtail site, as `wagtail start` makes it, served
with its production settings (ManifestStaticFilesStorage), adopted as an Act.

  unchanged  act.reload() of the unchanged site: the pre-flight and the release steps in
             one process (`migrate` and `collectstatic` find nothing to do), then the
             chain reload of its 2 workers, until every worker has the new code
  template   a template-only edit (the home page's template), then act.reload(): until
             GET / first shows the edit ("served"), and until act.reload() returns
             (every worker has it). The check and the steps run in a fork of the Act's
             warm check process, which keeps Wagtail imported while no module changed
  built      a template edit's version built and checked (the copy, the check and the
             steps), not served: warm, and in one cold process
  cold       the same edit and reload, the check and the steps in one cold process (a
             start of the Venue's Python and of Wagtail each time)
  apart      (--apart) the same, the check, `migrate` and `collectstatic` each in a
             process of its own (each starting Django and running whether it has
             something to do or not)
  bare       the chain reload alone (the FIFO's `c`)
  manage     one cold `python manage.py check`

Target: a template-only edit served in under 4 s.

Wagtail (and its Django) comes from PyPI into the benchmark's Venue (uv's cache makes
it quick after the first run). The generated requirements.txt is replaced by
`wagtail`: it pins a Django that needs a newer Python than the Stage's. Its settings'
local.py puts the database and STATIC_ROOT outside the code, as a deployment does
(STATIC_ROOT inside it would be empty in each new version, collected every time).

    python benchmarks/large_reload.py [--rounds N] [--apart]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from _common import (
    arguments,
    check_apart,
    manage_check,
    median,
    poll,
    print_timings,
    production_in,
    scratch,
    timed,
    wait_for_ok,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if TYPE_CHECKING:
    from backstage.act import Act
    from backstage.control.build.preflight import Check, Preflight

TARGET_SERVED = 4.0
RELOAD_TIMEOUT = 300.0  # each worker loads Wagtail: a chain reload is long on a busy host
TEMPLATE = os.path.join("home", "templates", "home", "home_page.html")
# production settings as a deployment gives them: a key, and the database and the
# collected static files outside the code, which each version is a new copy of
LOCAL_SETTINGS = """
SECRET_KEY = "only-for-the-benchmark"
ALLOWED_HOSTS = ["*"]
STATIC_ROOT = {static!r}
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {database!r}}}}}
"""


def page(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": "localhost"})
        return conn.getresponse().read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        conn.close()


def edit(project: str, marker: str) -> None:
    """Put `marker` at the top of the home page's content block, as an editor saves."""
    path = os.path.join(project, TEMPLATE)
    with open(path) as template:
        text = template.read()
    head, block, rest = text.partition("{% block content %}")
    if "<!--edit-->" in rest:
        rest = rest.split("<!--/edit-->", 1)[1]
    temporary = path + ".new"
    with open(temporary, "w") as out:
        out.write(f"{head}{block}<!--edit--><p>{marker}</p><!--/edit-->{rest}")
    os.replace(temporary, path)


def served_edit(
    act: Act, project: str, marker: str, reload: Callable[[], None]
) -> tuple[float, float]:
    """Seconds from the edit to the first GET / showing it, and to `reload` returning."""
    start = time.perf_counter()
    edit(project, marker)
    finished: list[float] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            reload()
        except BaseException as exc:  # said below, after the poll
            failed.append(exc)
        finished.append(time.perf_counter())

    thread = threading.Thread(target=run)
    thread.start()
    seen: list[float] = []

    def shown() -> bool:
        if marker in page(act.port):
            seen.append(time.perf_counter())
            return True
        return bool(failed)

    poll(shown, 120.0, 0.05)
    thread.join()
    if failed or not seen:
        raise RuntimeError(f"the edit {marker} was not served: {failed}")
    return seen[0] - start, finished[0] - start


def describe(act: Act, database: str, static: str) -> str:
    """How large the site is: its apps' migrations applied, its static files collected."""
    with sqlite3.connect(database) as db:
        migrations = db.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0]
        apps = db.execute("SELECT COUNT(DISTINCT app) FROM django_migrations").fetchone()[0]
    collected = sum(len(files) for _, _, files in os.walk(static))
    return f"{apps} apps with {migrations} migrations, {collected} static files collected"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument("--apart", action="store_true", help="also a process a step")
    args = arguments(parser, argv, rounds=1)
    load = os.getloadavg()[0]

    from backstage.control.build import preflight
    from backstage.control.managers import releases, versions
    from backstage.model.layout import venue_bin
    from backstage.shortcuts import new_venue

    def check_cold(check: Check) -> Preflight:
        return preflight.preflight(dataclasses.replace(check, warm=None))

    kinds = (
        "unchanged", "served", "returned", "cold_served", "cold_returned", "apart_served",
        "apart_returned", "built", "built_cold", "bare", "manage",
    )  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in kinds}
    with scratch("bsw-") as folder, production_in(folder) as production:
        venue = new_venue("W", folder, production, requirements=("wagtail",))
        project = os.path.join(folder, "site")
        os.makedirs(project)
        wagtail = venue_bin(venue.path, "wagtail")
        subprocess.run([wagtail, "start", "mysite", project], check=True, capture_output=True)
        with open(os.path.join(project, "requirements.txt"), "w") as out:
            out.write("wagtail\n")
        database, static = os.path.join(folder, "db.sqlite3"), os.path.join(folder, "static")
        with open(os.path.join(project, "mysite", "settings", "local.py"), "w") as out:
            out.write(LOCAL_SETTINGS.format(static=static, database=database))
        spent, act = timed(venue.add_act, "Site", project, settings="mysite.settings.production")
        wait_for_ok(act.port, 60.0)
        size = describe(act, database, static)
        for round_ in range(args.rounds):
            times["unchanged"].append(timed(act.reload, RELOAD_TIMEOUT)[0])
            times["bare"].append(timed(act.manager.reload, RELOAD_TIMEOUT)[0])
            served, returned = served_edit(
                act, project, f"edit-{round_}", lambda: act.reload(RELOAD_TIMEOUT)
            )
            times["served"].append(served)
            times["returned"].append(returned)
            for kind, check in (("built", preflight.preflight), ("built_cold", check_cold)):
                edit(project, f"{kind}-{round_}")  # a version built and checked, not served
                took, built = timed(
                    releases.build, production.crew, act.manager, None, check, True, True
                )
                releases.remove(built)
                times[kind].append(took)
            if args.quick:  # the baselines: adopt.py's quick round runs both on its project
                continue
            times["manage"].append(timed(manage_check, act)[0])
            others = {"cold": check_cold, **({"apart": check_apart} if args.apart else {})}
            for kind, check in others.items():  # the same reload, checked cold

                def reload(check: Callable[..., Preflight] = check) -> None:
                    versions.serve(production.crew, act.manager, check, timeout=RELOAD_TIMEOUT)

                served, returned = served_edit(act, project, f"{kind}-{round_}", reload)
                times[f"{kind}_served"].append(served)
                times[f"{kind}_returned"].append(returned)
        act.stop(RELOAD_TIMEOUT)

    what = {
        "unchanged": "act.reload(), nothing changed",
        "served": "template edit: act.reload() until served",
        "returned": "template edit: until act.reload() returns",
        "cold_served": "the same, checked in one cold process: until served",
        "cold_returned": "the same, checked in one cold process: until done",
        "built": "template edit: its version built (copy, check, steps), warm",
        "built_cold": "the same, checked in one cold process",
        "apart_served": "the same, a process a step: until served",
        "apart_returned": "the same, a process a step: until done",
        "bare": "chain reload alone",
        "manage": "one cold `manage.py check`",
    }
    print(f"A Wagtail site ({size}), added in {spent:.1f} s; {args.rounds} round(s)")
    print_timings(what, times)
    served = median(times["served"])
    verdict = "met" if served < TARGET_SERVED else "NOT met"
    cold = median(times["cold_served"]) if times["cold_served"] else None
    print(
        f"a template edit is served in {served:.2f} s"
        + (f", {cold:.2f} s checked in one cold process" if cold is not None else "")
        + f" (target < {TARGET_SERVED:.0f} s: {verdict}); load average {load:.1f} at the "
        f"start, {os.getloadavg()[0]:.1f} at the end"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
