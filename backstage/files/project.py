"""Detecting the project in a source folder: finding its modules, settings, WSGI
callable and requirements file, and parsing (never importing) its code. What is found
is `model.project`'s data."""

from __future__ import annotations

import ast
import os

from ..errors import NotAProject
from ..model.project import (
    MODULE_ROOTS,
    REQUIREMENT_FILES,
    SKIPPED_FOLDERS,
    NotLiteral,
    Project,
    Requirements,
    WsgiTarget,
    assigned,
    manage_settings,
    parse_module,
    parse_wsgi,
    star_import,
)


def module_file(source: str, module: str) -> str | None:
    """The file of `module` in the source folder (a .py or a package's __init__.py)."""
    parts = module.split(".")
    for root in MODULE_ROOTS:
        base = os.path.join(source, root, *parts)
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
    return None


def module_root(source: str, module: str) -> str | None:
    """The folder `module` is imported from (the source folder or its src/)."""
    found = module_file(source, module)
    if found is None:
        return None
    depth = module.count(".") + (2 if found.endswith("__init__.py") else 1)
    root = found
    for _ in range(depth):
        root = os.path.dirname(root)
    return root


def _parse(path: str) -> ast.Module:
    try:
        with open(path, encoding="utf-8") as source:
            return ast.parse(source.read(), filename=path)
    except SyntaxError as exc:
        raise NotAProject(f"{path} line {exc.lineno}: {exc.msg}; fix it and try again") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotAProject(f"cannot read {path}: {exc}") from None


def manage_py_settings(source: str) -> str | None:
    """manage.py's `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "...")`, if literal."""
    path = os.path.join(source, "manage.py")
    if not os.path.isfile(path):
        return None
    return manage_settings(_parse(path))


def settings_beside_wsgi(source: str, depth: int = 2) -> list[str]:
    """Settings modules (`pkg.settings`) found in a package that also has a wsgi.py."""
    found = []
    for folder, dirs, files in os.walk(source):
        relative = os.path.relpath(folder, source)
        level = 0 if relative == "." else relative.count(os.sep) + 1
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_FOLDERS
            and level < depth
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        if level == 0 or "wsgi.py" not in files:
            continue
        has_settings = "settings.py" in files or os.path.isfile(
            os.path.join(folder, "settings", "__init__.py")
        )
        if has_settings:
            parts = relative.split(os.sep)
            if parts[0] in MODULE_ROOTS[1:]:
                parts = parts[1:]
            found.append(".".join(parts + ["settings"]))
    return found


def literal_setting(
    source: str, module: str, name: str, _seen: frozenset[str] = frozenset()
) -> str | None | NotLiteral:
    """The value of a module-level `NAME = "..."` in a settings module, following its
    `from X import *` lines (as `from .base import *` in a settings package) in order;
    None when never assigned, NOT_LITERAL when assigned anything but a string."""
    path = module_file(source, module)
    if path is None or module in _seen:
        return None
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    value: str | None | NotLiteral = None
    for node in _parse(path).body:
        target = star_import(node, package)
        found = (
            assigned(node, name)
            if target is None
            else literal_setting(source, target, name, _seen | {module})
        )
        if found is not None:
            value = found
    return value


def django_wsgi(source: str, settings: str) -> WsgiTarget:
    value = literal_setting(source, settings, "WSGI_APPLICATION")
    if isinstance(value, str):
        module, _, attribute = value.rpartition(".")
        if module and module_file(source, module):
            return WsgiTarget(module, attribute)
        raise NotAProject(
            f"WSGI_APPLICATION {value!r} in {settings} names no module in {source}: "
            f"fix it or pass --wsgi MODULE:CALLABLE"
        )
    package = settings.split(".")[0]
    if module_file(source, f"{package}.wsgi"):
        return WsgiTarget(f"{package}.wsgi", "application")
    raise NotAProject(
        f"no literal WSGI_APPLICATION in {settings} and no {package}/wsgi.py in {source}: "
        f"pass --wsgi MODULE:CALLABLE"
    )


def find_settings(source: str) -> str | None:
    from_manage = manage_py_settings(source)
    if from_manage:
        return from_manage
    if os.path.isfile(os.path.join(source, "manage.py")):
        raise NotAProject(
            f"{source}/manage.py sets no literal DJANGO_SETTINGS_MODULE: pass --settings MODULE"
        )
    candidates = settings_beside_wsgi(source)
    if len(candidates) > 1:
        raise NotAProject(
            f"{source} holds several Django settings ({', '.join(candidates)}): "
            f"pass --settings MODULE"
        )
    return candidates[0] if candidates else None


def find_requirements(source: str) -> Requirements | None:
    for name in REQUIREMENT_FILES:
        path = os.path.join(source, name)
        if os.path.isfile(path):
            kind = "pyproject" if name.endswith(".toml") else "requirements"
            return Requirements(path, kind)
    return None


def detect(source: str, wsgi: str | None = None, settings: str | None = None) -> Project:
    """The project in the folder `source`; `wsgi` and `settings` are --wsgi and
    --settings as given, each overriding what is found."""
    source = os.path.abspath(source)
    if not os.path.isdir(source):
        raise NotAProject(f"{source} is not a folder: give the folder of the project")
    target = parse_wsgi(wsgi) if wsgi else None
    if settings:
        settings = parse_module(settings)
        if module_file(source, settings) is None:
            raise NotAProject(f"--settings {settings}: no such module in {source}")
    else:
        settings = find_settings(source)
    if settings is not None and module_file(source, settings) is None:
        raise NotAProject(
            f"the settings module {settings} (from manage.py) is not in {source}: "
            f"pass --settings MODULE"
        )
    if target is None:
        if settings is None:
            raise NotAProject(
                f"no Django project in {source} (no manage.py, no settings.py beside a "
                f"wsgi.py): for another WSGI app pass --wsgi MODULE:CALLABLE"
            )
        target = django_wsgi(source, settings)
    requirements = find_requirements(source)
    root = module_root(source, target.module)
    if root is None and (requirements is None or requirements.kind != "pyproject"):
        raise NotAProject(f"--wsgi {target}: no module {target.module} in {source}")
    roots = [root or source]
    if settings is not None:
        roots.append(module_root(source, settings) or source)
    return Project(
        path=source,
        kind="django" if settings else "wsgi",
        wsgi=target,
        settings=settings,
        pythonpath=tuple(dict.fromkeys(roots)),
        requirements=requirements,
    )
