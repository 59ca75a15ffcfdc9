"""The one line `backstage` prints for an OSError: the disk is blamed only when it is
the cause."""

from __future__ import annotations

import errno
import sys

import pytest

from backstage.ui import cli


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError(errno.ENOTEMPTY, "Directory not empty", "src"),
            "backstage: Directory not empty: src\n",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/srv/act.toml"),
            "backstage: No space left on device: /srv/act.toml (is the disk full or read-only?)\n",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/srv"),
            "backstage: Read-only file system: /srv (is the disk full or read-only?)\n",
        ),
    ],
)
def test_the_disk_hint_comes_with_a_disk_error_only(monkeypatch, capsys, error, line):
    def fails(**_: object) -> None:
        raise error

    monkeypatch.setattr(cli.cli, "main", fails)
    monkeypatch.setattr(sys, "argv", ["backstage", "status"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == line
