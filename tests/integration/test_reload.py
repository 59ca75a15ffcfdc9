"""Chain reload over the master FIFO: new code, no failed request."""

from __future__ import annotations

import glob
import os
import threading

import pytest

from backstage.shortcuts import new_venue
from tests.helpers import http_get, poll

VIEW = """
from django.http import HttpResponse
from django.urls import path

def hello(request):
    return HttpResponse("{marker}")

urlpatterns = [path("hello", hello)]
"""


def write_view(act, marker: str) -> None:
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(VIEW.format(marker=marker))


def test_reload_serves_new_code_with_no_failed_request(venue):
    act = venue.new_act("Reloaded", start=False)
    write_view(act, "old")
    act.start()
    assert http_get(act.port, "/hello") == (200, "old")
    old_workers = {w.pid for w in act.sess.workers}

    failures, served, stop = [], [], threading.Event()

    def load() -> None:
        while not stop.is_set():
            status, body = http_get(act.port, "/hello", timeout=10)
            (served if status == 200 else failures).append((status, body))

    loaders = [threading.Thread(target=load) for _ in range(4)]
    for thread in loaders:
        thread.start()
    try:
        poll(lambda: len(served) > 20)
        write_view(act, "new")
        act.reload()
        poll(lambda: served and served[-1][1] == "new", timeout=10)
        poll(lambda: len(served) > 20 + 50)
    finally:
        stop.set()
        for thread in loaders:
            thread.join()
    assert failures == []
    assert {body for _, body in served} == {"old", "new"}
    assert http_get(act.port, "/hello") == (200, "new")
    assert not old_workers & {w.pid for w in act.sess.workers}


def test_fifo_commands_reach_the_master(venue):
    act = venue.new_act("Fifo", processes=1)
    assert len(act.sess.workers) == 1
    first = act.sess.workers[0].pid
    act.fifo("W")  # brutal reload of the workers: a new worker pid
    poll(lambda: (sess := act.sess) and sess.workers[0].pid != first and sess.accepting)
    act.fifo("+")  # one worker more, up to twice the declared number
    poll(lambda: (sess := act.sess) and len(sess.workers) == 2 and sess.ready)
    act.fifo("-")  # (a "+" at the ceiling would stay pending and cancel this "-")
    poll(lambda: (sess := act.sess) and len(sess.workers) == 1)
    assert http_get(act.port)[0] == 200


def test_a_reload_right_after_a_set_that_restarts_it_reloads_the_restarted_act(venue):
    act = venue.new_act("SetReload", start=False)
    write_view(act, "old")
    act.start()
    master = act.sess.pid
    act.set("processes=3")  # a new vassal config: `set` returns once it has restarted
    restarted = act.sess
    assert restarted.pid != master and restarted.ready and len(restarted.workers) == 3
    write_view(act, "new")
    act.reload()
    assert http_get(act.port, "/hello") == (200, "new")
    now = act.sess
    assert now.pid == restarted.pid and not {w.pid for w in restarted.workers} & {
        w.pid for w in now.workers
    }
    # a config that sleeps when idle starts asleep: that restart is done too
    act.set("idle=300")
    assert act.state == "sleeping"
    assert http_get(act.port, "/hello") == (200, "new")


DJANGO_MARK = """
import django
from django.http import HttpResponse
from django.urls import path

def mark(request):
    return HttpResponse(getattr(django, "BACKSTAGE_MARK", "old"))

urlpatterns = [path("mark", mark)]
"""


@pytest.mark.slow
def test_a_reload_after_a_new_django_in_the_venue_serves_the_new_django(production, tmp_path):
    # two workers: the master imports Django before it forks them (stageset.PRELOAD_FROM)
    venue = new_venue("NewDjango", str(tmp_path), production, user="root")
    act = venue.new_act("Preloaded", start=False, processes=2)
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(DJANGO_MARK)
    act.start()
    assert http_get(act.port, "/mark") == (200, "old")
    master = act.sess.pid
    # a new Django, as an install makes it: new files in site-packages, its folder changed
    (site,) = glob.glob(os.path.join(venue.path, "lib", "python*", "site-packages"))
    init = os.path.join(site, "django", "__init__.py")
    with open(init) as installed:
        text = installed.read()
    # a new file, as an installer writes it: the Venue's may be links into its cache
    with open(init + ".new", "w") as new:
        new.write(text + '\nBACKSTAGE_MARK = "new"\n')
    os.replace(init + ".new", init)
    os.mkdir(os.path.join(site, "backstage_mark-1.0.dist-info"))
    logged = os.path.getsize(act.log_path)
    act.reload()
    assert http_get(act.port, "/mark") == (200, "new")
    assert act.sess.pid == master and act.sess.ready  # re-exec'd in place
    with open(act.log_path) as log:
        assert "chain reload starting" not in log.read()[logged:]
    # its packages unchanged since: the next reload is a chain reload again
    old, logged = {w.pid for w in act.sess.workers}, os.path.getsize(act.log_path)
    write_view(act, "chained")
    act.reload()
    assert http_get(act.port, "/hello") == (200, "chained")
    assert not old & {w.pid for w in act.sess.workers}
    with open(act.log_path) as log:
        assert "chain reload starting" in log.read()[logged:]
