"""What `backstage dev` prints of an Act's log: its requests the way runserver prints
them, Backstage's own lines (a save served or refused), and what the app says
(tracebacks, prints); uWSGI's start-up chatter, which every reload repeats, is left out.
Pure: a line of the log in, the line to print (or None) out."""

from __future__ import annotations

import re

# [pid: 12|app: 0|req: 3/7] 127.0.0.1 () {34 vars in 411 bytes} [Mon Nov 23 13:10:01 2026]
# GET /hello => generated 3 bytes in 2 msecs (HTTP/1.1 200) 2 headers in 80 bytes (...)
REQUEST = re.compile(
    r"^\[pid: \d+\|app: [-\d]+\|req: [-\d]+/\d+\] (?P<addr>\S*) \(.*?\) \{.*?\} "
    r"\[(?P<when>[^\]]+)\] (?P<method>\S+) (?P<uri>\S+) => generated (?P<size>\d+) bytes "
    r"in (?P<msecs>\d+) msecs \((?P<proto>\S+) (?P<status>\d+)\)"
)
CHATTER = re.compile(
    r"^(\*\*\*|\.\.\.|spawned uWSGI|Respawned uWSGI|WSGI app \d|chain reload|chain next victim"
    r"|worker \d+ (killed|buried)|Gracefully killing worker|uwsgi socket|mapped \d|your "
    r"|detected |current working directory|writing pidfile|python threads support|Python "
    r"|Set PythonHome|\*\*\* Operational|announcing my loyalty|setting cheaper|unable to find"
    r"|lock engine|thunder lock|uWSGI running as root|\d+ offload threads|metrics collector"
    r"|metric |subscribing|unsubscribing|enabled memory report|\[uWSGI\] getting INI"
    r"|machine:|clock source|pcre |nodename:|compiled with|os:|uwsgi http bound|chdir\(\)"
    r"|Python version|PEP 405|Python main interpreter|initialized \d+ metrics|dropping root"
    r"|spawned \d+ offload|TIMEOUT:|cheaper mode|\d+ thread|added .* to pythonpath"
    r"|stats server enabled|running \"|setting PythonHome|worker \d+ lifetime|- "
    r"|\[rule: \d+\]|added custom metric)"
)


def dev_line(line: str) -> str | None:
    line = line.rstrip("\n")
    if not line.strip():
        return None
    found = REQUEST.match(line)
    if found:
        return (
            f'[{found["when"]}] "{found["method"]} {found["uri"]} {found["proto"]}" '
            f"{found['status']} {found['size']} ({found['msecs']} ms)"
        )
    if line.startswith("[backstage]"):
        return line[len("[backstage] ") :]
    if CHATTER.match(line):
        return None
    return line
