"""The `backstage` command, run as a user runs it, in its own process."""

from __future__ import annotations

import json
import os
import signal
import time

from emperor.process import read_pidfile
from tests.conftest import run_cli
from tests.helpers import dir_channel_slow, http_get, poll, processes_of

STATUS_KEYS = {"venue", "act", "state", "pid", "port", "workers", "requests", "rss"}


def status(home: str) -> dict:
    return json.loads(run_cli("status", "--json", home=home).stdout)


def test_act_lifecycle_through_the_command(production, venue):
    home = production.home
    done = run_cli("act", "new", "TestVenue", "Cli", "--processes", "1", home=home)
    assert "Cli" in done.stdout
    data = status(home)
    assert data["production"] == home
    assert data["emperor"]["running"] is True and data["emperor"]["channel"] in ("zmq", "dir")
    assert data["emperor"]["pid"] == production.stage.pid()
    (row,) = data["acts"]
    assert set(row) >= STATUS_KEYS  # keys are added over time, never renamed
    assert row["state"] == "running" and row["workers"] == 1
    port = row["port"]
    assert http_get(port)[0] == 200

    run_cli("act", "stop", "TestVenue/Cli", home=home)
    assert http_get(port, timeout=1)[0] == 0
    assert status(home)["acts"][0]["state"] == "stopped"
    run_cli("act", "start", "TestVenue/Cli", home=home)
    assert http_get(port)[0] == 200
    old = status(home)["acts"][0]["pid"]
    run_cli("act", "reload", "TestVenue/Cli", home=home)
    assert status(home)["acts"][0]["pid"] == old  # a chain reload keeps the master
    run_cli("fifo", "TestVenue/Cli", "+", home=home)  # ignored without cheaper, still accepted
    logs = run_cli("logs", "TestVenue/Cli", "-n", "5", home=home).stdout
    assert len(logs.strip().splitlines()) == 5
    table = run_cli("status", home=home).stdout
    assert "TestVenue/Cli" in table and "running" in table
    run_cli("act", "rm", "TestVenue/Cli", home=home)
    assert status(home)["acts"] == []
    assert not os.path.exists(os.path.join(venue.acts_dir, "Cli"))
    assert http_get(port, timeout=1)[0] == 0


def test_act_new_takes_a_range_of_workers_as_act_set_does(production, venue):
    home = production.home
    run_cli("act", "new", "TestVenue", "Ranged", "--processes", "1..3", "--no-start", home=home)
    spec = venue.act("Ranged").spec
    assert (spec.adaptive, spec.processes, spec.max_processes) == (True, 1, 3)
    with open(os.path.join(venue.acts_dir, "Ranged", "act.toml")) as written:
        assert 'processes = "1..3"' in written.read()


def test_venue_commands(production, venue):
    home = production.home
    listing = run_cli("venue", "ls", home=home).stdout
    assert "TestVenue" in listing and venue.path in listing
    run_cli("venue", "new", "CliVenue", home=home)
    listing = run_cli("venue", "ls", home=home).stdout
    assert "CliVenue" in listing and os.path.join(home, "venues", "CliVenue") in listing


def test_user_errors_are_one_line_and_exit_1(production, venue):
    home = production.home
    for args, words in [
        (("act", "new", "TestVenue", "1x"), "not valid"),
        (("act", "new", "Missing", "Act"), "no Venue 'Missing'"),
        (("act", "start", "TestVenue/Ghost"), "no Act 'Ghost'"),
        (("act", "start", "nonsense"), "VENUE/NAME"),
        (("fifo", "TestVenue/Ghost", "c"), "no Act"),
    ]:
        done = run_cli(*args, home=home, check=False)
        assert done.returncode == 1, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert words in done.stderr, (args, done.stderr)
    venue.new_act("Quiet", start=False)
    done = run_cli("fifo", "TestVenue/Quiet", "c", home=home, check=False)
    assert done.returncode == 1 and "not running" in done.stderr
    done = run_cli("fifo", "TestVenue/Quiet", "z", home=home, check=False)
    assert done.returncode == 1 and "unknown FIFO command" in done.stderr


@dir_channel_slow
def test_up_is_idempotent_and_heals_after_the_emperor_is_killed(production, venue, channel):
    home = production.home
    playing = [venue.new_act(name) for name in ("One", "Two")]
    resting = venue.new_act("Resting")
    resting.stop()
    ports = {act.name: act.port for act in playing + [resting]}
    emperor = production.stage.pid()
    manager = production.manager.pid()

    run_cli("up", home=home)
    assert production.stage.pid() == emperor and production.manager.pid() == manager

    # Kill everything but the files and the socket holder (the one process meant to
    # outlive the others): the keeper and the Manager first, so that nothing heals
    # behind our back.
    keeper = read_pidfile(production.layout.keeper_pidfile)
    holder = read_pidfile(production.layout.holder_pidfile)
    assert keeper is not None and holder is not None
    os.kill(keeper, signal.SIGKILL)
    os.kill(manager, signal.SIGKILL)
    os.kill(emperor, signal.SIGKILL)
    poll(lambda: processes_of(home) == [holder], timeout=15)
    assert all(http_get(port, timeout=1)[0] == 0 for port in ports.values())

    run_cli("up", home=home)
    rows = {row["act"]: row for row in status(home)["acts"]}
    assert rows["One"]["state"] == rows["Two"]["state"] == "running"
    assert rows["Resting"]["state"] == "stopped"
    for act in playing:
        assert rows[act.name]["port"] == ports[act.name]
        assert http_get(ports[act.name])[0] == 200
    assert http_get(ports["Resting"], timeout=1)[0] == 0
    assert production.stage.pid() != emperor
    assert read_pidfile(production.layout.holder_pidfile) == holder  # it held on


def test_the_manager_heals_a_killed_emperor_by_itself(production, venue):
    act = venue.new_act("Survivor")
    emperor = production.stage.pid()
    os.kill(emperor, signal.SIGKILL)
    poll(lambda: production.stage.pid() not in (None, emperor), timeout=15)
    poll(lambda: act.state == "running", timeout=30)
    assert http_get(act.port)[0] == 200


def test_a_killed_manager_is_back_by_itself_and_adopts_the_running_emperor(production, venue):
    act = venue.new_act("Adopted")
    emperor, master = production.stage.pid(), act.sess.pid
    manager = production.manager.pid()
    os.kill(manager, signal.SIGKILL)
    killed = time.monotonic()
    # its keeper starts a new one, with no command
    poll(lambda: production.manager.pid() not in (None, manager), timeout=2, interval=0.02)
    print(f"Manager back {time.monotonic() - killed:.2f} s after kill -9")
    run_cli("up", home=production.home)
    assert production.stage.pid() == emperor and act.sess.pid == master
    # and the keeper's vassal starts a new keeper when that one dies
    keeper = read_pidfile(production.layout.keeper_pidfile)
    assert keeper is not None
    os.kill(keeper, signal.SIGKILL)
    poll(lambda: read_pidfile(production.layout.keeper_pidfile) not in (None, keeper), 5)


def test_down_leaves_no_process(production, venue):
    venue.new_act("Short")
    run_cli("down", home=production.home)
    assert processes_of(production.home) == []
    assert status(production.home)["emperor"]["running"] is False
