"""What a running Emperor knows a Production by, pinned: vassal names, run/ paths and
the rendered vassal, router and gigs configs. An upgrade that changed any of them
would withdraw and push every playing Act (or fail to adopt them): change these files
only on purpose. Set BACKSTAGE_GOLDEN_WRITE=1 to rewrite them after such a change."""

from __future__ import annotations

import hashlib
import os

import pytest

import backstage
from backstage import Production, Venue
from backstage.files import declared as specs
from backstage.model.spec import ActSpec, ProductionSpec, VenueSpec
from tests.helpers import render_gigs, render_vassal

DATA = os.path.join(os.path.dirname(__file__), "data", "golden")
HOME = "/srv/bs-golden"  # the prefix is a digest of the home's path


def test_the_prefix_is_a_digest_of_the_home():
    assert Production(HOME).prefix == "bs71ee6b9f"


def lay_out(tmp_path, router_sign=False):
    production = Production(str(tmp_path / "home"))
    production.create()
    specs.dump(
        production.spec_path,
        ProductionSpec(router="127.0.0.1:8042", router_sign=router_sign),
    )
    (tmp_path / "V" / "acts" / "A").mkdir(parents=True)
    specs.dump(
        str(tmp_path / "V" / "venue.toml"),
        VenueSpec(name="V", python="3.11", domains=("example.com",)),
    )
    specs.dump(
        str(tmp_path / "V" / "acts" / "A" / "act.toml"),
        ActSpec(
            name="A",
            port=9123,
            processes=3,
            env={"GREETING": "100% ok", "B": "2"},
            hosts=("shop.example.com", "example.com"),
        ),
    )
    return Venue(str(tmp_path / "V"), production).act("A")


def placeholders(text: str, act) -> str:
    production = act.venue.production
    package = os.path.dirname(os.path.abspath(backstage.__file__))
    return (
        text.replace(package, "{PACKAGE}")
        .replace(production.home, "{HOME}")
        .replace(act.venue.path, "{VENUE}")
        .replace(production.prefix, "{PREFIX}")
    )


def check(name: str, text: str) -> None:
    path = os.path.join(DATA, name)
    if os.environ.get("BACKSTAGE_GOLDEN_WRITE"):
        with open(path, "w") as out:
            out.write(text)
    with open(path) as golden:
        assert text == golden.read(), f"{name} changed: see the module's docstring"


def test_names_and_run_paths(tmp_path):
    act = lay_out(tmp_path)
    production = act.venue.production
    named = {
        "vassal": act.vassal_name,
        "stats": act.stats_path,
        "fifo": act.fifo_path,
        "socket": act.socket_path,
        "gigs": act.gigs_config_path,
        "env": act.production.layout.act_env(act.ref),
        "withheld": act.withheld_path("shop.example.com"),
        "log": act.log_path,
        "emperor stats": production.stage.stats_path,
        "emperor pidfile": production.stage.pidfile,
        "emperor log": production.stage.log_path,
        "manager pidfile": production.manager.pidfile,
        "manager lock": production.manager.lockfile,
        "manager log": production.manager.log_path,
        "router subscriptions": production.router.subscription_path,
        "router stats": production.router.stats_path,
        "router socket": production.router.socket_path,
        "router booked": production.router.booked_path,
        "router booked lock": production.layout.router_booked_lock,
        "router log": production.router.log_path,
        "keys": production.router.keys.private_path,
        "host keys": production.router.keys.host_path("shop.example.com"),
    }
    text = "".join(f"{k}: {v}\n" for k, v in named.items())
    check("paths.txt", placeholders(text, act))


@pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
def test_rendered_configs(tmp_path, signed):
    act = lay_out(tmp_path, router_sign=signed)
    production = act.venue.production
    suffix = "-signed" if signed else ""
    check(f"vassal{suffix}.ini", placeholders(render_vassal(act), act))
    check(f"gigs{suffix}.ini", placeholders(render_gigs(act), act))
    router = production.router.render(production.crew.stageset)
    check(f"router{suffix}.ini", placeholders(router, act))
    # Named after its config: a changed router is a new vassal.
    digest = hashlib.sha1(router.encode()).hexdigest()[:8]
    assert production.router.vassal_name(router) == f"{production.prefix}.router-{digest}.ini"
