"""`reconcile` on Emperor stats recorded from a real uWSGI 2.0.31 Emperor.

The files under data/reconcile/ are what `--emperor-stats` wrote, byte for byte, while an
Emperor ran with `--emperor zmq://ipc://...` and vassals were pushed over zmq (frames
`[b"touch", NAME, config]`), each vassal an ini with `http-socket = 127.0.0.1:PORT`,
`master`, `processes = 1`, a `wsgi-file` and `need-app`:

- healthy.json: two of ours (bsdeadbeef.V.A/B.ini) and a foreign other.ini, all up;
- killed.json: B's master killed -9 a moment before. The Emperor did NOT respawn it: a
  vassal turns loyal only after its first request, B had served none, so it was removed
  and blacklisted (throttle 1 ms, attempt 0). It stayed so for the 5 s watched;
- broken_app.json / broken_app_retried.json: C's wsgi-file raises ImportError; blacklisted
  at its first failure (throttle 1 ms, attempt 0), then pushed again: 1001 ms, attempt 1;
- listed_blacklisted.json: B killed (so blacklisted), pushed again and up: listed and
  still blacklisted, since it has served no request and so is not loyal.

The clock is faked: `now` is a plain monotonic number, `wall` is set from the recording.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backstage.model.reconcile import (
    SETTLE,
    Memory,
    Plan,
    Pushed,
    Wanted,
    forget_pushes,
    reconcile,
    settled,
)
from emperor.stats import EmperorStats, parse_emperor_stats

DATA = Path(__file__).parent / "data" / "reconcile"
A, B, C, OTHER = "bsdeadbeef.V.A.ini", "bsdeadbeef.V.B.ini", "bsdeadbeef.V.C.ini", "other.ini"
PORTS = {A: 18301, B: 18302, C: 18304}


def recorded(name: str) -> EmperorStats:
    return parse_emperor_stats((DATA / f"{name}.json").read_bytes())


def want(name: str, app: str = "/tmp/rec/app.py") -> Wanted:
    port = PORTS[name]
    config = (
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmaster = true\nprocesses = 1\n"
        f"wsgi-file = {app}\nneed-app = true\n"
    )
    return Wanted(config, port)


def ours(name: str) -> bool:
    return name.startswith("bsdeadbeef.")


def run(wanted, stats, memory, now, wall, held=frozenset(), running=True):
    return reconcile(wanted, stats, running, memory, now, wall, held, ours)


def past_blacklist(stats: EmperorStats, name: str) -> float:
    entry = stats.blacklist_entry(name)
    assert entry is not None
    return entry.refused_until() + 10


def test_recordings_parse_as_observed():
    healthy, killed = recorded("healthy"), recorded("killed")
    assert healthy.version == "2.0.31"
    assert [v.id for v in healthy.vassals] == [A, B, OTHER]
    assert healthy.blacklist == ()
    assert [v.id for v in killed.vassals] == [A, OTHER]
    assert [b.id for b in killed.blacklist] == [B]
    assert all(v.loyal == 0 for v in healthy.vassals)  # loyal only after a first request


def test_dead_vassal_is_pushed_then_left_to_settle_then_pushed_again():
    stats = recorded("killed")
    wall = past_blacklist(stats, B)
    wanted = {A: want(A), B: want(B)}
    first = run(wanted, stats, Memory(), now=100.0, wall=wall)
    assert first.push == ((B, want(B).config, ""),)
    assert first.withdraw == ()
    assert first.notes == (f"pushing {B}",)
    assert first.memory.pushed[B] == Pushed(want(B).digest, 100.0)
    assert first.memory.pushed[A] == Pushed(want(A).digest, 100.0)  # adopted as it runs
    # Still not listed a moment later: it is on its way.
    second = run(wanted, stats, first.memory, now=100.0 + SETTLE - 0.1, wall=wall + 2.9)
    assert second.push == ()
    third = run(wanted, stats, second.memory, now=100.0 + SETTLE, wall=wall + 3)
    assert third.push == ((B, want(B).config, ""),)


@pytest.mark.parametrize(
    ("recording", "throttle_level", "attempt", "seconds"),
    [("broken_app", 1, 0, 1.001), ("broken_app_retried", 1001, 1, 2.001)],
)
def test_blacklisted_vassal_waits_out_its_throttle(recording, throttle_level, attempt, seconds):
    stats = recorded(recording)
    entry = stats.blacklist_entry(C)
    assert entry is not None and stats.vassal(C) is None
    assert (entry.throttle_level, entry.attempt) == (throttle_level, attempt)
    until = entry.refused_until()
    assert until == pytest.approx(entry.last_attempt + seconds)
    wanted = {A: want(A), C: want(C, "/tmp/rec/broken.py")}
    memory = Memory(pushed={C: Pushed(wanted[C].digest, 0.0)})
    refused = run(wanted, stats, memory, now=100.0, wall=until - 0.01)
    assert refused.push == ()
    assert refused.memory.pushed[C] == Pushed(wanted[C].digest, 0.0)
    again = run(wanted, stats, refused.memory, now=101.0, wall=until)
    assert again.push == ((C, wanted[C].config, ""),)
    # The same stats on the next pass: pushed once, not again while it settles.
    later = run(wanted, stats, again.memory, now=102.0, wall=until + 1)
    assert later.push == ()


def test_a_vassal_forgiven_by_a_user_is_pushed_at_once_the_managers_retry_waits():
    """A user's start clears a broken app's blacklist entry after a fix: its push does
    not wait SETTLE on the push of the broken app. Without that word (the Manager's own
    retry once the throttle ran out) it does."""
    stats = recorded("broken_app")
    cleared = dataclasses.replace(stats, blacklist=())
    assert cleared.vassal(C) is None and not cleared.blacklisted(C)
    wanted = {A: want(A), C: want(C)}
    memory = Memory(pushed={A: Pushed(wanted[A].digest, 0.0), C: Pushed(wanted[C].digest, 99.0)})
    now = 99.0 + SETTLE - 1.0
    assert run(wanted, cleared, memory, now=now, wall=0.0).push == ()
    assert forget_pushes(memory, {B, OTHER}) is memory  # no word on C: as it was
    forgiven = forget_pushes(memory, {C})
    assert forgiven.pushed == {A: memory.pushed[A]}
    plan = run(wanted, cleared, forgiven, now=now, wall=0.0)
    assert plan.push == ((C, wanted[C].config, ""),)
    # pushed once: the next pass lets it settle as any push
    assert run(wanted, cleared, plan.memory, now=now + 0.5, wall=0.0).push == ()


def test_listed_and_blacklisted_vassal_is_left_alone_unless_its_config_changed():
    stats = recorded("listed_blacklisted")
    assert stats.vassal(B) is not None and stats.blacklisted(B)
    wanted = {A: want(A), B: want(B)}
    for wall in (0.0, past_blacklist(stats, B)):  # within its throttle, and after
        plan = run(wanted, stats, Memory(), now=100.0, wall=wall)
        assert (plan.push, plan.withdraw) == ((), ())
        # a changed config (the entry is its master's before it, which served no
        # request): withdrawn, to be pushed anew once gone, as any other
        old = Memory(pushed={B: Pushed("an older digest", 0.0)})
        plan = run(wanted, stats, old, now=100.0, wall=wall)
        assert (plan.push, plan.withdraw) == ((), (B,))


def test_held_port_waits_says_so_once_and_pushes_once_free():
    stats = recorded("killed")
    wall = past_blacklist(stats, B)
    wanted = {A: want(A), B: want(B)}
    held = frozenset({PORTS[B]})
    first = run(wanted, stats, Memory(), now=100.0, wall=wall, held=held)
    assert first.push == ()
    assert first.notes == (f"{B} waits: port {PORTS[B]} is held by another process",)
    assert first.memory.waiting == {B}
    second = run(wanted, stats, first.memory, now=110.0, wall=wall + 10, held=held)
    assert (second.push, second.notes) == ((), ())
    freed = run(wanted, stats, second.memory, now=111.0, wall=wall + 11)
    assert freed.push == ((B, want(B).config, ""),)
    assert freed.notes == (f"pushing {B}",)
    assert freed.memory.waiting == frozenset()


def test_changed_declaration_is_withdrawn_then_pushed_anew_once_gone():
    healthy = recorded("healthy")
    wanted = {A: want(A), B: want(B)}
    adopted = run(wanted, healthy, Memory(), now=100.0, wall=0.0)
    assert (adopted.push, adopted.withdraw) == ((), ())
    changed = {A: want(A), B: want(B, "/tmp/rec/app2.py")}
    first = run(changed, healthy, adopted.memory, now=101.0, wall=0.0)
    assert (first.push, first.withdraw) == ((), (B,))
    assert first.notes == (f"withdrawing {B} to play its changed config",)
    still = run(changed, healthy, first.memory, now=101.0 + SETTLE - 0.1, wall=0.0)
    assert (still.push, still.withdraw) == ((), ())
    # Gone, and blacklisted as any vassal removed before it was ever loyal.
    killed = recorded("killed")
    gone = run(changed, killed, still.memory, now=105.0, wall=past_blacklist(killed, B))
    assert (gone.push, gone.withdraw) == (((B, changed[B].config, ""),), ())
    assert gone.memory.pushed[B] == Pushed(changed[B].digest, 105.0)
    assert B not in gone.memory.withdrawn


def test_a_vassal_listed_on_another_on_demand_socket_is_withdrawn_then_pushed_anew():
    """A sleeping Act pushed on its TCP port before its port was held: the Emperor keeps
    the first on-demand socket through any reload, so a new Manager plays it anew."""
    healthy = recorded("healthy")
    assert healthy.vassal(B) is not None and healthy.vassal(B).on_demand == ""
    moved = dataclasses.replace(want(B), on_demand="/h/run/V.B.ondemand")
    wanted = {A: want(A), B: moved}
    first = run(wanted, healthy, Memory(), now=100.0, wall=0.0)
    assert (first.push, first.withdraw) == ((), (B,))
    assert not settled(wanted, healthy, run(wanted, healthy, first.memory, 101.0, 0.0), ours)
    killed = recorded("killed")
    gone = run(wanted, killed, first.memory, now=105.0, wall=past_blacklist(killed, B))
    assert gone.push == ((B, moved.config, "/h/run/V.B.ondemand"),)


def test_undeclared_vassals_of_ours_are_withdrawn_foreign_ones_never():
    healthy = recorded("healthy")
    first = run({A: want(A)}, healthy, Memory(), now=100.0, wall=0.0)
    assert (first.push, first.withdraw) == ((), (B,))
    assert first.notes == (f"withdrawing {B}",)
    soon = run({A: want(A)}, healthy, first.memory, now=101.0, wall=0.0)
    assert soon.withdraw == ()
    # Nothing wanted at all: every one of ours goes, in name order; other.ini stays.
    empty = run({}, healthy, Memory(), now=100.0, wall=0.0)
    assert empty.withdraw == (A, B)


def test_dead_emperor_is_started_and_memory_forgotten():
    memory = Memory(pushed={A: Pushed(want(A).digest, 1.0)}, withdrawn={B: 2.0})
    plan = run({A: want(A)}, None, memory, now=100.0, wall=0.0, running=False)
    assert plan.start_emperor is True
    assert (plan.push, plan.withdraw) == ((), ())
    assert plan.memory == Memory()


def test_running_emperor_not_answering_changes_nothing():
    memory = Memory(pushed={A: Pushed(want(A).digest, 1.0)}, waiting=frozenset({B}))
    plan = run({A: want(A), B: want(B)}, None, memory, now=100.0, wall=0.0)
    assert plan.start_emperor is False
    assert (plan.push, plan.withdraw, plan.notes) == ((), (), ())
    assert plan.memory is memory


def test_a_vassal_whose_declaration_cannot_be_read_plays_on():
    # B's act.toml is being rewritten (or broken by hand): not wanted now, kept as it plays.
    plan = reconcile({}, recorded("healthy"), True, Memory(), 100.0, 0.0, frozenset(), ours, {B})
    assert plan.withdraw == (A,)


def test_settled_only_when_what_plays_is_what_is_wanted_and_nothing_is_on_its_way():
    healthy, killed = recorded("healthy"), recorded("killed")
    wanted = {A: want(A), B: want(B)}
    assert not healthy.blacklist
    calm = run(wanted, healthy, Memory(), now=100.0, wall=0.0)
    assert settled(wanted, healthy, calm, ours)
    # the Emperor not answering, or a vassal not listed (B killed, blacklisted): look again
    assert not settled(wanted, None, calm, ours)
    assert not settled(wanted, killed, Plan(memory=calm.memory), ours)
    # a push or a withdrawal under way, a port waited for
    assert not settled(wanted, healthy, Plan(push=((A, "", ""),)), ours)
    assert not settled(wanted, healthy, Plan(withdraw=(A,)), ours)
    assert not settled(wanted, healthy, Plan(memory=Memory(waiting=frozenset({A}))), ours)
    # one of ours listed and unwanted is on its way out; kept, or foreign, it is not
    assert not settled({A: want(A)}, healthy, calm, ours)
    assert settled({A: want(A)}, healthy, calm, ours, keep={B})
    # listed with the entry of the master before it (killed, pushed again, not yet
    # loyal): settled once it serves, as its death wakes the loop; while it loads, not
    listed = recorded("listed_blacklisted")
    assert {B} <= {v.id for v in listed.vassals} and listed.blacklist_entry(B)
    assert listed.vassal(B).accepting
    assert settled({A: want(A), B: want(B)}, listed, calm, ours)
    loading = dataclasses.replace(
        listed,
        vassals=tuple(
            dataclasses.replace(v, accepting=0) if v.id == B else v for v in listed.vassals
        ),
    )
    assert not settled({A: want(A), B: want(B)}, loading, calm, ours)
    # refused once and now asleep (the Emperor holds its socket, no process): the entry
    # stays until a request wakes it, and no pass can change that
    asleep = recorded("listed_blacklisted_waiting")
    assert asleep.vassal(B).waiting and asleep.blacklist_entry(B)
    sleeping = {A: want(A), B: dataclasses.replace(want(B), on_demand="127.0.0.1:18302")}
    resting = run(sleeping, asleep, Memory(), now=100.0, wall=past_blacklist(asleep, B))
    assert (resting.push, resting.withdraw) == ((), ())
    assert settled(sleeping, asleep, resting, ours)
    # A withdrawn to play its changed config, still listed while it stops: look again
    changed = {A: want(A, app="/tmp/rec/changed.py"), B: want(B)}
    withdrawing = run(changed, healthy, calm.memory, now=101.0, wall=0.0)
    assert withdrawing.withdraw == (A,)
    still = run(changed, healthy, withdrawing.memory, now=102.0, wall=0.0)
    assert still.withdraw == () and still.push == ()
    assert not settled(changed, healthy, still, ours)
