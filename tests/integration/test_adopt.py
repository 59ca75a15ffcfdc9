"""Real projects adopted in place (`venue.add_act`, `backstage act add`): made in the
tests outside Backstage, served through the router with their own settings, their
requirements installed, their release steps run; their files never written."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

from backstage.errors import InstallFailed, NotAProject, PreflightFailed, ReleaseFailed
from backstage.files.fs import log_backups
from emperor.process import pid_alive
from tests.conftest import cli, cli_quiet, run_cli
from tests.helpers import http_get, poll, render_vassal
from tests.projects import (
    FLASK_GREETING,
    GREETING,
    STATIC_CSS,
    make_django_project,
    make_flask_project,
)

BOOKED = "kittens.example.com"


def files_of(folder: str) -> dict[str, tuple[float, int]]:
    """Every file under `folder` with its mtime and size: what 'unchanged' means."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found[path] = (os.stat(path).st_mtime, os.stat(path).st_size)
    return found


def test_a_django_project_is_adopted_in_place_and_served_through_the_router(
    production, real_venue, projects
):
    project = make_django_project(projects)
    database = os.path.join(projects, "db.sqlite3")
    before = files_of(project.path)
    real_venue.add_domain("example.com")

    act = real_venue.add_act("Site", project.path, env={"DATABASE_PATH": database})
    act.book(BOOKED)
    router = production.router.port
    # the page reads the database the release steps migrated
    assert http_get(router, host=BOOKED) == (200, GREETING)
    assert http_get(act.port, host=BOOKED) == (200, GREETING)
    # the project's own ALLOWED_HOSTS still holds, and nothing else does
    assert http_get(act.port, host=project.own_host) == (200, GREETING)
    assert http_get(act.port, host="intruder.example.org")[0] == 400
    # the app's static file, collected by the release steps, served by the vassal
    static = "/static/" + project.static_path
    assert http_get(router, static, host=BOOKED) == (200, STATIC_CSS)
    assert http_get(act.port, static) == (200, STATIC_CSS)
    spec = act.spec
    assert spec.source == project.path and spec.settings == project.settings_module
    assert spec.wsgi == project.wsgi and spec.static_url == "/static/"
    assert spec.release == (
        "python manage.py migrate --noinput",
        "python manage.py collectstatic --noinput",
    )
    assert oct(os.stat(act.spec_path).st_mode & 0o777) == "0o600"  # it holds env
    act.reload()
    assert http_get(router, host=BOOKED) == (200, GREETING)
    assert files_of(project.path) == before, "the project's files were written"


def test_a_flask_app_with_its_own_requirements(production, real_venue, projects):
    project = make_flask_project(projects)
    before = files_of(project.path)
    done = run_cli(
        "act", "add", "Real", "Flasky", project.path, "--wsgi", project.wsgi, home=production.home
    )
    assert "Real/Flasky" in done.stdout
    act = real_venue.act("Flasky")
    assert http_get(act.port) == (200, FLASK_GREETING)
    assert act.spec.settings == "" and act.spec.release == ()
    assert files_of(project.path) == before


def test_what_is_not_a_project_is_refused_with_one_line_and_nothing_made(
    production, real_venue, projects, caplog
):
    empty = os.path.join(projects, "empty")
    os.makedirs(empty)
    with pytest.raises(NotAProject, match="no Django project"):
        real_venue.add_act("Nothing", empty)
    flask = make_flask_project(projects)
    with pytest.raises(PreflightFailed, match="app:nosuch does not load"):
        real_venue.add_act("Wrong", flask.path, wsgi="app:nosuch")
    done = cli_quiet(
        caplog, "act", "add", "Real", "Wrong", flask.path, "--wsgi", "nosuch:app",
        home=production.home,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "nosuch" in done.stderr
    assert os.listdir(real_venue.acts_dir) == []


def test_a_reload_of_broken_code_is_refused_and_the_old_code_keeps_serving(
    production, real_venue, projects, caplog
):
    project = make_flask_project(projects)
    act = real_venue.add_act("Steady", project.path, wsgi=project.wsgi)
    assert http_get(act.port) == (200, FLASK_GREETING)
    workers = {w.pid for w in act.sess.workers}
    failures, served, stop = [], [], threading.Event()

    def load() -> None:
        while not stop.is_set():
            answer = http_get(act.port, timeout=10)
            (served if answer == (200, FLASK_GREETING) else failures).append(answer)

    loaders = [threading.Thread(target=load) for _ in range(3)]
    for loader in loaders:
        loader.start()
    try:
        with open(os.path.join(project.path, "app.py"), "a") as app:
            app.write("\ndef broken(:\n")
        done = cli_quiet(caplog, "act", "reload", "Real/Steady", home=production.home)
        poll(lambda: len(served) > 20)
    finally:
        stop.set()
        for loader in loaders:
            loader.join()
    assert done.returncode == 1, done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("backstage: app:app does not load: ") and "SyntaxError" in line
    assert failures == [] and served
    assert {w.pid for w in act.sess.workers} == workers  # no worker was touched


def test_a_scaffolded_act_refuses_a_reload_of_code_that_does_not_import(venue):
    act = venue.new_act("Scaffolded")
    assert http_get(act.port)[0] in (200, 404)
    # wsgi.py, which every running worker imported at start (urls.py is imported at a
    # worker's first request, and a worker that had none yet would import the broken one)
    with open(os.path.join(act.path, act.spec.package, "wsgi.py"), "a") as wsgi:
        wsgi.write("\nimport no_such_module\n")
    with pytest.raises(PreflightFailed, match="No module named 'no_such_module'"):
        act.reload()
    assert act.state == "running" and http_get(act.port)[0] in (200, 404)


def test_a_failing_release_step_or_install_stops_the_reload_and_the_old_version_serves(
    production, real_venue, projects
):
    project = make_flask_project(projects)
    act = real_venue.add_act("Careful", project.path, wsgi=project.wsgi)
    workers = {w.pid for w in act.sess.workers}
    act.manager.declare(release=("python -c \"raise SystemExit('the release says no')\"",))
    with pytest.raises(ReleaseFailed, match="failed \\(exit 1\\): the release says no"):
        act.reload()
    assert {w.pid for w in act.sess.workers} == workers
    act.manager.declare(release=())
    with open(os.path.join(project.path, "requirements.txt"), "a") as out:
        out.write("python-decouple==0.0.1\n")
    with pytest.raises(InstallFailed, match="python-decouple==0.0.1") as caught:
        act.reload()
    assert "\n" not in str(caught.value)
    assert {w.pid for w in act.sess.workers} == workers
    assert http_get(act.port) == (200, FLASK_GREETING)


WORKER = (
    "python -c \"import os, time; open(os.environ['OUT'], 'a').write("
    "'worker ' + os.environ['SECRET'] + chr(10)); time.sleep(600)\""
)
CRON = (
    "* * * * * python -c \"import os; open(os.environ['OUT'], 'a').write("
    "'cron ' + os.environ['SECRET'] + chr(10))\""
)


def test_workers_and_cron_run_with_the_act_and_show_in_its_stats(production, real_venue, projects):
    project = make_flask_project(projects)
    out = os.path.join(projects, "out.txt")
    act = real_venue.add_act(
        "Busy", project.path, wsgi=project.wsgi, env={"OUT": out, "SECRET": "s3cret"}, start=False
    )
    act.manager.declare(workers={"tick": WORKER}, cron={"tock": CRON})
    act.start()

    def lines() -> list[str]:
        return sorted(open(out).read().splitlines()) if os.path.exists(out) else []

    poll(lambda: len(lines()) >= 2, timeout=20)
    assert lines()[:2] == ["cron s3cret", "worker s3cret"]
    daemons = poll(lambda: production.snapshot().act(act.key).daemons)
    worker = next(d for d in daemons if d.kind == "worker")
    assert worker.name == "tick" and worker.pid > 0
    assert [(d.kind, d.name) for d in daemons if d.kind == "cron"] == [("cron", "tock")]
    status = json.loads(cli("status", "--json", home=production.home).stdout)
    (row,) = [a for a in status["acts"] if a["act"] == "Busy"]
    assert {"kind": "worker", "name": "tick", "pid": worker.pid, "respawns": 0} in row["daemons"]
    assert files_of(project.path).keys() == {
        os.path.join(project.path, "app.py"),
        os.path.join(project.path, "requirements.txt"),
    }

    act.reload()  # the workers restart with the web workers

    def new_worker() -> int:
        found = [d.pid for d in production.snapshot().act(act.key).daemons if d.kind == "worker"]
        return found[0] if found and found[0] not in (0, worker.pid) else 0

    poll(new_worker, timeout=15)
    assert not pid_alive(worker.pid)
    last = new_worker()
    act.stop()
    poll(lambda: not pid_alive(last), timeout=10)


@pytest.mark.slow
def test_act_set_config_run_and_manage_from_the_command(production, real_venue, projects):
    project = make_django_project(projects)
    database = os.path.join(projects, "db.sqlite3")
    home = production.home

    def cli(*args: str):
        return run_cli(*args, home=home, check=False)

    done = cli(
        "act",
        "add",
        "Real",
        "Site",
        project.path,
        "--no-start",
        "--env",
        f"DATABASE_PATH={database}",
    )
    assert done.returncode == 0, done.stderr
    act = real_venue.act("Site")
    assert act.state == "stopped"

    assert cli("config", "set", "Real/Site", "GREETING=100% $(HOME)").returncode == 0
    assert oct(os.stat(act.spec_path).st_mode & 0o777) == "0o600"
    listed = cli("config", "Real/Site").stdout.splitlines()
    assert listed == [f"DATABASE_PATH={database}", "GREETING=100% $(HOME)"]
    assert cli("config", "unset", "Real/Site", "GREETING").returncode == 0
    assert act.env == {"DATABASE_PATH": database}
    missing = cli("config", "unset", "Real/Site", "NOPE")
    assert missing.returncode == 1 and "NOPE" in missing.stderr

    assert cli("manage", "Real/Site", "migrate", "--noinput").returncode == 0
    assert os.path.getsize(database) > 0
    printed = cli(
        "run",
        "Real/Site",
        "--",
        "python",
        "-c",
        "import os, django; print(os.environ['DATABASE_PATH'], os.getcwd())",
    )
    assert printed.stdout.split() == [database, project.path], printed.stderr
    assert cli("run", "Real/Site", "--", "sh", "-c", "exit 3").returncode == 3

    assert cli("act", "set", "Real/Site", "processes=3", "uwsgi.harakiri=30").returncode == 0
    assert act.spec.processes == 3 and act.spec.uwsgi == {"harakiri": 30}
    for bad, says in (
        ("uwsgi.http-socket=:80", "is set by Backstage"),
        ("uwsgi.no-such-option=1", "is not an option an Act may set"),
        ("processes=many", "processes must be an integer"),
        ("bogus", "is not KEY=VALUE"),
    ):
        done = cli("act", "set", "Real/Site", bad)
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, bad
        assert says in done.stderr, done.stderr
    assert act.spec.processes == 3 and act.spec.uwsgi == {"harakiri": 30}

    act.start()  # with its [uwsgi] option and release steps
    assert http_get(act.port, host=project.own_host) == (200, GREETING)
    assert "harakiri = 30" in render_vassal(act)
    assert not any("__pycache__" in dirs for _, dirs, _ in os.walk(project.path))


def inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def test_the_log_rotates_by_size_and_the_manager_keeps_log_keep_copies(
    production, real_venue, projects
):
    project = make_flask_project(projects)
    act = real_venue.add_act("Logged", project.path, wsgi=project.wsgi, start=False)
    act.set("log_max=2000", "log_keep=2")
    act.start()
    seen: set[str] = set()

    def rotated_three_times() -> bool:
        for _ in range(10):
            http_get(act.port)
        seen.update(log_backups(act.log_path))
        return len(seen) >= 3

    poll(rotated_three_times, timeout=60, interval=0.3)  # uWSGI looks once a second
    poll(lambda: len(log_backups(act.log_path)) <= 2, timeout=5)
    assert os.path.getsize(act.log_path) < 2000 + 4096
    # a rotation by hand (L on the FIFO) loses nothing `logs` shows
    http_get(act.port, "/by-hand")
    before = os.stat(act.log_path).st_ino
    cli("fifo", act.key, "L", home=production.home)
    # a new log in place (the rotated one may take the name of one rotated in the same
    # second: uWSGI names them by the second), none for a moment between its rename and
    # its reopening
    poll(lambda: inode(act.log_path) not in (before, None), timeout=10)
    shown = cli("logs", act.key, "-n", "30", home=production.home).stdout
    assert "GET /by-hand" in shown


def git(*args: str, cwd: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_a_git_source_is_cloned_into_the_acts_folder(production, real_venue, projects, caplog):
    project = make_flask_project(projects)
    git("init", "-q", ".", cwd=project.path)
    git("add", ".", cwd=project.path)
    git("commit", "-q", "-m", "first", cwd=project.path)
    act = real_venue.add_act("Cloned", f"file://{project.path}", wsgi=project.wsgi)
    assert act.spec.source == os.path.join(act.path, "src")
    assert os.path.isfile(os.path.join(act.path, "src", "app.py"))
    assert http_get(act.port) == (200, FLASK_GREETING)
    done = cli_quiet(
        caplog, "act", "add", "Real", "Nowhere", f"file://{projects}/nothing-here.git",
        "--wsgi", "app:app", home=production.home,
    )  # fmt: skip
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "cannot clone" in done.stderr
    assert sorted(os.listdir(real_venue.acts_dir)) == ["Cloned"]
