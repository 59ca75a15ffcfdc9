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
