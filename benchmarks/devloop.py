"""Save to first response with the new code: a watched Act against `manage.py runserver`.

One Django project, two copies: one is a Backstage Act declared `watch = true` (the
Production Manager runs the pre-flight and chain-reloads), the other is served by
Django's own `runserver` with its autoreloader, from the same Venue. Each round rewrites
the view in both (atomically, as editors save) while a request loop (a GET every 10 ms,
2 s timeout, bounded in count and time) runs against each; the time is from the save
to the first response carrying the new text, and every response that is not a 200
counts as failed. Targets: Backstage's median under 1.0 s and at most 0.6 of
runserver's; 0 failed requests for Backstage.

Then releases: an Act added from a git repository (a plain WSGI app) is deployed
(`act.deploy()`, a new commit each time) and rolled back (`act.rollback()`) under the
same request loop; the time from a rollback to the first response of the old release
is measured. Targets: 0 failed requests; a rollback serves the old release within 2 s.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import (  # noqa: E402
    arguments,
    free_port,
    median,
    poll,
    print_table,
    production_in,
    scratch,
    seconds,
    stop_process,
    wait_for_ok,
)
from tests.projects import commit_app, git_app  # noqa: E402

TARGET_SECONDS = 1.0
TARGET_RATIO = 0.6
LOOP_LIMIT = 40000  # requests per loop, at most
LOOP_SECONDS = 900.0

VIEW = """
from django.http import HttpResponse
from django.urls import path

def hello(request):
    return HttpResponse("{marker}")

urlpatterns = [path("hello", hello)]
"""


def save(urls: str, marker: str) -> float:
    with open(urls + ".new", "w") as out:
        out.write(VIEW.format(marker=marker))
    os.replace(urls + ".new", urls)
    return time.monotonic()


class Loop:
    """GETs one after another, every 10 ms; when each text was first seen, and failures."""

    path = "/hello"

    def __init__(self, port: int) -> None:
        self.port = port
        self.first_seen: dict[str, float] = {}
        self.requests = 0
        self.failed = 0
        self.log: list[tuple[float, str]] | None = None  # every response, when kept
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _get(self) -> str | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", self.path)
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
            return body if response.status == 200 else None
        except (OSError, http.client.HTTPException):  # IncompleteRead is not an OSError
            return None
        finally:
            conn.close()

    def _run(self) -> None:
        deadline = time.monotonic() + LOOP_SECONDS
        while not self._stop.is_set() and self.requests < LOOP_LIMIT:
            if time.monotonic() > deadline:
                break
            body = self._get()
            self.requests += 1
            if body is None:
                self.failed += 1
            else:
                now = time.monotonic()
                self.first_seen.setdefault(body, now)
                if self.log is not None:
                    self.log.append((now, body))
            time.sleep(0.01)

    def start(self) -> Loop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_for(self, marker: str, timeout: float = 60) -> float | None:
        if not poll(lambda: marker in self.first_seen, timeout):
            return None
        return self.first_seen[marker]


def rounds_of(loop: Loop, urls: str, rounds: int, prefix: str, settle: float) -> list[float]:
    took = []
    for n in range(rounds):
        marker = f"{prefix}{n}"
        saved = save(urls, marker)
        seen = loop.wait_for(marker)
        if seen is None:
            print(f"{prefix}: the save {n} was never served", file=sys.stderr)
            continue
        took.append(seen - saved)
        time.sleep(settle)  # the reload over before the next save
    return took


class RootLoop(Loop):
    path = "/"

    def first_after(self, marker: str, since: float, timeout: float = 60) -> float | None:
        """Seconds from `since` to the first response `marker` after it."""
        seen: list[float] = []

        def found() -> bool:
            seen[:] = [at for at, body in self.log if body == marker and at >= since]
            return bool(seen)

        return seen[0] - since if poll(found, timeout) else None


def releases_round(venue, folder: str, rounds: int) -> tuple[list[float], list[float], RootLoop]:
    """(deploy seconds, rollback-to-old-served seconds, the loop)."""
    repo = git_app(os.path.join(folder, "repo"), "v0")
    act = venue.add_act("RelAct", f"file://{repo}", wsgi="app:application", force=True)
    act.start()
    act.deploy()  # release 1, of v0: each round then has one to roll back to
    loop = RootLoop(act.port)
    loop.log = []
    loop.start()
    deploys, rollbacks = [], []
    try:
        for n in range(1, rounds + 1):
            commit_app(repo, f"v{n}")
            started = time.monotonic()
            act.deploy()
            deploys.append(time.monotonic() - started)
            # uWSGI's fork-bomb guard sleeps 2 s when more workers than it has are
            # respawned within about a second: a rollback is not that quick after a deploy
            time.sleep(2)
            asked = time.monotonic()
            act.rollback()
            took = loop.first_after(f"v{n - 1}", asked)
            if took is not None:
                rollbacks.append(took)
            act.rollback(max(r.number for r in act.releases))  # forward again
            time.sleep(2)
    finally:
        loop.stop()
    return deploys, rollbacks, loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="saves per side (default 7)")
    parser.add_argument("--deploys", type=int, default=3, help="deploy+rollback rounds")
    args = arguments(parser, argv, rounds=1, deploys=1)

    from backstage.shortcuts import new_act, new_venue

    with scratch("bsd-") as folder, production_in(folder) as production:
        venue = new_venue("DevVenue", folder, production)
        act = new_act(venue, "DevAct", start=False, force=True)
        package = act.spec.package
        plain_dir = os.path.join(folder, "plain")
        shutil.copytree(act.path, plain_dir, ignore=shutil.ignore_patterns("act.toml"))
        act_urls = os.path.join(act.path, package, "urls.py")
        plain_urls = os.path.join(plain_dir, package, "urls.py")
        save(act_urls, "start")
        save(plain_urls, "start")
        act.start()
        act.set("watch=true")
        manager_log = production.layout.manager_log
        poll(lambda: "DevAct: watching" in open(manager_log).read(), 30)

        port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("BACKSTAGE_HOME", None)
        runserver = subprocess.Popen(
            [venue.python, "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=plain_dir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(folder, "runserver.log"), "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        try:
            wait_for_ok(port, 60, "/hello")
            loops = {"backstage": Loop(act.port).start(), "runserver": Loop(port).start()}
            poll(lambda: all("start" in loop.first_seen for loop in loops.values()), 30)
            took: dict[str, list[float]] = {"runserver": []}
            took = {
                "backstage": rounds_of(loops["backstage"], act_urls, args.rounds, "b", 2.5),
                "runserver": rounds_of(loops["runserver"], plain_urls, args.rounds, "r", 2.5),
            }
            for loop in loops.values():
                loop.stop()
            with open(act.log_path, errors="replace") as log:
                checks = [
                    float(line.rsplit("(pre-flight ", 1)[1].split()[0])
                    for line in log
                    if line.startswith("[backstage]") and "(pre-flight " in line
                ]
        finally:
            stop_process(runserver)
            if len(took["runserver"]) < args.rounds:
                with open(os.path.join(folder, "runserver.log"), errors="replace") as log:
                    print("runserver said:\n" + log.read()[-3000:], file=sys.stderr)
        deploys, rollbacks, release_loop = releases_round(venue, folder, args.deploys)

    print(f"Save to first response with the new code, {args.rounds} saves each, one run")
    rows = []
    for kind, values in took.items():
        loop = loops[kind]
        rows.append(
            [
                kind,
                seconds(median(values)) if values else "-",
                seconds(min(values)) if values else "-",
                seconds(max(values)) if values else "-",
                f"{loop.failed} of {loop.requests}",
            ]
        )
    print_table(["", "median", "min", "max", "failed requests"], rows)
    if checks:
        print(f"of which the pre-flight: median {median(checks):.2f} s")
    ours, theirs = median(took["backstage"]), median(took["runserver"])
    ratio = ours / theirs
    met = ours < TARGET_SECONDS and ratio <= TARGET_RATIO and loops["backstage"].failed == 0
    print(
        f"backstage {ours:.2f} s, runserver {theirs:.2f} s, ratio {ratio:.2f} "
        f"(targets < {TARGET_SECONDS} s and <= {TARGET_RATIO}, 0 failed: "
        f"{'met' if met else 'NOT met'}); failed: backstage {loops['backstage'].failed}, "
        f"runserver {loops['runserver'].failed}"
    )
    print()
    print(f"Releases of a git Act, {args.deploys} deploys and rollbacks, under a request loop")
    print_table(
        ["", "median", "min", "max"],
        [
            ["deploy (build, check, switch)"] + [seconds(f(deploys)) for f in (median, min, max)],
            ["rollback -> old release served"]
            + [seconds(f(rollbacks)) if rollbacks else "-" for f in (median, min, max)],
        ],
    )
    worst = max(rollbacks) if rollbacks else float("inf")
    print(
        f"releases: {release_loop.failed} failed of {release_loop.requests}; rollback "
        f"served the old release in at most {worst:.2f} s (targets 0 failed, < 2 s: "
        f"{'met' if release_loop.failed == 0 and worst < 2 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
