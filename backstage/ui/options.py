"""What every command shares: the Production its --home names, and an Act by VENUE/NAME."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click

from ..act import Act
from ..errors import InvalidSetting, NotFound
from ..production import Production

# The commands that make a Production where there is none; every other one needs one
# there, rather than show a made-up status of an empty folder.
MAKE_A_PRODUCTION = ("up", "keep", "venue new")


def pass_production(command: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command the Production of --home, once it is known to be one (or the
    command makes it)."""

    @functools.wraps(command)
    def with_production(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        production = ctx.find_object(Production)
        assert production is not None, "the `backstage` group makes it"
        check_home(production, command_path(ctx))
        return ctx.invoke(command, production, *args, **kwargs)

    return with_production


def command_path(ctx: click.Context) -> str:
    """The command as typed after `backstage`: "venue new", "status"."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def check_home(production: Production, command: str) -> None:
    home = production.home
    if os.path.lexists(home) and not os.path.isdir(home):
        raise InvalidSetting(
            f"{home} is not a folder: give --home (or BACKSTAGE_HOME) a Production's folder"
        )
    if command in MAKE_A_PRODUCTION:
        return
    layout = production.layout
    if not os.path.lexists(layout.spec_path) and not os.path.exists(layout.last_good_spec):
        raise NotFound(
            f"no Production at {home}: make one with `backstage venue new NAME` or "
            "`backstage up`, or give --home (or BACKSTAGE_HOME) the folder of one"
        )


def act_of(production: Production, key: str) -> Act:
    return production.act(key)
