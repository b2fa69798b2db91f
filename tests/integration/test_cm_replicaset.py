"""ReplicaSet and ReplicationController controllers in-process against a real apiserver.

No kubelet runs here: the tests write pod status themselves (Running, Ready) where readiness
matters, and give templates a `nodeName` where graceful deletion (Terminating pods) matters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controller_manager.context import ControllerContext
from controller_manager.replicaset import new_replicaset, new_replicationcontroller
from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.client.controller import Controller
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

PODS, RS, RC, EVENTS = resolve("pods"), resolve("replicasets"), resolve("replicationcontrollers"), resolve("events")


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


class Running:
    """The controllers of a test, running in this process over their own client and informers."""

    def __init__(self, ctx: ControllerContext, controllers: list[Controller]) -> None:
        self.ctx = ctx
        self.controllers = controllers


@pytest.fixture
async def controllers(apiserver: APIServer) -> AsyncIterator[Running]:
    async with Client([apiserver.address], identity="kube-controller-manager") as own:
        factory = SharedInformerFactory(own)
        ctx = ControllerContext(client=own, factory=factory, workers=3)
        built = [new_replicaset(ctx), new_replicationcontroller(ctx)]
        for rec in ctx.recorders.values():
            await rec.start()
        factory.start()
        tasks = [asyncio.create_task(c.start()) for c in built]
        try:
            yield Running(ctx, built)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.shutdown()
            for rec in ctx.recorders.values():
                await rec.stop(drain=False)


def replicaset(name: str, replicas: int, labels: dict[str, str] | None = None, *, min_ready: int = 0,
               node_name: str = "") -> dict[str, Any]:
    labels = labels or {"app": name}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def bare_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def pods_of(client: Client, namespace: str, selector: str, *, active_only: bool = True) -> list[Any]:
    items, _ = await client.list_all(PODS, namespace=namespace, label_selector=selector)
    if active_only:
        items = [p for p in items if not p.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
                 and p.status.phase not in ("Succeeded", "Failed")]  # type: ignore[attr-defined]
    return items


async def count_is(client: Client, namespace: str, selector: str, n: int) -> bool:
    return len(await pods_of(client, namespace, selector)) == n


async def set_ready(client: Client, namespace: str, name: str, ready: bool = True) -> None:
    pod = object_to_dict(PODS, await client.get(PODS, name, namespace=namespace))
    status = "True" if ready else "False"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    pod["status"]["phase"] = "Running"
    pod["status"]["conditions"] = [{"type": "Ready", "status": status, "lastTransitionTime": now}]
    await client.update_status(PODS, pod, namespace=namespace)


async def rs_status(client: Client, rt: Any, namespace: str, name: str) -> dict[str, Any]:
    return object_to_dict(rt, await client.get(rt, name, namespace=namespace)).get("status", {})


async def test_creates_replicas_with_owner_refs_events_and_status(client: Client, namespace: str,
                                                                   controllers: Running) -> None:
    await client.create(RS, replicaset("web", 3), namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=web", 3), what="3 pods")
    rs = await client.get(RS, "web", namespace=namespace)
    pods = await pods_of(client, namespace, "app=web")
    for p in pods:
        assert p.metadata.name.startswith("web-") and len(p.metadata.name) == len("web-") + 5
        refs = p.metadata.ownerReferences
        assert len(refs) == 1 and refs[0].controller and refs[0].blockOwnerDeletion
        assert (refs[0].kind, refs[0].name, refs[0].uid, refs[0].apiVersion) == (
            "ReplicaSet", "web", rs.metadata.uid, "apps/v1")  # type: ignore[attr-defined]

    async def status_ok() -> bool:
        st = await rs_status(client, RS, namespace, "web")
        return st.get("replicas") == 3 and st.get("fullyLabeledReplicas") == 3 and st.get("observedGeneration") == 1

    await eventually(status_ok, what="status replicas=3")

    async def events_ok() -> bool:
        evs, _ = await client.list_all(EVENTS, namespace=namespace,
                                       field_selector="involvedObject.name=web,involvedObject.kind=ReplicaSet")
        created = {e.message for e in evs if e.reason == "SuccessfulCreate"}  # type: ignore[attr-defined]
        return created == {f"Created pod: {p.metadata.name}" for p in pods} and all(
            e.source.component == "replicaset-controller" for e in evs)  # type: ignore[attr-defined]

    await eventually(events_ok, what="SuccessfulCreate events")
    # readiness: two pods become ready -> readyReplicas/availableReplicas 2
    for p in pods[:2]:
        await set_ready(client, namespace, p.metadata.name)

    async def ready_two() -> bool:
        st = await rs_status(client, RS, namespace, "web")
        return st.get("readyReplicas") == 2 and st.get("availableReplicas") == 2

    await eventually(ready_two, what="2 ready, 2 available")


async def test_replaces_deleted_failed_and_terminating_pods(client: Client, namespace: str,
                                                            controllers: Running) -> None:
    # nodeName: deletion is graceful (no kubelet finishes it), so the pod stays Terminating
    await client.create(RS, replicaset("rep", 2, node_name="nowhere"), namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=rep", 2), what="2 pods")
    first, second = await pods_of(client, namespace, "app=rep")
    await client.delete(PODS, first.metadata.name, namespace=namespace)
    terminating = await client.get(PODS, first.metadata.name, namespace=namespace)
    assert terminating.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
    await eventually(lambda: count_is(client, namespace, "app=rep", 2), what="replacement for a terminating pod")
    # a Failed pod is not active: replaced too
    failed = object_to_dict(PODS, await client.get(PODS, second.metadata.name, namespace=namespace))
    failed["status"]["phase"] = "Failed"
    await client.update_status(PODS, failed, namespace=namespace)

    async def replaced() -> bool:
        active = await pods_of(client, namespace, "app=rep")
        return len(active) == 2 and second.metadata.name not in {p.metadata.name for p in active}

    await eventually(replaced, what="replacement for a failed pod")
    all_pods = await pods_of(client, namespace, "app=rep", active_only=False)
    assert len(all_pods) == 4  # the terminating and the failed pod are left alone
    await asyncio.sleep(1)
    assert await count_is(client, namespace, "app=rep", 2)


async def test_scale_down_prefers_not_ready_and_unscheduled(client: Client, namespace: str,
                                                            controllers: Running) -> None:
    await client.create(RS, replicaset("sd", 4), namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=sd", 4), what="4 pods")
    pods = await pods_of(client, namespace, "app=sd")
    keep = {p.metadata.name for p in pods[:2]}
    for name in keep:
        await set_ready(client, namespace, name)
    await client.patch(RS, "sd", {"spec": {"replicas": 2}}, namespace=namespace)

    async def kept_ready() -> bool:
        return {p.metadata.name for p in await pods_of(client, namespace, "app=sd")} == keep

    await eventually(kept_ready, what="the ready pods kept")

    async def deleted_events() -> bool:
        evs, _ = await client.list_all(EVENTS, namespace=namespace,
                                       field_selector="involvedObject.name=sd,involvedObject.kind=ReplicaSet")
        return sum(e.reason == "SuccessfulDelete" and e.message.startswith("Deleted pod: sd-")  # type: ignore[attr-defined]
                   for e in evs) == 2

    await eventually(deleted_events, what="SuccessfulDelete events")
    # scale to zero and back up
    await client.patch(RS, "sd", {"spec": {"replicas": 0}}, namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=sd", 0), what="0 pods")
    await client.patch(RS, "sd", {"spec": {"replicas": 3}}, namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=sd", 3), what="3 pods")


async def test_adopts_orphans_and_releases_pods_that_stop_matching(client: Client, namespace: str,
                                                                     controllers: Running) -> None:
    await client.create(PODS, bare_pod("orphan", {"app": "ad"}), namespace=namespace)
    await client.create(PODS, bare_pod("stranger", {"app": "other"}), namespace=namespace)
    await client.create(RS, replicaset("ad", 2), namespace=namespace)
    rs = await client.get(RS, "ad", namespace=namespace)

    async def adopted() -> bool:
        p = await client.get(PODS, "orphan", namespace=namespace)
        refs = p.metadata.ownerReferences  # type: ignore[attr-defined]
        return len(refs) == 1 and refs[0].uid == rs.metadata.uid and refs[0].controller  # type: ignore[attr-defined]

    await eventually(adopted, what="orphan adopted")
    await eventually(lambda: count_is(client, namespace, "app=ad", 2), what="one created beside the adopted pod")
    assert not (await client.get(PODS, "stranger", namespace=namespace)).metadata.ownerReferences  # type: ignore[attr-defined]
    # the adopted pod stops matching: released (reference removed) and replaced
    await client.patch(PODS, "orphan", {"metadata": {"labels": {"app": "gone"}}}, namespace=namespace)

    async def released() -> bool:
        p = await client.get(PODS, "orphan", namespace=namespace)
        return not p.metadata.ownerReferences  # type: ignore[attr-defined]

    await eventually(released, what="pod released")
    await eventually(lambda: count_is(client, namespace, "app=ad", 2), what="replacement after release")
    # a pod controlled by someone else is never adopted, and does not count
    body = bare_pod("owned", {"app": "ad"})
    body["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
                                            "uid": "2f1c0de4-0000-4000-8000-000000000001", "controller": True}]
    await client.create(PODS, body, namespace=namespace)
    await asyncio.sleep(1.5)
    p = await client.get(PODS, "owned", namespace=namespace)
    assert [r.name for r in p.metadata.ownerReferences] == ["db"]  # type: ignore[attr-defined]
    assert len([x for x in await pods_of(client, namespace, "app=ad")
                if x.metadata.ownerReferences and x.metadata.ownerReferences[0].name == "ad"]) == 2


async def test_min_ready_seconds_makes_pods_available_later(client: Client, namespace: str,
                                                            controllers: Running) -> None:
    await client.create(RS, replicaset("mrs", 1, min_ready=2), namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=mrs", 1), what="1 pod")
    (pod,) = await pods_of(client, namespace, "app=mrs")
    await set_ready(client, namespace, pod.metadata.name)

    async def ready_not_available() -> bool:
        st = await rs_status(client, RS, namespace, "mrs")
        return st.get("readyReplicas") == 1 and "availableReplicas" not in st

    await eventually(ready_not_available, what="ready but not yet available")

    async def available() -> bool:
        return (await rs_status(client, RS, namespace, "mrs")).get("availableReplicas") == 1

    await eventually(available, timeout=20, what="available after minReadySeconds (requeued)")


async def test_never_more_than_replicas_under_repeated_syncs(client: Client, namespace: str,
                                                             controllers: Running) -> None:
    """Expectations: hammering the key while creations are in flight never creates extra pods."""
    seen: set[str] = set()
    stop = asyncio.Event()

    async def watch_adds() -> None:
        async for etype, obj in client.watch(PODS, namespace=namespace):
            if etype == "ADDED":
                seen.add(obj.metadata.name)  # type: ignore[attr-defined]

    watcher = asyncio.create_task(watch_adds())
    await asyncio.sleep(0.3)
    rs_controller = controllers.controllers[0]

    async def hammer() -> None:
        while not stop.is_set():
            rs_controller.queue.add(f"{namespace}/burst")
            await asyncio.sleep(0.005)

    hammering = asyncio.create_task(hammer())
    try:
        await client.create(RS, replicaset("burst", 20), namespace=namespace)
        await eventually(lambda: count_is(client, namespace, "app=burst", 20), what="20 pods")
        await asyncio.sleep(1.5)
        assert await count_is(client, namespace, "app=burst", 20)
        assert len(seen) == 20
    finally:
        stop.set()
        watcher.cancel()
        await asyncio.gather(hammering, watcher, return_exceptions=True)


async def test_replication_controller(client: Client, namespace: str, controllers: Running) -> None:
    body = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
            "spec": {"replicas": 2, "selector": {"app": "rc"},
                     "template": {"metadata": {"labels": {"app": "rc", "extra": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    await client.create(RC, body, namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=rc", 2), what="2 pods")
    pods = await pods_of(client, namespace, "app=rc")
    assert all(p.metadata.ownerReferences[0].kind == "ReplicationController" for p in pods)
    await client.patch(RC, "rc", {"spec": {"replicas": 1}}, namespace=namespace)
    await eventually(lambda: count_is(client, namespace, "app=rc", 1), what="1 pod")

    async def status_ok() -> bool:
        st = await rs_status(client, RC, namespace, "rc")
        return st.get("replicas") == 1 and st.get("fullyLabeledReplicas") == 1 and st.get("observedGeneration") == 2

    await eventually(status_ok, what="rc status")
    evs, _ = await client.list_all(EVENTS, namespace=namespace, field_selector="involvedObject.name=rc")
    assert evs and all(e.source.component == "replication-controller" for e in evs)  # type: ignore[attr-defined]


async def test_failed_create_records_failed_create_event(client: Client, namespace: str) -> None:
    """PodControl: a pod the apiserver rejects raises the API error after a FailedCreate event
    with Kubernetes' wording (the apiserver validates a ReplicaSet's template as strictly as a
    pod, so a ReplicaSet cannot reach this through a bad template)."""
    from controller_manager.podcontrol import PodControl, new_controller_ref
    from kplane.api.codec import from_dict
    from kplane.api.pb import core_pb2
    from kplane.client.events import EventRecorder

    rs = await client.create(RS, replicaset("bad", 0), namespace=namespace)
    async with EventRecorder(client, component="replicaset-controller") as rec:
        control = PodControl(client, rec)
        template = from_dict({"metadata": {"labels": {"app": "bad"}}, "spec": {"containers": []}},
                             core_pb2.PodTemplateSpec)
        with pytest.raises(api.Invalid):
            await control.create_pods(namespace, template, rs, new_controller_ref(rs))
        await rec.flush(10)
    evs, _ = await client.list_all(EVENTS, namespace=namespace, field_selector="involvedObject.name=bad")
    assert [(e.type, e.reason) for e in evs] == [("Warning", "FailedCreate")]  # type: ignore[attr-defined]
    assert evs[0].message.startswith("Error creating: ")  # type: ignore[attr-defined]
