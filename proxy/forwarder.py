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

One addition to kube-proxy's behaviour (see :class:`_Connection`): an endpoint that closes or
resets a connection *before sending a single byte*, while the client is still sending or waiting,
gets the client's bytes so far (up to 64 KiB) re-sent to the next endpoint. A pod killed between
accepting a request and answering it — kplane's kubelet has no preStop hooks to delay SIGTERM
until the proxies have dropped the pod — then costs its client nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from kplane.logs import get_logger
from proxy.table import Endpoint, Route, Table

CONNECTIONS = Counter("proxy_connections_total", "client connections by outcome", ["outcome"])
ENDPOINT_FAILURES = Counter("proxy_endpoint_connect_failures_total", "endpoint connects that failed (next tried)")
LISTENERS = Gauge("proxy_listeners", "listening sockets (service and node ports)")
REPLAYS = Counter("proxy_replays_total", "requests re-sent to another endpoint after one closed before answering")
ACTIVE = Gauge("proxy_active_connections", "connections being forwarded")

CONNECT_TIMEOUT = 3.0
CHUNK = 64 * 1024
BACKLOG = 1024
REPLAY_LIMIT = 64 * 1024  # client bytes kept for a replay until the endpoint answers


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

    async def _connect(self, address: tuple[str, int], route: Route, client_ip: str,
                       tried: set[Endpoint]) -> tuple[Endpoint, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for endpoint in self.balancer.order(address, route, client_ip):
            current = self.routes.get(address)
            if endpoint in tried or current is None or endpoint not in current.endpoints:
                continue  # tried already, or removed from the Endpoints since this connection arrived
            tried.add(endpoint)
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
        tried: set[Endpoint] = set()
        picked = await self._connect(address, route, peer[0], tried) if route is not None else None
        if picked is None:
            CONNECTIONS.labels("rejected").inc()
            self.log.debug("no endpoint accepted; closing the client connection",
                           address=f"{address[0]}:{address[1]}", service=route.label if route else "")
            writer.transport.abort()
            return
        assert route is not None
        CONNECTIONS.labels("forwarded").inc()
        ACTIVE.inc()
        conn = _Connection(picked[0], picked[1], picked[2])
        upstreams = [picked[2]]

        async def reconnect() -> bool:
            """The endpoint went away before answering: replay the client's bytes to the next one."""
            again = await self._connect(address, route, peer[0], tried)
            if again is None:
                return False
            REPLAYS.inc()
            self.log.debug("endpoint closed before answering; replayed to the next", service=route.label,
                           failed=str(conn.endpoint), endpoint=str(again[0]), bytes=len(conn.sent))
            conn.endpoint, conn.up_reader, conn.up_writer = again
            upstreams.append(again[2])
            again[2].write(bytes(conn.sent))  # no await between this and the swap: nothing interleaves
            if conn.client_eof:
                again[2].write_eof()
            return True

        try:
            await asyncio.gather(_client_to_upstream(reader, conn), _upstream_to_client(conn, writer, reconnect))
        finally:
            ACTIVE.dec()
            for w in (writer, *upstreams):
                w.close()
            for w in (writer, *upstreams):
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()


@dataclass
class _Connection:
    """One client connection's current upstream and what may be replayed to another endpoint.

    Until the first byte comes back, the client's bytes are kept (up to ``REPLAY_LIMIT``): an
    endpoint that closes or resets before answering — a pod killed between accepting and
    answering, or with the connection still in its accept queue — gets its request re-sent to the
    next endpoint. Never once a byte has been answered, never after the client's half-close
    (a protocol where the server answers nothing), never when more was sent than kept."""

    endpoint: Endpoint
    up_reader: asyncio.StreamReader
    up_writer: asyncio.StreamWriter
    sent: bytearray = field(default_factory=bytearray)
    answered: bool = False
    client_eof: bool = False
    replayable: bool = True

    def may_replay(self) -> bool:
        return self.replayable and not self.answered and not self.client_eof


async def _client_to_upstream(reader: asyncio.StreamReader, conn: _Connection) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            if not conn.answered:
                if len(conn.sent) + len(data) <= REPLAY_LIMIT:
                    conn.sent += data
                else:
                    conn.replayable = False
            try:
                conn.up_writer.write(data)
                await conn.up_writer.drain()
            except (ConnectionError, OSError):
                if not conn.may_replay():
                    raise
                # the other direction notices the failed endpoint and replays conn.sent
        conn.client_eof = True
        if conn.up_writer.can_write_eof() and not conn.up_writer.is_closing():
            conn.up_writer.write_eof()
    except (ConnectionError, OSError):
        conn.up_writer.transport.abort()


async def _upstream_to_client(conn: _Connection, writer: asyncio.StreamWriter,
                              reconnect: Callable[[], Awaitable[bool]]) -> None:
    while True:
        try:
            data: bytes | None = await conn.up_reader.read(CHUNK)
        except (ConnectionError, OSError):
            data = None  # reset by the endpoint
        if not data and conn.may_replay() and await reconnect():
            continue
        if data is None:
            writer.transport.abort()
            return
        if not data:
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(ConnectionError, OSError):
                    writer.write_eof()
            return
        if not conn.answered:
            conn.answered = True
            conn.sent = bytearray()
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            conn.up_writer.transport.abort()
            return
