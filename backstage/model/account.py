"""The system account a Venue runs as (`user` in venue.toml): its name, uid and gid.

Looked up in the host's user database when a venue.toml is read, so that a name the
host does not know is one line in `status`, not a vassal that fails to drop to it.
"""

from __future__ import annotations

import pwd
import re
from dataclasses import dataclass

from ..errors import InvalidSetting

# What useradd accepts by default (a trailing $ is for machine accounts, not for us).
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int  # the account's primary group: the vassal's gid


def account(name: str) -> Account:
    """The account called `name`, or InvalidSetting saying what to do."""
    if not USER_NAME.fullmatch(name):
        raise InvalidSetting(
            f"user = {name!r} is not a user name: write one like www-shop "
            "(lower-case letters, digits, _ and -)"
        )
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
