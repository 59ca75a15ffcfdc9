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
