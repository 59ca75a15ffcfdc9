"""Pure parts of Gigs: live Gigs from router stats, and the router, vassal and nginx
configs rendered from declared files only (no process is started here)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from backstage import Production, Venue
from backstage.files import declared as specs
from backstage.model.gig import SLEEPER_WEIGHT, gigs_from
from backstage.model.spec import ActSpec, VenueSpec
from backstage.render.nginx import render
from emperor.stats import parse_router_stats
from tests.helpers import render_gigs, render_vassal

ROUTER_STATS = b"""{
 "version":"2.0.31", "pid":7, "active_sessions":0,
 "http":["127.0.0.1:8000","/h/run/router.sub",],
 "subscriptions":[
  {"key":"shop.example.com","hash":1,"hits":9,"sni_enabled":0,"nodes":[
    {"name":"/h/run/V.Blue.sock","requests":5,"death_mark":0},
    {"name":"/h/run/V.Green.sock","requests":3,"death_mark":0},
    {"name":"/h/run/V.Old.sock","requests":40,"death_mark":1}]},
  {"key":"shop.example.com:8000","hash":2,"hits":1,"sni_enabled":0,"nodes":[
    {"name":"/h/run/V.Blue.sock","requests":1,"death_mark":0}]},
  {"key":"backstage-no-gig","hash":3,"hits":4,"sni_enabled":0,"nodes":[
    {"name":"/h/run/router.sock","requests":4,"death_mark":0}]}
 ],
 "cheap":0}"""


def test_gigs_from_router_stats_and_bookings():
    stats = parse_router_stats(ROUTER_STATS)
    acts = {"/h/run/V.Blue.sock": "V/Blue", "/h/run/V.Green.sock": "V/Green"}
    bookings = [("V/Blue", "shop.example.com"), ("V/Idle", "idle.example.com")]
    found = gigs_from(stats, 8000, acts, bookings)
    assert [g.as_dict() for g in found] == [
        {
            "host": "idle.example.com",
            "acts": (),
            "nodes": (),
            "requests": 0,
            "booked": ("V/Idle",),
            "node_requests": (),
            "playing": False,
        },
        {
            "host": "shop.example.com",
            "acts": ("V/Blue", "V/Green"),
            "nodes": ("/h/run/V.Blue.sock", "/h/run/V.Green.sock"),
            "requests": 9,
            "booked": ("V/Blue",),
            "node_requests": (6, 3),
            "playing": True,
        },
    ]
    assert gigs_from(None, 8000, acts, bookings)[1].acts == ()


@pytest.fixture
def declared(tmp_path):
    """A Production with one Venue and two Acts booked, declared in files only."""
    production = Production(str(tmp_path / "home"))
    production.declare(router="127.0.0.1:8123")
    venue_path = tmp_path / "V"
    os.makedirs(venue_path / "acts")
    specs.dump(str(venue_path / "venue.toml"), VenueSpec(name="V", python="3.11"))
    venue = Venue(str(venue_path), production)
    production.add_venue(venue)
    venue.add_domain("example.com")
    for name, port, hosts in (("Blue", 8101, ("shop.example.com",)), ("Green", 8102, ())):
        os.makedirs(venue_path / "acts" / name)
        specs.dump(
            str(venue_path / "acts" / name / "act.toml"),
            ActSpec(name=name, port=port, hosts=hosts),
        )
    return production


def test_vassal_subscribes_once_per_key_of_each_booked_host(declared):
    blue = declared.act("V/Blue")
    config = render_gigs(blue)
    subscribes = [line for line in config.splitlines() if line.startswith("subscribe2")]
    server = declared.router.subscription_path
    assert subscribes == [
        f"subscribe2 = server={server},key={key},addr={blue.socket_path},"
        f"check={blue.withheld_path('shop.example.com')}"
        for key in ("shop.example.com", "shop.example.com:8123")
    ]
    assert "env = BACKSTAGE_HOSTS=shop.example.com" in config
    green = render_gigs(declared.act("V/Green"))
    assert "subscribe2" not in green and "env = BACKSTAGE_HOSTS=\n" in green
    # the vassal config only includes that file: booking never changes it, so the
    # Emperor never reloads the Act for a booking
    vassal = render_vassal(blue)
    assert f"socket = {blue.socket_path}" in vassal
    assert f"if-exists = {blue.gigs_config_path}\nini = %(_)\nendif =\n" in vassal
    assert "subscribe2 =" not in vassal and "shop.example.com" not in vassal


def test_an_act_that_may_sleep_subscribes_with_the_weight_of_an_act_beside_its_wake_node(
    declared,
):
    blue = declared.act("V/Blue")
    assert "weight=" not in render_gigs(blue)
    specs.dump(blue.spec_path, replace(blue.spec, idle=60))
    subscribes = [line for line in render_gigs(blue).splitlines() if line.startswith("subscribe2")]
    assert len(subscribes) == 2
    assert all(line.endswith(f",weight={SLEEPER_WEIGHT}") for line in subscribes)


def test_router_config(declared):
    config = declared.router.render(declared.crew.stageset)
    assert "http = 127.0.0.1:8123" in config
    assert f"http-subscription-server = {declared.router.subscription_path}" in config
    assert f"http-stats = {declared.router.stats_path}" in config
    assert "http-subscription-fallback-key = backstage-no-gig" in config
    assert "sign" not in config
    assert f"procname-prefix-spaced = {declared.prefix} router" in config


def test_router_address_must_have_a_port(declared):
    with pytest.raises(ValueError, match="HOST:PORT"):
        declared.declare(router="127.0.0.1")
    with open(declared.spec_path) as spec:
        text = spec.read().replace('"127.0.0.1:8123"', '"127.0.0.1"')
    with open(declared.spec_path, "w") as spec:
        spec.write(text)  # by hand: refused where it is read
    with pytest.raises(ValueError, match="production.toml: .*HOST:PORT"):
        declared.router.render(declared.crew.stageset)


def test_nginx_render(declared, tmp_path):
    blue = declared.act("V/Blue")
    crew = declared.crew
    bookings = {"shop.example.com": [blue.ref]}
    files = {
        f.name: f.content
        for f in render(crew.stageset, crew.layout, bookings, str(tmp_path / "out"), "127.0.0.1:81")
    }
    assert set(files) == {"uwsgi_params", "sites/shop.example.com.conf", "backstage.conf"}
    site = files["sites/shop.example.com.conf"]
    assert f"server unix:{blue.socket_path};" in site
    assert "listen 127.0.0.1:81;" in site and "server_name shop.example.com;" in site
    assert f"alias {blue.static_root}/;" in site
    assert f"include {tmp_path / 'out' / 'uwsgi_params'};" in site
    assert (
        f"include {tmp_path / 'out' / 'sites' / 'shop.example.com.conf'};"
        in files["backstage.conf"]
    )
    with pytest.raises(ValueError):
        render(crew.stageset, crew.layout, bookings, str(tmp_path / "out dir"), "80")


def test_a_gig_is_not_live_through_the_node_of_an_act_that_serves_nothing():
    """The router lists a dead node until the next request for its host: an Act known
    to serve nothing (failed, down) makes no Gig live."""
    stats = parse_router_stats(ROUTER_STATS)
    acts = {"/h/run/V.Blue.sock": "V/Blue", "/h/run/V.Green.sock": "V/Green"}
    bookings = [("V/Blue", "shop.example.com")]
    one_down = gigs_from(stats, 8000, acts, bookings, silent={"V/Green"})
    assert one_down[0].acts == ("V/Blue",) and one_down[0].playing
    both_down = gigs_from(stats, 8000, acts, bookings, silent={"V/Blue", "V/Green"})
    assert (both_down[0].nodes, both_down[0].playing) == ((), False)
    assert both_down[0].booked == ("V/Blue",)  # still booked, not live
