"""What every command shares: the Production its --home names, and an Act by VENUE/NAME."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..errors import InvalidSetting, NotFound
from ..model.layout import Layout, home_folder

if TYPE_CHECKING:
    from ..act import Act
    from ..production import Production

# The commands that make a Production where there is none; every other one needs one
# there, rather than show a made-up status of an empty folder.
MAKE_A_PRODUCTION = ("up", "keep", "venue new")


class Home:
    """The folder --home names. The Production in it is opened (and its modules
    imported) only for a command that needs it: the keeper needs the folder alone."""

    def __init__(self, given: str | None) -> None:
        self.layout = Layout(home_folder(given))
        self._production: Production | None = None

    @property
    def production(self) -> Production:
        if self._production is None:
            from ..production import Production

            self._production = Production(self.layout.home)
        return self._production


def pass_home(command: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command the Home of --home, once it is known to be a Production's (or
    the command makes one)."""

    @functools.wraps(command)
    def with_home(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        home = ctx.find_object(Home)
        assert home is not None, "the `backstage` group makes it"
        check_home(home.layout, command_path(ctx))
        return ctx.invoke(command, home, *args, **kwargs)

    return with_home


def pass_production(command: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command the Production of --home, once it is known to be one (or the
    command makes it)."""

    @functools.wraps(command)
    def with_production(home: Home, *args: Any, **kwargs: Any) -> Any:
        return command(home.production, *args, **kwargs)

    return pass_home(with_production)


def command_path(ctx: click.Context) -> str:
    """The command as typed after `backstage`: "venue new", "status"."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def check_home(layout: Layout, command: str) -> None:
    home = layout.home
    if os.path.lexists(home) and not os.path.isdir(home):
        raise InvalidSetting(
            f"{home} is not a folder: give --home (or BACKSTAGE_HOME) a Production's folder"
        )
    if command in MAKE_A_PRODUCTION:
        return
    if not os.path.lexists(layout.spec_path) and not os.path.exists(layout.last_good_spec):
        raise NotFound(
            f"no Production at {home}: make one with `backstage venue new NAME` or "
            "`backstage up`, or give --home (or BACKSTAGE_HOME) the folder of one"
        )


def log_to_stdout() -> None:
    """For the processes a command line starts to run on (the Manager, the keeper): their
    output goes to the Manager's log."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
    )


def act_of(production: Production, key: str) -> Act:
    return production.act(key)
