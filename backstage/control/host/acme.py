"""Certificates from an ACME CA (Let's Encrypt, or any server that speaks RFC 8555),
through certbot's own `acme` library: no JWS of our own.

HTTP-01: the CA fetches `http://HOST/.well-known/acme-challenge/TOKEN` on the router's
HTTP port; the Production keeps TOKEN's answer in `tls/challenges/` (0755: no secret,
an Act serves it by its vassal's static route, the router's own worker for a host
nobody plays), and in the `run/tls/challenges/` of a Venue with a user that books the
host (its Acts cannot reach the home). The account key lives in `tls/acme/account.key`
(0600).

The Production Manager asks `due()` each pass and obtains in a thread of its own, so a
booking never waits for the CA. A failure is kept (`tls/acme/HOST.json`: the error, the
failures in a row, the next try), and tried again after a delay that doubles from
RETRY_FIRST to RETRY_MOST: never a hot loop against a CA's rate limits. A certificate
that serves is replaced only by a new one that was issued: a failed renewal leaves it.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import josepy

from ...errors import BackstageError
from ...files.fs import unlink_if_present, write_atomic
from ...model.certificate import CertInfo
from ...model.layout import Layout, venue_challenges
from ...model.spec import LETS_ENCRYPT, ProductionSpec
from .certificates import Certificates, make_folder

log = logging.getLogger(__name__)

RENEW_BEFORE = datetime.timedelta(days=30)  # a certificate is renewed from then on
RETRY_FIRST = 60.0  # seconds before the first retry of a host that failed
RETRY_MOST = 24 * 3600.0  # and never more than a day
VALIDATION_TIMEOUT = 90.0  # the CA's validation and issuance, per host


class AcmeError(BackstageError):
    """The CA did not issue a certificate."""


@dataclass(frozen=True)
class Attempt:
    """What the last try for a host left: `error` "" when it succeeded."""

    error: str = ""
    failures: int = 0
    next_try: float = 0.0  # time.time() from which it is tried again

    def to_json(self) -> dict[str, object]:
        when = (
            datetime.datetime.fromtimestamp(self.next_try, datetime.UTC) if self.next_try else None
        )
        return {
            "error": self.error or None,
            "failures": self.failures,
            "next_try": when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else None,
        }


def renew_now(info: CertInfo, now: float) -> bool:
    """From RENEW_BEFORE before its end, or its last third for a shorter-lived one (a
    CA's test certificate): a new certificate is never due at once."""
    left = info.not_after - datetime.datetime.fromtimestamp(now, datetime.UTC)
    window = RENEW_BEFORE
    if info.not_before is not None:
        window = min(window, (info.not_after - info.not_before) / 3)
    return left <= window


def renew_from(info: CertInfo) -> float:
    """The time (time.time()) from which `renew_now` holds for a certificate."""
    window = RENEW_BEFORE
    if info.not_before is not None:
        window = min(window, (info.not_after - info.not_before) / 3)
    return (info.not_after - window).timestamp()


def retry_delay(failures: int) -> float:
    """Seconds before the next try after `failures` in a row (1, 2, ...)."""
    return float(min(RETRY_MOST, RETRY_FIRST * 2 ** max(0, failures - 1)))


class Acme:
    """Obtains and renews certificates for booked hosts. Constructing it does nothing."""

    def __init__(
        self,
        layout: Layout,
        settings: Callable[[], ProductionSpec],
        certificates: Certificates,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.layout = layout
        self._settings = settings
        self.certificates = certificates
        self._clock = clock
        self._thread: threading.Thread | None = None

    @property
    def acme_dir(self) -> str:
        return os.path.join(self.layout.tls_dir, "acme")

    @property
    def challenges(self) -> str:
        return self.layout.challenges

    def _attempt_path(self, host: str) -> str:
        return os.path.join(self.acme_dir, host + ".json")

    def enabled(self) -> bool:
        spec = self._settings()
        return bool(spec.acme) and bool(spec.https)

    # What is due

    def attempt(self, host: str) -> Attempt:
        try:
            with open(self._attempt_path(host)) as f:
                data = json.load(f)
            return Attempt(str(data["error"]), int(data["failures"]), float(data["next_try"]))
        except (OSError, ValueError, KeyError, TypeError):
            return Attempt()

    def busy(self) -> bool:
        """A thread obtains certificates now; a pass after it ends hands them over."""
        return self._thread is not None and self._thread.is_alive()

    def next_due(self, hosts: Iterable[str]) -> float | None:
        """When (time.time()) one of `hosts` is due next, by its certificate's renewal
        or its next try; None for none (or ACME off)."""
        if not self.enabled():
            return None
        found = []
        for host in set(hosts):
            cert = self.certificates.get(host)
            if cert is not None and cert.source != "acme":
                continue
            at = self.attempt(host).next_try
            if cert is not None and cert.info is not None:
                at = max(at, renew_from(cert.info))
            found.append(at)
        return min(found, default=None)

    def due(self, hosts: Iterable[str], force: bool = False) -> list[str]:
        """The hosts to obtain a certificate for now: no certificate, or an ACME one
        within RENEW_BEFORE of its end (an imported one is its owner's to renew), and
        not waiting for a retry (`force`: waiting or not, and renew any ACME one)."""
        now = self._clock()
        found = []
        for host in sorted(set(hosts)):
            cert = self.certificates.get(host)
            if cert is not None:
                if cert.source != "acme":
                    continue
                if not force and cert.info is not None and not renew_now(cert.info, now):
                    continue
            if not force and self.attempt(host).next_try > now:
                continue
            found.append(host)
        return found

    # Obtaining

    def start(self, hosts: Iterable[str]) -> bool:
        """Obtain what is due for `hosts` in a thread, unless one runs; True if started."""
        if not self.enabled() or (self._thread is not None and self._thread.is_alive()):
            return False
        hosts = set(hosts)
        for host in set(self.tried()) - hosts:
            self.forget(host)  # unbooked: no more tries, and no error to show
        due = self.due(hosts)
        if not due:
            return False
        self._thread = threading.Thread(target=self.obtain_all, args=(due,), daemon=True)
        self._thread.start()
        return True

    def obtain_all(self, hosts: Iterable[str]) -> dict[str, str]:
        """Try each host; host to "" (issued) or the error, each kept for `tls ls`."""
        done = {}
        for host in hosts:
            try:
                self.obtain(host)
                done[host] = ""
            except Exception as exc:  # noqa: BLE001 - whatever the CA or the network says
                done[host] = self._failed(host, exc)
        return done

    def _failed(self, host: str, exc: Exception) -> str:
        before = self.attempt(host)
        failures = before.failures + 1
        error = (str(exc).splitlines() or [type(exc).__name__])[0][:300] or type(exc).__name__
        attempt = Attempt(error, failures, self._clock() + retry_delay(failures))
        self._keep(host, attempt)
        log.warning("no certificate for %s (try %d): %s", host, failures, error)
        return error

    def _keep(self, host: str, attempt: Attempt) -> None:
        os.makedirs(self.acme_dir, mode=0o700, exist_ok=True)
        data = {"error": attempt.error, "failures": attempt.failures, "next_try": attempt.next_try}
        write_atomic(self._attempt_path(host), json.dumps(data) + "\n", 0o600)

    def obtain(self, host: str) -> None:
        """Order, validate (HTTP-01) and install a certificate for `host`; AcmeError
        (or the library's) when the CA does not issue one. Nothing served changes
        until a certificate is issued."""
        from acme import challenges, client, crypto_util, messages  # the CA's client, once used

        spec = self._settings()
        net = client.ClientNetwork(
            self._account_key(),
            user_agent="backstage",
            # requests takes a CA file where the library's annotation says bool
            verify_ssl=spec.acme.get("ca_bundle") or True,  # type: ignore[arg-type]
        )
        directory = client.ClientV2.get_directory(spec.acme.get("directory", LETS_ENCRYPT), net)
        ca = client.ClientV2(directory, net=net)
        self._register(ca, spec.acme.get("email", ""), messages)
        key_pem = _new_key()
        order = ca.new_order(crypto_util.make_csr(key_pem, [host]))
        written = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # validated for this account lately: CAs reuse it
                chall = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                    None,
                )
                if chall is None:
                    raise AcmeError(f"the CA offers no HTTP-01 challenge for {host}")
                response, validation = chall.response_and_validation(net.key)
                for folder, mode in self._answer_folders(host):
                    make_folder(folder, mode)
                    path = os.path.join(folder, chall.chall.encode("token"))
                    write_atomic(path, validation, 0o644)
                    written.append(path)
                ca.answer_challenge(chall, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=VALIDATION_TIMEOUT)
            order = ca.poll_and_finalize(order, deadline)
        finally:
            for path in written:
                unlink_if_present(path)
        fullchain = order.fullchain_pem.encode()
        self.certificates.install(host, fullchain, key_pem, source="acme")
        unlink_if_present(self._attempt_path(host))

    def _answer_folders(self, host: str) -> list[tuple[str, int]]:
        """Where `host`'s HTTP-01 answer is served from, with each folder's mode."""
        venues = [(venue_challenges(v), 0o711) for v in self.certificates.venues_of(host)]
        return [(self.challenges, 0o755), *venues]

    def _register(self, ca: object, email: str, messages: object) -> None:
        from acme import errors

        new = messages.NewRegistration.from_data(  # type: ignore[attr-defined]
            email=email or None, terms_of_service_agreed=True
        )
        try:
            ca.new_account(new)  # type: ignore[attr-defined]
        except errors.ConflictError as exc:  # the account exists: use it
            existing = messages.RegistrationResource(  # type: ignore[attr-defined]
                uri=exc.location,
                body=messages.Registration(),  # type: ignore[attr-defined]
            )
            ca.net.account = ca.query_registration(existing)  # type: ignore[attr-defined]

    def _account_key(self) -> josepy.JWKRSA:
        import josepy  # with the CA's client, only when a certificate is ordered
        from cryptography.hazmat.primitives import serialization

        path = os.path.join(self.acme_dir, "account.key")
        if not os.path.exists(path):
            os.makedirs(self.acme_dir, mode=0o700, exist_ok=True)
            write_atomic(path, _new_key(rsa=True).decode(), 0o600)
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        return josepy.JWKRSA(key=key)  # RS256, the library's default

    def tried(self) -> list[str]:
        """The hosts whose last try failed."""
        try:
            entries = os.listdir(self.acme_dir)
        except FileNotFoundError:
            return []
        return sorted(e[: -len(".json")] for e in entries if e.endswith(".json"))

    def forget(self, host: str) -> None:
        """A host no longer booked: no more tries (its certificate stays until removed)."""
        unlink_if_present(self._attempt_path(host))


def _new_key(rsa: bool = False) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

    key: ec.EllipticCurvePrivateKey | rsa_keys.RSAPrivateKey
    if rsa:
        key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
