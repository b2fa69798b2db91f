"""The proxy's data plane with real sockets: listeners, round-robin, refused endpoints, half-close,
session affinity, SO_REUSEPORT between two proxies, listeners closed with their route.

Addresses: service IPs 127.98.(20+w).x, backends 127.248.(20+w).x (w: the xdist worker), so
parallel test workers and other clusters on the machine never share an address."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import tcp_backend
from procs import worker_index

from proxy.forwarder import Balancer, Forwarder
from proxy.table import Endpoint, Route, Table

W = 20 + worker_index() % 20
VIP = f"127.98.{W}.10"
PORT = 18080


class Backend(tcp_backend.Backend):
    """An endpoint answering its name and a newline (tests/tcp_backend.py), as a route's Endpoint."""

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.ip, self.port, "n1")


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    started = [await Backend(f"pod-{i}", f"127.248.{W}.{i}").start() for i in range(1, 4)]
    yield started
    for b in started:
        await b.stop()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    fwd = Forwarder()
    yield fwd
    await fwd.close()


def table(*routes: tuple[tuple[str, int], Route]) -> Table:
    return Table(routes=dict(routes))


def route(*eps: Endpoint, affinity: int = 0) -> Route:
    return Route("ns/web", "", tuple(eps), affinity)


async def ask(ip: str = VIP, port: int = PORT, payload: bytes | None = None) -> bytes:
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        if payload is not None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_connections_are_spread_round_robin(forwarder: Forwarder, backends: list[Backend]) -> None:
    """Six connections to the service address reach each of three endpoints twice."""
    await forwarder.apply(table(((VIP, PORT), route(*(b.endpoint for b in backends)))))
    answers = Counter([(await ask()).decode().strip() for _ in range(6)])
    assert answers == {"pod-1": 2, "pod-2": 2, "pod-3": 2}


async def test_refused_endpoint_is_skipped_without_failing_the_client(forwarder: Forwarder,
                                                                      backends: list[Backend]) -> None:
    """An endpoint that refuses (its pod stopped listening) costs no failed connection."""
    dead = backends[0]
    await dead.stop()
    await forwarder.apply(table(((VIP, PORT), route(*(b.endpoint for b in backends)))))
    answers = [(await ask()).decode().strip() for _ in range(6)]
    assert set(answers) == {"pod-2", "pod-3"} and len(answers) == 6


async def test_no_endpoints_closes_the_connection(forwarder: Forwarder) -> None:
    """A service without ready endpoints accepts and closes at once (nothing is forwarded)."""
    await forwarder.apply(table(((VIP, PORT), route())))
    try:
        got = await ask()
    except ConnectionResetError:
        got = b""
    assert got == b""


async def test_half_close_is_passed_on(forwarder: Forwarder) -> None:
    """The client's EOF reaches the endpoint as EOF; the endpoint's answer after it still arrives."""
    echo = await Backend("echo", f"127.248.{W}.9", echo=True).start()
    try:
        await forwarder.apply(table(((VIP, PORT), route(echo.endpoint))))
        assert await ask(payload=b"x" * 200_000) == b"echo:" + b"x" * 200_000
    finally:
        await echo.stop()


async def test_client_ip_affinity_sticks_until_it_expires(backends: list[Backend]) -> None:
    """sessionAffinity ClientIP: one client address keeps its endpoint; after the timeout it moves on."""
    now = [0.0]
    fwd = Forwarder(balancer=Balancer(clock=lambda: now[0]))
    try:
        await fwd.apply(table(((VIP, PORT), route(*(b.endpoint for b in backends), affinity=30))))
        answers = {(await ask()).decode().strip() for _ in range(5)}
        assert len(answers) == 1
        now[0] += 31  # the affinity expired: round-robin picks the next endpoint
        assert (await ask()).decode().strip() not in answers
    finally:
        await fwd.close()


async def test_two_proxies_share_the_service_address(backends: list[Backend]) -> None:
    """SO_REUSEPORT: a second node's proxy binds the same address; connections keep working and
    the kernel hands some to each proxy."""
    first, second = Forwarder(), Forwarder()
    try:
        t = table(((VIP, PORT), route(*(b.endpoint for b in backends))))
        await first.apply(t)
        await second.apply(t)
        assert (VIP, PORT) in first.servers and (VIP, PORT) in second.servers
        answers = [(await ask()).decode().strip() for _ in range(40)]
        assert set(answers) == {"pod-1", "pod-2", "pod-3"}
        assert sum(b.hits for b in backends) == 40
        assert first.accepted > 0 and second.accepted > 0 and first.accepted + second.accepted == 40
        await first.close()  # one node's proxy stops: the other still serves
        assert (await ask()).decode().strip() in {"pod-1", "pod-2", "pod-3"}
    finally:
        await first.close()
        await second.close()


async def test_listener_closes_when_its_route_goes(forwarder: Forwarder, backends: list[Backend]) -> None:
    """A service port that disappears from the table stops listening; a changed port moves."""
    await forwarder.apply(table(((VIP, PORT), route(backends[0].endpoint))))
    assert (await ask()).decode().strip() == "pod-1"
    await forwarder.apply(table(((VIP, PORT + 1), route(backends[1].endpoint))))
    with pytest.raises(ConnectionRefusedError):
        await ask()
    assert (await ask(port=PORT + 1)).decode().strip() == "pod-2"


async def test_endpoint_removed_from_the_route_gets_no_new_connection(forwarder: Forwarder,
                                                                      backends: list[Backend]) -> None:
    """Endpoints dropped by an update are never picked again (round-robin continues over the rest)."""
    await forwarder.apply(table(((VIP, PORT), route(*(b.endpoint for b in backends)))))
    await forwarder.apply(table(((VIP, PORT), route(backends[2].endpoint))))
    assert {(await ask()).decode().strip() for _ in range(4)} == {"pod-3"}


class Dying(Backend):
    """A pod killed mid-request: reads the request, then closes without answering (``echo``: reads
    until the client's EOF first — a server that answers nothing)."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hits += 1
        await (reader.read() if self.echo else reader.read(10))
        writer.close()


async def test_endpoint_closing_before_answering_is_replayed_to_the_next(forwarder: Forwarder,
                                                                         backends: list[Backend]) -> None:
    """An endpoint that reads the request and closes without a byte of answer: the request goes to
    the next endpoint and the client gets that answer."""
    dying = await Dying("dying", f"127.248.{W}.8").start()
    try:
        await forwarder.apply(table(((VIP, PORT), route(dying.endpoint, backends[0].endpoint))))
        for _ in range(4):
            reader, writer = await asyncio.open_connection(VIP, PORT)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            async with asyncio.timeout(10):
                assert await reader.read() == b"pod-1\n"
            writer.close()
        assert dying.hits >= 2 and backends[0].hits == 4
    finally:
        await dying.stop()


async def test_no_replay_after_the_clients_half_close(forwarder: Forwarder) -> None:
    """A client that half-closed expects maybe no answer: an endpoint closing silently is passed on
    as EOF, and the request is not sent anywhere else."""
    dying = await Dying("dying", f"127.248.{W}.8", echo=True).start()
    echo = await Backend("echo", f"127.248.{W}.9", echo=True).start()
    try:
        await forwarder.apply(table(((VIP, PORT), route(dying.endpoint, echo.endpoint))))
        assert await ask(payload=b"event") == b""
        assert dying.hits == 1 and echo.hits == 0
    finally:
        await dying.stop()
        await echo.stop()
