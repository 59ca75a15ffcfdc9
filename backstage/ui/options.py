"""What every command shares: the Production its --home names, and an Act by VENUE/NAME."""

from __future__ import annotations

import click

from ..act import Act
from ..production import Production

pass_production = click.make_pass_decorator(Production)


def act_of(production: Production, key: str) -> Act:
    return production.act(key)
