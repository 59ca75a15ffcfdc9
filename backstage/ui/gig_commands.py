"""Commands on Gigs: booking Acts at hosts, the live Gigs, nginx, and the Producer's DNS."""

from __future__ import annotations

import json
import os

import click

from ..control.managers import nginx as nginx_files
from ..files.fs import write_atomic
from ..production import Production
from .options import act_of, pass_production


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("host")
@pass_production
def book(production: Production, key: str, host: str) -> None:
    """Book an Act at HOST, a Venue domain or a subdomain of one."""
    target = act_of(production, key)
    target.book(host)
    click.echo(f"{target.key} booked at {target.hosts[-1]}")


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("host")
@pass_production
def unbook(production: Production, key: str, host: str) -> None:
    """Take an Act off HOST: out of the router first, then out of its config."""
    act_of(production, key).unbook(host)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_production
def gigs(production: Production, as_json: bool) -> None:
    """Live Gigs from the router's stats, and hosts booked but not playing."""
    snapshot = production.snapshot()
    found = [gig.as_dict() for gig in snapshot.gigs]
    certs = {c.host: c for c in production.certificates.all() if c.info is not None}
    for gig in found:
        cert = certs.get(str(gig["host"]))
        gig["tls"] = None if cert is None else _tls(cert.to_json())
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    router = snapshot.router
    click.echo(f"Router {router.address}: {'running' if router.running else 'down'}")
    rows = [("HOST", "ACTS", "NODES", "REQUESTS")]
    for gig in found:
        acts = ",".join(gig["acts"]) or f"not playing (booked: {','.join(gig['booked']) or '-'})"
        rows.append((gig["host"], acts, str(len(gig["nodes"])), str(gig["requests"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    nodes = [
        (gig["host"], n, r)
        for gig in found
        for n, r in zip(gig["nodes"], gig["node_requests"], strict=True)
    ]
    if nodes:
        click.echo("\nNODE  HOST  GIG  REQUESTS")
        for host, node, requests in nodes:
            click.echo(f"{node}  {_node_host(node)}  {host}  {requests}")


def _tls(cert: dict[str, object]) -> dict[str, object]:
    return {key: cert[key] for key in ("source", "issuer", "not_after")}


def _node_host(node: str) -> str:
    """The host a node runs on: its address's, or this one for a unix socket."""
    return node.rpartition(":")[0] if ":" in node else "this host"


@click.command()
@click.option("--out", default=None, help="Folder to write to (default: <home>/nginx).")
@click.option("--listen", default="80", show_default=True, help="nginx `listen` of each server.")
@click.option(
    "--listen-ssl",
    default="443",
    show_default=True,
    help="nginx `listen ... ssl` of each host with a certificate.",
)
@pass_production
def nginx(production: Production, out: str | None, listen: str, listen_ssl: str) -> None:
    """Render nginx server blocks for every booked host, and an include file; a host
    with a certificate gets a `listen 443 ssl` block with it, and a 308 to it."""
    include = nginx_files.write(
        production.crew, out or os.path.join(production.home, "nginx"), listen, listen_ssl
    )
    click.echo(f"include {include};")


@click.group()
def producer() -> None:
    """The Producer: PowerDNS zones in step with the Gigs (see production.toml)."""


@producer.command("sync")
@click.option("--dry-run", is_flag=True, help="Print the changes, make none.")
@pass_production
def producer_sync(production: Production, dry_run: bool) -> None:
    """Bring each Venue domain's zone in PowerDNS in step with the bookings: an A or
    AAAA record to public_address for every booked host, none for the others."""
    for line in production.sync_dns(dry_run=dry_run).lines():
        click.echo(line)


@click.group()
def keys() -> None:
    """Subscription keys: Venue domains' keys shared between hosts, trusted by routers."""


@keys.command("export")
@click.argument("venue_name", metavar="VENUE")
@click.option("-o", "--out", default=None, help="Write to this file (0600) instead of stdout.")
@pass_production
def keys_export(production: Production, venue_name: str, out: str | None) -> None:
    """Export the keys of a Venue's domains (private: keep the file safe)."""
    found = production.venue(venue_name)
    text = production.crew.router.keys.export(found.name, found.domains)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_atomic(out, text, 0o600)


@keys.command("import")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@pass_production
def keys_import(production: Production, path: str) -> None:
    """Sign the announces of these domains' hosts with the keys in FILE (from `keys export`)."""
    with open(path) as src:
        domains = production.crew.router.keys.import_(src.read())
    click.echo(
        f"imported the keys of {', '.join(domains)}: Acts sign with them from their "
        "next start or reload"
    )


@keys.command("trust")
@click.argument("domain")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.argument("hosts", nargs=-1)
@pass_production
def keys_trust(production: Production, domain: str, path: str, hosts: tuple[str, ...]) -> None:
    """Have the router take announces for DOMAIN and HOSTS under it, signed with the key
    in FILE (an export file, or a PEM key). uWSGI checks one public key per exact host,
    so name every host other hosts will announce beside the domain itself."""
    router = production.crew.router
    keys = [key for host in (domain, *hosts) for key in router.keys_for(host)]
    with open(path) as src:
        where = router.keys.trust(domain, src.read(), keys)
    click.echo(f"trusted {where} for {', '.join(keys)}")
