"""What a user can get wrong, and what breaks underneath: one clear error, nothing half-made."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from backstage import BackstageError, Venue
from backstage.control.daemon.loop import RESTING
from backstage.control.host.ports import port_free
from backstage.errors import (
    ActFailed,
    AlreadyExists,
    InvalidName,
    InvalidSetting,
    NotFound,
    PortBusy,
)
from backstage.files.fs import log_backups
from backstage.shortcuts import new_act, new_venue
from tests.helpers import http_get, listening_ports, poll


def break_app(act) -> str:
    settings = os.path.join(act.path, act.spec.package, "settings.py")
    with open(settings) as source:
        original = source.read()
    with open(settings, "a") as source:
        source.write("\nimport no_such_module_here\n")
    return original


def test_an_act_that_fails_to_import_fails_clearly_then_starts_once_fixed(venue, channel):
    act = venue.new_act("Broken", start=False)
    settings = os.path.join(act.path, act.spec.package, "settings.py")
    original = break_app(act)
    with pytest.raises(ActFailed) as failed:
        act.start(timeout=30)
    message = str(failed.value)
    assert "\n" not in message
    assert "Broken" in message and "no_such_module_here" in message
    assert "no_such_module_here" in failed.value.log_tail
    assert act.state == "failed"

    with open(settings, "w") as source:
        source.write(original)
    began = time.monotonic()
    act.start(timeout=30)  # the Emperor's blacklist must not refuse it silently
    print(f"{channel}: started once fixed in {time.monotonic() - began:.2f} s")
    assert act.state == "running"
    assert http_get(act.port)[0] == 200


def test_a_failed_act_does_not_stop_the_others(venue):
    good = venue.new_act("Good")
    bad = venue.new_act("Bad", start=False)
    break_app(bad)
    with pytest.raises(ActFailed):
        bad.start(timeout=30)
    assert good.state == "running" and http_get(good.port)[0] == 200


@pytest.mark.parametrize("name", ["../x", "a b", "-x", "1x", "os", "", "class", "x" * 41, "ü"])
def test_bad_names_are_refused_before_anything_is_written(production, venue, name):
    before = sorted(os.listdir(venue.acts_dir))
    with pytest.raises(InvalidName) as refused:
        venue.new_act(name)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, BackstageError)
    assert sorted(os.listdir(venue.acts_dir)) == before
    parent = os.path.dirname(production.home)
    listing = sorted(os.listdir(parent))
    with pytest.raises(InvalidName):
        new_venue(name, parent)
    assert sorted(os.listdir(parent)) == listing


def test_duplicates_and_missing_things(production, venue):
    venue.new_act("Once", start=False)
    with pytest.raises(AlreadyExists, match="Once"):
        venue.new_act("Once")
    with pytest.raises(AlreadyExists, match="TestVenue"):
        new_venue("TestVenue", os.path.dirname(venue.path))
    with pytest.raises(NotFound, match="no Venue"):
        Venue(os.path.join(production.home, "nowhere"))
    with pytest.raises(NotFound, match="Nope"):
        production.act("Nope/Once")
    with pytest.raises(NotFound, match="Ghost"):
        venue.act("Ghost")
    with pytest.raises(NotFound, match="does not exist"):
        new_venue("Elsewhere", os.path.join(production.home, "no", "such"))


def test_a_busy_port_is_refused_at_creation_and_at_start(venue):
    first, last = venue.production.spec.ports
    with socket.socket() as holder:
        # SO_REUSEADDR as port_free binds: a port left in TIME_WAIT by an
        # earlier test is free to both, not to one only
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy = next(p for p in range(first, last + 1) if port_free(p))
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        before = sorted(os.listdir(venue.acts_dir))
        with pytest.raises(PortBusy, match=str(busy)):
            new_act(venue, "Squatted", port=busy)
        assert sorted(os.listdir(venue.acts_dir)) == before
    # outside the declared ports: refused unless forced
    with pytest.raises(InvalidSetting, match="outside ports"):
        new_act(venue, "Outside", port=last + 1, start=False)

    act = venue.new_act("Later", start=False)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", act.port))
        holder.listen()
        with pytest.raises(PortBusy, match=str(act.port)):
            act.start()
    act.start()
    assert http_get(act.port)[0] == 200


def test_an_unwritable_folder_leaves_nothing(production, tmp_path):
    if os.geteuid() == 0:
        # root writes anywhere; a file in place of the folder is the same mistake
        target = str(tmp_path / "afile")
        open(target, "w").close()
        with pytest.raises(NotFound):
            new_venue("Nowhere", target)
    else:
        os.chmod(tmp_path, 0o500)
        with pytest.raises(BackstageError, match="not writable"):
            new_venue("Nowhere", str(tmp_path))
    assert not os.path.exists(tmp_path / "Nowhere")


def test_run_is_private_and_no_tcp_control_port(production, venue):
    act = venue.new_act("Private")
    assert os.stat(production.run_dir).st_mode & 0o777 == 0o700
    for surface in (act.stats_path, act.fifo_path, production.stage.stats_path):
        assert os.path.dirname(surface) == production.run_dir
    emperor_pid = production.stage.pid()
    listening = listening_ports(emperor_pid) | listening_ports(production.manager.pid())
    assert listening == set(), f"control ports open: {listening}"


def test_a_dead_vassal_is_healed(production, venue, channel):
    act = venue.new_act("Phoenix")
    master = act.sess.pid
    os.kill(master, signal.SIGKILL)
    poll(lambda: act.sess is not None and act.sess.pid != master and act.sess.accepting, 30)
    assert http_get(act.port)[0] == 200


def test_a_deleted_run_file_is_written_again_at_once(production, venue):
    """The Manager rests between passes once what plays is what is wanted (its safety
    net runs once a minute): a run file deleted or edited by hand wakes it, and the
    pass writes it again."""
    layout = production.crew.layout
    act = venue.new_act("Kept", processes=1)
    pushed = f"pushing {layout.vassal(act.ref)}"
    poll(lambda: rested_since(layout.manager_log, pushed), 30)
    paths = (layout.act_env(act.ref), layout.act_hosts(act.ref), layout.act_gigs(act.ref))
    for path in paths:
        before = open(path).read()
        os.unlink(path)
        poll(lambda path=path: os.path.exists(path), 10)
        assert open(path).read() == before
        with open(path, "w") as edited:  # by hand, in place: put back as well
            edited.write("{}\n")
        poll(lambda path=path, before=before: open(path).read() == before, 10)
    assert http_get(act.port)[0] == 200


def test_the_managers_own_logs_rotate_while_it_rests(production, venue):
    """emperor.log and manager.log are rotated past log_max between passes too: a
    Manager at rest passes once a minute, and their writers write on meanwhile."""
    layout = production.crew.layout
    act = venue.new_act("Quiet", processes=1, start=False)
    production.declare(log_max=4096, log_keep=1)
    act.start()
    pushed = f"pushing {layout.vassal(act.ref)}"
    poll(lambda: rested_since(layout.manager_log, pushed), 30)
    logs = (layout.emperor_log, layout.manager_log)
    before = {log: log_backups(log) for log in logs}
    for log in logs:  # both at once: the Manager measures them every OWN_LOGS_EVERY
        with open(log, "a") as other:
            other.write("a line of another writer\n" * 200)
    for log in logs:
        poll(lambda log=log: log_backups(log) != before[log], 15)
        assert os.path.getsize(log) < 4096
        assert len(log_backups(log)) == 1


def rested_since(log: str, mark: str) -> bool:
    """The Manager said it rests after the last line with `mark`."""
    with open(log) as lines:
        _, found, after = lines.read().rpartition(mark)
    return bool(found) and RESTING in after
