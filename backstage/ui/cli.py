"""The `backstage` command. Each command maps its options onto the same manager
methods the Python API uses; errors become one line on stderr and exit 1."""

from __future__ import annotations

import errno
import importlib
import inspect
import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import click

from emperor.errors import UwsgiError

from .. import __version__
from ..errors import BackstageError
from .options import Home, command_path

# Each command, and the module that defines it: imported only when the command runs (or
# --help lists them all), so that a command pays for its own imports alone. Every
# `backstage` process imported the whole of Backstage before (0.3 s of CPU), the keeper
# of every Production and each command a script runs among them.
COMMANDS = {
    "up": "production_commands",
    "keep": "keeper_command",
    "down": "production_commands",
    "status": "production_commands",
    "metrics": "production_commands",
    "top": "production_commands",
    "stats": "production_commands",
    "venue": "venue_commands",
    "act": "act_commands",
    "config": "act_commands",
    "run": "act_commands",
    "manage": "act_commands",
    "fifo": "act_commands",
    "logs": "act_commands",
    "book": "gig_commands",
    "unbook": "gig_commands",
    "gigs": "gig_commands",
    "nginx": "gig_commands",
    "producer": "gig_commands",
    "keys": "gig_commands",
    "tls": "tls_commands",
    "dev": "release_commands",
    "deploy": "release_commands",
    "releases": "release_commands",
    "rollback": "release_commands",
    "backup": "release_commands",
    "restore": "release_commands",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported when first looked up. The names alone
    (the list in --help, the suggestions for a mistyped one) import nothing."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module = importlib.import_module(f"{__package__}.{self._modules[name]}")
            command: click.Command = getattr(module, name)
            for path, each in _commands(command, name).items():
                _add_example(path, each)
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._modules.pop(name, None)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._modules.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._modules, *(n for n in self._loaded if n not in self._modules)])

    def __len__(self) -> int:
        return len({*self._modules, *self._loaded})


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(lazy)


@click.group(cls=LazyGroup, lazy=COMMANDS)
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
    ctx.obj = Home(home)
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


# One example per command, shown at the end of its --help.
EXAMPLES = {
    "dev": "backstage dev MyVenue/MyAct    # Ctrl-C to stop watching",
    "deploy": "backstage deploy MyVenue/Blog main",
    "releases": "backstage releases MyVenue/Blog",
    "rollback": "backstage rollback MyVenue/Blog 3",
    "backup": "backstage backup MyVenue/Blog -o blog.tar.gz",
    "restore": "backstage restore blog.tar.gz",
    "keys": "backstage keys export shop -o shop.keys",
    "keys export": "backstage keys export shop -o shop.keys",
    "keys import": "backstage keys import shop.keys",
    "keys trust": "backstage keys trust example.com shop.keys www.example.com",
    "": "backstage --home /srv/backstage status",
    "up": "backstage up              # or, under systemd: backstage up --foreground",
    "down": "backstage down",
    "status": "backstage status --json | jq '.acts[] | select(.state != \"running\")'",
    "metrics": "backstage metrics > /var/lib/node_exporter/backstage.prom",
    "top": "backstage top --interval 2",
    "stats": "uwsgitop $(backstage stats --path MyVenue/MyAct)",
    "venue": "backstage venue new MyVenue",
    "venue new": "backstage venue new MyVenue --path /srv/venues --python 3.12",
    "venue ls": "backstage venue ls",
    "venue forget": "backstage venue forget MyVenue",
    "venue rm": "backstage venue rm MyVenue",
    "venue set": "backstage venue set MyVenue user=www-shop",
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
    "book": "backstage book MyVenue/MyAct kittens.example.com",
    "unbook": "backstage unbook MyVenue/MyAct kittens.example.com",
    "gigs": "backstage gigs --json",
    "nginx": "backstage nginx --out /etc/nginx/backstage",
    "producer": "backstage producer sync --dry-run",
    "tls": "backstage tls ls --json",
    "tls import": "backstage tls import shop.example.com shop.crt shop.key --chain ca.pem",
    "tls ls": "backstage tls ls --json",
    "tls rm": "backstage tls rm shop.example.com",
    "tls renew": "backstage tls renew shop.example.com",
    "producer sync": "backstage producer sync --dry-run   # then without --dry-run",
}


def _commands(command: click.Command, path: str = "") -> dict[str, click.Command]:
    """Each visible command by its path ("venue domain add"), `command` itself at `path`."""
    if command.hidden:
        return {}
    found: dict[str, click.Command] = {path: command}
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found.update(_commands(sub, f"{path} {name}".strip()))
    return found


def _add_example(path: str, command: click.Command) -> None:
    if path in EXAMPLES and "\nExample:\n" not in (command.help or ""):
        command.help = f"{inspect.cleandoc(command.help or '')}\n\n\b\nExample:\n  {EXAMPLES[path]}"


_add_example("", cli)


def main() -> None:
    """The command: one line on stderr and exit 1 for any error, never a traceback
    unless --debug asks for one."""
    logging.basicConfig(level=logging.WARNING, format="backstage: %(message)s")
    try:
        code = cli.main(standalone_mode=False)  # the status of `run` and `manage`
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as exc:
        # one line, as every other error; exit 2 as click gives a usage error
        where = " ".join(("backstage", command_path(exc.ctx))).strip() if exc.ctx else "backstage"
        click.echo(f"backstage: {exc.format_message()} (see `{where} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except (BackstageError, UwsgiError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        hint = " (is the disk full or read-only?)" if exc.errno in DISK_ERRORS else ""
        _fail(f"{exc.strerror or exc}{where}{hint}")
    except Exception as exc:
        _fail(f"unexpected error: {exc!r} (run it again with --debug for the traceback)")
    else:
        if isinstance(code, int) and code:
            sys.exit(code)


# The errors whose cause is the disk itself, not what is on it.
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _fail(line: str) -> None:
    if "--debug" in sys.argv[1:]:
        logging.getLogger(__name__).exception("the traceback")
    click.echo(f"backstage: {line}", err=True)
    sys.exit(1)
