"""The pods/eviction subresource and DefaultTolerationSeconds admission against the real apiserver
(session fixture: etcd + `python -m apiserver` with default flags)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kplane.api import errors as api
from kplane.api.pb import api_pb2, core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client, ref

PODS = resolve("pods")
NR, UR = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"


def pod_body(name: str, *, node: str = "", tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_created_pods_get_the_default_tolerations(client: Client, namespace: str) -> None:
    created = await client.create(PODS, pod_body("plain"), namespace=namespace)
    assert isinstance(created, core_pb2.Pod)
    assert [(t.key, t.operator, t.effect, t.tolerationSeconds) for t in created.spec.tolerations] == [
        (NR, "Exists", "NoExecute", 300), (UR, "Exists", "NoExecute", 300)]
    stored = await client.get(PODS, "plain", namespace=namespace)
    assert [t.key for t in stored.spec.tolerations] == [NR, UR]  # type: ignore[attr-defined]


async def test_a_pod_tolerating_forever_keeps_its_own(client: Client, namespace: str) -> None:
    mine = [{"key": UR, "operator": "Exists", "effect": "NoExecute"}]
    created = await client.create(PODS, pod_body("forever", tolerations=mine), namespace=namespace)
    assert isinstance(created, core_pb2.Pod)
    got = [(t.key, t.HasField("tolerationSeconds")) for t in created.spec.tolerations]
    assert got == [(UR, False), (NR, True)]


async def test_updates_do_not_add_tolerations(client: Client, namespace: str) -> None:
    """Admission runs on create only: a pod's tolerations can't be changed afterwards anyway."""
    created = await client.create(PODS, pod_body("upd"), namespace=namespace)
    assert isinstance(created, core_pb2.Pod)
    created.metadata.labels["x"] = "y"
    updated = await client.update(PODS, created)
    assert len(updated.spec.tolerations) == 2  # type: ignore[attr-defined]


async def test_evicting_an_unbound_pod_deletes_it(client: Client, namespace: str) -> None:
    await client.create(PODS, pod_body("gone"), namespace=namespace)
    obj, deleted = await client.evict(namespace, "gone")
    assert deleted and obj.metadata.name == "gone"  # type: ignore[attr-defined]
    with pytest.raises(api.NotFound):
        await client.get(PODS, "gone", namespace=namespace)


async def test_evicting_a_bound_pod_is_graceful_with_the_requested_grace(client: Client, namespace: str) -> None:
    await client.create(PODS, pod_body("bound", node="no-such-node-h3"), namespace=namespace)
    obj, deleted = await client.evict(namespace, "bound", grace_period=17)
    assert not deleted
    assert obj.metadata.HasField("deletionTimestamp") and obj.metadata.deletionGracePeriodSeconds == 17  # type: ignore[attr-defined]
    # a terminating pod: evicting it again is fine (and may shorten the grace)
    obj, deleted = await client.evict(namespace, "bound", grace_period=5)
    assert obj.metadata.deletionGracePeriodSeconds == 5  # type: ignore[attr-defined]
    obj, deleted = await client.evict(namespace, "bound", grace_period=0)
    assert deleted


async def test_evicting_a_missing_pod_is_not_found(client: Client, namespace: str) -> None:
    with pytest.raises(api.NotFound):
        await client.evict(namespace, "nobody")


async def test_eviction_preconditions_and_dry_run(client: Client, namespace: str) -> None:
    created = await client.create(PODS, pod_body("pre"), namespace=namespace)
    with pytest.raises(api.Conflict, match="UID in precondition"):
        await client.evict(namespace, "pre", uid="not-the-uid")
    _, deleted = await client.evict(namespace, "pre", dry_run=True)
    assert deleted
    still = await client.get(PODS, "pre", namespace=namespace)
    assert still.metadata.uid == created.metadata.uid  # type: ignore[attr-defined]
    _, deleted = await client.evict(namespace, "pre", uid=created.metadata.uid)  # type: ignore[attr-defined]
    assert deleted


async def test_eviction_bodies_are_checked(client: Client, namespace: str) -> None:
    await client.create(PODS, pod_body("body"), namespace=namespace)

    async def send(body: dict[str, Any], name: str = "body") -> Any:
        return await client._call("Create", api_pb2.CreateRequest(
            ref=ref(PODS, namespace, name, "eviction"), body=api_pb2.Body(json=json.dumps(body))))

    with pytest.raises(api.BadRequest, match="name in URL does not match name in Eviction object"):
        await send({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}})
    with pytest.raises(api.Invalid, match=r"deleteOptions\.gracePeriodSecnds"):
        await send({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "body"},
                    "deleteOptions": {"gracePeriodSecnds": 1}})
    with pytest.raises(api.BadRequest, match="Eviction"):
        await send({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "body"}})
    resp = await send({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "body"}})
    assert resp.deleted
