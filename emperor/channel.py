"""How vassal configs reach an Emperor: its zmq channel or its directory.

zmq channel (plugin `emperor_zeromq`): the Emperor binds a PULL socket, we
connect PUSH and send multipart messages `[cmd, name, config?, uid?, gid?,
on_demand_socket?]`. `touch` creates or reloads a vassal, `destroy` stops it.
Two traps shape the code: a message of exactly five frames is misread by the
Emperor, so two, three or six are sent (an on-demand vassal's uid and gid frames
empty: the Emperor's own); and a second `touch` of one vassal in the same second is
ignored, so callers space them.

On demand: the Emperor binds the socket named (`HOST:PORT` is TCP, else a unix
path), spawns the vassal at the first connection and hands it the socket as its
fd 0 (`http-socket = fd://0` takes it); `idle` + `die-on-idle` send it back to
waiting. The dir channel says the same with a file `NAME.ini.socket` beside the
config, read by an Emperor started with `--emperor-on-demand-extension .socket`.

A config that re-execs the vassal into another uwsgi (`unprivileged-binary-patch`,
one uwsgi per Python) cannot come in a config frame: the new binary reads
`--ini emperor://NAME` again, from a pipe already drained ("error waiting for config
header"). Such a config is written to a file and pushed as a two-frame `touch` of its
absolute path; the Emperor then lists the vassal by that path (`vassal_name` gives
back the plain name) and the binary reads the file as often as it likes.

dir channel: the Emperor scans a directory; a written file spawns or reloads,
a removed one stops. Files are written atomically and their mtime is always
pushed forward, because the Emperor compares mtimes at one-second resolution.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Protocol

from .atomic import unlink_if_present, write_atomic
from .binary import UwsgiBinary

if TYPE_CHECKING:
    import zmq

VASSAL_SUFFIX = ".ini"
ON_DEMAND_SUFFIX = ".socket"  # the dir channel's `--emperor-on-demand-extension`


def touch_frames(name: str, config: str, on_demand: str = "") -> list[bytes]:
    _check_name(name)
    frames = [b"touch", name.encode(), config.encode()]
    if on_demand:
        frames += [b"", b"", on_demand.encode()]  # six frames: five are misread
    return frames


def destroy_frames(name: str) -> list[bytes]:
    _check_name(name)
    return [b"destroy", name.encode()]


def touch_file_frames(path: str) -> list[bytes]:
    """Touch a vassal whose config the Emperor reads from the file at `path`."""
    _check_name(os.path.basename(path))
    if not os.path.isabs(path):
        raise ValueError(f"{path!r}: the Emperor reads a relative name in its own cwd")
    return [b"touch", path.encode()]


def destroy_file_frames(path: str) -> list[bytes]:
    _check_name(os.path.basename(path))
    return [b"destroy", path.encode()]


# Options that have a vassal exec another uwsgi binary, which reads its config again.
REEXEC_OPTIONS = ("unprivileged-binary-patch", "privileged-binary-patch")


def reexecs(config: str) -> bool:
    """True when an ini config has its vassal exec another binary."""
    for line in config.splitlines():
        option = line.partition("=")[0].strip()
        if option in REEXEC_OPTIONS:
            return True
    return False


def vassal_name(vassal_id: str) -> str:
    """The plain vassal name of an id the Emperor lists: a vassal pushed by the absolute
    path of its config file is listed by that path."""
    return os.path.basename(vassal_id) if os.path.isabs(vassal_id) else vassal_id


def _check_name(name: str) -> None:
    # The Emperor silently ignores names without a config extension.
    if not name.endswith(VASSAL_SUFFIX) or "/" in name or name.startswith("."):
        raise ValueError(f"bad vassal name {name!r}: a plain file name ending in {VASSAL_SUFFIX}")


class Channel(Protocol):
    kind: str

    def monitor(self) -> str:
        """The `--emperor` argument that makes an Emperor listen here."""

    def prepare(self) -> None:
        """Make ready what must exist before the Emperor starts."""

    def emperor_args(self) -> list[str]:
        """What the Emperor's command line needs beside the monitor."""

    def secure(self) -> None:
        """Once the Emperor listens: its endpoint is its owner's alone."""

    def touch(self, name: str, config: str, on_demand: str = "") -> None:
        """Create or reload a vassal; with `on_demand` (an address), one the Emperor
        spawns at the first connection there."""

    def destroy(self, name: str) -> None: ...

    def close(self) -> None: ...


class ZmqChannel:
    kind = "zmq"

    def __init__(self, path: str, files: str | None = None) -> None:
        """`path` is the ipc endpoint's; `files` the folder for configs that must be read
        from a file (default: `configs` beside the endpoint)."""
        self.path = path
        self.endpoint = f"ipc://{path}"
        self.files = files or os.path.join(os.path.dirname(path), "configs")
        self._socket: zmq.Socket[bytes] | None = None

    def monitor(self) -> str:
        return f"zmq://{self.endpoint}"

    def prepare(self) -> None:
        # A stale ipc file from a killed Emperor would be rebound anyway; remove it
        # so a fresh Emperor never races an old path.
        unlink_if_present(self.path)

    def _push(self, frames: list[bytes]) -> None:
        import zmq

        if self._socket is None:
            sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUSH)
            # Never block forever on a vanished Emperor, neither in send nor at close.
            sock.setsockopt(zmq.SNDTIMEO, 2000)
            sock.setsockopt(zmq.LINGER, 2000)
            sock.connect(self.endpoint)
            self._socket = sock
        self._socket.send_multipart(frames)

    def emperor_args(self) -> list[str]:
        return []

    def secure(self) -> None:
        # libzmq binds the ipc socket with the Emperor's umask, which its vassals
        # inherit and so is left as it is: connecting is writing, so 0600
        with contextlib.suppress(FileNotFoundError):
            os.chmod(self.path, 0o600)

    def touch(self, name: str, config: str, on_demand: str = "") -> None:
        if not reexecs(config):
            self._push(touch_frames(name, config, on_demand))
            return
        if on_demand:
            # read from its file, which the re-exec'd binary reads again: no frame is left
            # to name an on-demand socket in
            raise ValueError(f"{name} re-execs into another uwsgi and cannot sleep")
        _check_name(name)
        os.makedirs(self.files, mode=0o700, exist_ok=True)
        path = os.path.join(self.files, name)
        write_atomic(path, config, 0o600, advance_mtime=True)
        self._push(touch_file_frames(path))

    def destroy(self, name: str) -> None:
        path = os.path.join(self.files, name)
        if os.path.exists(path):  # pushed as a file: the Emperor knows it by its path
            self._push(destroy_file_frames(path))
            unlink_if_present(path)
            return
        self._push(destroy_frames(name))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class DirChannel:
    kind = "dir"

    def __init__(self, directory: str, files: str | None = None) -> None:
        # `files` is the zmq channel's; here every config is a file in `directory`
        self.directory = directory

    def monitor(self) -> str:
        return self.directory

    def prepare(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)

    def secure(self) -> None:
        pass  # its directory is made 0700 by prepare()

    def emperor_args(self) -> list[str]:
        # the default 3 s makes every start slower
        return ["--emperor-freq", "1", "--emperor-on-demand-extension", ON_DEMAND_SUFFIX]

    def touch(self, name: str, config: str, on_demand: str = "") -> None:
        _check_name(name)
        path = os.path.join(self.directory, name)
        socket_file = path + ON_DEMAND_SUFFIX
        if on_demand:
            write_atomic(socket_file, on_demand + "\n", 0o600, advance_mtime=True)
        else:
            unlink_if_present(socket_file)
        write_atomic(path, config, 0o600, advance_mtime=True)

    def destroy(self, name: str) -> None:
        _check_name(name)
        path = os.path.join(self.directory, name)
        unlink_if_present(path)
        unlink_if_present(path + ON_DEMAND_SUFFIX)

    def close(self) -> None:
        pass


#: Channel kinds, best first; `choose` takes the first the binary can drive.
CHANNELS: dict[str, type[ZmqChannel] | type[DirChannel]] = {"zmq": ZmqChannel, "dir": DirChannel}


def usable(kind: str, binary: UwsgiBinary) -> bool:
    return kind != "zmq" or binary.has_zmq


def kind_of_monitor(monitor: str) -> str:
    """Which channel an Emperor listens on, from the monitor it reports in its stats."""
    return "zmq" if monitor.startswith("zmq://") else "dir"
