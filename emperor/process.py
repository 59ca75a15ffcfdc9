"""A uWSGI Emperor as a process: start it, find it again, stop it.

The Emperor is started with `--emperor-stats` (never `--stats` or
`--master-fifo`, which would silently put a master above it) and a pidfile,
so any later process can find it and ask it how it is doing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence

from .atomic import unlink_if_present
from .binary import UwsgiBinary
from .channel import Channel
from .errors import EmperorStartError
from .stats import EmperorStats, parse_emperor_stats, read_stats, stats_or_none


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state == b"Z":
        try:  # reap it if it is ours
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def started(pid: int) -> float | None:
    """The unix time a process started (its fork; an exec keeps it); None when gone."""
    forked = forked_since_boot(pid)
    try:
        with open("/proc/stat", "rb") as kernel:
            boot = next(int(line.split()[1]) for line in kernel if line.startswith(b"btime "))
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return None if forked is None else boot + forked


def since_boot() -> float:
    """Seconds since the machine booted, the clock `forked_since_boot` speaks in."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def forked_since_boot(pid: int) -> float | None:
    """When a process started, in seconds since boot to the kernel's tick (10 ms): finer
    than `started`, whose boot time is in whole seconds. None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return [part.decode(errors="replace") for part in raw.read().split(b"\0") if part]
    except OSError:
        return []


def process_names(prefix: str) -> list[str]:
    """The command lines (as the processes show them, after any renaming, the parts
    joined by spaces) of live processes whose command line begins with `prefix`."""
    wanted = prefix.encode()
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as raw:
                line = raw.read()
        except OSError:
            continue
        if line.startswith(wanted) and pid_alive(int(entry)):
            found.append(line.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


def pids_named(prefix: str) -> list[int]:
    """Live processes whose command line (as they show it, after any renaming) begins
    with `prefix`."""
    wanted = prefix.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as raw:
                if not raw.read().startswith(wanted):
                    continue
        except OSError:
            continue
        if pid_alive(int(entry)):
            found.append(int(entry))
    return found


def emperor_in(directory: str) -> int | None:
    """The pid of a uwsgi Emperor that watches `directory`, or None. It needs no pidfile
    (Debian's systemd unit keeps none): its dir monitor works in the directory, which
    /proc tells of a process this user may trace, and its command line names the
    directory, or an ini file that does (`uwsgi --ini /etc/uwsgi-emperor/emperor.ini`),
    which /proc tells of any. A vassal that inherited the directory is told apart by its
    parent, which works there too; an Emperor under a master, by its master."""
    wanted = os.path.realpath(directory)
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        pid = int(entry)
        args = cmdline(pid)
        # "uWSGI Emperor" once it names itself (`auto-procname`, `emperor-procname`)
        if not (args and os.path.basename(args[0]).lower().startswith("uwsgi")):
            continue
        if (works_in(pid, wanted) or watches(args, wanted)) and pid_alive(pid):
            found.add(pid)
    roots = [pid for pid in found if parent_of(pid) not in found]
    return min(roots, default=None)


def works_in(pid: int, directory: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/cwd") == directory
    except OSError:  # another user's, or one that changed its uid: not ours to trace
        return False


def watches(args: Sequence[str], directory: str) -> bool:
    """A uwsgi command line makes an Emperor of `directory` (a real path): `--emperor DIR`
    (or a glob in it), or an `--ini FILE` with an absolute path whose `emperor` says so."""
    for option, value in _options(args):
        if option == "emperor" and _names(value, directory):
            return True
        if option == "ini" and os.path.isabs(value):
            if any(_names(v, directory) for o, v in ini_options(value) if o == "emperor"):
                return True
    return False


def _options(args: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(option, value) of `--option value` and `--option=value` in a command line."""
    for index, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        option, equals, value = arg[2:].partition("=")
        if equals:
            yield option, value
        elif index + 1 < len(args):
            yield option, args[index + 1]


def ini_options(path: str) -> list[tuple[str, str]]:
    """(option, value) of every `option = value` line of an ini file; [] when unreadable."""
    try:
        with open(path, errors="replace") as ini:
            lines = ini.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        option, equals, value = line.partition("=")
        if equals and not line.lstrip().startswith((";", "#", "[")):
            found.append((option.strip(), value.strip()))
    return found


def _names(monitor: str, directory: str) -> bool:
    """An Emperor's monitor argument is this directory, or a glob of files in it."""
    if any(char in monitor for char in "*?["):
        monitor = os.path.dirname(monitor)
    return os.path.isabs(monitor) and os.path.realpath(monitor) == directory


def parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid: int) -> frozenset[int] | None:
    """The pids of a process's children (an Emperor's: its vassal masters), from one
    read of /proc however many there are; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as listing:
            return frozenset(int(child) for child in listing.read().split())
    except (OSError, ValueError):
        return None


def read_pidfile(path: str) -> int | None:
    try:
        with open(path) as pidfile:
            return int(pidfile.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Emperor:
    """One Emperor, known by its stats socket and pidfile. Constructing it does nothing."""

    def __init__(
        self,
        binary: UwsgiBinary,
        channel: Channel,
        stats: str,
        pidfile: str,
        logfile: str,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.channel = channel
        self.stats_path = stats
        self.pidfile = pidfile
        self.logfile = logfile
        self.extra_args = list(extra_args)
        self.env = env
        self._child: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        args = [
            self.binary.path,
            "--emperor",
            self.channel.monitor(),
            "--emperor-stats",
            self.stats_path,
            "--emperor-pidfile",
            self.pidfile,
            # its stats socket is its owner's alone (it does not reach the vassals); "="
            # as the value is optional: alone, it would be read as a config file
            "--chmod-socket=600",
        ]
        return args + self.channel.emperor_args() + self.extra_args

    @staticmethod
    def find(stats_path: str, pidfile: str) -> int | None:
        """The pid of the Emperor with this stats socket, checked against its command
        line because pids are reused; None when it is not running."""
        pid = read_pidfile(pidfile)
        if pid is None or not pid_alive(pid) or stats_path not in cmdline(pid):
            return None
        return pid

    def pid(self) -> int | None:
        return self.find(self.stats_path, self.pidfile)

    def alive(self) -> bool:
        return self.pid() is not None

    def stats(self, timeout: float = 1.0) -> EmperorStats:
        return parse_emperor_stats(read_stats(self.stats_path, timeout))

    def answering(self) -> bool:
        return stats_or_none(self.stats_path, parse_emperor_stats, 0.5) is not None

    def start(self, timeout: float = 20.0) -> int:
        for stale in (self.stats_path, self.pidfile):
            unlink_if_present(stale)
        self.channel.prepare()
        # The log is its owner's alone.
        log = os.fdopen(os.open(self.logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
        try:
            self._child = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's ^C reaches us, not the Emperor
                env=self.env,
            )
        except OSError as exc:
            raise EmperorStartError(f"cannot start the Emperor: {exc}") from exc
        finally:
            log.close()
        child = self._child
        up = wait_for(lambda: child.poll() is not None or self.answering(), timeout)
        if child.poll() is not None or not up:
            self._kill_child()
            raise EmperorStartError(
                f"the Emperor did not come up: {telling_line(tail(self.logfile, 30))}"
            )
        self.channel.secure()
        return child.pid

    def _kill_child(self) -> None:
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()

    def reap(self) -> None:
        """Collect our child if it exited, so it does not linger as a zombie."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None

    def signal(self, signum: int) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signum)
        return True

    def clear_blacklist(self) -> bool:
        return self.signal(signal.SIGURG)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the Emperor and with it every vassal; SIGKILL what outlives `timeout`."""
        pid = self.pid()
        if pid is None:
            self.reap()
            return
        stop_pid(pid, timeout)
        if self._child is not None:
            self._child.wait()
            self._child = None
        self.channel.close()


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """Stop the Emperor at `pid` (SIGINT: every vassal goes with it); SIGKILL it if it
    outlives `timeout`. Needs nothing but the pid: not the binary, not the channel."""
    os.kill(pid, signal.SIGINT)
    if not wait_for(lambda: not pid_alive(pid), timeout, 0.01):
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 5.0)


def tail(path: str, lines: int = 20) -> str:
    """The last `lines` lines of a log file, or "" when there is none."""
    if lines <= 0:
        return ""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - 64 * 1024))
            data = log.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


# What a failed uWSGI start is most likely explained by, best first.
_TELLING = (
    re.compile(r"^[A-Za-z_.]*(Error|Exception)\b"),  # a Python exception
    re.compile(r"unrecognized|invalid|cannot|unable|probably another|No such|denied"),
    re.compile(r"error|Error|OOPS"),
)


# uWSGI's report of a failed system call: `mmap(): Cannot allocate memory [core/utils.c
# line 2238]`. The first is the cause; those after it are its cleanup failing in turn,
# and an unlink() is always cleanup (its exit removing what it made).
_SYSCALL = re.compile(r"^(?!unlink\()\w+\(\): .+ \[\S+ line \d+\]$")
# What a master says as it gives up: the line before it is why.
_GIVING_UP = "...brutally killing workers..."


def telling_line(log_text: str) -> str:
    """The line of a log that best explains a failure: a Python exception, else the
    first system call uWSGI saw fail, else what it said last before it gave up, else
    uWSGI's own complaint, else the last line."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for line in reversed(lines):
        if _TELLING[0].search(line):
            return line
    for line in lines:
        if _SYSCALL.match(line):
            return line
    for before, line in zip(reversed(lines[:-1]), reversed(lines[1:]), strict=True):
        if line == _GIVING_UP:
            return before
    for pattern in _TELLING[1:]:
        for line in reversed(lines):
            if pattern.search(line):
                return line
    return lines[-1] if lines else "(the log is empty)"
