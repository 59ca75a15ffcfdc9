"""Waking on a file's writes (what act.start() waits on while a vassal's workers load)."""

from __future__ import annotations

import threading

from backstage.files.inotify import Written


def _later(action):
    """Run `action` in a thread once the caller waits; joined by the test."""
    thread = threading.Thread(target=action)
    thread.start()
    return thread


def test_a_write_to_the_file_ends_the_wait_and_each_wait_needs_a_new_one(tmp_path):
    log = tmp_path / "act.log"
    log.write_text("*** Starting uWSGI ***\n")
    with Written(str(log)) as written:
        assert written.wait(0.01) is False  # nothing written: the timeout

        def append():
            with open(log, "a") as out:
                out.write("WSGI app 0 (mountpoint='') ready\n")

        thread = _later(append)
        assert written.wait(60.0) is True  # woken by the write, not the minute
        thread.join()
        written.wait(0.01)  # the write's close, should it have come after the wake
        assert written.wait(0.01) is False  # the write was taken: none since


def test_a_file_not_there_yet_is_waited_for_in_its_folder(tmp_path):
    log = tmp_path / "act.log"  # a new Act's log: its vassal makes it
    with Written(str(log)) as written:
        thread = _later(lambda: log.write_text("*** Starting uWSGI ***\n"))
        assert written.wait(60.0) is True
        thread.join()


def test_without_a_folder_to_watch_it_only_sleeps(tmp_path):
    with Written(str(tmp_path / "gone" / "act.log")) as written:
        assert written.wait(0.01) is False
