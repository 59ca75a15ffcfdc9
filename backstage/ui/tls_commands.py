"""Commands on the hosts' certificates, served by the router's TLS listener (`https`)."""

from __future__ import annotations

import json

import click

from ..control.host.acme import AcmeError
from ..control.host.certificates import HostCert
from ..errors import InvalidSetting
from ..production import Production
from .options import pass_production


@click.group()
def tls() -> None:
    """Certificates of the booked hosts, served over HTTPS by the router (SNI)."""


@tls.command("import")
@click.argument("host")
@click.argument("cert", type=click.Path(dir_okay=False))
@click.argument("key", type=click.Path(dir_okay=False))
@click.option("--chain", default="", type=click.Path(dir_okay=False), help="The intermediates.")
@pass_production
def tls_import(production: Production, host: str, cert: str, key: str, chain: str) -> None:
    """Serve the certificate in CERT, with its private KEY, for HOST."""
    found = production.import_certificate(host, cert, key, chain)
    assert found.info is not None  # checked as it was installed
    click.echo(f"{found.host}: {found.info.issuer}, until {found.info.not_after:%Y-%m-%d}")
    if not production.spec.https:
        click.echo('served once production.toml says https = "ADDR:PORT" (e.g. "0.0.0.0:443")')


@tls.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_production
def tls_ls(production: Production, as_json: bool) -> None:
    """Each host's certificate (source, issuer, expiry, an error if it does not load),
    and ACME's last error and next try for a host it could not get one for."""
    acme = production.router.acme
    certs = {c.host: c for c in production.certificates.all()}
    found = []
    for host in sorted(set(certs) | set(acme.tried())):
        cert = certs.get(host)
        row = cert.to_json() if cert else HostCert(host, "acme", None).to_json()
        attempt = acme.attempt(host).to_json()
        row["last_error"], row["next_try"] = attempt["error"], attempt["next_try"]
        found.append(row)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = [("HOST", "SOURCE", "ISSUER", "NOT AFTER", "ERROR")] + [_row(r) for r in found]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _row(found: dict[str, object]) -> tuple[str, str, str, str, str]:
    error = found["error"] or found["last_error"]
    if found["last_error"]:
        error = f"{error} (next try {found['next_try']})"
    return (
        str(found["host"]),
        str(found["source"]),
        str(found["issuer"] or "-"),
        str(found["not_after"] or "-"),
        str(error or "-"),
    )


@tls.command("renew")
@click.argument("host", required=False)
@pass_production
def tls_renew(production: Production, host: str | None) -> None:
    """Renew HOST's ACME certificate now (without HOST: every ACME one), retries waiting
    or not; what serves changes only if a new one is issued."""
    acme = production.router.acme
    if not acme.enabled():
        raise InvalidSetting(
            'renewing needs https = "ADDR:PORT" and an [acme] table in production.toml'
        )
    hosts = (
        [host.lower()]
        if host
        else [c.host for c in production.certificates.all() if c.source == "acme"]
    )
    failed = 0
    for name, error in acme.obtain_all(acme.due(hosts, force=True)).items():
        if error:
            failed += 1
            click.echo(f"{name}: not renewed: {error}", err=True)
        else:
            click.echo(f"{name}: renewed")
    if failed:
        raise AcmeError(f"{failed} not renewed; the certificates that served still serve")


@tls.command("rm")
@click.argument("host")
@pass_production
def tls_rm(production: Production, host: str) -> None:
    """Stop serving HOST's certificate and remove its files; HTTP serves it again."""
    production.certificates.remove(host)
    production.manager.poke()  # the router, which reads each pair once, is replaced
