"""The namespace controller in-process against a real apiserver: a deleted namespace is emptied
of every namespaced type, reports what remains in Kubernetes' conditions, and is finalized."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controller_manager.context import ControllerContext
from controller_manager.namespace import NamespaceController
from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

NS, PODS, CM, RS, SECRETS, LEASES = (resolve("namespaces"), resolve("pods"), resolve("configmaps"),
                                     resolve("replicasets"), resolve("secrets"), resolve("leases"))


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def controller(apiserver: APIServer) -> AsyncIterator[NamespaceController]:
    async with Client([apiserver.address], identity="kube-controller-manager") as own:
        factory = SharedInformerFactory(own)
        nsc = NamespaceController(ControllerContext(client=own, factory=factory, workers=2))
        factory.start()
        task = asyncio.create_task(nsc.controller.start())
        try:
            yield nsc
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()


async def new_namespace(client: Client) -> str:
    name = f"del-{uuid.uuid4().hex[:8]}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def ns_gone(client: Client, name: str) -> bool:
    try:
        await client.get(NS, name)
    except api.NotFound:
        return True
    return False


async def conditions(client: Client, name: str) -> dict[str, dict[str, Any]]:
    ns = object_to_dict(NS, await client.get(NS, name))
    return {c["type"]: c for c in ns.get("status", {}).get("conditions", [])}


def pod(name: str, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_deleting_a_namespace_empties_and_removes_it(client: Client, controller: NamespaceController) -> None:
    ns = await new_namespace(client)
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}, namespace=ns)
    await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}, namespace=ns)
    await client.create(PODS, pod("p"), namespace=ns)
    await client.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}},
                        namespace=ns)
    await client.create(RS, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
                             "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                                      "template": {"metadata": {"labels": {"a": "b"}},
                                                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
                        namespace=ns)
    _, deleted = await client.delete(NS, ns)
    assert not deleted
    await eventually(lambda: ns_gone(client, ns), what="namespace removed")
    for rt in (CM, SECRETS, PODS, LEASES, RS):
        items, _ = await client.list_all(rt, namespace=ns)
        assert items == []


async def test_namespace_waits_for_terminating_pods_and_finalizers(client: Client,
                                                                   controller: NamespaceController) -> None:
    ns = await new_namespace(client)
    await client.create(PODS, pod("bound", node="nowhere"), namespace=ns)  # graceful: stays Terminating
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}, namespace=ns)
    await client.delete(NS, ns)

    async def reported() -> bool:
        conds = await conditions(client, ns)
        remaining = conds.get("NamespaceContentRemaining", {})
        finalizers = conds.get("NamespaceFinalizersRemaining", {})
        return (remaining.get("status") == "True" and remaining.get("reason") == "SomeResourcesRemain"
                and remaining.get("message") == "Some resources are remaining: configmaps has 1 resource instances, "
                                                "pods has 1 resource instances"
                and finalizers.get("message") == "Some content in the namespace has finalizers remaining: "
                                                 "example.com/hold in 1 resource instances"
                and conds.get("NamespaceDeletionContentFailure", {}).get("status") == "False")

    await eventually(reported, what="remaining content reported in the conditions")
    # new content is refused while it terminates
    with pytest.raises(api.Forbidden):
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}, namespace=ns)
    # the "kubelet" finishes the pod, the finalizer's owner lets go: the namespace completes
    await client.delete(PODS, "bound", namespace=ns, grace_period=0)
    await client.patch(CM, "held", {"metadata": {"finalizers": None}}, namespace=ns)
    await eventually(lambda: ns_gone(client, ns), what="namespace removed after its content")


async def test_a_type_the_apiserver_does_not_serve_does_not_block_deletion(
        client: Client, controller: NamespaceController) -> None:
    """Version skew: a controller-manager that knows a type its apiserver does not serve (found by
    discovery, as Kubernetes' namespace controller does) still empties and finalizes namespaces."""
    from kplane.api.resources import ResourceType

    unserved = ResourceType("widgets.example.com", "v1", "Widget", "widgets", True, "example.Widget")
    controller.resources = [*controller.resources, unserved]
    ns = await new_namespace(client)
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}, namespace=ns)
    await client.delete(NS, ns)
    await eventually(lambda: ns_gone(client, ns), what=f"namespace {ns} to be removed")
