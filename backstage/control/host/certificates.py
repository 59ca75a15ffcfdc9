"""The certificates of a Production's hosts, kept under its home for the router's TLS
listener: `tls/hosts/HOST.crt` (the certificate, then its chain), `HOST.key` (0600) and
`HOST.toml` (where it came from). The router's config names each pair (`sni`), and
is replaced when one changes.

A host with a certificate answers plain HTTP with a 308 to https: the Acts test, per
request, for an empty file named by the router key in `tls/redirect/` (0755, no
secrets), which this module keeps in step. An Act of a Venue with its own user cannot
reach the home (0700): its Venue's `run/tls/redirect/` holds the marks of that
Venue's own hosts alone, and `run/tls/challenges/` their HTTP-01 answers (both 0711,
root's: the user reads a name it knows, lists and writes nothing).

Keys are written 0600 before they take their name, and never printed or logged.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ...errors import NotFound
from ...files import declared, tomlfile
from ...files.fs import unlink_if_present, write_atomic, write_if_changed
from ...model import certificate, gig
from ...model.certificate import CertInfo
from ...model.domains import check_hostname
from ...model.gig import split_address
from ...model.layout import Layout, venue_https_marks, venue_run_dir
from ...model.spec import ProductionSpec

log = logging.getLogger(__name__)

DEFAULT_NAME = "backstage.invalid"  # the default certificate's name: no real host's


@dataclass(frozen=True)
class HostCert:
    host: str
    source: str  # imported | acme
    info: CertInfo | None  # None: its file does not load (the host gets the default)
    error: str = ""

    def to_json(self) -> dict[str, object]:
        found: dict[str, object] = {"host": self.host, "source": self.source}
        if self.info is not None:
            found.update(self.info.to_json())
        else:
            found.update({"issuer": None, "not_after": None, "names": []})
        found["error"] = self.error or None
        return found


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class Certificates:
    """Reads and writes the certificate files. Constructing it does nothing."""

    def __init__(self, layout: Layout, settings: Callable[[], ProductionSpec]) -> None:
        self.layout = layout
        self._settings = settings
        self._marked: dict[str, tuple[str, ...]] | None = None
        # the booked hosts of each Venue with a user, by its folder (None: not told yet)
        self._venues: dict[str, frozenset[str]] | None = None
        self._read: dict[str, tuple[tuple[int, int, int, int], HostCert]] = {}

    # Reading

    def hosts(self) -> list[str]:
        try:
            entries = os.listdir(self.layout.certs_dir)
        except FileNotFoundError:
            return []
        return sorted(e[: -len(".crt")] for e in entries if e.endswith(".crt"))

    def get(self, host: str) -> HostCert | None:
        path = self.layout.cert_path(host)
        try:
            st = os.stat(path)
            meta = os.stat(self.layout.cert_meta_path(host)).st_mtime_ns
        except FileNotFoundError:
            if not os.path.exists(path):
                return None
            st, meta = os.stat(path), 0
        # every pass of the Manager asks for every host: parse a file once per version
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size, meta)
        cached = self._read.get(host)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = self._load(host, path)
        self._read[host] = (stamp, found)
        return found

    def _load(self, host: str, path: str) -> HostCert:
        try:
            meta = tomlfile.load(self.layout.cert_meta_path(host))
        except (OSError, ValueError):
            meta = {}
        source = str(meta.get("source", "imported"))
        try:
            return HostCert(host, source, certificate.info(_read(path), path))
        except (OSError, certificate.BadCertificate) as exc:
            return HostCert(host, source, None, f"{path} does not load: {exc}")

    def all(self) -> list[HostCert]:
        return [c for c in map(self.get, self.hosts()) if c is not None]

    def stamp(self) -> str:
        """Changes when a certificate file is written or removed: the router reads each
        pair once, so a replaced one needs a new router (its config names this)."""
        digest = hashlib.sha1()
        for host in self.hosts():
            for path in (self.layout.cert_path(host), self.layout.cert_key_path(host)):
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                digest.update(f"{path} {st.st_mtime_ns} {st.st_size}\n".encode())
        return digest.hexdigest()[:12]

    # Writing

    def install(
        self,
        host: str,
        cert_pem: bytes,
        key_pem: bytes,
        chain_pem: bytes = b"",
        source: str = "imported",
    ) -> HostCert:
        """Check the pair for `host` (BadCertificate, nothing written, when it cannot
        serve it), then write it: the key first, 0600, each file whole or not at all."""
        check_hostname(host)
        host = host.lower()
        found = certificate.check(host, cert_pem, key_pem)
        if chain_pem:
            certificate.info(chain_pem, "the chain file")  # PEM certificates, or refused
        self._dirs()
        text = cert_pem.decode().rstrip("\n") + "\n"
        if chain_pem:
            text += chain_pem.decode().rstrip("\n") + "\n"
        write_atomic(self.layout.cert_key_path(host), key_pem.decode(), 0o600)
        write_atomic(self.layout.cert_path(host), text, 0o600)
        written = {"source": source, "installed": _now()}
        write_atomic(self.layout.cert_meta_path(host), tomlfile.dumps(written), 0o600)
        self._marked = None
        self.prepare()
        log.info("certificate for %s installed (%s, until %s)", host, source, found.not_after)
        return HostCert(host, source, found)

    def remove(self, host: str) -> None:
        host = host.lower()
        if not os.path.exists(self.layout.cert_path(host)):
            raise NotFound(f"{host} has no certificate: `backstage tls ls` lists those that do")
        # the certificate first: the router never finds one without its key
        for path in (
            self.layout.cert_path(host),
            self.layout.cert_key_path(host),
            self.layout.cert_meta_path(host),
        ):
            unlink_if_present(path)
        self._marked = None
        self.prepare()
        log.info("certificate for %s removed", host)

    def _dirs(self) -> None:
        os.makedirs(self.layout.tls_dir, mode=0o755, exist_ok=True)
        os.makedirs(self.layout.certs_dir, mode=0o700, exist_ok=True)
        os.chmod(self.layout.certs_dir, 0o700)

    def prepare(self) -> None:
        """With a TLS listener: the default pair it starts with, and the redirect marks.
        Cheap when nothing changed: every pass of the Production Manager asks."""
        spec = self._settings()
        if spec.https and not os.path.exists(self.layout.default_cert):
            self._dirs()
            cert_pem, key_pem = certificate.self_signed(DEFAULT_NAME)
            write_atomic(self.layout.default_cert_key, key_pem.decode(), 0o600)
            write_atomic(self.layout.default_cert, cert_pem.decode(), 0o644)
        self._mark(spec)

    def share(self, venues: Mapping[str, Iterable[str]]) -> None:
        """Tell which hosts each Venue with a user books (by its folder): the Manager
        does, each pass. Its marks and answers are then kept in that Venue's folder."""
        shared = {path: frozenset(h.lower() for h in hosts) for path, hosts in venues.items()}
        if shared != self._venues:
            self._venues = shared
            self._marked = None

    def venues_of(self, host: str) -> list[str]:
        """The folders of the Venues with a user that book `host` (read from the
        declared files when no Manager said: `tls renew` in a process of its own)."""
        if self._venues is None:
            self.share(user_venue_hosts(declared.read(self.layout).acts))
        assert self._venues is not None
        return sorted(path for path, hosts in self._venues.items() if host.lower() in hosts)

    def _mark(self, spec: ProductionSpec) -> None:
        wanted: dict[str, tuple[str, ...]] = {self.layout.https_marks: ()}
        venues = self._venues or {}
        for path in venues:
            if os.path.isdir(venue_run_dir(path)):  # made as its user needs it, by the Manager
                wanted[venue_https_marks(path)] = ()
        if spec.https and spec.https_redirect:
            port = split_address(spec.router)[1]
            hosts = [c.host for c in self.all() if c.info]
            keys = {h: gig.keys_for(h, port) for h in hosts}
            wanted[self.layout.https_marks] = tuple(sorted({k for h in hosts for k in keys[h]}))
            for path, booked in venues.items():
                folder = venue_https_marks(path)
                if folder in wanted:
                    mine = {k for h in hosts if h in booked for k in keys[h]}
                    wanted[folder] = tuple(sorted(mine))
        if wanted == self._marked:
            return
        for folder, marks in wanted.items():
            _keep_marks(folder, marks, 0o755 if folder == self.layout.https_marks else 0o711)
        self._marked = wanted


def _keep_marks(folder: str, marks: tuple[str, ...], mode: int) -> None:
    """An empty file per mark in `folder`, and nothing else but the temporary files of
    writes under way: another process (`tls import`, a pass of the Manager) may be
    keeping the same folder, and a host name never starts with a dot."""
    if not marks and not os.path.isdir(folder):
        return
    make_folder(folder, mode)
    for entry in os.listdir(folder):
        if entry not in marks and not entry.startswith("."):
            unlink_if_present(os.path.join(folder, entry))
    for key in marks:
        write_if_changed(os.path.join(folder, key), "")


def make_folder(path: str, mode: int) -> None:
    """`path` and its parent (a Venue's `run/tls/`) with `mode`: the parent of both is
    the home's or a root folder no Venue's user writes in."""
    for folder in (os.path.dirname(path), path):
        os.makedirs(folder, mode=mode, exist_ok=True)
        if os.stat(folder).st_mode & 0o777 != mode:
            os.chmod(folder, mode)  # whatever the umask made of it


def user_venue_hosts(acts: Iterable[declared.DeclaredAct]) -> dict[str, set[str]]:
    """The hosts booked by the Acts of each Venue with a user, by the Venue's folder."""
    found: dict[str, set[str]] = {}
    for act in acts:
        if act.ref.user and act.spec is not None:
            found.setdefault(act.ref.venue_path, set()).update(act.spec.hosts)
    return found


def https_port_suffix(spec: ProductionSpec) -> str:
    """What follows the host in a redirect to the TLS listener: "" on 443."""
    if not spec.https:
        return ""
    port = split_address(spec.https)[1]
    return "" if port == 443 else f":{port}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
