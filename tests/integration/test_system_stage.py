"""The system Emperor as the Stage: Debian's uwsgi-emperor, not the Production's own.

Each test starts an Emperor of its own from Debian's binary and the package's own
emperor.ini, as its service would, but on a directory and pidfile in a temp folder: never
the machine's /etc/uwsgi-emperor/vassals. It carries the Production's BACKSTAGE_HOME, so the suite's
check of processes left behind sees it, and it is stopped at teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from backstage.errors import StageError
from backstage.shortcuts import new_venue
from emperor.process import emperor_in, parent_of, pid_alive, pids_named, read_pidfile
from tests.conftest import ROOT, cli, run_cli
from tests.gigs_helpers import named_act
from tests.helpers import http_get, poll

SYSTEM_UWSGI = "/usr/bin/uwsgi"
PLUGIN = "/usr/lib/uwsgi/plugins/python3_plugin.so"

pytestmark = [
    pytest.mark.skipif(
        not (os.access(SYSTEM_UWSGI, os.X_OK) and os.path.exists(PLUGIN)),
        reason=f"needs Debian's uwsgi (apt install uwsgi-emperor uwsgi-plugin-python3): "
        f"{SYSTEM_UWSGI} or {PLUGIN} is absent",
    ),
    # One system Emperor on the machine: its cases never run beside each other.
    pytest.mark.xdist_group("system_emperor"),
]


DEBIAN_INI = "/etc/uwsgi-emperor/emperor.ini"


def emperor_ini(vassals: str) -> str:
    """Debian's emperor.ini, or what the package ships in it, with `emperor` pointed at
    `vassals`; without its uid and gid (www-data), for the test's home is root's."""
    try:
        with open(DEBIAN_INI) as packaged:
            lines = packaged.read().splitlines()
    except OSError:
        lines = ["[uwsgi]", "master = true", "workers = 2", "no-orphans = true"]
    kept = [line for line in lines if line.partition("=")[0].strip() not in EMPEROR_OWN]
    return "\n".join(kept + [f"emperor = {vassals}"]) + "\n"


EMPEROR_OWN = ("uid", "gid", "emperor")


class SystemEmperor:
    """Started as Debian's service starts it (`uwsgi --ini emperor.ini --pidfile`): a
    master, and the Emperor its child, which works in the vassal directory."""

    def __init__(self, root: str) -> None:
        self.vassals = os.path.join(root, "vassals")
        self.ini = os.path.join(root, "emperor.ini")
        self.pidfile = os.path.join(root, "emperor.pid")
        self.log = os.path.join(root, "emperor.log")
        os.makedirs(self.vassals)
        with open(os.path.join(self.vassals, "README"), "w") as readme:
            readme.write("not a vassal, and not Backstage's: as Debian ships the directory\n")
        with open(self.ini, "w") as ini:
            ini.write(emperor_ini(self.vassals))

    def start(self, home: str, *extra: str) -> None:
        command = [SYSTEM_UWSGI, "--ini", self.ini, "--pidfile", self.pidfile, *extra]
        with open(self.log, "ab") as log:
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, BACKSTAGE_HOME=home),
            )
        poll(lambda: read_pidfile(self.pidfile) and emperor_in(self.vassals), timeout=10)

    @property
    def pid(self) -> int | None:
        """The master's: the one Debian's pidfile holds."""
        pid = read_pidfile(self.pidfile)
        return pid if pid is not None and pid_alive(pid) else None

    def stop(self) -> None:
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            poll(lambda: not pid_alive(pid), timeout=30)


@pytest.fixture
def system_emperor(production):
    root = tempfile.mkdtemp(prefix="sys", dir=ROOT)
    emperor = SystemEmperor(root)
    production.declare(stage="system", system_vassals=emperor.vassals)
    yield emperor
    emperor.stop()


@pytest.fixture
def system_venue(production, system_emperor):
    """A Venue on Debian's Python, which the python3 plugin embeds; built per test."""
    parent = tempfile.mkdtemp(prefix="sv", dir=ROOT)
    venue = new_venue("SysVenue", parent, production)
    yield venue
    production.down()
    production.forget_venue(venue)
    shutil.rmtree(parent, ignore_errors=True)


def _mine(production) -> list[int]:
    return pids_named(production.layout.prefix + " ")


def _links(emperor: SystemEmperor) -> list[str]:
    return sorted(os.listdir(emperor.vassals))


@pytest.mark.slow
def test_acts_play_on_the_system_emperor(production, system_emperor, system_venue):
    system_emperor.start(production.home)
    emperor_pid = emperor_in(system_emperor.vassals)
    assert emperor_pid == system_emperor.pid  # its master, whose --ini names the directory
    with open(os.path.join(system_venue.path, "pyvenv.cfg")) as cfg:
        assert "home = /usr/bin" in cfg.read()  # Debian's Python, the plugin's

    act = named_act(system_venue, "Hello", start=False)
    act.set("enabled=true")
    prefix = production.layout.prefix
    vassal = production.layout.vassal(act.ref)
    assert vassal.startswith(prefix + ".")
    link = os.path.join(system_emperor.vassals, vassal)
    assert not os.path.lexists(link)

    # up: the Production Manager links the declared Act's config, and the Emperor plays it
    run_cli("up", home=production.home)
    poll(lambda: http_get(act.port) == (200, "Hello"), timeout=30)
    assert os.path.islink(link) and os.readlink(link).startswith(production.home)
    # the router plays there too, under the Production's prefix
    assert any(name.startswith(f"{prefix}.router-") for name in _links(system_emperor))
    with open(link) as config:
        assert "plugins = python3,router_metrics" in config.read()

    # a Gig through the router, itself a vassal of the system Emperor
    system_venue.add_domain("example.com")
    act.book("hello.example.com")
    router = production.router.port
    poll(lambda: http_get(router, host="hello.example.com") == (200, "Hello"), timeout=30)
    assert http_get(router, host="nobody.example.com")[0] == 404

    status = json.loads(cli("status", "--json", home=production.home).stdout)
    (row,) = [row for row in status["acts"] if row["act"] == "Hello"]
    assert row["state"] == "running" and row["pid"] is not None
    assert status["emperor"]["channel"] == "system"

    # a chain reload through the vassal's master FIFO, as on the own Emperor
    workers = {worker.pid for worker in act.sess.workers}
    act.reload()
    assert workers.isdisjoint(worker.pid for worker in act.sess.workers)
    assert http_get(act.port) == (200, "Hello")

    # stop: the link goes, and the Act's processes with it
    act.stop()
    assert not os.path.lexists(link)
    poll(lambda: not pids_named(f"{prefix} {act.key}"), timeout=15)
    assert http_get(act.port)[0] == 0

    # down: nothing of the Production plays on, and the system Emperor does
    act.start()
    run_cli("down", home=production.home)
    assert _links(system_emperor) == ["README"]
    poll(lambda: not _mine(production), timeout=15)
    assert not production.manager.running()
    assert emperor_in(system_emperor.vassals) == emperor_pid


def test_an_emperor_with_stats_is_read(production, system_emperor, system_venue):
    stats = os.path.join(os.path.dirname(system_emperor.vassals), "emperor.stats")
    system_emperor.start(production.home, "--emperor-stats", stats)
    production.declare(system_stats=stats)
    act = named_act(system_venue, "Counted")
    reported = production.stage.stats()
    assert reported is not None and parent_of(reported.pid) == system_emperor.pid
    entry = reported.vassal(production.layout.vassal(act.ref))
    assert entry is not None and entry.pid == act.sess.pid and entry.accepting
    production.down()
    assert pid_alive(reported.pid) and emperor_in(system_emperor.vassals) == system_emperor.pid


APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{version!r}.encode()]
"""


@pytest.mark.slow
def test_a_release_is_checked_and_served_there(production, system_emperor, system_venue):
    """A deploy checks the new release in a uWSGI of its own (Debian's, told to load its
    plugins), then chain-reloads the Act on it: a folder's Act serves through `current`
    from its first start."""
    system_emperor.start(production.home)
    folder = os.path.join(os.path.dirname(system_venue.path), "site")
    os.makedirs(folder)
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(APP.format(version="in place"))
    # set before it starts: on a playing Act the Manager restarts it for its new config
    # after `set` returns, and that restart would come in the middle of the deploy
    act = system_venue.add_act("Folder", folder, wsgi="app:application", start=False)
    act.set("uwsgi.py-autoreload=0")  # a python3 plugin's option is known
    act.start()
    assert http_get(act.port) == (200, "in place")
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(APP.format(version="copied"))
    first = act.deploy()
    assert first.live and act.spec.current
    assert http_get(act.port) == (200, "copied")


def test_no_system_emperor_is_one_clear_line(production, system_emperor):
    done = run_cli("up", home=production.home, check=False)
    assert done.returncode != 0
    assert "no uwsgi Emperor watches" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not production.manager.running()


def test_a_missing_vassal_directory_is_one_clear_error(production, system_emperor):
    production.declare(system_vassals=system_emperor.vassals + "-absent")
    with pytest.raises(StageError, match="no directory .*-absent: install uwsgi-emperor"):
        production.up()
