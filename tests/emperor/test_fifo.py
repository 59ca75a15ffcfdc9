from __future__ import annotations

import os
import threading

import pytest

from emperor import fifo
from emperor.errors import FifoNotReading


def test_encode_accepts_known_commands_in_order():
    assert fifo.encode("c") == b"c"
    assert fifo.encode("+-q") == b"+-q"


@pytest.mark.parametrize("bad", ["", "z", "cz", "ç"])
def test_encode_refuses_what_the_master_would_ignore(bad):
    with pytest.raises(ValueError):
        fifo.encode(bad)


def test_send_writes_the_bytes_to_a_reading_fifo(tmp_path):
    path = str(tmp_path / "master.fifo")
    os.mkfifo(path, 0o600)
    got: list[bytes] = []
    ready = threading.Event()

    def reader() -> None:
        # O_RDWR: a reader that never sees EOF while no writer is connected yet
        fd = os.open(path, os.O_RDWR)
        ready.set()
        got.append(os.read(fd, 16))
        os.close(fd)

    thread = threading.Thread(target=reader)
    thread.start()
    ready.wait(5)
    fifo.send(path, "c+")
    thread.join(5)
    assert got == [b"c+"]


def test_send_to_a_fifo_nobody_reads_says_not_running(tmp_path):
    path = str(tmp_path / "master.fifo")
    os.mkfifo(path, 0o600)
    with pytest.raises(FifoNotReading):
        fifo.send(path, "r")
    with pytest.raises(FifoNotReading):
        fifo.send(str(tmp_path / "missing.fifo"), "r")
