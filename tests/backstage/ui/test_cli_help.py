from __future__ import annotations

import pytest
from click.testing import CliRunner

from backstage import __version__
from backstage.ui.cli import _commands, cli

COMMANDS = sorted(_commands(cli))


@pytest.mark.parametrize("path", COMMANDS)
def test_every_command_help_has_an_example(path):
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    example = result.output.split("Example:\n", 1)[1].splitlines()[0].strip()
    assert example.startswith("backstage") or "backstage" in example


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output == f"backstage {__version__}\n"
