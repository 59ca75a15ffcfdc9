"""The Act's env as its vassal's master reads it: the env file Backstage writes, parsed
without the json package, to the same dict json gives."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from backstage.render.stageset import ENV_LOADER, env_json

ENVS = [
    {},
    {"A": "1"},
    {"QUOTE": 'x"y\\z', "LINES": "a\nb\tc", "EMPTY": "", "WIDE": "é\U0001f600\x7f"},
    {"UWSGI_LIKE": "$(HOME) @(file) %(_) ;# [uwsgi]", "LONG": "v" * 10_000},
]


@pytest.fixture
def vassalenv(tmp_path, monkeypatch):
    """The loader as a module: importing it loads an env, as in a master."""
    path = tmp_path / "env.json"
    path.write_text(env_json({"LOADED": "yes"}))
    monkeypatch.setenv("BACKSTAGE_ENV_FILE", str(path))
    monkeypatch.delenv("BACKSTAGE_ENV_KEYS", raising=False)
    spec = importlib.util.spec_from_file_location("vassalenv_under_test", ENV_LOADER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert os.environ["LOADED"] == "yes"
    monkeypatch.delenv("LOADED")
    return module


@pytest.mark.parametrize("env", ENVS)
def test_what_backstage_writes_reads_as_json_reads_it(vassalenv, env):
    for text in (env_json(env), json.dumps(env, indent=2, ensure_ascii=False)):
        assert vassalenv.strings(text) == json.loads(text) == env


@pytest.mark.parametrize(
    "text",
    ["", "[]", '"x"', "{", '{"a": "b"', '{"a": 1}', '{"a": null}', '{"a": "b",}',
     '{"a" "b"}', '{"a": "b"} x', '{"a": "\x01"}', '{"a": "\\q"}'],
)  # fmt: skip
def test_anything_else_is_left_to_the_json_package(vassalenv, text):
    assert vassalenv.strings(text) is None


def test_an_env_file_of_other_json_still_loads_through_the_json_package(
    vassalenv, tmp_path, monkeypatch
):
    path = tmp_path / "other.json"
    path.write_text('{"SPACED" : "1" , "OTHER": "2"}\n')
    monkeypatch.setenv("BACKSTAGE_ENV_FILE", str(path))
    monkeypatch.setattr(vassalenv, "strings", lambda text: None)
    vassalenv.load()
    assert (os.environ.pop("SPACED"), os.environ.pop("OTHER")) == ("1", "2")
