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

from emperor.heldwire import ASK_FOR, FD_BASE, HELD_ENV, ask  # noqa: E402

CONFIG_OPTIONS = ("--ini", "--xml", "--yaml", "--json", "--config", "--inherit")


def vassal_name(args: list[str]) -> str:
    """The vassal's name from the Emperor's command line: the config it is given
    (`--ini emperor://NAME` on the zmq channel, `--ini NAME` from a directory)."""
    for option, value in zip(args, args[1:], strict=False):
        if option in CONFIG_OPTIONS:
            return os.path.basename(value.removeprefix("emperor://"))
    return ""


def place(fds: list[int]) -> bool:
    """Move `fds` to FD_BASE, FD_BASE+1, ... (inheritable); False, and every one closed,
    when one of those is taken (it is the Emperor's, not ours to clobber)."""
    for index in range(len(fds)):
        try:
            os.fstat(FD_BASE + index)
        except OSError:
            continue
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
