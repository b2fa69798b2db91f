"""Listeners and TCP forwarding: the data plane of the node proxy.

:class:`Forwarder` owns one asyncio listening socket per routed address (``clusterIP:port``,
``nodeAddress:nodePort``) and makes the set of sockets match the routing table it is given
(:meth:`Forwarder.apply`): new addresses are bound, vanished ones closed, routes of kept ones
swapped in place (a connection looks its route up when it arrives).

Every socket is bound with ``SO_REUSEPORT``: the proxy of every node binds the same service
address, and the kernel spreads new connections over all of them (by a hash of the connection's
addresses and ports) — as if clients sat on different nodes, each reaching the service through
its own node's proxy. A proxy that stops (or crashes) leaves the others serving.

Per connection: pick endpoints in order (:class:`Balancer`), connect to the first that accepts —
a refused or failing connect (a pod between its SIGTERM and the Endpoints update) moves on to
the next endpoint, and an endpoint the latest Endpoints no longer list is skipped — then copy
bytes both ways with asyncio streams until both directions are done. A half-close (EOF from
one side) is passed on as a write-side shutdown to the other, which may keep answering. With no
usable endpoint the client's connection is closed at once (Kubernetes rejects it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from kplane.logs import get_logger
from proxy.table import Endpoint, Route, Table

CONNECTIONS = Counter("proxy_connections_total", "client connections by outcome", ["outcome"])
ENDPOINT_FAILURES = Counter("proxy_endpoint_connect_failures_total", "endpoint connects that failed (next tried)")
LISTENERS = Gauge("proxy_listeners", "listening sockets (service and node ports)")
ACTIVE = Gauge("proxy_active_connections", "connections being forwarded")

CONNECT_TIMEOUT = 3.0
CHUNK = 64 * 1024
BACKLOG = 1024


@dataclass
class _Affinity:
    endpoint: Endpoint
    until: float


@dataclass
class Balancer:
    """Endpoint order per connection: round-robin per listening address, with ClientIP affinity."""

    clock: Callable[[], float] = time.monotonic
    _next: dict[tuple[str, int], int] = field(default_factory=dict)
    _sticky: dict[tuple[tuple[str, int], str], _Affinity] = field(default_factory=dict)

    def order(self, address: tuple[str, int], route: Route, client_ip: str) -> list[Endpoint]:
        eps = list(route.endpoints)
        if not eps:
            return []
        if route.affinity_seconds:
            sticky = self._sticky.get((address, client_ip))
            if sticky is not None and sticky.until > self.clock() and sticky.endpoint in eps:
                first = eps.index(sticky.endpoint)
                return eps[first:] + eps[:first]
        start = self._next.get(address, 0) % len(eps)
        self._next[address] = start + 1
        return eps[start:] + eps[:start]

    def connected(self, address: tuple[str, int], route: Route, client_ip: str, endpoint: Endpoint) -> None:
        if route.affinity_seconds:
            self._sticky[(address, client_ip)] = _Affinity(endpoint, self.clock() + route.affinity_seconds)

    def prune(self, addresses: set[tuple[str, int]]) -> None:
        """Forget state of addresses no longer routed, and expired affinities."""
        now = self.clock()
        self._next = {a: n for a, n in self._next.items() if a in addresses}
        self._sticky = {k: v for k, v in self._sticky.items() if k[0] in addresses and v.until > now}


def bind_reuseport(ip: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((ip, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Forwarder:
    def __init__(self, *, balancer: Balancer | None = None, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.balancer = balancer or Balancer()
        self.connect_timeout = connect_timeout
        self.routes: dict[tuple[str, int], Route] = {}
        self.servers: dict[tuple[str, int], asyncio.Server] = {}
        self.bind_errors: dict[tuple[str, int], str] = {}
        self._connections: set[asyncio.Task[None]] = set()
        self.accepted = 0  # connections this proxy's sockets accepted
        self.log = get_logger(component="proxy")

    # -- listeners ----------------------------------------------------------------------------------

    async def apply(self, table: Table) -> None:
        """Make the listening sockets match ``table``; failed binds are remembered for a retry."""
        self.routes = dict(table.routes)
        wanted = set(self.routes)
        for address in [a for a in self.servers if a not in wanted]:
            server = self.servers.pop(address)
            server.close()
            self.log.info("listener closed", address=f"{address[0]}:{address[1]}")
        self.bind_errors = {a: e for a, e in self.bind_errors.items() if a in wanted}
        for address in sorted(wanted - set(self.servers)):
            route = self.routes[address]
            try:
                sock = bind_reuseport(*address)
                server = await asyncio.start_server(self._client_handler(address), sock=sock)
            except OSError as exc:
                if self.bind_errors.get(address) != str(exc):
                    self.log.error("cannot listen; will retry", address=f"{address[0]}:{address[1]}",
                                   service=route.label, error=str(exc))
                self.bind_errors[address] = str(exc)
                continue
            self.bind_errors.pop(address, None)
            self.servers[address] = server
            self.log.info("listening", address=f"{address[0]}:{address[1]}", service=route.label,
                          nodePort=route.node_port, endpoints=len(route.endpoints))
        self.balancer.prune(wanted)
        LISTENERS.set(len(self.servers))

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        LISTENERS.set(0)

    # -- connections --------------------------------------------------------------------------------

    def _client_handler(self, address: tuple[str, int]) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]:
        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            task = asyncio.get_running_loop().create_task(self._serve(address, reader, writer))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

        return accept

    async def _connect(self, address: tuple[str, int], route: Route,
                       client_ip: str) -> tuple[Endpoint, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for endpoint in self.balancer.order(address, route, client_ip):
            current = self.routes.get(address)
            if current is None or endpoint not in current.endpoints:
                continue  # removed from the Endpoints since this connection arrived
            try:
                async with asyncio.timeout(self.connect_timeout):
                    up_reader, up_writer = await asyncio.open_connection(endpoint.ip, endpoint.port)
            except (OSError, TimeoutError) as exc:
                ENDPOINT_FAILURES.inc()
                self.log.debug("endpoint failed; trying the next", service=route.label, endpoint=str(endpoint),
                               error=str(exc) or type(exc).__name__)
                continue
            self.balancer.connected(address, route, client_ip, endpoint)
            return endpoint, up_reader, up_writer
        return None

    async def _serve(self, address: tuple[str, int], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        route = self.routes.get(address)
        picked = await self._connect(address, route, peer[0]) if route is not None else None
        if picked is None:
            CONNECTIONS.labels("rejected").inc()
            self.log.debug("no endpoint accepted; closing the client connection",
                           address=f"{address[0]}:{address[1]}", service=route.label if route else "")
            writer.transport.abort()
            return
        _endpoint, up_reader, up_writer = picked
        CONNECTIONS.labels("forwarded").inc()
        ACTIVE.inc()
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            ACTIVE.dec()
            for w in (writer, up_writer):
                w.close()
            for w in (writer, up_writer):
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF, then shut down ``dst``'s write side (half-close); a reset aborts both."""
    try:
        while True:
            data = await src.read(CHUNK)
            if not data:
                break
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof() and not dst.is_closing():
            dst.write_eof()
    except (ConnectionError, OSError):
        dst.transport.abort()
