"""The certificate checks, on certificates made here: pure, no files."""

from __future__ import annotations

import datetime

import pytest

from backstage.model import certificate
from backstage.model.certificate import BadCertificate, check, covers


def test_covers_as_browsers_match():
    assert covers("a.example.com", "A.Example.com.")
    assert covers("*.example.com", "a.example.com")
    assert not covers("*.example.com", "example.com")
    assert not covers("*.example.com", "a.b.example.com")
    assert not covers("a.example.com", "b.example.com")


def test_check_and_its_refusals():
    cert, key = certificate.self_signed("a.example.com", days=30)
    found = check("a.example.com", cert, key)
    assert found.names == ("a.example.com",) and found.issuer == "a.example.com"
    assert found.to_json()["not_after"].endswith("Z")
    _, other = certificate.self_signed("a.example.com")
    with pytest.raises(BadCertificate, match="key does not match"):
        check("a.example.com", cert, other)
    with pytest.raises(BadCertificate, match="do not cover b.example.com"):
        check("b.example.com", cert, key)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=31)
    with pytest.raises(BadCertificate, match="expired"):
        check("a.example.com", cert, key, now=later)
    with pytest.raises(BadCertificate, match="no PEM certificate"):
        check("a.example.com", b"junk", key)
    with pytest.raises(BadCertificate, match="no unencrypted PEM private key") as refused:
        check("a.example.com", cert, b"junk")
    assert b"PRIVATE" not in str(refused.value).encode()
