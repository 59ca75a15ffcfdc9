"""Every `backstage` command the docs and the README show, and every example a command's
--help ends with, is parsed by the real command line: the command exists, its options
and arguments fit. Nothing runs (the Getting started sequence runs for real in
tests/integration/test_docs_examples.py)."""

from __future__ import annotations

import os
import re

import click
import pytest

from backstage.ui.cli import EXAMPLES, cli
from tests.helpers import backstage_commands, bash_blocks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# An argument naming a file a command reads (it must exist to parse).
READ_FILE = re.compile(r"^[\w.-]+\.(?:keys|crt|key|pem|gz)$")


def shell_lines(path: str) -> list[tuple[str, int, list[str]]]:
    """(file, line, argv) of each `backstage` command of the file's bash blocks."""
    return [
        (os.path.relpath(path, REPO), first + offset, argv)
        for first, code in bash_blocks(path)
        for offset, line in enumerate(code.splitlines())
        for argv in backstage_commands(line)
    ]


def documented() -> list[tuple[str, int, list[str]]]:
    docs = os.path.join(REPO, "docs")
    paths = [os.path.join(REPO, "README.md")]
    paths += [os.path.join(docs, n) for n in sorted(os.listdir(docs)) if n.endswith(".md")]
    return [found for path in paths for found in shell_lines(path)]


def parse(argv: list[str]) -> click.Context:
    """The innermost context of `argv` as `backstage` would parse it, invoking nothing."""
    ctx = cli.make_context("backstage", argv[1:])
    command: click.Command = cli
    while isinstance(command, click.Group) and (ctx._protected_args or ctx.args):
        # what is left to parse, as click's own Group.invoke reads it
        name, found, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert found is not None, f"no command {name!r}"
        command = found
        ctx = command.make_context(name or "", rest, parent=ctx)
    return ctx


DOCUMENTED = documented()


def test_the_docs_show_commands():
    # Getting started, Gigs, the development loop and the README at least
    files = {where for where, _, _ in DOCUMENTED}
    assert {"README.md", "docs/getting-started.md", "docs/gigs.md", "docs/devloop.md"} <= files


@pytest.mark.parametrize("where,line,argv", DOCUMENTED, ids=[f"{w}:{n}" for w, n, _ in DOCUMENTED])
def test_a_documented_command_parses(where, line, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch_read_files(argv)
    parse(argv)


@pytest.mark.parametrize("path,example", sorted(EXAMPLES.items()))
def test_a_help_example_parses(path, example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (argv,) = backstage_commands(example)
    touch_read_files(argv)
    ctx = parse(argv)
    # a group's example shows one of its commands
    assert ctx.command_path.split()[1:][: len(path.split())] == path.split()


def touch_read_files(argv: list[str]) -> None:
    for arg in argv:
        if READ_FILE.match(arg):
            open(arg, "w").close()


def test_a_wrong_command_does_not_parse():
    with pytest.raises(click.UsageError):
        parse(["backstage", "act", "reload", "MyVenue/MyAct", "--no-such-option"])
    with pytest.raises((click.UsageError, AssertionError)):
        parse(["backstage", "no-such-command"])
