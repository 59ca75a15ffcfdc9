"""A new Act's Django project: what `django-admin startproject NAME` makes with the
Venue's Django, made without running that Django (0.2-0.6 s of CPU each) wherever it
is known to come out the same.

The Venue's Django's project template (`django/conf/project_template` in its
site-packages) is read and rendered here (`render.djangoproject`). That the rendering
is startproject's own is not taken on trust: the first Act made with a given Django
(its VERSION, template and the code of startproject that renders it, hashed) is made
by startproject, then compared with the rendering of the same name, file by file, mode
and bytes, its SECRET_KEY aside. The verdict is kept in the Venue
(`venue_startproject_check`), and each later Act of that Django is rendered when it
said so: the same project, with its own name and a fresh secret key.

Left to startproject: a Venue without Django in its own site-packages (its error
then says why), a template or code that changed since the verdict (until the next
verdict), one the renderer does not understand, a folder where the verdict cannot be
kept, and `black` on PATH, which startproject runs over what it made.

For a Venue with a user, all of it (reading the template, writing the project, judging
startproject's) happens as that user, as startproject runs: in a fork of this process
when it is root (`_as_venue_user`), never the Venue's Python.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import ActFailed
from ...files.fs import write_atomic
from ...model.layout import ActRef, venue_bin, venue_startproject_check
from ...render.djangoproject import (
    FOLDER_MODE,
    Made,
    TemplateEntry,
    context_for,
    render_project,
    secret_key,
    secret_key_pattern,
    version_names,
    version_of,
)
from .commands import as_user
from .virtualenv import site_packages

log = logging.getLogger(__name__)

# Django's code whose change could change what startproject makes: part of the key
RENDERING_CODE = (
    "__init__.py",  # VERSION
    "core/management/templates.py",
    "core/management/commands/startproject.py",
    "core/management/utils.py",  # get_random_secret_key, run_formatters
    "core/checks/security/base.py",  # SECRET_KEY_INSECURE_PREFIX
    "utils/version.py",
)


KEY = re.compile("[0-9a-f]{64}")  # a sha256, as a verdict names its Django


@dataclass(frozen=True)
class DjangoTemplate:
    """A Venue's Django's project template, read: what renders an Act's project."""

    entries: tuple[TemplateEntry, ...]
    django_version: str
    docs_version: str
    key: str  # a hash of the template and of RENDERING_CODE


def django_project(ref: ActRef) -> bool:
    """Make the Act's Django project at `ref.path`, rendered where the Venue's verdict
    allows, else by startproject; True when rendered. `ref.path` must not exist, but for
    a Venue with a user: then it is the folder given to them, where startproject, as
    them, puts the project (`startproject NAME FOLDER`); either way runs as them."""
    if shutil.which("black") is not None:
        startproject(ref)
        return False
    tried = _as_venue_user(ref.user, _rendered_if_judged, ref)
    if tried.get("made"):
        return True
    startproject(ref)
    key = tried.get("key")
    if isinstance(key, str) and KEY.fullmatch(key) and tried.get("verdict") is None:
        same = _as_venue_user(ref.user, _judged, ref, key).get("same")
        if isinstance(same, bool):
            _keep_verdict(ref.venue_path, key, same)
    return False


def _rendered_if_judged(ref: ActRef) -> dict[str, object]:
    """The project rendered and written where the verdict on the Venue's Django says
    so; else the template's key, and the verdict (None: not judged yet)."""
    template = read_template(ref.venue_path)
    if template is None:
        return {"made": False, "key": None, "verdict": None}
    verdict = _verdict(ref.venue_path, template.key)
    if verdict:
        made = render_project(template.entries, ref.name, _context(template, ref, secret_key()))
        if made is not None:
            write_project(ref.path, made, made_top=bool(ref.user))
            return {"made": True, "key": template.key, "verdict": verdict}
    return {"made": False, "key": template.key, "verdict": verdict}


def _judged(ref: ActRef, key: str) -> dict[str, object]:
    """Whether startproject's project is the rendering (None: the template changed)."""
    template = read_template(ref.venue_path)
    if template is None or template.key != key:
        return {"same": None}
    return {"same": same_as_rendered(ref, template)}


def _as_venue_user(
    user: str, work: Callable[..., dict[str, object]], *args: object
) -> dict[str, object]:
    """`work(*args)`, as the Venue's `user` where this process is root: in a fork of it
    that became them (their uid, their group, no other group), as startproject would
    run. The Venue's packages are theirs: root neither runs them nor reads them (a link
    the user put among them could name any file root can read, copied into their Act).
    An OSError there is raised here."""
    ids = as_user(user)
    if not ids:
        return work(*args)
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only ever leaves by os._exit
        try:
            os.close(readable)
            os.setgroups([])
            os.setgid(ids["group"])
            os.setuid(ids["user"])
            answer: dict[str, object] = {"result": work(*args)}
        except OSError as exc:
            answer = {"errno": exc.errno, "strerror": exc.strerror, "filename": exc.filename}
        except BaseException as exc:  # anything: the parent says it, in one line
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            with os.fdopen(writable, "w") as out:
                out.write(json.dumps(answer))
        finally:
            os._exit(0)
    os.close(writable)
    with os.fdopen(readable) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"error": "it ended without an answer"}
    if "errno" in answer:
        raise OSError(answer["errno"], answer["strerror"], answer["filename"])
    if "error" in answer:
        raise ActFailed(f"making the project as {user} failed: {answer['error']}")
    result = answer.get("result")
    return result if isinstance(result, dict) else {}


def startproject(ref: ActRef) -> None:
    """`django-admin startproject NAME` of the Venue, in its acts/ folder; for a Venue
    with a user, as them, into the folder given to them."""
    admin = venue_bin(ref.venue_path, "django-admin")
    argv = [admin, "startproject", ref.name, *([ref.path] if ref.user else [])]
    try:
        done = subprocess.run(
            argv,
            cwd=os.path.dirname(ref.path),
            capture_output=True,
            text=True,
            timeout=120,
            **as_user(ref.user),
        )
    except OSError as exc:
        raise ActFailed(
            f"cannot run {admin} ({exc.strerror}): is Django installed in Venue {ref.venue}?"
        ) from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ActFailed(
            f"django-admin startproject {ref.name} failed: {lines[-1] if lines else ''}"
        )


def django_dir(venue_path: str) -> str | None:
    """The Django in the Venue's own site-packages; None when there is none, or more
    than one (a Venue whose Python changed)."""
    found = [os.path.join(packages, "django") for packages in site_packages(venue_path)]
    found = [d for d in found if os.path.isfile(os.path.join(d, "__init__.py"))]
    return found[0] if len(found) == 1 else None


def read_template(venue_path: str) -> DjangoTemplate | None:
    """The Venue's Django's project template and what renders it; None when there is
    no Django to read, or its template holds a link, or its VERSION is not a release's."""
    django = django_dir(venue_path)
    if django is None:
        return None
    digest = hashlib.sha256()
    try:
        for name in RENDERING_CODE:
            with open(os.path.join(django, name), "rb") as code:
                digest.update(b"%d:%s\0" % (len(name), name.encode()) + code.read() + b"\0")
        with open(os.path.join(django, "__init__.py"), encoding="utf-8") as init:
            version = version_of(init.read())
        entries = _entries(os.path.join(django, "conf", "project_template"))
    except (OSError, UnicodeDecodeError) as exc:
        log.debug("the project template of %s cannot be read: %s", django, exc)
        return None
    names = version_names(version) if version is not None else None
    if names is None or entries is None:
        return None
    for entry in entries:
        digest.update(b"%s\0%o\0" % (entry.path.encode(), entry.mode))
        digest.update(b"-" if entry.data is None else b"%d:" % len(entry.data) + entry.data)
    return DjangoTemplate(entries, names[0], names[1], digest.hexdigest())


def _entries(top: str) -> tuple[TemplateEntry, ...] | None:
    """Every folder and file under `top`, sorted; None when a link is among them (os.walk
    lists a linked folder but never enters it: not worth following here)."""
    if not os.path.isdir(top) or os.path.islink(top):
        return None
    entries = []
    for root, dirs, files in os.walk(top):
        dirs.sort()
        rel = os.path.relpath(root, top)
        for name in (*dirs, *sorted(files)):
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                return None
            relative = name if rel == "." else f"{rel}/{name}"
            if stat.S_ISDIR(st.st_mode):
                entries.append(TemplateEntry(relative, stat.S_IMODE(st.st_mode)))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as data:
                    entries.append(TemplateEntry(relative, stat.S_IMODE(st.st_mode), data.read()))
            else:
                return None
    # the order os.walk goes in, a folder before what it holds: sorted by parts
    return tuple(sorted(entries, key=lambda e: e.path.split("/")))


def _context(template: DjangoTemplate, ref: ActRef, secret: str) -> dict[str, str]:
    # startproject's project_directory: the folder it is given, else os.getcwd()'s (links
    # resolved) joined with the name
    if ref.user:
        directory = os.path.abspath(ref.path)
    else:
        directory = os.path.join(os.path.realpath(os.path.dirname(ref.path)), ref.name)
    return context_for(ref.name, secret, template.django_version, template.docs_version, directory)


def umask() -> int:
    """This process's umask, read without setting it (another thread may make files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_project(top: str, made: list[Made], made_top: bool = False) -> None:
    """Write a rendered project at `top` as startproject writes it: its folders made by
    os.makedirs (`top` too, unless `made_top`), each file given its template's mode less
    the umask, and made writable by its owner if that left it read-only."""
    mask = umask()
    if not made_top:
        os.makedirs(top)
    for entry in made:
        path = os.path.join(top, entry.path)
        if entry.data is None:
            os.makedirs(path, exist_ok=True)
            continue
        with open(path, "xb") as out:
            out.write(entry.data)
        os.chmod(path, entry.mode & ~mask)
        if not os.access(path, os.W_OK):
            os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR)


# In the rendering compared with startproject's project: where its secret key went
_SECRET_MARK = "\0secret-key\0"


def same_as_rendered(ref: ActRef, template: DjangoTemplate) -> bool:
    """The project startproject just made at `ref.path` is, folder by folder and file
    by file (modes and bytes, its secret key aside), the one rendered for its name."""
    made = render_project(template.entries, ref.name, _context(template, ref, _SECRET_MARK))
    if made is None:
        return False
    mask = umask()
    folder = stat.S_IFDIR | (FOLDER_MODE & ~mask)
    # the project's own folder: os.makedirs' here and startproject's, or Backstage's own
    expected: dict[str, tuple[int, bytes | None]] = {"": (os.lstat(ref.path).st_mode, None)}
    for entry in made:
        if entry.data is None:
            expected[entry.path] = (folder, None)
        else:
            expected[entry.path] = (stat.S_IFREG | (entry.mode & ~mask), entry.data)
    found = _tree(ref.path)
    if found.keys() != expected.keys():
        log.info("startproject made %s, not what its template renders to", sorted(found))
        return False
    return all(_same(path, expected[path], found[path]) for path in expected)


def _tree(top: str) -> dict[str, tuple[int, str]]:
    """Each folder and file under `top` (itself as ""): its st_mode and full path."""
    tree = {"": (os.lstat(top).st_mode, top)}
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            tree[os.path.relpath(path, top)] = (os.lstat(path).st_mode, path)
    return tree


def _same(rel: str, expected: tuple[int, bytes | None], found: tuple[int, str]) -> bool:
    mode, data = expected
    if found[0] != mode and not (stat.S_ISREG(mode) and found[0] == mode | stat.S_IWUSR):
        log.info("startproject made %s with mode %o, not %o", rel, found[0], mode)
        return False
    if data is None:
        return True
    with open(found[1], "rb") as made:
        text = made.read()
    mark = _SECRET_MARK.encode()
    if mark not in data:
        same = text == data
    else:
        # the key where the rendering put it, the same each time it is named
        first, second, *rest = [re.escape(part) for part in data.split(mark)]
        pattern = first + b"(?P<key>" + secret_key_pattern().encode() + b")" + second
        pattern += b"".join(b"(?P=key)" + part for part in rest)
        same = re.fullmatch(pattern, text, re.DOTALL) is not None
    if not same:
        log.info("startproject's %s is not what its template renders to", rel)
    return same


def _verdict(venue_path: str, key: str) -> bool | None:
    """Whether the project of this Django (`key`) is rendered; None when not judged."""
    try:
        with open(venue_startproject_check(venue_path), encoding="utf-8") as kept:
            verdict = json.load(kept)
    except (OSError, ValueError):
        return None
    if not isinstance(verdict, dict) or verdict.get("key") != key:
        return None
    return verdict.get("rendered") is True


def _keep_verdict(venue_path: str, key: str, rendered: bool) -> None:
    text = json.dumps({"key": key, "rendered": rendered}) + "\n"
    try:
        write_atomic(venue_startproject_check(venue_path), text, 0o644)
    except OSError as exc:  # a Venue folder this process cannot write: startproject it is
        log.info("cannot keep %s: %s", venue_startproject_check(venue_path), exc)
