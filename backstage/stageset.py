"""The Stage Set: what the Stage lends every Act, starting with its vassal config.

Rendering returns text and writes nothing; pushing it is the Stage Manager's job.
Templates come from the package, or from `<home>/templates/` when a Production
overrides one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import jinja2

from .errors import InvalidSetting

if TYPE_CHECKING:
    from .act import Act


def ini_value(value: object) -> str:
    """A value safe on one line of a uWSGI ini file (`%` starts a magic variable there)."""
    text = str(value)
    if "\n" in text or "\r" in text:
        raise InvalidSetting(f"{text!r} spans lines and cannot go into a vassal config")
    return text.replace("%", "%%")


def kv_value(value: object) -> str:
    """A value inside a `key=value,key=value` option such as subscribe2."""
    text = ini_value(value)
    if "," in text:
        raise InvalidSetting(f"{text!r} holds a comma and cannot go into a subscribe2 line")
    return text


def environment(override_dir: str | None = None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir and os.path.isdir(override_dir):
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.PackageLoader("backstage", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["ini"] = ini_value
    env.filters["kv"] = kv_value
    return env


class StageSet:
    def __init__(self, template_dir: str | None = None) -> None:
        self._env = environment(template_dir)

    def render(self, template: str, **context: object) -> str:
        return self._env.get_template(template).render(**context)

    def render_vassal(self, act: Act) -> str:
        spec = act.spec
        production = act.venue.production
        return self.render(
            "vassal.ini.j2",
            production=production,
            prefix=production.prefix,
            venue=act.venue,
            act=act,
            spec=spec,
            env=sorted(spec.env.items()),
        )

    def render_gigs(self, act: Act) -> str:
        """The Act's subscriptions to the router, the ini its vassal config includes."""
        spec = act.spec
        production = act.venue.production
        return self.render(
            "gigs.ini.j2",
            venue=act.venue,
            act=act,
            spec=spec,
            router=production.router,
            gigs=[
                (host, key, act.withheld_path(host))
                for host in spec.hosts
                for key in production.router.keys_for(host)
            ],
            sign=production.router.keys.vassal_sign if production.router.signed else "",
        )
