"""Commands on Acts: `backstage act ...`, their configuration, a command run in one,
its FIFO and its log."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..act import Act
from ..control.managers import adoption
from ..errors import InvalidSetting
from ..files.fs import LogFollower, tail_across
from ..model.assign import parse_assignments
from ..model.snapshot import human_size
from ..model.spec import ActSpec
from ..production import Production
from .options import act_of, pass_production

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def act() -> None:
    """Acts: Django projects that play on the Stage."""


def _workers(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """--processes 2, or a range "1..4" (adaptive workers), which the spec checks."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return value


def _placing(verb: str) -> Callable[[F], F]:
    """The options `act new` and `act add` share: where the Act plays and whether now."""

    def options(command: F) -> F:
        for option in reversed(
            (
                click.option("--port", type=int, default=None,
                             help="Port to serve on (default: a free one)."),
                click.option("--processes", default=None, callback=_workers,
                             metavar="N|LOW..HIGH",
                             help='Workers, or adaptive ones: "1..4" (default: production.toml).'),
                click.option("--no-start", is_flag=True, help=f"{verb} it, do not start it."),
                click.option("--force", is_flag=True,
                             help="Take --port even outside production.toml's ports."),
            )
        ):  # fmt: skip
            command = option(command)
        return command

    return options


@act.command("new")
@click.argument("venue_name", metavar="VENUE")
@click.argument("name")
@_placing("Create")
@pass_production
def act_new(
    production: Production,
    venue_name: str,
    name: str,
    port: int | None,
    processes: int | str | None,
    no_start: bool,
    force: bool,
) -> None:
    """Create a Django project as an Act and start it."""
    created = production.venue(venue_name).new_act(
        name, port=port, processes=processes, start=not no_start, force=force
    )
    click.echo(_made(created, "created", no_start))


def _made(made: Act, what: str, no_start: bool) -> str:
    if no_start:
        return (
            f"Act {made.key} {what}, not started (its port: {made.port}): "
            f"`backstage act start {made.key}` starts it"
        )
    return f"Act {made.key} on http://127.0.0.1:{made.port}/"


@act.command("add")
@click.argument("venue_name", metavar="VENUE")
@click.argument("name")
@click.argument("source")
@click.option(
    "--wsgi",
    default=None,
    metavar="MODULE:CALLABLE",
    help="The WSGI app to serve; an application factory with its call: 'flaskr:create_app()'.",
)
@click.option("--settings", default=None, metavar="MODULE", help="Django's settings module.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Set in its environment.")
@click.option(
    "--release",
    "steps",
    multiple=True,
    metavar="CMD",
    help="A release step, run before each start of new code (repeat it for more); "
    "replaces Django's migrate and collectstatic.",
)
@_placing("Add")
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
    processes: int | str | None,
    steps: tuple[str, ...],
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
        release=steps or None,
    )
    line = _made(added, f"added from {added.spec.source}", no_start)
    click.echo(line if no_start else f"{line} serving {added.spec.source}")


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
        fields = ("venue", "act", "state", "enabled", "port", "pid", "workers", "reason")
        click.echo(json.dumps([{f: getattr(row, f) for f in fields} for row in rows], indent=2))
        return
    for row in rows:
        # what is wrong, if anything, last: scripts reading the first three fields go on
        click.echo(
            f"{row.key}\t{row.state}\t{row.port}" + (f"\t{row.reason}" if row.reason else "")
        )


def _act_command(name: str, doc: str) -> None:
    @act.command(name, help=doc)
    @click.argument("key", metavar="VENUE/NAME")
    @pass_production
    def command(production: Production, key: str) -> None:
        target = act_of(production, key)
        getattr(target, name)()
        click.echo(f"{target.key}: {target.state}")


for _name, _doc in (
    ("start", "Start an Act; returns once it serves."),
    ("stop", "Stop an Act."),
    ("reload", "Chain-reload an Act's code with no failed request."),
):
    _act_command(_name, _doc)


@act.command("rm")
@click.argument("key", metavar="VENUE/NAME")
@click.option("--keep-data", is_flag=True, help="Move its shared data aside, do not delete it.")
@pass_production
def act_rm(production: Production, key: str, keep_data: bool) -> None:
    """Stop an Act and delete it, with the data its app wrote (its shared data)."""
    target = act_of(production, key)
    data = target.shared_data
    kept = target.remove(keep_data)
    if kept:
        click.echo(f"{target.key}: removed; its data is kept in {kept}")
        return
    if data:
        listed = ", ".join(f"{path} ({human_size(size)})" for path, size in data)
        click.echo(f"{target.key}: removed, with its data: {listed}")
        return
    click.echo(f"{target.key}: removed")


@act.command("set")
@click.argument("key", metavar="VENUE/NAME")
@click.argument("items", nargs=-1, required=True, metavar="KEY=VALUE...")
@pass_production
def act_set(production: Production, key: str, items: tuple[str, ...]) -> None:
    """Change act.toml: processes=4, release=["python manage.py migrate"],
    workers.celery="celery -A proj worker", cron.NAME="*/5 * * * * CMD", uwsgi.harakiri=30,
    log_max=1048576 (an empty value removes a table entry)."""
    target = act_of(production, key)
    old, playing = target.spec, target.sess is not None
    new = target.set(*items)
    changed = [
        f"{f.name} {_shown(getattr(old, f.name))} -> {_shown(getattr(new, f.name))}"
        for f in dataclasses.fields(new)
        if f.name != "env" and getattr(old, f.name) != getattr(new, f.name)
    ]
    _say(production, target, old, new, changed, playing)


def _env_change(name: str, old: dict[str, str], new: dict[str, str]) -> str:
    return "unset" if name not in new else "set" if name not in old else "changed"


def _shown(value: object) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _say(
    production: Production,
    target: Act,
    old: ActSpec,
    new: ActSpec,
    changed: list[str],
    playing: bool,
) -> None:
    """Say what changed and what the Act does (or did) about it."""
    if not changed:
        click.echo(f"{target.key}: nothing changed")
        return
    effect = adoption.restarts(production.crew, target.manager, old, new, playing)
    then = {
        adoption.RESTART: "it restarted to apply it (its uWSGI config changed)",
        adoption.RELOAD: "it reloaded to apply it, with no failed request",
        adoption.NEXT_RELOAD: f"it applies at the next reload (`backstage act reload {target.key}`)"
        " or deploy, no restart",
        adoption.AT_ONCE: "the Production Manager applies it now, no restart",
        adoption.NOT_PLAYING: "it is not playing: it applies when it starts",
    }[effect]
    click.echo(f"{target.key}: {', '.join(changed)}; {then}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, required=True, metavar="[set|unset] VENUE/NAME [KEY[=VALUE]...]")
@pass_production
def config(production: Production, words: tuple[str, ...]) -> None:
    """An Act's environment: list it, `set KEY=VALUE...`, or `unset KEY...`."""
    action, rest = (words[0], words[1:]) if words[0] in ("set", "unset") else ("", words)
    if rest[1:2] and rest[1] in ("set", "unset") and not action:
        action, rest = rest[1], (rest[0], *rest[2:])
    if not rest:
        raise InvalidSetting("name the Act: backstage config [set|unset] VENUE/NAME ...")
    target, items = act_of(production, rest[0]), rest[1:]
    if action in ("set", "unset"):
        if not items:
            what = "KEY=VALUE" if action == "set" else "the KEY"
            raise InvalidSetting(f"nothing to {action}: write {what} after the Act")
        old, playing = target.spec, target.sess is not None
        if action == "set":
            target.set_env(**parse_assignments(items, "config set"))
        else:
            target.unset_env(*items)
        new = target.spec
        # names only: the values may be secrets
        changed = [
            f"{name} {_env_change(name, old.env, new.env)}"
            for name in sorted(set(old.env) | set(new.env))
            if old.env.get(name) != new.env.get(name)
        ]
        _say(production, target, old, new, changed, playing)
    elif items:
        raise InvalidSetting(f"{items[0]!r}: write `config set {rest[0]} KEY=VALUE`")
    else:
        for name, value in sorted(target.env.items()):
            click.echo(f"{name}={value}")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("key", metavar="VENUE/NAME")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
@pass_production
@click.pass_context
def run(ctx: click.Context, production: Production, key: str, argv: tuple[str, ...]) -> None:
    """Run a command in the Act's folder with its Venue and environment."""
    if argv[:1] == ("--",):  # after VENUE/NAME click keeps it: the command follows it
        argv = argv[1:]
    ctx.exit(act_of(production, key).run(argv))  # main() exits with it


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("key", metavar="VENUE/NAME")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="ARGS...")
@pass_production
@click.pass_context
def manage(ctx: click.Context, production: Production, key: str, args: tuple[str, ...]) -> None:
    """Django's manage.py with the Act's settings, Venue and environment."""
    ctx.exit(act_of(production, key).manage(args))


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("commands")
@pass_production
def fifo(production: Production, key: str, commands: str) -> None:
    """Write raw commands to an Act's master FIFO (e.g. c, r, +, -)."""
    act_of(production, key).fifo(commands)


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option(
    "-n", "lines", default=20, show_default=True, type=click.IntRange(0), help="How many lines."
)
@pass_production
def logs(production: Production, key: str, follow: bool, lines: int) -> None:
    """Print the end of an Act's log."""
    path = act_of(production, key).log_path
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
