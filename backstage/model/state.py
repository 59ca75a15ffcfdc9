"""An Act's state, worked out each time from what is declared and what stats say."""

from __future__ import annotations

STOPPED, STARTING, RUNNING, FAILED, INVALID = "stopped", "starting", "running", "failed", "invalid"
SLEEPING = "sleeping"
STATES = (STOPPED, STARTING, RUNNING, FAILED, SLEEPING, INVALID)


def derive_state(
    enabled: bool, blacklisted: bool, serving: bool, invalid: bool = False, sleeping: bool = False
) -> str:
    """An Act's state from what the Emperor and the Act's stats say, and what is declared.

    `stopped` is only ever a deliberate stop: an enabled Act that does not serve is
    `starting`, whether its vassal is on its way or the Emperor itself is down (then
    whether it heals depends on the Production Manager, which the status shows).
    `sleeping`: the Emperor holds the Act's port with no process behind it (it went
    idle), and spawns it at the next request."""
    if invalid:
        return INVALID  # its declaration cannot be read; it plays on as it was, if it did
    if serving:
        return RUNNING
    if enabled and sleeping:
        return SLEEPING
    if enabled and blacklisted:
        return FAILED  # the Emperor refused it after it died before it was ever loyal
    if enabled:
        return STARTING
    return STOPPED
