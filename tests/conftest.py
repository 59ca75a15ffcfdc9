from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile

import pytest
from click.testing import CliRunner

from backstage import Production, Venue
from backstage.control.host.ports import port_free
from backstage.shortcuts import new_venue
from tests import durations
from tests.helpers import kill_all, poll, processes_of

# Short roots: unix socket paths must stay under 108 bytes.
ROOT = tempfile.mkdtemp(prefix="bst", dir="/tmp")


HOMES: list[str] = []


def pytest_addoption(parser):
    parser.addoption(
        "--record-durations",
        action="store_true",
        help="merge each case's seconds into tests/durations.json (the xdist order)",
    )


def pytest_configure(config):
    durations.configure(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The cases of one `xdist_group` on one test process, on every pytest. pytest-xdist
    (3.8) marks a grouped case by writing `@GROUP` into a field of its node id that
    pytest 9.2 no longer reads, and `--dist loadgroup` then spreads each group over both
    processes without a word (pytest-xdist#1386): two user-Venue cases at once, where
    one closed /root under the other's workers. The suffix goes where this pytest keeps
    the id; a group it still lost fails the run instead of running it unsafely."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        marks = item.iter_markers("xdist_group")
        groups = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        )
        if not groups:
            continue
        suffix = "@" + "_".join(groups)
        if item.nodeid.endswith(suffix):
            continue  # pytest-xdist's own write took
        if hasattr(item, "_id"):
            item._id = type(item._id).parse(item.nodeid + suffix)
        if not item.nodeid.endswith(suffix):
            raise RuntimeError(f"{item.nodeid} is not kept to its xdist_group: run with -n 0")


@pytest.fixture(scope="session", autouse=True)
def no_process_left():
    yield
    left = processes_of(*HOMES)
    kill_all(left)
    if not os.environ.get("BACKSTAGE_KEEP_TEST_ROOT"):  # set it to read the logs of a failure
        shutil.rmtree(ROOT, ignore_errors=True)
    assert not left, f"the suite left processes behind: {left}"


def root_production(home: str) -> Production:
    """A Production whose new Venues run as root (`venue_user = "root"`), as the suite's
    do: a Venue of its own user needs a Python and folders other users can read, which
    the tests' 0700 folders are not. The tests of that default make their own."""
    production = Production(home)
    production.declare(venue_user="root")
    return production


@pytest.fixture(scope="session")
def shared_venue_path() -> str:
    """One Venue (a virtualenv with Django) built once for the whole session."""
    home = os.path.join(ROOT, "sessionhome")
    HOMES.append(home)
    venue = new_venue("TestVenue", ROOT, root_production(home))
    venue.production.forget_venue(venue)
    return venue.path


_counter = iter(range(10**6))


# Each range of ports a test's Production plays on is claimed here, machine-wide, for as
# long as the test runs: by a lock on a file named after its first port, which dies with
# the test process. Every test process on the machine (another worktree's suite, a run
# beside this one) draws from the same ports: a random range alone met another run's
# now and then, and its router refused to come up on the address the other one held.
CLAIMS = "/tmp/backstage-test-ports"
_claimed: list[int] = []  # the lock fds of this test's ranges, let go after it


def _port_span() -> tuple[int, int]:
    """Where test Productions' port ranges are drawn from: from 20000 up to the kernel's
    ephemeral ports (a client's connection, of which the load tests open thousands, may
    hold any of those)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ephemeral:
        end = max(int(ephemeral.read().split()[0]), 30000)
    return 20000, end - 100


def _claim_range() -> int:
    """The first port of a range of 100 that no other test on the machine plays on and
    whose last port (the router's) nothing binds now, claimed until the test ends."""
    os.makedirs(CLAIMS, exist_ok=True)
    with contextlib.suppress(PermissionError):  # another user's: its mode is already so
        os.chmod(CLAIMS, 0o1777)  # for a suite run as any user, as /tmp is
    firsts = list(range(*_port_span(), 100))
    random.shuffle(firsts)
    for first in firsts:
        fd = os.open(os.path.join(CLAIMS, str(first)), os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not port_free(first + 99):  # held by something that claims nothing
            os.close(fd)
            continue
        _claimed.append(fd)
        return first
    raise RuntimeError(f"every range of test ports is claimed (see {CLAIMS})")


@pytest.fixture(autouse=True)
def _let_go_of_ports():
    """After the test and its Productions' teardown (an autouse fixture is set up first,
    so torn down last): its ranges are free for another test."""
    yield
    while _claimed:
        os.close(_claimed.pop())


def own_ports(production: Production, **settings) -> Production:
    """Declare for `production` a range of ports of its own, away from the default, so
    that nothing else on the host (another suite, a benchmark, a user's Production)
    takes its ports meanwhile; the router too (port 8000 is never assumed free)."""
    first = _claim_range()
    production.declare(ports=(first, first + 98), router=f"127.0.0.1:{first + 99}", **settings)
    return production


@pytest.fixture
def production(monkeypatch) -> Production:
    """A fresh Production of its own for each test, downed afterwards; a test that
    leaves a process of its Production behind fails."""
    home = os.path.join(ROOT, f"p{next(_counter)}")
    HOMES.append(home)
    monkeypatch.setenv("BACKSTAGE_HOME", home)
    prod = own_ports(Production(home), venue_user="root")
    yield prod
    prod.down()
    try:
        poll(lambda: not processes_of(home), timeout=10)
    except AssertionError:
        left = processes_of(home)
        kill_all(left)
        pytest.fail(f"processes left behind by {home}: {left}")


@pytest.fixture(params=["zmq", "dir"])
def channel(request, production) -> str:
    production.declare(channel=request.param)
    return request.param


@pytest.fixture
def venue(production, shared_venue_path) -> Venue:
    """The session's Venue, added to this test's Production; its Acts and domains are
    removed after, so that no test sees another's."""
    venue = Venue(shared_venue_path, production)
    production.add_venue(venue)
    yield venue
    production.down()
    if venue.spec.domains:
        venue.declare(domains=())
    production.forget_venue(venue)
    shutil.rmtree(venue.acts_dir, ignore_errors=True)
    os.makedirs(venue.acts_dir)


def run_cli(*args: str, home: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "backstage", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, BACKSTAGE_HOME=home),
    )
    if check and done.returncode != 0:
        raise AssertionError(f"backstage {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def cli(*args: str, home: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`backstage ARGS` as run_cli gives it, run in this process: the command's own
    main() (its exit code, its one-line errors) with click's CliRunner holding its
    output, for a test that needs what a command says or does rather than a process of
    its own (each `backstage` process takes 0.3 s of CPU to start). Not from a thread:
    it swaps sys.argv and the standard streams. Its log lines go to pytest's capture."""
    from backstage.ui.cli import main

    argv = sys.argv
    with CliRunner().isolation(env={"BACKSTAGE_HOME": home}) as (out, err, _):
        sys.argv = ["backstage", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (exc.code is not None)
        finally:
            sys.argv = argv
        done = subprocess.CompletedProcess(
            ["backstage", *args], int(code), out.getvalue().decode(), err.getvalue().decode()
        )
    if check and done.returncode != 0:
        raise AssertionError(f"backstage {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def cli_quiet(caplog: pytest.LogCaptureFixture, *args: str, home: str):
    """`cli(*args, check=False)`, failing when the command logged a warning: a process
    of its own would have printed it on its stderr, a line beside what it said (here
    log records go to pytest's capture)."""
    caplog.clear()
    done = cli(*args, home=home, check=False)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged, (args, logged)
    return done


@pytest.fixture(scope="session")
def real_venue_path() -> str:
    """A Venue with Django only: each project's requirements install the rest."""
    home = os.path.join(ROOT, "realhome")
    HOMES.append(home)
    venue = new_venue("Real", ROOT, root_production(home))
    venue.production.forget_venue(venue)
    return venue.path


@pytest.fixture
def real_venue(production, real_venue_path) -> Venue:
    venue = Venue(real_venue_path, production)
    production.add_venue(venue)
    yield venue
    production.down()
    production.forget_venue(venue)
    shutil.rmtree(venue.acts_dir, ignore_errors=True)
    os.makedirs(venue.acts_dir)


@pytest.fixture
def projects():
    folder = tempfile.mkdtemp(prefix="bpj", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
