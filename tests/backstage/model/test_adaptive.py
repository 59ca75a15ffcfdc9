"""Adaptive workers: `processes = "1..4"` in act.toml, read, written back and set."""

from __future__ import annotations

import tomllib

from backstage.files import declared
from backstage.model.assign import apply_settings
from backstage.model.spec import ActSpec, from_dict, to_dict


def test_a_range_reads_as_workers_at_rest_and_a_ceiling():
    spec = from_dict(ActSpec, {"name": "A", "port": 8101, "processes": "1..4"}, "act.toml")
    assert (spec.processes, spec.max_processes, spec.adaptive, spec.ceiling) == (1, 4, True, 4)
    fixed = from_dict(ActSpec, {"name": "A", "port": 8101, "processes": 2}, "act.toml")
    assert (fixed.processes, fixed.adaptive, fixed.ceiling) == (2, False, 4)
    # the ceiling may be written both ways when they agree
    same = from_dict(
        ActSpec, {"name": "A", "port": 8101, "processes": "2..5", "max_processes": 5}, "x"
    )
    assert same == from_dict(ActSpec, {"name": "A", "port": 8101, "processes": "2..5"}, "x")


def test_a_range_is_written_back_as_it_was_read(tmp_path):
    path = str(tmp_path / "act.toml")
    spec = ActSpec(name="A", port=8101, processes=1, max_processes=4, adaptive=True)
    declared.dump(path, spec)
    with open(path, "rb") as file:
        data = tomllib.load(file)
    assert data["processes"] == "1..4"
    assert "max_processes" not in data and "adaptive" not in data
    assert from_dict(ActSpec, data, path) == spec
    assert "adaptive" not in to_dict(ActSpec(name="A", port=8101))


def test_act_set_moves_between_fixed_and_adaptive_workers():
    fixed = ActSpec(name="A", port=8101, processes=2, max_processes=8)
    adaptive = apply_settings(fixed, ["processes=1..4"], "act.toml")
    assert (adaptive.processes, adaptive.max_processes, adaptive.adaptive) == (1, 4, True)
    assert apply_settings(fixed, ['processes="1..3"'], "act.toml").ceiling == 3
    back = apply_settings(adaptive, ["processes=3"], "act.toml")
    assert (back.processes, back.max_processes, back.adaptive) == (3, 0, False)
    # a fixed Act keeps its max_processes when only its processes change
    assert apply_settings(fixed, ["processes=3"], "act.toml").max_processes == 8
