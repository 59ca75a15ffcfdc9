"""Ports for Acts: chosen once, free, and not declared by another Act."""

from __future__ import annotations

import socket
from collections.abc import Collection

from ...errors import PortBusy
from ...model.spec import ProductionSpec


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    # SO_REUSEADDR as uWSGI binds, so a port in TIME_WAIT counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel says is free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def allocate(first: int, last: int, taken: Collection[int]) -> int:
    for port in range(first, last + 1):
        if port not in taken and port_free(port):
            return port
    raise PortBusy(f"no free port left in {first}-{last}: widen `ports` in production.toml")


SOMAXCONN = "/proc/sys/net/core/somaxconn"


def listen_queue(wanted: int, ceiling: str = SOMAXCONN) -> int:
    """`wanted`, or the kernel's ceiling (net.core.somaxconn) when lower: uWSGI refuses
    to start with a listen queue past it."""
    try:
        with open(ceiling) as limit:
            return max(1, min(wanted, int(limit.read())))
    except (OSError, ValueError):
        return wanted


ROUTER_PORTS = (8000, 8099)


def new_production() -> ProductionSpec:
    """The settings of a new production.toml. Its router takes 8000, or the next port
    free now: two Productions with default settings on one host do not want the same
    one (and if none is free, `up` says so in one line)."""
    first, last = ROUTER_PORTS
    port = next((p for p in range(first, last + 1) if port_free(p)), first)
    return ProductionSpec(router=f"127.0.0.1:{port}")
