from __future__ import annotations

import ast

import pytest

from backstage.errors import InvalidSetting
from backstage.render.ini import ini_value
from backstage.render.shim import hosts_value, render_settings_shim, static_map


def test_the_shim_is_python_and_quotes_what_it_is_given():
    text = render_settings_shim("MyAct", "mysite.settings.prod", "/srv/it's/static")
    ast.parse(text)
    assert "_importlib.import_module('mysite.settings.prod')" in text
    assert 'STATIC_ROOT = "/srv/it\'s/static"' in text


def test_static_map():
    assert static_map("/static/", "/v/acts/A/static/") == [
        ("static-map", "/static=/v/acts/A/static"),
        ("offload-threads", "1"),
    ]
    assert static_map("assets/", "/r%d")[0] == ("static-map", "/assets=/r%%d")
    assert static_map("https://cdn.example.com/s/", "/r") == []
    assert static_map("//cdn.example.com/s/", "/r") == []


@pytest.mark.parametrize(
    ("url", "root"), [("/", "/r"), ("/s/", "relative"), ("/a=b/", "/r"), ("/s/", "/$(HOME)")]
)
def test_static_map_refuses(url, root):
    with pytest.raises(InvalidSetting):
        static_map(url, root)


def test_what_goes_into_an_ini():
    assert ini_value("a%b ;c #d") == "a%%b ;c #d"  # mid-line ; and # are data
    for bad in ("$(HOME)", "@(exec://id)", "%(_)", "a%%(_)", "a\nb", " lead", "trail "):
        with pytest.raises(InvalidSetting, match="expand|spans lines|blanks"):
            ini_value(bad)


def test_hosts_value():
    assert hosts_value(["a.example.com", "b.example.com", "a.example.com"]) == (
        "a.example.com b.example.com"
    )
