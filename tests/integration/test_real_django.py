"""A Django project adopted in place, served by a real uWSGI through the Act's
generated settings module: booked hosts answer although the project's ALLOWED_HOSTS
does not name them, static files come from STATIC_ROOT through offload threads,
and the page reads the database once migrated. The project's files are never
written."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from backstage.render.shim import (
    HOSTS_VARIABLE,
    SHIM_MODULE,
    config_value,
    default_static_root,
    hosts_value,
    render_settings_shim,
    shim_path,
    static_map,
)
from tests.helpers import http_get, poll
from tests.projects import (
    GREETING,
    STATIC_CSS,
    free_port,
    make_django_project,
    real_venv,  # noqa: F401
    running_uwsgi,
    write_ini,
)

BOOKED = "kittens.example.com"


def snapshot(folder: str) -> dict[str, float]:
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime
        for d, _, files in os.walk(folder)
        for f in files
    }


@pytest.fixture
def act(real_venv):  # noqa: F811
    root = tempfile.mkdtemp(prefix="bra", dir="/tmp")
    project = make_django_project(root)
    act_dir = os.path.join(root, "acts", "MyAct")
    os.makedirs(act_dir)
    with open(shim_path(act_dir), "w") as out:
        out.write(
            render_settings_shim("MyAct", project.settings_module, default_static_root(act_dir))
        )
    env = {
        "DJANGO_SETTINGS_MODULE": SHIM_MODULE,
        HOSTS_VARIABLE: hosts_value([BOOKED, "dogs.example.com"]),
        "DATABASE_PATH": os.path.join(act_dir, "db.sqlite3"),
        "PYTHONPYCACHEPREFIX": os.path.join(act_dir, "pycache"),
    }
    yield project, act_dir, env, os.path.dirname(os.path.dirname(real_venv))
    if not os.environ.get("KEEP"):
        shutil.rmtree(root, ignore_errors=True)


def manage(venv: str, project, act_dir: str, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [os.path.join(venv, "bin", "python"), "manage.py", *args],
        cwd=project.path,
        env={**os.environ, **env, "PYTHONPATH": act_dir},
        check=True,
        capture_output=True,
    )


def test_booked_hosts_static_files_and_database(act):
    project, act_dir, env, venv = act
    before = snapshot(project.path)
    port = free_port()
    options = [
        ("master", "true"),
        ("http-socket", f"127.0.0.1:{port}"),
        ("chdir", config_value(project.path, "path")),
        ("virtualenv", config_value(venv, "path")),
        ("pythonpath", config_value(act_dir, "path")),
        ("module", str(project.wsgi)),
        *[("env", config_value(f"{k}={v}", "env")) for k, v in env.items()],
        *static_map("/static/", default_static_root(act_dir)),
        ("processes", "2"),
        ("need-app", "true"),
        ("die-on-term", "true"),
        ("logto", config_value(os.path.join(act_dir, "act.log"), "path")),
    ]
    ini = write_ini(os.path.join(act_dir, "vassal.ini"), options)
    # uWSGI resolves a static-map folder when it starts and drops the mapping, without
    # a word, when the folder is not there: it must exist before the vassal starts
    os.makedirs(default_static_root(act_dir))
    with running_uwsgi(ini):
        # not migrated yet: the view fails on the missing table
        assert poll(lambda: http_get(port, host=BOOKED)[0], timeout=30) == 500
        manage(venv, project, act_dir, env, "migrate", "--noinput")
        assert http_get(port, host=BOOKED) == (200, GREETING)
        assert http_get(port, host="dogs.example.com") == (200, GREETING)
        assert http_get(port, host=project.own_host) == (200, GREETING)
        assert http_get(port, host="localhost")[0] == 200
        assert http_get(port, host="intruder.example.org")[0] == 400

        static = "/static/" + project.static_path
        assert http_get(port, static, host=BOOKED)[0] == 404
        manage(venv, project, act_dir, env, "collectstatic", "--noinput")
        assert http_get(port, static, host=BOOKED) == (200, STATIC_CSS)
        # served by uWSGI itself, off the worker (Django serves no static files with
        # DEBUG off): its request log says so
        log = os.path.join(act_dir, "act.log")
        poll(lambda: f"GET {static} => generated {len(STATIC_CSS)} bytes" in open(log).read())
        line = [x for x in open(log) if f"GET {static} => generated {len(STATIC_CSS)}" in x][0]
        assert "via offload()" in line and "(HTTP/1.1 200)" in line
    assert snapshot(project.path) == before, "the project's files were written"


def test_a_project_with_its_own_static_root_keeps_it(act):
    project, act_dir, env, venv = act
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write('STATIC_ROOT = "/srv/mysite/static"\nSTATIC_URL = "assets/"\n')
    done = subprocess.run(
        [
            os.path.join(venv, "bin", "python"),
            "-c",
            "from django.conf import settings as s;"
            "print(s.STATIC_URL, s.STATIC_ROOT, s.ALLOWED_HOSTS)",
        ],
        cwd=project.path,
        env={**os.environ, **env, "PYTHONPATH": f"{act_dir}:{project.path}"},
        capture_output=True,
        text=True,
        check=True,
    )
    hosts = ["www.mysite.example", BOOKED, "dogs.example.com", "localhost", "127.0.0.1"]
    assert done.stdout.strip().split(None, 2) == ["/assets/", "/srv/mysite/static", repr(hosts)]
