"""`backstage keep`, which the Manager starts for itself: a module of its own because a
keeper runs beside every Production and needs none of the other commands' imports."""

from __future__ import annotations

import click

from ..control.processes import keeper
from .options import Home, log_to_stdout, pass_home


@click.command(hidden=True)
@pass_home
def keep(home: Home) -> None:
    """Bring the Production Manager back should it die (it starts this itself)."""
    log_to_stdout()
    keeper.keep(home.layout)
