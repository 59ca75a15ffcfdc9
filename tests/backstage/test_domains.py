from __future__ import annotations

import pytest

from backstage.errors import BackstageError, InvalidHostname
from backstage.model.domains import check_hostname, domain_of, within


@pytest.mark.parametrize(
    ("given", "folded"),
    [
        ("Kittens.Example.COM", "kittens.example.com"),
        ("bücher.example.com", "xn--bcher-kva.example.com"),
        ("xn--bcher-kva.example.com", "xn--bcher-kva.example.com"),
        ("localhost", "localhost"),
        ("a-b.c0.example", "a-b.c0.example"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_valid_hostnames_fold(given, folded):
    assert check_hostname(given) == folded


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "not a hostname"),
        ("a..example.com", "empty label"),
        (".example.com", "empty label"),
        ("example.com..", "empty label"),
        (".", "not a hostname"),
        ("127.0.0.1", "IP address"),
        ("x" * 64 + ".com", "63"),
        (".".join(["a" * 63] * 4), "253"),
        ("under_score.example.com", "letters, digits"),
        ("-lead.example.com", "letters, digits"),
        ("sp ace.example.com", "letters, digits"),
        ("example.com:8000", "letters, digits"),
    ],
)
def test_invalid_hostnames_say_what_to_do(bad, says):
    with pytest.raises(InvalidHostname, match=says) as caught:
        check_hostname(bad)
    assert isinstance(caught.value, BackstageError) and isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


def test_within_and_domain_of():
    assert within("example.com", "example.com")
    assert within("a.b.example.com", "example.com")
    assert not within("notexample.com", "example.com")
    assert domain_of("a.shop.example.com", ["example.com", "shop.example.com"]) == (
        "shop.example.com"
    )
    assert domain_of("example.org", ["example.com"]) is None
