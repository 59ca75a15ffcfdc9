"""The order of the cases under xdist (tests/durations.py): pure parts."""

from __future__ import annotations

from types import SimpleNamespace

from tests.durations import case_id, longest_first, merged


def test_case_id_drops_only_an_xdist_group_suffix():
    assert case_id("tests/a.py::test_x@netns") == "tests/a.py::test_x"
    assert case_id("tests/a.py::test_x[a@b]") == "tests/a.py::test_x[a@b]"
    assert case_id("tests/a.py::test_x[a@b]@venue_user") == "tests/a.py::test_x[a@b]"
    assert case_id("tests/a.py::test_x") == "tests/a.py::test_x"


def test_longest_first_and_the_rest_in_their_written_order():
    items = [SimpleNamespace(nodeid=name) for name in ("u1", "short", "u2", "long@g", "u3")]
    longest_first(items, {"long": 40.0, "short": 2.5})
    assert [item.nodeid for item in items] == ["long@g", "short", "u1", "u2", "u3"]


def test_merged_keeps_the_new_figure_and_drops_what_became_short():
    old = {"a": 10.0, "b": 5.0, "c": 3.0}
    assert merged(old, {"a": 12.04, "b": 0.3, "d": 0.2, "e": 1.0}) == {
        "a": 12.0,
        "c": 3.0,
        "e": 1.0,
    }
