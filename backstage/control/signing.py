"""The Production's subscription keys, for routers that listen beyond one host.

<home>/keys/production.key       the private key Acts sign their announces with (0600)
<home>/keys/production.pub       its public half
<home>/keys/hosts/<host>.pem     the public key the router checks announces for <host> with

uWSGI's router looks up `<dir>/<key>.pem` for each subscription key and refuses
unsigned packets and keys with no pem, so a host is only playable once it is
published here. Keys are made with the openssl command line: no new dependency.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ..errors import BackstageError
from ..files.fs import unlink_if_present
from ..model.layout import Layout

DIGEST = "SHA256"


class SigningError(BackstageError):
    """The openssl command could not make or use the Production's keys."""


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["openssl", *args], input=data, capture_output=True, timeout=60, check=False
        )
    except OSError as exc:
        raise SigningError(
            f"cannot run openssl ({exc.strerror}): install it (Debian: apt-get install openssl)"
        ) from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise SigningError(f"openssl {args[0]} failed: {lines[-1] if lines else '?'}")
    return done.stdout


class Keys:
    def __init__(self, layout: Layout) -> None:
        self.dir = layout.keys_dir
        self.private_path = layout.private_key
        self.public_path = layout.public_key
        self.hosts_dir = layout.host_keys_dir

    @property
    def exist(self) -> bool:
        return os.path.isfile(self.private_path) and os.path.isfile(self.public_path)

    def create(self) -> None:
        """Make the key pair once; safe to call again."""
        if self.exist:
            return
        os.makedirs(self.hosts_dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        tmp = self.private_path + ".tmp"
        old = os.umask(0o077)
        try:
            _openssl(
                "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", tmp
            )
            _openssl("pkey", "-in", tmp, "-pubout", "-out", self.public_path)
            os.replace(tmp, self.private_path)
        finally:
            os.umask(old)
            unlink_if_present(tmp)

    def host_path(self, key: str) -> str:
        # uWSGI maps every character but [A-Za-z0-9._-] of the key to "_" (ssl.c).
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)
        return os.path.join(self.hosts_dir, f"{safe}.pem")

    def publish(self, key: str) -> None:
        """Let the router accept signed announces for `key`."""
        self.create()
        path = self.host_path(key)
        if not os.path.isfile(path):
            shutil.copyfile(self.public_path, path + ".tmp")
            os.replace(path + ".tmp", path)

    def sign(self, data: bytes) -> bytes:
        return _openssl("dgst", f"-{DIGEST.lower()}", "-sign", self.private_path, data=data)

    @property
    def vassal_sign(self) -> str:
        """The `sign=` value of an Act's subscribe2 line."""
        return f"{DIGEST}:{self.private_path}"

    @property
    def router_check(self) -> str:
        """The router's `subscriptions-sign-check` value."""
        return f"{DIGEST}:{self.hosts_dir}"
