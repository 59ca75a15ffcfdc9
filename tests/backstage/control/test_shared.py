"""Versions and shared data on plain folders: a copy of a project hard-links what did not
change since the live release and leaves out its data; data is linked into a release,
seeded once from the source; SQLite files are copied through SQLite's backup API."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing

import pytest

from backstage.control.host import shared
from backstage.control.managers.releases import copy_folder
from backstage.errors import InvalidSetting
from backstage.files import swap
from backstage.model.checks import check_shared
from backstage.model.layout import ActRef


def tree(root: str, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(text)


def test_a_copy_links_what_did_not_change_and_leaves_out_data_and_litter(tmp_path):
    source, first, second = (str(tmp_path / n) for n in ("src", "r1", "r2"))
    tree(source, {"app.py": "one", "pkg/views.py": "v", ".git/HEAD": "x", "db.sqlite3": "d",
                  "media/a.png": "m", "pkg/__pycache__/views.pyc": "c"})  # fmt: skip
    digest = copy_folder(source, first, None, ("db.sqlite3",))
    assert sorted(os.listdir(first)) == ["app.py", "pkg"]
    assert os.listdir(os.path.join(first, "pkg")) == ["views.py"]
    assert copy_folder(source, str(tmp_path / "again"), None, ("db.sqlite3",)) == digest
    tree(source, {"app.py": "two"})
    assert copy_folder(source, second, first, ("db.sqlite3",)) != digest
    same = (
        os.stat(os.path.join(first, "pkg", "views.py")),
        os.stat(os.path.join(second, "pkg", "views.py")),
    )
    assert same[0].st_ino == same[1].st_ino  # unchanged: one file for both releases
    changed = os.path.join(first, "app.py"), os.path.join(second, "app.py")
    assert os.stat(changed[0]).st_ino != os.stat(changed[1]).st_ino
    assert open(changed[0]).read() == "one" and open(changed[1]).read() == "two"


def test_data_is_linked_into_a_release_and_seeded_once_from_the_source(tmp_path):
    venue = str(tmp_path / "venue")
    ref = ActRef("V", venue, "A")
    source, release = str(tmp_path / "src"), str(tmp_path / "release")
    tree(source, {"media/up.txt": "uploaded"})
    os.makedirs(release)
    database = os.path.join(source, "db.sqlite3")
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    shared.link(ref, release, ("media", "db.sqlite3", "uploads"), source)
    kept = ref.shared_dir
    assert os.readlink(os.path.join(release, "media")) == os.path.join(kept, "media")
    assert open(os.path.join(release, "media", "up.txt")).read() == "uploaded"
    with sqlite3.connect(os.path.join(release, "db.sqlite3")) as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert os.path.isdir(os.path.join(kept, "uploads"))  # a folder made for the app
    tree(source, {"media/up.txt": "changed in the source"})
    shared.link(ref, str(tmp_path / "release2"), ("media",), source)  # seeded once only
    assert open(os.path.join(kept, "media", "up.txt")).read() == "uploaded"
    assert shared.present(ref, ("media", "gone")) == [("media", 8)]
    assert shared.inside(release, [os.path.join(release, "media"), "/elsewhere/db"]) == ("media",)


def test_flasks_instance_folder_in_the_venues_var_becomes_the_acts(tmp_path):
    venue = str(tmp_path / "venue")
    ref = ActRef("V", venue, "A")
    instance = os.path.join(venue, "var", "flaskr-instance")
    tree(instance, {"flaskr.sqlite": "rows"})
    assert shared.venue_instance(ref, instance)
    assert os.readlink(instance) == os.path.join(ref.shared_dir, "instance")
    assert open(os.path.join(instance, "flaskr.sqlite")).read() == "rows"
    other = ActRef("V", venue, "B")
    os.makedirs(other.shared_dir)
    assert not shared.venue_instance(other, instance)  # A's, while A is there
    assert not shared.venue_instance(ref, os.path.join(venue, "elsewhere", "x-instance"))


def test_a_served_instance_folder_is_whole_at_every_step_of_becoming_the_acts(
    tmp_path, monkeypatch
):
    """A git Act is served from its clone until its first release, and Flask keeps the
    instance folder of a package inside the Venue in the Venue's var/: the folder a
    deploy turns into a link is the one the app reads. After each step that changes a
    path, the app's database opens there with its rows (a removal of the folder before
    its link took its place failed requests with "unable to open database file")."""
    ref = ActRef("V", str(tmp_path / "venue"), "A")
    instance = os.path.join(ref.venue_path, "var", "flaskr-instance")
    os.makedirs(os.path.join(instance, "uploads"))
    database = os.path.join(instance, "flaskr.sqlite")
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("CREATE TABLE post (body TEXT)")
        db.execute("INSERT INTO post VALUES ('kept')")
    seen = []

    def the_app_reads() -> None:
        try:  # never made anew: a database that is not there is not its data
            with closing(sqlite3.connect(f"file:{database}?mode=rw", uri=True)) as db:
                seen.append(db.execute("SELECT body FROM post").fetchall())
        except sqlite3.Error as exc:
            seen.append(str(exc))

    def then_read(step):
        def run(*args, **kwargs):
            done = step(*args, **kwargs)
            the_app_reads()
            return done

        return run

    for module, name in [(os, n) for n in ("unlink", "rmdir", "rename", "replace", "symlink")]:
        monkeypatch.setattr(module, name, then_read(getattr(module, name)))
    monkeypatch.setattr(shutil, "rmtree", then_read(shutil.rmtree))
    monkeypatch.setattr(swap, "exchange", then_read(swap.exchange))
    assert shared.venue_instance(ref, instance)
    monkeypatch.undo()
    assert len(seen) >= 3 and all(rows == [("kept",)] for rows in seen), seen
    assert os.readlink(instance) == os.path.join(ref.shared_dir, "instance")
    assert sorted(os.listdir(os.path.dirname(instance))) == ["flaskr-instance"]


def test_sqlite_is_copied_whole_through_its_backup_api(tmp_path):
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with sqlite3.connect(source) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    assert shared.is_sqlite(source) and not shared.is_sqlite(str(tmp_path))
    shared.copy_data(source, target)
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT count(*) FROM t").fetchone() == (100,)


@pytest.mark.parametrize("path", ["", "/abs", "../up", "a/../../b", ".", "a\0b"])
def test_a_shared_path_outside_the_project_is_refused(path):
    with pytest.raises(InvalidSetting, match="is not a path inside the project"):
        check_shared(path)


def test_the_venues_var_links_go_with_their_act_or_when_they_dangle(tmp_path):
    venue = str(tmp_path / "V")
    ref, other = ActRef("V", venue, "One"), ActRef("V", venue, "Two")
    for act in (ref, other):
        os.makedirs(os.path.join(act.shared_dir, "instance"))
    var = os.path.join(venue, "var")
    os.makedirs(var)
    links = {
        "one-instance": os.path.join(ref.shared_dir, "instance"),
        "two-instance": os.path.join(other.shared_dir, "instance"),
        "gone-instance": os.path.join(venue, "acts", "Gone", "shared", "instance"),
    }
    for name, target in links.items():
        os.symlink(target, os.path.join(var, name))
    os.makedirs(os.path.join(var, "a-folder"))  # not a link: never touched
    shared.drop_dangling(venue)
    assert sorted(os.listdir(var)) == ["a-folder", "one-instance", "two-instance"]
    shared.drop_links_to(ref)
    assert sorted(os.listdir(var)) == ["a-folder", "two-instance"]
