"""A pod watch whose field selector names a node (a kubelet's ``spec.nodeName=<node>``) is served
through the watch cache's node trigger: it sees exactly the pods whose new or old state is on
its node — ADDED when one is bound there, MODIFIED while it stays, DELETED when it goes — and
nothing of other nodes' pods; the unassigned-pods watch (``spec.nodeName=``) sees a pod leave
it when it is bound."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kplane.api.resources import resolve
from kplane.client.client import Client

PODS = resolve("pods")


def pod(name: str, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_node_filtered_watches_see_their_nodes_pods_only(client: Client, namespace: str) -> None:
    n1, n2 = f"n1-{uuid.uuid4().hex[:6]}", f"n2-{uuid.uuid4().hex[:6]}"
    _, rv, _ = await client.list(PODS, namespace=namespace)
    seen: dict[str, list[str]] = {n1: [], n2: [], "": []}
    live = {key: asyncio.Event() for key in seen}

    async def consume(node: str) -> None:
        async for etype, obj in client.watch(PODS, namespace=namespace, field_selector=f"spec.nodeName={node}",
                                             resource_version=rv):
            name = obj.metadata.name  # type: ignore[attr-defined]
            if name.startswith("marker"):
                live[node].set()
                continue
            seen[node].append(f"{etype}:{name}")

    tasks = [asyncio.create_task(consume(node)) for node in seen]
    try:
        # one marker per watch, so every later event reaches a watcher already registered live
        for node in seen:
            await client.create(PODS, pod(f"marker-{node or 'none'}", node), namespace=namespace)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in live.values())), 30)
        created = await client.create(PODS, pod("a"), namespace=namespace)
        await client.bind(namespace, "a", n1, uid=created.metadata.uid)  # type: ignore[attr-defined]
        await client.patch(PODS, "a", {"metadata": {"labels": {"x": "1"}}}, namespace=namespace)
        await client.create(PODS, pod("b", n2), namespace=namespace)
        await client.delete(PODS, "a", namespace=namespace, grace_period=0)

        async def settled() -> None:
            while len(seen[n1]) < 3 or len(seen[n2]) < 1 or len(seen[""]) < 2:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(settled(), 30)
        await asyncio.sleep(0.5)  # nothing more may arrive
        assert seen[n1] == ["ADDED:a", "MODIFIED:a", "DELETED:a"]
        assert seen[n2] == ["ADDED:b"]
        assert seen[""] == ["ADDED:a", "DELETED:a"]  # unassigned until bound
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
