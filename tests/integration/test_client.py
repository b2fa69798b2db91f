"""The async client against a real apiserver: typed errors, failover for reads, retry_on_conflict."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client, retry_on_conflict
from kplane.devcluster import free_port

CM = resolve("configmaps")


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
