from __future__ import annotations

import os

import pytest

from emperor.binary import UwsgiBinary
from emperor.channel import DirChannel, destroy_frames, kind_of_monitor, touch_frames, usable


def test_frames_are_never_five():
    # A five-frame message is misread by the Emperor (UWSGI.md, traps).
    assert touch_frames("a.ini", "[uwsgi]\n") == [b"touch", b"a.ini", b"[uwsgi]\n"]
    assert destroy_frames("a.ini") == [b"destroy", b"a.ini"]


@pytest.mark.parametrize("name", ["a", "a.conf", "../a.ini", ".a.ini", "d/a.ini"])
def test_names_the_emperor_would_ignore_are_refused(name):
    with pytest.raises(ValueError):
        touch_frames(name, "")


def test_dir_channel_writes_atomically_and_always_moves_mtime_forward(tmp_path):
    channel = DirChannel(str(tmp_path / "vassals"))
    channel.prepare()
    channel.touch("a.ini", "one")
    path = tmp_path / "vassals" / "a.ini"
    first = os.stat(path).st_mtime
    channel.touch("a.ini", "two")  # within the same second
    assert path.read_text() == "two"
    assert os.stat(path).st_mtime >= first + 1  # the Emperor compares whole seconds
    assert [p.name for p in (tmp_path / "vassals").iterdir()] == ["a.ini"]
    channel.destroy("a.ini")
    channel.destroy("a.ini")  # idempotent
    assert not path.exists()


def test_channel_choice_follows_the_binary():
    with_zmq = UwsgiBinary("u", "2.0.31", "3.11.7", frozenset({"emperor_zeromq"}))
    without = UwsgiBinary("u", "2.0.31", "3.11.7", frozenset({"http"}))
    assert usable("zmq", with_zmq) and not usable("zmq", without)
    assert usable("dir", without)
    assert kind_of_monitor("zmq://ipc:///x/e.ipc") == "zmq"
    assert kind_of_monitor("/x/vassals") == "dir"


def test_a_config_that_reexecs_goes_as_a_file_named_by_its_path(tmp_path):
    from emperor.channel import (
        ZmqChannel,
        destroy_file_frames,
        reexecs,
        touch_file_frames,
        vassal_name,
    )

    assert reexecs("[uwsgi]\nunprivileged-binary-patch = /v/bin/uwsgi\n")
    assert not reexecs("[uwsgi]\nmodule = app\n; unprivileged-binary-patch is not set\n")
    # two frames, no config: the Emperor reads the file, and so does the re-exec'd binary
    assert touch_file_frames("/r/configs/a.ini") == [b"touch", b"/r/configs/a.ini"]
    assert destroy_file_frames("/r/configs/a.ini") == [b"destroy", b"/r/configs/a.ini"]
    with pytest.raises(ValueError):
        touch_file_frames("configs/a.ini")
    assert vassal_name("/r/configs/a.ini") == "a.ini" and vassal_name("a.ini") == "a.ini"

    sent = []
    channel = ZmqChannel(str(tmp_path / "e.ipc"), str(tmp_path / "configs"))
    channel._push = sent.append  # type: ignore[method-assign]
    channel.touch("a.ini", "[uwsgi]\nmodule = app\n")
    config = "[uwsgi]\nunprivileged-binary-patch = /v/bin/uwsgi\n"
    channel.touch("b.ini", config)
    path = str(tmp_path / "configs" / "b.ini")
    assert sent == [[b"touch", b"a.ini", b"[uwsgi]\nmodule = app\n"], [b"touch", path.encode()]]
    assert (tmp_path / "configs" / "b.ini").read_text() == config
    channel.destroy("b.ini")
    channel.destroy("a.ini")
    assert sent[2:] == [[b"destroy", path.encode()], [b"destroy", b"a.ini"]]
    assert not (tmp_path / "configs" / "b.ini").exists()


def test_an_on_demand_touch_has_six_frames_with_the_emperors_own_uid_and_gid():
    # checked on 2.0.31: empty uid/gid frames keep the Emperor's; the socket is bound by it
    frames = touch_frames("a.ini", "x", on_demand="127.0.0.1:9000")
    assert frames == [b"touch", b"a.ini", b"x", b"", b"", b"127.0.0.1:9000"]


def test_dir_channel_names_the_on_demand_socket_in_a_file_beside_the_config(tmp_path):
    channel = DirChannel(str(tmp_path))
    assert "--emperor-on-demand-extension" in channel.emperor_args()
    channel.touch("a.ini", "x", on_demand="127.0.0.1:9000")
    assert (tmp_path / "a.ini.socket").read_text() == "127.0.0.1:9000\n"
    channel.touch("a.ini", "y")  # out of on-demand mode
    assert not (tmp_path / "a.ini.socket").exists()
    channel.touch("a.ini", "x", on_demand="127.0.0.1:9000")
    channel.destroy("a.ini")
    assert sorted(os.listdir(tmp_path)) == []
