"""The pre-flight's check: import the app and, for Django, run its checks.

Run by the cold pre-flight as `python -c <this file> MODULE:CALLABLE 0|1` (or
MODULE:FACTORY(ARGS) with literal arguments: the factory is called, its result checked;
the project's folder as the working directory, the Act's environment), and by the warm one
(`checker.py`) in a child forked for each save. On success the last line printed is
JSON: what the settings say of static and media files (Django), and `data`, the paths
the app writes (Django's MEDIA_ROOT and SQLite files, Flask's instance folder).

Standard library only, importing nothing of Backstage: it runs under the Venue's Python.
"""

import ast
import importlib
import inspect
import json
import os
import sys


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


def check(target: str, django: bool) -> None:
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


if __name__ == "__main__":
    check(sys.argv[1], sys.argv[2] == "1")
