"""A link put where a folder, a file or a link is, in one step: renameat2's exchange on
this kernel, and a rename aside where the exchange is not supported."""

from __future__ import annotations

import os

import pytest

from backstage.files import swap


def test_two_paths_are_exchanged_in_one_step(tmp_path):
    folder, link = tmp_path / "folder", tmp_path / "link"
    folder.mkdir()
    (folder / "data").write_text("kept")
    os.symlink("elsewhere", link)
    assert swap.exchange(str(link), str(folder))
    assert os.readlink(folder) == "elsewhere"
    assert (link / "data").read_text() == "kept"
    with pytest.raises(FileNotFoundError):
        swap.exchange(str(tmp_path / "absent"), str(folder))


@pytest.mark.parametrize("exchanges", [True, False], ids=["exchange", "rename-aside"])
def test_a_link_takes_the_place_of_a_folder_a_file_or_a_link(tmp_path, monkeypatch, exchanges):
    if not exchanges:  # a kernel, file system or C library that cannot exchange
        monkeypatch.setattr(swap, "_renameat2", lambda: None)
    target = tmp_path / "target"
    target.mkdir()
    for name in ("folder", "file", "link"):
        path = tmp_path / name
        if name == "folder":
            (path / "sub").mkdir(parents=True)
            (path / "sub" / "data").write_text("old")
        elif name == "file":
            path.write_text("old")
        else:
            os.symlink("elsewhere", path)
        (tmp_path / f"{name}.link").write_text("left by a step cut short")
        swap.put_link(str(target), str(path))
        assert os.readlink(path) == str(target)
    assert sorted(os.listdir(tmp_path)) == ["file", "folder", "link", "target"]
