"""The dashboard on a fake Production: its API and token rules, then the page in a real
headless Chromium (the Acts, the chart, a reload by token and one refused without)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request

import pytest

from backstage.errors import InvalidSetting
from backstage.ui.dashboard import Dashboard, ensure_token, read_token
from tests.backstage.ui.browser import CHROMIUM, Browser
from tests.backstage.ui.fakes import FakeProduction, recorded
from tests.helpers import poll

DOCS_SCREENSHOT = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "docs", "assets", "dashboard.png"
)


def call(url: str, token: str | None = None, method: str = "GET"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def fake():
    return FakeProduction(recorded())


@pytest.fixture
def dashboard(fake, tmp_path):
    server = Dashboard("127.0.0.1:0", str(tmp_path / "token"), fake.snapshot, fake.act, 0.2).start()
    yield server
    server.stop()


def token_of(server: Dashboard) -> str:
    token = read_token(server.token_path)
    assert token
    return token


def test_every_api_route_needs_the_token_on_loopback_too(dashboard, fake):
    """Acts and their logs are the Production's: any local user reaches loopback. Only
    the page and its script are open."""
    key = fake.base.acts[0].key
    assert os.stat(dashboard.token_path).st_mode & 0o777 == 0o600
    token = token_of(dashboard)
    for route in ("/api/snapshot", f"/api/acts/{key}", "/metrics"):
        for wrong in (None, "wrong-token-wrong-token"):
            status, said = call(dashboard.url + route, wrong)
            assert status == 401 and "needs its token" in said["error"], route
    for route in ("/", "/static/dashboard.js"):
        with urllib.request.urlopen(dashboard.url + route, timeout=10) as response:
            assert response.status == 200
    status, state = call(dashboard.url + "/api/snapshot", token)
    assert status == 200 and [a["key"] for a in state["acts"]] == [a.key for a in fake.base.acts]
    assert state["router"]["running"] and state["gigs"][0]["host"] == "shop.example.com"
    poll(lambda: call(dashboard.url + "/api/snapshot", token)[1]["history"], timeout=10)

    url = f"{dashboard.url}/api/acts/{key}/reload"
    assert call(url, method="POST")[0] == 401
    assert call(url, "wrong-token-wrong-token", "POST")[0] == 401
    assert fake.actions == []
    assert call(url, token_of(dashboard), "POST") == (
        200,
        {"ok": True, "key": key, "action": "reload"},
    )
    assert fake.actions == [(key, "reload")]
    assert call(f"{dashboard.url}/api/acts/{key}/rm", token_of(dashboard), "POST")[0] == 404
    assert call(f"{dashboard.url}/api/acts/No/Such/stop", token_of(dashboard), "POST")[0] == 404
    status, detail = call(f"{dashboard.url}/api/acts/{key}", token)
    assert status == 200 and detail["workers_detail"]


def test_history_only_after_since(dashboard):
    token = token_of(dashboard)
    first = poll(lambda: call(dashboard.url + "/api/snapshot", token)[1]["history"], timeout=10)
    last = first[-1][0]
    later = call(f"{dashboard.url}/api/snapshot?since={last}", token)[1]["history"]
    assert all(wall > last for wall, _ in later)


def test_beyond_loopback_it_needs_a_token_file(fake, tmp_path):
    path = str(tmp_path / "token")
    with pytest.raises(InvalidSetting, match="needs a token"):
        Dashboard("0.0.0.0:0", path, fake.snapshot, fake.act).start()
    token = ensure_token(path)
    server = Dashboard("0.0.0.0:0", path, fake.snapshot, fake.act).start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        assert call(url + "/api/snapshot")[0] == 401
        assert call(url + "/api/snapshot", token)[0] == 200
    finally:
        server.stop()


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text("x" * 32)
    path.chmod(0o644)
    with pytest.raises(InvalidSetting, match="chmod 600"):
        read_token(str(path))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
def test_the_page_in_a_real_browser(dashboard, fake):
    pytest.importorskip("websocket", reason="websocket-client drives the browser")
    browser = Browser()
    try:
        browser.open(dashboard.url + "/")
        names = [row.key for row in fake.base.acts]
        message = "(document.getElementById('message') || {}).textContent || ''"
        poll(lambda: "needs its token" in browser.eval(message), timeout=30)
        assert browser.eval("document.body.dataset.loaded") != "yes"
        browser.eval(
            f"document.getElementById('token').value = {json.dumps(token_of(dashboard))};"
            "document.getElementById('token-form').requestSubmit()"
        )
        poll(
            lambda: browser.eval("document.body && document.body.dataset.loaded") == "yes",
            timeout=30,
        )
        shown = browser.eval("document.querySelector('#acts tbody').innerText")
        assert all(name in shown for name in names)
        poll(lambda: browser.eval("document.querySelectorAll('#chart polyline').length"), 30)
        # the chart's lines grow as the samples come
        poll(
            lambda: (
                browser.eval(
                    "document.querySelector('#chart polyline').getAttribute('points')"
                ).count(",")
                >= 3
            ),
            timeout=30,
        )
        assert "shop.example.com" in browser.eval("document.querySelector('#gigs').innerText")

        browser.eval("document.querySelector('#acts tbody tr').click()")
        poll(lambda: not browser.eval("document.getElementById('detail').hidden"), timeout=10)
        poll(lambda: browser.eval("document.querySelector('#workers tbody').rows.length"), 10)
        shot = browser.screenshot("dashboard.png")
        with open(shot, "rb") as png:
            header = png.read(24)
        assert header[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(header[16:20]) == 1280
        if os.environ.get("BACKSTAGE_DOCS_SCREENSHOTS"):  # the docs' Monitoring page shows it
            shutil.copyfile(shot, DOCS_SCREENSHOT)

        browser.eval("document.querySelector('#actions [data-action=reload]').click()")
        poll(lambda: "done" in browser.eval(message), timeout=10)
        assert fake.actions == [(fake.base.acts[0].key, "reload")]
        browser.screenshot("dashboard-reloaded.png")
    finally:
        browser.close()
