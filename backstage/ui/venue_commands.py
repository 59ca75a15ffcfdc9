"""`backstage venue ...`: Venues, their virtualenvs and their domains."""

from __future__ import annotations

import os

import click

from ..errors import InvalidSetting
from ..production import Production
from ..shortcuts import new_venue
from .options import pass_production


@click.group()
def venue() -> None:
    """Venues: virtualenvs that hold Acts."""


@venue.command("new")
@click.argument("name")
@click.option(
    "--path", default=None, help="Folder to create the Venue in (default: <home>/venues)."
)
@click.option(
    "--python",
    default=None,
    metavar="X.Y",
    help="Its Python, wherever installed (default: the one uwsgi embeds); "
    "another one gets its own uwsgi, built in about 25 s.",
)
@click.option(
    "--user",
    default=None,
    metavar="NAME",
    help="Who its Acts run as: an existing system user, or root (warned); default, as "
    "root: a system user of its own, made with it and removed with it (root, warned, "
    "where that user could not read its Python or reach the folder).",
)
@pass_production
def venue_new(
    production: Production, name: str, path: str | None, python: str | None, user: str | None
) -> None:
    """Build a Venue: a virtualenv with Django."""
    if path is None:
        path = os.path.join(production.home, "venues")
        os.makedirs(path, exist_ok=True)
    created = new_venue(name, path, production, python=python, user=user)
    runs_as = created.spec.user or "Backstage itself"
    click.echo(f"Venue {created.name} at {created.path}, its Acts run as {runs_as}")


@venue.command("rm")
@click.argument("venue_name", metavar="VENUE")
@pass_production
def venue_rm(production: Production, venue_name: str) -> None:
    """Remove a Venue: its Acts, its folder, and the system user made for it."""
    target = production.venue(venue_name)
    target.remove()
    click.echo(f"Venue {target.name} removed")


@venue.command("ls")
@pass_production
def venue_ls(production: Production) -> None:
    """List the Venues of the Production."""
    for item in production.venues:
        click.echo(f"{item.name}\t{item.path}\t{len(item.acts)} acts")


@venue.command("forget")
@click.argument("name_or_path", metavar="NAME|PATH")
@pass_production
def venue_forget(production: Production, name_or_path: str) -> None:
    """Drop a Venue from the Production (its files stay)."""
    if os.sep in name_or_path:
        production.forget_venue(name_or_path)
    else:
        target = production.venue(name_or_path)
        for item in target.acts:
            item.stop()
        production.forget_venue(target)


@venue.command("set")
@click.argument("venue_name", metavar="VENUE")
@click.argument("items", nargs=-1, required=True, metavar="user=NAME")
@pass_production
def venue_set(production: Production, venue_name: str, items: tuple[str, ...]) -> None:
    """Change venue.toml: user=NAME runs its Acts as that system user (Backstage as
    root); user= runs them as Backstage again."""
    target = production.venue(venue_name)
    for item in items:
        key, sep, value = item.partition("=")
        if key.strip() != "user" or not sep:
            raise InvalidSetting(
                f"{item!r}: venue set takes user=NAME (domains: `backstage venue domain add`)"
            )
        target.set_user(value.strip())
    user = target.spec.user
    click.echo(f"Venue {target.name} runs its Acts as {user or 'Backstage itself'}")


@venue.group("domain")
def venue_domain() -> None:
    """Venue domains: where the Venue's Acts may be booked."""


@venue_domain.command("add")
@click.argument("venue_name", metavar="VENUE")
@click.argument("domain")
@pass_production
def venue_domain_add(production: Production, venue_name: str, domain: str) -> None:
    """Declare DOMAIN (and its subdomains) as the Venue's."""
    click.echo(production.venue(venue_name).add_domain(domain))


@venue_domain.command("rm")
@click.argument("venue_name", metavar="VENUE")
@click.argument("domain")
@pass_production
def venue_domain_rm(production: Production, venue_name: str, domain: str) -> None:
    """Drop a Venue domain (refused while an Act is booked under it)."""
    production.venue(venue_name).remove_domain(domain)


@venue_domain.command("ls")
@click.argument("venue_name", metavar="VENUE")
@pass_production
def venue_domain_ls(production: Production, venue_name: str) -> None:
    """List the Venue's domains."""
    for domain in production.venue(venue_name).domains:
        click.echo(domain)
