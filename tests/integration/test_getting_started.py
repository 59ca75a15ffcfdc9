"""The original README's Getting Started, exactly as written, on both channels."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from backstage import Production
from tests.helpers import http_get, processes_of


def test_getting_started_as_written(production, channel, tmp_path_factory):
    folder = os.path.dirname(production.home)
    venue_dir = os.path.join(folder, f"gs{os.path.basename(production.home)}")
    os.makedirs(venue_dir)

    from backstage.shortcuts import new_act, new_venue

    venue = new_venue("MyVenue", venue_dir)
    assert os.path.isfile(os.path.join(venue_dir, "MyVenue", "bin", "python"))
    act = new_act(venue, "MyAct")
    assert os.path.isfile(os.path.join(venue_dir, "MyVenue", "acts", "MyAct", "manage.py"))
    port = act.get_uwsgi_port()
    assert isinstance(port, int)
    status, body = http_get(port)
    assert status == 200 and "django" in body.lower()
    assert act.state == "running"
    assert production.stage.channel_kind() == channel

    act.stop()
    assert http_get(port, timeout=1)[0] == 0
    assert act.state == "stopped" and act.sess is None
    emperor = production.stage.stats()
    assert emperor is not None and emperor.vassal(act.vassal_name) is None

    act.start()
    assert act.get_uwsgi_port() == port
    assert http_get(port)[0] == 200
    assert act.state == "running"


def test_a_fresh_process_sees_the_same_state(production, venue):
    act = venue.new_act("Fresh", processes=3)
    http_get(act.port)
    other = venue.new_act("Idle", start=False)
    script = f"""
import json
import os
import re
from backstage import Production, Venue, Act
production = Production({production.home!r})
venue = Venue({venue.path!r})
assert [v.path for v in production.venues] == [venue.path]
act = venue.act("Fresh")
sess = act.sess
print(json.dumps({{
    "acts": [a.name for a in venue.acts],
    "state": act.state, "idle": venue.act("Idle").state,
    "pid": sess.pid, "port": sess.port, "workers": [w.pid for w in sess.workers],
    "requests": sess.requests, "rss": sess.rss,
}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    sess = act.sess
    assert seen["acts"] == ["Fresh", "Idle"]
    assert seen["state"] == "running" and seen["idle"] == "stopped"
    assert seen["pid"] == sess.pid and seen["port"] == act.port
    assert sorted(seen["workers"]) == sorted(w.pid for w in sess.workers)
    assert len(seen["workers"]) == 3
    assert seen["requests"] >= 1 and seen["rss"] > 0  # memory-report is on
    assert other.sess is None


def test_stop_and_start_keep_the_port_and_no_process_outlives_down(production, venue):
    act = venue.new_act("Keeper")
    port = act.port
    master = act.sess.pid
    act.stop()
    assert http_get(port, timeout=1)[0] == 0
    act.start()
    assert act.port == port and act.sess.pid != master
    production.down()
    assert processes_of(production.home) == []
    assert Production(production.home).stage.stats() is None
    # still declared to play: never "stopped", the word for a deliberate stop of the Act
    assert act.state == "starting"
    assert not production.snapshot().manager.running  # and status says healing is off


def test_the_quickstart_example_runs(production):
    folder = os.path.join(os.path.dirname(production.home), f"q{os.path.basename(production.home)}")
    os.makedirs(folder)
    home = os.path.join(folder, "production")
    from tests.conftest import HOMES, own_ports, root_production

    HOMES.append(home)
    # the test run's ports, as every other Production of the suite: the example, which
    # takes the Production at BACKSTAGE_HOME as it is declared, shows the defaults
    first, last = own_ports(root_production(home)).spec.ports
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "quickstart.py")
    done = subprocess.run(
        [sys.executable, example, folder],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "BACKSTAGE_HOME"},
    )
    assert done.returncode == 0, done.stderr
    assert "-> 200" in done.stdout and "stopped: stopped" in done.stdout
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", done.stdout)[1])
    assert first <= port <= last, (port, first, last)
    assert "started again on the same port: True running" in done.stdout
    assert processes_of(home) == []
