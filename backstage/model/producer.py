"""The Producer's arithmetic: the DNS records the bookings want, and the changes that
bring a PowerDNS zone there.

Every Venue domain is a zone. Each host booked by an Act gets one A (or AAAA) record
to the Production's `public_address`, in the most specific zone that holds it. Records
Backstage writes carry a comment, `managed by Backstage <prefix>`; only those are ever
replaced or deleted, so a zone can hold records of its owner's and of other
Productions beside them. Talking to PowerDNS is `backstage.control.managers.producer`'s.

Names here are as PowerDNS writes them: absolute, with the root's dot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .domains import domain_of

TTL = 60  # seconds: a booking or an unbooking is seen soon by resolvers
ZONE_TTL = 3600  # of the SOA and NS of a zone the Producer creates
CREATE = "create"
REPLACE = "REPLACE"
DELETE = "DELETE"

Key = tuple[str, str]  # (name, type)
Wanted = dict[str, dict[Key, tuple[str, ...]]]  # zone -> (name, type) -> contents


def mark(prefix: str) -> str:
    """The comment on every rrset one Production manages."""
    return f"managed by Backstage {prefix}"


def absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def record_type(address: str) -> str:
    return "A" if ipaddress.ip_address(address).version == 4 else "AAAA"


def wanted(zones: Iterable[str], hosts: Iterable[str], address: str) -> Wanted:
    """The records each zone should hold: one per booked host under it, to `address`.
    A zone with no booked host wants none, and is listed all the same (its records of
    old go)."""
    zones = sorted(set(zones))
    found: Wanted = {zone: {} for zone in zones}
    kind = record_type(address)
    for host in hosts:
        zone = domain_of(host, zones)
        if zone is not None:
            found[zone][(absolute(host), kind)] = (str(ipaddress.ip_address(address)),)
    return found


@dataclass(frozen=True)
class RRSet:
    """One rrset of a zone as PowerDNS reports it."""

    name: str
    type: str
    ttl: int
    records: tuple[str, ...]
    managed: bool  # it carries this Production's mark


def parse_zone(data: Mapping[str, Any], our_mark: str) -> dict[Key, RRSet]:
    """The rrsets of a zone from PowerDNS's JSON (GET .../zones/ZONE)."""
    found = {}
    for item in data.get("rrsets", ()):
        key = (str(item["name"]).lower(), str(item["type"]))
        found[key] = RRSet(
            name=key[0],
            type=key[1],
            ttl=int(item.get("ttl", 0)),
            records=tuple(sorted(r["content"] for r in item.get("records", ()))),
            managed=any(c.get("content") == our_mark for c in item.get("comments", ())),
        )
    return found


@dataclass(frozen=True)
class Change:
    """One thing to do to a zone: create it, or replace or delete one rrset."""

    zone: str
    action: str  # CREATE, REPLACE or DELETE
    name: str = ""
    type: str = ""
    records: tuple[str, ...] = ()

    def rrset(self, our_mark: str) -> dict[str, Any]:
        """The rrset of a PATCH (REPLACE or DELETE)."""
        item: dict[str, Any] = {"name": self.name, "type": self.type, "changetype": self.action}
        if self.action == REPLACE:
            item["ttl"] = TTL
            item["records"] = [{"content": c, "disabled": False} for c in self.records]
            item["comments"] = [{"content": our_mark, "account": "backstage"}]
        return item

    def line(self) -> str:
        if self.action == CREATE:
            return f"{self.zone}: create the zone (Native, NS {nameserver(self.zone)})"
        if self.action == REPLACE:
            return f"{self.zone}: + {self.name} {self.type} {' '.join(self.records)}"
        return f"{self.zone}: - {self.name} {self.type}"


@dataclass(frozen=True)
class ZonePlan:
    zone: str
    changes: tuple[Change, ...] = ()
    conflicts: tuple[str, ...] = ()  # what is wanted but held by records not ours
    records: int = 0  # how many records the zone will hold for this Production


def nameserver(zone: str) -> str:
    return f"ns1.{absolute(zone)}"


def new_zone(zone: str) -> dict[str, Any]:
    """The body of the POST that creates a zone: Native (PowerDNS serves it from its
    database; no transfers), with a SOA and an NS of `ns1.ZONE.`, for its owner to point
    at their real nameservers. PowerDNS raises the serial on every change."""
    apex = absolute(zone)
    ns = nameserver(zone)
    soa = f"{ns} hostmaster.{apex} 1 10800 3600 604800 3600"
    return {
        "name": apex,
        "kind": "Native",
        "nameservers": [],
        "soa_edit_api": "DEFAULT",
        "rrsets": [
            {"name": apex, "type": "SOA", "ttl": ZONE_TTL, "records": [_record(soa)]},
            {"name": apex, "type": "NS", "ttl": ZONE_TTL, "records": [_record(ns)]},
        ],
    }


def _record(content: str) -> dict[str, Any]:
    return {"content": content, "disabled": False}


def diff(zone: str, want: Mapping[Key, Sequence[str]], have: dict[Key, RRSet] | None) -> ZonePlan:
    """The changes that bring `have` (None: no such zone yet) to `want`, touching only
    rrsets that carry our mark."""
    changes: list[Change] = []
    conflicts: list[str] = []
    if have is None:
        changes.append(Change(zone, CREATE))
        have = {}
    for (name, kind), contents in sorted(want.items()):
        records = tuple(sorted(contents))
        current = have.get((name, kind))
        theirs = [
            rr
            for (other, rtype), rr in have.items()
            if other == name and not rr.managed and rtype in (kind, "CNAME")
        ]
        if theirs:
            conflicts.append(
                f"{zone}: {name} {theirs[0].type} is not Backstage's: left as it is "
                "(delete it in PowerDNS to let Backstage serve the host)"
            )
            continue
        if current is None or current.records != records or current.ttl != TTL:
            changes.append(Change(zone, REPLACE, name, kind, records))
    for (name, kind), current in sorted(have.items()):
        if current.managed and (name, kind) not in want:
            changes.append(Change(zone, DELETE, name, kind))
    return ZonePlan(zone, tuple(changes), tuple(conflicts), len(want) - len(conflicts))


@dataclass(frozen=True)
class Report:
    """What a sync did (or, dry, would do)."""

    plans: tuple[ZonePlan, ...] = ()
    notes: tuple[str, ...] = field(default=())  # zones left alone, and why
    dry_run: bool = False

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(change for plan in self.plans for change in plan.changes)

    def lines(self) -> list[str]:
        dry = "(dry run) " if self.dry_run else ""
        found = [dry + change.line() for change in self.changes]
        found += [c for plan in self.plans for c in plan.conflicts]
        found += list(self.notes)
        records = sum(plan.records for plan in self.plans)
        verb = "would be" if self.dry_run else "is"
        if not self.changes:
            found.append(f"PowerDNS is in step: {records} records in {len(self.plans)} zones")
        else:
            found.append(
                f"{len(self.changes)} changes; PowerDNS {verb} in step with "
                f"{records} records in {len(self.plans)} zones"
            )
        return found
