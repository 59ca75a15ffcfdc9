"""The config each Act last served with, and a changed one uWSGI refused, as pure data.

A changed act.toml renders a changed vassal config, and the Manager replaces the Act's
master with one on it. uWSGI may refuse it (a listen queue over the kernel's, a limit
the machine does not grant): the new master dies before it serves, and retried ever
more slowly it never would. One bad file affects only what it declares, and the last
good declaration keeps playing: the Manager pushes the config the Act last served
with in its place, and says why, until its act.toml changes again (another config) or
a start clears its refusal and asks for it anew.

A config is good once the Emperor lists its vassal accepting on it, seen by any pass
after its push (the one that withdraws it for the change, at the latest). A config
pushed is refused once the Emperor counts a failure of its vassal past those it had
counted when it was pushed: it counts one for each master that ends before its first
request, and the exit of the master before (withdrawn for the change) comes before
that push.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from emperor.stats import EmperorStats

from .reconcile import Pushed, Wanted


def failures(emperor: EmperorStats, name: str) -> int:
    """How many times the Emperor saw `name` end before its first request (0: none)."""
    entry = emperor.blacklist_entry(name)
    return 0 if entry is None else entry.attempt + 1


@dataclass(frozen=True)
class Tried:
    """A config pushed, and the failures the Emperor had counted for its vassal then."""

    want: Wanted
    failures: int


@dataclass(frozen=True)
class LastGood:
    """What the Manager remembers between passes; lost with it (a new Manager tries
    what is declared)."""

    good: Mapping[str, Wanted] = field(default_factory=dict)  # last served with
    tries: Mapping[str, Tried] = field(default_factory=dict)  # last pushed
    refused: Mapping[str, str] = field(default_factory=dict)  # the digest uWSGI refused

    def judged(self, name: str, want: Wanted, emperor: EmperorStats) -> LastGood:
        """With `want` remembered as refused when it was the config pushed last for
        `name`, is not the one `name` last served with, and failed since: `playing`
        then gives the one it last served with."""
        last, push = self.good.get(name), self.tries.get(name)
        if self.refused.get(name) == want.digest or last is None or push is None:
            return self
        if last.digest == want.digest or push.want.digest != want.digest:
            return self
        if emperor.vassal(name) is not None or failures(emperor, name) <= push.failures:
            return self
        return LastGood(self.good, self.tries, {**self.refused, name: want.digest})

    def playing(self, name: str, want: Wanted) -> Wanted | None:
        """The config to play in place of `want`, when uWSGI refused it."""
        return self.good.get(name) if self.refused.get(name) == want.digest else None

    def pushed(self, pushes: Mapping[str, Wanted], emperor: EmperorStats) -> LastGood:
        """Each of `pushes` (vassal name to the config pushed) counted as tried."""
        tries = dict(self.tries)
        for name, want in pushes.items():
            tries[name] = Tried(want, failures(emperor, name))
        return LastGood(self.good, tries, self.refused)

    def served(
        self, wanted: Mapping[str, Wanted], emperor: EmperorStats, pushed: Mapping[str, Pushed]
    ) -> LastGood:
        """Each wanted vassal the Emperor lists accepting counted as good on the config
        last pushed for it (`pushed`: the digests the Manager remembers; one adopted as
        it runs is the one wanted); the vassals no longer wanted (an Act stopped,
        removed) forgotten."""
        good = {name: want for name, want in self.good.items() if name in wanted}
        for name, want in wanted.items():
            listed, push = emperor.vassal(name), pushed.get(name)
            if listed is None or not listed.accepting or push is None:
                continue
            tried = self.tries.get(name)
            if tried is not None and tried.want.digest == push.digest:
                good[name] = tried.want
            elif push.digest == want.digest:
                good[name] = want
        # the config pushed is kept for an awake vassal only: thousands asleep would
        # hold a rendered config each (an asleep one wakes on the config wanted)
        tries = {
            name: t
            for name, t in self.tries.items()
            if name in wanted and not _asleep(emperor, name)
        }
        refused = {name: d for name, d in self.refused.items() if name in wanted}
        return LastGood(good, tries, refused)

    def forget(self, names: Iterable[str]) -> LastGood:
        """Their refusals forgotten: a user's start asks for what is declared anew."""
        gone = set(names)
        if not gone & self.refused.keys():
            return self
        refused = {name: d for name, d in self.refused.items() if name not in gone}
        return LastGood(self.good, self.tries, refused)


def _asleep(emperor: EmperorStats, name: str) -> bool:
    listed = emperor.vassal(name)
    return listed is not None and listed.waiting
