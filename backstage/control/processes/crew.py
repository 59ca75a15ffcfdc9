"""The Crew: the control objects of one Production, each built once, when first needed.

The Stage (and its Stage Manager), the Production Manager's client, the router and
the Stage Set all work from the Production's Layout and its `production.toml`. They
are handed to whoever acts on the Production (the Act and Booking Managers, the
daemon, a Snapshot); none of them reaches back to the public objects.
"""

from __future__ import annotations

import functools

from ...errors import BackstageError
from ...files import declared
from ...model.layout import Layout
from ...model.spec import ProductionSpec
from ...render.stageset import LISTEN, StageSet
from ..host.ports import listen_queue
from .client import ManagerClient
from .router import Router
from .stage import STAGES, AnyStage


class Crew:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def settings(self) -> ProductionSpec:
        """What plays now: what production.toml says (defaults while there is none), or,
        while it cannot be used, the last good one."""
        return declared.production_playing(self.layout)[0]

    @functools.cached_property
    def stage(self) -> AnyStage:
        try:
            kind = self.settings().stage
        except BackstageError:
            kind = "own"  # an unreadable production.toml: its own Emperor still stops by pid
        return STAGES[kind](self.layout, self.settings)

    @functools.cached_property
    def manager(self) -> ManagerClient:
        return ManagerClient(self.layout, self.stage)

    @functools.cached_property
    def router(self) -> Router:
        return Router(self.layout, self.settings, binary=lambda: self.stage.binary.path)

    @functools.cached_property
    def stageset(self) -> StageSet:
        return StageSet(
            self.layout.templates_dir,
            modular=self.stage.modular,
            listen=listen_queue(LISTEN),
            holds=self.stage.holds,
        )
