"""A Django Act's URLconf read as each worker loads the app, not at its first request.

uWSGI loads this file by path (`import` in the vassal config) in each worker just
before the app (`lazy-apps`). Django reads ROOT_URLCONF only when a worker serves its
first request: a save made between a reload and that request would be the code that
worker runs, past the pre-flight that refused it. Read here, the worker serves the code
the pre-flight passed, and it answers its first request as fast as the others.

Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
A failure here is printed to the Act's log and left for the app's own load to report: it
may say less (Django's half-made registry answers a second load with "populate() isn't
reentrant"), so the first error is the one to read.

It hands no freed heap back to the system (glibc's `malloc_trim` through `ctypes`): a
worker that did was 0.2-0.3 MiB larger at rest, `ctypes` included, on Pythons 3.11-3.13.
"""

import importlib
import os
import sys
import traceback


def warm() -> None:
    import uwsgi  # type: ignore[import-not-found]

    target = uwsgi.opt.get("module") or b""
    if isinstance(target, list):
        target = target[-1]
    if isinstance(target, bytes):
        target = target.decode()
    module, _, name = target.partition(":")
    if not module or not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return
    getattr(importlib.import_module(module), name or "application")
    from django.urls import get_resolver  # type: ignore[import-not-found]

    get_resolver().url_patterns  # noqa: B018 (reading it imports the URLconf)


try:
    warm()
except Exception:
    print("the app failed to load in the warm-up:", file=sys.stderr)
    traceback.print_exc()
