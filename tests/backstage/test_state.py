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
