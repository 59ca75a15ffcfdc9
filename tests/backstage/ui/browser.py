"""A headless Chromium driven over its DevTools protocol: enough to open a page,
evaluate script in it and take a screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from typing import Any

from tests.helpers import poll

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "build", "test-artefacts")


class Browser:
    def __init__(self) -> None:
        import websocket  # websocket-client, a test dependency

        self.profile = tempfile.mkdtemp(prefix="chr", dir="/tmp")
        self.process = subprocess.Popen(
            [
                CHROMIUM or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        active = os.path.join(self.profile, "DevToolsActivePort")
        port = poll(lambda: _first_line(active), timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as listing:
            page = next(t for t in json.load(listing) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.ws.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def screenshot(self, name: str) -> str:
        os.makedirs(ARTEFACTS, exist_ok=True)
        path = os.path.abspath(os.path.join(ARTEFACTS, name))
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            shutil.rmtree(self.profile, ignore_errors=True)


def _first_line(path: str) -> str | None:
    try:
        with open(path) as file:
            line = file.readline().strip()
    except OSError:
        return None
    return line or None
