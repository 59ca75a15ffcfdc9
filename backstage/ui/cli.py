"""The `backstage` command. Each command maps its options onto the same manager
methods the Python API uses; errors become one line on stderr and exit 1."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import sys
import time

import click

from emperor.errors import StatsUnavailable, UwsgiError
from emperor.stats import read_stats

from .. import __version__
from ..act import Act
from ..control import keeper
from ..control import nginx as nginx_files
from ..control.daemon import ProductionManager, Service
from ..errors import BackstageError, InvalidSetting, NotRunning
from ..files.fs import LogFollower, tail_across
from ..model.assign import parse_assignments
from ..model.snapshot import Snapshot
from ..model.state import STARTING
from ..production import Production
from ..shortcuts import new_venue
from . import terminal
from .columns import act_table, daemons_line, emperor_line
from .dashboard import Dashboard
from .devlog import dev_line
from .httpd import MetricsServer
from .metrics import render as metrics_text
from .status import status as production_status

pass_production = click.make_pass_decorator(Production)


@click.group()
@click.version_option(__version__, prog_name="backstage", message="%(prog)s %(version)s")
@click.option(
    "--home",
    envvar="BACKSTAGE_HOME",
    default=None,
    help="The Production's folder (default: $BACKSTAGE_HOME, else ~/.backstage).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(ctx: click.Context, home: str | None, debug: bool) -> None:
    """Run many Django projects on one host under Backstage's own uWSGI Emperor."""
    ctx.obj = Production(home)
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def _act(production: Production, key: str) -> Act:
    return production.act(key)


@cli.command()
@click.option("--foreground", is_flag=True, help="Run the Production Manager here (for systemd).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the Acts.")
@click.option("--kept", is_flag=True, hidden=True, help="With a keeper that restarts it.")
@pass_production
def up(production: Production, foreground: bool, timeout: float, kept: bool) -> None:
    """Start the Production Manager and make every enabled Act play."""
    if foreground:
        _log_to_stdout()
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
    settings = production.spec
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


def _log_to_stdout() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
    )


@cli.command(hidden=True)
@pass_production
def keep(production: Production) -> None:
    """Bring the Production Manager back should it die (it starts this itself)."""
    _log_to_stdout()
    keeper.keep(production.layout)


@cli.command()
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


@cli.command()
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
    if not watch:
        if as_json:
            click.echo(json.dumps(production_status(snapshot), indent=2))
        else:
            _print_table(snapshot)
        failed = [row.key for row in snapshot.acts if row.enabled and row.state == "failed"]
        if failed:
            raise ActsFailed(f"failed: {', '.join(failed)} (`backstage logs VENUE/NAME` says why)")
        return
    try:
        while True:
            if as_json:
                click.echo(json.dumps(production_status(snapshot)))
            else:
                if sys.stdout.isatty():
                    click.clear()
                _print_table(snapshot)
                click.echo()
            time.sleep(interval)
            snapshot = production.snapshot(snapshot)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends


class ActsFailed(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"backstage: {self.message}", err=True)


@cli.command()
@pass_production
def metrics(production: Production) -> None:
    """Print the Production in the Prometheus text format (what /metrics serves)."""
    click.echo(metrics_text(production.snapshot()), nl=False)


# Colour only on a terminal: a pipe or a file gets plain text.
STATE_COLOURS = {"running": "green", "starting": "yellow", "failed": "red", "invalid": "red"}


def _print_table(snapshot: Snapshot) -> None:
    tty = sys.stdout.isatty()
    click.echo(emperor_line(snapshot))
    router, gigs = snapshot.router, snapshot.gigs
    playing = sum(1 for gig in gigs if gig.playing)
    click.echo(
        f"Router {router.address}: {'running' if router.running else 'down'}, "
        f"{playing} of {len(gigs)} Gigs live"
    )
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
        if row.problem:
            click.echo(f"{row.key} is invalid: {row.problem}")
        if row.refused:
            click.echo(f"{row.key} refused a save, the old code serves: {row.refused}")
        if row.daemons:
            click.echo(f"{row.key} also runs: {daemons_line(row)}")


@cli.command()
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
    terminal.run(production, interval)


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.option("--path", "path_only", is_flag=True, help="Print the stats socket's path only.")
@pass_production
def stats(production: Production, key: str, path_only: bool) -> None:
    """Print an Act's raw uWSGI stats JSON (`uwsgitop $(backstage stats --path V/A)`)."""
    target = _act(production, key)
    if path_only:
        click.echo(target.stats_path)
        return
    try:
        raw = read_stats(target.stats_path, 2.0)
    except StatsUnavailable as exc:
        raise NotRunning(f"{target.key} is not running ({exc})") from None
    click.echo(raw.decode(errors="replace").rstrip())


@cli.group()
def venue() -> None:
    """Venues: virtualenvs that hold Acts."""


@venue.command("new")
@click.argument("name")
@click.option(
    "--path", default=None, help="Folder to create the Venue in (default: <home>/venues)."
)
@pass_production
def venue_new(production: Production, name: str, path: str | None) -> None:
    """Build a Venue: a virtualenv with Django."""
    if path is None:
        path = os.path.join(production.home, "venues")
        os.makedirs(path, exist_ok=True)
    created = new_venue(name, path, production)
    click.echo(f"Venue {created.name} at {created.path}")


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


@cli.group()
def act() -> None:
    """Acts: Django projects that play on the Stage."""


@act.command("new")
@click.argument("venue_name", metavar="VENUE")
@click.argument("name")
@click.option("--port", type=int, default=None, help="Port to serve on (default: a free one).")
@click.option("--processes", type=int, default=None, help="Workers (default: production.toml).")
@click.option("--no-start", is_flag=True, help="Create it, do not start it.")
@click.option("--force", is_flag=True, help="Take --port even outside production.toml's ports.")
@pass_production
def act_new(
    production: Production,
    venue_name: str,
    name: str,
    port: int | None,
    processes: int | None,
    no_start: bool,
    force: bool,
) -> None:
    """Create a Django project as an Act and start it."""
    created = production.venue(venue_name).new_act(
        name, port=port, processes=processes, start=not no_start, force=force
    )
    click.echo(f"Act {created.key} on http://127.0.0.1:{created.port}/")


@act.command("add")
@click.argument("venue_name", metavar="VENUE")
@click.argument("name")
@click.argument("source")
@click.option("--wsgi", default=None, metavar="MODULE:CALLABLE", help="The WSGI app to serve.")
@click.option("--settings", default=None, metavar="MODULE", help="Django's settings module.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Set in its environment.")
@click.option("--port", type=int, default=None, help="Port to serve on (default: a free one).")
@click.option("--processes", type=int, default=None, help="Workers (default: production.toml).")
@click.option("--no-start", is_flag=True, help="Add it, do not start it.")
@click.option("--force", is_flag=True, help="Take --port even outside production.toml's ports.")
@pass_production
def act_add(
    production: Production,
    venue_name: str,
    name: str,
    source: str,
    wsgi: str | None,
    settings: str | None,
    env: tuple[str, ...],
    port: int | None,
    processes: int | None,
    no_start: bool,
    force: bool,
) -> None:
    """Adopt a project as an Act: SOURCE is its folder (served where it is) or a git URL."""
    added = production.venue(venue_name).add_act(
        name,
        source,
        wsgi=wsgi,
        settings=settings,
        port=port,
        processes=processes,
        env=parse_assignments(env, "--env"),
        start=not no_start,
        force=force,
    )
    click.echo(f"Act {added.key} on http://127.0.0.1:{added.port}/ serving {added.spec.source}")


@act.command("ls")
@click.argument("venue_name", metavar="[VENUE]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_production
def act_ls(production: Production, venue_name: str | None, as_json: bool) -> None:
    """List the Acts, of every Venue or of one, with their state and port."""
    if venue_name is not None:
        production.venue(venue_name)  # NotFound says how to create it
    snapshot = production.snapshot()
    rows = [row for row in snapshot.acts if venue_name in (None, row.venue)]
    if as_json:
        fields = ("venue", "act", "state", "enabled", "port", "pid", "workers")
        click.echo(json.dumps([{f: getattr(row, f) for f in fields} for row in rows], indent=2))
        return
    for row in rows:
        click.echo(f"{row.key}\t{row.state}\t{row.port}")


def _act_command(name: str, doc: str) -> None:
    @act.command(name, help=doc)
    @click.argument("key", metavar="VENUE/NAME")
    @pass_production
    def command(production: Production, key: str) -> None:
        target = _act(production, key)
        getattr(target, {"rm": "remove"}.get(name, name))()
        click.echo(f"{target.key}: {'removed' if name == 'rm' else target.state}")


for _name, _doc in (
    ("start", "Start an Act; returns once it serves."),
    ("stop", "Stop an Act."),
    ("reload", "Chain-reload an Act's code with no failed request."),
    ("rm", "Stop an Act and delete it."),
):
    _act_command(_name, _doc)


@act.command("set")
@click.argument("key", metavar="VENUE/NAME")
@click.argument("items", nargs=-1, required=True, metavar="KEY=VALUE...")
@pass_production
def act_set(production: Production, key: str, items: tuple[str, ...]) -> None:
    """Change act.toml: processes=4, release=["python manage.py migrate"],
    workers.celery="celery -A proj worker", cron.NAME="*/5 * * * * CMD", uwsgi.harakiri=30,
    log_max=1048576 (an empty value removes a table entry)."""
    _act(production, key).set(*items)


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@pass_production
def dev(production: Production, key: str) -> None:
    """Develop an Act as with runserver, here in the foreground: it plays and is watched;
    each save is served once its pre-flight passes (a refused one is said, and the old
    code serves on); its requests print as they come. Ctrl-C stops watching; the Act
    plays on."""
    target = _act(production, key)
    spec = target.spec
    follower = LogFollower(target.log_path)  # from here on: nothing of the start is missed
    try:
        if target.sess is None:
            target.start()
        if not spec.watch:
            target.set("watch=true")
        click.echo(f"{target.key} plays at http://127.0.0.1:{spec.port}/")
        _, router_port = production.spec.router.rsplit(":", 1)
        for host in spec.hosts:
            port = "" if router_port == "80" else f":{router_port}"
            click.echo(f"{target.key} plays at http://{host}{port}/ (through the router)")
        click.echo("Watching its code: every save is served. Ctrl-C stops watching.")
        while True:
            for line in follower.read().splitlines():
                shown = dev_line(line)
                if shown is not None:
                    click.echo(shown)
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
        if not spec.watch and target.spec.watch:
            target.set("watch=false")
            click.echo(f"\nStopped watching {target.key}; it plays on.")


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("commit", metavar="[REF]", required=False)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds it has to answer.")
@pass_production
def deploy(production: Production, key: str, commit: str | None, timeout: float) -> None:
    """Build the next release of an Act (REF of its git source, default the newest
    commit; a folder is copied), check it answers beside the running one, then move the
    Act to it with no failed request."""
    done = _act(production, key).deploy(commit, timeout)
    click.echo(f"{key}: release {done.number} ({done.sha}) serves")


@cli.command("releases")
@click.argument("key", metavar="VENUE/NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_production
def releases_command(production: Production, key: str, as_json: bool) -> None:
    """An Act's releases, from its folders: number, commit, when built, which is live."""
    found = _act(production, key).releases
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in found], indent=2))
        return
    if not found:
        click.echo(f"{key} has no releases: `backstage deploy {key}` builds one")
    for r in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.built))
        click.echo(f"{'*' if r.live else ' '} {r.number:>4}  {r.sha}  {when}")


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("number", metavar="[N]", type=int, required=False)
@pass_production
def rollback(production: Production, key: str, number: int | None) -> None:
    """Move an Act back to release N (default: the one before the live one), with no
    failed request."""
    done = _act(production, key).rollback(number)
    click.echo(f"{key}: release {done.number} ({done.sha}) serves")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, required=True, metavar="[set|unset] VENUE/NAME [KEY[=VALUE]...]")
@pass_production
def config(production: Production, words: tuple[str, ...]) -> None:
    """An Act's environment: list it, `set KEY=VALUE...`, or `unset KEY...`."""
    action, rest = (words[0], words[1:]) if words[0] in ("set", "unset") else ("", words)
    if rest[1:2] and rest[1] in ("set", "unset") and not action:
        action, rest = rest[1], (rest[0], *rest[2:])
    if not rest:
        raise InvalidSetting("name the Act: backstage config [set|unset] VENUE/NAME ...")
    target, items = _act(production, rest[0]), rest[1:]
    if action == "set":
        if not items:
            raise InvalidSetting("nothing to set: write KEY=VALUE after the Act")
        target.set_env(**parse_assignments(items, "config set"))
    elif action == "unset":
        if not items:
            raise InvalidSetting("nothing to unset: write the KEY after the Act")
        target.unset_env(*items)
    elif items:
        raise InvalidSetting(f"{items[0]!r}: write `config set {rest[0]} KEY=VALUE`")
    else:
        for name, value in sorted(target.env.items()):
            click.echo(f"{name}={value}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("key", metavar="VENUE/NAME")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
@pass_production
@click.pass_context
def run(ctx: click.Context, production: Production, key: str, argv: tuple[str, ...]) -> None:
    """Run a command in the Act's folder with its Venue and environment."""
    if argv[:1] == ("--",):  # after VENUE/NAME click keeps it: the command follows it
        argv = argv[1:]
    ctx.exit(_act(production, key).run(argv))  # main() exits with it


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("key", metavar="VENUE/NAME")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="ARGS...")
@pass_production
@click.pass_context
def manage(ctx: click.Context, production: Production, key: str, args: tuple[str, ...]) -> None:
    """Django's manage.py with the Act's settings, Venue and environment."""
    ctx.exit(_act(production, key).manage(args))


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("commands")
@pass_production
def fifo(production: Production, key: str, commands: str) -> None:
    """Write raw commands to an Act's master FIFO (e.g. c, r, +, -)."""
    _act(production, key).fifo(commands)


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option(
    "-n", "lines", default=20, show_default=True, type=click.IntRange(0), help="How many lines."
)
@pass_production
def logs(production: Production, key: str, follow: bool, lines: int) -> None:
    """Print the end of an Act's log."""
    path = _act(production, key).log_path
    follower = LogFollower(path) if follow else None  # from here on, nothing missed
    text = tail_across(path, lines)
    if text:
        click.echo(text)
    if follower is None:
        return
    try:
        while True:
            time.sleep(0.5)
            text = follower.read()  # across a rotation too
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
    finally:
        follower.close()


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


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("host")
@pass_production
def book(production: Production, key: str, host: str) -> None:
    """Book an Act at HOST, a Venue domain or a subdomain of one."""
    target = _act(production, key)
    target.book(host)
    click.echo(f"{target.key} booked at {target.hosts[-1]}")


@cli.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("host")
@pass_production
def unbook(production: Production, key: str, host: str) -> None:
    """Take an Act off HOST: out of the router first, then out of its config."""
    _act(production, key).unbook(host)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_production
def gigs(production: Production, as_json: bool) -> None:
    """Live Gigs from the router's stats, and hosts booked but not playing."""
    snapshot = production.snapshot()
    found = [gig.as_dict() for gig in snapshot.gigs]
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


@cli.command()
@click.option("--out", default=None, help="Folder to write to (default: <home>/nginx).")
@click.option("--listen", default="80", show_default=True, help="nginx `listen` of each server.")
@pass_production
def nginx(production: Production, out: str | None, listen: str) -> None:
    """Render nginx server blocks for every booked host, and an include file."""
    include = nginx_files.write(
        production.crew, out or os.path.join(production.home, "nginx"), listen
    )
    click.echo(f"include {include};")


# One example per command, shown at the end of its --help.
EXAMPLES = {
    "": "backstage --home /srv/backstage status",
    "up": "backstage up              # or, under systemd: backstage up --foreground",
    "down": "backstage down",
    "status": "backstage status --json | jq '.acts[] | select(.state != \"running\")'",
    "metrics": "backstage metrics > /var/lib/node_exporter/backstage.prom",
    "top": "backstage top --interval 2",
    "stats": "uwsgitop $(backstage stats --path MyVenue/MyAct)",
    "venue": "backstage venue new MyVenue",
    "venue new": "backstage venue new MyVenue --path /srv/venues",
    "venue ls": "backstage venue ls",
    "venue forget": "backstage venue forget MyVenue",
    "venue domain": "backstage venue domain add MyVenue example.com",
    "venue domain add": "backstage venue domain add MyVenue example.com",
    "venue domain rm": "backstage venue domain rm MyVenue example.com",
    "venue domain ls": "backstage venue domain ls MyVenue",
    "act": "backstage act new MyVenue MyAct",
    "act new": "backstage act new MyVenue MyAct --processes 4",
    "act ls": "backstage act ls MyVenue --json",
    "act add": "backstage act add MyVenue Blog ~/src/blog --settings blog.settings.prod",
    "act set": "backstage act set MyVenue/Blog processes=4 max_processes=8",
    "config": "backstage config set MyVenue/Blog SECRET_KEY=s3cr3t DEBUG=0",
    "run": "backstage run MyVenue/Blog -- python -c 'import django; print(django.VERSION)'",
    "manage": "backstage manage MyVenue/Blog createsuperuser",
    "act start": "backstage act start MyVenue/MyAct",
    "act stop": "backstage act stop MyVenue/MyAct",
    "act reload": "backstage act reload MyVenue/MyAct",
    "act rm": "backstage act rm MyVenue/MyAct",
    "fifo": "backstage fifo MyVenue/MyAct +    # one worker more",
    "logs": "backstage logs -f MyVenue/MyAct",
    "dev": "backstage dev MyVenue/MyAct    # Ctrl-C to stop watching",
    "deploy": "backstage deploy MyVenue/Blog main",
    "releases": "backstage releases MyVenue/Blog",
    "rollback": "backstage rollback MyVenue/Blog 3",
    "book": "backstage book MyVenue/MyAct kittens.example.com",
    "unbook": "backstage unbook MyVenue/MyAct kittens.example.com",
    "gigs": "backstage gigs --json",
    "nginx": "backstage nginx --out /etc/nginx/backstage",
}


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {prefix.strip(): group}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            found.update(_commands(command, path + " "))
        else:
            found[path] = command
    return found


for _path, _command in _commands(cli).items():
    if _path in EXAMPLES:
        _command.help = (
            f"{inspect.cleandoc(_command.help or '')}\n\n\b\nExample:\n  {EXAMPLES[_path]}"
        )


def main() -> None:
    """The command: one line on stderr and exit 1 for any error, never a traceback
    unless --debug asks for one."""
    logging.basicConfig(level=logging.WARNING, format="backstage: %(message)s")
    try:
        code = cli.main(standalone_mode=False)  # the status of `run` and `manage`
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except (BackstageError, UwsgiError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where} (is the disk full or read-only?)")
    except Exception as exc:
        _fail(f"unexpected error: {exc!r} (run it again with --debug for the traceback)")
    else:
        if isinstance(code, int) and code:
            sys.exit(code)


def _fail(line: str) -> None:
    if "--debug" in sys.argv[1:]:
        logging.getLogger(__name__).exception("the traceback")
    click.echo(f"backstage: {line}", err=True)
    sys.exit(1)
