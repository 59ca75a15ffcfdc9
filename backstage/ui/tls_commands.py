"""Commands on the hosts' certificates, served by the router's TLS listener (`https`)."""

from __future__ import annotations

import json

import click

from ..control.certificates import HostCert
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
    """Each host's certificate: source, issuer, expiry, and an error if it does not load."""
    found = production.certificates.all()
    if as_json:
        click.echo(json.dumps([c.to_json() for c in found], indent=2))
        return
    rows = [("HOST", "SOURCE", "ISSUER", "NOT AFTER", "ERROR")] + [_row(c) for c in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _row(cert: HostCert) -> tuple[str, str, str, str, str]:
    info = cert.info
    issuer = info.issuer if info else "-"
    until = f"{info.not_after:%Y-%m-%d %H:%M}" if info else "-"
    return (cert.host, cert.source, issuer, until, cert.error or "-")


@tls.command("rm")
@click.argument("host")
@pass_production
def tls_rm(production: Production, host: str) -> None:
    """Stop serving HOST's certificate and remove its files; HTTP serves it again."""
    production.certificates.remove(host)
