"""The watcher hands over each file made in a log folder, and never a write."""

from __future__ import annotations

import os
import queue

from backstage.control.daemon.watcher import Watcher
from tests.helpers import poll


def test_a_rotated_copy_is_handed_over_and_a_write_is_not(tmp_path):
    home, logs = tmp_path / "home", tmp_path / "log"
    home.mkdir()
    logs.mkdir()
    log = logs / "Shop.Front.log"
    log.write_text("a line\n")
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    made: list[str] = []
    watcher = Watcher(events, made.append)
    try:
        watcher.follow(str(home), [], [], [str(logs)])
        with open(log, "a") as written:
            written.write("another line\n")
        os.rename(log, f"{log}.1700000000")  # as uWSGI rotates it past log_max
        log.write_text("")  # and opens it again
        poll(lambda: len(made) >= 2, 10)
    finally:
        watcher.stop()
    assert made == [f"{log}.1700000000", str(log)]
    assert events.empty()  # no pass for it
