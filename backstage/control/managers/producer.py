"""The Producer: keeps a PowerDNS server's zones in step with the bookings.

`producer`, `producer_key` and `public_address` in production.toml turn it on. A sync
reads what the files declare, asks `model.producer` what each Venue domain's zone
should hold, reads each zone from PowerDNS's HTTP API, creates the missing ones and
PATCHes only the rrsets that differ. `backstage producer sync` runs one; the
Production Manager runs one whenever the bookings or the settings change, and every
minute besides (someone may have edited the zone).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from functools import partial
from typing import Any

from ...errors import BackstageError, ProducerError
from ...files import declared
from ...files.declared import Declared
from ...model import producer as model
from ...model.layout import Layout

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds per request
API = "/api/v1/servers/localhost"


class PowerDNS:
    """The few calls of PowerDNS's HTTP API the Producer makes. Building one does no I/O."""

    def __init__(self, url: str, key: str, key_file: str, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self._key_file = key_file  # named in the message of a refused key
        self.timeout = timeout

    def zone(self, zone: str) -> dict[str, Any] | None:
        """The zone with its rrsets, or None when PowerDNS has no such zone."""
        return self._call("GET", f"/zones/{_quoted(zone)}", missing_ok=True)

    def create_zone(self, zone: str) -> None:
        self._call("POST", "/zones", model.new_zone(zone))

    def patch(self, zone: str, rrsets: list[dict[str, Any]]) -> None:
        self._call("PATCH", f"/zones/{_quoted(zone)}", {"rrsets": rrsets})

    def _call(
        self, method: str, path: str, body: object = None, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        request = urllib.request.Request(
            self.url + API + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"X-API-Key": self._key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise self._refused(exc, method, path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProducerError(
                f"PowerDNS does not answer at {self.url} ({reason}): start it with its "
                "webserver and API on, or set producer in production.toml to its address"
            ) from None
        return json.loads(text) if text.strip() else {}

    def _refused(self, exc: urllib.error.HTTPError, method: str, path: str) -> ProducerError:
        if exc.code in (401, 403):
            return ProducerError(
                f"PowerDNS at {self.url} refuses the API key in {self._key_file}: write "
                "its api-key there"
            )
        try:
            said = json.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError, OSError):
            said = ""
        return ProducerError(
            f"PowerDNS at {self.url} answered {exc.code} to {method} {API}{path}"
            + (f": {said}" if said else "")
        )


def _quoted(zone: str) -> str:
    return urllib.parse.quote(model.absolute(zone), safe="")


def read_key(path: str) -> str:
    """The API key from its file, which must be for its owner's eyes only."""
    try:
        with open(path) as source:
            mode = os.fstat(source.fileno()).st_mode
            key = source.read().strip()
    except FileNotFoundError:
        raise ProducerError(
            f"no API key file {path}: write PowerDNS's api-key into it "
            f"(umask 077; echo KEY > {path})"
        ) from None
    except OSError as exc:
        raise ProducerError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise ProducerError(f"{path} can be read by others: chmod 600 {path}")
    if not key:
        raise ProducerError(f"{path} is empty: write PowerDNS's api-key into it")
    return key


def wanted(production: Declared) -> tuple[model.Wanted, tuple[str, ...]]:
    """What every zone should hold, from the declared bookings, and the notes on the
    zones left out: those of a Venue with an unreadable Act (whose bookings are not
    known, so its records stay as they are) or an unreadable venue.toml."""
    address = production.production.public_address
    zones: list[str] = []
    hosts: list[str] = []
    unsure: set[str] = set()
    notes: list[str] = []
    for venue in production.venues:
        if venue.spec is None:
            notes.append(f"{venue.path} is left out: {venue.error}")
            continue
        zones += venue.spec.domains
        for act in production.acts:
            if act.ref.venue_path != venue.path:
                continue
            if act.spec is None:
                unsure.update(venue.spec.domains)
                notes.append(
                    f"{', '.join(venue.spec.domains) or venue.spec.name} left as they are: "
                    f"{act.ref.key} is invalid"
                )
            else:
                hosts += act.spec.hosts
    found = model.wanted(zones, hosts, address)
    return {zone: want for zone, want in found.items() if zone not in unsure}, tuple(notes)


Connect = Callable[[str, str, str], PowerDNS]


class Producer:
    def __init__(self, layout: Layout, connect: Connect = PowerDNS) -> None:
        self.layout = layout
        self._connect = connect  # a seam: url, key, key file -> client

    def sync(self, production: Declared | None = None, dry_run: bool = False) -> model.Report:
        """Bring every Venue domain's zone in step with the bookings (dry: only say how)."""
        production = production or declared.read(self.layout)
        settings = production.production
        if not settings.producer:
            raise ProducerError(
                f"no Producer in {self.layout.spec_path}: set producer (PowerDNS's API, e.g. "
                '"http://127.0.0.1:8081"), producer_key and public_address'
            )
        client = self._connect(
            settings.producer, read_key(settings.producer_key), settings.producer_key
        )
        want, notes = wanted(production)
        our_mark = model.mark(self.layout.prefix)
        plans = []
        for zone, records in want.items():
            current = client.zone(zone)
            have = None if current is None else model.parse_zone(current, our_mark)
            plan = model.diff(zone, records, have)
            plans.append(plan)
            if dry_run or not plan.changes:
                continue
            if plan.changes[0].action == model.CREATE:
                client.create_zone(zone)
            rrsets = [c.rrset(our_mark) for c in plan.changes if c.action != model.CREATE]
            if rrsets:
                client.patch(zone, rrsets)
            for change in plan.changes:
                log.info("the Producer: %s", change.line())
        return model.Report(tuple(plans), notes, dry_run)


# The Producer syncs when the bookings or its settings change, and this often besides
# (someone may have edited a zone); after a failure, no sooner than PRODUCE_RETRY unless
# the bookings change meanwhile. A request waits PRODUCE_TIMEOUT at most: the pass heals.
PRODUCE_EVERY = 60.0
PRODUCE_RETRY = 10.0
PRODUCE_TIMEOUT = 2.0


class Syncing:
    """The Production Manager's side of the Producer: it syncs when the bookings or the
    settings changed since the last sync that went through, or a minute has passed;
    after a failure, no sooner than PRODUCE_RETRY unless something changed."""

    def __init__(self, layout: Layout) -> None:
        self.producer = Producer(layout, partial(PowerDNS, timeout=PRODUCE_TIMEOUT))
        self._done: tuple[object, float] | None = None  # what it last synced, when
        self._failed: tuple[object, float, str] | None = None

    def next_due(self) -> float | None:
        """When (the loop's clock) a sync is due again, the bookings and settings
        unchanged; None when none was tried."""
        if self._failed is not None:
            return self._failed[1] + PRODUCE_RETRY
        if self._done is not None:
            return self._done[1] + PRODUCE_EVERY
        return None

    def step(self, production: Declared, now: float) -> str | None:
        """Sync if it is due; the failure to say, if any (again while it lasts)."""
        settings = production.production
        if not settings.producer:
            self._done = self._failed = None
            return None
        state = (
            settings.producer,
            settings.producer_key,
            settings.public_address,
            wanted(production),
        )
        done, failed = self._done, self._failed
        if done and done[0] == state and now - done[1] < PRODUCE_EVERY:
            return None
        if failed and failed[0] == state and now - failed[1] < PRODUCE_RETRY:
            return failed[2]
        try:
            self.producer.sync(production)
        except (BackstageError, OSError) as exc:
            message = f"the Producer: {exc}"
            self._failed = (state, now, message)
            return message
        self._failed = None
        self._done = (state, now)
        return None
