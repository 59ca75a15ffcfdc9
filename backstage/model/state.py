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
    `sleeping`: the Emperor waits to spawn the Act on demand with no process behind it
    (it went idle), and spawns it at the next request at its port."""
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


def explain(
    state: str,
    key: str,
    port: int,
    *,
    problem: str = "",
    refused: str = "",
    port_holder: str = "",
    attempts: int = 0,
    manager_running: bool = True,
    emperor_running: bool = True,
    spawned: bool = False,
) -> str:
    """What is wrong with an Act in `state`, and what to do, in one line; "" when nothing
    is. `status`, `act ls`, `top`, the dashboard and the metrics all show this one line.

    `port_holder` names who holds the Act's port while it is not listening there (an Act
    key, or "a process outside the Production"); `attempts` is how often the Emperor saw
    it die before it served; `spawned` whether the Emperor runs a process for it. Facts
    that do not fit the state are not said."""
    if state == INVALID:
        return f"its declaration cannot be used: {problem}; it plays on as it was until fixed"
    if state == FAILED:
        times = f" ({attempts} tries)" if attempts > 1 else ""
        return (
            f"uWSGI ended it before it served{times}, it is retried ever more slowly: "
            f"`backstage logs {key}` says why"
        )
    if state == STARTING:
        if not emperor_running:
            return (
                "the Emperor is down: the Production Manager starts it again"
                if manager_running
                else "the Emperor and the Production Manager are down: `backstage up`"
            )
        if not manager_running:
            return "the Production Manager is not running, nothing starts it: `backstage up`"
        if port_holder:
            return (
                f"port {port} is held by {port_holder}: give it a free one "
                f"(`backstage act set {key} port=N`) or stop that"
            )
        if spawned:
            return f"its app is loading: `backstage logs {key}` says how far it is"
        return (
            "the Production Manager has yet to start it (it looks each second): "
            "its log says why it does not, should this last"
        )
    if refused:
        return refused_line(refused)
    return ""


def refused_line(refused: str) -> str:
    """What is said of an Act whose code on disk was refused by the pre-flight."""
    return f"the code on disk is newer than what serves, refused: {refused}"
