"""The system account a Venue runs as (`user` in venue.toml): its name, uid and gid, and
what a name may be. `files.account` looks it up in the host's user database."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..errors import InvalidSetting

# What useradd accepts by default (a trailing $ is for machine accounts, not for us).
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")

# `user = "root"` in venue.toml, `venue_user = "root"` in production.toml: the Venue's
# Acts run as Backstage itself (root), because its owner asked for it
ROOT = "root"


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


def own_user_name(prefix: str, venue: str) -> str:
    """The system user Backstage makes for the Venue `venue` of the Production whose
    vassal names start with `prefix` ("bs" and hex digits): "bs" and six of those digits,
    then the Venue's name in lower case; one too long for useradd's 32 characters, or
    not in lower case already (Venues Shop and shop may both exist), is cut and ends in
    a digest of the whole name, so that two Venues never share one."""
    lower = venue.lower()
    head = f"{prefix[:8]}-"
    if lower == venue and len(head) + len(lower) <= 32:
        return head + lower
    digest = hashlib.sha1(venue.encode()).hexdigest()[:4]
    return f"{head}{lower[: 32 - len(head) - 5]}-{digest}"
