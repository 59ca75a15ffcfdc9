"""What the router costs: one Act served three ways in one run, and how fast a booking goes live.

  direct   wrk against the Act's own http-socket (127.0.0.1:PORT)
  router   wrk against the Production's router, Host: the booked host
  nginx    wrk against a private nginx from `backstage nginx`, Host: the booked host
           (nginx passes to the Act's uwsgi socket)

Rounds alternate the three so that drift in the machine's load hits all alike;
the medians of requests/s and p99 latency are reported, and their ratios to
direct. Target: the router at least 0.8 of direct in requests/s.

Also: seconds from act.book(HOST) to the first 200 through the router for HOST
(a playing Act is announced to the router at once: no reload since the "Many
hosts" work). Target under 0.2 s.

    python benchmarks/routing.py [--rounds N] [--seconds S] [--connections C]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Sequence

from _common import (
    arguments,
    free_port,
    http_status,
    median,
    poll,
    print_table,
    production_in,
    scratch,
    seconds,
    start_nginx,
    stop_process,
)

from tests.nginx_helpers import wrk_command, wrk_figures

DOMAIN = "bench.example"
HOST = f"www.{DOMAIN}"
TARGET_RATIO = 0.8
TARGET_BOOK = 0.2


def wrk(port: int, host: str, duration: float, connections: int) -> tuple[float, float]:
    """(requests/s, p99 in ms) of wrk against 127.0.0.1:port with that Host header."""
    url = f"http://127.0.0.1:{port}/"
    done = subprocess.run(
        wrk_command(url, host, duration, connections),
        capture_output=True, text=True, timeout=duration + 60, check=True,
    )  # fmt: skip
    return wrk_figures(done.stdout, f"{url} (Host: {host})")


def book_to_first_200(act, router_port: int, host: str) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    act.book(host, timeout=30)
    if not poll(lambda: http_status(router_port, host=host) == 200, 30.0):
        raise TimeoutError(f"{host} did not answer 200 through the router within 30 s")
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--bookings", type=int, default=3, help="book() timings to take")
    options = arguments(parser, argv, rounds=1, seconds=1.0, bookings=1)

    from backstage.shortcuts import new_venue

    with scratch("bsr-") as folder, production_in(folder) as production:
        production.declare(router=f"127.0.0.1:{free_port()}")
        venue = new_venue("BenchVenue", folder, production)
        venue.add_domain(DOMAIN)
        act = venue.new_act("Bench", processes=2)
        router_port = production.router.port
        booked = [
            book_to_first_200(act, router_port, f"b{i}.{DOMAIN}") for i in range(options.bookings)
        ]
        act.book(HOST)
        nginx_dir = os.path.join(folder, "ngx")
        os.makedirs(nginx_dir)
        nginx_port = free_port()
        nginx = start_nginx(
            production, nginx_dir, lambda: http_status(nginx_port, host=HOST) == 200,
            f"127.0.0.1:{nginx_port}",
        )  # fmt: skip
        try:
            targets = {
                "direct": (act.port, "localhost"),
                "router": (router_port, HOST),
                "nginx": (nginx_port, HOST),
            }
            for port, host in targets.values():  # warm every path once
                wrk(port, host, 1.0, options.connections)
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
            for _ in range(options.rounds):
                for name, (port, host) in targets.items():
                    results[name].append(wrk(port, host, options.seconds, options.connections))
        finally:
            stop_process(nginx)

    direct_rps = median([r for r, _ in results["direct"]])
    direct_p99 = median([p for _, p in results["direct"]])
    rows = []
    for name, runs in results.items():
        rps, p99 = median([r for r, _ in runs]), median([p for _, p in runs])
        rows.append((name, f"{rps:.0f}", f"{rps / direct_rps:.2f}", f"{p99:.1f}",
                     f"{p99 / direct_p99:.2f}"))  # fmt: skip
    print(f"{options.rounds} rounds x {options.seconds:g} s, wrk -t2 -c{options.connections}, "
          f"Act with 2 processes, Django's default page")  # fmt: skip
    print_table(("path", "req/s", "x direct", "p99 ms", "x direct"), rows)
    print()
    print_table(
        ("book() to first 200 via router", "seconds"),
        [(f"b{i}.{DOMAIN}", seconds(t)) for i, t in enumerate(booked)]
        + [("median", seconds(median(booked)))],
    )
    router_ratio = median([r for r, _ in results["router"]]) / direct_rps
    print()
    print(
        f"router/direct {router_ratio:.2f} (target >= {TARGET_RATIO}); "
        f"book to first 200 {median(booked):.3f} s (target < {TARGET_BOOK} s)"
    )

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
