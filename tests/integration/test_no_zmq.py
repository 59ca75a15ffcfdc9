"""A uwsgi without emperor_zeromq: Backstage says so once and plays on the dir channel.

The binary is the real uwsgi behind a wrapper that only hides `emperor_zeromq` from
`--plugins-list`; every Emperor and vassal below is the real thing.
"""

from __future__ import annotations

import os
import stat

import pytest

from backstage.errors import StageError
from emperor.binary import probe
from tests.helpers import http_get


@pytest.fixture
def plain_uwsgi(tmp_path) -> str:
    real = probe().path
    wrapper = tmp_path / "uwsgi"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --plugins-list ]; then\n'
        f'  "{real}" "$@" 2>&1 | grep -vx emperor_zeromq; exit 1\n'
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def test_falls_back_to_the_dir_channel_and_says_so_once(production, venue, plain_uwsgi):
    production.declare(uwsgi=plain_uwsgi)
    act = venue.new_act("Plain")
    assert http_get(act.port)[0] == 200
    assert production.stage.channel_kind() == "dir"
    act.stop()
    act.start()
    with open(os.path.join(production.log_dir, "manager.log")) as log:
        said = [line for line in log if "has no emperor_zeromq plugin" in line]
    assert len(said) == 1, said


def test_asking_for_zmq_without_the_plugin_is_one_clear_error(production, venue, plain_uwsgi):
    production.declare(uwsgi=plain_uwsgi, channel="zmq")
    act = venue.new_act("Refused", start=False)
    with pytest.raises(StageError, match="UWSGI_EMBED_PLUGINS=emperor_zeromq") as refused:
        act.start()
    assert "\n" not in str(refused.value)
    assert production.stage.pid() is None and not production.manager.running()
    assert act.spec.enabled is False  # nothing changed


def test_a_missing_uwsgi_binary_is_one_clear_error(production, venue, tmp_path):
    production.declare(uwsgi=str(tmp_path / "no-uwsgi-here"))
    act = venue.new_act("Nothing", start=False)
    with pytest.raises(StageError, match="no-uwsgi-here"):
        act.start()
    assert not production.manager.running()
