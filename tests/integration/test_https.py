"""HTTPS through the router: a TLS listener beside `router`, a certificate per host by
SNI, the 308 from plain HTTP, imports refused for each bad input. Real Emperor, real
Acts, real TLS verified against a CA the test makes."""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat

import pytest

from backstage.model.certificate import BadCertificate
from tests.conftest import cli, cli_quiet, run_cli
from tests.gigs_helpers import named_act
from tests.helpers import free_port, http_get, poll
from tests.tls_helpers import (
    TestCA,
    http_raw,
    https_get,
    https_headers,
    resumed,
    served_subject,
)


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(str(tmp_path / "ca"))


def test_https_by_sni_and_the_308(production, venue, ca, request):
    tls = free_port()
    production.declare(https=f"127.0.0.1:{tls}")
    venue.add_domain("example.com")
    venue.add_domain("example.org")
    venue.declare(hsts=("example.com",))  # HSTS for example.com's hosts, not example.org's
    request.addfinalizer(lambda: venue.declare(hsts=()))  # the Venue is the session's
    alpha = named_act(venue, "Alpha")
    beta = named_act(venue, "Beta")
    alpha.book("alpha.example.com")
    beta.book("beta.example.com")
    port = production.router.port

    cert, key = ca.leaf("alpha.example.com")
    production.import_certificate("alpha.example.com", cert, key, chain=ca.chain_path)
    wild, wild_key = ca.leaf("*.example.com")
    production.import_certificate("beta.example.com", wild, wild_key, chain=ca.chain_path)
    home = production.layout
    assert stat.S_IMODE(os.stat(home.cert_key_path("alpha.example.com")).st_mode) == 0o600

    # each host its own certificate, the chain verified against the CA, the Act's answer
    # (a new certificate replaces the router: until the Acts are announced to the new
    # one, it answers their hosts 503 with Retry-After)
    alpha_ok = (200, "Alpha", "alpha.example.com")
    poll(lambda: _ok(lambda: https_get(tls, "alpha.example.com", ca) == alpha_ok), timeout=20)
    beta_ok = (200, "Beta", "*.example.com")
    poll(lambda: _ok(lambda: https_get(tls, "beta.example.com", ca) == beta_ok), timeout=20)
    # the routers the certificates replaced take connections with their old ones while
    # they drain (DRAIN_LIMIT at most): what follows is about the last one alone
    _one_router(production)
    # TLS 1.2 only, and a session resumed (1.3 is refused: see stageset.tls_options)
    poll(
        lambda: _ok(lambda: resumed(tls, "alpha.example.com", ca.context()) == ("TLSv1.2", True)),
        15,
    )
    only_tls13 = ca.context()
    only_tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError):
        resumed(tls, "alpha.example.com", only_tls13)
    hsts = "Strict-Transport-Security"
    assert https_headers(tls, "alpha.example.com", ca)[hsts] == "max-age=31536000"
    org, org_key = ca.leaf("alpha.example.org")
    alpha.book("alpha.example.org")
    production.import_certificate("alpha.example.org", org, org_key, chain=ca.chain_path)
    org_ok = (200, "Alpha", "alpha.example.org")
    poll(lambda: _ok(lambda: https_get(tls, "alpha.example.org", ca) == org_ok), timeout=20)
    _one_router(production)
    assert hsts not in https_headers(tls, "alpha.example.org", ca)
    assert hsts not in http_raw(port, "alpha.example.com", "/.well-known/acme-challenge/x")[1]
    # a host without one: the default, self-signed
    assert served_subject(tls, "nobody.example.com") == "backstage.invalid"

    # plain HTTP: a 308 to the same URL on https, path and query kept
    status, headers = http_raw(port, f"alpha.example.com:{port}", "/a/b?x=1&y=2")
    assert status == 308
    assert headers["Location"] == f"https://alpha.example.com:{tls}/a/b?x=1&y=2"
    # the Act's log says it is a 308 (a raw one was logged as a 500)
    line = poll(lambda: _logged(alpha.log_path, "GET /a/b?x=1&y=2 "), timeout=10)
    assert " 308) " in line and " 500) " not in line
    # but for ACME's challenge path, which the Act answers (here: its 404)
    status, _ = http_raw(port, "alpha.example.com", "/.well-known/acme-challenge/t0k3n")
    assert status == 404
    # a Host that walks out of the folder of marks tests no file elsewhere: no 308 for it
    assert http_raw(alpha.port, "../" * 12 + "etc/hostname", "/")[0] != 308
    # a host without a certificate is served over HTTP as before
    gamma = named_act(venue, "Gamma")
    gamma.book("gamma.example.com")
    assert http_get(port, host="gamma.example.com") == (200, "Gamma")

    # removed: plain HTTP again, and the default certificate for it
    production.certificates.remove("beta.example.com")
    production.manager.poke()  # as `tls rm` does: the router reads each pair once
    poll(lambda: http_get(port, host="beta.example.com") == (200, "Beta"), timeout=10)
    poll(lambda: _ok(lambda: served_subject(tls, "beta.example.com") == "backstage.invalid"), 20)

    # https_redirect = false: both answer, no 308
    production.declare(https_redirect=False)
    poll(lambda: http_get(port, host="alpha.example.com") == (200, "Alpha"), timeout=30)
    # the restarted Act announces its TLS key beside: a moment later, at most
    poll(lambda: _ok(lambda: https_get(tls, "alpha.example.com", ca)[:2] == (200, "Alpha")), 10)

    # https_tls13: TLS 1.3 beside, resumed too (the router is replaced for it)
    production.declare(https_tls13=True)
    tls13 = ("TLSv1.3", True)
    poll(lambda: _ok(lambda: resumed(tls, "alpha.example.com", only_tls13) == tls13), 30)


def _logged(path: str, text: str) -> str:
    """The last line of the log at `path` that holds `text`, or ""."""
    with open(path, errors="replace") as log:
        return next((line for line in reversed(log.readlines()) if text in line), "")


def test_a_corrupt_certificate_and_a_killed_router(production, venue, ca):
    tls = free_port()
    production.declare(https=f"127.0.0.1:{tls}")
    venue.add_domain("example.com")
    act = named_act(venue, "Solo")
    hosts = ("one.example.com", "two.example.com")
    for host in hosts:
        act.book(host)
        cert, key = ca.leaf(host)
        production.import_certificate(host, cert, key, chain=ca.chain_path)
    poll(lambda: _ok(lambda: https_get(tls, hosts[1], ca)[:2] == (200, "Solo")), timeout=20)

    # a corrupt file: that host falls back to the default certificate, the other serves
    with open(production.layout.cert_path(hosts[0]), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    poll(lambda: _ok(lambda: served_subject(tls, hosts[0]) == "backstage.invalid"), timeout=20)
    poll(lambda: _ok(lambda: https_get(tls, hosts[1], ca)[:2] == (200, "Solo")), timeout=20)
    (listed,) = [c for c in production.certificates.all() if c.host == hosts[0]]
    assert listed.info is None and "does not load" in listed.error

    # the router killed -9: back, it serves every certificate again
    cert, key = ca.leaf(hosts[0])
    production.import_certificate(hosts[0], cert, key, chain=ca.chain_path)
    poll(lambda: _ok(lambda: https_get(tls, hosts[0], ca)[:2] == (200, "Solo")), timeout=20)
    # that answer may be the replaced router's, still draining with the pair it read:
    # the one to kill is the new one, alone once the others are gone
    _one_router(production)
    pid = poll(lambda: getattr(production.router.stats(), "pid", 0), timeout=20)
    os.kill(pid, signal.SIGKILL)
    for host in hosts:
        poll(lambda h=host: _ok(lambda: https_get(tls, h, ca) == (200, "Solo", h)), timeout=30)


def test_imports_refused(production, venue, ca, tmp_path):
    production.declare(https=f"127.0.0.1:{free_port()}")
    cert, key = ca.leaf("a.example.com")
    _, other_key = ca.leaf("b.example.com")
    with pytest.raises(BadCertificate, match="key does not match"):
        production.import_certificate("a.example.com", cert, other_key)
    with pytest.raises(BadCertificate, match=r"names \(a.example.com\) do not cover c.example.com"):
        production.import_certificate("c.example.com", cert, key)
    old, old_key = ca.leaf("a.example.com", days=-1, start_days=-30)
    with pytest.raises(BadCertificate, match="expired"):
        production.import_certificate("a.example.com", old, old_key)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(BadCertificate, match="no PEM certificate"):
        production.import_certificate("a.example.com", str(junk), key)
    wild, wild_key = ca.leaf("*.example.com")
    with pytest.raises(BadCertificate, match="do not cover"):  # one label only
        production.import_certificate("x.y.example.com", wild, wild_key)
    assert production.certificates.all() == []  # nothing written


def _one_router(production) -> None:
    """Wait until the Emperor lists one router: those replaced have drained and gone."""

    def routers() -> int:
        stats = production.stage.stats()
        return -1 if stats is None else sum(".router-" in v.id for v in stats.vassals)

    poll(lambda: routers() == 1, timeout=30)


def _ok(probe) -> object:
    try:
        return probe()
    except OSError:
        return False


def test_tls_commands(production, venue, ca, caplog):
    home = production.home
    production.declare(https=f"127.0.0.1:{free_port()}")
    venue.add_domain("example.com")
    act = named_act(venue, "Cli", start=False)
    act.book("www.example.com")
    cert, key = ca.leaf("www.example.com")
    _, other_key = ca.leaf("other.example.com")

    refused = cli_quiet(caplog, "tls", "import", "www.example.com", cert, other_key, home=home)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "key does not match" in refused.stderr
    assert "PRIVATE" not in refused.stderr and "Traceback" not in refused.stderr
    missing = cli_quiet(caplog, "tls", "import", "www.example.com", cert, "/nonexistent", home=home)
    assert missing.returncode == 1 and "cannot read the key file" in missing.stderr

    done = run_cli(
        "tls", "import", "www.example.com", cert, key, "--chain", ca.chain_path, home=home
    )
    assert "www.example.com: Test Intermediate, until" in done.stdout
    with open(key) as f:
        secret = f.read()
    (listed,) = json.loads(cli("tls", "ls", "--json", home=home).stdout)
    assert listed["host"] == "www.example.com" and listed["source"] == "imported"
    assert listed["issuer"] == "Test Intermediate" and listed["not_after"].endswith("Z")
    assert listed["error"] is None
    gigs = {g["host"]: g for g in json.loads(cli("gigs", "--json", home=home).stdout)}
    assert gigs["www.example.com"]["tls"] == {
        "source": "imported",
        "issuer": "Test Intermediate",
        "not_after": listed["not_after"],
    }
    text = cli("tls", "ls", home=home).stdout
    assert "www.example.com  imported  Test Intermediate" in text
    logs = "".join(
        open(os.path.join(production.layout.log_dir, name)).read()
        for name in os.listdir(production.layout.log_dir)
    )
    assert secret.splitlines()[1] not in logs + text + done.stdout

    listed = json.loads(cli("status", "--json", home=home).stdout)["certificates"]
    assert [(c["host"], c["source"], c["warning"]) for c in listed] == [
        ("www.example.com", "imported", None)
    ]
    metrics = cli("metrics", home=home).stdout
    assert 'backstage_certificate_expiry_timestamp_seconds{host="www.example.com"' in metrics

    cli("tls", "rm", "www.example.com", home=home)
    assert json.loads(cli("tls", "ls", "--json", home=home).stdout) == []
    gone = cli_quiet(caplog, "tls", "rm", "www.example.com", home=home)
    assert gone.returncode == 1 and "has no certificate" in gone.stderr
    gigs = {g["host"]: g for g in json.loads(cli("gigs", "--json", home=home).stdout)}
    assert gigs["www.example.com"]["tls"] is None
