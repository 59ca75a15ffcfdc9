"""Reconcile: what should play against what the Emperor says plays, as a pure function.

The Production Manager's loop reads (the declared files rendered into vassal configs,
the Emperor's stats, which ports are held), calls `reconcile`, and carries out the
Plan it returns. Nothing here does I/O, so every case is tested on recorded stats.

The rules, each learnt from uWSGI 2.0:
- a wanted vassal the Emperor does not list is pushed, unless it was pushed less than
  SETTLE ago (it is on its way) or its port is held (the workers of a killed master
  linger; pushed now it would fail to bind and be blacklisted); a user's start that
  cleared it from the blacklist has the loop forget that push first (`forget_pushes`);
- a blacklisted vassal is left alone until its throttle has run out, then pushed again,
  as the Emperor's directory monitor does by itself: a passing cause heals, a broken
  app is retried ever more slowly and shows failed meanwhile;
- a listed vassal whose config changed is withdrawn, and pushed anew once gone: over
  zmq, from the second Emperor-sent reload on, a vassal reads the config before last;
  so is one the Emperor holds another on-demand socket for (uWSGI keeps the first);
- a listed vassal nobody wants, named with this Production's prefix, is withdrawn,
  unless it is kept: an Act whose declaration cannot be read right now (being
  rewritten, or broken by hand) plays on as it was until it can be;
- a dead Emperor is started again, and what was remembered of it forgotten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from emperor.holder import HeldFile
from emperor.stats import EmperorStats

# A pushed vassal shows in the Emperor's list almost at once; until this has passed
# a missing one is taken as "on its way", not pushed again.
SETTLE = 3.0


@dataclass(frozen=True)
class Wanted:
    config: str
    port: int
    on_demand: str = ""  # the address the Emperor holds for a vassal it spawns on demand
    held: HeldFile | None = None  # the sockets the socket holder holds for it

    @cached_property
    def digest(self) -> str:  # worked out once: a pass and a look at a death ask often
        text = f"{self.on_demand}\n{self.config}" if self.on_demand else self.config
        return hashlib.sha1(text.encode()).hexdigest()


@dataclass(frozen=True)
class Pushed:
    digest: str
    at: float  # the loop's monotonic clock


@dataclass(frozen=True)
class Memory:
    """What the loop remembers between passes; lost with the process, and that is fine:
    a new Manager adopts what plays as it is."""

    pushed: Mapping[str, Pushed] = field(default_factory=dict)
    withdrawn: Mapping[str, float] = field(default_factory=dict)
    waiting: frozenset[str] = frozenset()  # said once: waiting for a held port


def forget_pushes(memory: Memory, names: frozenset[str] | set[str]) -> Memory:
    """`memory` without when `names` were last pushed: a user forgave them (cleared the
    Emperor's blacklist after a fix), and a push of the fixed app is not to wait SETTLE
    on the push of the broken one. A listed one is adopted as it runs."""
    if not names & memory.pushed.keys():
        return memory
    pushed = {name: push for name, push in memory.pushed.items() if name not in names}
    return Memory(pushed, memory.withdrawn, memory.waiting)


@dataclass(frozen=True)
class Plan:
    start_emperor: bool = False
    push: tuple[tuple[str, str, str], ...] = ()  # (vassal name, config, on-demand socket)
    withdraw: tuple[str, ...] = ()
    memory: Memory = Memory()
    notes: tuple[str, ...] = ()  # what to log


def unplayed_ports(wanted: Mapping[str, Wanted], emperor: EmperorStats | None) -> set[int]:
    """The ports worth checking before a pass: those of wanted vassals not listed."""
    live = {vassal.id for vassal in emperor.vassals} if emperor else set()
    return {want.port for name, want in wanted.items() if name not in live}


def reconcile(
    wanted: Mapping[str, Wanted],
    emperor: EmperorStats | None,
    emperor_running: bool,
    memory: Memory,
    now: float,
    wall: float,
    held_ports: frozenset[int] | set[int],
    ours: Callable[[str], bool],
    keep: frozenset[str] | set[str] = frozenset(),
) -> Plan:
    """The pushes and withdrawals that bring what plays to what is wanted.

    `emperor` is the Emperor's stats (None when it does not answer) and `emperor_running`
    whether its process lives; `now` is the loop's monotonic clock and `wall` the time
    of day (the blacklist speaks in it); `ours` tells this Production's vassals and
    `keep` names those never withdrawn for not being wanted."""
    if not emperor_running:
        return Plan(start_emperor=True, memory=Memory(), notes=("starting the Emperor",))
    if emperor is None:
        return Plan(memory=memory)  # not answering this instant; the next pass looks again
    pushed = dict(memory.pushed)
    withdrawn = dict(memory.withdrawn)
    waiting = set(memory.waiting)
    push: list[tuple[str, str, str]] = []
    withdraw: list[str] = []
    notes: list[str] = []
    live = {vassal.id for vassal in emperor.vassals}
    for name, want in wanted.items():
        refused = emperor.blacklist_entry(name)
        if refused is not None and name not in live and wall < refused.refused_until():
            continue
        # Listed with an entry: a master that has served no request yet (the Emperor
        # keeps the entry of the one before it, which exited before its first request,
        # until this one's first): left alone, unless its config changed, then replaced
        # as any other (a second change before any request was never played)
        digest = want.digest
        before = pushed.get(name)
        if name not in live:
            if before is not None and now - before.at < SETTLE:
                continue
            if want.port in held_ports:
                if name not in waiting:
                    notes.append(f"{name} waits: port {want.port} is held by another process")
                    waiting.add(name)
                continue
            waiting.discard(name)
            notes.append(f"pushing {name}")
        elif before is None and not _on_demand_changed(emperor, name, want):
            pushed[name] = Pushed(digest, now)  # adopted as it runs
            continue
        elif before is not None and before.digest == digest:
            continue
        else:
            if now - withdrawn.get(name, -SETTLE) >= SETTLE:
                notes.append(f"withdrawing {name} to play its changed config")
                withdraw.append(name)
                withdrawn[name] = now
            continue
        push.append((name, want.config, want.on_demand))
        pushed[name] = Pushed(digest, now)
        withdrawn.pop(name, None)
    for name in sorted(live - wanted.keys() - keep):
        if not ours(name) or now - withdrawn.get(name, -SETTLE) < SETTLE:
            continue
        notes.append(f"withdrawing {name}")
        withdraw.append(name)
        withdrawn[name] = now
        pushed.pop(name, None)
    return Plan(
        push=tuple(push),
        withdraw=tuple(withdraw),
        memory=Memory(pushed, withdrawn, frozenset(waiting)),
        notes=tuple(notes),
    )


def _on_demand_changed(emperor: EmperorStats, name: str, want: Wanted) -> bool:
    """The Emperor lists `name` waiting on another on-demand socket than wanted (pushed
    by a Manager before an upgrade): it never moves it by itself, so it is withdrawn and
    pushed anew, as for a changed config."""
    listed = emperor.vassal(name)
    return listed is not None and listed.on_demand != want.on_demand


def settled(
    wanted: Mapping[str, Wanted],
    emperor: EmperorStats | None,
    plan: Plan,
    ours: Callable[[str], bool],
    keep: frozenset[str] | set[str] = frozenset(),
) -> bool:
    """What plays is what is wanted, and nothing is on its way: the Emperor answered,
    the plan changes nothing and waits for no port, every wanted vassal is listed with
    the config last pushed and none refused, and nothing of ours plays unwanted. Until
    then the loop looks again every second (a push to see listed, a vassal withdrawn for
    its changed config to see gone, a throttle to run out, a port to come free); once
    settled, only a change, a death or the slow safety net starts a pass."""
    if emperor is None or plan.start_emperor or plan.push or plan.withdraw:
        return False
    if plan.memory.waiting:
        return False
    live = {vassal.id for vassal in emperor.vassals}
    # A vassal waiting for its next request (asleep) keeps the entry of a failure before
    # it until it is woken and turns loyal: nothing a pass could change, and looking
    # again every second would be a pass a second for as long as it sleeps
    waiting = {vassal.id for vassal in emperor.vassals if vassal.waiting}
    # So does one whose workers accept (a master after one that ended before its first
    # request, until its own first): it serves, and its death wakes the loop as any does
    serving = {vassal.id for vassal in emperor.vassals if vassal.accepting and vassal.pid > 0}
    refused = {entry.id for entry in emperor.blacklist} - waiting - serving
    if any(name not in live or name in refused for name in wanted):
        return False
    # withdrawn and still listed while it stops: its death may come before the Emperor
    # unlists it, or unseen, and nothing else would start the pass that pushes it anew
    pushed = plan.memory.pushed
    if any(name in pushed and pushed[name].digest != want.digest for name, want in wanted.items()):
        return False
    if any(_on_demand_changed(emperor, name, want) for name, want in wanted.items()):
        return False
    return not any(ours(name) for name in live - wanted.keys() - keep)
