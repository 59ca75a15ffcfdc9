"""The Production's subscription keys, for routers that listen beyond one host.

<home>/keys/production.key       the private key Acts sign their announces with (0600)
<home>/keys/production.pub       its public half
<home>/keys/hosts/<host>.pem     the public key the router checks announces for <host> with
<home>/keys/domains/<domain>.key a Venue domain's own key (0600), shared by every
                                 Production that plays that Venue: `keys export VENUE`
                                 on one, `keys import FILE` on the others
<home>/keys/trusted/<domain>.pem a domain's public key, on a router host that takes
                                 announces from other hosts (`keys trust DOMAIN FILE`)

An Act signs the announces of a host with its domain's key when this Production
has one, else with the Production's own. A domain's key starts as a copy of the
Production's (made on export), so nothing that plays notices; a Production that
imports one signs that domain's hosts with it from each Act's next (re)start.

uWSGI's router looks up `<dir>/<key>.pem` for each subscription key and refuses
unsigned packets and keys with no pem, so a host is only playable once it is
published here. Keys are made with the openssl command line: no new dependency.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable

from ...errors import BackstageError
from ...files.fs import unlink_if_present, write_atomic, write_if_changed
from ...model.domains import check_hostname, domain_of, within
from ...model.layout import Layout

DIGEST = "SHA256"
BUNDLE = "backstage-keys"  # the export file: JSON, {BUNDLE: 1, venue, domains: {domain: PEM}}


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
        self.domains_dir = os.path.join(self.dir, "domains")
        self.trusted_dir = os.path.join(self.dir, "trusted")

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

    def publish(self, key: str, domains: Iterable[str] = ()) -> None:
        """Let the router accept signed announces for `key`, with the key of its domain
        among `domains` when there is one, else the Production's."""
        self.create()
        public = self.public_path
        domain = domain_of(key.rpartition(":")[0] if ":" in key else key, domains)
        if domain and os.path.isfile(self.domain_public(domain)):
            public = self.domain_public(domain)
        with open(public, "rb") as src:
            write_if_changed(self.host_path(key), src.read().decode(), 0o644)

    # A Venue domain's own key

    def domain_private(self, domain: str) -> str:
        return os.path.join(self.domains_dir, f"{check_hostname(domain)}.key")

    def domain_public(self, domain: str) -> str:
        return os.path.join(self.domains_dir, f"{check_hostname(domain)}.pub")

    def private_for(self, host: str, domains: Iterable[str]) -> str:
        """The private key that signs the announces of `host`."""
        domain = domain_of(host, domains)
        if domain and os.path.isfile(self.domain_private(domain)):
            return self.domain_private(domain)
        return self.private_path

    def export(self, venue: str, domains: Iterable[str]) -> str:
        """The export file of a Venue's domain keys: each domain's key, made as a copy of
        the Production's when it has none yet."""
        self.create()
        found = {}
        for domain in domains:
            path = self.domain_private(domain)
            if not os.path.isfile(path):
                with open(self.private_path) as src:
                    self._install(domain, src.read())
            with open(path) as src:
                found[domain] = src.read()
        return json.dumps({BUNDLE: 1, "venue": venue, "domains": found}, indent=1) + "\n"

    def import_(self, text: str) -> list[str]:
        """Install the domain keys of an export file; the domains."""
        domains = _bundle(text)
        for domain, pem in domains.items():
            self._install(domain, pem)
        return sorted(domains)

    def _install(self, domain: str, pem: str) -> None:
        os.makedirs(self.domains_dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        public = _openssl("pkey", "-pubout", data=pem.encode()).decode()
        write_atomic(self.domain_private(domain), pem, 0o600)
        write_atomic(self.domain_public(domain), public, 0o644)

    # Trust, on a router host

    def trust(self, domain: str, text: str, keys: Iterable[str]) -> str:
        """Accept announces signed with `domain`'s key (from an export file or a PEM key,
        public or private) for the subscription `keys` (hosts within the domain); the
        path of the trusted public key."""
        domain = check_hostname(domain)
        if text.lstrip().startswith("{"):
            bundle = _bundle(text)
            if domain not in bundle:
                raise SigningError(f"the file holds no key for {domain} ({', '.join(bundle)})")
            text = bundle[domain]
        if "PUBLIC KEY" in text:
            public = _openssl("pkey", "-pubin", "-pubout", data=text.encode()).decode()
        else:
            public = _openssl("pkey", "-pubout", data=text.encode()).decode()
        os.makedirs(self.trusted_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.trusted_dir, f"{domain}.pem")
        write_atomic(path, public, 0o644)
        os.makedirs(self.hosts_dir, mode=0o700, exist_ok=True)
        for key in keys:
            host = key.rpartition(":")[0] if ":" in key else key
            if not within(host, domain):
                raise SigningError(f"{host} is not within {domain}")
            write_if_changed(self.host_path(key), public, 0o644)
        return path

    def trusted(self) -> list[str]:
        """The domains this router host trusts."""
        if not os.path.isdir(self.trusted_dir):
            return []
        return sorted(n[:-4] for n in os.listdir(self.trusted_dir) if n.endswith(".pem"))

    def sign(self, data: bytes, private: str = "") -> bytes:
        key = private or self.private_path
        return _openssl("dgst", f"-{DIGEST.lower()}", "-sign", key, data=data)

    @property
    def vassal_sign(self) -> str:
        """The `sign=` value of an Act's subscribe2 line."""
        return f"{DIGEST}:{self.private_path}"

    def vassal_sign_for(self, host: str, domains: Iterable[str]) -> str:
        """The `sign=` value of an Act's subscribe2 line for `host`."""
        return f"{DIGEST}:{self.private_for(host, domains)}"

    @property
    def router_check(self) -> str:
        """The router's `subscriptions-sign-check` value."""
        return f"{DIGEST}:{self.hosts_dir}"


def _bundle(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
        domains = data["domains"] if data.get(BUNDLE) == 1 else None
    except (ValueError, AttributeError, KeyError):
        domains = None
    if not isinstance(domains, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in domains.items()
    ):
        raise SigningError("not a file made by `backstage keys export`")
    return {check_hostname(k): v for k, v in domains.items()}
