from __future__ import annotations

import os
import sqlite3

from backstage.control.build.commands import install_command, installer_env
from backstage.control.managers.releases import (
    Release,
    _checkout,
    release_spec,
    releases,
    unchanged,
)
from backstage.model.layout import ActRef
from backstage.model.project import Requirements
from backstage.model.spec import ActSpec
from backstage.render.stageset import project_view


def test_releases_are_read_from_their_folders_and_current(tmp_path):
    ref = ActRef("V", str(tmp_path), "A")
    for name in ("1-abcdef012345", "2-0123456789ab", ".3-building", "notes"):
        os.makedirs(os.path.join(ref.releases_dir, name))
    os.symlink("releases/1-abcdef012345", ref.current)
    found = releases(ref)
    assert [(r.number, r.sha, r.live) for r in found] == [
        (1, "abcdef012345", True),
        (2, "0123456789ab", False),
    ]
    assert releases(ActRef("V", str(tmp_path), "Other")) == []


def test_an_act_served_through_current_imports_from_it_first():
    ref = ActRef("V", "/v", "A")
    source = "/v/acts/A/src"
    spec = ActSpec(
        name="A", port=8100, source=source, wsgi="app:application", current=True,
        pythonpath=(source + "/lib", "/elsewhere"),
    )  # fmt: skip
    view = project_view(ref, spec)
    assert view.chdir == "/v/acts/A/current"
    assert view.pythonpath == ("/v/acts/A/current/lib", "/elsewhere", "/v/acts/A/current")
    plain = project_view(ref, ActSpec(name="A", port=8100, source=source, wsgi="app:application"))
    assert plain.chdir == source


def scaffold(ref: ActRef) -> None:
    files = {
        "manage.py": "m", "A/__init__.py": "", "A/urls.py": "u", "act.toml": "t",
        "db.sqlite3": "d", "static/a.css": "s", "bin/worker-x": "w", "pycache/a.pyc": "c",
        "releases/1-abcdef012345/A/urls.py": "old", "shared/f": "f",
    }  # fmt: skip
    for relative, text in files.items():
        path = os.path.join(ref.path, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(text)
    os.symlink("releases/1-abcdef012345", ref.current)
    # a database where the scaffold's settings were changed to put it
    os.makedirs(os.path.join(ref.path, "data"))
    write_sqlite(os.path.join(ref.path, "data", "app.db"), "create table t (x)")


def write_sqlite(path: str, statement: str) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def test_a_scaffolds_version_is_its_code_with_links_to_its_data_in_the_acts_folder(tmp_path):
    ref = ActRef("V", str(tmp_path), "A")
    scaffold(ref)
    spec = ActSpec(name="A", port=8100, current=True)
    into = os.path.join(ref.releases_dir, ".next")
    sha = _checkout(spec, ref, None, into)
    assert sorted(os.listdir(into)) == ["A", "data", "db.sqlite3", "manage.py", "static"]
    for name in ("db.sqlite3", "static", "data/app.db"):
        assert os.readlink(os.path.join(into, name)) == os.path.join(ref.path, name)
    # read without a copy: the same code is the same digest, until a file changes
    version = Release(2, sha[:12], into, 0.0, False)
    assert unchanged(ref, spec, version)
    with open(os.path.join(ref.path, "db.sqlite3"), "a") as data:
        data.write("written by the app")
    write_sqlite(os.path.join(ref.path, "data", "app.db"), "insert into t values (1)")
    assert unchanged(ref, spec, version)
    with open(os.path.join(ref.path, "A", "urls.py"), "a") as code:
        code.write("# saved")
    assert not unchanged(ref, spec, version)


def test_a_scaffolds_version_is_checked_as_the_scaffold_with_its_own_settings():
    ref = ActRef("V", "/v", "A")
    spec = ActSpec(name="A", port=8100, current=True, pythonpath=("/v/acts/A/lib", "/else"))
    view = project_view(ref, release_spec(spec, ref, "/v/acts/A/releases/.next"))
    assert view.chdir == "/v/acts/A/releases/.next"
    assert (view.wsgi, view.settings) == ("A.wsgi:application", "A.settings")
    assert view.pythonpath == ("/v/acts/A/releases/.next/lib", "/else")
    served = project_view(ref, spec)
    assert served.chdir == "/v/acts/A/current" and served.settings == "A.settings"


def test_a_user_venues_installer_has_a_home_and_caches_of_its_own(monkeypatch):
    """The install runs as the Venue's user (building a package runs its code): with its
    home and caches in the Venue's run/user/, never root's, which other Venues share."""
    monkeypatch.setenv("XDG_CACHE_HOME", "/root/.cache")
    env = installer_env("/v", "www-shop")
    assert env["HOME"] == "/v/run/user"
    assert env["UV_CACHE_DIR"] == "/v/run/user/.cache/uv"
    assert env["PIP_CACHE_DIR"] == "/v/run/user/.cache/pip"
    assert "XDG_CACHE_HOME" not in env
    assert env["PATH"].startswith("/v/bin:")
    assert installer_env("/v", "")["XDG_CACHE_HOME"] == "/root/.cache"  # as Backstage
    needs = Requirements("/p/requirements.txt", "requirements")
    argv = install_command(needs, "/v/bin/python", "/bin/uv")
    assert argv is not None and "--only-binary" not in argv  # the user's to build
    assert "--compile-bytecode" in argv  # an Act's processes may not write the Venue
