"""nginx, for those who front the Production with it: one server block per booked host.

`render()` returns the files and writes nothing; `backstage.control.managers.nginx` writes them:

    <out>/backstage.conf     the include file for nginx's http {} block
    <out>/uwsgi_params       what nginx passes to an Act over the uwsgi protocol
    <out>/sites/<host>.conf  one upstream (every Act booked at the host) and server block,
                             and a `listen 443 ssl` one for a host with a certificate

nginx passes to each Act's uwsgi socket in `run/`. `run/` stays 0700, so the nginx
workers must run as the Production's user (`user` in nginx.conf) to reach it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ..errors import InvalidSetting
from ..model.layout import ActRef, Layout
from .stageset import StageSet, act_view


@dataclass(frozen=True)
class File:
    name: str  # relative to the output folder
    content: str


def _check_directive_value(text: str) -> str:
    # Paths go into nginx directives unquoted: refuse what would end or split one.
    if re.search(r"[\s;{}#'\"]", text):
        raise InvalidSetting(f"{text!r} cannot go into an nginx config: move it to a plain path")
    return text


def render(
    stageset: StageSet,
    layout: Layout,
    bookings: Mapping[str, Sequence[ActRef]],
    out: str,
    listen: str = "80",
    certified: Collection[str] = (),
    ssl_listen: str = "443",
    redirect: bool = True,
    hsts: Collection[str] = (),
) -> list[File]:
    """The nginx files for every booked host (host -> the Acts booked there), as if
    written under `out`. A host in `certified` (it has a certificate that loads) gets a
    server on `ssl_listen` with it too, and, with `redirect`, plain HTTP is a 308 there;
    a certified host in `hsts` sends Strict-Transport-Security there."""
    out = os.path.abspath(out)
    _check_directive_value(out)
    _check_directive_value(listen)
    _check_directive_value(ssl_listen)
    port = ssl_listen.rpartition(":")[2]
    https_suffix = "" if port == "443" else f":{port}"
    params = os.path.join(out, "uwsgi_params")
    files = [File("uwsgi_params", stageset.render("nginx_uwsgi_params.j2"))]
    sites = []
    for host, refs in sorted(bookings.items()):
        acts = [act_view(layout, ref) for ref in refs]
        for act in acts:
            _check_directive_value(act.socket_path)
            _check_directive_value(act.static_root)
        name = os.path.join("sites", f"{host}.conf")
        sites.append(os.path.join(out, name))
        files.append(
            File(
                name,
                stageset.render(
                    "nginx_server.conf.j2",
                    host=host,
                    acts=acts,
                    listen=listen,
                    upstream=f"{layout.prefix}_{host.replace('.', '_').replace('-', '_')}",
                    static_root=acts[0].static_root,
                    params=params,
                    tls=(
                        (
                            _check_directive_value(layout.cert_path(host)),
                            _check_directive_value(layout.cert_key_path(host)),
                        )
                        if host in certified
                        else None
                    ),
                    redirect=redirect,
                    hsts=host in hsts,
                    ssl_listen=ssl_listen,
                    https_suffix=https_suffix,
                ),
            )
        )
    include = os.path.join(out, "backstage.conf")
    files.append(
        File(
            "backstage.conf",
            stageset.render("nginx_include.conf.j2", production=layout, path=include, sites=sites),
        )
    )
    return files
