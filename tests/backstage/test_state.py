from __future__ import annotations

import pytest

from backstage.model.state import FAILED, INVALID, RUNNING, STARTING, STOPPED, derive_state


@pytest.mark.parametrize(
    ("enabled", "blacklisted", "serving", "invalid", "state"),
    [
        (True, False, True, False, RUNNING),
        (False, False, True, False, RUNNING),  # being withdrawn, still serving
        (True, True, False, False, FAILED),
        (False, True, False, False, STOPPED),  # a failure the user has stopped
        (True, False, False, False, STARTING),  # on its way, or its Emperor is down
        (False, False, False, False, STOPPED),
        (True, False, True, True, INVALID),  # plays on, but its file cannot be read
        (False, False, False, True, INVALID),
    ],
)
def test_state_table(enabled, blacklisted, serving, invalid, state):
    assert derive_state(enabled, blacklisted, serving, invalid) == state


def test_an_enabled_act_the_emperor_holds_with_no_process_sleeps():
    from backstage.model.state import SLEEPING

    assert derive_state(True, False, False, sleeping=True) == SLEEPING
    assert derive_state(True, False, True, sleeping=True) == RUNNING  # woken meanwhile
    assert derive_state(False, False, False, sleeping=True) == STOPPED  # being withdrawn
    assert derive_state(True, False, False, invalid=True, sleeping=True) == INVALID


def test_each_state_says_what_is_wrong_and_what_to_do():
    from backstage.model.state import SLEEPING, explain

    assert explain(RUNNING, "V/A", 8001) == ""
    assert explain(STOPPED, "V/A", 8001) == ""
    assert explain(SLEEPING, "V/A", 8001) == ""
    assert "Manager has yet to start it" in explain(STARTING, "V/A", 8001)
    assert "`backstage logs V/A`" in explain(STARTING, "V/A", 8001, spawned=True)
    held = explain(STARTING, "V/A", 8001, port_holder="V/B")
    assert "port 8001 is held by V/B" in held and "backstage act set V/A port=" in held
    assert "`backstage up`" in explain(STARTING, "V/A", 8001, manager_running=False)
    assert "Manager starts it" in explain(STARTING, "V/A", 8001, emperor_running=False)
    failed = explain(FAILED, "V/A", 8001, attempts=3)
    assert "(3 tries)" in failed and "`backstage logs V/A`" in failed
    invalid = explain(INVALID, "V/A", 8001, problem="'$(X)' holds '$('")
    assert "'$(X)' holds '$('" in invalid and "plays on as it was" in invalid
    refused = explain(RUNNING, "V/A", 1, refused="SyntaxError")
    assert refused == "the code on disk is newer than what serves, refused: SyntaxError"
    # a fact that does not fit the state is not said
    assert explain(RUNNING, "V/A", 8001, port_holder="V/B", manager_running=False) == ""
