"""What a source folder holds: a Django project, another WSGI app, or nothing to serve.

Read from the files only: the project's code is never imported here (importing it
runs its code, in Backstage's own interpreter, which is not the Venue's). A Django
project is found from manage.py's default DJANGO_SETTINGS_MODULE, else from a
settings module beside a wsgi.py; its WSGI callable from the settings'
WSGI_APPLICATION when that is a literal string, else `<package>.wsgi:application`.
Any other WSGI app is named with `MODULE:CALLABLE`, or `MODULE:FACTORY(ARGS)` for an
application factory called with literal arguments (Flask's `create_app()`).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass

from ..errors import InvalidSetting, NotAProject

# Where a module may live in a source folder: at its top, or in a src/ layout.
MODULE_ROOTS = ("", "src")

# The files that name a project's dependencies, first found wins.
REQUIREMENT_FILES = (
    "requirements.txt",
    "requirements/production.txt",
    "requirements/prod.txt",
    "pyproject.toml",
)

# Folders never searched for a settings module beside a wsgi.py.
SKIPPED_FOLDERS = frozenset({"node_modules", "site-packages", "__pycache__", "static", "media"})

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_WSGI = re.compile(rf"({_DOTTED}):([A-Za-z_]\w*)(\(.*\))?", re.DOTALL)
_MODULE = re.compile(_DOTTED)


@dataclass(frozen=True)
class WsgiTarget:
    """`module:callable`, or with `call` (the factory's arguments as Python literals,
    written back by `repr`: "" for none) `module:callable(call)`: the app is what
    calling it returns."""

    module: str
    callable: str = "application"
    call: str | None = None

    def __str__(self) -> str:
        return f"{self.module}:{self.callable}" + ("" if self.call is None else f"({self.call})")

    @property
    def factory(self) -> bool:
        return self.call is not None


@dataclass(frozen=True)
class Requirements:
    path: str
    kind: str  # "requirements" (pip's -r format) or "pyproject"


@dataclass(frozen=True)
class Project:
    """A source folder Backstage can serve. `settings` is None for a plain WSGI app;
    `pythonpath` lists the folders its modules are imported from."""

    path: str
    kind: str  # "django" or "wsgi"
    wsgi: WsgiTarget
    settings: str | None
    pythonpath: tuple[str, ...]
    requirements: Requirements | None

    @property
    def is_django(self) -> bool:
        return self.kind == "django"


def parse_wsgi(text: str, what: str = "--wsgi") -> WsgiTarget:
    """`MODULE:CALLABLE` or `MODULE:FACTORY(ARGS)`, as given to --wsgi; the arguments
    are Python literals (strings, numbers, True/False/None, tuples, lists, dicts),
    positional or by keyword, and are written back in one canonical form."""
    match = _WSGI.fullmatch(text.strip())
    if not match:
        raise InvalidSetting(
            f"{what} {text!r} is not MODULE:CALLABLE or MODULE:FACTORY() "
            "(for example mysite.wsgi:application or flaskr:create_app())"
        )
    module, name, call = match.groups()
    if call is None:
        return WsgiTarget(module, name)
    return WsgiTarget(module, name, _literal_arguments(text, name + call, what))


def _literal_arguments(text: str, call: str, what: str) -> str:
    """The arguments of `name(...)` as canonical Python source, or InvalidSetting
    when any is not a literal: they are evaluated here, never run as code."""
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise InvalidSetting(f"{what} {text!r}: the factory's arguments do not parse")
    try:
        if any(k.arg is None for k in node.keywords) or any(
            isinstance(a, ast.Starred) for a in node.args
        ):
            raise ValueError
        positional = [repr(ast.literal_eval(a)) for a in node.args]
        named = [f"{k.arg}={ast.literal_eval(k.value)!r}" for k in node.keywords]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidSetting(
            f"{what} {text!r}: a factory's arguments must be literals "
            "(strings, numbers, True, False, None, lists, dicts), e.g. create_app('production')"
        ) from None
    return ", ".join(positional + named)


def parse_module(text: str, what: str = "--settings") -> str:
    if not _MODULE.fullmatch(text.strip()):
        raise InvalidSetting(
            f"{what} {text!r} is not a dotted module name (for example mysite.settings)"
        )
    return text.strip()


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
    for node in ast.walk(_parse(path)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
            and node.args[0].value == "DJANGO_SETTINGS_MODULE"  # type: ignore[attr-defined]
        ):
            return node.args[1].value  # type: ignore[attr-defined, no-any-return]
    return None


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


class _NotLiteral:
    """A setting assigned something other than a string literal."""


NOT_LITERAL = _NotLiteral()


def literal_setting(
    source: str, module: str, name: str, _seen: frozenset[str] = frozenset()
) -> str | None | _NotLiteral:
    """The value of a module-level `NAME = "..."` in a settings module, following its
    `from X import *` lines (as `from .base import *` in a settings package) in order;
    None when never assigned, NOT_LITERAL when assigned anything but a string."""
    path = module_file(source, module)
    if path is None or module in _seen:
        return None
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    value: str | None | _NotLiteral = None
    for node in _parse(path).body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            target = _absolute(package, node.module or "", node.level)
            inherited = literal_setting(source, target, name, _seen | {module})
            if inherited is not None:
                value = inherited
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                constant = node.value
                if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                    value = constant.value
                else:
                    value = NOT_LITERAL
    return value


def _absolute(package: str, module: str, level: int) -> str:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join(base + ([module] if module else []))


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
