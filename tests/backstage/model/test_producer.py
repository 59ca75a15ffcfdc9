from __future__ import annotations

import pytest

from backstage.errors import InvalidSetting
from backstage.model import producer as model
from backstage.model.producer import CREATE, DELETE, REPLACE, TTL, Change, RRSet
from backstage.model.spec import ProductionSpec

MARK = model.mark("bs12345678")


def test_every_domain_is_a_zone_and_each_host_goes_to_the_most_specific():
    found = model.wanted(
        ["example.com", "shop.example.com", "other.org"],
        ["kittens.example.com", "a.shop.example.com", "example.com"],
        "203.0.113.7",
    )
    assert found == {
        "example.com": {
            ("kittens.example.com.", "A"): ("203.0.113.7",),
            ("example.com.", "A"): ("203.0.113.7",),
        },
        "other.org": {},
        "shop.example.com": {("a.shop.example.com.", "A"): ("203.0.113.7",)},
    }


def test_an_ipv6_address_is_an_aaaa_record_in_its_short_form():
    found = model.wanted(["example.com"], ["k.example.com"], "2001:DB8:0::7")
    assert found == {"example.com": {("k.example.com.", "AAAA"): ("2001:db8::7",)}}


def _zone(*rrsets):
    return {"rrsets": list(rrsets)}


def _rr(name, rtype, content, comment=None, ttl=TTL):
    return {
        "name": name,
        "type": rtype,
        "ttl": ttl,
        "records": [{"content": content, "disabled": False}],
        "comments": [{"content": comment, "account": ""}] if comment else [],
    }


def test_parse_marks_only_our_rrsets():
    have = model.parse_zone(
        _zone(
            _rr("a.example.com.", "A", "1.2.3.4", MARK),
            _rr("b.example.com.", "A", "1.2.3.4", model.mark("bsother")),
            _rr("example.com.", "NS", "ns1.example.com."),
        ),
        MARK,
    )
    assert have[("a.example.com.", "A")] == RRSet("a.example.com.", "A", TTL, ("1.2.3.4",), True)
    assert not have[("b.example.com.", "A")].managed
    assert not have[("example.com.", "NS")].managed


def test_a_missing_zone_is_created_then_filled():
    plan = model.diff("example.com", {("k.example.com.", "A"): ("1.2.3.4",)}, None)
    assert plan.changes == (
        Change("example.com", CREATE),
        Change("example.com", REPLACE, "k.example.com.", "A", ("1.2.3.4",)),
    )


def test_in_step_is_no_change_and_stale_ones_of_ours_go():
    have = model.parse_zone(
        _zone(
            _rr("k.example.com.", "A", "1.2.3.4", MARK),
            _rr("old.example.com.", "A", "1.2.3.4", MARK),
            _rr("theirs.example.com.", "A", "9.9.9.9"),
            _rr("moved.example.com.", "A", "5.5.5.5", MARK),
        ),
        MARK,
    )
    want = {
        ("k.example.com.", "A"): ("1.2.3.4",),
        ("moved.example.com.", "A"): ("1.2.3.4",),
    }
    plan = model.diff("example.com", want, have)
    assert plan.changes == (
        Change("example.com", REPLACE, "moved.example.com.", "A", ("1.2.3.4",)),
        Change("example.com", DELETE, "old.example.com.", "A"),
    )
    assert plan.conflicts == ()


def test_records_not_ours_are_never_touched():
    have = model.parse_zone(
        _zone(_rr("www.example.com.", "A", "9.9.9.9"), _rr("cn.example.com.", "CNAME", "x.")),
        MARK,
    )
    want = {("www.example.com.", "A"): ("1.2.3.4",), ("cn.example.com.", "A"): ("1.2.3.4",)}
    plan = model.diff("example.com", want, have)
    assert plan.changes == ()
    assert len(plan.conflicts) == 2 and "not Backstage's" in plan.conflicts[0]


def test_patch_rrsets_carry_the_mark():
    change = Change("example.com", REPLACE, "k.example.com.", "A", ("1.2.3.4",))
    assert change.rrset(MARK) == {
        "name": "k.example.com.",
        "type": "A",
        "changetype": "REPLACE",
        "ttl": TTL,
        "records": [{"content": "1.2.3.4", "disabled": False}],
        "comments": [{"content": MARK, "account": "backstage"}],
    }
    assert Change("example.com", DELETE, "k.example.com.", "A").rrset(MARK) == {
        "name": "k.example.com.",
        "type": "A",
        "changetype": "DELETE",
    }


def test_a_new_zone_has_a_soa_and_an_ns():
    body = model.new_zone("example.com")
    assert body["kind"] == "Native" and body["name"] == "example.com."
    assert {rr["type"] for rr in body["rrsets"]} == {"SOA", "NS"}


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"producer_key": "key"}, "producer_key"),
        ({"public_address": "example.com"}, "public_address"),
        ({"public_address": ""}, "public_address"),
        ({"producer": "127.0.0.1:8081"}, "producer"),
        ({"producer": "http://127.0.0.1:99999"}, "producer"),
    ],
)
def test_the_settings_are_checked_with_one_line_naming_the_key(changes, word):
    good = dict(
        producer="http://127.0.0.1:8081", producer_key="/etc/pdns.key", public_address="::1"
    )
    ProductionSpec(**good)
    with pytest.raises(InvalidSetting) as caught:
        ProductionSpec(**(good | changes))
    assert str(caught.value).startswith(word + " =") and "\n" not in str(caught.value)


def test_off_unless_configured():
    assert ProductionSpec().producer == ""
