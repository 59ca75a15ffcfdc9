"""The listen queue the Acts' and the router's sockets get: as asked, never past the
kernel's ceiling (uWSGI refuses to start past net.core.somaxconn)."""

from __future__ import annotations

import re

from backstage.control.host.ports import listen_queue
from backstage.model.layout import Layout
from backstage.render.stageset import LISTEN, StageSet


def test_the_listen_queue_stays_under_the_kernels_ceiling(tmp_path):
    ceiling = tmp_path / "somaxconn"
    ceiling.write_text("4096\n")
    assert listen_queue(1024, str(ceiling)) == 1024
    ceiling.write_text("128\n")
    assert listen_queue(1024, str(ceiling)) == 128
    ceiling.write_text("junk\n")
    assert listen_queue(1024, str(ceiling)) == 1024
    assert listen_queue(1024, str(tmp_path / "absent")) == 1024


def test_the_router_config_has_the_listen_queue_and_the_log_size(tmp_path):
    layout = Layout(str(tmp_path))
    text = StageSet(listen=128).router(layout, "127.0.0.1:8000", "", "", log_max=5000)
    assert "\nlisten = 128\n" in text and "\nlog-maxsize = 5000\n" in text
    text = StageSet().router(layout, "127.0.0.1:8000", "", "")
    assert f"\nlisten = {LISTEN}\n" in text and "log-maxsize" not in text


def test_the_router_drops_its_line_per_client_that_hung_up_where_it_can(tmp_path):
    layout = Layout(str(tmp_path))
    assert "log-drain" not in StageSet().router(layout, "127.0.0.1:8000", "", "")
    text = StageSet().router(layout, "127.0.0.1:8000", "", "", drain=True)
    drain = re.search(r"^log-drain = (.*)$", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
    client = "[uwsgi-http key: a.test client_addr: 127.0.0.1 client_port: 5284] hr_read(): "
    node = "[uwsgi-http key: a.test client_addr: 127.0.0.1 client_port: 5284] hr_instance_read(): "
    assert re.search(drain, client + "Connection reset by peer [plugins/http/http.c line 918]")
    assert not re.search(drain, node + "Connection reset by peer [plugins/http/http.c line 647]")
    assert not re.search(drain, '[uwsgi-http] unable to connect() to node "/x.sock": timeout')
