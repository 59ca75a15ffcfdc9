"""Writing the nginx files `backstage.render.nginx` renders, for every booked host."""

from __future__ import annotations

import os

from ...files import declared
from ...files.fs import write_atomic
from ...model.domains import within
from ...model.layout import ActRef
from ...render.nginx import render
from ..processes.crew import Crew


def write(crew: Crew, out: str, listen: str = "80", ssl_listen: str = "443") -> str:
    """Write the nginx files under `out`, dropping sites no longer booked; the include's path."""
    bookings: dict[str, list[ActRef]] = {}
    production = declared.read(crew.layout)
    # as the Acts do: a domain of `hsts` the Venue no longer has does nothing
    hsts = {
        v.path: [d for d in v.spec.hsts if d in v.spec.domains]
        for v in production.venues
        if v.spec is not None
    }
    strict = set()
    for found in production.acts:
        for host in found.spec.hosts if found.spec else ():
            bookings.setdefault(host, []).append(found.ref)
            if any(within(host, d) for d in hsts.get(found.ref.venue_path, ())):
                strict.add(host)
    certified = {c.host for c in crew.router.certificates.all() if c.info is not None}
    redirect = crew.settings().https_redirect
    files = render(
        crew.stageset, crew.layout, bookings, out, listen, certified, ssl_listen, redirect, strict
    )
    out = os.path.abspath(out)
    os.makedirs(os.path.join(out, "sites"), exist_ok=True)
    for file in files:
        write_atomic(os.path.join(out, file.name), file.content)
    current = {file.name for file in files}
    for name in os.listdir(os.path.join(out, "sites")):
        if os.path.join("sites", name) not in current and name.endswith(".conf"):
            os.unlink(os.path.join(out, "sites", name))
    return os.path.join(out, "backstage.conf")
