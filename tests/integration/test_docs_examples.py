"""The docs' Python examples, run as written against a real Production: every page's
blocks in one process, page after page in the order a reader meets them, each page in a
namespace of its own; `/tmp` in them is this test's folder. A block the docs mark
`<!-- not run: WHY -->` (a reason, or it runs) is left out. The README's tour is the Getting
started page's, word for word. Then Getting started's shell sequence runs as written, from
`backstage up` to `backstage down`, on a Venue of its own name."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys

import pytest

from tests.helpers import backstage_commands, bash_blocks, http_get

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(REPO, "docs")
# Pages whose examples build on Getting started's Venue come after it.
FIRST = ("getting-started.md",)
BLOCK = re.compile(r"(?:<!-- not run: (?P<why>[^>]+?) -->\n)?```python\n(?P<code>.*?)```", re.S)


def blocks(path: str) -> list[tuple[int, str, str]]:
    """(line, code, why not run) of every Python block of a Markdown file."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return [
        (text.count("\n", 0, match.start("code")) + 1, match["code"], match["why"] or "")
        for match in BLOCK.finditer(text)
    ]


def pages() -> list[str]:
    names = sorted(n for n in os.listdir(DOCS) if n.endswith(".md"))
    return [*FIRST, *(n for n in names if n not in FIRST)]


RUNNER = """
import sys, json, time
start = time.monotonic()
for page, line, code in json.loads(sys.argv[1]):
    if line == 0:
        namespace = {"__name__": "__docs__"}  # a new page
        continue
    exec(compile("\\n" * (line - 1) + code, page, "exec"), namespace)
    print("ran", page, line, round(time.monotonic() - start, 1), flush=True)
    start = time.monotonic()
"""


def test_the_readme_tour_is_getting_started():
    readme = [code for _, code, _ in blocks(os.path.join(REPO, "README.md"))]
    started = [code for _, code, _ in blocks(os.path.join(DOCS, "getting-started.md"))]
    assert readme and readme == started[: len(readme)]


@pytest.mark.slow  # a Venue built and four Acts started: about a minute on two busy cores
def test_every_python_example_runs(production):
    folder = os.path.join(os.path.dirname(production.home), f"dx{os.getpid()}")
    os.makedirs(folder)
    plan: list[tuple[str, int, str]] = []
    for name in pages():
        found = blocks(os.path.join(DOCS, name))
        runnable = [(line, code) for line, code, why in found if not why]
        if runnable:
            plan.append((f"docs/{name}", 0, ""))
            plan += [
                (f"docs/{name}", line, code.replace("'/tmp", f"'{folder}"))
                for line, code in runnable
            ]
    assert len([p for p in plan if p[1]]) >= 5, plan
    env = {**os.environ, "BACKSTAGE_HOME": production.home, "PYTHONPATH": REPO}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(plan)],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(done.stdout)  # each block and its seconds
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ran ") == len([p for p in plan if p[1]])
    # what the pages left playing serves
    kittens = production.venue("MyVenue").act("Kittens")
    assert kittens.state == "running" and http_get(kittens.port)[0] == 200

    (sequence,) = [
        code
        for _, code in bash_blocks(os.path.join(DOCS, "getting-started.md"))
        if "backstage up" in code
    ]
    ran = []
    for line in sequence.splitlines():
        for argv in backstage_commands(line.replace("MyVenue", "ShellVenue")):
            run_command(argv, env, folder)
            ran.append(argv[1])
    assert ran == ["up", "venue", "act", "status", "act", "logs", "down"], ran
    assert not production.venue("ShellVenue").act("MyAct").sess  # `down` stopped it


def run_command(argv: list[str], env: dict[str, str], cwd: str) -> None:
    """`backstage ...` as a shell runs it; one that follows (`-f`) must print its first
    line within a deadline, then it is stopped."""
    command = [sys.executable, "-m", "backstage", *argv[1:]]
    if "-f" not in argv:
        done = subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return
    with subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True) as follow:
        try:
            assert follow.stdout is not None
            ready, _, _ = select.select([follow.stdout], [], [], 30)
            assert ready and follow.stdout.readline(), argv
        finally:
            follow.terminate()
