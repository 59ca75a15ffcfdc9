"""Release steps, pre-flight and dependency installs, each in a real virtual
environment with real Django."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from backstage.control.build.checkrun import STATIC_FINGERPRINT, run_release
from backstage.control.build.commands import (
    DJANGO_RELEASE,
    HASH_FILE,
    install_failure,
    install_requirements,
    key_line,
)
from backstage.control.build.preflight import Check, Preflight, preflight
from backstage.errors import BackstageError, InstallFailed, PreflightFailed, ReleaseFailed
from backstage.render.shim import (
    SHIM_MODULE,
    default_static_root,
    render_settings_shim,
    shim_path,
)
from tests.projects import (
    GREETING,
    STATIC_CSS,
    make_django_project,
    make_flask_project,
    real_venv,  # noqa: F401
    uv,
)


@pytest.fixture
def venue(real_venv):  # noqa: F811
    return os.path.dirname(os.path.dirname(real_venv))


@pytest.fixture
def django_act(tmp_path):
    project = make_django_project(str(tmp_path))
    act_dir = str(tmp_path / "acts" / "MyAct")
    os.makedirs(act_dir)
    with open(shim_path(act_dir), "w") as out:
        out.write(
            render_settings_shim("MyAct", project.settings_module, default_static_root(act_dir))
        )
    env = {
        "DATABASE_PATH": os.path.join(act_dir, "db.sqlite3"),
        "PYTHONPYCACHEPREFIX": os.path.join(act_dir, "pycache"),
    }
    return project, act_dir, env


def test_django_release_migrates_and_collects(venue, django_act):
    project, act_dir, env = django_act
    run_release(venue, project.path, env, SHIM_MODULE, pythonpath=[act_dir])
    assert os.path.getsize(env["DATABASE_PATH"]) > 0
    assert os.path.isfile(os.path.join(default_static_root(act_dir), project.static_path))
    assert not any("__pycache__" in dirs for _, dirs, _ in os.walk(project.path))


def test_a_failing_step_stops_the_release_with_its_last_lines(venue, django_act):
    project, act_dir, env = django_act
    steps = ["python manage.py nosuchcommand", "python manage.py migrate --noinput"]
    with pytest.raises(ReleaseFailed) as caught:
        run_release(venue, project.path, env, SHIM_MODULE, steps, pythonpath=[act_dir])
    message = str(caught.value)
    assert message.startswith("release step 'python manage.py nosuchcommand' failed (exit 1): ")
    assert "Unknown command: 'nosuchcommand'" in message and "\n" not in message
    assert "nosuchcommand" in caught.value.log_tail
    assert not os.path.exists(env["DATABASE_PATH"]), "the step after the failure ran"


def test_migrate_failing_names_the_error(venue, django_act):
    project, act_dir, env = django_act
    env = {**env, "DATABASE_PATH": "/nonexistent/folder/db.sqlite3"}
    with pytest.raises(ReleaseFailed, match="OperationalError: unable to open database file"):
        run_release(venue, project.path, env, SHIM_MODULE, pythonpath=[act_dir])


def test_unknown_command_and_empty_step(venue, django_act):
    project, act_dir, env = django_act
    with pytest.raises(ReleaseFailed, match="no command 'no-such-tool'"):
        run_release(venue, project.path, env, None, ["no-such-tool --x"])
    with pytest.raises(ReleaseFailed, match="is empty"):
        run_release(venue, project.path, env, None, [" "])
    run_release(venue, project.path, env, None)  # not Django: nothing to run


def test_preflight_of_a_good_django_project(venue, django_act):
    project, act_dir, env = django_act
    found = preflight(Check(venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir]))
    # what it writes: its SQLite file (the test's DATABASE_PATH), found in its settings
    database = os.path.join(act_dir, "db.sqlite3")
    assert found == Preflight("/static/", default_static_root(act_dir), data=(database,))


def test_preflight_import_error_is_one_line(venue, django_act):
    project, act_dir, env = django_act
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write("import not_installed_anywhere\n")
    with pytest.raises(PreflightFailed) as caught:
        preflight(Check(venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir]))
    assert str(caught.value) == (
        "mysite.wsgi:application does not load: "
        "ModuleNotFoundError: No module named 'not_installed_anywhere'"
    )


def test_preflight_runs_djangos_checks(venue, django_act):
    project, act_dir, env = django_act
    with open(os.path.join(project.path, "greetings", "models.py"), "a") as models:
        models.write(
            "\n\nclass Broken(models.Model):\n"
            "    other = models.ForeignKey('nowhere.Model', on_delete=models.CASCADE)\n"
        )
    with pytest.raises(PreflightFailed) as caught:
        preflight(Check(venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir]))
    assert str(caught.value) == (
        "Django's checks fail: greetings.Broken.other: (fields.E300) Field defines a relation "
        "with model 'nowhere.Model', which is either not installed, or is abstract."
    )


def test_preflight_of_a_flask_app(venue, tmp_path):
    project = make_flask_project(str(tmp_path))
    # Flask's instance folder is where it writes
    instance = os.path.join(project.path, "instance")
    assert preflight(Check(venue, project.path, {}, "app:app")) == Preflight(data=(instance,))
    with pytest.raises(
        PreflightFailed, match="app:nothing does not load: AttributeError: .*nothing"
    ):
        preflight(Check(venue, project.path, {}, "app:nothing"))
    with pytest.raises(PreflightFailed, match="app:__name__ does not load: TypeError: .* str, not"):
        preflight(Check(venue, project.path, {}, "app:__name__"))


@pytest.fixture
def bare_venue(tmp_path):
    """A virtual environment of its own, without pip (uv installs into it)."""
    path = str(tmp_path / "venue")
    subprocess.run([uv(), "venv", "--quiet", path], check=True)
    return path


def installed(venue: str, name: str) -> bool:
    check = [os.path.join(venue, "bin", "python"), "-c", f"import {name}"]
    return subprocess.run(check, capture_output=True).returncode == 0


def test_install_once_then_only_when_changed(bare_venue, tmp_path):
    project = make_flask_project(str(tmp_path))
    act_dir = str(tmp_path / "act")
    assert install_requirements(bare_venue, project.path, act_dir) is True
    assert installed(bare_venue, "flask")
    assert install_requirements(bare_venue, project.path, act_dir) is False
    with open(os.path.join(project.path, "requirements.txt"), "a") as out:
        out.write("-r more.txt\n")
    with open(os.path.join(project.path, "more.txt"), "w") as out:
        out.write("python-decouple\n")
    assert install_requirements(bare_venue, project.path, act_dir) is True
    assert installed(bare_venue, "decouple")
    with open(os.path.join(project.path, "more.txt"), "a") as out:  # an included file counts
        out.write("six\n")
    assert install_requirements(bare_venue, project.path, act_dir) is True
    assert installed(bare_venue, "six")


def test_a_failed_install_names_the_package_and_keeps_no_hash(bare_venue, tmp_path):
    project = make_flask_project(str(tmp_path))
    act_dir = str(tmp_path / "act")
    with open(os.path.join(project.path, "requirements.txt"), "a") as out:
        out.write("python-decouple==0.0.1\n")
    with pytest.raises(InstallFailed) as caught:
        install_requirements(bare_venue, project.path, act_dir)
    message = str(caught.value)
    assert message.startswith("installing requirements.txt failed: ")
    assert "python-decouple==0.0.1" in message and "\n" not in message
    assert not os.path.exists(os.path.join(act_dir, HASH_FILE))
    assert not installed(bare_venue, "flask"), "a failed resolution installs nothing"
    assert isinstance(caught.value, BackstageError)


def test_pyproject_dependencies(bare_venue, tmp_path):
    source = tmp_path / "proj"
    source.mkdir()
    (source / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "1"\ndependencies = ["six"]\n'
    )
    assert install_requirements(bare_venue, str(source), str(tmp_path / "act")) is True
    assert installed(bare_venue, "six")
    assert not os.path.exists(source / "build") and not list(source.glob("*.egg-info"))


def test_pip_without_uv(tmp_path):
    venue = str(tmp_path / "venue")
    subprocess.run([uv(), "venv", "--quiet", "--seed", venue], check=True)
    project = make_flask_project(str(tmp_path))
    with open(os.path.join(project.path, "requirements.txt"), "w") as out:
        out.write("six\n")
    assert install_requirements(venue, project.path, str(tmp_path / "act"), uv=None) is True
    assert installed(venue, "six")
    with open(os.path.join(project.path, "requirements.txt"), "w") as out:
        out.write("six==0.0.1\n")
    with pytest.raises(InstallFailed, match=r"^installing requirements.txt failed: .*six==0.0.1"):
        install_requirements(venue, project.path, str(tmp_path / "act"), uv=None)


def test_no_requirements_nothing_to_do(bare_venue, tmp_path):
    assert install_requirements(bare_venue, str(tmp_path), str(tmp_path / "act")) is False


def test_key_lines():
    traceback = "Traceback (most recent call last):\n  File x\nValueError: bad\n"
    assert key_line(traceback) == "ValueError: bad"
    assert key_line("") == "(it printed nothing)"
    uv_output = (
        "Using Python 3.11.7 environment at: v\n"
        "error: No solution found when resolving dependencies\n"
        "  cause: Because there is no version of x==1 and you require x==1, we can conclude"
        " that your requirements are unsatisfiable.\n"
    )
    assert install_failure(uv_output).startswith("Because there is no version of x==1")
    assert install_failure("error: Distribution not found at: file:///p\n") == (
        "Distribution not found at: file:///p"
    )


def _count(path: str) -> int:
    try:
        with open(path) as lines:
            return len(set(lines.read().split()))
    except FileNotFoundError:
        return 0


def _content_types(database: str) -> int:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT COUNT(*) FROM django_content_type").fetchone()[0]


def test_the_check_and_the_steps_start_django_once_and_skip_what_has_nothing_to_do(
    venue, django_act
):
    project, act_dir, env = django_act
    starts, order = os.path.join(act_dir, "starts"), os.path.join(act_dir, "order")
    env = {**env, "STARTS": starts, "ORDER": order}
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write("open(os.environ['STARTS'], 'a').write(str(os.getpid()) + '\\n')\n")
    user_step = "python -c \"import os; open(os.environ['ORDER'], 'a').write('mine\\n')\""
    steps = [DJANGO_RELEASE[0], user_step, DJANGO_RELEASE[1]]
    collected = os.path.join(default_static_root(act_dir), project.static_path)
    source = os.path.join(project.path, "greetings", "static", project.static_path)

    def prepare() -> Preflight:
        return preflight(Check(
            venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir], steps=steps,
            act_dir=act_dir,
        ))  # fmt: skip

    found = prepare()
    assert (found.static_url, found.static_root) == ("/static/", default_static_root(act_dir))
    assert _count(starts) == 1, "the check, migrate and collectstatic started Django apart"
    assert os.path.isfile(collected) and _content_types(env["DATABASE_PATH"]) > 0
    # what only a migrate or a collectstatic that ran would put back
    os.unlink(collected)
    with sqlite3.connect(env["DATABASE_PATH"]) as db:
        db.execute("DELETE FROM django_content_type")

    prepare()  # nothing changed: neither runs, the user's step does
    assert _count(starts) == 2
    assert not os.path.exists(collected) and _content_types(env["DATABASE_PATH"]) == 0
    with open(order) as said:
        assert said.read() == "mine\nmine\n"

    with open(source, "a") as css:  # a static source changed: collected again
        css.write("p { margin: 0; }\n")
    prepare()
    with open(collected) as css:
        assert css.read().endswith("p { margin: 0; }\n")
    assert _content_types(env["DATABASE_PATH"]) == 0

    with open(os.path.join(project.path, "greetings", "migrations", "0002_more.py"), "w") as m:
        m.write(
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n"
            "    dependencies = [('greetings', '0001_initial')]\n"
            "    operations = [migrations.AddField('greeting', 'loud', "
            "models.BooleanField(default=False))]\n"
        )
    prepare()  # a migration to apply: migrate runs
    assert _content_types(env["DATABASE_PATH"]) > 0
    with sqlite3.connect(env["DATABASE_PATH"]) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(greetings_greeting)")]
    assert "loud" in columns
    assert _count(starts) == 4


def test_a_static_file_edited_in_the_second_of_the_last_collect_is_collected_again(
    venue, django_act
):
    project, act_dir, env = django_act
    collected = os.path.join(default_static_root(act_dir), project.static_path)
    source = os.path.join(project.path, "greetings", "static", project.static_path)

    def collect() -> None:
        preflight(Check(
            venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir],
            steps=[DJANGO_RELEASE[1]], act_dir=act_dir,
        ))  # fmt: skip

    collect()
    with open(collected) as css:
        assert css.read() == STATIC_CSS
    # the same size, and the copy's very time: Django's own rule (whole seconds, the copy
    # not older) would keep the old copy
    edited = STATIC_CSS.replace("rebeccapurple", "rebeccaPURPLE")
    assert len(edited) == len(STATIC_CSS) and edited != STATIC_CSS
    with open(source, "w") as css:
        css.write(edited)
    copied = os.stat(collected)
    os.utime(source, ns=(copied.st_atime_ns, copied.st_mtime_ns))
    collect()
    with open(collected) as css:
        assert css.read() == edited
    # a source older than its copy (a git checkout's time) is collected too
    with open(source, "w") as css:
        css.write(STATIC_CSS)
    os.utime(source, (copied.st_mtime - 3600, copied.st_mtime - 3600))
    collect()
    with open(collected) as css:
        assert css.read() == STATIC_CSS


def test_a_refused_check_runs_no_step(venue, django_act):
    project, act_dir, env = django_act
    with open(os.path.join(project.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write("import not_installed_anywhere\n")
    with pytest.raises(PreflightFailed, match="No module named 'not_installed_anywhere'"):
        preflight(Check(
            venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir],
            steps=DJANGO_RELEASE, act_dir=act_dir,
        ))  # fmt: skip
    assert not os.path.exists(env["DATABASE_PATH"])
    assert not os.path.exists(os.path.join(act_dir, STATIC_FINGERPRINT))


def test_a_step_past_its_time_is_stopped_and_named(venue, django_act):
    project, act_dir, env = django_act
    steps = ["python -c \"import time; print('waiting'); time.sleep(60)\""]
    with pytest.raises(ReleaseFailed, match=r"^release step .*took longer than 1 s$") as caught:
        run_release(venue, project.path, env, None, steps, timeout=1)
    assert "waiting" in caught.value.log_tail


def test_between_the_check_and_the_steps_the_data_is_put_in_place(venue, django_act, tmp_path):
    project, act_dir, env = django_act
    kept = str(tmp_path / "shared" / "db.sqlite3")
    seen: list[tuple[str, ...]] = []

    def link(found: Preflight) -> None:
        seen.append(found.data)
        assert not os.path.exists(env["DATABASE_PATH"]), "a step ran before the data was in place"
        os.makedirs(os.path.dirname(kept))
        os.symlink(kept, env["DATABASE_PATH"])

    found = preflight(Check(
        venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir], steps=DJANGO_RELEASE,
        act_dir=act_dir, between=link,
    ))  # fmt: skip
    assert seen == [found.data] and env["DATABASE_PATH"] in found.data
    with sqlite3.connect(kept) as db:  # migrate wrote through the link
        assert db.execute("SELECT text FROM greetings_greeting").fetchall() == [(GREETING,)]

    def refuse(found: Preflight) -> None:
        raise ReleaseFailed("no room for the data")

    os.unlink(os.path.join(default_static_root(act_dir), project.static_path))
    os.unlink(os.path.join(act_dir, STATIC_FINGERPRINT))
    with pytest.raises(ReleaseFailed, match="no room for the data"):
        preflight(Check(
            venue, project.path, env, project.wsgi, SHIM_MODULE, [act_dir],
            steps=DJANGO_RELEASE, act_dir=act_dir, between=refuse,
        ))  # fmt: skip
    assert not os.path.exists(os.path.join(default_static_root(act_dir), project.static_path))
