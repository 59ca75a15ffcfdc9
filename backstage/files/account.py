"""The account a Venue runs as, looked up in the host's user database: when a
venue.toml is read or written (`declared`), so that a name the host does not know is
one line in `status`, not a vassal that fails to drop to it. And the Venue's own
account, which Backstage makes with the Venue and removes with it."""

from __future__ import annotations

import pwd
import subprocess

from ..errors import AlreadyExists, BackstageError, InvalidSetting
from ..model.account import Account, check_user_name


def account(name: str) -> Account:
    """The account called `name`, or InvalidSetting saying what to do."""
    check_user_name(name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidSetting(
            f"user {name} does not exist: create it (useradd --system --no-create-home "
            f"{name}) or remove user = from venue.toml"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise InvalidSetting(
            f"user = {name!r} is root or in root's group: name an unprivileged user, or "
            "remove user = from venue.toml"
        )
    return Account(name, entry.pw_uid, entry.pw_gid)


def own_comment(venue_path: str) -> str:
    """The comment (GECOS) of the account Backstage made for the Venue at `venue_path`:
    what tells it from one its owner named, which `venue rm` leaves alone."""
    return f"Backstage Venue {venue_path}"


def check_free(name: str) -> None:
    """AlreadyExists, saying what to do, when the host has an account called `name`."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    raise AlreadyExists(
        f"a system user {name} exists already (a Venue of this name made before?): "
        f'remove it (userdel {name}) or make the Venue with user="root" (--user root)'
    )


def make(name: str, home: str, comment: str) -> Account:
    """A system account for a Venue: no login shell, no home made (`home` is a folder
    of the Venue, made by Backstage), a group of its own."""
    _run(
        "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home,
        "--shell", "/usr/sbin/nologin", "--comment", comment, name,
    )  # fmt: skip
    return account(name)


def remove(name: str, comment: str) -> bool:
    """Remove the account `name` if it is the one Backstage made (its `comment`); False
    when it is not (gone, or its owner's)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return False
    if entry.pw_gecos != comment:
        return False
    _run("userdel", name)
    return True


def _run(*argv: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackstageError(
            f"{argv[0]} failed: {exc}: is it installed (the passwd package)?"
        ) from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        said = lines[-1] if lines else f"exit {done.returncode}"
        raise BackstageError(f"{argv[0]} {argv[-1]} failed: {said}")
