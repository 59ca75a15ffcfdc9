"""A warm pre-flight for a watched Act: the framework imported once, each check forked.

Run with the Venue's Python, in the project's folder, with the Act's environment (as
`preflight.preflight` runs its check). It imports Django's own modules (never the
project's) and then reads one JSON command a line on stdin: {"wsgi": "MOD:CALLABLE",
"django": bool, "out": PATH}. For each it forks; the child imports the app and runs
Django's checks exactly as the cold pre-flight does, its output going to PATH, and the
parent answers the child's exit status on a line of stdout. A save is checked without
starting an interpreter and importing Django again: about half the pre-flight's time.

Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import json
import os
import sys

from appcheck import check as check_app  # beside this file, on sys.path as its folder
from appcheck import in_folder
from djangopreload import preload


def check(command: dict) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1

        def run() -> int:
            check_app(command["wsgi"], bool(command["django"]))
            return 0

        try:
            fd = os.open(command["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.argv = ["backstage-preflight", command["wsgi"]]
            # the project's folder as it is now: a version's is made anew for each check
            code = in_folder(command.get("cwd") or ".", run)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def serve() -> None:
    preload()
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(check(json.loads(line)), flush=True)


if __name__ == "__main__":
    serve()
