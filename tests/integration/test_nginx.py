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
from tests.nginx_helpers import nginx_command, stop_nginx

# No skip when nginx is missing: `./run test` installs it, and a skip would hide that
# the set-up failed.
pytestmark = [pytest.mark.nginx]


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
    os.makedirs(alpha.static_root, exist_ok=True)  # a scaffold's versions link it
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
    args = nginx_command(nginx_dir, include)
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
        stop_nginx(server)
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
    args = nginx_command(nginx_dir, os.path.join(out, "backstage.conf"))
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
        stop_nginx(server)


def _answers(probe) -> object:
    try:
        return probe()
    except OSError:
        return False
