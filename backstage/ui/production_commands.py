"""Commands on the Production as a whole: up, down, status, top, stats, metrics."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from emperor.errors import StatsUnavailable
from emperor.stats import read_stats

from ..errors import NotRunning
from ..model.snapshot import Snapshot
from ..model.state import STARTING, refused_line
from ..production import Production
from .columns import act_table, daemons_line, emperor_line
from .options import act_of, log_to_stdout, pass_production
from .status import status as production_status

# The Manager's loop, its web services and the terminal monitor are imported by the
# commands that run them: `status` and the rest need none of it.
if TYPE_CHECKING:
    from ..control.daemon.loop import Service


@click.command()
@click.option("--foreground", is_flag=True, help="Run the Production Manager here (for systemd).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the Acts.")
@click.option("--kept", is_flag=True, hidden=True, help="With a keeper that restarts it.")
@pass_production
def up(production: Production, foreground: bool, timeout: float, kept: bool) -> None:
    """Start the Production Manager and make every enabled Act play."""
    if foreground:
        from ..control.daemon.loop import ProductionManager

        log_to_stdout()
        ProductionManager(production.crew).serve(kept=kept, services=_services(production))
        return
    production.up()
    production.manager.poke()
    deadline = time.monotonic() + timeout
    snapshot = production.snapshot()
    while time.monotonic() < deadline and any(row.state == STARTING for row in snapshot.acts):
        time.sleep(0.2)
        snapshot = production.snapshot(snapshot)
    _print_table(snapshot)


def _services(production: Production) -> list[Service]:
    """What production.toml asks the Manager to serve beside its work: /metrics, and the
    dashboard (its actions through the same Act methods as the command's)."""
    from .dashboard import Dashboard
    from .httpd import MetricsServer

    settings = production.crew.settings()  # the last good ones while the file is broken
    found: list[Service] = []
    if settings.metrics:
        found.append(MetricsServer(settings.metrics, production.snapshot))
    if settings.dashboard:
        found.append(
            Dashboard(
                settings.dashboard,
                production.layout.dashboard_token,
                production.snapshot,
                lambda key, action: getattr(production.act(key), action)(),
            )
        )
    return found


@click.command()
@pass_production
def down(production: Production) -> None:
    """Stop every Act, the Emperor and the Production Manager."""
    before = production.snapshot()
    manager = production.manager.pid()
    production.down()
    playing = [row.key for row in before.acts if row.pid is not None]
    click.echo(f"stopped {len(playing)} Acts" + (f": {', '.join(playing)}" if playing else ""))
    if before.emperor.running:
        click.echo(f"stopped the Emperor (pid {before.emperor.pid})")
    if manager is not None:
        click.echo(f"stopped the Production Manager (pid {manager})")
    if not playing and not before.emperor.running and manager is None:
        click.echo("nothing was running")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--watch", is_flag=True, help="Print it again every interval, until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between --watch prints.")
@pass_production
def status(production: Production, as_json: bool, watch: bool, interval: float) -> None:
    """What is running, from the Emperor's and every Act's stats.

    Exits 2 when an enabled Act has failed (without --watch), so scripts and health
    checks can tell; 0 otherwise.
    """
    snapshot = production.snapshot()
    as_root = production.venues_as_root()
    if not watch:
        if as_json:
            click.echo(json.dumps(production_status(snapshot, as_root), indent=2))
        else:
            _print_table(snapshot, as_root)
        failed = [row.key for row in snapshot.acts if row.enabled and row.state == "failed"]
        if failed:
            raise ActsFailed(f"failed: {', '.join(failed)} (`backstage logs VENUE/NAME` says why)")
        return
    try:
        while True:
            if as_json:
                click.echo(json.dumps(production_status(snapshot, as_root)))
            else:
                if sys.stdout.isatty():
                    click.clear()
                _print_table(snapshot, as_root)
                click.echo()
            time.sleep(interval)
            snapshot = production.snapshot(snapshot)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends


def as_root_line(venues: Sequence[str]) -> str:
    """Said once by `status` while Backstage runs as root and Venues have no user."""
    which = f"Venue {venues[0]} runs" if len(venues) == 1 else f"Venues {', '.join(venues)} run"
    return f"{which} as root: set user = in venue.toml (`backstage venue set VENUE user=NAME`)"


class ActsFailed(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"backstage: {self.message}", err=True)


@click.command()
@pass_production
def metrics(production: Production) -> None:
    """Print the Production in the Prometheus text format (what /metrics serves)."""
    from .metrics import render as metrics_text

    click.echo(metrics_text(production.snapshot()), nl=False)


# Colour only on a terminal: a pipe or a file gets plain text.
STATE_COLOURS = {
    "running": "green",
    "starting": "yellow",
    "failed": "red",
    "invalid": "red",
    "sleeping": "blue",
}


def _print_table(snapshot: Snapshot, as_root: Sequence[str] = ()) -> None:
    tty = sys.stdout.isatty()
    click.echo(emperor_line(snapshot))
    router, gigs = snapshot.router, snapshot.gigs
    playing = sum(1 for gig in gigs if gig.playing)
    click.echo(
        f"Router {router.address}: {'running' if router.running else 'down'}, "
        f"{playing} of {len(gigs)} Gigs live"
    )
    if router.warning:
        click.secho(f"Warning: {router.warning}", fg="yellow" if tty else None, err=not tty)
    for cert in snapshot.certificates:
        if cert.warning(snapshot.wall):
            click.secho(f"Warning: {cert.warning(snapshot.wall)}", fg="yellow" if tty else None)
    header, *lines = act_table(snapshot)
    click.echo(click.style(header, bold=True) if tty else header)
    for row, line in zip(snapshot.acts, lines, strict=True):
        colour = STATE_COLOURS.get(row.state)
        if tty and colour:
            start = len(row.key) + line[len(row.key) :].index(row.state)
            end = start + len(row.state)
            line = line[:start] + click.style(row.state, fg=colour) + line[end:]
        click.echo(line)
    for row in snapshot.acts:
        if row.reason and row.state != "running":  # a running Act's is the refused code
            click.echo(f"{row.key} {row.state}: {row.reason}")
        if row.refused:
            click.echo(f"{row.key}: {refused_line(row.refused)}")
        if row.daemons:
            click.echo(f"{row.key} also runs: {daemons_line(row)}")
    if snapshot.problem:
        click.echo(f"production.toml is not what plays: {snapshot.problem}")
    if as_root:  # under the table, as the other notes: scripts read the lines above
        click.echo(as_root_line(as_root))


@click.command()
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
@pass_production
def top(production: Production, interval: float) -> None:
    """The whole Production live: Acts, workers, requests per second, logs.

    \b
    Up/Down, PgUp/PgDn, Home/End  move       Enter  open an Act (workers, log); Esc back
    o  sort by name, req/s, memory, state    O      reverse the order
    /  filter by text (Enter keeps, Esc clears)
    c  chain reload    x  stop    g  start (stop and start ask y first)
    +  one worker more    -  one worker less (needs uWSGI's cheaper mode)    q  quit
    """
    from . import terminal

    terminal.run(production, interval)


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.option("--path", "path_only", is_flag=True, help="Print the stats socket's path only.")
@pass_production
def stats(production: Production, key: str, path_only: bool) -> None:
    """Print an Act's raw uWSGI stats JSON (`uwsgitop $(backstage stats --path V/A)`)."""
    target = act_of(production, key)
    if path_only:
        click.echo(target.stats_path)
        return
    try:
        raw = read_stats(target.stats_path, 2.0)
    except StatsUnavailable as exc:
        raise NotRunning(f"{target.key} is not running ({exc})") from None
    click.echo(raw.decode(errors="replace").rstrip())
