"""The pre-flight's check and a release's steps, in one start of the Venue's Python.

Run as `python -c <this file> COMMAND` in the project's folder with the Act's
environment, COMMAND being JSON: {"wsgi": "MOD:CALLABLE" (or MOD:FACTORY(ARGS) with
literal arguments: the factory is called, its result checked) or null, "django": bool,
"python": the Venue's Python, "steps": [[argv...], ...], "steps_pythonpath": str or
null, "step_timeout": seconds, "static_seen": fingerprint or null, "hold": bool,
"mark": str}.

First the check: import the app as a worker would and, for Django, run its checks; its
last line printed is JSON: what the settings say of static and media files (Django),
and `data`, the paths the app writes (Django's MEDIA_ROOT and SQLite files, Flask's
instance folder). With "hold", it then waits for a line on stdin: `go` runs the steps (Backstage
has put the app's data in place meanwhile), anything else ends the run.
Then each step in order, in this same process when it is Django's `migrate` or
`collectstatic` (Django is set up already: that start is the one saved), else as a
process of its own. `migrate` runs only when its plan is not empty (or when reading
the plan fails: then migrate says why), `collectstatic` only when a static source
changed since the fingerprint `static_seen`. The first phase that fails ends the run.

Each phase's output is framed by lines `<mark> {json}` on stdout, written after both
streams are flushed: {"begin": "check"|N} then {"end": ..., "code": N, "skipped":
reason, "static": fingerprint, "missing": true, "timeout": true} (the last three only
where they apply). A phase begun and never ended died with the process.

The warm pre-flight (`checker.py`) calls `check` in a child forked for each save.
Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import ast
import hashlib
import importlib
import inspect
import json
import os
import signal
import subprocess
import sys

# migrate's options that leave its plan the whole graph of the one database
PLAN_OPTIONS = {"--noinput", "--no-input", "--no-color", "--force-color", "--traceback"}
PLAN_VALUED = {"--database", "-v", "--verbosity"}
# collectstatic's own default ignore patterns
IGNORED = ["CVS", ".*", "*~"]


def load(target: str) -> object:
    """The app `target` names: MODULE:CALLABLE, or what MODULE:FACTORY(ARGS) returns."""
    module, _, name = target.partition(":")
    call = None
    if name.endswith(")"):  # parsed and checked literal by Backstage before
        node = ast.parse(name, mode="eval").body
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        call, name = node, node.func.id
    app = getattr(importlib.import_module(module), name)
    if call is not None:
        args = [ast.literal_eval(a) for a in call.args]
        app = app(*args, **{str(k.arg): ast.literal_eval(k.value) for k in call.keywords})
    if not callable(app):
        raise TypeError(f"{target} is {type(app).__name__}, not a WSGI callable")
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to tell
        return app
    try:
        signature.bind({}, lambda status, headers, exc_info=None: None)
    except TypeError:
        factory = "" if call is not None else f"; an application factory is written {target}()"
        raise TypeError(
            f"{target} is not a WSGI app: it cannot be called with (environ, start_response)"
            f", its signature is {name}{signature}{factory}"
        ) from None
    return app


def check(target: str, django: bool) -> dict:
    """Print what the check found (its last line, JSON), and return it."""
    app = load(target)
    found = {}
    if django:
        from django.conf import settings
        from django.core.management import call_command

        call_command("check")
        found = {"static_url": settings.STATIC_URL, "static_root": settings.STATIC_ROOT}
        if settings.MEDIA_ROOT:  # else uploads have no folder: nothing to serve
            found.update(media_url=settings.MEDIA_URL, media_root=settings.MEDIA_ROOT)
        found = {k: (None if v is None else str(v)) for k, v in found.items()}
    found["data"] = written(app, django)
    print("\n" + json.dumps(found))
    return found


def written(app: object, django: bool) -> list:
    """Absolute paths the app writes its data to, as its settings or framework say."""
    paths = []
    if django:
        from django.conf import settings

        paths.append(settings.MEDIA_ROOT)
        for database in settings.DATABASES.values():
            if str(database.get("ENGINE", "")).endswith("sqlite3"):
                paths.append(database.get("NAME"))
    else:
        paths.append(getattr(app, "instance_path", None))  # Flask's instance folder
    return [os.path.abspath(str(p)) for p in paths if p and str(p) != ":memory:"]


# -- Django's own steps, in this process ----------------------------------------------


def django_command(argv: list, python: str) -> list:
    """`[manage.py|django, COMMAND, ...]` when the step is `python manage.py COMMAND` or
    `python -m django COMMAND` of the Venue's Python, else []."""
    if len(argv) < 3 or argv[0] != python:
        return []
    if argv[1] == "manage.py" and os.path.isfile("manage.py"):
        return argv[1:]
    if argv[1:3] == ["-m", "django"] and len(argv) > 3:
        return ["django", *argv[3:]]
    return []


def migrations_pending(options: list) -> bool:
    """Whether `migrate OPTIONS` has anything to do; True whenever that is not certain."""
    database, rest = "default", list(options)
    while rest:
        option = rest.pop(0)
        name, _, value = option.partition("=")
        if name in PLAN_VALUED:
            value = value or (rest.pop(0) if rest else "")
            database = value if name == "--database" else database
        elif option not in PLAN_OPTIONS:
            return True  # targets, --fake, --run-syncdb...: migrate decides
    try:
        import django
        from django.db import connections
        from django.db.migrations.executor import MigrationExecutor

        django.setup()
        executor = MigrationExecutor(connections[database])
        if executor.loader.detect_conflicts():
            return True  # migrate refuses them
        return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except Exception:
        return True  # migrate says what is wrong, as it always did


def static_sources() -> list:
    """(index of its storage, name collected, storage, path in it) of every file
    collectstatic would collect, in its order: it takes the first file of a name, in the
    finders' and their storages' order."""
    from django.contrib.staticfiles.finders import get_finders

    groups: dict = {}
    for number, finder in enumerate(get_finders()):
        for path, storage in finder.list(IGNORED):
            groups.setdefault((number, id(storage)), (storage, []))[1].append(path)
    found = []
    for index, (storage, paths) in enumerate(groups.values()):
        prefix = getattr(storage, "prefix", None) or ""
        found += [(index, os.path.join(prefix, path), storage, path) for path in sorted(paths)]
    return found


def content_digest(storage, path: str) -> bytes:
    with storage.open(path) as source:
        return hashlib.sha256(source.read()).digest()


def static_fingerprint(options: list) -> str:
    """A digest of every file collectstatic would collect (name and content), of where
    it collects them to and how."""
    import django
    from django.conf import settings

    django.setup()
    storages = getattr(settings, "STORAGES", {}).get("staticfiles")
    head = [django.get_version(), str(settings.STATIC_ROOT), settings.STATIC_URL, repr(storages)]
    digest = hashlib.sha256(json.dumps([head, options]).encode())
    # the storages' order counts, not where they are (each release is elsewhere)
    for index, name, storage, path in static_sources():
        digest.update(f"{index}\0{name}\0".encode())
        digest.update(content_digest(storage, path))
    return digest.hexdigest()


def drop_stale_copies() -> None:
    """collectstatic keeps a collected copy that is not older than its source in whole
    seconds (Django's own rule): a source edited in the second of the last collect, or
    one with an older time (a git checkout's), would keep its old copy, linked from the
    live version. Each copy whose size or content differs from its source's is removed
    first, so that collectstatic copies it anew."""
    from django.contrib.staticfiles.storage import staticfiles_storage

    seen = set()
    for _, name, storage, path in static_sources():
        if name in seen:
            continue
        seen.add(name)
        try:
            copy = staticfiles_storage.path(name)
            if os.path.islink(copy) or not os.path.isfile(copy):
                continue  # --link's copies are the sources themselves
            if os.path.getsize(copy) == storage.size(path):
                with open(copy, "rb") as collected:
                    if hashlib.sha256(collected.read()).digest() == content_digest(storage, path):
                        continue
            os.unlink(copy)  # a link to the live version's copy: that one stays
        except (NotImplementedError, OSError):
            continue  # a storage with no local files: collectstatic alone decides


def collected(static_root: object) -> bool:
    try:
        return bool(static_root) and bool(os.listdir(str(static_root)))
    except OSError:
        return False


def run_django(argv: list) -> int:
    """A management command as manage.py (or `python -m django`) would run it."""
    saved = sys.argv
    sys.argv = list(argv)
    try:
        if argv[0] == "manage.py":
            import runpy

            runpy.run_path("manage.py", run_name="__main__")
        else:
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
        return 0
    finally:
        sys.argv = saved


def django_step(argv: list, command: dict) -> dict:
    subcommand, options = argv[1], argv[2:]
    result: dict = {}
    if subcommand == "migrate" and not migrations_pending(options):
        return {"code": 0, "skipped": "no migration to apply"}
    if subcommand == "collectstatic":
        from django.conf import settings

        try:
            result["static"] = static_fingerprint(options)
        except Exception:  # noqa: BLE001 (collectstatic runs, and says what is wrong)
            result = {}
        seen = command.get("static_seen")
        if result and result["static"] == seen and collected(settings.STATIC_ROOT):
            return {"code": 0, "skipped": "no static file changed", **result}
        try:
            drop_stale_copies()
        except Exception:  # noqa: BLE001 (collectstatic runs, and says what is wrong)
            pass
    return {"code": guarded(run_django, argv), **result}


# -- the run ------------------------------------------------------------------------------


def guarded(function, *args) -> int:
    """`function`'s exit status as a process's would be: 0, SystemExit's, or 1 after the
    traceback."""
    try:
        function(*args)
        return 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1


def in_folder(cwd: str, run) -> int:
    """`run()`'s exit status, run in `cwd` by a forked child of a warm process (`checker.py`,
    `warmcheck.py`): the folder's files as they are now, not as the parent's import found
    them; SystemExit's code when a number, else 1 (after the traceback); output flushed,
    as the child then leaves with `os._exit`."""
    code = 1
    try:
        os.chdir(cwd)
        importlib.invalidate_caches()
        code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def process_step(argv: list, command: dict, environment: dict, cwd: str) -> dict:
    env = dict(environment)
    if command.get("steps_pythonpath"):
        env["PYTHONPATH"] = command["steps_pythonpath"]
    else:
        env.pop("PYTHONPATH", None)
    try:
        # in this process's group, which Backstage kills whole if this one hangs
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return {"code": 127, "missing": True}
    try:
        return {"code": process.wait(timeout=command.get("step_timeout"))}
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return {"code": -signal.SIGKILL, "timeout": True}


def mark(command: dict, data: dict) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"\n{command['mark']} {json.dumps(data)}\n".encode())


def checked(command: dict) -> tuple:
    """The check's phase: its exit status, and what it found."""
    found: dict = {}

    def check_found() -> None:
        found.update(check(command["wsgi"], bool(command.get("django"))))

    mark(command, {"begin": "check"})
    code = guarded(check_found)
    mark(command, {"end": "check", "code": code})
    return code, found


def migrates(command: dict) -> bool:
    """Whether a step is Django's `migrate`, run in this process."""
    python = command.get("python", "")
    return any(
        django_command(argv, python)[1:2] == ["migrate"] for argv in command.get("steps", [])
    )


def migration_modules() -> None:
    """Every app's migrations imported, as migrate's plan imports them."""
    from django.db.migrations.loader import MigrationLoader

    MigrationLoader(None, ignore_no_migrations=True)


def close_connections() -> None:
    """Django's connections closed: a database file may be put in place under an open
    one, and a forked process must not share one."""
    from django.db import connections

    connections.close_all()


def main(command: dict, environment: dict | None = None) -> int:
    """`environment`: what steps run as processes get (what the app may change of its
    process must not reach them); by default this process's, before the app's import."""
    environment, cwd = dict(os.environ if environment is None else environment), os.getcwd()
    django = bool(command.get("django"))
    if command.get("wsgi"):
        code, _ = checked(command)
        if code:
            return code
    if command.get("hold"):
        if sys.stdin.readline().strip() != "go":
            return 0
        if django:
            close_connections()
    for number, argv in enumerate(command.get("steps", [])):
        mark(command, {"begin": number})
        found = django_command(argv, command.get("python", "")) if django else []
        if found and found[1] in ("migrate", "collectstatic"):
            result = django_step(found, command)
        else:
            result = process_step(argv, command, environment, cwd)
        mark(command, {"end": number, **result})
        if result["code"]:
            return result["code"] if result["code"] > 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
