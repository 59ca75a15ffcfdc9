"""A Venue with `user`: the folders and files its Acts' vassals need as that user.

Its vassals drop to the user before they bind a socket, open their log or read their
environment, so those live in the Venue's own folders (see `model.layout`), which the
Production Manager makes, as root, before it pushes a vassal config. The Venue's folder,
its `venue.toml` and its `pyvenv.cfg` stay root's: `venue.toml` names the user, and a
user who could rewrite it could name root. Each Act's folder becomes the user's, and so
do the Venue's packages, which the user installs (`give_packages`).
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Collection

from ...errors import InvalidSetting, StageError
from ...files import declared
from ...files.account import account
from ...model.account import Account
from ...model.layout import (
    ActRef,
    venue_log_dir,
    venue_run_dir,
    venue_user_dir,
    venue_uwsgi,
    venue_uwsgi_before,
)


def owner(ref: ActRef) -> tuple[int, int] | None:
    """(uid, gid) the Act's run files belong to; None for an Act that runs as Backstage."""
    if not ref.user:
        return None
    found = account(ref.user)
    return (found.uid, found.gid)


def runs_as(user: str) -> str | None:
    """Why this process cannot run a Venue's Acts as `user`, if it cannot."""
    if os.geteuid() == 0 or account(user).uid == os.geteuid():
        return None
    return f"user = {user} needs Backstage to run as root (or as {user}): remove it or run as root"


def stdlib_of(venue_path: str) -> str | None:
    """The standard library a Venue's interpreter reads, from its pyvenv.cfg: `home` is
    the base Python's bin/, and uWSGI's embedded Python imports from there, as the Venue's
    user, whenever a module is first imported. None when the file does not say."""
    values = {}
    try:
        with open(os.path.join(venue_path, "pyvenv.cfg")) as cfg:
            for line in cfg:
                key, sep, value = line.partition("=")
                if sep:
                    values[key.strip()] = value.strip()
    except OSError:
        return None
    version = values.get("version_info") or values.get("version") or ""
    major_minor = ".".join(version.split(".")[:2])
    if not values.get("home") or not major_minor:
        return None
    return os.path.join(os.path.dirname(values["home"]), "lib", f"python{major_minor}")


def closed_to(user: Account, path: str, groups: Collection[int], last: int = 0o5) -> str | None:
    """The first folder on the way to `path` (itself included, and every folder its
    links lead through) that `user` cannot pass, with its mode; None when it can read
    `path` and pass through it (`last`: the bits asked of `path` itself). `groups`: the
    user's group ids."""

    def allows(st: os.stat_result, bits: int) -> bool:
        if st.st_uid == user.uid:
            return st.st_mode & (bits << 6) == bits << 6
        if st.st_gid in groups:
            return st.st_mode & (bits << 3) == bits << 3
        return st.st_mode & bits == bits

    for way in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        folder = "/"
        for part in [p for p in way.split(os.sep) if p]:
            st = os.stat(folder)
            if not allows(st, 0o1):
                return f"{folder} is {stat.S_IMODE(st.st_mode):o}"
            folder = os.path.join(folder, part)
        st = os.stat(folder)
        if not allows(st, last):
            return f"{folder} is {stat.S_IMODE(st.st_mode):o}"
    return None


# Any user but the file's owner and its group: what a new system user is to the folders
# and files already there
OTHERS = Account("", -1, -1)


def why_no_new_user(python: str, parent: str) -> str | None:
    """Why a Venue built with the interpreter `python` in the folder `parent` could not
    play as a new system user, with what to change (None: it could): that user must
    read the Python's standard library, and pass the folders down to the Venue."""
    try:
        done = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        stdlib = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        stdlib = ""
    why = closed_to(OTHERS, stdlib, ()) if stdlib and os.path.isdir(stdlib) else None
    if why:
        prefix = os.path.dirname(os.path.dirname(stdlib))
        return (
            f"that user could not read its Python at {prefix} ({why}): make that Python "
            "readable by other users (chmod o+x the folders above it)"
        )
    why = closed_to(OTHERS, parent, (), last=0o1)
    if why:
        return (
            f"that user could not reach its folder in {parent} ({why}): pick a folder "
            "other users can pass (chmod o+x)"
        )
    return None


def check_python(venue_path: str, user: str) -> None:
    """InvalidSetting, in one line saying what to do, when the Venue's `user` cannot read
    its Python's standard library or the Venue's own packages: its vassals would fail at
    their first import of one."""
    if not user:
        return
    stdlib = stdlib_of(venue_path)
    if stdlib is None or not os.path.isdir(stdlib):
        return  # no Python there that a vassal could run: said where it is built
    found = account(user)
    groups = os.getgrouplist(user, found.gid)
    why = closed_to(found, stdlib, groups)
    if why:
        prefix = os.path.dirname(os.path.dirname(stdlib))
        raise InvalidSetting(
            f"user {user} cannot read the Venue's Python at {prefix} ({why}): build the "
            f"Venue on a Python {user} can read (such as /usr/bin/python3.11), or remove "
            "user = from venue.toml"
        )
    packages = os.path.join(venue_path, "lib", os.path.basename(stdlib), "site-packages")
    why = closed_to(found, packages, groups) if os.path.isdir(packages) else None
    if why:
        raise InvalidSetting(
            f"user {user} cannot read the Venue's packages at {packages} ({why}): let "
            f"{user} pass the folders above the Venue (chmod o+x), or remove user = from "
            "venue.toml"
        )


def prepare(ref: ActRef) -> None:
    """The Venue's run and log folders, the Act's own folder and the Venue's packages, as
    its user needs them."""
    if not ref.user:
        return
    reason = runs_as(ref.user)
    if reason:
        raise InvalidSetting(reason)
    user = account(ref.user)
    venue = os.lstat(ref.venue_path)
    if venue.st_uid != os.geteuid() or venue.st_mode & 0o022:
        raise InvalidSetting(
            f"{ref.venue_path} must be Backstage's and writable by it alone for user = "
            f"{ref.user} (its venue.toml names the user): chown it and chmod 755 it"
        )
    _folder(venue_run_dir(ref.venue_path), 0o711, None)
    _folder(venue_user_dir(ref.venue_path), 0o700, user)
    _folder(venue_log_dir(ref.venue_path), 0o700, user)
    if os.path.isdir(ref.path) and os.lstat(ref.path).st_uid != user.uid:
        give(ref.path, user)
    give_packages(ref.venue_path, user)


def _folder(path: str, mode: int, user: Account | None) -> None:
    """Make `path` a real folder with `mode`, owned by `user` (None: Backstage's)."""
    os.makedirs(path, mode=mode, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidSetting(f"{path} is not a folder: remove it, Backstage makes it")
    uid, gid = (user.uid, user.gid) if user else (os.geteuid(), os.getegid())
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)  # a real folder: lstat said so, in a folder only root writes


def give(path: str, user: Account) -> None:
    """`path` and everything in it to `user`; links are given, never followed. Walked by
    file descriptors and deepest first: a folder becomes the user's only once all in it
    is, so no folder the walk has yet to enter is the user's to swap for a link."""
    for _, dirs, files, fd in os.fwalk(path, topdown=False):
        for name in dirs + files:
            os.chown(name, user.uid, user.gid, dir_fd=fd, follow_symlinks=False)
    os.chown(path, user.uid, user.gid, follow_symlinks=False)


# What the installer writes in a Venue: its commands (bin/), its packages
# (lib/pythonX.Y/site-packages) and their C headers (include/)
PACKAGE_FOLDERS = ("bin", "lib", "include")
# uv's lock of the Venue, taken by each install
VENUE_LOCK = ".lock"


def own_uwsgi(venue_path: str) -> str:
    """The Venue's own uwsgi, moved from bin/ to libexec/ where it was built before
    libexec/ (bin/ becomes the Venue's user's, and the vassal runs that binary as root
    until it drops): root's, or StageError saying to rebuild the Venue."""
    path = venue_uwsgi(venue_path)
    before = venue_uwsgi_before(venue_path)
    if not os.path.lexists(path) and os.path.lexists(before):
        st = os.lstat(before)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            os.rename(before, path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise StageError(
            f"{path} is missing: rebuild the Venue (its own uwsgi is built with it)"
        ) from None
    folder = os.lstat(os.path.dirname(path))
    if (
        st.st_uid != os.geteuid()
        or folder.st_uid != os.geteuid()
        or ((st.st_mode | folder.st_mode) & 0o022)
    ):
        raise StageError(
            f"{path} must be Backstage's and writable by it alone (the vassal runs it "
            "before it drops to the Venue's user): chown it and its folder, chmod 755 them"
        )
    return path


def give_packages(venue_path: str, user: Account) -> None:
    """The Venue's packages to `user`, who installs them (`commands.install_requirements`
    runs as the Venue's user: building a package runs its code). From then on Backstage
    (root) never runs nor imports anything of that virtualenv: the vassal's master drops
    to the user before its Python starts, and every step, check and install that runs its
    Python runs as the user. Its folder, pyvenv.cfg (which names the Python),
    venue.toml and its own uwsgi stay root's. Walked once: a folder the user has is left
    as it is."""
    if user.uid != os.geteuid() and declared.venue_spec(venue_path).own_uwsgi:
        own_uwsgi(venue_path)  # out of bin/ first
    for name in PACKAGE_FOLDERS:
        path = os.path.join(venue_path, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid) != (user.uid, user.gid):
            give(path, user)
    # in the root's folder, made the user's: uv takes it before it installs
    fd = os.open(
        os.path.join(venue_path, VENUE_LOCK), os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600
    )
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (user.uid, user.gid):
            os.fchown(fd, user.uid, user.gid)
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def take_packages(venue_path: str) -> None:
    """The Venue's packages back to Backstage, its user gone: that user cannot change
    them any more (what it changed meanwhile stays: rebuild the Venue to be sure)."""
    if os.geteuid() == 0:
        give_packages(venue_path, Account("", os.geteuid(), os.getegid()))


def processes_of(uid: int) -> list[int]:
    """Pids of the processes running as `uid` (real uid)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/status") as status:
                line = next(line for line in status if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(line.split()[1]) == uid:
            found.append(int(entry))
    return found


def await_no_process(user: str, timeout: float = 15.0) -> None:
    """Wait until no process runs as the Venue's `user` (its Acts' vassals, stopped, go
    within seconds): userdel refuses a user with processes. StageError when one stays."""
    try:
        uid = account(user).uid
    except InvalidSetting:
        return  # gone already, or never made
    deadline = time.monotonic() + timeout
    while True:
        left = processes_of(uid)
        if not left:
            return
        if time.monotonic() > deadline:
            raise StageError(
                f"user {user} still runs process {left[0]}: stop it (kill {left[0]}), then "
                "remove the Venue again"
            )
        time.sleep(0.1)
