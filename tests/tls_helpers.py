"""Helpers for the TLS tests: a CA of the test's own, certificates it signs, and HTTPS
requests with SNI verified against it."""

from __future__ import annotations

import datetime
import http.client
import os
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestCA:
    """A root and an intermediate; leaves are signed by the intermediate, so a served
    chain verifies only when the intermediate is served with the leaf."""

    __test__ = False

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._cert("Test Root", self.root_key, None, None, ca=True)
        self.mid_key = ec.generate_private_key(ec.SECP256R1())
        self.mid = self._cert("Test Intermediate", self.mid_key, self.root, self.root_key, ca=True)
        self.root_path = self._write("root.pem", self.root.public_bytes(serialization.Encoding.PEM))
        self.chain_path = self._write(
            "chain.pem", self.mid.public_bytes(serialization.Encoding.PEM)
        )

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.folder, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _cert(self, common, key, issuer, issuer_key, ca=False, names=(), days=90, start_days=-1):
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        return builder.sign(issuer_key or key, hashes.SHA256())

    def leaf(self, name: str, *names: str, days: int = 90, start_days: int = -1) -> tuple[str, str]:
        """(cert path, key path) of a new leaf for `names` (default: `name`)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._cert(
            name,
            key,
            self.mid,
            self.mid_key,
            names=names or (name,),
            days=days,
            start_days=start_days,
        )
        tag = name.replace("*", "star")
        return (
            self._write(f"{tag}.{days}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{tag}.{days}.key", _pem_key(key)),
        )

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.root_path)
        return context


def https_get(port: int, host: str, ca: TestCA, path: str = "/", timeout: float = 5.0):
    """(status, body, the served leaf's subject CN) over TLS to 127.0.0.1:port, naming
    `host` by SNI and verifying the served chain against the test CA."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with ca.context().wrap_socket(raw, server_hostname=host) as conn:
        cert = conn.getpeercert()
        subject = dict(item[0] for item in cert["subject"])["commonName"]
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        response = http.client.HTTPResponse(conn)
        response.begin()
        return response.status, response.read().decode(), subject


def resumed(port: int, host: str, context: ssl.SSLContext) -> tuple[str, bool]:
    """(the protocol, whether the second of two connections resumed the first's session),
    each reading its whole answer as a browser does (a TLS 1.3 ticket comes after the
    handshake: `openssl s_client -reconnect` leaves before it, and never resumes 1.3)."""
    session = None
    reused = []
    for _ in range(2):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with context.wrap_socket(raw, server_hostname=host, session=session) as conn:
            conn.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            response = http.client.HTTPResponse(conn)
            response.begin()
            response.read()
            reused.append(conn.session_reused)
            version, session = conn.version() or "", conn.session
    return version, reused == [False, True]


def https_headers(port: int, host: str, ca: TestCA, path: str = "/") -> dict[str, str]:
    """The headers of an HTTPS answer, as https_get reaches it."""
    return dict(https_header_lines(port, host, ca, path))


def https_header_lines(port: int, host: str, ca: TestCA, path: str = "/") -> list[tuple[str, str]]:
    """Every header line of an HTTPS answer, in order, repeated ones too."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ca.context().wrap_socket(raw, server_hostname=host) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        response = http.client.HTTPResponse(conn)
        response.begin()
        response.read()
        return list(response.getheaders())


def served_subject(port: int, host: str) -> str:
    """The subject CN the listener shows a client naming `host`, verified or not."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with context.wrap_socket(raw, server_hostname=host) as conn:
        der = conn.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def http_raw(port: int, host: str, path: str = "/", timeout: float = 5.0):
    """(status, headers) of a plain HTTP request, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()
