"""A wait for an Act to play (start, a restart for a new config) that the Production
Manager cannot play ends at once with why, rather than when its timeout runs out."""

from __future__ import annotations

import json

import pytest

from backstage.act import INVALID
from backstage.errors import ActFailed, PortBusy
from tests.chaos_helpers import small_act
from tests.conftest import cli, cli_quiet
from tests.helpers import http_get

REFUSED = '\n[uwsgi]\nadd-header = "X-Test: 1 "\n'  # uWSGI would drop the blank


def test_an_act_that_cannot_be_played_fails_its_start_with_why(production, venue, caplog):
    act = small_act(venue, "Unplayable", processes=1, start=False)
    with open(act.spec_path) as spec:
        fine = spec.read()
    with open(act.spec_path, "a") as spec:
        spec.write(REFUSED)
    with pytest.raises(ActFailed) as failed:
        act.start()
    said = str(failed.value)
    assert said.startswith(f"{act.key} is invalid, its declaration cannot be used: "), said
    assert "blanks" in said and "\n" not in said
    assert act.state == INVALID
    home = production.home
    reason = json.loads(cli("status", "--json", home=home).stdout)["acts"][0]["reason"]
    assert reason in said  # the line `status` shows
    # from the command, the Act enabled already (its act.toml is not written again)
    done = cli_quiet(caplog, "act", "start", act.key, home=home)
    assert done.returncode == 1, done
    assert done.stderr.strip().splitlines() == [f"backstage: {said}"]
    # a booking waits for the router to pass the host to it: it never would
    venue.add_domain("unplayable.test")
    with pytest.raises(ActFailed, match=r"uWSGI would drop; .* \(booked at one.unplayable.test: "):
        act.book("one.unplayable.test")
    # fixed: what was said before is not taken for the new act.toml
    with open(act.spec_path, "w") as spec:
        spec.write(fine)
    act.start()
    assert http_get(act.port) == (200, "ok")


def test_a_change_that_restarts_an_act_onto_another_acts_port_fails_with_why(
    production, venue, caplog
):
    alpha = small_act(venue, "Alpha", processes=1)
    beta = small_act(venue, "Beta", processes=1)
    beta_port = beta.port
    with open(beta.spec_path) as spec:
        text = spec.read()
    with open(beta.spec_path, "w") as spec:  # by hand: `act set` would refuse it
        spec.write(text.replace(f"port = {beta_port}\n", f"port = {alpha.port}\n"))
    # a change that restarts Beta: the Manager leaves its new config out, Alpha's port
    # being Alpha's, and Beta plays on as it was
    done = cli_quiet(caplog, "act", "set", beta.key, "processes=2", home=production.home)
    assert done.returncode == 1, done
    said = (
        f"port {alpha.port} is {alpha.key}'s: pick another (`backstage act set {beta.key} port=N`)"
    )
    assert done.stderr.strip().splitlines() == [
        f"backstage: {beta.key} is invalid, its declaration cannot be used: {said}; "
        "it plays on as it was until fixed"
    ]
    assert http_get(beta_port) == (200, "ok") and http_get(alpha.port) == (200, "ok")


def test_a_start_onto_another_acts_port_names_that_act(production, venue):
    """An Act edited by hand onto the port another Act of the Production plays on is
    refused at its start with that Act's name, as status names it, not as a stranger's."""
    alpha = small_act(venue, "Holder", processes=1)
    gamma = small_act(venue, "Late", processes=1, start=False)
    with open(gamma.spec_path) as spec:
        text = spec.read().replace(f"port = {gamma.port}\n", f"port = {alpha.port}\n")
    with open(gamma.spec_path, "w") as spec:  # by hand: `act set` would refuse it
        spec.write(text)
    with pytest.raises(PortBusy) as failed:
        gamma.start()
    assert str(failed.value) == (
        f"port {alpha.port} is {alpha.key}'s: pick another (`backstage act set {gamma.key} port=N`)"
    )
    assert http_get(alpha.port) == (200, "ok")
