"""Gigs through the `backstage` command, as a user runs it."""

from __future__ import annotations

import json
import os
import socket

from tests.conftest import cli, cli_quiet, run_cli
from tests.gigs_helpers import named_act
from tests.helpers import http_get, poll


def test_domains_bookings_and_gigs_through_the_command(production, venue):
    home = production.home
    cli("venue", "domain", "add", "TestVenue", "Example.COM", home=home)
    cli("venue", "domain", "add", "TestVenue", "example.org", home=home)
    assert cli("venue", "domain", "ls", "TestVenue", home=home).stdout.split() == [
        "example.com",
        "example.org",
    ]
    named_act(venue, "Web")
    done = cli("book", "TestVenue/Web", "www.example.com", home=home)
    assert "booked at www.example.com" in done.stdout
    port = production.router.port
    assert http_get(port, host="www.example.com") == (200, "Web")

    data = json.loads(cli("status", "--json", home=home).stdout)
    assert data["router"] == {"running": True, "address": f"127.0.0.1:{port}"}
    (gig,) = data["gigs"]
    assert gig["host"] == "www.example.com" and gig["acts"] == ["TestVenue/Web"]
    assert len(gig["nodes"]) == 1 and gig["requests"] >= 1
    assert {"venue", "act", "state"} <= set(data["acts"][0])  # old keys stay
    summary = f"Router 127.0.0.1:{port}: running, 1 of 1 Gigs live"
    assert summary in cli("status", home=home).stdout
    table = cli("gigs", home=home).stdout
    assert "www.example.com" in table and "TestVenue/Web" in table and "running" in table

    # a domain with a booking under it stays; one line says what to do
    refused = run_cli("venue", "domain", "rm", "TestVenue", "example.com", home=home, check=False)
    assert refused.returncode == 1 and "unbook" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    cli("unbook", "TestVenue/Web", "www.example.com", home=home)
    poll(lambda: http_get(port, host="www.example.com")[0] == 404, timeout=2)
    cli("venue", "domain", "rm", "TestVenue", "example.com", home=home)
    assert venue.domains == ("example.org",)
    assert json.loads(cli("gigs", "--json", home=home).stdout) == []


def test_bad_input_is_one_line_and_changes_nothing(production, venue, caplog):
    home = production.home
    venue.add_domain("example.com")
    act = named_act(venue, "Quiet", start=False)
    before = open(act.spec_path).read()
    venue_before = open(venue.spec_path).read()
    cases = [
        (("book", "TestVenue/Quiet", "bad..example.com"), "empty label"),
        (("book", "TestVenue/Quiet", "kittens.example.net"), "not a domain of Venue"),
        (("book", "TestVenue/Missing", "kittens.example.com"), "no Act 'Missing'"),
        (("venue", "domain", "add", "TestVenue", "x_y.com"), "not a valid hostname"),
        (("unbook", "TestVenue/Quiet", "kittens.example.com"), "not booked"),
    ]
    for args, says in cases:  # the command's main() in this process
        done = cli_quiet(caplog, *args, home=home)
        assert done.returncode == 1, args
        assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    # the router's port is busy: one line, nothing declared
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", production.router.port))
        blocker.listen()
        done = run_cli("book", "TestVenue/Quiet", "kittens.example.com", home=home, check=False)
    assert done.returncode == 1 and "router's address" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert open(act.spec_path).read() == before
    assert open(venue.spec_path).read() == venue_before
    assert not os.path.exists(os.path.join(production.run_dir, "withheld"))
