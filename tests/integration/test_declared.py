"""What act.toml declares is what plays: edits are applied live by the Production Manager."""

from __future__ import annotations

import os
import stat

from tests.helpers import dir_channel_slow, http_get, poll

ENV_VIEW = """
import os
from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("env", lambda request: HttpResponse(os.environ.get("GREETING", "-")))]
"""


@dir_channel_slow
def test_a_changed_declaration_is_applied_live(venue, channel):
    act = venue.new_act("Declared", processes=1, start=False)
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(ENV_VIEW)
    act.start()
    assert len(act.sess.workers) == 1 and http_get(act.port, "/env") == (200, "-")

    act.manager.declare(processes=2, env={"GREETING": "100% live"})
    poll(lambda: (sess := act.sess) and len(sess.workers) == 2 and sess.ready, timeout=30)
    poll(lambda: http_get(act.port, "/env") == (200, "100% live"), timeout=30)
    # A second change must play too (uWSGI's zmq channel would reload with the first).
    act.manager.declare(processes=3, env={"GREETING": "second"})
    poll(lambda: (sess := act.sess) and len(sess.workers) == 3 and sess.ready, timeout=30)
    poll(lambda: http_get(act.port, "/env") == (200, "second"), timeout=30)
    # the environment alone: a chain reload applies it, each worker reading it anew
    master = act.sess.pid
    act.manager.declare(env={"GREETING": "third"})
    poll(lambda: http_get(act.port, "/env") == (200, "third"), timeout=30)
    assert act.sess.pid == master
    # the environment may hold secrets: act.toml is no longer world-readable
    assert stat.S_IMODE(os.stat(act.spec_path).st_mode) == 0o600


def test_an_act_disabled_in_its_file_stops(venue):
    act = venue.new_act("Edited")
    with open(act.spec_path) as source:
        text = source.read()
    with open(act.spec_path, "w") as source:  # as a user would, in an editor
        source.write(text.replace("enabled = true", "enabled = false"))
    poll(lambda: act.sess is None and http_get(act.port, timeout=1)[0] == 0, timeout=15)
    assert act.state == "stopped"


ENV_APP = """
import os


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [os.environ.get("GREETING", "-").encode()]
"""


def test_an_env_set_while_playing_is_one_chain_reload(venue, tmp_path):
    """`config set` writes the env file and reloads, checked first; the Production
    Manager, seeing act.toml change meanwhile, leaves both to it: one chain reload per
    change, never a second one (which uWSGI ignores while the first runs)."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "app.py").write_text(ENV_APP)
    act = venue.add_act("Env", str(folder), wsgi="app:application")
    assert http_get(act.port) == (200, "-")
    log = act.manager.log_path
    offset = os.path.getsize(log)
    for value in ("one", "two", "three"):
        act.set_env(GREETING=value)
        assert http_get(act.port) == (200, value)
    # stopped by a pass of the Manager's after the last change: any reload of its own
    # for a change was sent before
    act.stop()
    with open(log, errors="replace") as text:
        text.seek(offset)
        written = text.read()
    assert written.count("chain reload starting") == 3, written
    assert "chain reload already running" not in written
