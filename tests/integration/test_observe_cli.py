"""The commands that observe: `metrics`, `act ls`, `status` exiting 2 on a failed
Act, and `down` saying what it stopped."""

from __future__ import annotations

import json

import pytest

from tests.backstage.ui.fakes import promtool_check
from tests.conftest import cli, cli_quiet, run_cli
from tests.integration.test_failures import break_app


def test_metrics_act_ls_status_and_down(production, venue, caplog):
    home = production.home
    venue.new_act("Good", processes=1)
    broken = venue.new_act("Broken", processes=1, start=False)
    assert run_cli("status", home=home).returncode == 0  # Broken is declared but not failed

    text = cli("metrics", home=home).stdout
    assert 'backstage_act_state{venue="TestVenue",act="Good",state="running"} 1' in text
    promtool_check(text)

    listed = json.loads(cli("act", "ls", "TestVenue", "--json", home=home).stdout)
    assert [(a["act"], a["state"]) for a in listed] == [("Broken", "stopped"), ("Good", "running")]
    assert cli_quiet(caplog, "act", "ls", "Nowhere", home=home).returncode == 1

    break_app(broken)
    with pytest.raises(Exception, match="no_such_module_here"):
        broken.start(timeout=30)
    failed = run_cli("status", home=home, check=False)
    assert failed.returncode == 2 and "failed: TestVenue/Broken" in failed.stderr
    assert "Traceback" not in failed.stderr and "TestVenue/Good" in failed.stdout

    down = run_cli("down", home=home)
    assert "stopped 1 Acts: TestVenue/Good" in down.stdout
    assert "stopped the Emperor" in down.stdout
    assert "nothing was running" in run_cli("down", home=home).stdout
