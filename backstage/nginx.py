"""nginx, for those who front the Production with it: one server block per booked host.

`render()` returns the files and writes nothing; `write()` puts them in a folder:

    <out>/backstage.conf     the include file for nginx's http {} block
    <out>/uwsgi_params       what nginx passes to an Act over the uwsgi protocol
    <out>/sites/<host>.conf  one upstream (every Act booked at the host) and server block

nginx passes to each Act's uwsgi socket in `run/`. `run/` stays 0700, so the nginx
workers must run as the Production's user (`user` in nginx.conf) to reach it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InvalidSetting
from .tomlfile import write_atomic

if TYPE_CHECKING:
    from .act import Act
    from .production import Production


@dataclass(frozen=True)
class File:
    name: str  # relative to the output folder
    content: str


def _check_directive_value(text: str) -> str:
    # Paths go into nginx directives unquoted: refuse what would end or split one.
    if re.search(r"[\s;{}#'\"]", text):
        raise InvalidSetting(f"{text!r} cannot go into an nginx config: move it to a plain path")
    return text


def render(production: Production, out: str, listen: str = "80") -> list[File]:
    """The nginx files for every booked host of the Production, as if written under `out`."""
    env = production.stage.set
    out = os.path.abspath(out)
    _check_directive_value(out)
    _check_directive_value(listen)
    booked: dict[str, list[Act]] = {}
    for act in production.acts:
        for host in act.hosts:
            booked.setdefault(host, []).append(act)
    params = os.path.join(out, "uwsgi_params")
    files = [File("uwsgi_params", env.render("nginx_uwsgi_params.j2"))]
    sites = []
    for host, acts in sorted(booked.items()):
        for act in acts:
            _check_directive_value(act.socket_path)
            _check_directive_value(act.static_root)
        name = os.path.join("sites", f"{host}.conf")
        sites.append(os.path.join(out, name))
        files.append(
            File(
                name,
                env.render(
                    "nginx_server.conf.j2",
                    host=host,
                    acts=acts,
                    listen=listen,
                    upstream=f"{production.prefix}_{host.replace('.', '_').replace('-', '_')}",
                    static_root=acts[0].static_root,
                    params=params,
                ),
            )
        )
    include = os.path.join(out, "backstage.conf")
    files.append(
        File(
            "backstage.conf",
            env.render("nginx_include.conf.j2", production=production, path=include, sites=sites),
        )
    )
    return files


def write(production: Production, out: str, listen: str = "80") -> str:
    """Write the nginx files under `out`, dropping sites no longer booked; the include's path."""
    files = render(production, out, listen)
    out = os.path.abspath(out)
    os.makedirs(os.path.join(out, "sites"), exist_ok=True)
    for file in files:
        write_atomic(os.path.join(out, file.name), file.content)
    current = {file.name for file in files}
    for name in os.listdir(os.path.join(out, "sites")):
        if os.path.join("sites", name) not in current and name.endswith(".conf"):
            os.unlink(os.path.join(out, "sites", name))
    return os.path.join(out, "backstage.conf")
