"""Observing a real Production from elsewhere: responses by status class in the
Snapshot, `/metrics` checked by promtool and scraped by a real Prometheus, and the
dashboard's API reading it and reloading an Act by token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import pytest

from backstage.ui.dashboard import Dashboard
from backstage.ui.httpd import MetricsServer
from tests.backstage.ui.fakes import promtool_check
from tests.helpers import free_port, http_get, poll

PROMETHEUS = shutil.which("prometheus")


def get(url: str, token: str | None = None, method: str = "GET"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # nothing listens


def test_status_classes_metrics_and_dashboard_of_a_real_production(production, venue):
    act = venue.new_act("Seen", processes=2)
    for path in ("/", "/", "/no-such-page/"):
        http_get(act.port, path)

    # the metric is counted after the answer is sent (a final route): the 404's may come
    # a moment after its request returned (the 2xx include the start's own look)
    def counted():
        row = production.snapshot().act(act.key)
        return row if row and row.responses and row.responses[2] else None

    row = poll(counted, 10)
    assert row.responses[0] >= 2 and row.responses[2] == 1 and row.responses[3] == 0

    metrics = MetricsServer("127.0.0.1:0", production.snapshot).start()
    token_path = os.path.join(production.home, "dashboard.token")
    dashboard = Dashboard(
        "127.0.0.1:0",
        token_path,
        production.snapshot,
        lambda key, action: getattr(production.act(key), action)(),
        interval=0.5,
    ).start()
    try:
        status, text = get(metrics.url + "/metrics")
        assert status == 200
        assert 'backstage_act_state{venue="TestVenue",act="Seen",state="running"} 1' in text
        assert 'backstage_act_responses_total{venue="TestVenue",act="Seen",code="4xx"} 1' in text
        promtool_check(text)

        assert os.stat(token_path).st_mode & 0o777 == 0o600
        with open(token_path) as file:
            token = file.read().strip()
        assert get(dashboard.url + "/api/snapshot")[0] == 401
        status, body = get(dashboard.url + "/api/snapshot", token)
        state = json.loads(body)
        assert [a["key"] for a in state["acts"]] == [act.key]
        assert state["acts"][0]["responses"]["4xx"] == 1
        status, body = get(dashboard.url + "/api/acts/TestVenue/Seen", token)
        detail = json.loads(body)
        assert len(detail["workers_detail"]) == 2 and detail["log_tail"]

        pid = act.sess.pid
        workers = {w.pid for w in act.sess.workers}
        status, _ = get(dashboard.url + "/api/acts/TestVenue/Seen/reload", method="POST")
        assert status == 401
        status, body = get(dashboard.url + "/api/acts/TestVenue/Seen/reload", token, "POST")
        assert status == 200, body
        poll(lambda: act.sess and not workers & {w.pid for w in act.sess.workers}, timeout=60)
        assert act.sess.pid == pid and http_get(act.port)[0] == 200
    finally:
        dashboard.stop()
        metrics.stop()


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (Debian: prometheus)")
def test_a_real_prometheus_scrapes_the_metrics(production, venue):
    act = venue.new_act("Scraped", processes=1)
    http_get(act.port)
    metrics = MetricsServer("127.0.0.1:0", production.snapshot).start()
    work = tempfile.mkdtemp(prefix="prom", dir="/tmp")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as file:
        file.write(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: backstage\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics.port}']}}]\n"
        )
    port = free_port()
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={work}/data",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = urllib.parse.urlencode(
        {"query": 'backstage_act_requests_total{venue="TestVenue",act="Scraped"}'}
    )

    def series():
        status, body = get(f"http://127.0.0.1:{port}/api/v1/query?{query}")
        if status != 200:
            return None
        return json.loads(body)["data"]["result"]

    try:
        found = poll(lambda: http_get(port, "/-/ready")[0] == 200 and series(), timeout=60)
        assert float(found[0]["value"][1]) >= 1
        assert found[0]["metric"]["job"] == "backstage"
    finally:
        server.terminate()
        server.wait(30)
        metrics.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_the_manager_serves_metrics_and_the_dashboard_it_is_told_to(production, venue):
    first = production.spec.ports[0]
    metrics, dashboard = f"127.0.0.1:{first + 97}", f"127.0.0.1:{first + 98}"
    production.declare(metrics=metrics, dashboard=dashboard)
    act = venue.new_act("Served", processes=1)  # starts the Manager, which serves both
    status, text = poll(lambda: (got := get(f"http://{metrics}/metrics"))[0] == 200 and got)
    assert 'backstage_act_state{venue="TestVenue",act="Served",state="running"} 1' in text
    # the dashboard binds after its first reading of the Production, later than /metrics
    status, page = poll(lambda: (got := get(f"http://{dashboard}/"))[0] == 200 and got)
    assert status == 200 and "<html" in page.lower()
    token_path = production.layout.dashboard_token
    assert os.stat(token_path).st_mode & 0o777 == 0o600
    with open(token_path) as file:
        token = file.read().strip()
    assert get(f"http://{dashboard}/api/snapshot")[0] == 401
    status, body = get(f"http://{dashboard}/api/snapshot", token)
    assert status == 200 and [a["key"] for a in json.loads(body)["acts"]] == [act.key]
    production.down()  # they stop with the Manager
    assert get(f"http://{metrics}/metrics")[0] == 0 and get(f"http://{dashboard}/")[0] == 0


def test_each_snapshot_sees_the_act_toml_edits_made_before_it(production, venue):
    """A Snapshot after the first keeps what it read of each act.toml until inotify
    says it changed (no stat each): an edit in place, however fast after the last
    Snapshot, is in the very next one, with no Manager running to tell it."""
    from backstage.files import declared
    from backstage.model.spec import ActSpec

    paths = {}
    for number, name in enumerate(("Seen", "Other")):
        os.makedirs(os.path.join(venue.acts_dir, name))
        paths[name] = os.path.join(venue.acts_dir, name, "act.toml")
        port = production.spec.ports[0] + number
        declared.dump(paths[name], ActSpec(name, port, enabled=False))
        then = os.stat(paths[name]).st_mtime - 10  # kept, not re-read while it settles
        os.utime(paths[name], (then, then))
    assert production.manager.pid() is None

    def row(name):
        return production.snapshot().act(f"{venue.name}/{name}")

    first = production.spec.ports[0]
    for _ in range(3):
        assert (row("Seen").port, row("Seen").enabled) == (first, False)
    for before, after in ((first, first + 10), (first + 10, first + 11)):
        with open(paths["Seen"], "r+") as edit:  # in place, the same size
            text = edit.read().replace(f"port = {before}", f"port = {after}")
            edit.seek(0)
            edit.write(text)
        then = os.stat(paths["Seen"]).st_mtime - 10
        os.utime(paths["Seen"], (then, then))
        assert row("Seen").port == after
    assert row("Other").port == first + 1
