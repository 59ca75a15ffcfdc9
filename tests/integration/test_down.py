"""`down` is graceful and complete, on both channels: a request in flight is answered
in full, and no process of the Production is left."""

from __future__ import annotations

import threading

from emperor import fifo
from tests.helpers import http_get, poll, processes_of

# /slow?PATH marks PATH once it has the request, then answers a second later
SLOW_APP = """
import time


def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        open(environ["QUERY_STRING"], "w").close()
        time.sleep(1.0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]
"""


def test_down_answers_the_request_in_flight_and_leaves_no_process(
    production, channel, venue, tmp_path
):
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "app.py").write_text(SLOW_APP)
    act = venue.add_act("Slow", str(folder), wsgi="app:application", processes=2)
    began = tmp_path / "began"
    answered: list[tuple[int, str]] = []
    request = threading.Thread(
        target=lambda: answered.append(http_get(act.port, f"/slow?{began}", timeout=30))
    )
    request.start()
    poll(began.exists, timeout=30)
    production.down()
    request.join(30)
    assert answered == [(200, "done")]
    assert processes_of(production.home) == []
    assert production.stage.stats() is None


# loads for 2 s while MARK exists: a worker respawned then is still loading a while
SLOW_LOAD_APP = """
import os
import time

if os.path.exists({mark!r}):
    time.sleep(2.0)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]
"""


def test_down_in_a_chain_reload_waits_for_the_loading_worker_not_the_killer(
    production, venue, tmp_path
):
    """A worker respawned by a chain reload takes its master's graceful stop for
    something else while it loads, then serves on: its master would wait for it until
    the stop's grace ran out and the rest was killed. Told again once loaded, it goes."""
    folder = tmp_path / "chain"
    folder.mkdir()
    mark = tmp_path / "slow"
    (folder / "app.py").write_text(SLOW_LOAD_APP.format(mark=str(mark)))
    act = venue.add_act("Chain", str(folder), wsgi="app:application", processes=2)
    mark.touch()
    fifo.send(production.crew.layout.act_fifo(act.ref), "c")
    poll(lambda: (sess := act.sess) and any(not w.accepting for w in sess.workers), 30)
    production.down()
    assert processes_of(production.home) == []
    with open(production.crew.layout.manager_log) as log:
        assert "left behind by the Emperor" not in log.read()
