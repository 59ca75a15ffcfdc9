"""Replacing a file in one step, as every layer writes its files."""

from __future__ import annotations

import os
import stat

import pytest

from emperor.atomic import unlink_if_present, write_atomic


def test_a_file_is_replaced_whole_with_its_mode_and_nothing_left_beside(tmp_path):
    path = str(tmp_path / "a.toml")
    write_atomic(path, "one\n", 0o600)
    write_atomic(path, "two\n", 0o640)
    with open(path) as written:
        assert written.read() == "two\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.toml"]


def test_a_failed_write_names_the_file_meant_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "missing" / "a.toml")
    with pytest.raises(OSError) as raised:
        write_atomic(path, "x")
    assert raised.value.filename == path
    target = tmp_path / "dir"
    target.mkdir()  # a folder in the way: the rename fails after the write
    with pytest.raises(OSError):
        write_atomic(str(target), "x")
    assert sorted(os.listdir(tmp_path)) == ["dir"]


def test_advance_mtime_moves_the_mtime_a_second_past_the_old(tmp_path):
    path = str(tmp_path / "vassal.ini")
    write_atomic(path, "[uwsgi]\n")
    first = os.stat(path).st_mtime
    write_atomic(path, "[uwsgi]\n", advance_mtime=True)
    assert os.stat(path).st_mtime >= first + 1


def test_unlink_if_present_is_quiet_about_a_missing_file(tmp_path):
    path = tmp_path / "gone"
    path.write_text("x")
    unlink_if_present(str(path))
    unlink_if_present(str(path))
    assert not path.exists()


def test_xattrs_are_on_the_file_as_it_takes_the_name(tmp_path):
    path = str(tmp_path / "a.toml")
    write_atomic(path, "one\n", xattrs={"user.test.mark": b"abc"})
    assert os.getxattr(path, "user.test.mark") == b"abc"
