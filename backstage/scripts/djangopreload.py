"""Django's own modules imported once, in a process that forks what loads the app.

Loaded by path by a Django Act's vassal master (`shared-import`), so that each worker
forked from it (`lazy-apps`) finds Django imported and only imports the project; and by
the warm pre-flight (`checker.py`). Never the project's modules: a worker reloaded by a
save imports them anew. A new Django in the Venue wants the Act restarted, not reloaded.

Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import gc
import importlib

# Django's modules that read no settings and define no models when imported.
PRELOAD = (
    "django",
    "django.conf",
    "django.apps",
    "django.core.checks",
    "django.core.management",
    "django.core.management.base",
    "django.core.handlers.wsgi",
    "django.core.wsgi",
    "django.db",
    "django.db.models",
    "django.forms",
    "django.http",
    "django.shortcuts",
    "django.template",
    "django.template.loader",
    "django.urls",
    "django.utils.timezone",
    "django.views",
    "django.views.generic",
    "django.middleware.common",
    "django.middleware.csrf",
    "django.middleware.security",
    "django.middleware.clickjacking",
)


def preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 (not there, or not importable cold: the child will)
            continue


if __name__ != "__main__":
    preload()
    # what is imported so far never moves again: kept out of the collector's passes,
    # which would write to every object's page in each forked child
    gc.freeze()
