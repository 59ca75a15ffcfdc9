"""Applications as people write them, met by a new user: a Flask application factory,
Django's uploaded media, and the small things around adding, changing, removing and
developing an Act. Real projects, real Emperors, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from backstage.control.daemon.loop import ProductionManager
from backstage.errors import PreflightFailed
from backstage.files import declared
from backstage.model.layout import ActRef
from emperor.process import pid_alive
from tests.conftest import cli, cli_quiet, run_cli
from tests.helpers import RequestLoop, http_get
from tests.integration.test_adopt import BOOKED
from tests.projects import STATIC_CSS, git, make_django_project, write_files

FACTORY_GREETING = "hello from the factory"


def make_factory_project(parent: str, folder: str = "flaskr", arguments: str = "test_config=None"):
    """Flask's tutorial layout: a package whose create_app builds the app, configured
    from a mapping when one is given."""
    root = os.path.join(parent, folder)
    write_files(
        root,
        {
            "requirements.txt": "Flask>=2.3\n",
            "flaskr/__init__.py": f"""
                import os

                from flask import Flask


                def create_app({arguments}):
                    app = Flask(__name__, instance_relative_config=True)
                    app.config.from_mapping(GREETING="{FACTORY_GREETING}")
                    if test_config is not None:
                        app.config.from_mapping(test_config)

                    @app.route("/")
                    def index():
                        return app.config["GREETING"]

                    @app.route("/token")
                    def token():
                        return os.environ.get("TOKEN", "none")

                    return app
            """,
        },
    )
    return root


def test_a_flask_application_factory_is_served_called_with_literal_arguments(
    production, real_venue, projects
):
    path = make_factory_project(projects)
    done = cli(
        "act", "add", "Real", "Factory", path, "--wsgi", "flaskr:create_app()",
        home=production.home,
    )  # fmt: skip
    act = real_venue.act("Factory")
    assert f"http://127.0.0.1:{act.port}/" in done.stdout
    assert http_get(act.port) == (200, FACTORY_GREETING)
    assert act.spec.wsgi == "flaskr:create_app()"
    # arguments, as literals; what act set did and what it means for the Act
    done = cli(
        "act", "set", "Real/Factory", """wsgi=flaskr:create_app({"GREETING": "hi there"})""",
        home=production.home,
    )  # fmt: skip
    assert done.stdout.strip() == (
        """Real/Factory: wsgi "flaskr:create_app()" -> "flaskr:create_app({'GREETING': """
        """'hi there'})"; it reloaded to apply it, with no failed request"""
    )
    assert http_get(act.port) == (200, "hi there")
    # the module that calls the factory is part of each version, never of the Act's folder:
    # the argument alone made a new version, and the one before keeps its own call
    assert not os.path.exists(os.path.join(act.path, "backstage_wsgi.py"))
    first, second = (os.path.join(r.path, "backstage_wsgi.py") for r in act.releases[-2:])
    assert open(first).read().endswith("application = _factory()\n")
    assert open(second).read().endswith("application = _factory({'GREETING': 'hi there'})\n")
    assert act.releases[-1].live
    # with a change that restarts it: the restart, then the new version
    act.set("""wsgi=flaskr:create_app({"GREETING": "three"})""", "processes=3")
    assert http_get(act.port) == (200, "three") and len(act.sess.workers) == 3
    # code is never taken for an argument: refused before anything is written
    done = cli(
        "act", "set", "Real/Factory", "wsgi=flaskr:create_app(__import__('os').getcwd())",
        home=production.home, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "must be literals" in done.stderr
    assert act.spec.wsgi == "flaskr:create_app({'GREETING': 'three'})"
    # a release step only changes the next reload: said so, and no restart
    master = act.sess.pid
    done = cli("act", "set", "Real/Factory", 'release=["python -c pass"]', home=production.home)
    assert "applies at the next reload" in done.stdout and "no restart" in done.stdout
    done = cli("act", "set", "Real/Factory", "log_keep=3", home=production.home)
    assert done.stdout.strip() == (
        "Real/Factory: log_keep 5 -> 3; the Production Manager applies it now, no restart"
    )
    done = cli("config", "set", "Real/Factory", "TOKEN=s3cret", home=production.home)
    assert done.stdout.strip() == (
        "Real/Factory: TOKEN set; it reloaded to apply it, with no failed request"
    )  # the value is never printed; each worker read the env file anew, no restart
    assert http_get(act.port, "/token") == (200, "s3cret") and act.sess.pid == master
    # a refused reload names the file and line of a syntax error
    with open(os.path.join(path, "flaskr", "__init__.py"), "a") as module:
        module.write("\n\ndef broken(:\n    pass\n")
    with pytest.raises(PreflightFailed) as refused:
        act.reload()
    assert "SyntaxError" in str(refused.value)
    assert f"({os.path.join(path, 'flaskr', '__init__.py')} line " in str(refused.value)
    assert http_get(act.port) == (200, "three")
    # `backstage dev` stopped by SIGTERM as by Ctrl-C: watch is put back
    dev = subprocess.Popen(
        [sys.executable, "-m", "backstage", "dev", "Real/Factory"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, BACKSTAGE_HOME=production.home),
    )  # fmt: skip
    try:
        assert dev.stdout is not None
        while "Ctrl-C stops watching" not in (line := dev.stdout.readline()):
            assert line, "backstage dev ended before it watched"
        assert act.spec.watch is True
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=30) == 0
        assert "Stopped watching Real/Factory; it plays on." in dev.stdout.read()
    finally:
        dev.kill()
        dev.wait()
        dev.stdout.close()
    assert act.spec.watch is False
    assert http_get(act.port) == (200, "three")


def test_a_git_acts_changed_factory_call_is_a_checked_release_not_a_reload_in_place(
    production, real_venue, projects
):
    repo = make_factory_project(projects)
    git(repo, "init", "-q", "-b", "main", ".")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    act = real_venue.add_act("Cloned", f"file://{repo}", wsgi="flaskr:create_app()")
    assert http_get(act.port) == (200, FACTORY_GREETING) and act.releases == []
    commit = subprocess.run(
        ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with RequestLoop(act.port) as loop:
        act.set("""wsgi=flaskr:create_app({"GREETING": "first call"})""")
        loop.serves("first call")
        # refused by its check: no release is left, the settings are put back
        with pytest.raises(PreflightFailed):
            act.set("wsgi=flaskr:create_app(42)")
        assert act.spec.wsgi == "flaskr:create_app({'GREETING': 'first call'})"
        act.set("""wsgi=flaskr:create_app({"GREETING": "second call"})""")
        loop.serves("second call")
    assert loop.failed == []
    # each call built a release of the same commit, the module in it; the clone untouched
    found = act.releases
    assert [(r.number, r.sha, r.live) for r in found] == [
        (1, commit[:12], False),
        (2, commit[:12], True),
    ]
    with open(os.path.join(found[0].path, "backstage_wsgi.py")) as module:
        assert "create_app({'GREETING': 'first call'})" in module.read()
    status = subprocess.run(
        ["git", "-C", act.spec.source, "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""
    time.sleep(1.1)  # uWSGI's fork-bomb guard: no two chain reloads within a second
    act.rollback()
    assert http_get(act.port) == (200, "first call")


def test_a_factory_named_without_its_call_is_refused_at_once_and_its_log_kept(
    production, real_venue, projects, caplog
):
    # create_app(test_config=None) cannot take (environ, start_response): the pre-flight
    # says so, and how to write it, before anything plays
    path = make_factory_project(projects)
    began = time.monotonic()
    done = cli_quiet(
        caplog, "act", "add", "Real", "Uncalled", path, "--wsgi", "flaskr:create_app",
        home=production.home,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert "TypeError" in line and "written flaskr:create_app()" in line, line
    assert os.listdir(real_venue.acts_dir) == []
    # one that can (two optional arguments) loads, then fails every request: the start
    # says so once it sees it, not after its timeout, and keeps the log it names
    other = make_factory_project(projects, "flaskr2", "test_config=None, instance=None")
    done = cli_quiet(
        caplog, "act", "add", "Real", "Uncalled", other, "--wsgi", "flaskr:create_app",
        home=production.home,
    )  # fmt: skip
    waited = time.monotonic() - began
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "fails every request" in line and "TypeError" in line, line
    log = production.layout.act_log(ActRef("Real", real_venue.path, "Uncalled"))
    assert f"log: {log})" in line and "TypeError" in open(log).read()
    assert os.listdir(real_venue.acts_dir) == []
    assert waited < 55, f"both refusals took {waited:.0f} s: the start waited out its timeout"


def test_django_media_are_served_by_the_vassal_directly_and_through_the_router(
    production, real_venue, projects
):
    project = make_django_project(projects)
    # the usual layout: MEDIA_ROOT and STATIC_ROOT in the project, one upload there
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write(
            "\nBASE_DIR = os.path.dirname(os.path.dirname(os.path.dirname("
            "os.path.abspath(__file__))))\n"
            'MEDIA_URL = "/media/"\nMEDIA_ROOT = os.path.join(BASE_DIR, "media")\n'
            'STATIC_ROOT = os.path.join(BASE_DIR, "collected")\n'
        )
    os.makedirs(os.path.join(project.path, "media"))
    with open(os.path.join(project.path, "media", "old.txt"), "w") as old:
        old.write("an old kitten")
    env = {"DATABASE_PATH": os.path.join(projects, "db.sqlite3")}
    real_venue.add_domain("example.com")
    act = real_venue.add_act("Gallery", project.path, env=env)
    act.book(BOOKED)
    # served from the Act's shared data, which every version links in as its media/
    shared_media = os.path.join(act.ref.shared_dir, "media")
    assert (act.spec.media_url, act.spec.media_root) == ("/media/", shared_media)
    router = production.router.port
    assert http_get(act.port, "/media/old.txt") == (200, "an old kitten")
    # an upload, saved as the app saves it: through Django's storage
    saved = act.run(
        [
            "python", "manage.py", "shell", "-c",
            "from django.core.files.base import ContentFile;"
            "from django.core.files.storage import default_storage;"
            "default_storage.save('kittens/one.txt', ContentFile(b'a kitten'))",
        ]
    )  # fmt: skip
    assert saved == 0 and os.path.isfile(os.path.join(shared_media, "kittens", "one.txt"))
    assert http_get(act.port, "/media/kittens/one.txt") == (200, "a kitten")
    assert http_get(router, "/media/kittens/one.txt", host=BOOKED) == (200, "a kitten")
    assert http_get(act.port, "/media/kittens/none.txt")[0] == 404
    assert not os.path.exists(os.path.join(project.path, "media", "kittens"))
    # each version collects its static files: the live one's are served
    static = "/static/" + project.static_path
    assert http_get(router, static, host=BOOKED) == (200, STATIC_CSS)
    with open(os.path.join(project.path, "greetings", "static", project.static_path), "w") as css:
        css.write("body { color: green; }\n")
    # a new version serves the same uploads and its own static files, with no restart,
    # checked in a fork of the Act's warm check, which no module edit made stale
    master = act.sess.pid
    warm = production.crew.layout.act_check(act.ref) + ".pid"
    with open(warm) as pidfile:
        checker = pidfile.read()
    act.reload()
    with open(warm) as pidfile:
        assert pidfile.read() == checker
    assert http_get(router, "/media/kittens/one.txt", host=BOOKED) == (200, "a kitten")
    assert http_get(act.port, static) == (200, "body { color: green; }\n")
    assert act.sess.pid == master
    assert not os.path.exists(os.path.join(project.path, "collected"))  # never written
    # a code edit: the new version starts with the live one's collected files (links,
    # not written again), as nothing collectstatic reads changed
    in_version = os.path.join(act.ref.current, "collected", project.static_path)
    linked, live = os.stat(in_version).st_ino, os.path.realpath(act.ref.current)
    with open(os.path.join(project.path, "greetings", "views.py"), "a") as views:
        views.write("\n# an edit\n")
    act.reload()
    assert os.path.realpath(act.ref.current) != live
    assert os.stat(in_version).st_ino == linked
    # a version whose settings move STATIC_URL is served at the new URL, in one restart
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write('STATIC_URL = "/assets/"\n')
    act.reload()
    assert act.spec.static_url == "/assets/" and act.sess.pid != master
    moved = "/assets/" + project.static_path
    assert http_get(act.port, moved) == (200, "body { color: green; }\n")
    assert http_get(router, moved, host=BOOKED) == (200, "body { color: green; }\n")
    assert http_get(router, "/media/kittens/one.txt", host=BOOKED) == (200, "a kitten")
    # its warm check ends with it
    with open(warm) as pidfile:
        checker = pidfile.read()
    act.remove()
    assert not os.path.exists(warm) and not pid_alive(int(checker))


def test_act_add_no_start_and_release_steps_then_act_rm_in_one_step(
    production, real_venue, projects
):
    path = make_factory_project(projects)
    done = run_cli(
        "act", "add", "Real", "Later", path, "--wsgi", "flaskr:create_app()", "--no-start",
        "--release", "python -c 'print(1)'", "--release", "python -c pass",
        home=production.home,
    )  # fmt: skip
    act = real_venue.act("Later")
    assert done.stdout.strip() == (
        f"Act Real/Later added from {path}, not started (its port: {act.port}): "
        "`backstage act start Real/Later` starts it"
    )
    assert act.spec.release == ("python -c 'print(1)'", "python -c pass")
    assert act.state == "stopped"
    done = cli("act", "set", "Real/Later", "processes=3", home=production.home)
    assert done.stdout.strip() == (
        "Real/Later: processes 2 -> 3; it is not playing: it applies when it starts"
    )
    done = cli("act", "set", "Real/Later", "processes=3", home=production.home)
    assert done.stdout.strip() == "Real/Later: nothing changed"
    done = run_cli(
        "act", "add", "Real", "Bad", path, "--release", "python -c 'unclosed",
        home=production.home, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "--release" in done.stderr
    assert sorted(os.listdir(real_venue.acts_dir)) == ["Later"]

    # act rm: one rename, under the lock a pass of the Manager writes Acts' files under
    layout = production.layout
    # a static root in the Act's folder, which each pass makes when it is missing (as
    # the pre-flight declares it for a Django project that sets none)
    act.manager.declare(static_url="/static/", static_root=os.path.join(act.path, "static"))
    before = declared.read(layout)  # what a pass read just before the removal
    assert any(found.ref.key == "Real/Later" for found in before.acts)
    released = os.path.join(projects, "released")  # written by the holder before it lets go
    held = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time; from backstage.files import declared\n"
            "with declared.locked(sys.argv[1]):\n"
            "    print('held', flush=True); time.sleep(1.5); open(sys.argv[2], 'w').close()",
            layout.acts_lock, released,
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert held.stdout is not None and held.stdout.readline().strip() == "held"
        done = run_cli("act", "rm", "Real/Later", home=production.home)
        assert os.path.exists(released), "act rm renamed the Act while a pass held the lock"
    finally:
        held.kill()
        held.wait()
        held.stdout.close()
    assert done.stdout.strip() == "Real/Later: removed" and not os.path.exists(act.path)
    assert not any(name.startswith(".removing-") for name in os.listdir(real_venue.path))
    # the pass goes on with what it read: it writes no file of the gone Act
    ProductionManager(production.crew)._write_run_files(before)
    assert not os.path.exists(act.path)
    assert not os.path.exists(layout.act_env(act.ref))
