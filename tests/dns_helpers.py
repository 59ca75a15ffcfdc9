"""A DNS question over UDP with the stdlib only, and a PowerDNS server of a test's own."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import urllib.request
from typing import IO

from tests.helpers import poll

TYPES = {"A": 1, "AAAA": 28}
# Where Debian's pdns-backend-sqlite3 puts its schema (the first one found is used).
SCHEMAS = (
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
)


def query(port: int, name: str, rtype: str = "A", timeout: float = 2.0) -> tuple[int, list[str]]:
    """(rcode, addresses) of the answer 127.0.0.1:`port` gives for `name`."""
    qid = os.getpid() & 0xFFFF
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    packet = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + question + b"\0"
    packet += struct.pack(">HH", TYPES[rtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, ("127.0.0.1", port))
        reply = sock.recv(4096)
    rid, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", reply[:12])
    assert rid == qid
    at = _skip_name(reply, 12) + 4
    found = []
    for _ in range(ancount):
        at = _skip_name(reply, at)
        atype, _, _, length = struct.unpack(">HHIH", reply[at : at + 10])
        data = reply[at + 10 : at + 10 + length]
        if atype == TYPES[rtype]:
            found.append(str(ipaddress.ip_address(data)))
        at += 10 + length
    return flags & 0xF, found


def _skip_name(packet: bytes, at: int) -> int:
    while True:
        length = packet[at]
        if length == 0:
            return at + 1
        if length & 0xC0 == 0xC0:  # a pointer ends the name
            return at + 2
        at += 1 + length


def free_port() -> int:
    """A port free for both TCP and UDP on loopback (PowerDNS binds both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def pdns_server() -> str | None:
    return shutil.which("pdns_server") or next(
        (p for p in ("/usr/sbin/pdns_server",) if os.access(p, os.X_OK)), None
    )


class PowerDNSServer:
    """pdns_server with its own config dir, sqlite3 database and sockets in `folder`,
    DNS and its API on free loopback ports."""

    def __init__(self, folder: str, key: str = "test-api-key") -> None:
        self.folder = folder
        self.key = key
        self.dns_port = free_port()
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def start(self) -> None:
        schema = next(path for path in SCHEMAS if os.path.isfile(path))
        database = os.path.join(self.folder, "pdns.sqlite3")
        with sqlite3.connect(database) as db, open(schema) as sql:
            db.executescript(sql.read())
        settings = {
            "launch": "gsqlite3",
            "gsqlite3-database": database,
            "local-address": "127.0.0.1",
            "local-port": self.dns_port,
            "webserver": "yes",
            "webserver-address": "127.0.0.1",
            "webserver-port": self.api_port,
            "api": "yes",
            "api-key": self.key,
            "socket-dir": self.folder,
            "guardian": "no",
            "daemon": "no",
            "security-poll-suffix": "",  # no question to the Internet
            "loglevel": "4",
        }
        with open(os.path.join(self.folder, "pdns.conf"), "w") as conf:
            conf.writelines(f"{key}={value}\n" for key, value in settings.items())
        self.log = open(os.path.join(self.folder, "pdns.log"), "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [pdns_server() or "pdns_server", f"--config-dir={self.folder}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        poll(self._answers, timeout=20)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log_text()
        request = urllib.request.Request(
            f"{self.url}/api/v1/servers/localhost", headers={"X-API-Key": self.key}
        )
        try:
            with urllib.request.urlopen(request, timeout=1):
                return True
        except OSError:
            return False

    def log_text(self) -> str:
        with open(os.path.join(self.folder, "pdns.log"), errors="replace") as log:
            return log.read()[-2000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
