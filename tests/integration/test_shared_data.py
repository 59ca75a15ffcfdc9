"""What an app writes survives its releases: a Flask factory app's SQLite file in its
instance folder and a Django project's MEDIA_ROOT and SQLite database, kept in the Act's
shared/ and linked into each release, read the same before and after a deploy and a
rollback."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time

import pytest

from tests.conftest import cli, cli_quiet
from tests.helpers import RequestLoop, http_get
from tests.integration.test_venue_user import passable, system_user, user_venue  # noqa: F401
from tests.projects import git, make_django_project, write_files

FLASKR = {
    "requirements.txt": "Flask>=2.3\n",
    "flaskr/__init__.py": """
        import os
        import sqlite3

        from flask import Flask, request

        VERSION = "one"


        def create_app():
            app = Flask(__name__, instance_relative_config=True)
            os.makedirs(app.instance_path, exist_ok=True)
            database = os.path.join(app.instance_path, "flaskr.sqlite")

            def connect():
                db = sqlite3.connect(database, timeout=10)
                db.execute("CREATE TABLE IF NOT EXISTS post (body TEXT)")
                return db

            @app.route("/")
            def index():
                with connect() as db:
                    rows = [r[0] for r in db.execute("SELECT body FROM post ORDER BY rowid")]
                return f"{VERSION}:" + ",".join(rows)

            @app.route("/add")
            def add():
                with connect() as db:
                    db.execute("INSERT INTO post VALUES (?)", (request.args["body"],))
                return "added"

            return app
    """,
    "wsgi.py": """
        from flaskr import create_app

        app = create_app()
    """,
    ".gitignore": "instance/\n",
}


def commit_version(repo: str, version: str) -> None:
    path = os.path.join(repo, "flaskr", "__init__.py")
    with open(path) as source:
        text = source.read()
    with open(path, "w") as out:
        out.write(re.sub(r'VERSION = "\w+"', f'VERSION = "{version}"', text))
    git(repo, "commit", "-q", "-am", version)


@pytest.fixture
def projects():
    folder = tempfile.mkdtemp(prefix="bsd", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_flask_factory_apps_instance_database_survives_deploy_and_rollback(venue, projects):
    repo = os.path.join(projects, "flaskr")
    os.makedirs(repo)
    write_files(repo, FLASKR)
    git(repo, "init", "-q", "-b", "main", ".")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    act = venue.add_act("Flaskr", f"file://{repo}", wsgi="wsgi:app")
    for body in ("first", "second"):
        assert http_get(act.port, f"/add?body={body}") == (200, "added")
    assert http_get(act.port) == (200, "one:first,second")
    with RequestLoop(act.port) as loop:
        commit_version(repo, "two")
        act.deploy()  # its clone served until now: its data moves to shared/
        loop.serves("two:first,second")
        assert act.spec.shared == ("instance",)  # found: Flask's instance folder
        assert http_get(act.port, "/add?body=third") == (200, "added")
        commit_version(repo, "three")
        act.deploy()
        loop.serves("three:first,second,third")
        time.sleep(2)  # uWSGI's fork-bomb guard: no two chain reloads within a second
        act.rollback()
        loop.serves("two:first,second,third")
    assert loop.failed == []
    kept = os.path.join(act.path, "shared", "instance", "flaskr.sqlite")
    for release in act.releases:
        assert os.path.realpath(os.path.join(release.path, "instance", "flaskr.sqlite")) == kept
    listed = cli("releases", "TestVenue/Flaskr", home=venue.production.home).stdout
    assert f"shared data in {os.path.join(act.path, 'shared')}: instance (" in listed


DJANGO_DATA = """
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent.parent
DATABASES["default"]["NAME"] = BASE / "db.sqlite3"  # noqa: F405
MEDIA_ROOT = BASE / "media"
MEDIA_URL = "/media/"
"""

DJANGO_VIEWS = """
import os

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpResponse

from .models import Greeting


def index(request):
    rows = ",".join(g.text for g in Greeting.objects.order_by("id"))
    files = ",".join(sorted(os.listdir(settings.MEDIA_ROOT)))
    return HttpResponse(f"{settings.VERSION}:{rows}:{files}")


def add(request):
    Greeting.objects.create(text=request.GET["text"])
    default_storage.save(request.GET["text"] + ".txt", ContentFile(b"uploaded"))
    return HttpResponse("added")
"""

DJANGO_URLS = """
from django.urls import path

from greetings import views

urlpatterns = [path("", views.index), path("add", views.add)]
"""


@pytest.mark.slow
def test_a_django_projects_media_and_sqlite_database_survive_deploy_and_rollback(venue, projects):
    project = make_django_project(projects)
    prod = os.path.join(project.path, "mysite", "settings", "prod.py")
    with open(prod, "a") as out:
        out.write(DJANGO_DATA + 'VERSION = "one"\n')
    write_files(project.path, {"greetings/views.py": DJANGO_VIEWS, "mysite/urls.py": DJANGO_URLS})
    # DATABASE_PATH is read, then replaced by the database in the project
    act = venue.add_act("Media", project.path, env={"DATABASE_PATH": "unused"})
    assert set(act.spec.shared) == {"media", "db.sqlite3"}
    hello = "hello from the database"
    assert http_get(act.port, "/add?text=kept") == (200, "added")
    assert http_get(act.port) == (200, f"one:{hello},kept:kept.txt")
    with RequestLoop(act.port) as loop:
        with open(prod, "a") as out:
            out.write('VERSION = "two"\n')
        act.deploy()
        loop.serves(f"two:{hello},kept:kept.txt")
        time.sleep(2)
        act.rollback()
        loop.serves(f"one:{hello},kept:kept.txt")
    assert loop.failed == []
    assert not os.path.exists(os.path.join(project.path, "db.sqlite3"))  # never written
    shared = os.path.join(act.path, "shared")
    assert os.listdir(os.path.join(shared, "media")) == ["kept.txt"]
    done = cli("act", "rm", "--keep-data", "TestVenue/Media", home=venue.production.home)
    kept = done.stdout.strip().rsplit(" ", 1)[-1]
    assert done.stdout.startswith("TestVenue/Media: removed; its data is kept in ") and kept
    assert sorted(os.listdir(os.path.join(kept, "shared"))) == ["db.sqlite3", "media"]
    assert os.path.isfile(os.path.join(kept, "act.toml")) and not os.path.exists(act.path)


def rows(database: str) -> list[str]:
    with sqlite3.connect(database) as db:
        return [r[0] for r in db.execute("SELECT body FROM post ORDER BY rowid")]


def test_backup_then_restore_under_a_request_loop(venue, projects, tmp_path, caplog):
    folder = os.path.join(projects, "flaskr")
    write_files(folder, FLASKR)
    act = venue.add_act("Saved", folder, wsgi="wsgi:app")
    home = venue.production.home
    for body in ("a", "b"):
        http_get(act.port, f"/add?body={body}")
    archive = str(tmp_path / "saved.tar.gz")
    with RequestLoop(act.port) as loop:
        loop.serves("one:a,b")
        done = cli("backup", "TestVenue/Saved", "-o", archive, home=home)
        assert done.stdout.strip() == f"TestVenue/Saved: act.toml and instance in {archive}"
        assert http_get(act.port, "/add?body=after") == (200, "added")
        loop.serves("one:a,b,after")
        done = cli("restore", archive, home=home)
        assert done.stdout.strip() == "TestVenue/Saved: restored instance"
        loop.serves("one:a,b")
    assert loop.failed == [] and set(loop.bodies) <= {"one:a,b", "one:a,b,after"}
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"  # act.toml may hold secrets
    with tarfile.open(archive) as tar:
        assert {"backup.json", "act.toml", "shared/instance/flaskr.sqlite"} <= set(tar.getnames())
        tar.extract("shared/instance/flaskr.sqlite", tmp_path, filter="data")
    assert rows(str(tmp_path / "shared" / "instance" / "flaskr.sqlite")) == ["a", "b"]
    # what is not a backup: one line, nothing changed
    done = cli_quiet(caplog, "restore", act.spec_path, home=home)
    assert done.returncode == 1 and "is not a backup of an Act" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = cli("act", "rm", "TestVenue/Saved", home=home)
    assert done.stdout.startswith("TestVenue/Saved: removed, with its data: instance (")
    # gone, and made again from the backup: its data and its settings
    done = cli("restore", archive, home=home)
    assert done.stdout.startswith("TestVenue/Saved: made again with instance; start it")
    venue.act("Saved").start()
    assert http_get(act.port) == (200, "one:a,b")


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="a Venue's user needs Backstage to run as root, and useradd to create one",
)
@pytest.mark.xdist_group("venue_user")  # see test_venue_user's pytestmark
def test_the_acts_of_a_venues_user_write_their_shared_data_as_that_user(  # noqa: F811
    production,
    user_venue,  # noqa: F811
    system_user,  # noqa: F811
    projects,
):
    folder = os.path.join(projects, "flaskr")
    write_files(folder, FLASKR)
    os.chmod(projects, 0o755)
    subprocess.run(["chown", "-R", f"{system_user.pw_uid}", folder], check=True)  # theirs
    with passable(folder):
        act = user_venue.add_act("Owned", folder, wsgi="wsgi:app")
        assert http_get(act.port, "/add?body=mine") == (200, "added")
        database = os.path.join(act.path, "shared", "instance", "flaskr.sqlite")
        assert os.stat(database).st_uid == system_user.pw_uid
        act.reload()
        assert http_get(act.port) == (200, "one:mine")
