"""The watcher hands over each file made in a log folder, and never a write; a run file
deleted or written by another than this process starts a pass, and so does any change of
a certificate file."""

from __future__ import annotations

import os
import queue

from watchdog.events import FileClosedEvent, FileDeletedEvent, FileMovedEvent

from backstage.control.daemon.watcher import Watcher, _OnCertificate
from backstage.files.fs import write_if_changed
from tests.helpers import poll


def test_a_rotated_copy_is_handed_over_and_a_write_is_not(tmp_path):
    home, logs = tmp_path / "home", tmp_path / "log"
    home.mkdir()
    logs.mkdir()
    log = logs / "Shop.Front.log"
    log.write_text("a line\n")
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    made: list[str] = []
    watcher = Watcher(events, made.append)
    try:
        watcher.follow(str(home), [], [], [str(logs)])
        with open(log, "a") as written:
            written.write("another line\n")
        os.rename(log, f"{log}.1700000000")  # as uWSGI rotates it past log_max
        log.write_text("")  # and opens it again
        poll(lambda: len(made) >= 2, 10)
    finally:
        watcher.stop()
    assert made == [f"{log}.1700000000", str(log)]
    assert events.empty()  # no pass for it


def _drain(events: queue.SimpleQueue[str]) -> list[str]:
    found = []
    while not events.empty():
        found.append(events.get_nowait())
    return found


def test_a_run_file_edited_or_deleted_starts_a_pass_and_its_own_write_does_not(tmp_path):
    home, run = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    run.mkdir()
    hosts = str(run / "Shop.Front.hosts")
    # each deleted in turn after writes that must start no pass: its deletion's event
    # comes after theirs, and is then the only one
    marks = [run / f"Shop.Mark{i}.hosts" for i in range(2)]
    for mark in marks:
        mark.write_text("")
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    watcher = Watcher(events)
    try:
        watcher.follow(str(home), [], [str(run)])
        write_if_changed(hosts, "front.example.test\n")  # as a pass writes it: no pass
        write_if_changed(hosts, "shop.example.test\n")
        with open(run / "Shop.Front.fifo", "w") as other:
            other.write("not a run file\n")
        marks[0].unlink()
        poll(lambda: not events.empty(), 10)
        assert _drain(events) == ["reconcile"]  # the mark's, and only it

        with open(hosts, "w") as edited:  # by hand, in place
            edited.write("elsewhere.example.test\n")
        poll(lambda: not events.empty(), 10)
        _drain(events)
        write_if_changed(hosts, "shop.example.test\n")  # the pass puts it right
        marks[1].unlink()
        poll(lambda: not events.empty(), 10)
        assert _drain(events) == ["reconcile"]

        new = run / "hosts.new"
        new.write_text("by.hand.example.test\n")
        os.replace(new, hosts)  # an editor's rename into place
        poll(lambda: not events.empty(), 10)
        assert "reconcile" in _drain(events)
    finally:
        watcher.stop()


def test_a_certificate_file_written_replaced_or_removed_starts_a_pass(tmp_path):
    home, certs = tmp_path / "home", tmp_path / "hosts"
    home.mkdir()
    certs.mkdir()
    cert = certs / "shop.example.test.crt"
    cert.write_text("old\n")
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    watcher = Watcher(events)
    try:
        watcher.follow(str(home), [], [], [], str(certs))
        assert events.empty()
        with open(cert, "w") as edited:  # by hand, in place
            edited.write("-----BEGIN CERTIFICATE-----\nbroken\n")
        poll(lambda: not events.empty(), 10)
        assert set(_drain(events)) == {"reconcile"}
        new = certs / ".shop.example.test.crt.new"
        new.write_text("new\n")
        os.replace(new, cert)  # as an import writes it
        poll(lambda: not events.empty(), 10)
        _drain(events)
        cert.unlink()
        poll(lambda: not events.empty(), 10)
    finally:
        watcher.stop()


def test_a_key_or_the_record_of_where_a_certificate_came_from_starts_no_pass():
    """The key is written before its certificate: a pass it started would give the
    router the new key with the old certificate."""
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    handler = _OnCertificate(events)
    for event in (
        FileClosedEvent("/h/tls/hosts/shop.example.test.key"),
        FileMovedEvent("/h/tls/hosts/.x.tmp", "/h/tls/hosts/shop.example.test.key"),
        FileClosedEvent("/h/tls/hosts/shop.example.test.toml"),
    ):
        handler.dispatch(event)
    assert events.empty()
    for event in (
        FileMovedEvent("/h/tls/hosts/.y.tmp", "/h/tls/hosts/shop.example.test.crt"),
        FileDeletedEvent("/h/tls/hosts/shop.example.test.crt"),
    ):
        handler.dispatch(event)
    assert _drain(events) == ["reconcile", "reconcile"]
