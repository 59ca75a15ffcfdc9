"""What TLS costs through the router: one Act served four ways in one run.

  router-http   wrk against the router's HTTP port, Host: the booked host
  router-https  wrk against the router's TLS listener (`https`), SNI the booked host
  nginx-http    wrk against a private nginx from `backstage nginx`
  nginx-https   wrk against its `listen ssl` server, the same certificate

Every request opens a connection of its own (the Act and the router close each one),
so the TLS runs measure a full handshake per request. wrk names the host by SNI from
its URL: it runs in a mount namespace of its own whose /etc/hosts says the booked host
is 127.0.0.1 (root, `unshare -m`), nothing else on the machine sees that. Rounds
alternate the paths; medians of requests/s and p99 are reported. Target: router-https
at least 0.8 of nginx-https in requests/s.

    python benchmarks/https.py [--rounds N] [--seconds S] [--connections C]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import ssl
import subprocess
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
    start_nginx,
    stop_process,
)

from tests.nginx_helpers import wrk_command, wrk_figures

WRK = shutil.which("wrk") or "/usr/bin/wrk"
DOMAIN = "bench.example"
HOST = f"www.{DOMAIN}"
TARGET_RATIO = 0.8


def wrk(url: str, hosts: str, duration: float, connections: int) -> tuple[float, float]:
    """(requests/s, p99 in ms) of wrk against `url`, resolving HOST by `hosts`."""
    command = wrk_command(url, HOST, duration, connections)
    script = f"mount --bind {shlex.quote(hosts)} /etc/hosts && exec {shlex.join(command)}"
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    )  # fmt: skip
    return wrk_figures(done.stdout, url)


def tls_answers(port: int, served: bytes = b"") -> bool:
    """A 200 over TLS, SNI the booked host; with `served` (DER), by that certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            with context.wrap_socket(raw, server_hostname=HOST) as conn:
                if served and conn.getpeercert(binary_form=True) != served:
                    return False  # the router before the certificate: replaced soon
                conn.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
                return b" 200 " in conn.recv(16)
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=16)
    options = arguments(parser, argv, rounds=1, seconds=1.0)

    from backstage.model.certificate import self_signed
    from backstage.shortcuts import new_venue

    with scratch("bst-") as folder, production_in(folder) as production:
        tls_port = free_port()
        # no 308: the plain runs serve the page too
        production.declare(
            router=f"127.0.0.1:{free_port()}", https=f"127.0.0.1:{tls_port}", https_redirect=False
        )
        venue = new_venue("BenchVenue", folder, production)
        venue.add_domain(DOMAIN)
        act = venue.new_act("Bench", processes=2)
        act.book(HOST)
        cert, key = self_signed(HOST)
        production.certificates.install(HOST, cert, key)
        router_port = production.router.port
        served = ssl.PEM_cert_to_DER_cert(cert.decode())
        if not poll(lambda: tls_answers(tls_port, served), 60.0):
            raise TimeoutError("the router did not serve TLS within 60 s")
        poll(lambda: http_status(router_port, host=HOST) == 200, 10.0)
        hosts = os.path.join(folder, "hosts")
        with open(hosts, "w") as out:
            out.write(f"127.0.0.1 localhost\n127.0.0.1 {HOST}\n")
        nginx_dir = os.path.join(folder, "ngx")
        os.makedirs(nginx_dir)
        nginx_port, nginx_tls = free_port(), free_port()
        nginx = start_nginx(
            production, nginx_dir, lambda: tls_answers(nginx_tls),
            f"127.0.0.1:{nginx_port}", f"127.0.0.1:{nginx_tls}",
        )  # fmt: skip
        try:
            targets = {
                "router-http": f"http://{HOST}:{router_port}/",
                "router-https": f"https://{HOST}:{tls_port}/",
                "nginx-http": f"http://{HOST}:{nginx_port}/",
                "nginx-https": f"https://{HOST}:{nginx_tls}/",
            }
            for url in targets.values():  # warm every path once
                wrk(url, hosts, 1.0, options.connections)
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
            for _ in range(options.rounds):
                for name, url in targets.items():
                    results[name].append(wrk(url, hosts, options.seconds, options.connections))
        finally:
            stop_process(nginx)

    base = median([r for r, _ in results["nginx-https"]])
    rows = []
    for name, runs in results.items():
        rps, p99 = median([r for r, _ in runs]), median([p for _, p in runs])
        rows.append((name, f"{rps:.0f}", f"{rps / base:.2f}", f"{p99:.1f}"))
    print(f"{options.rounds} rounds x {options.seconds:g} s, wrk -t2 -c{options.connections}, "
          "a connection per request, Act with 2 processes, ECDSA P-256 certificate")  # fmt: skip
    print_table(("path", "req/s", "x nginx-https", "p99 ms"), rows)
    ratio = median([r for r, _ in results["router-https"]]) / base
    http = median([r for r, _ in results["router-http"]])
    print()
    print(
        f"router-https/nginx-https {ratio:.2f} (target >= {TARGET_RATIO}); "
        f"router-https/router-http {median([r for r, _ in results['router-https']]) / http:.2f}"
    )

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
