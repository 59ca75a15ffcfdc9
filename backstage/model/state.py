"""An Act's state, worked out each time from what is declared and what stats say."""

from __future__ import annotations

STOPPED, STARTING, RUNNING, FAILED = "stopped", "starting", "running", "failed"
STATES = (STOPPED, STARTING, RUNNING, FAILED)


def derive_state(enabled: bool, stage_up: bool, blacklisted: bool, serving: bool) -> str:
    """An Act's state from what the Emperor and the Act's stats say, and what is declared."""
    if serving:
        return RUNNING
    if enabled and blacklisted:
        return FAILED  # the Emperor refused it after it died before it was ever loyal
    if enabled and stage_up:
        return STARTING  # declared and the Stage is up: listed, or about to be pushed
    return STOPPED
