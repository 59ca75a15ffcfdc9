"""Adaptive workers (`processes = "1..3"`): one worker at rest, more under load, back to
one once idle, and a chain reload under load that loses nothing."""

from __future__ import annotations

import os
import threading

import pytest

from tests.helpers import http_get, poll

# Each request holds its worker a while: four clients keep one worker fully busy.
VIEW = """
import time
from django.http import HttpResponse
from django.urls import path

def slow(request):
    time.sleep(0.1)
    return HttpResponse("{marker}")

urlpatterns = [path("slow", slow)]
"""


def write_view(act, marker: str) -> None:
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(VIEW.format(marker=marker))


class Load:
    """`clients` threads sending GET /slow until stopped; what each got."""

    def __init__(self, port: int, clients: int) -> None:
        self.port, self.served, self.failed = port, [], []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            status, body = http_get(self.port, "/slow", timeout=20)
            (self.served if status == 200 else self.failed).append((status, body))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def row_of(production, act):
    return next(row for row in production.snapshot().acts if row.key == act.key)


@pytest.mark.slow  # about 25 s on the quiet machine: the way back to rest is 10 s
def test_adaptive_workers_grow_under_load_shrink_at_rest_and_chain_reload(venue):
    act = venue.new_act("Adaptive", start=False)
    write_view(act, "old")
    act.set("processes=1..3")
    act.start()
    assert len(act.sess.workers) == 1
    row = row_of(venue.production, act)
    assert (row.workers, row.max_workers) == (1, 3)

    with Load(act.port, clients=6) as load:  # bounded: six clients, never more
        poll(lambda: len(act.sess.workers) == 3, timeout=20)
        assert row_of(venue.production, act).workers == 3
    assert load.failed == [] and load.served
    # idle: the busyness algorithm cheaps them one by one, never below one
    poll(lambda: len(act.sess.workers) == 1, timeout=40, interval=0.5)

    with Load(act.port, clients=4) as load:
        poll(lambda: len(load.served) > 10)
        write_view(act, "new")
        act.reload()
        poll(lambda: load.served[-1][1] == "new", timeout=10)
        served = len(load.served)
        poll(lambda: len(load.served) > served + 10)
    assert load.failed == []
    assert {body for _, body in load.served} == {"old", "new"}
    assert http_get(act.port, "/slow") == (200, "new")
    assert 1 <= len(act.sess.workers) <= 3
