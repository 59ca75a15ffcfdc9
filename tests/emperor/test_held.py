"""Held sockets: the holder binds and hands them over, the wrapper puts them where a
vassal config names them. Real sockets, a real holder thread, a real wrapper process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from emperor import heldbuild, heldwrap
from emperor.heldwire import FD_BASE, HELD_ENV, ask, decode_reply, encode_reply, held_fd_urls
from emperor.holder import WAKE_AGAIN, HeldFile, Holder, held_addresses, split_tcp
from tests.helpers import free_port, poll


def test_a_reply_says_how_many_fds_follow():
    assert decode_reply(encode_reply(2)) == 2
    for bad in (b"", b"held", b"nope\0\0\0\0", encode_reply(1) + b"x"):
        with pytest.raises(ValueError):
            decode_reply(bad)


def test_held_files_round_trip_and_refuse_what_is_not_one():
    held = HeldFile(("127.0.0.1:8001", "/run/a.sock"), (1000, 1000))
    assert HeldFile.loads(held.dumps()) == held
    sleeps = HeldFile(("127.0.0.1:8001",), wake="/run/a.ondemand")
    assert HeldFile.loads(sleeps.dumps()) == sleeps
    assert HeldFile.loads(HeldFile(("127.0.0.1:8001",)).dumps()).owner is None
    for bad in (
        "[]",
        "{}",
        '{"addresses": []}',
        '{"addresses": [1]}',
        "nope",
        '{"addresses": ["a"], "owner": [1]}',
        '{"addresses": ["a"], "owner": "root"}',
        '{"addresses": ["a"], "wake": "127.0.0.1:80"}',
        '{"addresses": ["a"], "wake": 1}',
    ):
        with pytest.raises(ValueError):
            HeldFile.loads(bad)


def test_addresses_and_fd_names():
    assert split_tcp("127.0.0.1:8001") == ("127.0.0.1", 8001)
    assert split_tcp(":80") == ("0.0.0.0", 80)
    assert split_tcp("[::1]:80") == ("::1", 80)
    assert split_tcp("/run/a.sock") is None
    assert held_fd_urls(2) == [f"fd://{FD_BASE}", f"fd://{FD_BASE + 1}"]


def test_the_vassal_is_named_by_the_config_the_emperor_gives_it():
    assert heldwrap.vassal_name(["--ini", "emperor://bs1.V.A.ini"]) == "bs1.V.A.ini"
    assert heldwrap.vassal_name(["--ini", "/h/run/configs/bs1.V.A.ini", "--x"]) == "bs1.V.A.ini"
    assert heldwrap.vassal_name(["--set", "a=b", "--ini", "bs1.V.A.ini"]) == "bs1.V.A.ini"
    assert heldwrap.vassal_name(["--version"]) == ""


@pytest.fixture
def holder(tmp_path):
    folder = tmp_path / "held"
    folder.mkdir()
    running = Holder(str(tmp_path / "h.sock"), str(folder))
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    poll(lambda: os.path.exists(running.socket_path), 5)
    yield running
    running.stop()
    thread.join(5)


def _hold(holder, name: str, *addresses: str) -> None:
    with open(os.path.join(holder.folder, name + ".json"), "w") as file:
        file.write(HeldFile(addresses).dumps())


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_vassal_is_handed_its_own_sockets_only(holder, tmp_path):
    mine, other = free_port(), free_port()
    path = str(tmp_path / "a.sock")
    _hold(holder, "a.ini", f"127.0.0.1:{mine}", path)
    _hold(holder, "b.ini", f"127.0.0.1:{other}")
    fds = ask(holder.socket_path, "a.ini")
    try:
        names = [socket.socket(fileno=os.dup(fd)).getsockname() for fd in fds]
    finally:
        for fd in fds:
            os.close(fd)
    assert names == [("127.0.0.1", mine), path]
    assert ask(holder.socket_path, "nobody.ini") == []
    assert ask(holder.socket_path, "../a.ini") == []


def test_a_held_port_queues_connections_while_nobody_accepts(holder):
    port = free_port()
    _hold(holder, "a.ini", f"127.0.0.1:{port}")
    poll(lambda: f"127.0.0.1:{port}" in held_addresses(holder.socket_path), 5)
    assert _connects(port)  # no process of the vassal runs: the backlog takes it


def test_a_connection_waiting_at_a_sleeping_vassals_port_wakes_it(holder, tmp_path):
    """The wake socket stands for the Emperor's on-demand socket: the holder connects
    there when a connection waits at the vassal's held port, again while it waits (the
    Emperor may not listen yet), and not while none waits."""
    port, wake = free_port(), str(tmp_path / "a.ondemand")
    emperor = socket.socket(socket.AF_UNIX)
    emperor.bind(wake)
    emperor.listen(16)
    emperor.settimeout(10)
    with open(os.path.join(holder.folder, "a.ini.json"), "w") as file:
        file.write(HeldFile((f"127.0.0.1:{port}",), wake=wake).dumps())
    poll(lambda: f"127.0.0.1:{port}" in held_addresses(holder.socket_path), 5)
    with emperor, socket.create_connection(("127.0.0.1", port), timeout=5):
        woken, _ = emperor.accept()
        assert woken.recv(1) == b""  # connected, said nothing, closed
        again, _ = emperor.accept()  # it still waits: told again
        again.close()
        woken.close()
        # the vassal accepts what waited: the holder tells nobody any more
        fds = ask(holder.socket_path, "a.ini")
        vassal = socket.socket(fileno=fds[0])
        vassal.settimeout(5)
        vassal.accept()[0].close()
        vassal.close()
        emperor.settimeout(2 * WAKE_AGAIN + 0.5)
        late = 0  # one may have been on its way as it was accepted
        with pytest.raises(TimeoutError):
            while late < 3:
                emperor.accept()[0].close()
                late += 1


def test_a_holder_started_with_sockets_holds_them_with_what_waits(tmp_path):
    """A copy of a held socket outlives the holder that held it (killed), and the next
    holder, given it, holds the same socket: a connection made in between is there."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    folder = tmp_path / "held"
    folder.mkdir()
    (folder / "a.ini.json").write_text(HeldFile((f"127.0.0.1:{port}",)).dumps())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as waiting:
        waiting.sendall(b"ping")
        running = Holder(
            str(tmp_path / "h.sock"),
            str(folder),
            inherited={f"127.0.0.1:{port}": listener.detach()},
        )
        thread = threading.Thread(target=running.serve, daemon=True)
        thread.start()
        try:
            poll(lambda: os.path.exists(running.socket_path), 5)
            assert held_addresses(running.socket_path) == {f"127.0.0.1:{port}"}
            (fd,) = ask(running.socket_path, "a.ini")
            with socket.socket(fileno=fd) as vassal:
                vassal.settimeout(5)
                conn, _ = vassal.accept()
                with conn:
                    assert conn.recv(4) == b"ping"
        finally:
            running.stop()
            thread.join(5)


def test_what_no_file_lists_is_let_go(holder, tmp_path):
    port, path = free_port(), str(tmp_path / "a.sock")
    _hold(holder, "a.ini", f"127.0.0.1:{port}", path)
    poll(lambda: len(held_addresses(holder.socket_path)) == 2, 5)
    os.unlink(os.path.join(holder.folder, "a.ini.json"))
    poll(lambda: not held_addresses(holder.socket_path), 5)
    assert not _connects(port) and not os.path.exists(path)


def test_a_port_bound_elsewhere_is_waited_for_then_held(holder):
    """The workers of a master killed before the holder held its port let go of it a
    moment later: the request waits for it rather than fail."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    _hold(holder, "a.ini", f"127.0.0.1:{port}")
    threading.Timer(0.3, busy.close).start()
    fds = ask(holder.socket_path, "a.ini")
    assert len(fds) == 1
    os.close(fds[0])


def test_a_unix_socket_whose_path_was_removed_is_bound_again(holder, tmp_path):
    """uWSGI's vacuum spares a socket it did not bind, but a path removed by hand must
    not leave the next vassal with a socket the router cannot reach."""
    path = str(tmp_path / "a.sock")
    _hold(holder, "a.ini", path)
    for fd in ask(holder.socket_path, "a.ini"):
        os.close(fd)
    os.unlink(path)
    fds = ask(holder.socket_path, "a.ini")
    for fd in fds:
        os.close(fd)
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)


FAKE_UWSGI = f"""import os, socket, sys
held = os.environ.get("{HELD_ENV}")
names = []
for fd in range({FD_BASE}, {FD_BASE} + int(held or 0)):
    names.append(str(socket.socket(fileno=os.dup(fd)).getsockname()))
print(held, sys.argv[1:], names)
"""


# The wrapper as Python, and compiled from heldwrap.c: the same behaviour either way.
WRAPPERS = ("python", "compiled")


def _wrapper(kind: str, tmp_path) -> list[str]:
    if kind == "python":
        return [
            sys.executable,
            "-IS",
            os.path.join(os.path.dirname(heldwrap.__file__), "heldwrap.py"),
        ]
    if heldbuild.compiler() is None:
        pytest.skip("no C compiler: the Python wrapper runs in its place")
    built = heldbuild.build(str(tmp_path), heldbuild.user_cache("backstage"))
    assert built is not None, "heldwrap.c did not compile"
    return [built]


def _command(kind: str, tmp_path, holder_path: str, *args: str, uwsgi: str = "") -> list[str]:
    """The wrapper's command line, its uwsgi a Python script (`uwsgi`, FAKE_UWSGI by
    default) that prints what it was given."""
    fake = tmp_path / "uwsgi"
    fake.write_text(f"#!{sys.executable}\n{uwsgi or FAKE_UWSGI}")
    fake.chmod(0o700)
    return [*_wrapper(kind, tmp_path), holder_path, str(fake), "--", *args]


def _wrap(kind: str, tmp_path, holder_path: str, *args: str) -> str:
    command = _command(kind, tmp_path, holder_path, *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout


@pytest.mark.parametrize("kind", WRAPPERS)
def test_the_wrapper_puts_the_sockets_where_the_config_names_them(holder, tmp_path, kind):
    port = free_port()
    _hold(holder, "a.ini", f"127.0.0.1:{port}", str(tmp_path / "a.sock"))
    out = _wrap(kind, tmp_path, holder.socket_path, "--ini", "emperor://a.ini")
    assert out.startswith("2 ['--ini', 'emperor://a.ini'] ")
    assert f"('127.0.0.1', {port})" in out and "a.sock" in out
    # named by a path (the directory channel), and a vassal with nothing held
    out = _wrap(kind, tmp_path, holder.socket_path, "--ini", "/some/dir/a.ini")
    assert out.startswith("2 ['--ini', '/some/dir/a.ini'] ")
    out = _wrap(kind, tmp_path, holder.socket_path, "--ini", "emperor://b.ini")
    assert out.startswith("None ['--ini', 'emperor://b.ini'] []")


@pytest.mark.parametrize("kind", WRAPPERS)
def test_without_a_holder_the_vassal_still_starts(tmp_path, kind):
    out = _wrap(kind, tmp_path, str(tmp_path / "none.sock"), "--ini", "emperor://a.ini")
    assert out.startswith("None ['--ini', 'emperor://a.ini'] []")


@pytest.mark.parametrize("kind", WRAPPERS)
def test_the_wrapper_never_takes_an_fd_the_emperor_passed(holder, tmp_path, kind):
    port = free_port()
    _hold(holder, "a.ini", f"127.0.0.1:{port}")
    command = _command(kind, tmp_path, holder.socket_path, "--ini", "a.ini")
    taken = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(taken, FD_BASE)
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=True, pass_fds=(FD_BASE,)
        ).stdout
    finally:
        os.close(FD_BASE)
        os.close(taken)
    assert out.startswith("None ['--ini', 'a.ini'] []")


MOVED_UWSGI = """import os, sys
fd = int(os.environ["UWSGI_EMPEROR_FD"])
os.write(fd, b"still the Emperor's pipe")
print(os.environ.get("UWSGI_HELD_SOCKETS"), fd)
"""


@pytest.mark.parametrize("kind", WRAPPERS)
def test_the_emperors_pipe_where_a_held_socket_goes_is_moved_and_still_named(
    holder, tmp_path, kind
):
    """An Emperor with a few dozen vassals passes its pipe to one at FD_BASE: moved
    above the held ones, its variable following, rather than the vassal left to bind
    its sockets itself (and fail: the holder has them)."""
    port = free_port()
    _hold(holder, "a.ini", f"127.0.0.1:{port}")
    command = _command(kind, tmp_path, holder.socket_path, "--ini", "a.ini", uwsgi=MOVED_UWSGI)
    read, write = os.pipe()
    try:
        os.dup2(write, FD_BASE)
        env = dict(os.environ, UWSGI_EMPEROR_FD=str(FD_BASE))
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            pass_fds=(FD_BASE,),
            env=env,
        ).stdout
    finally:
        os.close(FD_BASE)
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"still the Emperor's pipe"
    held, fd = out.split()
    assert held == "1" and int(fd) >= FD_BASE + 1


def test_the_compiled_wrapper_is_built_once_into_a_cache_only_its_user_may_write(
    tmp_path, monkeypatch
):
    if heldbuild.compiler() is None:
        pytest.skip("no C compiler: the Python wrapper runs in its place")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    built = heldbuild.build(str(first), heldbuild.user_cache("backstage"))
    assert built is not None and os.path.dirname(built) == str(first)
    cached = tmp_path / "cache" / "backstage" / os.path.basename(built)
    assert cached.exists()
    cached.write_bytes(b"#!/bin/sh\necho from-the-cache\n")  # copied, not built again
    copied = heldbuild.build(str(second), heldbuild.user_cache("backstage"))
    assert copied is not None and open(copied, "rb").read().startswith(b"#!/bin/sh")
    os.chmod(tmp_path / "cache" / "backstage", 0o777)  # others may write it: not used
    third = tmp_path / "third"
    third.mkdir()
    own = heldbuild.build(str(third), heldbuild.user_cache("backstage"))
    assert own is not None and open(own, "rb").read().startswith(b"\x7fELF")


def test_without_a_compiler_there_is_no_compiled_wrapper(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-cc"))
    assert heldbuild.build(str(tmp_path), heldbuild.user_cache("backstage")) is None
    assert [name for name in os.listdir(tmp_path) if name.startswith("heldwrap")] == []
