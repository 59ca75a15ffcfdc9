"""What observing a Production from elsewhere costs, with 50 running Acts.

scrape      GET /metrics from MetricsServer: a Snapshot read and rendered per scrape
refresh     the dashboard's refresh: its sampler's reading (every interval), and a
            page's GET /api/snapshot (served from the last reading)
CPU         this process's CPU over `--seconds` with the dashboard sampling every 2 s
            and one page polling every 2 s

  python benchmarks/observe.py [--acts 50] [--rounds 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import time
import urllib.request
from collections.abc import Sequence

from _common import arguments, median, poll, print_table, production_in, scratch


def get(url: str, token: str = "") -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = arguments(parser, argv, acts=2, rounds=2, seconds=3.0)

    from backstage.shortcuts import new_venue
    from backstage.ui.dashboard import Dashboard, read_token
    from backstage.ui.httpd import MetricsServer

    with scratch("bso-") as folder, production_in(folder) as production:
        venue = new_venue("Bench", folder, production)
        acts = [venue.new_act(f"A{i:02d}", processes=1, start=False) for i in range(args.acts)]
        for act in acts:
            act.manager.declare(enabled=True)
        production.up()
        production.manager.poke()

        def playing() -> bool:
            rows = production.snapshot().acts
            return all(row.state == "running" for row in rows)

        if not poll(playing, 300.0, 0.5):
            raise RuntimeError("the Acts did not all play within 300 s")

        metrics = MetricsServer("127.0.0.1:0", production.snapshot).start()
        dashboard = Dashboard(
            "127.0.0.1:0",
            os.path.join(folder, "token"),
            production.snapshot,
            lambda key, action: None,
        ).start()
        token = read_token(dashboard.token_path) or ""
        try:
            rows = []
            for name, action in (
                ("GET /metrics", lambda: get(metrics.url + "/metrics")),
                ("dashboard sampler reading", dashboard.sample),
                ("GET /api/snapshot", lambda: get(dashboard.url + "/api/snapshot", token)),
            ):
                action()
                walls, cpus = [], []
                for _ in range(args.rounds):
                    cpu, wall = time.process_time(), time.perf_counter()
                    action()
                    walls.append(time.perf_counter() - wall)
                    cpus.append(time.process_time() - cpu)
                rows.append(
                    (name, f"{median(walls) * 1000:.1f} ms", f"{median(cpus) * 1000:.1f} ms")
                )
            size = len(get(metrics.url + "/metrics"))
            cpu, wall = time.process_time(), time.monotonic()
            deadline = wall + args.seconds
            while time.monotonic() < deadline:
                get(dashboard.url + "/api/snapshot", token)
                time.sleep(2.0)  # a page's refresh interval
            share = (time.process_time() - cpu) / (time.monotonic() - wall) * 100
        finally:
            dashboard.stop()
            metrics.stop()
        print_table(("what", "wall (median)", "CPU (median)"), rows)
        print(f"/metrics is {size} bytes for {args.acts} Acts")
        print(f"dashboard open, sampling every 2 s, one page polling: {share:.1f} % of a core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
