"""Hostnames: Venue domains and the hosts Acts are booked at.

A hostname is checked as IDNA and kept in its ASCII form, lowercase-folded:
that is what a browser sends in the Host header, so it is what the router
matches and what `act.toml` and `venue.toml` declare.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from publicsuffixlist import PublicSuffixList

from ..errors import InvalidHostname

MAX_LABEL = 63
MAX_TOTAL = 253

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def check_hostname(host: str) -> str:
    """The ASCII, lowercase form of `host`, or InvalidHostname saying what is wrong."""
    if not isinstance(host, str) or not host.rstrip("."):
        raise InvalidHostname(f"{host!r} is not a hostname: write one like kittens.example.com")
    # The root's dot ("example.com.") names the same host; the router sees it folded.
    labels = (host[:-1] if host.endswith(".") else host).split(".")
    if any(not label for label in labels):
        raise InvalidHostname(
            f"{host!r} has an empty label: write it without leading, trailing or double dots"
        )
    folded = []
    for label in labels:
        try:
            # The codec folds case and maps Unicode labels to xn-- (IDNA 2003, nameprep).
            ascii_label = label.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidHostname(
                f"{host!r} is not a valid IDNA hostname (label {label[:70]!r}): "
                f"use labels of 1 to {MAX_LABEL} letters, digits and hyphens"
            ) from None
        if len(ascii_label) > MAX_LABEL:
            raise InvalidHostname(
                f"{host!r} has a label longer than {MAX_LABEL} characters: shorten it"
            )
        if not _LABEL.match(ascii_label):
            raise InvalidHostname(
                f"{host!r} is not a valid hostname: labels take letters, digits and inner "
                "hyphens only"
            )
        folded.append(ascii_label)
    if folded[-1].isdigit():
        raise InvalidHostname(
            f"{host!r} is an IP address, not a domain: write a name like kittens.example.com"
        )
    name = ".".join(folded)
    if len(name) > MAX_TOTAL:
        raise InvalidHostname(f"{host!r} is longer than {MAX_TOTAL} characters: shorten it")
    return name


def within(host: str, domain: str) -> bool:
    """True when `host` is `domain` or a subdomain of it (both already checked)."""
    return host == domain or host.endswith("." + domain)


def domain_of(host: str, domains: Iterable[str]) -> str | None:
    """The Venue domain `host` belongs to, the most specific one, or None."""
    matching = [domain for domain in domains if within(host, domain)]
    return max(matching, key=len) if matching else None


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The Public Suffix List as the package ships it (no download): read once, when a
    Venue's domain is first checked (a tenth of a second)."""
    return PublicSuffixList()


def check_venue_domain(domain: str) -> None:
    """A Venue domain (checked and folded) must be one a single owner can hold: not a
    public suffix such as com, co.uk or github.io, under which every name is someone
    else's (a Venue of "com" could book www.google.com)."""
    if _suffixes().is_public(domain):
        example = f"example.{domain}"
        raise InvalidHostname(
            f"{domain!r} is a public suffix (names under it belong to different owners): "
            f"write a domain you own, e.g. {example}"
        )
