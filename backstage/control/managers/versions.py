"""Versions: an Act serves the code its pre-flight passed, never the code on disk as it
is now. A project served from a folder (adopted where it is, or scaffolded in the Act's
own folder) gets a new version at each reload, watched save and start: a copy of the
folder in `releases/` (files unchanged since the live version are hard links to it),
checked there, and served through `current`. Every respawn of a worker or a master, a heal
and a wake load `current`, so code that was refused never comes back, and a stopped
Act starts on the version that served.

A refusal is kept in `run/` (one line) until a version serves again: `status` says the
code on disk is newer than what serves, and why.

A scaffold is edited where `act new` made it; its versions hold links to its data there
(`releases.SCAFFOLD_DATA`). Its start costs what it did: its first version is not
checked first (nothing older could serve instead, and the start says whether it loads,
as it always did) unless it declares release steps, which run in it, and a folder
unchanged since the live version starts on that one.
"""

from __future__ import annotations

import logging
import os

from ...errors import BackstageError
from ...files.fs import unlink_if_present, write_atomic
from ...model.layout import ActRef
from ...model.spec import ActSpec
from ..build import preflight
from ..processes.crew import Crew
from . import adoption, releases
from .acts import START_TIMEOUT, ActManager

log = logging.getLogger(__name__)


def follows_source(ref: ActRef, spec: ActSpec) -> bool:
    """Its code is a folder someone edits: an adopted folder or a scaffold. (A git clone
    is only read by `git archive`: a deploy makes its releases.)"""
    return not releases.is_git(spec, ref)


def live(ref: ActRef) -> releases.Release | None:
    return next((r for r in releases.releases(ref) if r.live), None)


def serve(
    crew: Crew,
    act: ActManager,
    check: preflight.Checker = preflight.preflight,
    release_steps: bool = True,
    timeout: float = START_TIMEOUT,
) -> releases.Release:
    """A new version of the source, checked, then served: a playing Act chain-reloads
    to it, a stopped one starts on it. Refused: the live version serves on, and the
    refusal is kept for `status`."""
    ref = act.ref
    before = live(ref)
    try:
        built = releases.build(crew, act, None, check, release_steps, as_it_stands=True)
    except BackstageError as exc:
        refused(crew, ref, exc)
        raise
    found = built.found
    if before is not None and built.sha == before.sha:
        # the same code: no second copy of it, the live one is reloaded
        releases.remove(built)
        built = before
    spec = act.spec()
    # where this version's settings put static files and uploads: a change is in the
    # vassal's config, and takes one restart onto the new version instead of a reload
    # (a scaffold's are its own folder's, as its settings say: nothing is declared)
    changes = adoption.served_changes(ref, spec, found) if found and spec.adopted else {}
    if changes or not spec.current:
        releases.take_over(act, built.path, changes, timeout)
    else:
        releases.switch(act, built.path, timeout)
    unlink_if_present(crew.layout.act_refused(ref))
    releases.prune(ref)
    return built


def before_start(crew: Crew, act: ActManager) -> None:
    """A stopped Act's code as a new version when it passes; when it does not and a
    version served before, that one starts (the refusal is kept for `status`)."""
    ref, spec = act.ref, act.spec()
    if not spec.adopted:
        served = live(ref)
        if served is None and not spec.release:
            serve(crew, act, check=_unchecked)
            return
        if served is not None and spec.current and releases.unchanged(ref, spec, served):
            return
    try:
        serve(crew, act)
    except BackstageError as exc:
        if live(act.ref) is None:
            raise
        log.warning("%s: starts on its last version: %s", act.ref.key, exc)


def refused(crew: Crew, ref: ActRef, exc: BackstageError) -> None:
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    os.makedirs(crew.layout.refused_dir, exist_ok=True)
    write_atomic(crew.layout.act_refused(ref), line + "\n", 0o600)


def _unchecked(check: preflight.Check) -> preflight.Preflight:
    """A scaffold's first version: checked by its start, as before versions."""
    return preflight.Preflight()
