"""Rotated logs: found, pruned, tailed and followed across a rotation (as uWSGI
rotates: rename to LOG.<unixtime>, then a new LOG)."""

from __future__ import annotations

import os

from backstage.files.fs import LogFollower, log_backups, prune_log_backups, tail_across


def test_backups_are_found_oldest_first_and_pruned_to_the_newest(tmp_path):
    log = tmp_path / "V.A.log"
    log.write_text("now\n")
    for stamp in (1700000300, 1700000100, 1700000200):
        (tmp_path / f"V.A.log.{stamp}").write_text(f"{stamp}\n")
    (tmp_path / "V.A.log.old").write_text("not ours\n")
    (tmp_path / "V.AB.log.1700000000").write_text("another Act's\n")
    assert [os.path.basename(p) for p in log_backups(str(log))] == [
        "V.A.log.1700000100",
        "V.A.log.1700000200",
        "V.A.log.1700000300",
    ]
    assert prune_log_backups(str(log), 2) == [str(tmp_path / "V.A.log.1700000100")]
    assert len(log_backups(str(log))) == 2 and (tmp_path / "V.A.log.old").exists()
    assert prune_log_backups(str(log), 2) == []


def test_logs_that_share_a_folder_are_pruned_from_one_listing(tmp_path):
    logs = [tmp_path / f"V.{name}.log" for name in ("A", "B")]
    for log in logs:
        for stamp in (1700000100, 1700000200, 1700000300):
            (tmp_path / f"{log.name}.{stamp}").write_text("old\n")
    listings: dict[str, list[str]] = {}
    assert prune_log_backups(str(logs[0]), 1, listings) == [
        str(tmp_path / f"V.A.log.{stamp}") for stamp in (1700000100, 1700000200)
    ]
    assert list(listings) == [str(tmp_path)]
    (tmp_path / "V.B.log.1700000400").write_text("after the listing\n")
    # the pass's listing: what came after it waits for the next pass
    assert len(prune_log_backups(str(logs[1]), 1, listings)) == 2
    assert prune_log_backups(str(logs[1]), 1) == [str(tmp_path / "V.B.log.1700000300")]


def test_the_tail_reaches_into_the_copy_just_rotated(tmp_path):
    log = tmp_path / "a.log"
    (tmp_path / "a.log.1700000000").write_text("one\ntwo\nthree\n")
    log.write_text("four\n")
    assert tail_across(str(log), 3) == "two\nthree\nfour"
    assert tail_across(str(log), 1) == "four"
    assert tail_across(str(tmp_path / "none.log"), 5) == ""


def test_following_goes_on_across_a_rotation(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("before\n")
    follower = LogFollower(str(log))
    assert follower.read() == ""
    with open(log, "a") as out:
        out.write("one\n")
    assert follower.read() == "one\n"
    with open(log, "a") as out:
        out.write("two\n")  # written, then rotated before the next read
    os.rename(log, tmp_path / "a.log.1700000000")
    log.write_text("three\n")
    assert follower.read() == "two\nthree\n"
    with open(log, "a") as out:
        out.write("four\n")
    assert follower.read() == "four\n"
    follower.close()


def test_a_log_its_writers_never_reopen_is_rotated_in_place(tmp_path):
    from backstage.files.fs import rotate_in_place

    log = tmp_path / "emperor.log"
    writer = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)  # as the Emperor's
    try:
        os.write(writer, b"old line\n" * 100)
        assert rotate_in_place(str(log), 2000, 1700000000.5) is None  # small: left alone
        assert rotate_in_place(str(log), 0, 1700000000.5) is None  # 0: never rotated
        backup = rotate_in_place(str(log), 800, 1700000000.5)
        assert backup == f"{log}.1700000000"
        with open(backup, "rb") as copy:
            assert copy.read() == b"old line\n" * 100
        assert oct(os.stat(backup).st_mode & 0o777) == "0o640"
        # the writer goes on at the start of the emptied log, no hole before its line
        os.write(writer, b"new line\n")
        assert log.read_bytes() == b"new line\n"
        os.write(writer, b"more\n" * 200)
        assert rotate_in_place(str(log), 800, 1700000000.9) is None  # that second's name taken
        assert rotate_in_place(str(log), 800, 1700000001.0) == f"{log}.1700000001"
        assert [os.path.basename(p) for p in log_backups(str(log))] == [
            "emperor.log.1700000000",
            "emperor.log.1700000001",
        ]
    finally:
        os.close(writer)
