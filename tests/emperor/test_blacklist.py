from __future__ import annotations

from pathlib import Path

from emperor.stats import BlacklistEntry, parse_emperor_stats

DATA = Path(__file__).parent / "data"


def test_a_first_failure_is_refused_only_within_its_second():
    emperor = parse_emperor_stats((DATA / "emperor_stats.json").read_bytes())
    (entry,) = emperor.blacklist
    assert emperor.blacklist_entry(entry.id) is entry and emperor.blacklisted(entry.id)
    assert emperor.blacklist_entry("nobody.ini") is None
    assert entry.throttle_level == 1  # ms, after one failure
    assert entry.refused_until() == entry.last_attempt + 1.001


def test_each_further_failure_adds_a_second():
    entry = BlacklistEntry(
        "a.ini", throttle_level=3001, attempt=3, first_attempt=90, last_attempt=100
    )
    assert entry.refused_until() == 100 + 1 + 3.001
