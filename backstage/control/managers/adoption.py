"""Real applications: a project adopted where it is, and a new version of it made ready
to serve.

`adopt` takes a project folder (or clones a git source into the Act's folder), finds
what it is (`files.project.detect`), and declares it as an Act whose own files live
in `VENUE/acts/NAME/`: act.toml, the generated settings module, the worker and cron
scripts, bytecode, and STATIC_ROOT when the project sets none. The project's files are
never written.

`prepare` runs before a start of a new version and before every reload: the
requirements when they changed (`commands`), then in one process of the Venue's Python
the pre-flight (the app imported once, Django's checks) and the release steps
(`checkrun`). The first that fails stops it with one line; what plays keeps playing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from emperor import binary as uwsgi_binary
from emperor.process import since_boot

from ...errors import (
    ActFailed,
    BackstageError,
    ConfigRefused,
    InvalidSetting,
    NotAProject,
    NotFound,
    PortBusy,
)
from ...files import declared
from ...files.account import account
from ...files.fs import size_of, write_atomic
from ...files.project import detect
from ...model.assign import apply_settings
from ...model.checks import split_cron
from ...model.gig import split_address
from ...model.layout import CLONE_DIR, ActRef, venue_python, venue_user_dir
from ...model.project import Project
from ...model.sess import Sess
from ...model.spec import ActSpec
from ...render.factory import factory_path, render_factory
from ...render.shim import default_static_root, render_settings_shim, shim_path, static_map
from ...render.stageset import (
    ProjectView,
    bytecode_env,
    cron_script,
    project_view,
    reload_touch,
    scripts_dir,
    uses_shim,
    worker_script,
)
from ..build import commands, preflight
from ..host import ownership, shared
from ..host.ports import port_free
from ..processes.crew import Crew
from .acts import START_TIMEOUT, ActManager

log = logging.getLogger(__name__)

GIT_TIMEOUT = 600.0


def is_git_source(source: str) -> bool:
    """A URL or a bare/.git repository to clone, rather than a folder to serve in place."""
    if "://" in source or (source.startswith("git@") and ":" in source):
        return True
    return source.rstrip("/").endswith(".git") and os.path.isdir(source)


def adopted_spec(
    spec: ActSpec,
    project: Project,
    env: Mapping[str, str],
    steps: Sequence[str] | None = None,
) -> ActSpec:
    """The new Act's spec for `project`: where it is and how to serve it; its release
    `steps` if given, else Django's own (none for another app)."""
    django = project.is_django
    return dataclasses.replace(
        spec,
        source=project.path,
        wsgi=str(project.wsgi),
        settings=project.settings or "",
        pythonpath=project.pythonpath,
        release=commands.default_steps(project.path, django) if steps is None else tuple(steps),
        env=dict(env),
    )


def check_steps(steps: Sequence[str]) -> None:
    """Release steps given to `act add --release`, each a command on one line."""
    for step in steps:
        if not step.strip() or "\n" in step:
            raise InvalidSetting(f"--release {step!r}: write one command on one line")
        try:
            shlex.split(step)
        except ValueError as exc:
            raise InvalidSetting(f"--release {step!r} cannot be read: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Adoption:
    """What `Venue.add_act` asks of `adopt`: the project at `source`, and how to serve it."""

    source: str
    wsgi: str | None = None
    settings: str | None = None
    port: int | None = None
    processes: int | str | None = None
    env: Mapping[str, str] | None = None
    force: bool = False
    steps: Sequence[str] | None = None  # release steps; None: Django's migrate, collectstatic


def adopt(crew: Crew, ref: ActRef, asked: Adoption) -> ActManager:
    """Declare the project at `asked.source` as the Act `ref` (not enabled yet), install
    its requirements into the Venue and check that it imports; all or nothing."""
    source, wsgi, settings, steps = asked.source, asked.wsgi, asked.settings, asked.steps
    clone = is_git_source(source)
    if steps is not None:
        check_steps(steps)
    if not clone:
        detect(source, wsgi, settings)  # before anything is written: not a project, say so
    values = dict(asked.env or {})

    def build(spec: ActSpec) -> ActSpec:
        os.makedirs(ref.path)
        if clone and ref.user:
            ownership.give(ref.path, account(ref.user))  # cloned by the user, whose it is
        into = os.path.join(ref.path, CLONE_DIR)
        folder = git_clone(source, into, as_owner(ref)) if clone else source
        project = detect(folder, wsgi, settings)
        new = adopted_spec(spec, project, values, steps)
        if clone:  # served through `current`, which a deploy moves to a release
            os.symlink(CLONE_DIR, ref.current)
            new = dataclasses.replace(new, current=True)
        write_act_files(crew, ref, new)
        return new

    act = ActManager.create(crew, ref, asked.port, asked.processes, asked.force, build)
    try:
        prepare(crew, act, release_steps=False)
    except BaseException:
        act.discard()
        raise
    return act


def as_owner(ref: ActRef) -> dict[str, Any]:
    """subprocess's arguments that run git (and tar) on the Act's clone as its Venue's
    user, whose clone it is: root's git refuses another user's repository, and would obey
    its config (hooks, fsmonitor) if told to trust it. Its home is the Venue's run/user/,
    where that user's git configuration and keys go."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if ref.user:
        env["HOME"] = venue_user_dir(ref.venue_path)
        env.pop("XDG_CONFIG_HOME", None)
    return {"env": env, **commands.as_user(ref.user)}


def git_clone(url: str, into: str, owner: Mapping[str, Any] | None = None) -> str:
    """`owner`: `as_owner`'s arguments, else as Backstage."""
    try:
        done = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--", url, into],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            **(owner or {"env": {**os.environ, "GIT_TERMINAL_PROMPT": "0"}}),
        )
    except FileNotFoundError:
        raise NotAProject(f"{url} is a git source but git is not installed: install git") from None
    except subprocess.TimeoutExpired:
        raise NotAProject(f"cloning {url} took longer than {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        raise NotAProject(f"cannot clone {url}: {git_reason(done.stderr)}")
    return into


def git_reason(output: str) -> str:
    """What git says went wrong: its first fatal: or error: line (its last lines are
    advice, "... and the repository exists."), without the prefix."""
    for line in output.splitlines():
        head, sep, rest = line.strip().partition(":")
        if sep and head.lower() in ("fatal", "error") and rest.strip():
            return rest.strip()
    return commands.key_line(output)


def step_env(ref: ActRef, spec: ActSpec) -> dict[str, str]:
    """The Act's environment for anything run on its behalf: its [env], and the
    vassal's rule for bytecode (`bytecode_env`)."""
    env = dict(spec.env)
    for key, value in bytecode_env(ref, spec):
        env.setdefault(key, value)
    return env


def checked_env(ref: ActRef, spec: ActSpec) -> dict[str, str]:
    """The environment of a check and the release steps: `step_env`, keeping no bytecode
    of an adopted folder's. Each of its versions is checked at one path
    (`releases.staging`), the project itself by `prepare` at another: bytecode kept for a
    path would be a save's before (valid for a source of the same size and mtime in
    whole seconds). A scaffold's versions are checked where made anew, each one."""
    env = step_env(ref, spec)
    if env.pop("PYTHONPYCACHEPREFIX", None) is not None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def edited_view(ref: ActRef, spec: ActSpec) -> ProjectView:
    """Where a command run in the Act works: a scaffold's own folder, where it is edited
    and its data is (its versions are never written); an adopted project's folder as
    it serves it."""
    return project_view(ref, spec if spec.adopted else dataclasses.replace(spec, current=False))


def process_env(ref: ActRef, spec: ActSpec) -> dict[str, str]:
    """The whole environment of a command run in the Act: `backstage run`, `manage`,
    release steps."""
    view = edited_view(ref, spec)
    return commands.process_env(
        ref.venue_path, step_env(ref, spec), view.settings or None, [view.chdir, *view.pythonpath]
    )


def write_act_files(crew: Crew, ref: ActRef, spec: ActSpec) -> None:
    """What the vassal needs in the Act's folder besides act.toml: the generated settings
    module, the module that calls an application factory, STATIC_ROOT's folder (uWSGI
    drops a static-map whose folder is missing), and one script per worker and cron
    job. Rewritten only when changed."""
    if uses_shim(spec):
        text = render_settings_shim(ref.name, spec.settings, default_static_root(ref.path))
        _write_if_changed(shim_path(ref.path), text, 0o644)
    target = spec.wsgi_app
    if target.factory and not serves_versions(ref, spec):
        _write_if_changed(factory_path(ref.path), render_factory(ref.key, target), 0o644)
    for root in (spec.static_root, spec.media_root):
        # never in the project (each version collects its own) nor in shared/ (made by
        # the first version, from the project's own data if it has some)
        inside = spec.source and (root + os.sep).startswith(spec.source + os.sep)
        if root and not inside and not root.startswith(ref.shared_dir + os.sep):
            os.makedirs(root, exist_ok=True)
    if spec.workers or spec.cron:
        os.makedirs(scripts_dir(ref), exist_ok=True)
    view = project_view(ref, spec)
    for name, command in spec.workers.items():
        # exec: the worker is the process uWSGI stops (stopsignal), not a shell above it
        text = _script(ref, f"worker {name}", view.chdir, view.pythonpath, f"exec {command}")
        _write_if_changed(worker_script(ref, name), text, 0o755)
    for name, entry in spec.cron.items():
        _, command = split_cron(name, entry)
        text = _script(ref, f"cron job {name}", view.chdir, view.pythonpath, command)
        _write_if_changed(cron_script(ref, name), text, 0o755)
    touch = reload_touch(ref)
    if spec.workers and not os.path.exists(touch):
        _write_if_changed(touch, "", 0o644)


def serves_versions(ref: ActRef, spec: ActSpec) -> bool:
    """Its code is served from versions, each with its own generated factory module
    (`releases.build`): a folder's always, a git clone's once a release serves."""
    if spec.adopted and spec.source != os.path.join(ref.path, CLONE_DIR):
        return True
    live = os.path.realpath(ref.current)
    return live.startswith(os.path.realpath(ref.releases_dir) + os.sep)


def _script(ref: ActRef, what: str, chdir: str, pythonpath: tuple[str, ...], command: str) -> str:
    lines = [
        "#!/bin/sh",
        f"# The {what} of {ref.key}, written by Backstage from act.toml: edit that file.",
        "# Run by the Act's vassal with its environment; the Venue's commands come first.",
        f'PATH={shlex.quote(os.path.join(ref.venue_path, "bin"))}:"$PATH"',
        f"VIRTUAL_ENV={shlex.quote(ref.venue_path)}",
        "export PATH VIRTUAL_ENV",
    ]
    if pythonpath:
        lines.append(f"PYTHONPATH={shlex.quote(os.pathsep.join(pythonpath))}; export PYTHONPATH")
    lines += [f"cd {shlex.quote(chdir)} || exit 1", command]
    return "\n".join(lines) + "\n"


def _write_if_changed(path: str, text: str, mode: int) -> None:
    try:
        with open(path) as current:
            if current.read() == text:
                return
    except OSError:
        pass
    write_atomic(path, text, mode)


def check_port_unclaimed(crew: Crew, ref: ActRef, port: int) -> None:
    """`port` is declared by no other Act of the Production nor by its router, and free:
    two that declare one port never both play, and the second would wait for ever."""
    production = declared.read(crew.layout)
    for found in production.acts:
        if found.ref.key != ref.key and found.spec is not None and found.spec.port == port:
            raise PortBusy(f"port {port} is Act {found.ref.key}'s: pick another for {ref.key}")
    try:
        router_port = split_address(production.production.router)[1]
    except BackstageError:
        return
    if router_port == port:
        raise PortBusy(f"port {port} is the router's: pick another for {ref.key}")
    if not port_free(port):
        raise PortBusy(f"port {port} is in use by another process: pick another for {ref.key}")


def check_options(spec: ActSpec, binary_path: str, plugins: str = "") -> None:
    """Every option of the Act's [uwsgi] table is one this uwsgi knows, with `plugins`
    loaded (those a modular build loads for an Act)."""
    if not spec.uwsgi:
        return
    known = uwsgi_binary.option_names(binary_path, plugins)
    for key in spec.uwsgi:
        if key not in known:
            raise InvalidSetting(
                f"[uwsgi] {key} is not an option of {binary_path}: check its spelling "
                "(`uwsgi --help` lists them)"
            )


def prepare(
    crew: Crew,
    act: ActManager,
    release_steps: bool = True,
    check: preflight.Checker = preflight.preflight,
) -> ActSpec:
    """Get the Act's current code ready to serve: requirements installed if they changed,
    the app imported once in a separate process (Django: and checked), and in that same
    process the release steps. The static mapping the pre-flight finds is declared.
    Raises at the first failure."""
    ref = act.ref
    spec = act.spec()
    check_options(spec, crew.stage.binary.path, crew.stage.plugins)
    write_act_files(crew, ref, spec)
    view = project_view(ref, spec)
    env = checked_env(ref, spec)
    if spec.adopted:
        ownership.prepare(ref)  # the Venue's packages and home, for its user's install
        commands.install_requirements(ref.venue_path, spec.source, ref.path, user=ref.user)
        shared.drop_dangling(ref.venue_path)
    # the check and the release steps in one process: one start of the app, not one a step
    found = check(
        preflight.Check(
            ref.venue_path,
            view.chdir,
            env,
            spec.wsgi_target,
            view.settings or None,
            view.pythonpath,
            user=ref.user,
            steps=spec.release if release_steps else (),
            act_dir=ref.path,
        )
    )
    if spec.adopted:
        spec = _declare_served(act, spec, found)
        write_act_files(crew, ref, spec)
    return spec


def _declare_served(act: ActManager, spec: ActSpec, found: preflight.Preflight) -> ActSpec:
    changes = served_changes(act.ref, spec, found)
    return act.declare(**changes) if changes else spec


def served_changes(ref: ActRef, spec: ActSpec, found: preflight.Preflight) -> dict[str, str]:
    """static_url/static_root and media_url/media_root as the project's settings say,
    where they differ from what is declared: the vassal serves both as files."""
    changes = {}
    for kind in ("static", "media"):
        url = getattr(found, f"{kind}_url") or ""
        root = getattr(found, f"{kind}_root") or ""
        try:
            served = static_map(url, root, kind.upper()) if url and root else []
        except BackstageError as exc:
            log.warning("%s: its %s files are not served: %s", ref.key, kind, exc)
            served = []
        if not served:
            url, root = "", ""
        if kind == "media" and root:
            root = media_folder(ref, spec, root)
        if (url, root) != (getattr(spec, f"{kind}_url"), getattr(spec, f"{kind}_root")):
            changes.update({f"{kind}_url": url, f"{kind}_root": root})
    return changes


def media_folder(ref: ActRef, spec: ActSpec, root: str) -> str:
    """Where uploads are: a MEDIA_ROOT inside the project is shared data, kept in the
    Act's shared/ and linked into each version (`control.shared`), so it is served from
    there, the one folder every version writes; one outside it is served where it is."""
    inside = shared.inside(spec.source, [root]) if spec.source else ()
    return os.path.join(ref.shared_dir, inside[0]) if inside else root


def configure(
    crew: Crew,
    act: ActManager,
    items: Iterable[str],
    reload: Callable[[], None],
    rebuild: Callable[[], object] | None = None,
) -> ActSpec:
    """Apply `KEY=VALUE` settings to act.toml, checked as a hand edit would be, and the
    [uwsgi] options against the Stage's uwsgi; the Manager applies them (a changed
    vassal config restarts a playing Act). Where only generated code changed (RELOAD)
    `reload` applies it, or for a git Act's changed `wsgi` `rebuild` (a release of the
    live commit: the factory's module is part of each release); refused, the old
    settings are put back."""
    old = act.spec()
    before = act.sess()
    new = apply_settings(old, items, act.ref.spec_path)
    if new.wsgi:  # as --wsgi writes it: a factory's arguments in one form
        new = dataclasses.replace(new, wsgi=str(new.wsgi_app))
    check_options(new, crew.stage.binary.path, crew.stage.plugins)
    # a value that would break the vassal config: refused here, rather than left for
    # the Manager to find and refuse while the old config plays on
    crew.stageset.vassal(crew.layout, act.ref, new)
    log_offset = size_of(act.log_path)
    written = since_boot()
    if new.port != old.port:
        with declared.locked(crew.layout.create_lock):  # as `act new` takes one
            check_port_unclaimed(crew, act.ref, new.port)
            _declare_all(crew, act, new)
    else:
        _declare_all(crew, act, new)
    effect = _effect(crew, act, old, new, before)
    try:
        _await_restart(crew, act, effect, before, log_offset, written)
    except ConfigRefused as exc:  # not when the Manager left it out: nothing of it played
        raise _put_back(crew, act, old, exc) from None
    # a factory's module is part of each version: a restart starts the live one's
    factory = new.wsgi != old.wsgi and serves_versions(act.ref, new)
    if effect == RELOAD or (effect == RESTART and factory):
        cloned = new.source == os.path.join(act.ref.path, CLONE_DIR)
        apply = rebuild if rebuild and cloned and new.wsgi != old.wsgi else reload
        try:
            apply()
        except BaseException:
            _declare_all(crew, act, old)
            raise
    return new


def _put_back(crew: Crew, act: ActManager, old: ActSpec, failed: ActFailed) -> ActFailed:
    """The settings before a change uWSGI refused, declared again: the Act plays them
    again (waited for), rather than being retried on what failed."""
    _declare_all(crew, act, old)
    # any master that serves now plays them: none lived (refused), and the Manager may
    # have pushed them already, as the config the Act last served with; not told refused
    # by what failed, which the Manager may try once more before it reads them
    back = act.await_restart(None, START_TIMEOUT)
    how = "it plays them again" if back else f"it did not play them within {START_TIMEOUT:.0f} s"
    why = str(failed).split(" (fix it, then", 1)[0].rstrip(".")
    return ActFailed(
        f"{why}; its settings before are put back and {how} (log: {act.log_path})",
        failed.log_tail,
    )


def _declare_all(crew: Crew, act: ActManager, spec: ActSpec) -> None:
    write_act_files(crew, act.ref, spec)
    act.declare(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)})
    _poke(crew)


def set_env(
    crew: Crew, act: ActManager, values: Mapping[str, str], reload: Callable[[], None]
) -> ActSpec:
    return _new_env(crew, act, {**act.spec().env, **values}, reload)


def unset_env(
    crew: Crew, act: ActManager, keys: Iterable[str], reload: Callable[[], None]
) -> ActSpec:
    env = dict(act.spec().env)
    missing = [key for key in keys if key not in env]
    if missing:
        raise NotFound(f"{act.ref.key} has no {missing[0]} in its environment")
    for key in keys:
        del env[key]
    return _new_env(crew, act, env, reload)


def _new_env(
    crew: Crew, act: ActManager, env: dict[str, str], reload: Callable[[], None]
) -> ActSpec:
    """The env declared; a playing Act whose config does not change with it (no workers
    or cron) is reloaded, checked first, with its env file written before: refused, the
    old env is put back."""
    old = act.spec()
    before = act.sess()
    log_offset = size_of(act.log_path)
    written = since_boot()
    effect = _effect(crew, act, old, dataclasses.replace(old, env=env), before)
    if effect == RELOAD:
        # held from the declaration to the reload: the Manager, which applies an env
        # edited by hand with a chain reload of its own, leaves this one to the command
        # (two reloads for one change, the second ignored by uWSGI as the first ran)
        with declared.locked(crew.layout.act_env_lock(act.ref)):
            new = act.declare(env=env)
            act.sync_env(new)
            try:
                reload()
            except BaseException:
                act.declare(env=old.env)
                act.sync_env(old)
                raise
    else:
        new = act.declare(env=env)
    _poke(crew)
    _await_restart(crew, act, effect, before, log_offset, written)
    return new


def _effect(crew: Crew, act: ActManager, old: ActSpec, new: ActSpec, before: Sess | None) -> str:
    """`restarts`, for an Act playing (`before`) or on its way: no master answers while
    the restart for a change before this one is under way (the old one withdrawn, the
    next waiting for its port or loading), and that Act restarts anew for this change
    too: the caller waits for it as for a playing Act's, where it returned at once."""
    effect = restarts(crew, act, old, new, before is not None)
    if effect == NOT_PLAYING and new.enabled and act.on_its_way():
        if restarts(crew, act, old, new, True) == RESTART:
            return RESTART
    return effect


def _await_restart(
    crew: Crew, act: ActManager, effect: str, before: Sess | None, log_offset: int, written: float
) -> None:
    """A change that restarts a playing Act is done when a master forked after the change
    was `written` serves: a reload right after would otherwise chain-reload the old one,
    which the restart replaces, and a master pushed for a change before this one (its
    restart still under way) plays the config before."""
    if effect == RESTART and crew.manager.running():
        act.restarted_or_raise(before, START_TIMEOUT, log_offset, written)


# What applying a changed act.toml does to a playing Act, as `restarts` says.
RESTART = "restart"  # its vassal config changed: the Manager withdraws and pushes it
RELOAD = "reload"  # the same config, other generated code: a (checked) reload applies it
NEXT_RELOAD = "next reload"  # nothing the Act runs now: read at the next reload or deploy
AT_ONCE = "at once"  # what the Production Manager itself acts on (the watch, rotated logs)

# The settings the Production Manager applies by itself, with no reload.
MANAGER_SETTINGS = frozenset({"watch", "watch_paths", "watch_ignore", "log_keep"})
NOT_PLAYING = "not playing"  # nothing plays now: it applies when the Act starts


def restarts(crew: Crew, act: ActManager, old: ActSpec, new: ActSpec, playing: bool) -> str:
    """What the change from `old` to `new` does to the Act, `playing` before it: RESTART
    when the vassal config it renders to changed (which the Manager applies by
    restarting it), RELOAD when only the code Backstage generates for it changed (the
    module of a factory, the settings module, a worker's script, the env of an Act with
    no workers or cron: each worker reads it as it loads the app), AT_ONCE when only what
    the Manager acts on changed, else NEXT_RELOAD; NOT_PLAYING when it does not play."""
    if not (new.enabled and playing):
        return NOT_PLAYING
    render = crew.stageset.vassal
    try:
        same = render(crew.layout, act.ref, old) == render(crew.layout, act.ref, new)
    except BackstageError:
        return RESTART  # the Manager says why it cannot push it
    if not same:
        return RESTART
    if _generated(act.ref, old) != _generated(act.ref, new) or old.env != new.env:
        return RELOAD  # what each worker loads as it starts: its env file included
    changed = {
        f.name for f in dataclasses.fields(new) if getattr(old, f.name) != getattr(new, f.name)
    }
    return AT_ONCE if changed <= MANAGER_SETTINGS else NEXT_RELOAD


def _generated(ref: ActRef, spec: ActSpec) -> tuple[str, ...]:
    """The text of what `write_act_files` generates that running workers have loaded."""
    texts = []
    if uses_shim(spec):
        texts.append(render_settings_shim(ref.name, spec.settings, default_static_root(ref.path)))
    target = spec.wsgi_app
    if target.factory:
        texts.append(render_factory(ref.key, target))
    texts += sorted(f"{name} {command}" for name, command in spec.workers.items())
    return tuple(texts)


def _poke(crew: Crew) -> None:
    if crew.manager.running():
        crew.manager.poke()


def run(act: ActManager, argv: Sequence[str]) -> int:
    """Run `argv` in the Act's project folder with its Venue and environment (and as its
    Venue's user, if it has one), attached to this terminal; its exit status."""
    if not argv:
        raise InvalidSetting("nothing to run: write the command after --")
    spec = act.spec()
    view = edited_view(act.ref, spec)
    command = list(argv)
    if command[0] in ("python", "python3"):
        command[0] = venue_python(act.ref.venue_path)
    try:
        return subprocess.call(
            command,
            cwd=view.chdir,
            env=process_env(act.ref, spec),
            **commands.as_user(act.ref.user),
        )
    except FileNotFoundError:
        raise NotFound(f"no command {argv[0]!r} in Venue {act.ref.venue} or on PATH") from None


def manage(act: ActManager, args: Sequence[str]) -> int:
    """Django's manage.py (or `python -m django`) with the Act's settings."""
    spec = act.spec()
    if not spec.django_settings:
        raise InvalidSetting(f"{act.ref.key} is not a Django project: use `backstage run`")
    chdir = edited_view(act.ref, spec).chdir
    if os.path.isfile(os.path.join(chdir, "manage.py")):
        return run(act, ["python", "manage.py", *args])
    return run(act, ["python", "-m", "django", *args])
