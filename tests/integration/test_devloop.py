"""The development loop: a watched Act serves each good save, refuses a bad one while
the old code serves, and makes a burst of saves one or two reloads; all under a
request loop with no failed request."""

from __future__ import annotations

import os
import time

import pytest

from tests.helpers import RequestLoop, http_get, poll

VIEW = """
from django.http import HttpResponse
from django.urls import path

def hello(request):
    return HttpResponse("{marker}")

urlpatterns = [path("hello", hello)]
"""


def write_view(act, marker: str, text: str = VIEW) -> None:
    urls = os.path.join(act.path, act.spec.package, "urls.py")
    with open(urls + ".new", "w") as out:
        out.write(text.format(marker=marker))
    os.replace(urls + ".new", urls)  # as editors that save atomically do


def reloads(act) -> int:
    with open(act.log_path, errors="replace") as log:
        return sum(1 for line in log if line.startswith("[backstage]") and " reloaded for " in line)


@pytest.fixture
def watched(venue):
    act = venue.new_act("Watched", start=False)
    write_view(act, "v0")
    act.start()
    act.set("watch=true")
    manager_log = venue.production.layout.manager_log
    poll(lambda: os.path.exists(manager_log) and "Watched: watching" in open(manager_log).read())
    return act


def test_five_saves_are_served_with_no_failed_request(watched):
    act = watched
    with RequestLoop(act.port, "/hello") as loop:
        loop.serves("v0")
        for n in range(1, 6):
            write_view(act, f"v{n}")
            loop.serves(f"v{n}")
    assert loop.failed == []
    assert 1 <= reloads(act) <= 5  # a save during a reload rides on it


def test_a_broken_save_is_refused_while_the_old_code_serves_then_fixed(watched, venue):
    act = watched
    with RequestLoop(act.port, "/hello") as loop:
        loop.serves("v0")
        write_view(act, "broken", VIEW.replace("def hello(request):", "def hello(request)"))
        refused = venue.production.layout.act_refused(act.ref)
        poll(lambda: os.path.exists(refused))
        assert "SyntaxError" in open(refused).read()
        row = venue.production.snapshot().act(act.key)
        assert "SyntaxError" in row.refused
        assert "save refused" in open(act.log_path, errors="replace").read()
        time.sleep(0.5)
        assert loop.bodies[-1] == "v0"
        write_view(act, "fixed")
        loop.serves("fixed")
        poll(lambda: not os.path.exists(refused))
    assert loop.failed == []
    assert "broken" not in loop.bodies


@pytest.mark.slow
def test_a_burst_of_twenty_saves_is_one_or_two_reloads(watched):
    act = watched
    with RequestLoop(act.port, "/hello") as loop:
        loop.serves("v0")
        for n in range(1, 21):
            write_view(act, f"b{n}")
            time.sleep(0.02)
        loop.serves("b20")
        time.sleep(1.5)  # a second reload, if any, is over
    assert loop.failed == []
    assert 1 <= reloads(act) <= 2


def test_backstage_dev_under_tmux_prints_requests_and_the_reload(venue, production):
    import sys

    from tests.integration.test_monitor import Tmux

    act = venue.new_act("Dev", start=False)
    write_view(act, "d0")
    act.start()
    tmux = Tmux()
    try:
        env = f"env PYTHONPATH={os.pathsep.join(sys.path)} BACKSTAGE_HOME={production.home}"
        tmux.start(f"{env} {sys.executable} -m backstage dev TestVenue/Dev", 160, 40)
        tmux.wait_for(lambda s: "Ctrl-C stops watching" in s)
        assert f"http://127.0.0.1:{act.port}/" in tmux.screen()
        manager_log = production.layout.manager_log
        poll(lambda: "Dev: watching" in open(manager_log).read())
        assert http_get(act.port, "/hello") == (200, "d0")
        tmux.wait_for(lambda s: '"GET /hello HTTP/1.1" 200 2' in s)
        write_view(act, "d1")
        tmux.wait_for(lambda s: "reloaded for 1 save (Dev/urls.py)" in s)
        poll(lambda: http_get(act.port, "/hello") == (200, "d1"))
        # every worker read the URLconf as it loaded (warmup.py): the broken save is
        # never what a worker that served nothing yet would import at its first request
        write_view(act, "d2", VIEW.replace("def hello(request):", "def hello(request)"))
        tmux.wait_for(lambda s: "save refused (Dev/urls.py)" in s and "SyntaxError" in s)
        tmux("send-keys", "-t", "t:0", "C-c")
        tmux.wait_for(lambda s: "Stopped watching TestVenue/Dev; it plays on." in s)
        tmux.wait_for(lambda s: "exited=0" in s)
        assert act.spec.watch is False
        assert http_get(act.port, "/hello") == (200, "d1")
    finally:
        tmux.kill()
