"""The Emperor's wrapper for its vassals (`--emperor-wrapper`): asks the holder for the
vassal's held sockets, puts them at fds FD_BASE... and execs uwsgi (see `heldwire`).

    python -IS heldwrap.py HOLDER_SOCKET UWSGI_BINARY -- UWSGI_ARGS...

It runs at every vassal spawn, so it imports nothing but the wire; where a C compiler
is, `heldwrap.c` (the same, compiled by `heldbuild`) runs instead, without starting a
Python. Whatever fails, the vassal still starts: without HELD_ENV its config binds its
sockets itself.
"""

from __future__ import annotations

import os
import sys

# run as a script with -I: the folder above this one holds the `emperor` package
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from emperor.heldwire import ASK_FOR, FD_BASE, HELD_ENV, MAX_FDS, ask  # noqa: E402

CONFIG_OPTIONS = ("--ini", "--xml", "--yaml", "--json", "--config", "--inherit")


def vassal_name(args: list[str]) -> str:
    """The vassal's name from the Emperor's command line: the config it is given
    (`--ini emperor://NAME` on the zmq channel, `--ini NAME` from a directory)."""
    for option, value in zip(args, args[1:], strict=False):
        if option in CONFIG_OPTIONS:
            return os.path.basename(value.removeprefix("emperor://"))
    return ""


# The Emperor's pipes to its vassal, named by these variables: where one of them is at
# FD_BASE + i (an Emperor with a few dozen vassals gets there), it is moved above the
# held fds and its variable follows it.
MOVABLE = ("UWSGI_EMPEROR_FD", "UWSGI_EMPEROR_FD_CONFIG")


def make_room(count: int) -> bool:
    """True when FD_BASE... FD_BASE + count - 1 are free now; False when one is taken by
    an fd no variable names (not ours to clobber)."""
    for fd in range(FD_BASE, FD_BASE + count):
        try:
            os.fstat(fd)
        except OSError:
            continue
        named = [var for var in MOVABLE if os.environ.get(var, "").strip() == str(fd)]
        if not named:
            return False
        import fcntl  # only here: the usual spawn never gets this far

        moved = fcntl.fcntl(fd, fcntl.F_DUPFD, FD_BASE + MAX_FDS)  # inheritable, as it was
        os.environ[named[0]] = str(moved)
        os.close(fd)
    return True


def place(fds: list[int]) -> bool:
    """Move `fds` to FD_BASE, FD_BASE+1, ... (inheritable); False, and every one closed,
    when one of those is taken and cannot be moved (see make_room)."""
    if not make_room(len(fds)):
        for fd in fds:
            os.close(fd)
        return False
    for index, fd in enumerate(fds):
        os.dup2(fd, FD_BASE + index, inheritable=True)
        os.close(fd)
    return True


def main(argv: list[str]) -> None:
    holder, uwsgi, separator, *args = argv
    assert separator == "--", "heldwrap.py HOLDER UWSGI -- ARGS"
    os.environ.pop(HELD_ENV, None)
    name = vassal_name(args)
    if name:
        try:
            fds = ask(holder, name, ASK_FOR)
        except (OSError, ValueError) as exc:
            print(f"[held sockets] none for {name}: {exc}", file=sys.stderr)
            fds = []
        if fds and place(fds):
            os.environ[HELD_ENV] = str(len(fds))
    os.execv(uwsgi, [uwsgi, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
