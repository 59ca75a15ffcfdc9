"""Finding what a source folder is, from its files alone."""

from __future__ import annotations

import os

import pytest

from backstage.errors import BackstageError, InvalidSetting, NotAProject
from backstage.files.project import detect, find_requirements, literal_setting
from backstage.model.project import NOT_LITERAL, WsgiTarget, parse_wsgi
from tests.projects import make_django_project, make_flask_project


def write(path, text: str = "") -> None:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w") as out:
        out.write(text)


def test_django_settings_package_from_manage_py(tmp_path):
    made = make_django_project(str(tmp_path))
    project = detect(made.path)
    assert project.kind == "django" and project.is_django
    assert project.settings == "mysite.settings.prod"
    assert project.wsgi == WsgiTarget("mysite.wsgi", "application")
    assert project.pythonpath == (made.path,)
    assert project.requirements is not None
    assert project.requirements.path == os.path.join(made.path, "requirements.txt")
    assert project.requirements.kind == "requirements"


def test_wsgi_application_is_followed_through_star_imports(tmp_path):
    made = make_django_project(str(tmp_path), wsgi_application='"mysite.serve.app"')
    write(os.path.join(made.path, "mysite", "serve.py"))
    assert detect(made.path).wsgi == WsgiTarget("mysite.serve", "app")
    # prod.py overrides what base.py says
    with open(os.path.join(made.path, "mysite", "settings", "prod.py"), "a") as prod:
        prod.write('WSGI_APPLICATION = "mysite.wsgi.application"\n')
    assert detect(made.path).wsgi == WsgiTarget("mysite.wsgi", "application")


def test_computed_wsgi_application_falls_back_to_the_package_wsgi(tmp_path):
    made = make_django_project(str(tmp_path), wsgi_application='"mysite." + "wsgi.application"')
    assert literal_setting(made.path, "mysite.settings.prod", "WSGI_APPLICATION") is NOT_LITERAL
    assert detect(made.path).wsgi == WsgiTarget("mysite.wsgi", "application")
    os.remove(os.path.join(made.path, "mysite", "wsgi.py"))
    with pytest.raises(NotAProject, match="pass --wsgi MODULE:CALLABLE"):
        detect(made.path)


def test_wsgi_application_naming_no_module(tmp_path):
    made = make_django_project(str(tmp_path), wsgi_application='"nowhere.wsgi.application"')
    with pytest.raises(NotAProject, match="'nowhere.wsgi.application' in mysite.settings.prod"):
        detect(made.path)


def test_settings_beside_wsgi_without_manage_py(tmp_path):
    write(tmp_path / "proj" / "__init__.py")
    write(tmp_path / "proj" / "settings.py", 'WSGI_APPLICATION = "proj.wsgi.application"\n')
    write(tmp_path / "proj" / "wsgi.py", "application = None\n")
    write(tmp_path / ".venv" / "x" / "wsgi.py")  # hidden folders are not searched
    project = detect(str(tmp_path))
    assert (project.settings, str(project.wsgi)) == ("proj.settings", "proj.wsgi:application")
    assert project.requirements is None


def test_src_layout(tmp_path):
    write(tmp_path / "src" / "proj" / "__init__.py")
    write(tmp_path / "src" / "proj" / "settings.py")
    write(tmp_path / "src" / "proj" / "wsgi.py")
    write(tmp_path / "pyproject.toml", '[project]\nname = "proj"\n')
    project = detect(str(tmp_path))
    assert project.settings == "proj.settings"
    assert project.pythonpath == (str(tmp_path / "src"),)
    assert project.requirements.kind == "pyproject"


def test_several_settings_want_one_named(tmp_path):
    for name in ("one", "two"):
        write(tmp_path / name / "settings.py")
        write(tmp_path / name / "wsgi.py")
    with pytest.raises(NotAProject, match=r"several Django settings \(one.settings, two.settings"):
        detect(str(tmp_path))
    assert detect(str(tmp_path), settings="two.settings").wsgi == WsgiTarget("two.wsgi")


def test_manage_py_without_a_literal_default(tmp_path):
    write(tmp_path / "manage.py", "import os\nos.environ.setdefault(KEY, compute())\n")
    with pytest.raises(NotAProject, match="no literal DJANGO_SETTINGS_MODULE: pass --settings"):
        detect(str(tmp_path))


def test_manage_py_naming_a_missing_module(tmp_path):
    write(
        tmp_path / "manage.py", 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gone.settings")'
    )
    with pytest.raises(NotAProject, match="gone.settings .from manage.py. is not in"):
        detect(str(tmp_path))


def test_a_syntax_error_is_one_line(tmp_path):
    write(tmp_path / "manage.py", "def broken(:\n")
    with pytest.raises(NotAProject, match=r"manage.py line 1: .*fix it") as caught:
        detect(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_flask_with_wsgi(tmp_path):
    made = make_flask_project(str(tmp_path))
    with pytest.raises(NotAProject, match="no Django project .* pass --wsgi MODULE:CALLABLE"):
        detect(made.path)
    project = detect(made.path, wsgi="app:app")
    assert (project.kind, project.settings, project.wsgi) == (
        "wsgi",
        None,
        WsgiTarget("app", "app"),
    )
    assert project.requirements.path.endswith("flaskapp/requirements.txt")
    with pytest.raises(NotAProject, match="no module application in"):
        detect(made.path, wsgi="application:app")


@pytest.mark.parametrize(
    "text", ["app", "app:", ":app", "app:()", "my-app:app", "a..b:c", "a:b.c", "$(HOME):x"]
)
def test_bad_wsgi_strings(text):
    with pytest.raises(InvalidSetting, match="is not MODULE:CALLABLE or MODULE:FACTORY()"):
        parse_wsgi(text)


def test_application_factories_with_literal_arguments():
    assert parse_wsgi("flaskr:create_app()") == WsgiTarget("flaskr", "create_app", "")
    target = parse_wsgi("""flaskr:create_app( "dev",debug=True , n=[1, 2] )""")
    assert str(target) == "flaskr:create_app('dev', debug=True, n=[1, 2])" and target.factory
    assert not parse_wsgi("flaskr:app").factory


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("flaskr:create_app(os.environ)", "must be literals"),
        ("flaskr:create_app(__import__('os').system('x'))", "must be literals"),
        ("flaskr:create_app(*args)", "must be literals"),
        ("flaskr:create_app(**{'a': 1})", "must be literals"),
        ("flaskr:create_app(", "is not MODULE:CALLABLE"),
        ("flaskr:create_app(1,,2)", "do not parse"),
        ("flaskr:create_app()()", "do not parse"),
    ],
)
def test_factory_arguments_that_are_not_literals_are_refused(text, why):
    with pytest.raises(InvalidSetting, match=why):
        parse_wsgi(text)


def test_good_wsgi_strings():
    assert parse_wsgi(" mysite.wsgi:application ") == WsgiTarget("mysite.wsgi", "application")
    assert str(parse_wsgi("app:app")) == "app:app"


def test_bad_settings_and_missing_folder(tmp_path):
    with pytest.raises(InvalidSetting, match="not a dotted module name"):
        detect(str(tmp_path), settings="my-site.settings")
    with pytest.raises(NotAProject, match="no such module"):
        detect(str(tmp_path), settings="mysite.settings")
    with pytest.raises(NotAProject, match="is not a folder"):
        detect(str(tmp_path / "missing"))
    assert issubclass(NotAProject, BackstageError)


def test_requirements_order(tmp_path):
    assert find_requirements(str(tmp_path)) is None
    write(tmp_path / "pyproject.toml")
    assert find_requirements(str(tmp_path)).kind == "pyproject"
    write(tmp_path / "requirements.txt")
    assert find_requirements(str(tmp_path)).kind == "requirements"


def test_the_project_is_never_imported(tmp_path):
    made = make_django_project(str(tmp_path))
    write(os.path.join(made.path, "mysite", "__init__.py"), "raise SystemExit('imported!')\n")
    assert detect(made.path).settings == "mysite.settings.prod"
    assert not any("__pycache__" in dirs for _, dirs, _ in os.walk(made.path))
