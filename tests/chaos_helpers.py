"""A bounded request loop for the chaos tests: requests to 127.0.0.1 only, at most
`limit` of them and for at most `seconds`, each with a short timeout; what it counts
is the figure each test prints (failed requests, seconds until serving again)."""

from __future__ import annotations

import os
import threading
import time

from tests.helpers import http_get

ENV_VIEW = """import json
import os
import time
from django.http import HttpResponse
from django.urls import path


def env(request):
    keys = request.GET.get("keys", "").split(",")
    return HttpResponse(json.dumps({k: os.environ.get(k) for k in keys}))


def slow(request):
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse("slow")


urlpatterns = [path("", lambda request: HttpResponse("ok")), path("env", env), path("slow", slow)]
"""


# A request may wait this long while what crashed comes back (its sockets are held):
# more than the 2 s a crash costs, so a slow machine shows as latency in the figure,
# and a refused or reset connection, or a 503, as a failure.
HELD_WAIT = 10.0


def small_act(venue, name: str, processes: int = 2, start: bool = True, **options):
    """A new Act whose front page answers "ok" without touching a database, whose
    /env?keys=A,B answers those variables of its environment as JSON, and whose
    /slow?s=N answers "slow" after N seconds."""
    act = venue.new_act(name, processes=processes, start=False, **options)
    with open(os.path.join(act.path, act.spec.package, "urls.py"), "w") as urls:
        urls.write(ENV_VIEW)
    if start:
        act.start()
    return act


class Load:
    """GET `path` on `port` (with `host`) every `interval` seconds in a thread, until
    stopped, `limit` requests or `seconds` have passed, whichever comes first."""

    def __init__(
        self,
        port: int,
        host: str = "localhost",
        interval: float = 0.02,
        limit: int = 5000,
        seconds: float = 90.0,
        timeout: float = 1.0,
    ) -> None:
        self.port, self.host = port, host
        self.interval, self.limit, self.seconds, self.timeout = interval, limit, seconds, timeout
        self.results: list[tuple[float, int]] = []  # (monotonic time, status; 0: no answer)
        self.sent = 0  # requests sent, the one on its way included
        self.durations: list[float] = []  # seconds each request took, in the same order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and len(self.results) < self.limit:
            if time.monotonic() >= deadline:
                break
            began = time.monotonic()
            self.sent += 1
            status, _ = http_get(self.port, host=self.host, timeout=self.timeout)
            ended = time.monotonic()
            self.durations.append(ended - began)
            self.results.append((ended, status))
            self._stop.wait(self.interval)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> int:
        return sum(1 for _, status in self.results if status != 200)

    def failures(self) -> list[tuple[float, float, int]]:
        """(when it was sent, when it ended, status) of each request that failed."""
        return [
            (at - took, at, status)
            for (at, status), took in zip(self.results, self.durations, strict=False)
            if status != 200
        ]

    @property
    def slowest(self) -> float:
        """Seconds the slowest request took (one that failed counts too)."""
        return max(self.durations, default=0.0)

    def served_since(self, since: float) -> int:
        return sum(1 for at, status in self.results if at > since and status == 200)

    def serving_after(self, since: float) -> float:
        """Seconds from `since` until the first success after the last failure (0 when
        nothing failed after `since`)."""
        after = [(at, status) for at, status in self.results if at >= since]
        failures = [i for i, (_, status) in enumerate(after) if status != 200]
        if not failures:
            return 0.0
        rest = after[failures[-1] + 1 :]
        if not rest:
            return float("inf")
        return rest[0][0] - since

    def figure(self, what: str, since: float) -> str:
        failed = [status for _, status in self.results if status != 200]
        line = (
            f"{what}: {self.failed} of {self.total} requests failed"
            f"{' (status ' + ', '.join(map(str, failed)) + '; 0: no answer)' if failed else ''}, "
            f"serving again after {self.serving_after(since):.2f} s, "
            f"slowest request {self.slowest:.2f} s"
        )
        print(line)
        return line


def wait_served(load: Load, since: float, count: int = 5, timeout: float = 30.0) -> None:
    """Until `count` requests succeeded after the last failure following `since`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = [status for at, status in load.results if at >= since]
        tail = after[-count:]
        if len(tail) == count and all(status == 200 for status in tail):
            return
        time.sleep(0.05)
    raise AssertionError(f"not serving {count} requests in a row within {timeout} s")
