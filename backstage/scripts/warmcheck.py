"""A warm check for one Act: its app imported and checked once, each later check forked.

Run as `python warmcheck.py SOCKET KEY VERSION` with the Venue's Python, in the project's
folder and with the environment of the cold check (`appcheck.py`, run by
`control/build/checkrun.py`). It listens on the unix socket SOCKET (SOCK_SEQPACKET); a
request is one message: JSON {"key": KEY, "command": appcheck's COMMAND}, carrying two
file descriptors, the run's stdin and its stdout (stderr too). Answers on the same
connection, one JSON message each: {"pid": N} (the process to kill, with its group, when
a phase runs past its budget; a later one replaces it), then {"exit": code} once the run
ended, or {"stale": why} before anything ran (the caller then starts another).

The first request is checked in this process itself, as the cold check would: the app
imported, Django's checks, its output on the request's stdout. What the import read is
noted: every file opened or imported (by content inside VERSION, the folder of the version
checked; by size and time outside it), the folders on sys.path, and the names of the
files in VERSION. The rest of that run (hold, release steps) is forked, so that what a
step changes never stays here. A later request is a fork of this process that runs the
whole check and the steps, without the interpreter's start and the app's import: as long
as nothing noted changed, the imported modules are what a fresh import of the new version
would make. When something changed (a module edited, a file added or removed, a package
installed), or the import was not one that a fork may reuse (it opened a database file or
left a thread running), the answer is "stale" and this process ends.

It ends too when idle for IDLE seconds, when SOCKET is removed or replaced, or on SIGTERM.
Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import hashlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time

IDLE = 900.0
MESSAGE = 1 << 20
SKIPPED = ("__pycache__",)
SYSTEM = ("/proc/", "/sys/", "/dev/")  # read anew each time: not what the import was made of
WRITING = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "_backstage_appcheck", os.path.join(_here, "appcheck.py")
)
assert _spec is not None and _spec.loader is not None
appcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(appcheck)


class Reads:
    """What the process reads while recording: files opened for reading, and whether it
    opened a database file."""

    def __init__(self) -> None:
        self.recording = False
        self.opened: set = set()
        self.database = ""

    def hook(self, event: str, args: tuple) -> None:
        if not self.recording:
            return
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            mode, flags = args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else 0
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                return
            if isinstance(flags, int) and flags & WRITING:
                return
            self.opened.add(os.path.abspath(os.fsdecode(args[0])))
        elif event == "sqlite3.connect" and args and str(args[0]) not in ("", ":memory:"):
            self.database = self.database or str(args[0])


READS = Reads()


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


def digest(path: str) -> str:
    try:
        with open(path, "rb") as source:
            return hashlib.sha256(source.read()).hexdigest()
    except OSError:
        return "-"


def stamp(path: str) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return "-"
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"


def listing(version: str, skipped: tuple) -> list:
    """The names of the files and folders in the version, less what the app writes."""
    names = []
    for parent, folders, files in os.walk(version):
        folders[:] = sorted(
            f
            for f in folders
            if f not in SKIPPED and not any(inside(os.path.join(parent, f), s) for s in skipped)
        )
        relative = os.path.relpath(parent, version)
        names += [os.path.join(relative, f) + "/" for f in folders]
        names += sorted(
            os.path.join(relative, f)
            for f in files
            if not f.endswith(".pyc")
            and not any(inside(os.path.join(parent, f), s) for s in skipped)
        )
    return names


class Noted:
    """What the app's import read, to tell whether a fork of this process may check a
    new version."""

    def __init__(self, version: str, skipped: tuple) -> None:
        self.version, self.skipped = version, skipped
        paths = {p for p in READS.opened if not p.startswith(SYSTEM)}
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                paths.add(os.path.abspath(path))
        # a module's cached bytecode is its source's: that is what is noted
        self.paths = sorted(
            p for p in paths if not p.endswith(".pyc") and "__pycache__" not in p.split(os.sep)
        )
        # where packages are installed: one installed or removed changes the folder (a
        # package the app only tries to import is in no file it read)
        self.folders = sorted(
            {p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")}
        )
        self.state = self.now()

    def now(self) -> tuple:
        files = [(p, digest(p) if inside(p, self.version) else stamp(p)) for p in self.paths]
        folders = [(p, stamp(p)) for p in self.folders]
        return files, folders, listing(self.version, self.skipped)

    def changed(self) -> str:
        files, folders, names = self.now()
        old_files, old_folders, old_names = self.state
        for (path, was), (_, now) in zip(old_files, files, strict=True):
            if was != now:
                return f"{path} changed"
        if folders != old_folders:
            return "a package was installed or removed"
        if names != old_names:
            return f"files were added or removed in {self.version}"
        return ""


def send(conn: socket.socket, data: dict) -> None:
    try:
        conn.send(json.dumps(data).encode())
    except OSError:
        pass  # the caller is gone: the run ends as it would


def devnull_over(fds: tuple) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)


def run_forked(conn: socket.socket, fds: list, command: dict, environment: dict, cwd: str) -> int:
    """The run of `command` in a child of a child of this process: the child (a session of
    its own, which the caller kills whole when it overruns) runs it on the request's
    streams; its parent says its pid and its end on `conn`. The waiter's pid."""
    waiter = os.fork()
    if waiter:
        return waiter
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        child = os.fork()
        if child == 0:
            os.setsid()
            os.dup2(fds[0], 0)
            os.dup2(fds[1], 1)
            os.dup2(fds[1], 2)
            for fd in fds:
                os.close(fd)
            conn.close()
            os._exit(serve_run(command, environment, cwd))
        for fd in fds:
            os.close(fd)
        devnull_over((0, 1, 2))
        send(conn, {"pid": child})
        _, status = os.waitpid(child, 0)
        send(conn, {"exit": os.waitstatus_to_exitcode(status)})
    finally:
        os._exit(0)


def serve_run(command: dict, environment: dict, cwd: str) -> int:
    return appcheck.in_folder(cwd, lambda: appcheck.main(command, environment))


def first(conn: socket.socket, fds: list, command: dict, environment: dict, cwd: str, version: str):
    """The first request, checked here; what it read noted, or None when this process
    cannot serve another."""
    send(conn, {"pid": os.getpid()})
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    os.dup2(fds[1], 2)
    READS.recording = True
    try:
        code, found = appcheck.checked(command)
        if code == 0 and command.get("django") and appcheck.migrates(command):
            appcheck.guarded(appcheck.migration_modules)  # what migrate's plan imports
    finally:
        READS.recording = False
        sys.stdout.flush()
        sys.stderr.flush()
    noted = None
    if code == 0:
        skipped = tuple(
            os.path.abspath(str(p)) for p in [*found.get("data", []), found.get("static_root")] if p
        )
        noted = Noted(version, skipped)
        if command.get("django"):
            appcheck.guarded(appcheck.close_connections)
        rest = dict(command, wsgi=None)  # checked: the hold and the steps, forked
        run_forked(conn, fds, rest, environment, cwd)
    else:
        send(conn, {"exit": code})
    for fd, original in zip((0, 1, 2), saved, strict=True):
        os.dup2(original, fd)
        os.close(original)
    for fd in fds:
        os.close(fd)
    if READS.database or threading.active_count() > 1:
        return None  # a fork would share its connection, or lose its threads
    return noted


def serve(path: str, key: str, version: str) -> int:
    """Until idle, removed or told to end (then its socket and pidfile go with it), or
    until a request it cannot take (then the caller, who starts another, removes them)."""
    if listen(path, key, version) == IDLED:
        for left in (path, path + ".pid"):
            try:
                os.unlink(left)
            except OSError:
                pass
    return 0


IDLED = 3


def listen(path: str, key: str, version: str) -> int:
    environment, cwd = dict(os.environ), os.getcwd()
    sys.addaudithook(READS.hook)
    if sys.path and sys.path[0] == _here:
        sys.path[0] = ""  # as `python -c` has it: the project's folder, not this one's
    ending = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: ending.set())
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(8)
    server.settimeout(1.0)
    bound = os.stat(path).st_ino
    noted = None
    served = 0
    last = time.monotonic()
    while True:
        if ending.is_set() or time.monotonic() - last > IDLE:
            return IDLED
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        if stamp(path).split(":")[-1] != str(bound):
            return 0  # removed, or another took its place
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        last = time.monotonic()
        with conn:
            try:
                message, fds, _, _ = socket.recv_fds(conn, MESSAGE, 2)
                request = json.loads(message)
            except (OSError, ValueError):
                continue
            if len(fds) != 2 or request.get("key") != key:
                for fd in fds:
                    os.close(fd)
                send(conn, {"stale": "another check is asked for"})
                return 0
            command = request["command"]
            if served == 0:
                served = 1
                noted = first(conn, fds, command, environment, cwd, version)
                if noted is None:
                    return 0
                continue
            why = noted.changed() if noted is not None else "nothing noted"
            if why:
                for fd in fds:
                    os.close(fd)
                send(conn, {"stale": why})
                return 0
            run_forked(conn, fds, command, environment, cwd)
            for fd in fds:
                os.close(fd)


def detached(path: str) -> bool:
    """In a session of its own, no longer the starter's child, its pid in PATH.pid; True
    in the process that goes on."""
    child = os.fork()
    if child == 0:
        os.setsid()
        return True
    with open(path + ".pid.tmp", "w") as out:
        out.write(f"{child}\n")
    os.replace(path + ".pid.tmp", path + ".pid")
    return False


if __name__ == "__main__":
    if detached(sys.argv[1]):
        sys.exit(serve(*sys.argv[1:4]))
