"""The graceful leave's wait: an Act is drained once it served nothing new for QUIET
seconds with no worker busy, and the wait ends at DRAIN_TIMEOUT whatever comes."""

from __future__ import annotations

from dataclasses import dataclass, field

from backstage.control.managers import leaving
from backstage.control.managers.leaving import LOOK_EVERY, QUIET, Seen, drain, settled
from backstage.model.layout import ActRef


def test_settled_only_after_quiet_seconds_with_nothing_new_and_no_worker_busy():
    done, seen = settled(None, 10, False, 0.0)
    assert not done and seen == Seen(10, 0.0)
    assert settled(seen, 10, False, QUIET / 2) == (False, seen)
    assert settled(seen, 11, False, QUIET / 2) == (False, Seen(11, QUIET / 2))
    assert settled(seen, 10, True, QUIET) == (False, Seen(10, QUIET))  # busy: it may queue
    assert settled(seen, 10, False, QUIET) == (True, seen)


@dataclass
class Worker:
    status: str = "idle"


@dataclass
class Sess:
    requests: int
    workers: list[Worker] = field(default_factory=lambda: [Worker()])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Act:
    """Serves `rate` requests per look until `until` seconds on the clock."""

    def __init__(self, name: str, clock: Clock, rate: int, until: float) -> None:
        self.ref = ActRef("V", f"/v/{name}", name)
        self.clock, self.rate, self.until, self.served = clock, rate, until, 0

    def sess(self) -> Sess:
        if self.clock.now < self.until:
            self.served += self.rate
        return Sess(self.served)


def test_drain_waits_for_the_last_act_to_go_quiet_and_no_longer():
    clock = Clock()
    quiet_soon, busy_longer = Act("A", clock, 1, 0.3), Act("B", clock, 3, 1.2)
    drain([quiet_soon, busy_longer], clock, clock.sleep)  # type: ignore[list-item]
    # B's last new request is seen at the last look before 1.2 s
    assert 1.2 - LOOK_EVERY + QUIET <= clock.now < 1.2 + QUIET + 0.2


def test_drain_gives_up_at_its_timeout():
    clock = Clock()
    drain([Act("C", clock, 1, 1e9)], clock, clock.sleep)  # type: ignore[list-item]
    assert leaving.DRAIN_TIMEOUT <= clock.now < leaving.DRAIN_TIMEOUT + 0.2
