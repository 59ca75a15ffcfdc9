from __future__ import annotations

import pytest

from backstage.model.state import FAILED, RUNNING, STARTING, STOPPED, derive_state


@pytest.mark.parametrize(
    ("enabled", "stage_up", "blacklisted", "serving", "state"),
    [
        (True, True, False, True, RUNNING),
        (False, True, False, True, RUNNING),  # being withdrawn, still serving
        (True, True, True, False, FAILED),
        (False, True, True, False, STOPPED),  # a failure the user has stopped
        (True, True, False, False, STARTING),
        (True, False, False, False, STOPPED),  # declared, but no Stage: nothing plays
        (False, False, False, False, STOPPED),
        (False, True, False, False, STOPPED),
    ],
)
def test_state_table(enabled, stage_up, blacklisted, serving, state):
    assert derive_state(enabled, stage_up, blacklisted, serving) == state
