"""Releases: one built version of an Act each, in `VENUE/acts/NAME/releases/<n>-<sha>/`.

A deploy builds the next release from the Act's git clone (`git archive` of the commit)
or, for a project served from a folder, from a copy of it; installs its requirements,
runs the pre-flight and the release steps in it; then starts it beside the running
Act in a uWSGI of its own on a free port of loopback, with no Gig and no traffic, and
checks that it answers. Only then is `current` (the symlink the Act's vassal serves
from) moved to it, and the Act chain-reloaded: its workers are replaced one at a time,
each the new release, while the old ones drain. Its port and its Gigs never move, so
nobody sees a switch. A release that fails a step, or never answers, is removed and
the running one serves on. A rollback moves `current` back the same way.

Nothing is stored but the folders: the number and commit are in a release's name, when
it was built is its folder's time, and the live one is the one `current` points at.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from emperor.process import telling_line, wait_for

from ..errors import BackstageError, InvalidSetting, NotFound, ReleaseFailed
from ..files import declared
from ..model.layout import ActRef, venue_uwsgi
from ..model.spec import ActSpec
from ..render.stageset import project_view
from . import adoption, ports, preflight, release
from .acts import START_TIMEOUT, ActManager
from .crew import Crew

RELEASE_NAME = re.compile(r"(?P<number>\d+)-(?P<sha>[0-9a-f]{7,40})")
HEALTH_TIMEOUT = 30.0
# Left out of a copy of a folder: what is not the project's code.
NOT_COPIED = (".git", "__pycache__", "node_modules", ".venv", "venv", "*.pyc", "media")


@dataclass(frozen=True)
class Release:
    number: int
    sha: str
    path: str
    built: float  # when, from its folder's time
    live: bool  # `current` points at it


def releases(ref: ActRef) -> list[Release]:
    """The Act's releases, oldest first, read from its folders."""
    try:
        names = os.listdir(ref.releases_dir)
    except FileNotFoundError:
        return []
    live = os.path.realpath(ref.current)
    found = []
    for name in names:
        matched = RELEASE_NAME.fullmatch(name)
        if not matched:
            continue
        path = os.path.join(ref.releases_dir, name)
        found.append(
            Release(
                number=int(matched["number"]),
                sha=matched["sha"],
                path=path,
                built=os.stat(path).st_mtime,
                live=os.path.realpath(path) == live,
            )
        )
    return sorted(found, key=lambda r: r.number)


def _git(source: str, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", source, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=adoption.GIT_TIMEOUT,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if done.returncode != 0:
        raise ReleaseFailed(f"git {args[0]} in {source}: {release.key_line(done.stderr)}")
    return done.stdout.strip()


def _is_git(spec: ActSpec, ref: ActRef) -> bool:
    return spec.source == os.path.join(ref.path, adoption.CLONE_DIR)


def _checkout(spec: ActSpec, ref: ActRef, commit: str | None, into: str) -> str:
    """The code of the release into `into`; its sha."""
    source = spec.source
    if _is_git(spec, ref):
        fetched = True
        try:
            _git(source, "fetch", "--quiet", "origin")
        except ReleaseFailed:
            fetched = False
        wanted = commit or ("FETCH_HEAD" if fetched else "HEAD")
        candidates = [f"origin/{commit}", commit] if commit else [wanted]
        sha = ""
        for candidate in candidates:
            try:
                sha = _git(source, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
                break
            except ReleaseFailed:
                continue
        if not sha:
            raise NotFound(f"{ref.key}: no commit {commit or wanted} in {source}")
        os.makedirs(into)
        archive = subprocess.Popen(
            ["git", "-C", source, "archive", "--format=tar", sha], stdout=subprocess.PIPE
        )
        unpacked = subprocess.run(["tar", "-x", "-C", into], stdin=archive.stdout)
        if archive.stdout is not None:
            archive.stdout.close()
        if archive.wait() != 0 or unpacked.returncode != 0:
            raise ReleaseFailed(f"{ref.key}: cannot unpack {sha[:12]} from {source}")
        return sha
    if commit:
        raise InvalidSetting(f"{ref.key} is served from a folder: deploy it without a REF")
    shutil.copytree(source, into, symlinks=True, ignore=shutil.ignore_patterns(*NOT_COPIED))
    digest = subprocess.run(
        ["sh", "-c", "find . -type f -print0 | sort -z | xargs -0 cat | sha1sum"],
        cwd=into,
        capture_output=True,
        text=True,
    ).stdout.split()
    return digest[0] if digest else "0" * 40


def _release_spec(spec: ActSpec, ref: ActRef, path: str) -> ActSpec:
    """The Act's spec as if it were served from `path`: what its steps and check use."""
    root = spec.source
    pythonpath = tuple(
        path + p[len(root) :] if p == root or p.startswith(root + os.sep) else p
        for p in spec.pythonpath
    )
    return dataclasses.replace(spec, source=path, pythonpath=pythonpath, current=False)


def build(crew: Crew, act: ActManager, commit: str | None = None) -> Release:
    """The next release, built and checked; removed again at the first step that fails."""
    ref, spec = act.ref, act.spec()
    if not spec.adopted:
        raise InvalidSetting(
            f"{ref.key} is a scaffolded Act: releases are for projects added with "
            "`backstage act add` (a git source or a folder)"
        )
    os.makedirs(ref.releases_dir, exist_ok=True)
    number = max((r.number for r in releases(ref)), default=0) + 1
    building = tempfile.mkdtemp(prefix=f".{number}-", dir=ref.releases_dir)
    os.rmdir(building)
    try:
        sha = _checkout(spec, ref, commit, building)
        served = _release_spec(spec, ref, building)
        view = project_view(ref, served)
        env = adoption.step_env(ref, spec)
        release.install_requirements(ref.venue_path, building, ref.path)
        preflight.preflight(
            ref.venue_path, view.chdir, env, spec.wsgi_target, view.settings or None,
            view.pythonpath, user=ref.user,
        )  # fmt: skip
        if spec.release:
            release.run_release(
                ref.venue_path, view.chdir, env, view.settings or None, spec.release,
                view.pythonpath, user=ref.user,
            )  # fmt: skip
        path = os.path.join(ref.releases_dir, f"{number}-{sha[:12]}")
        os.rename(building, path)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return Release(number, sha[:12], path, time.time(), False)


def check_answers(crew: Crew, act: ActManager, path: str, timeout: float) -> None:
    """Start the release at `path` in a uWSGI of its own on a free loopback port, with
    no Gig, and wait until it answers HTTP without a server error; ReleaseFailed when
    it does not within `timeout`. Stopped either way."""
    ref, spec = act.ref, act.spec()
    view = project_view(ref, _release_spec(spec, ref, path))
    port = ports.free_port()
    argv = [
        *release_uwsgi(crew, ref), "--master", "--processes", "1", "--need-app",
        "--http-socket", f"127.0.0.1:{port}", "--chdir", view.chdir,
        "--virtualenv", ref.venue_path, "--module", view.wsgi, "--die-on-term",
    ]  # fmt: skip
    for entry in view.pythonpath:
        argv += ["--pythonpath", entry]
    env = release.process_env(
        ref.venue_path, adoption.step_env(ref, spec), view.settings or None, view.pythonpath
    )
    env.pop("PYTHONPATH", None)  # --pythonpath says it; uWSGI's own Python must not see it
    log_path = os.path.join(ref.releases_dir, f".check-{os.path.basename(path)}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, cwd=view.chdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if 0 < _status(port) < 500:
                return
            time.sleep(0.1)
        with open(log_path, errors="replace") as log:
            said = telling_line(log.read())
        if process.poll() is None:
            what = f"never answered within {timeout:g} s"
        else:
            what = "exited before it answered"
        raise ReleaseFailed(
            f"{ref.key}: release {os.path.basename(path)} {what} ({said}): abandoned, "
            "the running release serves on"
        )
    finally:
        try:
            os.killpg(process.pid, 9)
        except OSError:
            pass
        process.wait()
        os.unlink(log_path)


def release_uwsgi(crew: Crew, ref: ActRef) -> list[str]:
    """The uwsgi command a release is checked with: the one its vassal will serve it
    with, the Venue's own where it has one (the Stage's embeds another Python)."""
    if declared.venue_spec(ref.venue_path).own_uwsgi:
        return [venue_uwsgi(ref.venue_path)]
    return crew.stage.uwsgi()


def _status(port: int) -> int:
    """The HTTP status 127.0.0.1:port answers GET / with; 0 when it does not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": "localhost"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def switch(act: ActManager, path: str, timeout: float = START_TIMEOUT) -> None:
    """Point `current` at `path` in one step, and chain-reload a playing Act to it."""
    ref = act.ref
    temporary = ref.current + ".new"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(os.path.relpath(path, ref.path), temporary)
    os.replace(temporary, ref.current)
    if act.sess() is not None:
        act.reload(timeout)


def deploy(
    crew: Crew, act: ActManager, commit: str | None = None, timeout: float = HEALTH_TIMEOUT
) -> Release:
    built = build(crew, act, commit)
    try:
        check_answers(crew, act, built.path, timeout)
    except BackstageError:
        shutil.rmtree(built.path, ignore_errors=True)
        raise
    if not act.spec().current:
        _serve_through_current(act)
    switch(act, built.path)
    return dataclasses.replace(built, live=True)


def _serve_through_current(act: ActManager) -> None:
    """An Act served from its folder until now: through `current` (to that folder) from
    now on. Its vassal config changes, so a playing Act restarts, once."""
    ref, spec = act.ref, act.spec()
    if not os.path.lexists(ref.current):
        os.symlink(spec.source, ref.current)
    before = act.sess()
    act.declare(current=True)
    if before is None:
        return
    act.crew.manager.poke()

    def restarted() -> bool:
        now = act.sess()
        return now is not None and now.pid != before.pid and now.ready

    if not wait_for(restarted, START_TIMEOUT):
        raise ReleaseFailed(f"{ref.key} did not restart to serve through {ref.current}")


def rollback(act: ActManager, number: int | None = None) -> Release:
    """Back to release `number`, by default the one before the live one."""
    found = releases(act.ref)
    live = next((r for r in found if r.live), None)
    if number is None:
        if live is None:
            raise NotFound(f"{act.ref.key} serves no release: nothing to roll back from")
        earlier = [r for r in found if r.number < live.number]
        if not earlier:
            raise NotFound(f"{act.ref.key} has no release before {live.number}")
        target = earlier[-1]
    else:
        target = next((r for r in found if r.number == number), None)  # type: ignore[assignment]
        if target is None:
            raise NotFound(
                f"{act.ref.key} has no release {number}: `backstage releases` lists them"
            )
    switch(act, target.path)
    return dataclasses.replace(target, live=True)
