"""Helpers for the Gig tests: Acts that say who they are."""

from __future__ import annotations

import os

URLS = """from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("", lambda request: HttpResponse("{name}"))]
"""


def named_act(venue, name: str, **options):
    """A new Act whose front page answers its own name, started unless start=False."""
    start = options.pop("start", True)
    act = venue.new_act(name, processes=1, start=False, **options)
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(URLS.format(name=name))
    if start:
        act.start()
    return act
