"""What a source folder holds: a Django project, another WSGI app, or nothing to serve.

The data and what is read from parsed code; `files.project` reads the folder. Read from
the files only: the project's code is never imported here (importing it
runs its code, in Backstage's own interpreter, which is not the Venue's). A Django
project is found from manage.py's default DJANGO_SETTINGS_MODULE, else from a
settings module beside a wsgi.py; its WSGI callable from the settings'
WSGI_APPLICATION when that is a literal string, else `<package>.wsgi:application`.
Any other WSGI app is named with `MODULE:CALLABLE`, or `MODULE:FACTORY(ARGS)` for an
application factory called with literal arguments (Flask's `create_app()`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ..errors import InvalidSetting

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


class NotLiteral:
    """A setting assigned something other than a string literal."""


NOT_LITERAL = NotLiteral()


def manage_settings(tree: ast.Module) -> str | None:
    """manage.py's `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "...")`, if literal."""
    for node in ast.walk(tree):
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


def star_import(node: ast.stmt, package: str) -> str | None:
    """The module a `from X import *` line imports, absolute (from `package`), or None
    when `node` is no such line."""
    if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
        return absolute_module(package, node.module or "", node.level)
    return None


def assigned(node: ast.stmt, name: str) -> str | None | NotLiteral:
    """What a module-level line assigns to `name`: the string, NOT_LITERAL when anything
    else, None when it assigns no `name`."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return None
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
        return None
    constant = node.value
    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
        return constant.value
    return NOT_LITERAL


def absolute_module(package: str, module: str, level: int) -> str:
    """`from .{module}` (`level` dots) in `package`, as an absolute module name."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join(base + ([module] if module else []))
