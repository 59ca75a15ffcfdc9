"""The system account a Venue runs as (`user` in venue.toml): its name, uid and gid, and
what a name may be. `files.account` looks it up in the host's user database."""

from __future__ import annotations

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


def check_user_name(name: str) -> str:
    """`name` when it can be a user's name, else InvalidSetting saying what to write."""
    if not USER_NAME.fullmatch(name):
        raise InvalidSetting(
            f"user = {name!r} is not a user name: write one like www-shop "
            "(lower-case letters, digits, _ and -)"
        )
    return name
