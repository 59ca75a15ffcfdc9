"""Django's project template rendered without Django: the parts startproject's own
rendering is compared with in tests/integration/test_scaffold.py."""

from __future__ import annotations

import re

import pytest

from backstage.render.djangoproject import (
    SECRET_KEY_CHARS,
    Made,
    TemplateEntry,
    context_for,
    render_project,
    render_text,
    secret_key,
    secret_key_pattern,
    version_names,
    version_of,
)

CONTEXT = context_for("shop", "KEY", "5.2.8", "5.2", "/v/acts/shop")


@pytest.mark.parametrize(
    ("version", "names"),
    [
        ((5, 2, 8, "final", 0), ("5.2.8", "5.2")),
        ((5, 2, 0, "final", 0), ("5.2", "5.2")),
        ((6, 0, 0, "rc", 1), ("6.0rc1", "dev")),
        ((6, 0, 0, "beta", 2), ("6.0b2", "dev")),
        ((6, 1, 0, "alpha", 1), ("6.1a1", "dev")),
        ((6, 1, 0, "alpha", 0), None),  # a pre-alpha's version names its git commit
        ((6, 1, 0, "gamma", 0), None),
        ((6, 1, 0), None),
    ],
)
def test_version_names_are_django_utils_versions(version, names):
    assert version_names(version) == names


def test_the_version_is_read_from_djangos_init_without_running_it():
    source = 'from x import y\n\nVERSION = (4, 2, 30, "final", 0)\n\n__version__ = y(VERSION)\n'
    assert version_of(source) == (4, 2, 30, "final", 0)
    assert version_of("VERSION = compute()\n") is None
    assert version_of("no version here\n") is None
    assert version_of("VERSION = (\n") is None


def test_variables_and_comments_render_as_djangos_engine_renders_them():
    text = "a {{ project_name }} b {{project_name}} {#  gone #}c{{   secret_key  }}\n"
    assert render_text(text, CONTEXT) == "a shop b shop c" + "KEY\n"
    # the lexer's tags never span lines: such braces are text, kept as they are
    assert render_text("x = {{\n 'a' }}\n", CONTEXT) == "x = {{\n 'a' }}\n"
    camel = context_for("my_shop", "", "", "", "")
    assert render_text("{{ camel_case_project_name }}", camel) == "MyShop"
    assert render_text("{{ camel_case_project_name }}", CONTEXT) == "Shop"


@pytest.mark.parametrize(
    "text",
    [
        "{% if x %}y{% endif %}",
        "{{ project_name|upper }}",
        "{{ verbosity }}",
        "{{ }}",
        "{% verbatim %}{{ project_name }}{% endverbatim %}",
    ],
)
def test_anything_else_is_not_understood(text):
    assert render_text(text, CONTEXT) is None


def entry(path, mode=0o644, data=None):
    return TemplateEntry(path, mode, None if data is None else data.encode())


def test_a_project_is_named_and_rendered_as_startproject_makes_it():
    template = [
        entry("manage.py-tpl", 0o755, "import {{ project_name }}\r\n"),
        entry("notes.txt", data="{{ project_name }} {% kept %}\n"),
        entry("project_name", 0o755),
        entry("project_name/__init__.py-tpl", data=""),
        entry("project_name/project_name_cfg.py", data="K = '{{ secret_key }}'\r"),
        entry("project_name/__pycache__", 0o755),
        entry("project_name/__pycache__/x.py-tpl", data="{% never read %}"),
        entry("project_name/old.pyc", data="\0"),
        entry(".hidden", 0o755),
        entry(".hidden/h.py", data="{% never read %}"),
    ]
    assert render_project(template, "shop", CONTEXT) == [
        Made("manage.py", 0o755, b"import shop\n"),
        Made("notes.txt", 0o644, b"{{ project_name }} {% kept %}\n"),  # only .py renders
        Made("shop", 0o777),
        Made("shop/__init__.py", 0o644, b""),
        Made("shop/shop_cfg.py", 0o644, b"K = 'KEY'\n"),
    ]


def test_a_template_startproject_would_stop_at_is_not_understood():
    clash = [entry("a.py", data="x"), entry("a.py-tpl", data="y")]
    assert render_project(clash, "shop", CONTEXT) is None
    tag = [entry("settings.py-tpl", data="{% load static %}")]
    assert render_project(tag, "shop", CONTEXT) is None
    latin = [TemplateEntry("s.py-tpl", 0o644, "é".encode("latin-1"))]
    assert render_project(latin, "shop", CONTEXT) is None


def test_a_secret_key_is_djangos_kind_and_fresh_each_time():
    keys = {secret_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert key.startswith("django-insecure-") and len(key) == 16 + 50
        assert set(key[16:]) <= set(SECRET_KEY_CHARS)
        assert re.fullmatch(secret_key_pattern(), key)
    assert not re.fullmatch(secret_key_pattern(), "django-insecure-" + "A" * 50)
    assert not re.fullmatch(secret_key_pattern(), "django-insecure-" + "a" * 49)
