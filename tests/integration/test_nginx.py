"""`backstage nginx` rendered, checked and served by a real nginx from Debian's packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.conftest import run_cli
from tests.gigs_helpers import named_act
from tests.helpers import free_port, http_get, poll

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# No skip when nginx is missing: `./run test` installs it, and a skip would hide that
# the set-up failed.
pytestmark = [pytest.mark.nginx]

CONF = """\
{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
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


@pytest.fixture
def nginx_dir():
    path = tempfile.mkdtemp(prefix="ngx", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_nginx_passes_each_host_to_its_act(production, venue, nginx_dir):
    venue.add_domain("example.com")
    alpha = named_act(venue, "Alpha")
    beta = named_act(venue, "Beta")
    alpha.book("alpha.example.com")
    beta.book("beta.example.com")
    os.makedirs(alpha.static_root)
    with open(os.path.join(alpha.static_root, "hello.txt"), "w") as static:
        static.write("static of Alpha\n")

    port = free_port()
    out = os.path.join(nginx_dir, "gigs")
    done = run_cli("nginx", "--out", out, "--listen", f"127.0.0.1:{port}", home=production.home)
    include = os.path.join(out, "backstage.conf")
    assert done.stdout.strip() == f"include {include};"
    assert sorted(os.listdir(os.path.join(out, "sites"))) == [
        "alpha.example.com.conf",
        "beta.example.com.conf",
    ]
    conf = os.path.join(nginx_dir, "nginx.conf")
    # nginx workers must reach run/ (0700): they run as the Production's user.
    user = "user root;" if os.geteuid() == 0 else ""
    with open(conf, "w") as f:
        f.write(CONF.format(d=nginx_dir, include=include, user=user))
    args = [NGINX, "-p", nginx_dir, "-c", conf, "-e", os.path.join(nginx_dir, "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr

    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: http_get(port, host="alpha.example.com") == (200, "Alpha"), timeout=10)
        assert http_get(port, host="beta.example.com") == (200, "Beta")
        assert http_get(port, "/static/hello.txt", host="alpha.example.com") == (
            200,
            "static of Alpha\n",
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None


def test_nginx_serves_the_certificates_and_the_308(production, venue, nginx_dir, tmp_path, request):
    from tests.tls_helpers import TestCA, http_raw, https_get, https_header_lines

    ca = TestCA(str(tmp_path / "ca"))
    venue.add_domain("example.com")
    venue.declare(hsts=("example.com",))
    request.addfinalizer(lambda: venue.declare(hsts=()))  # the Venue is the session's
    act = named_act(venue, "Alpha")
    act.book("alpha.example.com")
    act.book("plain.example.com")
    cert, key = ca.leaf("alpha.example.com")
    production.import_certificate("alpha.example.com", cert, key, chain=ca.chain_path)

    port, tls = free_port(), free_port()
    out = os.path.join(nginx_dir, "gigs")
    run_cli(
        "nginx", "--out", out, "--listen", f"127.0.0.1:{port}",
        "--listen-ssl", f"127.0.0.1:{tls}", home=production.home,
    )  # fmt: skip
    conf = os.path.join(nginx_dir, "nginx.conf")
    user = "user root;" if os.geteuid() == 0 else ""
    with open(conf, "w") as f:
        f.write(CONF.format(d=nginx_dir, include=os.path.join(out, "backstage.conf"), user=user))
    args = [NGINX, "-p", nginx_dir, "-c", conf, "-e", os.path.join(nginx_dir, "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: _answers(lambda: https_get(tls, "alpha.example.com", ca)), timeout=10)
        assert https_get(tls, "alpha.example.com", ca) == (200, "Alpha", "alpha.example.com")
        # HSTS over TLS, once (the Act's own is hidden), on what nginx serves itself too
        hsts = ("Strict-Transport-Security", "max-age=31536000")
        assert https_header_lines(tls, "alpha.example.com", ca).count(hsts) == 1
        assert hsts in https_header_lines(tls, "alpha.example.com", ca, "/static/none")
        assert "Strict-Transport-Security" not in http_raw(port, "alpha.example.com", "/")[1]
        status, headers = http_raw(port, "alpha.example.com", "/a?b=1")
        assert status == 308 and headers["Location"] == f"https://alpha.example.com:{tls}/a?b=1"
        # ACME's challenge path still goes to the Act (its 404), a host without one is HTTP
        assert http_raw(port, "alpha.example.com", "/.well-known/acme-challenge/x")[0] == 404
        assert http_get(port, host="plain.example.com") == (200, "Alpha")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _answers(probe) -> object:
    try:
        return probe()
    except OSError:
        return False
