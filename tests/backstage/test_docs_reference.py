"""The docs' generated reference (docs/hooks/reference.py): every command, every key of
the declared files and every error class gets its place, and messages read as the code
writes them."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os

import pytest

from backstage import errors
from backstage.model import spec
from backstage.model.options import ALLOWED_OPTIONS

HOOK = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "hooks", "reference.py")


@pytest.fixture(scope="module")
def reference():
    loader = importlib.util.spec_from_file_location("docs_reference", HOOK)
    assert loader and loader.loader
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def test_every_command_has_its_section(reference):
    pages = reference.cli_pages()
    index = pages["reference/cli/index.md"]
    text = "\n".join(pages.values())
    for path, _command in reference.commands()[1:]:
        assert f"## {path} {{#{path.replace(' ', '-')}}}" in text, path
        assert f"[`{path}`]" in index, path
    assert "backstage act add MyVenue Blog" in pages["reference/cli/act.md"]  # its example


def test_every_key_and_option_is_listed(reference):
    page = reference.files_page()
    for cls in (spec.ProductionSpec, spec.VenueSpec, spec.ActSpec):
        for field in dataclasses.fields(cls):
            if field.name in getattr(cls, "NOT_KEYS", ()):
                assert f"| `{field.name}` |" not in page, (cls.__name__, field.name)
                continue
            assert f"| `{field.name}` |" in page, (cls.__name__, field.name)
    for option in ALLOWED_OPTIONS:
        assert f"| `{option}` |" in page
    assert "| `port` | integer | `required` | where it serves HTTP" in page
    assert "| `idle` | integer | `0` | Seconds without a request before the Act sleeps" in page


def test_every_error_class_has_its_section(reference):
    page = reference.errors_page()
    classes = [
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.BackstageError)
    ]
    for name in classes:
        assert f"## {name} {{#{name.lower()}}}" in page
    messages = reference.error_messages()
    assert sum(map(len, messages.values())) > 150
    assert any("pick another" in text for text, _ in messages["PortBusy"])


@pytest.mark.parametrize(
    "source, text",
    [
        ('f"port {spec.port} of {self.ref.key}: pick another"', "port PORT of KEY: pick another"),
        ('"a " + f"{name!r} b"', "a NAME b"),
        ('f"{len(items)} left, {a + b} more"', "ITEMS left, ... more"),
        ("'plain'", "plain"),
        ("message", None),
    ],
)
def test_a_message_reads_as_the_code_writes_it(reference, source, text):
    assert reference._message(ast.parse(source, mode="eval").body) == text


DOCS = os.path.join(os.path.dirname(HOOK), "..")
SPECS = {"production.toml": spec.ProductionSpec, "act.toml": spec.ActSpec}


def test_the_docs_toml_examples_load():
    """A TOML example whose first line names its file is read as Backstage reads that file."""
    import re
    import tomllib

    read = 0
    for name in sorted(os.listdir(DOCS)):
        if not name.endswith(".md"):
            continue
        with open(os.path.join(DOCS, name), encoding="utf-8") as file:
            text = file.read()
        for block in re.findall(r"```toml\n(.*?)```", text, re.S):
            first = block.split("\n", 1)[0]
            kind = next((k for k in SPECS if first.startswith("#") and k in first), None)
            if kind:
                spec.from_dict(SPECS[kind], tomllib.loads(block), f"docs/{name}")
                read += 1
    assert read >= 3
