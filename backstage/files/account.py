"""The account a Venue runs as, looked up in the host's user database: when a
venue.toml is read or written (`declared`), so that a name the host does not know is
one line in `status`, not a vassal that fails to drop to it."""

from __future__ import annotations

import pwd

from ..errors import InvalidSetting
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
