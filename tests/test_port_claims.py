"""The test Productions' port ranges (tests/conftest.py): claimed machine-wide, so that
two test processes, or a test and anything else that binds a router's port, never
play on the same ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests import conftest

FIRSTS = (40000, 40100, 40200)  # three ranges, outside those the suite plays on


@pytest.fixture
def three_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "CLAIMS", str(tmp_path / "claims"))
    monkeypatch.setattr(conftest, "_port_span", lambda: (FIRSTS[0], FIRSTS[-1] + 1))
    return str(tmp_path / "claims")


def test_a_range_another_test_process_claimed_is_never_drawn(three_ranges):
    # another test process holds two of the three ranges, until told to let go
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tests import conftest as c; c.CLAIMS = sys.argv[1]; "
            "c._port_span = lambda: (40000, 40101); print(c._claim_range(), c._claim_range(),"
            " flush=True); sys.stdin.read()",
            three_ranges,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        assert sorted(map(int, holder.stdout.readline().split())) == [40000, 40100]
        for _ in range(5):  # drawn at random: the one left, every time
            assert conftest._claim_range() == 40200
            os.close(conftest._claimed.pop())  # let go: the lock goes with its fd
    finally:
        holder.communicate("")
    assert conftest._claim_range() in FIRSTS  # theirs are free again once it ended


def test_a_range_whose_router_port_something_binds_is_not_drawn(three_ranges):
    listeners = []
    try:
        for first in FIRSTS[:2]:
            sock = socket.socket()
            sock.bind(("127.0.0.1", first + 99))
            sock.listen()
            listeners.append(sock)
        assert conftest._claim_range() == FIRSTS[2]
        with pytest.raises(RuntimeError, match="every range of test ports is claimed"):
            conftest._claim_range()
    finally:
        for sock in listeners:
            sock.close()
