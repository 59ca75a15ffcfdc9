"""`down` is graceful and complete, on both channels: a request in flight is answered
in full, and no process of the Production is left."""

from __future__ import annotations

import threading

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
