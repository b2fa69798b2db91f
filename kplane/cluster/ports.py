"""Port checks on loopback: is a port free, and if not, who holds it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class PortRequest:
    """A port some component will listen on, and the flag that chooses it."""

    port: int
    what: str
    flag: str


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could bind and listen on ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Servers set SO_REUSEADDR, so a port left in TIME_WAIT counts as free, as it is for them.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError:
            return False
    return True


def describe_process(pid: int) -> str:
    """``pid 1234 python -m apiserver`` (command line shortened), or ``pid 1234``."""
    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):
        cmdline = []
    if not cmdline:
        return f"pid {pid}"
    words = [os.path.basename(cmdline[0]), *cmdline[1:]]
    text = " ".join(words)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"pid {pid} {text}"


def port_holder(port: int, host: str = LOOPBACK) -> str | None:
    """Describe the process listening on ``port`` (on ``host`` or a wildcard), if psutil can tell."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return None
    for c in conns:
        if not c.laddr or c.laddr.port != port or c.status != psutil.CONN_LISTEN:
            continue
        if c.laddr.ip not in (host, "0.0.0.0", "::", "::ffff:" + host):
            continue
        if c.pid is None:
            return None
        return describe_process(c.pid)
    return None


def check_ports(requests: Iterable[PortRequest], host: str = LOOPBACK) -> list[str]:
    """One clear message for each requested port that is taken or asked for twice (empty: all free)."""
    errors: list[str] = []
    seen: dict[int, PortRequest] = {}
    for req in requests:
        if req.port == 0:
            continue  # ephemeral: the component picks a free one
        if not 0 < req.port < 65536:
            errors.append(f"port {req.port} for the {req.what} ({req.flag}) is not a valid TCP port")
            continue
        first = seen.get(req.port)
        if first is not None:
            errors.append(
                f"port {req.port} is asked for twice: {first.what} ({first.flag}) and {req.what} ({req.flag})"
            )
            continue
        seen[req.port] = req
        if port_is_free(req.port, host):
            continue
        holder = port_holder(req.port, host)
        by = f" ({holder})" if holder else ""
        errors.append(
            f"port {req.port} on {host} is in use{by}; is another cluster running? "
            f"use {req.flag} or `kplane down` (needed for the {req.what})"
        )
    return errors


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """``n`` distinct ports that were free a moment ago (for tests and side-by-side clusters)."""
    socks: list[socket.socket] = []
    try:
        while len(socks) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
