"""Config changes in a row: `set` returns once the vassal plays its own change, also
when it comes while the restart for a change before is under way."""

from __future__ import annotations

import os
from functools import partial

from tests.helpers import http_get, poll

# the reload-on-rss the worker's uWSGI was started with: the config it plays
OPTION_VIEW = """
import uwsgi
from django.http import HttpResponse
from django.urls import path

def rss(request):
    value = uwsgi.opt.get("reload-on-rss", b"")
    value = value[-1] if isinstance(value, list) else value
    return HttpResponse(value.decode() if isinstance(value, bytes) else str(value))

urlpatterns = [path("rss", rss)]
"""


def restart_under_way(act, master: int) -> bool:
    sess = act.manager.sess()
    return sess is None or sess.pid != master


def test_a_set_during_the_restart_for_a_change_before_returns_once_its_own_plays(venue, channel):
    act = venue.new_act("Changes", start=False, processes=1)
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(OPTION_VIEW)
    act.start()
    for value in (201, 203):
        master = act.sess.pid
        act.manager.declare(max_rss=value)  # a change by hand: the Manager restarts the Act
        act.production.crew.manager.poke()
        # the restart under way: the old master withdrawn, no other serving yet
        poll(partial(restart_under_way, act, master), timeout=15)
        act.set(f"max_rss={value + 1}")
        sess = act.sess
        assert sess is not None and sess.ready  # it plays, as a `set` on a playing Act
        assert http_get(act.port, "/rss") == (200, str(value + 1))
