"""Chain reload over the master FIFO: new code, no failed request."""

from __future__ import annotations

import os
import threading

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
