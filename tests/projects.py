"""Real projects as people write them, made in a folder of the test's choosing.

`make_django_project` writes a Django project with a settings package
(`mysite/settings/{__init__,base,prod}.py`), manage.py defaulting to
`mysite.settings.prod`, DEBUG off, ALLOWED_HOSTS naming only its own host, a
requirement its settings import (python-decouple), an app with a model, its
migration (which also stores one row) and a view reading it, and an app static
file. The database lives where the environment variable DATABASE_PATH says, so
that serving the project never writes into it.

`make_flask_project` writes a Flask app with its own requirements.txt.

`git_app` makes a git repository of a plain WSGI app that answers its version, and
`commit_app` commits another version of it.

`build_test_venv` makes a virtual environment with Django, python-decouple and
Flask, on the Python the test uwsgi embeds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

DJANGO_REQUIREMENTS = "Django>=4.2\npython-decouple>=3.8\n"
FLASK_REQUIREMENTS = "Flask>=2.3\n"

# What the pages say, so that a test knows it reached the project itself.
GREETING = "hello from the database"
FLASK_GREETING = "hello from flask"
STATIC_CSS = "body { color: rebeccapurple; }\n"


@dataclass(frozen=True)
class DjangoProject:
    path: str
    package: str = "mysite"
    settings_module: str = "mysite.settings.prod"
    wsgi: str = "mysite.wsgi:application"
    own_host: str = "www.mysite.example"
    static_path: str = "greetings/hello.css"  # under STATIC_URL once collected


@dataclass(frozen=True)
class FlaskProject:
    path: str
    wsgi: str = "app:app"


def write_files(root: str, files: dict[str, str]) -> None:
    """Write each `relative path: text` (dedented) under `root`."""
    for relative, text in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(textwrap.dedent(text).lstrip("\n"))


def make_django_project(
    parent: str,
    folder: str = "mysite",
    static_root: bool = False,
    wsgi_application: str | None = '"mysite.wsgi.application"',
) -> DjangoProject:
    """The project in `parent/folder`. `static_root` gives prod.py a STATIC_ROOT (under
    the folder that holds the database); `wsgi_application` is the Python expression
    assigned to WSGI_APPLICATION in base.py (None leaves it out)."""
    root = os.path.join(parent, folder)
    wsgi_line = "" if wsgi_application is None else f"WSGI_APPLICATION = {wsgi_application}"
    static_root_line = (
        'STATIC_ROOT = os.path.join(os.path.dirname(config("DATABASE_PATH")), "collected")'
        if static_root
        else ""
    )
    write_files(
        root,
        {
            "requirements.txt": DJANGO_REQUIREMENTS,
            "manage.py": """
                #!/usr/bin/env python
                import os
                import sys


                def main():
                    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.prod")
                    from django.core.management import execute_from_command_line

                    execute_from_command_line(sys.argv)


                if __name__ == "__main__":
                    main()
            """,
            "mysite/__init__.py": "",
            "mysite/settings/__init__.py": "",
            "mysite/settings/base.py": f"""
                import os

                from decouple import config

                SECRET_KEY = config("SECRET_KEY", default="not-so-secret-for-tests")
                DEBUG = config("DEBUG", default=False, cast=bool)
                ALLOWED_HOSTS = []
                INSTALLED_APPS = [
                    "django.contrib.contenttypes",
                    "django.contrib.staticfiles",
                    "greetings",
                ]
                MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
                ROOT_URLCONF = "mysite.urls"
                TEMPLATES = []
                {wsgi_line}
                DATABASES = {{
                    "default": {{
                        "ENGINE": "django.db.backends.sqlite3",
                        "NAME": config("DATABASE_PATH"),
                    }}
                }}
                DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
                USE_TZ = True
                STATIC_URL = "/static/"
            """,
            "mysite/settings/prod.py": f"""
                import os

                from decouple import config

                from .base import *  # noqa: F403

                DEBUG = False
                ALLOWED_HOSTS = ["www.mysite.example"]
                {static_root_line}
            """,
            "mysite/urls.py": """
                from django.urls import path

                from greetings import views

                urlpatterns = [path("", views.index)]
            """,
            "mysite/wsgi.py": """
                import os

                from django.core.wsgi import get_wsgi_application

                os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.prod")
                application = get_wsgi_application()
            """,
            "greetings/__init__.py": "",
            "greetings/apps.py": """
                from django.apps import AppConfig


                class GreetingsConfig(AppConfig):
                    name = "greetings"
            """,
            "greetings/models.py": """
                from django.db import models


                class Greeting(models.Model):
                    text = models.CharField(max_length=100)
            """,
            "greetings/migrations/__init__.py": "",
            "greetings/migrations/0001_initial.py": f"""
                from django.db import migrations, models


                def greet(apps, schema_editor):
                    apps.get_model("greetings", "Greeting").objects.create(text="{GREETING}")


                class Migration(migrations.Migration):
                    initial = True
                    dependencies = []
                    operations = [
                        migrations.CreateModel(
                            name="Greeting",
                            fields=[
                                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                                ("text", models.CharField(max_length=100)),
                            ],
                        ),
                        migrations.RunPython(greet),
                    ]
            """,
            "greetings/views.py": """
                from django.http import HttpResponse

                from .models import Greeting


                def index(request):
                    return HttpResponse(" ".join(g.text for g in Greeting.objects.all()))
            """,
            "greetings/static/greetings/hello.css": STATIC_CSS,
        },
    )
    return DjangoProject(root)


def make_flask_project(parent: str, folder: str = "flaskapp") -> FlaskProject:
    root = os.path.join(parent, folder)
    write_files(
        root,
        {
            "requirements.txt": FLASK_REQUIREMENTS,
            "app.py": f"""
                from flask import Flask

                app = Flask(__name__)


                @app.route("/")
                def index():
                    return "{FLASK_GREETING}"
            """,
        },
    )
    return FlaskProject(root)


VERSIONED_APP = """
import time

VERSION = {version!r}


def application(environ, start_response):
    if VERSION == "hangs":
        time.sleep(30)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [VERSION.encode()]
"""


def git(repo: str, *args: str) -> None:
    """`git ARGS` in `repo`, as a committer of its own, quietly."""
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def commit_app(repo: str, version: str) -> None:
    """Commit the app of `version` (it answers that text; "hangs" sleeps 30 s first)."""
    with open(os.path.join(repo, "app.py"), "w") as out:
        out.write(VERSIONED_APP.format(version=version))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", version)


def git_app(path: str, version: str) -> str:
    """A new git repository at `path` (branch main) holding the app of `version`."""
    os.makedirs(path, exist_ok=True)
    git(path, "init", "-q", "-b", "main", ".")
    commit_app(path, version)
    return path


def uv() -> str:
    """The uv installed beside the test's Python, else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    found = beside if os.path.exists(beside) else shutil.which("uv")
    assert found, "uv is needed to build the test virtual environment"
    return found


def build_test_venv(path: str, python: str | None = None) -> str:
    """A virtual environment at `path` with pip, Django, python-decouple and Flask;
    returns its python. `python` defaults to the one running the tests (the one the
    test uwsgi embeds)."""
    python = python or sys.executable
    subprocess.run([uv(), "venv", "--quiet", "--seed", "--python", python, path], check=True)
    venv_python = os.path.join(path, "bin", "python")
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", venv_python]
        + DJANGO_REQUIREMENTS.split()
        + FLASK_REQUIREMENTS.split(),
        check=True,
    )
    return venv_python


@pytest.fixture(scope="session")
def real_venv(tmp_path_factory) -> str:
    """The python of a virtual environment with the projects' requirements, built once
    per session; import this fixture into the test modules that need it."""
    return build_test_venv(str(tmp_path_factory.mktemp("venv") / "v"))
