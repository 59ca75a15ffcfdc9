"""Building Venues: with uv, with venv + pip where uv is missing, and failing cleanly."""

from __future__ import annotations

import os
import subprocess

import pytest

from backstage.control import virtualenv
from backstage.errors import VenueBuildError
from backstage.shortcuts import new_venue


def test_a_failed_build_leaves_nothing(production):
    parent = os.path.dirname(production.home)
    before = sorted(os.listdir(parent))
    with pytest.raises(VenueBuildError, match="installing") as failed:
        new_venue("Doomed", parent, requirements=("no-such-package-backstage-0451",))
    assert "\n" not in str(failed.value)
    assert sorted(os.listdir(parent)) == before
    assert production.venues == []


def test_without_uv_the_venue_is_built_with_venv_and_pip(production, monkeypatch):
    monkeypatch.setattr(virtualenv, "find_uv", lambda: None)
    folder = os.path.join(
        os.path.dirname(production.home), f"pip{os.path.basename(production.home)}"
    )
    os.makedirs(folder)
    venue = new_venue("PipVenue", folder)
    assert os.path.isfile(os.path.join(venue.path, "bin", "pip"))  # venv seeds pip, uv does not
    done = subprocess.run(
        [venue.python, "-c", "import django; print(django.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip()
    assert [v.path for v in production.venues] == [venue.path]


def test_a_python_uwsgi_does_not_embed_is_a_clear_error():
    with pytest.raises(VenueBuildError, match=r"uwsgi embeds Python 2\.7 .*install it"):
        virtualenv.find_python("2.7")
