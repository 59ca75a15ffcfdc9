"""Releases: one built version of an Act each, in `VENUE/acts/NAME/releases/<n>-<sha>/`.

A deploy builds the next release from the Act's git clone (`git archive` of the commit)
or, for a project served from a folder, from a copy of it (a scaffolded Act's own
folder too, less Backstage's files and its data: `control.versions`); installs its requirements,
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
import hashlib
import http.client
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from emperor.process import telling_line

from ...errors import BackstageError, InvalidSetting, NotFound, PreflightFailed, ReleaseFailed
from ...files import declared
from ...files.account import account
from ...files.fs import write_atomic
from ...model.layout import ActRef
from ...model.spec import ActSpec
from ...render.factory import factory_path, render_factory
from ...render.stageset import project_view
from ..build import commands, preflight
from ..build.warmrun import WarmSpot
from ..host import ownership, ports, shared
from ..processes.crew import Crew
from . import adoption
from .acts import START_TIMEOUT, ActManager

RELEASE_NAME = re.compile(r"(?P<number>\d+)-(?P<sha>[0-9a-f]{7,40})")
RELEASE_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
# What git check-ref-format refuses anywhere in a name (control characters, space,
# ~ ^ : ? * [ \, "..", "@{", "//").
BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
# git's reason when the remote has no ref of that name (a short id is read as one).
NO_REMOTE_REF = "couldn't find remote ref"
# git's reasons when the remote gives no commit by the id asked for (v2, then v0).
REFUSED_ID = ("not our ref", "does not allow request for unadvertised object")
HEALTH_TIMEOUT = 30.0
KEEP = 10  # releases kept: rollbacks go this far back
# Left out of a copy of a folder: what is not the project's code.
NOT_COPIED = (".git", "__pycache__", "node_modules", ".venv", "venv", "*.pyc", "media")
# What a scaffolded Act's folder holds beside its project: Backstage's own files and the
# versions themselves, never copied into a version.
SCAFFOLD_OWN = ("act.toml", "releases", "current", "current.new", "shared", "bin", "pycache")
# A scaffold's data where Django's startproject puts it, at BASE_DIR, which in a version
# is the version's folder: a version holds a link to the Act folder's own instead (the
# database and STATIC_ROOT always, so that the first write makes them there), where the
# user finds it.
SCAFFOLD_DATA = ("db.sqlite3", "static", "media")
# Names a SQLite database of a scaffold has elsewhere in its folder (linked likewise).
DATABASES = (".sqlite3", ".sqlite", ".db")
JOURNALS = ("-journal", "-wal", "-shm")


@dataclass(frozen=True)
class Release:
    number: int
    sha: str
    path: str
    built: float  # when, from its folder's time
    live: bool  # `current` points at it
    # what its check found (static and media), named in the source: just built only
    found: preflight.Preflight | None = dataclasses.field(default=None, compare=False)


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


def _git(ref: ActRef, source: str, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", source, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=adoption.GIT_TIMEOUT,
        **adoption.as_owner(ref),
    )
    if done.returncode != 0:
        raise ReleaseFailed(f"git {args[0]} in {source}: {commands.key_line(done.stderr)}")
    return done.stdout.strip()


def fetch(ref: ActRef, source: str, wanted: str | None = None) -> str:
    """The commit `wanted` names at the clone's remote (a branch, a tag, a full commit
    id), else the newest of the branch the clone follows, fetched into the clone one
    commit deep; its sha. The clone was made of one branch, one commit deep: a ref is
    fetched by its name, and a large repository's history stays on its server.
    ReleaseFailed with git's reason when the remote does not answer: a deploy of what
    the clone had before would say it deployed while serving old code."""
    if wanted is not None and not is_ref_name(wanted):
        what = "name a branch, tag or commit of its git source"
        raise InvalidSetting(f"{ref.key}: {wanted!r} cannot name a branch, tag or commit: {what}")
    # FETCH_HEAD then holds what was asked for alone; a failed fetch leaves the one before
    refs = ["--", wanted] if wanted is not None else []
    owner = adoption.as_owner(ref)
    owner["env"] = {**owner["env"], "LC_ALL": "C"}  # git's reasons read as written below
    try:
        done = subprocess.run(
            ["git", "-C", source, "fetch", "--quiet", "--depth", "1", "--no-tags", "origin",
             *refs],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=adoption.GIT_TIMEOUT,
            **owner,
        )  # fmt: skip
        reason = "" if done.returncode == 0 else adoption.git_reason(done.stderr)
    except subprocess.TimeoutExpired:
        reason = f"no answer within {adoption.GIT_TIMEOUT:g} s"
    if reason:
        raise _not_fetched(ref, source, wanted, reason)
    try:
        return _git(ref, source, "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}")
    except ReleaseFailed:  # a tag of a tree or a blob
        raise NotFound(f"{ref.key}: {wanted} names no commit in {source}") from None


def _not_fetched(ref: ActRef, source: str, wanted: str | None, reason: str) -> BackstageError:
    """Why a fetch failed, in one line that says what to do."""
    try:
        # without a password or token it may carry
        remote = re.sub(
            r"//[^/@]*@", "//", _git(ref, source, "config", "--get", "remote.origin.url")
        )
    except ReleaseFailed:
        remote = f"the remote of {source}"
    if wanted is not None and reason.startswith(NO_REMOTE_REF):
        if RELEASE_SHA.fullmatch(wanted):  # a commit is asked for by its full id only
            return NotFound(
                f"{ref.key}: {remote} has no branch or tag {wanted} and the clone has no "
                f"commit {wanted}: name a branch or tag, or a commit by its full id"
            )
        return NotFound(
            f"{ref.key}: {remote} has no branch or tag {wanted}: name one it has, or a "
            "commit by its full id"
        )
    if wanted is not None and any(said in reason for said in REFUSED_ID):
        return NotFound(
            f"{ref.key}: {remote} gives no commit {wanted} by its id: name a branch or tag "
            "that holds it"
        )
    who = f"the Venue's user {ref.user}" if ref.user else _own_user()
    return ReleaseFailed(
        f"{ref.key}: could not fetch from {remote}: {reason}: check the remote and its "
        f"access for {who}, or deploy a commit the clone has by its id"
    )


def is_ref_name(name: str) -> bool:
    """`name` can be a branch or tag (git check-ref-format's rules, one level allowed)
    or a commit id, and git fetch reads it as one: no refspec (`a:b` would write a ref
    of the clone), no option, no pattern."""
    return not (
        not name
        or BAD_REF.search(name)
        or name.startswith(("-", "+", "/"))
        or name.endswith(("/", ".", ".lock"))
        or name == "@"
        or any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))
    )


def _own_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _local_commit(ref: ActRef, source: str, commit: str) -> str | None:
    """The sha of the commit `commit` is the id of, when the clone has it: the same code
    wherever it is fetched from, so a deploy of it (the live commit rebuilt) needs no
    remote."""
    if not RELEASE_SHA.fullmatch(commit):
        return None
    try:
        sha = _git(ref, source, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    except ReleaseFailed:
        return None
    return sha if sha.startswith(commit.lower()) else None


def is_git(spec: ActSpec, ref: ActRef) -> bool:
    return spec.source == os.path.join(ref.path, adoption.CLONE_DIR)


def _checkout(
    spec: ActSpec, ref: ActRef, commit: str | None, into: str, as_it_stands: bool = False
) -> str:
    """The code of the release into `into`; its sha. `as_it_stands`: a copy of the
    source folder, a git clone's working tree included."""
    source = spec.source
    if is_git(spec, ref) and not as_it_stands:
        local = _local_commit(ref, source, commit) if commit else None
        sha = local or fetch(ref, source, commit)
        os.makedirs(into)
        if ref.user:
            ownership.give(into, account(ref.user))  # unpacked by the user
        archive = subprocess.Popen(
            ["git", "-C", source, "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
            **adoption.as_owner(ref),
        )
        unpacked = subprocess.run(
            ["tar", "-x", "-C", into], stdin=archive.stdout, **adoption.as_owner(ref)
        )
        if archive.stdout is not None:
            archive.stdout.close()
        if archive.wait() != 0 or unpacked.returncode != 0:
            raise ReleaseFailed(f"{ref.key}: cannot unpack {sha[:12]} from {source}")
        return sha
    if commit:
        raise InvalidSetting(f"{ref.key} is served from a folder: deploy it without a REF")
    if not spec.adopted:
        sha = copy_folder(ref.path, into, _live_path(ref), scaffold_skipped(spec), in_place=True)
        link_scaffold_data(ref, into)
        return sha
    return copy_folder(source, into, _live_path(ref), spec.shared)


def scaffold_skipped(spec: ActSpec) -> tuple[str, ...]:
    """What of a scaffolded Act's folder is not its code."""
    return SCAFFOLD_OWN + SCAFFOLD_DATA + spec.shared


def link_scaffold_data(ref: ActRef, version: str) -> None:
    for name in SCAFFOLD_DATA:
        kept = os.path.join(ref.path, name)
        if name == "static" and not os.path.lexists(kept):
            # STATIC_ROOT: a `collectstatic` release step in a version writes it there
            os.makedirs(kept)
            if ref.user:
                ownership.give(kept, account(ref.user))
        if name != "media" or os.path.lexists(kept):
            os.symlink(kept, os.path.join(version, name))


def unchanged(ref: ActRef, spec: ActSpec, version: Release) -> bool:
    """A scaffolded Act's folder holds the code of `version` still: same names, sizes
    and times (read, nothing copied)."""
    digest = copy_folder(ref.path, None, None, scaffold_skipped(spec), in_place=True)
    return digest[: len(version.sha)] == version.sha


def _live_path(ref: ActRef) -> str | None:
    """The folder of the live release, if `current` points at one."""
    live = os.path.realpath(ref.current)
    base = os.path.realpath(ref.releases_dir)
    return live if live.startswith(base + os.sep) and os.path.isdir(live) else None


def copy_folder(
    source: str,
    into: str | None,
    previous: str | None = None,
    skipped: tuple[str, ...] = (),
    in_place: bool = False,
) -> str:
    """A copy of the project at `source` in `into`, less what is not its code and its
    shared data; a file unchanged since the release `previous` (same size and mtime) is
    a hard link to it, since releases are never written. Returns a digest of the
    names, sizes and times copied: the same digest is the same code. `into` None: the
    digest only, nothing written. `in_place`: a SQLite database (a scaffold's, wherever
    its settings put it in the folder) is a link to the one in `source`, and not code."""
    ignored = shutil.ignore_patterns(*NOT_COPIED)
    skip = {p.strip("/") for p in skipped}
    digest = hashlib.sha1()
    for parent, folders, files in os.walk(source):
        relative = os.path.relpath(parent, source)
        relative = "" if relative == "." else relative
        dropped = ignored(parent, folders + files)
        folders[:] = sorted(
            f for f in folders if f not in dropped and os.path.join(relative, f) not in skip
        )
        if into is not None:
            os.makedirs(os.path.join(into, relative), exist_ok=True)
        for name in sorted(files):
            path = os.path.join(relative, name)
            if name in dropped or path in skip:
                continue
            origin = os.path.join(source, path)
            info = os.lstat(origin)
            if in_place and name.endswith(JOURNALS):
                continue  # beside its database, where SQLite finds it through the link
            if in_place and name.endswith(DATABASES) and shared.is_sqlite(origin):
                if into is not None:
                    os.symlink(origin, os.path.join(into, path))
                continue
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
            if into is None:
                continue
            target = os.path.join(into, path)
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(origin), target)
                continue
            if previous and _same(os.path.join(previous, path), info):
                try:
                    os.link(os.path.join(previous, path), target)
                    continue
                except OSError:
                    pass
            # not through a link put in its place since: the folder may be a Venue user's
            shutil.copy2(origin, target, follow_symlinks=False)
        # a link to a folder stays a link (os.walk would not enter it anyway)
        linked = [f for f in folders if os.path.islink(os.path.join(parent, f))]
        for name in linked:
            origin = os.readlink(os.path.join(parent, name))
            digest.update(f"{os.path.join(relative, name)}\0->{origin}\0".encode())
            if into is not None:
                os.symlink(origin, os.path.join(into, relative, name))
        folders[:] = [f for f in folders if f not in linked]
    return digest.hexdigest()


def keep_collected(ref: ActRef, spec: ActSpec, building: str) -> None:
    """A STATIC_ROOT inside the project is collected into each version: the live
    version's files are linked into the new one, so that `collectstatic` runs only when a
    static source changed (its fingerprint), not into an empty folder each time.
    (collectstatic removes a file before it writes it anew: a link is never written.)"""
    live, root = _live_path(ref), spec.static_root
    if not (live and root and spec.source and _inside(root, spec.source)):
        return
    relative = os.path.relpath(root, spec.source)
    origin, target = os.path.join(live, relative), os.path.join(building, relative)
    if os.path.isdir(origin) and not os.path.lexists(target):
        shutil.copytree(origin, target, symlinks=True, copy_function=_link_or_copy)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


def _link_or_copy(origin: str, target: str) -> None:
    try:
        os.link(origin, target)
    except OSError:
        shutil.copy2(origin, target)


def _same(path: str, info: os.stat_result) -> bool:
    try:
        other = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISREG(other.st_mode)
        and other.st_size == info.st_size
        and other.st_mtime_ns == info.st_mtime_ns
    )


def release_spec(spec: ActSpec, ref: ActRef, path: str) -> ActSpec:
    """The Act's spec as if it were served from `path`: what its steps and check use.
    A scaffold's version is served as a project of its own, with the scaffold's
    settings and module (no generated settings module)."""
    root = spec.source or ref.path
    if not spec.adopted:
        spec = dataclasses.replace(
            spec, settings=spec.django_settings, wsgi=spec.wsgi_target, booked_hosts=False
        )
    pythonpath = tuple(
        path + p[len(root) :] if p == root or p.startswith(root + os.sep) else p
        for p in spec.pythonpath
    )
    return dataclasses.replace(spec, source=path, pythonpath=pythonpath, current=False)


def staging(ref: ActRef) -> str:
    """Where the next release is built and checked: one path for them all, so that a
    watched Act's warm pre-flight keeps its checker from one save to the next."""
    return os.path.join(ref.releases_dir, ".next")


def build(
    crew: Crew,
    act: ActManager,
    commit: str | None = None,
    check: preflight.Checker = preflight.preflight,
    release_steps: bool = True,
    as_it_stands: bool = False,
) -> Release:
    """The next release, built and checked; removed again at the first step that fails.
    The app's shared data is linked into it before its release steps run.
    `as_it_stands`: of the source folder as it is (a version of code served in place,
    a scaffolded Act's too)."""
    ref, spec = act.ref, act.spec()
    if not spec.adopted and not as_it_stands:
        raise InvalidSetting(
            f"{ref.key} is a scaffolded Act: releases are for projects added with "
            "`backstage act add` (a git source or a folder)"
        )
    os.makedirs(ref.releases_dir, exist_ok=True)
    with declared.locked(os.path.join(ref.releases_dir, ".lock")):
        number = max((r.number for r in releases(ref)), default=0) + 1
        building = staging(ref)
        if os.path.lexists(building):
            shutil.rmtree(building)
        try:
            sha = _checkout(spec, ref, commit, building, as_it_stands)
            sha = _write_factory(ref, spec, building, sha, is_git(spec, ref) and not as_it_stands)
            keep_collected(ref, spec, building)
            shared.link(ref, building, spec.shared, spec.source)
            _give_to_user(ref, building)
            served = release_spec(spec, ref, building)
            view = project_view(ref, served)
            env = adoption.checked_env(ref, spec)
            if spec.adopted:  # a scaffold's Venue is its own to install into, as it was
                ownership.prepare(ref)  # the Venue's packages and home, for its user's install
                commands.install_requirements(ref.venue_path, building, ref.path, user=ref.user)
                shared.drop_dangling(ref.venue_path)

            def link_data(found: preflight.Preflight) -> None:
                """What the app writes, found by the check, linked in before a step runs."""
                known = act.spec().shared
                found_data = shared.inside(building, found.data)
                if any(shared.venue_instance(ref, p) for p in found.data):
                    found_data += (shared.INSTANCE,)  # linked from the Venue's var/, not here
                data = tuple(dict.fromkeys(p for p in found_data if p not in known))
                if data:
                    shared.link(ref, building, data, spec.source)
                    _give_to_user(ref, building)
                    act.declare(shared=known + data)

            # the check and the release steps in one process: one start of the app, kept
            # warm from one version to the next (a Venue's user: cold, as that user)
            warm = None if ref.user else WarmSpot(crew.layout.act_check(ref), building)
            try:
                found = check(preflight.Check(
                    ref.venue_path, view.chdir, env, spec.wsgi_target, view.settings or None,
                    view.pythonpath, user=ref.user, steps=spec.release if release_steps else (),
                    act_dir=ref.path, between=link_data if spec.adopted else None, warm=warm,
                ))  # fmt: skip
            except PreflightFailed as exc:
                raise PreflightFailed(_as_written(str(exc), building, ref, spec)) from None
            path = os.path.join(ref.releases_dir, f"{number}-{sha[:12]}")
            os.rename(building, path)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return Release(number, sha[:12], path, time.time(), False, _in_source(found, building, spec))


def _write_factory(ref: ActRef, spec: ActSpec, building: str, sha: str, commit: bool) -> str:
    """The module that calls an application factory, at the root of the version; the
    version's sha. A copy's sha is a digest of its files: the module's text joins it, so
    that a changed argument alone makes a new version (a commit stays the commit)."""
    target = spec.wsgi_app
    if not target.factory:
        return sha
    text = render_factory(ref.key, target)
    write_atomic(factory_path(building), text, 0o644)
    return sha if commit else hashlib.sha1(f"{sha}\0{text}".encode()).hexdigest()


def _in_source(found: preflight.Preflight, building: str, spec: ActSpec) -> preflight.Preflight:
    """What the check found in the version built, named in the project as `act add`
    names it (a folder inside the version is served through `current`)."""

    def moved(path: str | None) -> str | None:
        if path and spec.source and _inside(path, building):
            return spec.source + path[len(building) :]
        return path

    return dataclasses.replace(
        found, static_root=moved(found.static_root), media_root=moved(found.media_root)
    )


def _as_written(message: str, building: str, ref: ActRef, spec: ActSpec) -> str:
    """A refusal that names a file of the release being built (a SyntaxError's) names it
    where the user wrote it: in the folder served, else in the repository."""
    cloned = spec.source == os.path.join(ref.path, adoption.CLONE_DIR)
    return message.replace(building + os.sep, "" if cloned else (spec.source or ref.path) + os.sep)


def remove(found: Release) -> None:
    shutil.rmtree(found.path, ignore_errors=True)


def _give_to_user(ref: ActRef, building: str) -> None:
    """A Venue with a user: the release being built and the shared data are theirs, as
    the Act's folder is: its pre-flight and release steps, and its app, run as them."""
    if not ref.user:
        return
    user = account(ref.user)
    ownership.give(building, user)
    # where Flask puts the instance folder of a package inside the Venue (its prefix):
    # the user's to make (control.shared.venue_instance links it to the Act's own)
    var = os.path.join(ref.venue_path, "var")
    os.makedirs(var, exist_ok=True)
    ownership.give(var, user)
    os.makedirs(ref.shared_dir, exist_ok=True)
    ownership.give(ref.shared_dir, user)


def prune(ref: ActRef, keep: int = KEEP) -> None:
    """Delete all but the newest `keep` releases, and never the live one."""
    found = releases(ref)
    for old in found[: max(0, len(found) - keep)]:
        if not old.live:
            shutil.rmtree(old.path, ignore_errors=True)


def check_answers(crew: Crew, act: ActManager, path: str, timeout: float) -> None:
    """Start the release at `path` in a uWSGI of its own on a free loopback port, with
    no Gig, and wait until it answers HTTP without a server error; ReleaseFailed when
    it does not within `timeout`. Stopped either way."""
    ref, spec = act.ref, act.spec()
    view = project_view(ref, release_spec(spec, ref, path))
    port = ports.free_port()
    argv = [
        *release_uwsgi(crew, ref), "--master", "--processes", "1", "--need-app",
        "--http-socket", f"127.0.0.1:{port}", "--chdir", view.chdir,
        "--virtualenv", ref.venue_path, "--module", view.wsgi, "--die-on-term",
    ]  # fmt: skip
    for entry in view.pythonpath:
        argv += ["--pythonpath", entry]
    env = commands.process_env(
        ref.venue_path, adoption.step_env(ref, spec), view.settings or None, view.pythonpath
    )
    env.pop("PYTHONPATH", None)  # --pythonpath says it; uWSGI's own Python must not see it
    log_path = os.path.join(ref.releases_dir, f".check-{os.path.basename(path)}.log")
    # in the Act's folder, its user's for a Venue with a user: no link followed
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(log_fd, "wb") as log:
        # as the Venue's user: the release's code, and the Venue's packages are theirs
        process = subprocess.Popen(
            argv, cwd=view.chdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, **commands.as_user(ref.user),
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
        return [ownership.own_uwsgi(ref.venue_path)]
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
    _point(act.ref, path)
    if act.sess() is not None:
        act.reload(timeout)


def _point(ref: ActRef, path: str) -> None:
    """`current` to `path`, in one step."""
    temporary = ref.current + ".new"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(os.path.relpath(path, ref.path), temporary)
    os.replace(temporary, ref.current)


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
        serve_through_current(act)
    switch(act, built.path, timeout)  # `timeout` bounds each wait, the reload's too
    prune(act.ref)
    return dataclasses.replace(built, live=True)


def rebuild(crew: Crew, act: ActManager, timeout: float = HEALTH_TIMEOUT) -> Release:
    """The live commit of a git Act built again into a new release with what act.toml
    declares now (a changed `--wsgi` is part of the release), checked and served as a
    deploy is, never reloaded in place; the commit its clone has checked out when no
    release serves yet."""
    live = next((r for r in releases(act.ref) if r.live), None)
    commit = live.sha if live else _git(act.ref, act.spec().source, "rev-parse", "HEAD")
    return deploy(crew, act, commit, timeout)


def serve_through_current(act: ActManager) -> None:
    """An Act served from its folder until now: through `current` (to that folder) from
    now on. Its vassal config changes, so a playing Act restarts, once."""
    ref, spec = act.ref, act.spec()
    if not os.path.lexists(ref.current):
        os.symlink(spec.source, ref.current)
    if not _declared_and_restarted(act, {}, START_TIMEOUT):
        raise ReleaseFailed(f"{ref.key} did not restart to serve through {ref.current}")


def take_over(
    act: ActManager, path: str, changes: Mapping[str, str], timeout: float = START_TIMEOUT
) -> None:
    """Point `current` at `path` and declare `changes` to the Act's vassal config (served
    through `current`, its static and media mappings), in one restart of a playing Act:
    its new config starts on the new version, where a chain reload too would load the
    same version twice."""
    ref = act.ref
    _point(ref, path)
    if not _declared_and_restarted(act, changes, timeout):
        raise ReleaseFailed(f"{ref.key} did not restart on its new version within {timeout:g} s")


def _declared_and_restarted(act: ActManager, changes: Mapping[str, str], timeout: float) -> bool:
    """Declare the Act served through `current` with `changes`; a playing Act restarts
    for its new config: False when no new master of it is ready within `timeout`."""
    before = act.sess()
    act.declare(current=True, **changes)
    if before is None:
        return True
    act.crew.manager.poke()
    return act.await_restart(before, timeout)


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
