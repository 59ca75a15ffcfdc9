"""What every benchmark shares: a scratch folder and Production, timing, HTTP polling
with a deadline, stopping processes, and the printed table.

Waiting is always polling against a deadline; a sleep only paces the polls.
Everything a benchmark starts lives under its scratch folder (short, in /tmp,
because unix socket paths stop at 108 bytes), and whatever is still running
there when the benchmark ends is killed and reported.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from emperor.process import wait_for

if TYPE_CHECKING:
    from backstage import Production
    from backstage.act import Act
    from backstage.control.build.preflight import Check, Preflight

P = ParamSpec("P")
T = TypeVar("T")

# The tests' helpers the benchmarks share (tests/nginx_helpers.py) import from the root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

POLL_INTERVAL = 0.01  # pacing only: fine enough not to blur timings of about a second


# The command line


def arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, **quick: object
) -> argparse.Namespace:
    """The parsed command line. `--quick` puts `quick`'s small sizes in place of the
    options': one small round, as CI runs every benchmark to see that it still works
    (its figures, from one round on a busy machine, are not the ones to report)."""
    sizes = ", ".join(f"--{name} {value}" for name, value in quick.items())
    parser.add_argument("--quick", action="store_true", help=f"one small round ({sizes})")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
    return args


# Scratch space


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[str]:
    """A new short folder in /tmp; afterwards its stray processes are killed and it is removed."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    try:
        yield path
    finally:
        try:
            strays = kill_strays(path)
            if strays:
                print(f"warning: killed strays {strays} left under {path}", file=sys.stderr)
        finally:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def env_set(**variables: str) -> Iterator[None]:
    """Set environment variables for the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def production_in(folder: str) -> Iterator[Production]:
    """A Production at `folder/home`, brought down (Emperor, Acts, Manager) afterwards.

    BACKSTAGE_HOME is set too, so nothing that falls back on the default home can
    touch the user's own ~/.backstage.
    """
    from backstage import Production

    home = os.path.join(folder, "home")
    with env_set(BACKSTAGE_HOME=home):
        production = Production(home)
        # A port range of its own, away from the default, as the tests do: Acts take
        # their ports from it, and nothing else on the host takes them meanwhile.
        first = free_ports(100)
        # Venues as root, asked for: a Venue's own user could not reach the benchmark's
        # 0700 temporary folder
        production.declare(
            ports=(first, first + 98), router=f"127.0.0.1:{first + 99}", venue_user="root"
        )
        try:
            yield production
        finally:
            production.down()


def port_range(setting: str, end: int) -> tuple[int, int]:
    """The ports to draw from (first, last + 1): BENCH_PORTS's `FIRST-LAST` when it is
    set (a run of thousands of Acts kept out of the range others test in), else 20000
    up to `end`, the kernel's first ephemeral port."""
    if not setting:
        return 20000, end
    first, dash, last = setting.partition("-")
    if not (dash and first.isdigit() and last.isdigit() and 0 < int(first) < int(last) < 65536):
        raise SystemExit(f"BENCH_PORTS={setting!r}: write it FIRST-LAST, as 33000-60000")
    return int(first), int(last) + 1


def free_ports(count: int) -> int:
    """The first of `count` ports in a row, each free now, below the kernel's ephemeral
    ports (a client's connection may take any of those) or in BENCH_PORTS, and in the
    share of them that `_run.py` gives this benchmark's lane (BENCH_LANE of
    BENCH_LANES), so that two benchmarks running side by side never draw the same ones."""
    from backstage.control.host.ports import port_free

    with open("/proc/sys/net/ipv4/ip_local_port_range") as ephemeral:
        end = max(int(ephemeral.read().split()[0]), 30000)
    start, end = port_range(os.environ.get("BENCH_PORTS", ""), end)
    lane, lanes = int(os.environ.get("BENCH_LANE", "0")), int(os.environ.get("BENCH_LANES", "1"))
    share = (end - start) // lanes
    low, high = start + lane * share, start + (lane + 1) * share - count
    if high <= low:
        raise RuntimeError(f"{count} ports do not fit in {start}-{end - 1}: set BENCH_PORTS wider")
    for _ in range(100):
        first = random.randrange(low, high, 100)
        if all(port_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} free ports in a row in {low}-{high + count}")


def kill_strays(folder: str) -> list[int]:
    """Kill every process (but this one) whose BACKSTAGE_HOME or command line is in `folder`."""
    marker = os.fsencode(os.path.join(folder, ""))
    strays = [pid for pid in _pids() if pid != os.getpid() and _started_under(pid, marker)]
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    poll(lambda: not any(_alive(pid) for pid in strays), 5.0)
    return strays


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _started_under(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            variables = environ.read().split(b"\0")
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().split(b"\0")
    except OSError:  # gone meanwhile, or not ours to read
        return False
    home = [v for v in variables if v.startswith(b"BACKSTAGE_HOME=" + marker)]
    return bool(home) or any(marker in arg for arg in args)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


# Time and waiting


def timed(action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[float, T]:
    """Seconds `action(*args, **kwargs)` took, and what it returned."""
    start = time.perf_counter()
    result = action(*args, **kwargs)
    return time.perf_counter() - start, result


def poll(predicate: Callable[[], bool], timeout: float, interval: float = POLL_INTERVAL) -> bool:
    """True as soon as `predicate` holds, False once `timeout` seconds have passed."""
    return wait_for(predicate, timeout, interval)


def http_status(port: int, path: str = "/", host: str = "localhost", timeout: float = 2.0) -> int:
    """The status code 127.0.0.1:port answers `GET path` with, or 0 when nothing answers."""
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(request)
            head = conn.recv(64)
    except OSError:
        return 0
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0
    return int(parts[1])


def wait_for_ok(port: int, timeout: float, path: str = "/") -> float:
    """Poll until `GET path` answers 200; the perf_counter reading at that answer."""
    # A request made while the workers still load waits in the listen queue and is
    # answered as soon as one accepts: a long read timeout loses no time.
    if not poll(lambda: http_status(port, path, timeout=5.0) == 200, timeout):
        raise TimeoutError(f"127.0.0.1:{port}{path} did not answer 200 within {timeout:.0f} s")
    return time.perf_counter()


def free_port() -> int:
    """A port free now, for a server that is not an Act (an Act takes its port from
    its Production's range: one outside it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def wait_port_closed(port: int, timeout: float) -> None:
    if not poll(lambda: port_closed(port), timeout):
        raise TimeoutError(f"port {port} was still open after {timeout:.0f} s")


def stop_process(child: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGINT the process, SIGKILL its whole session if it outlives `timeout`, and reap it.

    `child` must have been started with start_new_session=True, so its pid is the
    id of a process group holding only what it started.
    """
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(5.0)


# nginx beside the router


def start_nginx(
    production: Production, folder: str, ready: Callable[[], bool], *listen: str
) -> subprocess.Popen[bytes]:
    """A private nginx (one worker, its files in `folder`) serving the Production's Gigs as
    `backstage nginx` writes them, on `listen` (HTTP, then TLS), once `ready()` holds."""
    from backstage.control.managers.nginx import write
    from tests.nginx_helpers import nginx_command

    include = write(production.crew, os.path.join(folder, "gigs"), *listen)
    args = nginx_command(folder, include, connections=1024)
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # fmt: skip
    if not poll(ready, 10.0):
        stop_process(child)
        raise TimeoutError(f"nginx did not serve on {', '.join(listen)} within 10 s")
    return child


# A checked reload, and how it was checked before


def manage_check(act: Act) -> None:
    """One cold `python manage.py check`, with the Act's environment and settings."""
    from backstage.control.build import commands
    from backstage.control.managers import adoption
    from backstage.model.layout import venue_python
    from backstage.render.stageset import project_view

    spec = act.spec
    python = venue_python(act.venue.path)
    env = adoption.process_env(act.ref, spec)
    folder = project_view(act.ref, spec).chdir
    done = commands.run_step([python, "manage.py", "check"], folder, env, 120)
    if done.returncode != 0:
        raise RuntimeError(done.stdout)


def check_apart(check: Check) -> Preflight:
    """The pre-flight and the release steps as they ran before they shared a process
    (a `check` for `adoption.prepare` and `versions.serve`, called as `preflight` is):
    the check cold in a process of its own, then each step in another, each starting
    Django and each running whether it has something to do or not."""
    from backstage.control.build import commands, preflight
    from backstage.errors import ReleaseFailed
    from backstage.model.layout import venue_python

    # the check alone and cold, as Backstage's user; the steps then one by one, as the Venue's
    alone = dataclasses.replace(check, user="", steps=(), act_dir=None, between=None, warm=None)
    found = preflight.preflight(alone)
    if check.between is not None:
        check.between(found)
    python = venue_python(check.venue_path)
    environment = commands.process_env(
        check.venue_path, check.env, check.settings, check.pythonpath
    )
    for step in check.steps:
        argv = commands.step_argv(step, python)
        done = commands.run_step(argv, check.project_dir, environment, 600, check.user)
        if done.returncode != 0:
            raise ReleaseFailed(f"release step {step!r} failed: {commands.key_line(done.stdout)}")
    return found


# Reporting


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def print_timings(what: Mapping[str, str], times: Mapping[str, Sequence[float]]) -> None:
    """A row of median and minimum seconds for each kind `what` labels; kinds not timed
    (left out of a quick round) are left out."""
    rows = [
        [label, seconds(median(times[kind])), seconds(min(times[kind]))]
        for kind, label in what.items()
        if times[kind]
    ]
    print_table(["", "median", "min"], rows)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows aligned under headers: the first column left, the others right."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(cell) for cell in cells)
        out = [first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
