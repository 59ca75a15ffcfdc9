"""The order the test processes take the cases in: longest first, from the seconds each
case took last recorded (tests/durations.json). pytest-xdist hands a process its next
case as it runs dry, in the order collected: a long case started near the end holds one
process alone while the other has nothing left. Started first, the long cases overlap
each other and the many short ones fill the gaps. Only under xdist: in one process the
order stays as written (unit tests first, for `-x`).

Recorded with `--record-durations`: the file keeps the cases of 1 s or more (setup, call
and teardown together), merged into what it held, so that the default run and the slow
run each add theirs; a recorded case whose test function is gone from its file (removed,
renamed, or its file gone) is dropped. A case missing from it (new, or short) keeps its
place after the recorded ones; a stale figure only changes the order, never what runs."""

from __future__ import annotations

import functools
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable

import pytest

PATH = os.path.join(os.path.dirname(__file__), "durations.json")
KEPT = 1.0  # seconds: shorter cases keep their written order


def case_id(nodeid: str) -> str:
    """The node id without the `@group` suffix of an xdist_group (tests/conftest.py)."""
    base, at, group = nodeid.rpartition("@")
    return base if at and "]" not in group and "::" not in group else nodeid


def recorded(path: str = PATH) -> dict[str, float]:
    try:
        with open(path) as source:
            return json.load(source)
    except FileNotFoundError:
        return {}


def longest_first(items: list[pytest.Item], seconds: dict[str, float]) -> None:
    """Sort in place: recorded cases by their seconds, longest first; the rest after them
    in the order they came (a stable sort)."""
    items.sort(key=lambda item: -seconds.get(case_id(item.nodeid), 0.0))


def merged(
    old: dict[str, float],
    new: dict[str, float],
    exists: Callable[[str], bool] = lambda case: True,
) -> dict[str, float]:
    """The new figures over the old ones, the old ones only of cases that still `exist`."""
    kept = {case: took for case, took in old.items() if exists(case)}
    both = {**kept, **{case: round(took, 1) for case, took in new.items()}}
    return {case: took for case, took in sorted(both.items()) if took >= KEPT}


def defined(case: str, source_of: Callable[[str], str | None]) -> bool:
    """Whether the test function of `case` ("tests/a.py::Class::test_x[param]") is still
    defined in its file, `source_of(path)` giving the file's text (None: no such file).
    A recorded id with an xdist group suffix is an old form of one: never defined."""
    path, _, rest = case.partition("::")
    name = rest.partition("[")[0].rpartition("::")[2]
    source = source_of(path)
    if source is None or not name.isidentifier():
        return False
    return re.search(rf"^\s*(?:async\s+)?def {name}\(", source, re.MULTILINE) is not None


def source_in(root: str) -> Callable[[str], str | None]:
    @functools.cache
    def source_of(path: str) -> str | None:
        try:
            with open(os.path.join(root, path)) as source:
                return source.read()
        except FileNotFoundError:
            return None

    return source_of


class Order:
    """Longest first, on an xdist process only (the controller hands out the cases in
    the order each process collected them, which must be the same on each)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        longest_first(items, self.seconds)


def configure(config: pytest.Config) -> None:
    """Orders the cases on an xdist process, records them where the run is reported."""
    if hasattr(config, "workerinput"):
        config.pluginmanager.register(Order(recorded()), "backstage-durations-order")
    elif config.getoption("record_durations"):
        recorder = Recorder(PATH, str(config.rootpath))
        config.pluginmanager.register(recorder, "backstage-durations-record")


class Recorder:
    """Adds up each case's phases as the reports come in (on xdist's controller they
    come from every process) and writes the file at the end of the run."""

    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = root
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[case_id(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        source_of = source_in(self.root)
        found = merged(recorded(self.path), self.seconds, lambda case: defined(case, source_of))
        with open(self.path + ".new", "w") as out:
            json.dump(found, out, indent=0, sort_keys=True)
            out.write("\n")
        os.replace(self.path + ".new", self.path)
