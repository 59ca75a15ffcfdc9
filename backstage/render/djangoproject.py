"""Django's project template, rendered as `django-admin startproject NAME` renders it,
without running Django: pure, from the template's files to the project's.

What startproject does with its template (django/core/management/templates.py, the
same from Django 4.2 to 6.0): it walks django/conf/project_template, leaving out
folders whose name starts with "." and `__pycache__`, and files ending in .pyo, .pyc or
.py.class; in every path "project_name" becomes the name and a final ".py-tpl" becomes
".py". A file whose new name ends in ".py" is a Django template rendered with autoescape
off; any other is copied as it is. Each file gets its template's mode less the umask
(the writer applies that), each folder os.makedirs' 0777 less the umask.

Only what Django's templates use is understood here: `{{ variable }}` of the names in
`context_for`, and `{# comments #}`. Anything else (a tag, a filter, another variable,
a name clash, a file that is not UTF-8) renders to None: the caller then runs
startproject itself.
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Django's own lexer splits a template on this (django/template/base.py, tag_re)
TAG = re.compile(r"({%.*?%}|{{.*?}}|{#.*?#})")

# startproject's SECRET_KEY: SECRET_KEY_INSECURE_PREFIX + get_random_secret_key()
SECRET_KEY_PREFIX = "django-insecure-"
SECRET_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)"
SECRET_KEY_LENGTH = 50

NAME = "project_name"  # in paths, replaced by the project's name
SUFFIXES = ((".py-tpl", ".py"),)  # TemplateCommand.rewrite_template_suffixes
RENDERED = (".py",)  # startproject's default --extension
SKIPPED = (".pyo", ".pyc", ".py.class")
FOLDER_MODE = 0o777  # os.makedirs' own, less the umask


@dataclass(frozen=True)
class TemplateEntry:
    """One folder or file of the template, as read: `path` relative to the template's
    folder ("/"-separated), its permission bits, and its bytes (None for a folder)."""

    path: str
    mode: int
    data: bytes | None = None


@dataclass(frozen=True)
class Made:
    """One folder or file of the project: `path` relative to the project's folder, the
    mode before the umask, the bytes (None for a folder)."""

    path: str
    mode: int
    data: bytes | None = None


def secret_key(choice: Callable[[str], str] = secrets.choice) -> str:
    """A SECRET_KEY as startproject writes it: Django's prefix and 50 characters of
    get_random_secret_key's alphabet, from `secrets`."""
    return SECRET_KEY_PREFIX + "".join(choice(SECRET_KEY_CHARS) for _ in range(SECRET_KEY_LENGTH))


def secret_key_pattern() -> str:
    """A regular expression of every key `secret_key` can make."""
    chars = re.escape(SECRET_KEY_CHARS)
    return f"{re.escape(SECRET_KEY_PREFIX)}[{chars}]{{{SECRET_KEY_LENGTH}}}"


def version_of(init_source: str) -> tuple[object, ...] | None:
    """Django's VERSION tuple, read from the text of its `django/__init__.py`."""
    try:
        tree = ast.parse(init_source)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "VERSION" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value if isinstance(value, tuple) else None
    return None


def version_names(version: tuple[object, ...]) -> tuple[str, str] | None:
    """(django_version, docs_version) as django.utils.version makes them from VERSION;
    None for a pre-alpha (its version names a git commit) or a tuple not Django's."""
    if len(version) != 5:
        return None
    major, minor, micro, level, serial = version
    if not all(isinstance(n, int) for n in (major, minor, micro, serial)):
        return None
    if level not in ("alpha", "beta", "rc", "final") or (level == "alpha" and serial == 0):
        return None
    main = ".".join(str(n) for n in version[: 2 if micro == 0 else 3])
    sub = "" if level == "final" else {"alpha": "a", "beta": "b", "rc": "rc"}[str(level)]
    sub += str(serial) if sub else ""
    docs = f"{major}.{minor}" if level == "final" else "dev"
    return main + sub, docs


def context_for(
    name: str, secret: str, django_version: str, docs_version: str, directory: str
) -> dict[str, str]:
    """What startproject's templates may name: `directory` is the project's folder."""
    return {
        "project_name": name,
        "secret_key": secret,
        "docs_version": docs_version,
        "django_version": django_version,
        "project_directory": directory,
        "camel_case_project_name": "".join(c for c in name.title() if c != "_"),
    }


def render_text(text: str, context: Mapping[str, str]) -> str | None:
    """`text` as Django's template engine renders it with `context` (autoescape off);
    None when it holds anything but variables of `context` and comments."""
    out = []
    for i, part in enumerate(TAG.split(text)):
        if i % 2 == 0:
            out.append(part)
        elif part.startswith("{#"):
            continue
        elif part.startswith("{{") and part[2:-2].strip() in context:
            out.append(context[part[2:-2].strip()])
        else:
            return None
    return "".join(out)


def _excluded(folders: Iterable[str]) -> bool:
    return any(f.startswith(".") or f == "__pycache__" for f in folders)


def render_project(
    template: Iterable[TemplateEntry], name: str, context: Mapping[str, str]
) -> list[Made] | None:
    """The project startproject makes from `template` for `name`, in the template's
    order; None when it holds something not understood here."""
    made: list[Made] = []
    taken: set[str] = set()
    for entry in template:
        parts = entry.path.split("/")
        folders = parts if entry.data is None else parts[:-1]
        if _excluded(folders):
            continue
        if entry.data is None:
            path = entry.path.replace(NAME, name)
            if path not in taken:
                taken.add(path)
                made.append(Made(path, FOLDER_MODE))
            continue
        filename = parts[-1]
        if filename.endswith(SKIPPED):
            continue
        folder = "/".join(folders).replace(NAME, name)
        path = "/".join(p for p in (folder, filename.replace(NAME, name)) if p)
        for old, new in SUFFIXES:
            if path.endswith(old):
                path = path.removesuffix(old) + new
                break
        if path in taken:
            return None  # startproject stops there: the file exists already
        taken.add(path)
        data = entry.data
        if path.endswith(RENDERED):
            try:
                # read in text mode (universal newlines), written back in it
                text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            except UnicodeDecodeError:
                return None
            rendered = render_text(text, context)
            if rendered is None:
                return None
            data = rendered.encode("utf-8")
        made.append(Made(path, entry.mode, data))
    return made
