"""Ports for Acts: chosen once, free, and not declared by another Act."""

from __future__ import annotations

import socket
from collections.abc import Collection

from ..errors import PortBusy


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    # SO_REUSEADDR as uWSGI binds, so a port in TIME_WAIT counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def allocate(first: int, last: int, taken: Collection[int]) -> int:
    for port in range(first, last + 1):
        if port not in taken and port_free(port):
            return port
    raise PortBusy(f"no free port left in {first}-{last}: widen `ports` in production.toml")
