"""A host's certificate: what it says (names, issuer, expiry) and whether it can serve a
host. Pure: bytes in, facts or a BadCertificate out; the store writes the files.

A certificate is refused in one line when its key does not match it, its names do not
cover the host (a `*.` name covers one label, as browsers match), or it has expired.
The private key is never put into a message.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidSetting

if TYPE_CHECKING:
    from cryptography import x509

# cryptography is imported where it is used: every command imports this module, few
# read a certificate (30 ms of each command's start otherwise)


class BadCertificate(InvalidSetting):
    """A certificate or key that cannot serve the host it was given for."""


@dataclass(frozen=True)
class CertInfo:
    names: tuple[str, ...]
    issuer: str
    not_after: datetime.datetime  # UTC
    not_before: datetime.datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "not_after": self.not_after.isoformat().replace("+00:00", "Z"),
            "names": list(self.names),
        }


def _certs(pem: bytes, what: str) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise BadCertificate(f"{what} holds no PEM certificate: give the PEM file of one")
    return certs


def _name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else name.rfc4514_string()


def info(pem: bytes, what: str = "the certificate") -> CertInfo:
    """The facts of the first (the leaf) certificate in `pem`."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = _certs(pem, what)[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = (str(common[0].value),) if common else ()
    return CertInfo(
        tuple(n.lower() for n in names),
        _name(cert.issuer),
        cert.not_valid_after_utc,
        cert.not_valid_before_utc,
    )


def covers(name: str, host: str) -> bool:
    """`name` (from a certificate) covers `host`: equal, or `*.rest` and host is one
    label more than rest."""
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    if name.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == name[2:]
    return name == host


def check(
    host: str, cert_pem: bytes, key_pem: bytes, now: datetime.datetime | None = None
) -> CertInfo:
    """The facts of a certificate that can serve `host`, else BadCertificate saying why."""
    from cryptography.hazmat.primitives import serialization

    leaf = _certs(cert_pem, "the certificate file")[0]
    found = info(cert_pem, "the certificate file")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise BadCertificate(
            "the key file holds no unencrypted PEM private key: give the key the "
            "certificate was issued for, without a passphrase"
        ) from None
    public = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != mine:
        raise BadCertificate(
            "the key does not match the certificate: give the key it was issued for"
        )
    if not any(covers(name, host) for name in found.names):
        names = ", ".join(found.names) or "none"
        raise BadCertificate(f"the certificate's names ({names}) do not cover {host}")
    now = now or datetime.datetime.now(datetime.UTC)
    if found.not_after <= now:
        raise BadCertificate(
            f"the certificate expired on {found.not_after:%Y-%m-%d %H:%M} UTC: give a current one"
        )
    if leaf.not_valid_before_utc > now:
        raise BadCertificate(
            f"the certificate is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    return found


def self_signed(name: str, days: int = 3650) -> tuple[bytes, bytes]:
    """A (certificate, key) PEM pair for `name`, signed by itself: what the TLS listener
    shows a client that names a host without a certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
