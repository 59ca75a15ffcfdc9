"""Building Venues: with uv, with venv + pip where uv is missing, and failing cleanly."""

from __future__ import annotations

import glob
import os
import subprocess

import pytest

from backstage.control.build import virtualenv
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


@pytest.mark.slow
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
    with pytest.raises(VenueBuildError, match=r"uwsgi embeds Python 3\.97 .*install it"):
        virtualenv.find_python("3.97")


def test_pythons_are_found_in_pyenv_and_checked_by_running_them(tmp_path, monkeypatch):
    fake = tmp_path / "pyenv" / "versions" / "3.99.1" / "bin" / "python3.99"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 3.99\n")
    fake.chmod(0o755)
    broken = tmp_path / "pyenv" / "versions" / "3.98.0" / "bin" / "python3.98"
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\nexit 127\n")  # what a shim of a missing version does
    broken.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert virtualenv.find_python("3.99", embedded=False) == str(fake)
    with pytest.raises(VenueBuildError, match=r"^Python 3\.98 is not installed .*pyenv install"):
        virtualenv.find_python("3.98", embedded=False)
    with pytest.raises(ValueError, match="major.minor"):
        virtualenv.find_python("three", embedded=False)


def test_a_venues_packages_are_installed_with_their_bytecode(shared_venue_path):
    """An Act's processes may not write the Venue (it has a user of its own): its
    packages come compiled, so that no start compiles Django anew (2-3 times slower)."""
    views = glob.glob(
        os.path.join(shared_venue_path, "lib", "python*", "site-packages", "django", "contrib")
        + "/admindocs/__pycache__/views.*.pyc"
    )
    assert views  # a module no test's Act imports: compiled at the install
