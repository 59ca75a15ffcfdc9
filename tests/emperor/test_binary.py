from __future__ import annotations

from pathlib import Path

from emperor.binary import ZMQ_PLUGIN, UwsgiBinary, parse_plugins_list

DATA = Path(__file__).parent / "data"


def test_plugins_list_recorded_from_a_zmq_build():
    plugins = parse_plugins_list((DATA / "plugins_list_zmq.txt").read_text())
    assert ZMQ_PLUGIN in plugins
    assert {"http", "corerouter", "python", "spooler", "ping"} <= plugins
    # nothing of the banner uWSGI prints after the list
    assert not any(" " in name or name.startswith("***") for name in plugins)
    assert "detected" not in " ".join(plugins)


def test_plugins_list_without_the_zmq_plugin():
    text = (DATA / "plugins_list_zmq.txt").read_text().replace(f"{ZMQ_PLUGIN}\n", "")
    binary = UwsgiBinary("uwsgi", "2.0.31", "3.11.7", parse_plugins_list(text))
    assert not binary.has_zmq
