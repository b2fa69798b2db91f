"""The async client against a real apiserver: typed errors, failover for reads, retry_on_conflict."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from kplane.api import errors as api
from kplane.api.pb import api_pb2, api_pb2_grpc
from kplane.api.resources import object_to_dict, pack, resolve
from kplane.client.client import Client, retry_on_conflict
from kplane.devcluster import free_port

CM = resolve("configmaps")
NS = resolve("namespaces")


async def test_typed_errors(client: Client, namespace: str) -> None:
    """Server errors come back as the typed exceptions, Invalid with every field cause."""
    with pytest.raises(api.NotFound):
        await client.get(CM, "missing", namespace=namespace)
    with pytest.raises(api.Invalid) as info:
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad Name"},
                                 "data": {"bad key!": "x"}}, namespace=namespace)
    assert {c[2] for c in info.value.causes} >= {"metadata.name"}


async def test_reads_fail_over_to_a_live_apiserver(apiserver: Any, namespace: str) -> None:
    """With a dead address first in the list, reads go to the next apiserver."""
    async with Client([f"127.0.0.1:{free_port()}", apiserver.address], timeout=10) as c:
        items, rv, _ = await c.list(CM, namespace=namespace)
        assert rv and isinstance(items, list)


async def test_writes_are_not_resent_on_an_unavailable_server(apiserver: Any, namespace: str) -> None:
    """A create against an unreachable apiserver fails with Unavailable instead of being re-sent elsewhere."""
    async with Client([f"127.0.0.1:{free_port()}", apiserver.address], timeout=10) as c:
        with pytest.raises(api.Unavailable):
            await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "once"}},
                           namespace=namespace)
        # the client moved on: the caller decides to retry, and a retry of a create is AlreadyExists-safe
        await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "once"}},
                       namespace=namespace)


async def test_retry_on_conflict_reapplies(client: Client, namespace: str) -> None:
    """Concurrent read-modify-write loops all land when each retries on Conflict with a fresh read."""
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"},
                             "data": {"n": "0"}}, namespace=namespace)

    async def increment() -> None:
        async def attempt() -> None:
            obj = object_to_dict(CM, await client.get(CM, "counter", namespace=namespace))
            obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
            await client.update(CM, obj, namespace=namespace)

        await retry_on_conflict(attempt, attempts=50)

    await asyncio.gather(*(increment() for _ in range(10)))
    final = await client.get(CM, "counter", namespace=namespace)
    assert final.data["n"] == "10"  # type: ignore[attr-defined]


async def test_concurrent_reads_all_fail_over_with_a_dead_server_first(apiserver: Any, namespace: str) -> None:
    """Many concurrent reads through a client whose first server is dead all succeed and leave it on the live one."""
    dead = f"127.0.0.1:{free_port()}"
    for _ in range(5):
        async with Client([dead, apiserver.address], timeout=10) as c:
            results = await asyncio.gather(*(c.get(NS, namespace) if i % 2 else c.list(CM, namespace=namespace)
                                             for i in range(40)), return_exceptions=True)
            assert [r for r in results if isinstance(r, BaseException)] == []
            assert c.server == apiserver.address
            # and the calls that follow stay there
            await asyncio.gather(*(c.get(NS, namespace) for _ in range(10)))
            assert c.server == apiserver.address


class _FlakyAPI(api_pb2_grpc.APIServicer):
    """An apiserver stand-in: a slow Create, a Version that fails like a lost connection (UNAVAILABLE,
    no Status), and a Watch the server closes on purpose (UNAVAILABLE with a Status)."""

    def __init__(self) -> None:
        self.create_started = asyncio.Event()
        self.release_create = asyncio.Event()

    async def Create(self, request: api_pb2.CreateRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        self.create_started.set()
        await self.release_create.wait()
        cm = CM.new()
        cm.metadata.name = "slow"  # type: ignore[attr-defined]
        return api_pb2.ObjectResponse(object=pack(CM, cm))

    async def Version(self, request: api_pb2.VersionRequest, context: grpc.aio.ServicerContext) -> api_pb2.VersionInfo:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        raise AssertionError("unreachable")

    async def Watch(self, request: api_pb2.WatchRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.WatchEvent]:
        status = api.Unavailable("watch closed: too slow; re-watch from the last resourceVersion").to_grpc_status()
        await context.abort_with_status(rpc_status.to_status(status))
        yield api_pb2.WatchEvent()  # pragma: no cover - makes this an async generator


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[str, _FlakyAPI]]:
    server = grpc.aio.server()
    servicer = _FlakyAPI()
    api_pb2_grpc.add_APIServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    servicer.release_create.set()
    await server.stop(None)


async def test_failover_does_not_cancel_a_write_in_flight(apiserver: Any, flaky: tuple[str, _FlakyAPI]) -> None:
    """A read failing over to another server leaves a write still running on the old channel to complete."""
    address, servicer = flaky
    async with Client([address, apiserver.address], timeout=10) as c:
        write = asyncio.create_task(c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "slow"}}, namespace="default"))
        await asyncio.wait_for(servicer.create_started.wait(), 5)
        assert (await c.version()).git_version  # failed on the flaky server, answered by the live one
        assert c.server == apiserver.address
        servicer.release_create.set()
        created = await asyncio.wait_for(write, 5)
        assert created.metadata.name == "slow"  # type: ignore[attr-defined]


async def test_watch_closed_by_the_server_does_not_fail_over(apiserver: Any, flaky: tuple[str, _FlakyAPI]) -> None:
    """A watch the server aborts with a Status stays on that server; a refused connection moves on."""
    address, _ = flaky
    async with Client([address, apiserver.address], timeout=10) as c:
        with pytest.raises(api.Unavailable, match="watch closed"):
            async for _ in c.watch(CM, namespace="default"):
                pass
        assert c.server == address
    async with Client([f"127.0.0.1:{free_port()}", apiserver.address], timeout=10) as c:
        with pytest.raises(api.Unavailable):
            async for _ in c.watch(CM, namespace="default"):
                pass
        assert c.server == apiserver.address
