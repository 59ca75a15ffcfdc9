"""What TLS costs through the router: one Act served four ways in one run.

  router-http   wrk against the router's HTTP port, Host: the booked host
  router-https  wrk against the router's TLS listener (`https`), SNI the booked host
  nginx-http    wrk against a private nginx from `backstage nginx`
  nginx-https   wrk against its `listen ssl` server, the same certificate

Also: for each of --acme new hosts, the seconds from act.book(HOST) to its first 200
over plain HTTP through the router and to its first HTTPS 200 whose chain verifies
against the root of an ACME CA (Pebble on loopback, with pebble-challtestsrv as its DNS,
HTTP-01 through the router), after the wrk runs; and what each front end's processes
spend in CPU per request.

Every request opens a connection of its own (the Act and the router close each one),
so the TLS runs measure a full handshake per request. wrk names the host by SNI from
its URL: it runs in a mount namespace of its own whose /etc/hosts says the booked host
is 127.0.0.1 (root, `unshare -m`), nothing else on the machine sees that. Rounds
alternate the paths; medians of requests/s and p99 are reported. Target: router-https
at least 0.8 of nginx-https in requests/s.

    python benchmarks/https.py [--rounds N] [--seconds S] [--connections C] [--acme N] [--tls13]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence

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
from tests.tls_helpers import resumed

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


def routers(production) -> int:  # type: ignore[no-untyped-def]
    """How many router vassals the Emperor lists."""
    stats = production.stage.stats()
    return -1 if stats is None else sum(".router-" in v.id for v in stats.vassals)


def speaks(port: int) -> str:
    """The protocol a TLS listener speaks, and whether a client that keeps its session (as
    wrk and browsers do) resumes it: a resumed TLS 1.2 session costs no key exchange, a
    resumed TLS 1.3 one does."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    version, again = resumed(port, HOST, context)
    return f"{version}, {'resumed' if again else 'not resumed'}"


def cpu_seconds(match: Callable[[int, str], bool]) -> float:
    """User and system CPU seconds so far of the processes `match(pid, cmdline)` picks."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if match(int(entry), cmdline):
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def verified_200(port: int, host: str, root: ssl.SSLContext) -> bool:
    """A 200 over TLS, SNI `host`, its chain verified against `root`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
            with root.wrap_socket(raw, server_hostname=host) as conn:
                conn.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                return b" 200 " in conn.recv(16)
    except OSError:  # no certificate yet (the default one does not verify), or a 503
        return False


def book_to_https(act, production, tls_port: int, host: str, root) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds to the first HTTP 200, to the first verified HTTPS 200) after book."""
    start = time.perf_counter()
    act.book(host, timeout=30)
    router = production.router.port
    if not poll(lambda: http_status(router, host=host) == 200, 30.0):
        raise TimeoutError(f"{host} did not answer 200 through the router within 30 s")
    http = time.perf_counter() - start
    if not poll(lambda: verified_200(tls_port, host, root), 120.0):
        raise TimeoutError(f"{host} did not answer a verified HTTPS 200 within 120 s")
    return http, time.perf_counter() - start


def measure_acme(act, production, tls_port: int, folder: str, count: int):  # type: ignore[no-untyped-def]
    """Book `count` new hosts with Pebble as the ACME CA, one after the other."""
    from tests.pebble_helpers import Pebble
    from tests.tls_helpers import TestCA

    ca = TestCA(os.path.join(folder, "pebble-ca"))
    pebble = Pebble(folder, production.router.port, ca)
    try:
        production.declare(acme={"directory": pebble.directory, "ca_bundle": ca.root_path})
        root = ssl.create_default_context(cadata=pebble.root())
        return [
            book_to_https(act, production, tls_port, f"a{i}.{DOMAIN}", root) for i in range(count)
        ]
    finally:
        pebble.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--acme", type=int, default=3, help="hosts booked with an ACME CA")
    parser.add_argument("--tls13", action="store_true", help="the router offers TLS 1.3 too")
    options = arguments(parser, argv, rounds=1, seconds=1.0, acme=1)

    from backstage.model.certificate import self_signed
    from backstage.shortcuts import new_venue

    with scratch("bst-") as folder, production_in(folder) as production:
        tls_port = free_port()
        # no 308: the plain runs serve the page too
        production.declare(
            router=f"127.0.0.1:{free_port()}",
            https=f"127.0.0.1:{tls_port}",
            https_redirect=False,
            https_tls13=options.tls13,
        )
        venue = new_venue("BenchVenue", folder, production)
        venue.add_domain(DOMAIN)
        act = venue.new_act("Bench", processes=2)
        act.book(HOST)
        cert, key = self_signed(HOST)
        production.certificates.install(HOST, cert, key)
        production.manager.poke()  # as import_certificate does: a resting Manager waits
        router_port = production.router.port
        served = ssl.PEM_cert_to_DER_cert(cert.decode())
        if not poll(lambda: tls_answers(tls_port, served), 60.0):
            raise TimeoutError("the router did not serve TLS within 60 s")
        # and the router it replaced has drained and stopped: its processes' CPU would
        # leave the sums mid-run
        if not poll(lambda: routers(production) == 1, 30.0):
            raise TimeoutError("the replaced router did not stop within 30 s")
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
            spoken = {"router-https": speaks(tls_port), "nginx-https": speaks(nginx_tls)}
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
            # the CPU each front end spends per request: its processes' user + system
            # time over a run (the router's by its process names, nginx's by its pid)
            router_name = f"{production.layout.prefix} router"
            owners: dict[str, Callable[[int, str], bool]] = {
                "router": lambda pid, cmdline: cmdline.startswith(router_name),
                "nginx": lambda pid, cmdline: pid == nginx.pid or _parent(pid) == nginx.pid,
            }
            cpu: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(options.rounds):
                for name, url in targets.items():
                    before = cpu_seconds(owners[name.split("-")[0]])
                    rps, p99 = wrk(url, hosts, options.seconds, options.connections)
                    used = cpu_seconds(owners[name.split("-")[0]]) - before
                    results[name].append((rps, p99))
                    cpu[name].append(used / (rps * options.seconds) * 1000.0)
        finally:
            stop_process(nginx)
        acme = measure_acme(act, production, tls_port, folder, options.acme)

    base = median([r for r, _ in results["nginx-https"]])
    rows = []
    for name, runs in results.items():
        rps, p99 = median([r for r, _ in runs]), median([p for _, p in runs])
        ms, tls = median(cpu[name]), spoken.get(name, "")
        rows.append((name, f"{rps:.0f}", f"{rps / base:.2f}", f"{p99:.1f}", f"{ms:.2f}", tls))
    print(f"{options.rounds} rounds x {options.seconds:g} s, wrk -t2 -c{options.connections}, "
          "a connection per request, Act with 2 processes, ECDSA P-256 certificate")  # fmt: skip
    print_table(("path", "req/s", "x nginx-https", "p99 ms", "front CPU ms/req", "TLS"), rows)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    ratio = median([r for r, _ in results["router-https"]]) / base
    http = median([r for r, _ in results["router-http"]])
    print()
    print(
        f"router-https/nginx-https {ratio:.2f} (target >= {TARGET_RATIO}); "
        f"router-https/router-http {median([r for r, _ in results['router-https']]) / http:.2f}"
    )
    if acme:
        https_times = sorted(t for _, t in acme)
        print(
            f"book -> first HTTP 200: median {median([h for h, _ in acme]):.2f} s; "
            f"-> first HTTPS 200 verified against Pebble's root: median "
            f"{median(https_times):.2f} s (of {len(acme)}: "
            + ", ".join(f"{t:.2f}" for t in https_times)
            + ")"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
