"""What a vassal runs beside its web workers, and how its log turns over, on a real
uWSGI: a worker (attach-daemon2) and a cron job (cron2 with unique=1) get the
vassal's env, show in its stats and stop with it; log-maxsize rotates its log."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from emperor.stats import parse_json_lenient, read_stats
from tests.helpers import http_get, poll
from tests.projects import free_port, running_uwsgi, write_ini

APP = """
def application(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"x" * 100]
"""


@pytest.fixture
def folder():
    path = tempfile.mkdtemp(prefix="bvx", dir="/tmp")
    with open(os.path.join(path, "app.py"), "w") as out:
        out.write(APP)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def script(folder: str, name: str, body: str) -> str:
    """Commands go into a script of their own: no escaping of user text in the ini."""
    path = os.path.join(folder, name)
    with open(path, "w") as out:
        out.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def base(folder: str, port: int) -> list[tuple[str, str]]:
    return [
        ("master", "true"),
        ("http-socket", f"127.0.0.1:{port}"),
        ("stats", os.path.join(folder, "s.sock")),
        ("master-fifo", os.path.join(folder, "fifo")),
        ("chdir", folder),
        ("wsgi-file", "app.py"),
        ("processes", "1"),
        ("env", "ACT_SECRET=s3cret"),
        ("logto", os.path.join(folder, "act.log")),
    ]


def test_worker_and_cron_run_with_the_env_show_in_stats_and_stop_with_it(folder):
    out = os.path.join(folder, "out")
    worker = script(folder, "worker.sh", f'echo "worker $ACT_SECRET" >> {out}\nexec sleep 600\n')
    job = script(folder, "job.sh", f'echo "cron $ACT_SECRET" >> {out}\n')
    port = free_port()
    ini = write_ini(
        os.path.join(folder, "v.ini"),
        base(folder, port)
        + [
            ("attach-daemon2", f"cmd=exec {worker},stopsignal=15"),
            ("cron2", f"minute=-1,unique=1 {job}"),
        ],
    )
    with running_uwsgi(ini) as master:
        poll(lambda: http_get(port)[0] == 200)
        # a cron of every minute runs at once when the vassal starts
        poll(lambda: os.path.exists(out) and len(open(out).read().splitlines()) == 2)
        assert sorted(open(out).read().splitlines()) == ["cron s3cret", "worker s3cret"]
        stats = parse_json_lenient(read_stats(os.path.join(folder, "s.sock")))
        (daemon,) = stats["daemons"]
        assert daemon["cmd"] == f"exec {worker}" and daemon["respawns"] == 0
        (cron,) = stats["crons"]
        assert (cron["minute"], cron["unique"], cron["command"]) == (-1, 1, job)
        os.kill(master.pid, signal.SIGINT)
        master.wait(timeout=15)
        poll(lambda: not alive(daemon["pid"]), timeout=10)


def test_log_rotates_by_size(folder):
    port = free_port()
    log = os.path.join(folder, "act.log")
    ini = write_ini(
        os.path.join(folder, "v.ini"),
        base(folder, port) + [("log-maxsize", "4000"), ("log-backupname", log + ".1")],
    )
    with running_uwsgi(ini):
        poll(lambda: http_get(port)[0] == 200)
        for _ in range(40):
            http_get(port)
        # the master checks the size about once a second
        poll(lambda: os.path.exists(log + ".1"), timeout=10)
        assert os.path.getsize(log) < os.path.getsize(log + ".1")
        os.rename(log + ".1", log + ".2")
        with open(os.path.join(folder, "fifo"), "w") as fifo:
            fifo.write("L")  # rotate now, whatever the size
        poll(lambda: os.path.exists(log + ".1"), timeout=10)
