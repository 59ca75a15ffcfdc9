"""A Pebble of the test's own (Let's Encrypt's test CA) with pebble-challtestsrv as its
DNS, which answers 127.0.0.1 for every name: HTTP-01 validations reach the router's
HTTP port on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.request

import pytest

from tests.helpers import free_port, poll
from tests.tls_helpers import TestCA


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pebble:
    def __init__(self, folder: str, http_port: int, ca: TestCA, validity: int = 0) -> None:
        if not shutil.which("pebble") or not shutil.which("pebble-challtestsrv"):
            pytest.skip("pebble is not installed (./run setup installs it)")
        self.ca = ca
        self.port, self.management = free_port(), free_port()
        dns = _free_udp()
        self.challtestsrv = free_port()
        cert, key = ca.leaf("localhost")
        with open(cert) as c, open(ca.chain_path) as m:
            chain = c.read() + m.read()
        served = os.path.join(folder, "pebble.crt")
        with open(served, "w") as f:
            f.write(chain)
        settings = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management}",
            "certificate": served,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
        if validity:
            settings["certificateValidityPeriod"] = validity
        config = os.path.join(folder, "pebble.json")
        with open(config, "w") as f:
            json.dump({"pebble": settings}, f)
        log = open(os.path.join(folder, "pebble.log"), "wb")  # noqa: SIM115 - kept open
        self._procs = [
            subprocess.Popen(
                ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "",
                 "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{self.challtestsrv}",
                 "-defaultIPv6", ""],
                stdout=log, stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                ["pebble", "-config", config, "-dnsserver", f"127.0.0.1:{dns}"],
                stdout=log, stderr=subprocess.STDOUT,
                env=dict(
                    os.environ,
                    PEBBLE_VA_NOSLEEP="1",
                    PEBBLE_WFE_NONCEREJECT="0",
                    # reuse every valid authorization, as Let's Encrypt may: a renewal
                    # then has no challenge to answer (by default Pebble does it by chance)
                    PEBBLE_AUTHZREUSE="100",
                ),
            ),
        ]  # fmt: skip
        self.log_path = log.name
        poll(self._answers, timeout=20)

    @property
    def directory(self) -> str:
        return f"https://localhost:{self.port}/dir"

    def _answers(self) -> bool:
        try:
            self.root()
            return True
        except OSError:
            return False

    def root(self) -> str:
        """The root Pebble issues under, from its management API."""
        url = f"https://localhost:{self.management}/roots/0"
        with urllib.request.urlopen(url, context=self.ca.context(), timeout=5) as answer:
            return str(answer.read().decode())

    def point(self, host: str, address: str) -> None:
        """Have the DNS answer `address` for `host` (as if it pointed elsewhere)."""
        body = json.dumps({"host": host, "addresses": [address]}).encode()
        url = f"http://127.0.0.1:{self.challtestsrv}/add-a"
        with urllib.request.urlopen(url, data=body, timeout=5):
            pass

    def stop_acme(self) -> None:
        """Stop Pebble itself (the CA down); its DNS stays."""
        self._procs[1].terminate()
        self._procs[1].wait(timeout=10)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            proc.wait(timeout=10)


class PebbleRoot(TestCA):
    """Pebble's root (from `Pebble.root()`), to verify what the router serves against."""

    def __init__(self, pem: str) -> None:
        self.pem = pem

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem)
