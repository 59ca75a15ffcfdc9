"""A new Act's Django project is the one `django-admin startproject` makes with its
Venue's Django, byte for byte but for its SECRET_KEY, on the suite's Django, on 4.2
and on the newest Django of another Python; made without running any process once the
Venue's first Act was made by startproject and found the same; and left to startproject
where that cannot be promised."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from backstage.control.build import scaffold, virtualenv
from backstage.errors import VenueBuildError
from backstage.model.layout import ActRef, acts_dir, venue_bin, venue_startproject_check
from backstage.render.djangoproject import secret_key_pattern
from tests.conftest import ROOT
from tests.helpers import http_get, started_processes
from tests.integration.test_any_python import OTHER, other_python

SECRET = re.compile(rb"SECRET_KEY = '([^'\n]*)'")


def _built(name: str, python: str, requirement: str) -> str:
    path = os.path.join(ROOT, name)
    if not os.path.isdir(path):
        try:
            virtualenv.build(path, python, (requirement,))
        except VenueBuildError as exc:
            shutil.rmtree(path, ignore_errors=True)
            pytest.skip(f"no virtualenv with {requirement} on {python}: {exc}")
    return path


@pytest.fixture(scope="session")
def django42_path() -> str:
    """A virtualenv of the Stage's Python with Django 4.2 (the oldest with support)."""
    return _built("dj42", sys.executable, "django>=4.2,<4.3")


@pytest.fixture(params=["suite", "4.2", "other python"])
def django_venue(request, shared_venue_path) -> str:
    if request.param == "suite":
        return shared_venue_path
    if request.param == "4.2":
        return request.getfixturevalue("django42_path")
    reason = other_python()
    if reason:
        pytest.skip(reason)
    return _built("djother", virtualenv.find_python(OTHER, embedded=False), "django")


def tree(top: str) -> dict[str, tuple[int, bytes | None]]:
    """Each folder and file under `top`: its mode, and its bytes for a file."""
    found: dict[str, tuple[int, bytes | None]] = {}
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            data = None
            if stat.S_ISREG(mode):
                with open(path, "rb") as made:
                    data = made.read()
            found[os.path.relpath(path, top)] = (mode, data)
    return found


def secret_of(project: dict[str, tuple[int, bytes | None]], name: str) -> bytes:
    settings = project[f"{name}/settings.py"][1]
    assert settings is not None
    keys = SECRET.findall(settings)
    assert len(keys) == 1, settings
    return keys[0]


def without_secret(project: dict[str, tuple[int, bytes | None]]):
    return {
        path: (mode, data if data is None else SECRET.sub(b"SECRET_KEY = '-'", data))
        for path, (mode, data) in project.items()
    }


def test_a_rendered_project_is_the_one_startproject_makes(django_venue, tmp_path):
    name = "Rendered"
    ref = ActRef("V", django_venue, name)
    os.makedirs(acts_dir(django_venue), exist_ok=True)
    if os.path.exists(venue_startproject_check(django_venue)):
        os.unlink(venue_startproject_check(django_venue))
    umask = os.umask(0o027)  # not the usual one: modes are compared too
    try:
        subprocess.run(
            [venue_bin(django_venue, "django-admin"), "startproject", name],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        reference = tree(os.path.join(tmp_path, name))
        assert not scaffold.django_project(ref), "the Venue's first is startproject's"
        with open(venue_startproject_check(django_venue)) as verdict:
            assert json.load(verdict)["rendered"] is True
        shutil.rmtree(ref.path)
        assert scaffold.django_project(ref), "the next is rendered"
        rendered = tree(ref.path)
    finally:
        os.umask(umask)
        shutil.rmtree(ref.path, ignore_errors=True)
    assert sorted(rendered) == sorted(reference) and len(reference) >= 7
    assert without_secret(rendered) == without_secret(reference)
    ours, theirs = secret_of(rendered, name), secret_of(reference, name)
    assert re.fullmatch(secret_key_pattern().encode(), ours) and ours != theirs
    assert stat.S_IMODE(rendered["manage.py"][0]) == 0o750


def test_the_second_new_act_in_a_venue_runs_no_process(venue, monkeypatch):
    if os.path.exists(venue_startproject_check(venue.path)):
        os.unlink(venue_startproject_check(venue.path))
    ran = started_processes(monkeypatch)
    venue.new_act("First", start=False)
    admin = venue_bin(venue.path, "django-admin")
    assert [args for args in ran if args[0].startswith(venue.path)] == [
        [admin, "startproject", "First"]
    ]
    ran.clear()
    second = venue.new_act("Second", start=False)
    assert ran == []
    monkeypatch.undo()

    keys = []
    for name in ("First", "Second"):
        settings = os.path.join(venue.acts_dir, name, name, "settings.py")
        assert stat.S_IMODE(os.stat(settings).st_mode) == 0o600
        with open(settings, "rb") as made:
            text = made.read()
        assert b"Added by Backstage" in text and f"ROOT_URLCONF = '{name}.urls'".encode() in text
        keys += SECRET.findall(text)
    assert len(set(keys)) == 2
    second.start()
    status, body = http_get(second.port)
    assert status == 200 and "django" in body.lower()


def test_black_on_path_leaves_the_project_to_startproject(shared_venue_path, tmp_path, monkeypatch):
    """startproject runs black over what it made when black is on PATH."""
    black = tmp_path / "black"
    black.write_text('#!/bin/sh\nfor last; do :; done\necho "# formatted" >> "$last/manage.py"\n')
    black.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    template = scaffold.read_template(shared_venue_path)
    assert template is not None
    scaffold._keep_verdict(shared_venue_path, template.key, True)
    ref = ActRef("V", shared_venue_path, "Blacked")
    try:
        assert not scaffold.django_project(ref)
        with open(os.path.join(ref.path, "manage.py")) as manage:
            assert manage.read().endswith("# formatted\n")
    finally:
        shutil.rmtree(ref.path, ignore_errors=True)


def test_a_template_it_does_not_understand_is_left_to_startproject(django42_path):
    django = scaffold.django_dir(django42_path)
    assert django is not None
    settings = os.path.join(django, "conf", "project_template", "project_name", "settings.py-tpl")
    with open(settings) as original:
        kept = original.read()
    ref = ActRef("V", django42_path, "Tagged")
    os.makedirs(acts_dir(django42_path), exist_ok=True)
    try:
        _replace(settings, kept + "{% if True %}# tagged{% endif %}\n")
        template = scaffold.read_template(django42_path)
        assert template is not None
        assert not scaffold.django_project(ref)  # a template not judged yet: startproject's
        with open(os.path.join(ref.path, "Tagged", "settings.py")) as made:
            assert made.read().endswith("# tagged\n")
        with open(venue_startproject_check(django42_path)) as verdict:
            assert json.load(verdict) == {"key": template.key, "rendered": False}
        shutil.rmtree(ref.path)
        assert not scaffold.django_project(ref)  # and it stays startproject's
    finally:
        _replace(settings, kept)
        shutil.rmtree(ref.path, ignore_errors=True)


def _replace(path: str, text: str) -> None:
    """Write a new file in `path`'s place: the virtualenv's files are hard links into
    uv's cache, which a write in place would change for every virtualenv made from it."""
    with open(path + ".new", "w") as new:
        new.write(text)
    os.replace(path + ".new", path)
