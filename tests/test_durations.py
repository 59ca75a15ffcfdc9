"""The order of the cases under xdist (tests/durations.py): pure parts."""

from __future__ import annotations

from types import SimpleNamespace

from tests.durations import case_id, defined, longest_first, merged, source_in


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


def test_merged_drops_the_old_figures_of_cases_gone_and_keeps_the_rest():
    old = {"gone": 10.0, "kept": 5.0, "rerun": 3.0}
    assert merged(old, {"rerun": 4.0, "new": 2.0}, lambda case: case != "gone") == {
        "kept": 5.0,
        "new": 2.0,
        "rerun": 4.0,
    }


SOURCE = """
def test_plain():
    pass


class TestGroup:
    async def test_method(self):
        pass

def helper_test_elsewhere():
    pass
"""


def test_defined_finds_the_function_of_a_case_in_its_file():
    files = {"tests/a.py": SOURCE}
    assert defined("tests/a.py::test_plain", files.get)
    assert defined("tests/a.py::test_plain[zmq-x::y]", files.get)
    assert defined("tests/a.py::TestGroup::test_method", files.get)
    assert not defined("tests/a.py::test_removed", files.get)
    assert not defined("tests/a.py::test_elsewhere", files.get)  # a name inside another
    assert not defined("tests/gone.py::test_plain", files.get)
    assert not defined("tests/a.py::test_plain@venue_user", files.get)  # an old form


def test_source_in_reads_files_under_the_root(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "a.py").write_text(SOURCE)
    source_of = source_in(str(tmp_path))
    assert source_of("tests/a.py") == SOURCE
    assert source_of("tests/missing.py") is None
