"""The Emperor's wrapper as the Stage writes it: straight to uwsgi for a vassal with
nothing held, through the holder for one with a held file. Real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from backstage.control.processes.holding import write_wrapper
from backstage.model.layout import Layout
from emperor.holder import HeldFile, Holder
from tests.emperor.test_held import FAKE_UWSGI
from tests.helpers import free_port, poll


def test_the_wrapper_asks_the_holder_only_for_a_vassal_with_a_held_file(tmp_path):
    layout = Layout(str(tmp_path / "home"))
    os.makedirs(layout.held_dir)
    fake = tmp_path / "uwsgi"
    fake.write_text(f"#!{sys.executable}\n{FAKE_UWSGI}")
    fake.chmod(0o700)
    wrapper = write_wrapper(layout, str(fake))
    holder = Holder(layout.holder_socket, layout.held_dir)
    thread = threading.Thread(target=holder.serve, daemon=True)
    thread.start()
    try:
        poll(lambda: os.path.exists(layout.holder_socket), 5)
        port = free_port()
        with open(layout.held_file("bs1.V.A.ini"), "w") as file:
            file.write(HeldFile((f"127.0.0.1:{port}",)).dumps())

        def run(name: str) -> str:
            args = [wrapper, "--ini", f"emperor://{name}"]
            return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout

        assert run("bs1.V.A.ini").startswith(
            f"1 ['--ini', 'emperor://bs1.V.A.ini'] [\"('127.0.0.1', {port})\"]"
        )
        assert run("bs1.V.Sleeper.ini").startswith(
            "None ['--ini', 'emperor://bs1.V.Sleeper.ini'] []"
        )
    finally:
        holder.stop()
        thread.join(5)
