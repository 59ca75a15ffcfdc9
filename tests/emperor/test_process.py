"""A real Emperor on each channel, driving a real vassal (a plain WSGI app)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from emperor.process import (
    Emperor,
    cmdline,
    emperor_in,
    ini_options,
    pid_alive,
    started,
    wait_for,
    watches,
)


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_for(lambda: not pid_alive(child.pid), 10)
    child.wait()  # reaped by pid_alive or here; either way nothing is left


def test_a_process_started_when_it_was_forked_and_an_exec_keeps_it():
    before = time.time()
    child = subprocess.Popen(
        ["sh", "-c", f"exec {sys.executable} -c 'input()'"], stdin=subprocess.PIPE
    )
    try:
        forked = started(child.pid)
        # the kernel's boot time is in whole seconds
        assert forked is not None and before - 1 <= forked <= time.time() + 1
        assert started(os.getpid()) <= forked
        # the shell exec'd Python in its place: the same process, the same start
        assert wait_for(lambda: cmdline(child.pid)[:1] == [sys.executable], 10)
        assert started(child.pid) == forked
    finally:
        child.communicate(b"\n")
    assert started(child.pid) is None


def test_find_refuses_a_reused_pid(tmp_path):
    pidfile = tmp_path / "e.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # alive, but not an Emperor with that stats path
    assert Emperor.find(str(tmp_path / "e.stats"), str(pidfile)) is None
    pidfile.write_text("garbage")
    assert Emperor.find(str(tmp_path / "e.stats"), str(pidfile)) is None


def test_telling_line_on_recorded_logs():
    from pathlib import Path

    from emperor.process import telling_line

    data = Path(__file__).parent / "data"
    assert telling_line((data / "need_app_failure.log").read_text()) == (
        "ModuleNotFoundError: No module named 'no_such_module_here'"
    )
    assert "unrecognized option '--no-such-option-at-all'" in telling_line(
        (data / "bad_option.log").read_text()
    )
    # a master that cannot map its workers' scoreboard, then fails to clean up after it
    too_many = (
        "your mercy for graceful operations on workers is 60 seconds\n"
        "unable to allocate 4100 bytes (0MB)\n"
        "mmap(): Cannot allocate memory [core/utils.c line 2238]\n"
        "unlink(): No such file or directory [core/uwsgi.c line 1771]\n"
    )
    assert telling_line(too_many) == "mmap(): Cannot allocate memory [core/utils.c line 2238]"
    # a config uWSGI refuses after its workers were spawned: what it said before it gave
    # up, not the unlink() of its exit's cleanup
    assert telling_line((data / "somaxconn_failure.log").read_text()) == (
        "Listen queue size is greater than the system max net.core.somaxconn (4096)."
    )
    assert telling_line("") == "(the log is empty)"
    assert telling_line("all\nquiet\n") == "quiet"


def test_an_emperor_is_known_by_the_directory_its_command_line_names(tmp_path):
    vassals = str(tmp_path / "vassals")
    os.makedirs(vassals)
    ini = tmp_path / "emperor.ini"  # as Debian's uwsgi-emperor ships it
    ini.write_text(f"[uwsgi]\nmaster = true\n; emperor = /elsewhere\nemperor = {vassals}/\n")
    assert watches(["/usr/bin/uwsgi", "--ini", str(ini)], vassals)
    assert watches(["uwsgi", "--emperor", vassals, "--emperor-freq", "1"], vassals)
    assert watches(["uwsgi", f"--emperor={vassals}/*.ini"], vassals)
    assert not watches(["uwsgi", "--emperor", str(tmp_path)], vassals)
    assert not watches(["uwsgi", "--ini", "emperor.ini"], vassals)  # relative: to what?
    assert not watches(["uwsgi", "--ini", str(tmp_path / "absent.ini")], vassals)
    assert ini_options(str(ini)) == [("master", "true"), ("emperor", f"{vassals}/")]
    assert emperor_in(vassals) is None  # no uwsgi here: this process is Python
