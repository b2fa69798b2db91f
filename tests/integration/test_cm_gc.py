"""The garbage collector in-process against a real apiserver: background, orphan and foreground
propagation across resource types, several owners, owners the cache has not seen, mirror pods."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controller_manager.context import ControllerContext
from controller_manager.garbagecollector import GarbageCollector
from kplane.api import errors as api
from kplane.api.resources import ResourceType, resolve
from kplane.client.client import Client
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

PODS, CM, RS, NODES, EVENTS = (resolve("pods"), resolve("configmaps"), resolve("replicasets"), resolve("nodes"),
                               resolve("events"))


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def gc(apiserver: APIServer) -> AsyncIterator[GarbageCollector]:
    async with Client([apiserver.address], identity="kube-controller-manager") as own:
        factory = SharedInformerFactory(own)
        ctx = ControllerContext(client=own, factory=factory, workers=4)
        collector = GarbageCollector(ctx)
        factory.start()
        task = asyncio.create_task(collector.controller.start())
        try:
            assert await factory.wait_for_cache_sync(30)
            yield collector
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()


def ref(rt: ResourceType, obj: Any, *, controller: bool = False, block: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": rt.api_version, "kind": rt.kind, "name": obj.metadata.name,
                           "uid": obj.metadata.uid}
    if controller:
        out["controller"] = True
    if block:
        out["blockOwnerDeletion"] = True
    return out


def configmap(name: str, owners: list[dict[str, Any]] | None = None,
              finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def pod(name: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "ownerReferences": owners},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def replicaset(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


async def gone(client: Client, rt: ResourceType, name: str, namespace: str = "") -> bool:
    try:
        await client.get(rt, name, namespace=namespace)
    except api.NotFound:
        return True
    return False


async def owner_names(client: Client, rt: ResourceType, name: str, namespace: str) -> list[str]:
    obj = await client.get(rt, name, namespace=namespace)
    return [r.name for r in obj.metadata.ownerReferences]  # type: ignore[attr-defined]


async def test_background_deletes_dependents_of_every_type(client: Client, namespace: str,
                                                           gc: GarbageCollector) -> None:
    owner = await client.create(RS, replicaset("owner"), namespace=namespace)
    other = await client.create(CM, configmap("other"), namespace=namespace)
    await client.create(CM, configmap("dep-cm", [ref(RS, owner, controller=True)]), namespace=namespace)
    await client.create(PODS, pod("dep-pod", [ref(RS, owner, controller=True, block=True)]), namespace=namespace)
    await client.create(CM, configmap("two-owners", [ref(RS, owner), ref(CM, other)]), namespace=namespace)
    await asyncio.sleep(1)
    for name in ("dep-cm", "two-owners"):
        assert not await gone(client, CM, name, namespace)
    await client.delete(RS, "owner", namespace=namespace)
    await eventually(lambda: gone(client, CM, "dep-cm", namespace), what="configmap dependent collected")
    await eventually(lambda: gone(client, PODS, "dep-pod", namespace), what="pod dependent collected")

    async def lost_ref() -> bool:
        return await owner_names(client, CM, "two-owners", namespace) == ["other"]

    await eventually(lost_ref, what="the reference to the deleted owner removed, the live owner kept")
    assert not await gone(client, CM, "two-owners", namespace)


async def test_orphan_removes_references_and_keeps_dependents(client: Client, namespace: str,
                                                             gc: GarbageCollector) -> None:
    owner = await client.create(RS, replicaset("orph"), namespace=namespace)
    for i in range(3):
        await client.create(PODS, pod(f"orph-{i}", [ref(RS, owner, controller=True, block=True)]),
                            namespace=namespace)
    _, deleted = await client.delete(RS, "orph", namespace=namespace, propagation_policy="Orphan")
    assert not deleted  # the orphan finalizer holds it
    await eventually(lambda: gone(client, RS, "orph", namespace), what="owner removed after orphaning")
    for i in range(3):
        assert await owner_names(client, PODS, f"orph-{i}", namespace) == []


async def test_foreground_waits_for_blocking_dependents(client: Client, namespace: str,
                                                        gc: GarbageCollector) -> None:
    """A → B (blocks, has a dependent) → C (blocks, held by a finalizer): deleting A in the
    foreground deletes B in the foreground, then C; A and B stay until C is really gone."""
    a = await client.create(CM, configmap("a"), namespace=namespace)
    b = await client.create(CM, configmap("b", [ref(CM, a, controller=True, block=True)]), namespace=namespace)
    await client.create(CM, configmap("c", [ref(CM, b, controller=True, block=True)], finalizers=["example.com/hold"]),
                        namespace=namespace)
    await client.create(CM, configmap("loose", [ref(CM, a)]), namespace=namespace)  # does not block
    await client.delete(CM, "a", namespace=namespace, propagation_policy="Foreground")

    async def c_deleting() -> bool:
        c = await client.get(CM, "c", namespace=namespace)
        return c.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]

    await eventually(c_deleting, what="the grandchild being deleted")
    await eventually(lambda: gone(client, CM, "loose", namespace), what="the non-blocking dependent deleted")
    await asyncio.sleep(1)
    a_now = await client.get(CM, "a", namespace=namespace)
    b_now = await client.get(CM, "b", namespace=namespace)
    assert "foregroundDeletion" in a_now.metadata.finalizers  # type: ignore[attr-defined]
    assert "foregroundDeletion" in b_now.metadata.finalizers  # type: ignore[attr-defined]
    await client.patch(CM, "c", {"metadata": {"finalizers": None}}, namespace=namespace)
    for name in ("c", "b", "a"):
        await eventually(lambda name=name: gone(client, CM, name, namespace),  # type: ignore[misc]
                         what=f"{name} gone")
    assert b.metadata.uid  # type: ignore[attr-defined]


async def test_owner_the_cache_has_not_seen_is_checked_live(client: Client, namespace: str,
                                                            gc: GarbageCollector) -> None:
    # an owner of a type the collector does not watch (events): found by a live GET, kept
    ev = await client.create(EVENTS, {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev"},
                                      "involvedObject": {"kind": "Pod", "name": "x", "namespace": namespace},
                                      "reason": "Test", "message": "m", "type": "Normal"}, namespace=namespace)
    await client.create(CM, configmap("by-event", [ref(EVENTS, ev)]), namespace=namespace)
    # owners created right before their dependents, many times over: nothing live is collected
    for i in range(15):
        o = await client.create(CM, configmap(f"fresh-{i}"), namespace=namespace)
        await client.create(CM, configmap(f"fresh-dep-{i}", [ref(CM, o)]), namespace=namespace)
    # an owner whose UID never existed (the name exists, with another UID): dangling
    await client.create(CM, configmap("named"), namespace=namespace)
    fake = {"apiVersion": "v1", "kind": "ConfigMap", "name": "named", "uid": str(uuid.uuid4())}
    await client.create(CM, configmap("virtual", [fake]), namespace=namespace)
    await eventually(lambda: gone(client, CM, "virtual", namespace), what="dependent of a nonexistent owner")
    await asyncio.sleep(1)
    assert not await gone(client, CM, "by-event", namespace)
    for i in range(15):
        assert not await gone(client, CM, f"fresh-dep-{i}", namespace)


async def test_mirror_pod_collected_only_when_its_node_goes(client: Client, namespace: str,
                                                            gc: GarbageCollector) -> None:
    name = f"gc-node-{uuid.uuid4().hex[:6]}"
    node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    try:
        await client.create(PODS, pod("mirror", [ref(NODES, node, controller=True)]), namespace=namespace)
        await asyncio.sleep(1.5)
        assert not await gone(client, PODS, "mirror", namespace)
    finally:
        await client.delete(NODES, name)
    await eventually(lambda: gone(client, PODS, "mirror", namespace), what="mirror pod collected with its node")


async def test_foreground_cycle_of_blocking_references_completes(client: Client, namespace: str,
                                                                 gc: GarbageCollector) -> None:
    """A and B own each other, both blocking: the foreground deletion of A must not wait forever."""
    a = await client.create(CM, configmap("cyc-a"), namespace=namespace)
    b = await client.create(CM, configmap("cyc-b", [ref(CM, a, block=True)]), namespace=namespace)
    await client.patch(CM, "cyc-a", {"metadata": {"ownerReferences": [ref(CM, b, block=True)]}}, namespace=namespace)
    await client.delete(CM, "cyc-a", namespace=namespace, propagation_policy="Foreground")
    for name in ("cyc-a", "cyc-b"):
        await eventually(lambda name=name: gone(client, CM, name, namespace),  # type: ignore[misc]
                         what=f"{name} gone")
