"""A Venue on another Python than the one the Stage's uwsgi embeds: built wherever that
Python is installed, with its own uwsgi, its Acts served by it over both channels; and
a Python that is not installed refused with one line and nothing on disk."""

from __future__ import annotations

import os

import pytest

from backstage import Production, Venue
from backstage.control import virtualenv
from backstage.errors import VenueBuildError
from backstage.model.layout import venue_uwsgi
from backstage.shortcuts import new_venue
from emperor.binary import find_uwsgi, probe
from tests.conftest import HOMES, ROOT, run_cli
from tests.helpers import http_get

OTHER = "3.12"

APP = """\
import sys

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("{tag} " + sys.version).encode()]
"""


def other_python() -> str:
    """The reason to skip, or "" when a Python 3.12 is there and the Stage's is another."""
    if probe(find_uwsgi()).python_major_minor == OTHER:
        return f"the Stage's uwsgi embeds Python {OTHER} already"
    try:
        virtualenv.find_python(OTHER, embedded=False)
    except VenueBuildError as exc:
        return f"no Python {OTHER} installed here ({exc})"
    return ""


@pytest.fixture(scope="session")
def other_venue_path() -> str:
    reason = other_python()
    if reason:
        pytest.skip(reason)
    home = os.path.join(ROOT, "py312home")
    HOMES.append(home)
    venue = new_venue("Py312", ROOT, Production(home), requirements=(), python=OTHER)
    venue.production.forget_venue(venue)
    return venue.path


def write_app(folder: str, tag: str) -> None:
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(APP.replace("{tag}", tag))


@pytest.mark.slow
def test_a_venue_on_another_python_serves_its_acts_on_it(
    production, channel, other_venue_path, tmp_path
):
    venue = Venue(other_venue_path, production)
    production.add_venue(venue)
    assert venue.spec.python == OTHER and venue.spec.own_uwsgi
    assert os.access(os.path.join(venue.path, "bin", "pip"), os.X_OK)
    assert probe(venue_uwsgi(venue.path)).python_major_minor == OTHER
    folder = tmp_path / "app"
    folder.mkdir()
    write_app(str(folder), "one")
    act = None
    try:
        act = venue.add_act(f"Versions_{channel}", str(folder), wsgi="app:application")
        port = act.get_uwsgi_port()
        status, body = http_get(port)
        assert (status, body.split()[:2]) == (200, ["one", body.split()[1]])
        assert body.split()[1].startswith(OTHER + "."), body
        layout = production.layout
        on_file = os.path.join(layout.vassal_files, act.vassal_name)
        assert os.path.exists(on_file) == (channel == "zmq")  # the re-exec reads it again
        assert act.state == "running"

        write_app(str(folder), "two")
        act.reload()
        status, body = http_get(port)
        assert status == 200 and body.startswith(f"two {OTHER}.")

        act.stop()
        assert http_get(port, timeout=1)[0] == 0
        assert not os.path.exists(on_file)
        act.start()
        status, body = http_get(port)
        assert status == 200 and body.startswith(f"two {OTHER}.")
    finally:
        if act is not None:
            act.remove()
        production.down()
        production.forget_venue(venue)


def test_a_python_not_installed_is_one_line_and_leaves_nothing(production, tmp_path):
    parent = tmp_path / "venues"
    parent.mkdir()
    with pytest.raises(VenueBuildError, match=r"^Python 3\.99 is not installed") as failed:
        new_venue("Nope", str(parent), production, python="3.99")
    assert "\n" not in str(failed.value)
    assert list(parent.iterdir()) == [] and production.venues == []

    done = run_cli(
        "venue", "new", "Nope", "--path", str(parent), "--python", "3.99",
        home=production.home, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Python 3.99 is not installed" in done.stderr
    assert list(parent.iterdir()) == []
