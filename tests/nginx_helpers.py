"""A private nginx serving what `backstage nginx` wrote, and wrk's figures: what the
nginx tests and the benchmarks (routing.py, https.py) drive alike."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"

CONF = """\
{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {include};
}}
"""


def nginx_command(folder: str, include: str, connections: int = 64) -> list[str]:
    """Write `folder`/nginx.conf, a foreground nginx of one worker that keeps all its
    files in `folder` and serves `include` (what `backstage nginx` printed); the command
    that runs it (add `-t` to check it)."""
    conf = os.path.join(folder, "nginx.conf")
    # nginx workers must reach run/ (0700): they run as the Production's user
    user = "user root;" if os.geteuid() == 0 else ""
    with open(conf, "w") as out:
        out.write(CONF.format(d=folder, include=include, user=user, connections=connections))
    return [NGINX, "-p", folder, "-c", conf, "-e", os.path.join(folder, "error.log")]


def stop_nginx(server: subprocess.Popen[bytes]) -> None:
    """Stop an nginx started from `nginx_command`, killing it after 10 s, and reap it."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def wrk_command(url: str, host: str, seconds: float, connections: int) -> list[str]:
    """wrk with two threads and latency figures, each request on a connection of its own
    (the Act and the router close every connection, and say so)."""
    return [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency",
            "-H", f"Host: {host}", "-H", "Connection: close", url]  # fmt: skip


def wrk_figures(output: str, target: str) -> tuple[float, float]:
    """(requests/s, p99 in ms) from wrk's output; RuntimeError when it saw a failed request
    (wrk prints socket errors and non-2xx/3xx counts only when there are some)."""
    if re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors:", output):
        raise RuntimeError(f"wrk saw failed requests against {target}:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
