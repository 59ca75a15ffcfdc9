"""The uWSGI layer against the real binary: what it is built with, and an Emperor that
plays a vassal on either channel and stops with it all."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from emperor.binary import probe
from emperor.channel import CHANNELS
from emperor.errors import EmperorStartError
from emperor.process import Emperor, pid_alive
from emperor.stats import parse_instance_stats, read_stats
from tests.helpers import free_port, http_get, poll


def test_probe_of_the_installed_binary():
    binary = probe()
    assert binary.version.startswith("2.0.")
    assert binary.python_major_minor == "{}.{}".format(*sys.version_info[:2])
    assert binary.has_zmq  # ./run builds it with emperor_zeromq


APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from the vassal"]
"""


def vassal_config(tmp, port: int, procname: str) -> str:
    (tmp / "app.py").write_text(APP)
    return (
        "[uwsgi]\nmaster = true\nprocesses = 1\n"
        f"procname-prefix-spaced = {procname}\nauto-procname = true\n"
        f"http-socket = 127.0.0.1:{port}\nchdir = {tmp}\nmodule = app:application\n"
        f"stats = {tmp}/v.stats\nneed-app = true\nvacuum = true\n"
    )


@pytest.fixture
def short_tmp(tmp_path_factory):
    # unix socket paths must stay short
    path = tempfile.mkdtemp(prefix="em", dir="/tmp")
    yield Path(path)
    subprocess.run(["rm", "-rf", path], check=False)


@pytest.mark.parametrize("kind", list(CHANNELS))
def test_emperor_starts_plays_a_vassal_and_stops_it_all(short_tmp, kind):
    binary = probe()
    target = str(short_tmp / ("e.ipc" if kind == "zmq" else "vassals"))
    emperor = Emperor(
        binary,
        CHANNELS[kind](target),
        stats=str(short_tmp / "e.stats"),
        pidfile=str(short_tmp / "e.pid"),
        logfile=str(short_tmp / "e.log"),
    )
    assert not emperor.alive()
    procname = f"emtest{os.getpid()}{kind}"
    try:
        pid = emperor.start()
        assert emperor.pid() == pid and emperor.stats().pid == pid
        assert emperor.stats().monitors == (emperor.channel.monitor(),)
        port = free_port()
        emperor.channel.touch("v.ini", vassal_config(short_tmp, port, procname))
        poll(lambda: http_get(port)[0] == 200, timeout=20)
        assert http_get(port) == (200, "hello from the vassal")
        vassal = poll(lambda: emperor.stats().vassal("v.ini"))
        stats = parse_instance_stats(read_stats(str(short_tmp / "v.stats")))
        assert vassal.pid == stats.pid and len(stats.workers) == 1

        emperor.channel.destroy("v.ini")
        poll(lambda: emperor.stats().vassal("v.ini") is None, timeout=20)
        poll(lambda: http_get(port, timeout=1)[0] == 0)
    finally:
        emperor.stop()
    assert not emperor.alive() and not pid_alive(pid)
    assert _procs_named(procname) == []


def _procs_named(prefix: str) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                if cmd.read().startswith(prefix.encode()):
                    found.append(int(entry))
        except OSError:
            pass
    return found


def test_an_emperor_that_cannot_start_says_why(short_tmp):
    binary = probe()
    emperor = Emperor(
        binary,
        CHANNELS["dir"](str(short_tmp / "vassals")),
        stats=str(short_tmp / "e.stats"),
        pidfile=str(short_tmp / "e.pid"),
        logfile=str(short_tmp / "e.log"),
        extra_args=["--no-such-option-at-all"],
    )
    with pytest.raises(EmperorStartError, match="no-such-option"):
        emperor.start(timeout=10)
    assert not emperor.alive()
