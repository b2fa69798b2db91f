"""PodDisruptionBudgets against the real apiserver fixture: the kind (validation with field
paths, status subresource), the eviction API's budget check (429 / RESOURCE_EXHAUSTED, the
compare-and-swap decrement under concurrency, the bypass rules) and the disruption controller
in-process (no kubelet: the tests write pod status themselves)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from controller_manager.context import ControllerContext
from controller_manager.disruption import DELETION_TIMEOUT, DisruptionController
from kplane.api import errors as api
from kplane.api.pb import api_pb2, api_pb2_grpc, policy_pb2
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client, ref
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

PODS, PDBS, RS, EVENTS = resolve("pods"), resolve("pdb"), resolve("rs"), resolve("events")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


async def eventually(predicate: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def make_pod(client: Client, ns: str, name: str, *, ready: bool = True, phase: str = "Running",
                   labels: dict[str, str] | None = None, owner: Any = None) -> None:
    meta: dict[str, Any] = {"name": name, "labels": labels or {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner.metadata.name,
                                    "uid": owner.metadata.uid, "controller": True}]
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                               "spec": {"nodeName": "pdb-node", "containers": [{"name": "c", "image": "busybox"}]}},
                        namespace=ns)
    await set_pod_status(client, ns, name, ready=ready, phase=phase)


async def set_pod_status(client: Client, ns: str, name: str, *, ready: bool, phase: str = "Running") -> None:
    pod = object_to_dict(PODS, await client.get(PODS, name, namespace=ns))
    pod["status"] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now_text()}]}
    await client.update_status(PODS, pod, namespace=ns)


async def make_pdb(client: Client, ns: str, name: str = "budget", **spec: Any) -> policy_pb2.PodDisruptionBudget:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    got = await client.create(PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                     "metadata": {"name": name}, "spec": spec}, namespace=ns)
    assert isinstance(got, policy_pb2.PodDisruptionBudget)
    return got


async def set_budget(client: Client, ns: str, name: str, *, allowed: int, current: int = 3, desired: int = 2,
                     observed: int | None = None) -> None:
    """Write the status the disruption controller would (the eviction API only reads it)."""
    pdb = object_to_dict(PDBS, await client.get(PDBS, name, namespace=ns))
    pdb["status"] = {"observedGeneration": pdb["metadata"]["generation"] if observed is None else observed,
                     "disruptionsAllowed": allowed, "currentHealthy": current, "desiredHealthy": desired,
                     "expectedPods": current}
    await client.update_status(PDBS, pdb, namespace=ns)


async def pdb_status(client: Client, ns: str, name: str = "budget") -> dict[str, Any]:
    return object_to_dict(PDBS, await client.get(PDBS, name, namespace=ns)).get("status", {})


# -- the kind ----------------------------------------------------------------------------------------

async def test_pdb_validation_reports_every_field_error(client: Client, namespace: str) -> None:
    with pytest.raises(api.Invalid) as err:
        await client.create(PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                   "metadata": {"name": "bad"},
                                   "spec": {"minAvailable": "120%", "maxUnavailable": -1,
                                            "unhealthyPodEvictionPolicy": "Sometimes",
                                            "selector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}},
                            namespace=namespace)
    fields = {cause[2] for cause in err.value.causes}
    assert fields == {"spec", "spec.minAvailable", "spec.maxUnavailable", "spec.unhealthyPodEvictionPolicy",
                      "spec.selector.matchExpressions[0].operator"}
    assert "minAvailable and maxUnavailable cannot be both set" in err.value.message
    assert 'PodDisruptionBudget.policy "bad" is invalid' in err.value.message


async def test_pdb_status_is_a_subresource_and_spec_bumps_generation(client: Client, namespace: str) -> None:
    created = await make_pdb(client, namespace, minAvailable=1)
    assert created.metadata.generation == 1 and not created.HasField("status")
    body = object_to_dict(PDBS, created)
    body["status"] = {"disruptionsAllowed": 5}
    body["spec"]["minAvailable"] = "50%"
    updated = await client.update(PDBS, body, namespace=namespace)
    assert updated.metadata.generation == 2 and updated.status.disruptionsAllowed == 0  # type: ignore[attr-defined]
    assert updated.spec.minAvailable.strVal == "50%"  # type: ignore[attr-defined]
    with pytest.raises(api.Invalid, match=r"status\.currentHealthy: Invalid value: -1"):
        await set_budget(client, namespace, "budget", allowed=0, current=-1)


# -- the eviction API --------------------------------------------------------------------------------

async def test_eviction_refused_with_resource_exhausted_while_no_disruption_is_allowed(
        client: Client, namespace: str, apiserver: APIServer) -> None:
    await make_pdb(client, namespace, minAvailable=2)
    await make_pod(client, namespace, "p1")
    await set_budget(client, namespace, "budget", allowed=0, current=2, desired=2)
    # on the wire: gRPC RESOURCE_EXHAUSTED carrying a 429 TooManyRequests Status
    async with grpc.aio.insecure_channel(apiserver.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await api_pb2_grpc.APIStub(channel).Create(api_pb2.CreateRequest(
                ref=ref(PODS, namespace, "p1", "eviction"), body=api_pb2.Body(json='{"metadata": {"name": "p1"}}')))
    assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(api.TooManyRequests) as err:
        await client.evict(namespace, "p1")
    assert err.value.message == VIOLATION
    assert err.value.causes == [("DisruptionBudget", "The disruption budget budget needs 2 healthy pods and has "
                                                     "2 currently", "")]
    pod = await client.get(PODS, "p1", namespace=namespace)
    assert not pod.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]


async def test_eviction_allowed_decrements_and_records_the_pod(client: Client, namespace: str) -> None:
    await make_pdb(client, namespace, maxUnavailable=1)
    await make_pod(client, namespace, "p1")
    await set_budget(client, namespace, "budget", allowed=1)
    await client.evict(namespace, "p1", dry_run=True)
    assert (await pdb_status(client, namespace))["disruptionsAllowed"] == 1  # a dry run writes nothing
    pod, _ = await client.evict(namespace, "p1")
    assert pod.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]  # graceful: bound pod
    status = await pdb_status(client, namespace)
    assert status["disruptionsAllowed"] == 0 and list(status["disruptedPods"]) == ["p1"]
    cond = status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "False", "InsufficientPods")


async def test_concurrent_evictions_never_exceed_the_budget(client: Client, namespace: str) -> None:
    await make_pdb(client, namespace, maxUnavailable=2)
    names = [f"p{i}" for i in range(8)]
    for name in names:
        await make_pod(client, namespace, name)
    await set_budget(client, namespace, "budget", allowed=2, current=8, desired=6)

    async def attempt(name: str) -> str:
        try:
            await client.evict(namespace, name)
            return "evicted"
        except api.TooManyRequests:
            return "refused"

    outcomes = await asyncio.gather(*(attempt(n) for n in names))
    assert sorted(outcomes) == ["evicted"] * 2 + ["refused"] * 6
    status = await pdb_status(client, namespace)
    evicted = {n for n, o in zip(names, outcomes, strict=True) if o == "evicted"}
    assert status.get("disruptionsAllowed", 0) == 0 and set(status["disruptedPods"]) == evicted
    terminating = set()
    for name in names:
        pod = await client.get(PODS, name, namespace=namespace)
        if pod.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            terminating.add(name)
    assert terminating == evicted


async def test_more_than_one_budget_is_an_internal_error(client: Client, namespace: str) -> None:
    await make_pdb(client, namespace, "one", minAvailable=1)
    await make_pdb(client, namespace, "two", minAvailable=1, selector={})  # {} selects every pod
    await make_pod(client, namespace, "p1")
    with pytest.raises(api.InternalError) as err:
        await client.evict(namespace, "p1")
    assert err.value.message == ("Internal error occurred: This pod has more than one PodDisruptionBudget, "
                                 "which the eviction subresource does not support.")


async def test_a_budget_not_yet_observed_refuses(client: Client, namespace: str) -> None:
    await make_pdb(client, namespace, minAvailable=1)
    await make_pod(client, namespace, "p1")
    with pytest.raises(api.TooManyRequests) as err:  # no status yet: observedGeneration 0 < 1
        await client.evict(namespace, "p1")
    assert err.value.causes[0][1] == "The disruption budget budget is still being processed by the server."


async def test_pods_the_budget_does_not_count_may_go(client: Client, namespace: str) -> None:
    await make_pdb(client, namespace, minAvailable=2)
    await make_pod(client, namespace, "pending", phase="Pending", ready=False)
    await make_pod(client, namespace, "unready", ready=False)
    await make_pod(client, namespace, "other", labels={"app": "db"})
    await set_budget(client, namespace, "budget", allowed=0, current=1, desired=2)
    await client.evict(namespace, "pending")  # not running yet: no budget consulted
    await client.evict(namespace, "other")  # not selected
    with pytest.raises(api.TooManyRequests):  # IfHealthyBudget and the application is disrupted
        await client.evict(namespace, "unready")
    await set_budget(client, namespace, "budget", allowed=0, current=2, desired=2)
    await client.evict(namespace, "unready")  # healthy budget: an unready pod may go, budget untouched
    assert (await pdb_status(client, namespace)).get("disruptedPods") is None


async def test_always_allow_lets_unready_pods_go(client: Client, namespace: str) -> None:
    await make_pdb(client, namespace, minAvailable=2, unhealthyPodEvictionPolicy="AlwaysAllow")
    await make_pod(client, namespace, "unready", ready=False)
    await make_pod(client, namespace, "ready")
    await set_budget(client, namespace, "budget", allowed=0, current=1, desired=2)
    await client.evict(namespace, "unready")
    with pytest.raises(api.TooManyRequests):
        await client.evict(namespace, "ready")


# -- the disruption controller -------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def controller(apiserver: APIServer) -> AsyncIterator[tuple[DisruptionController, Clock]]:
    clock = Clock()
    async with Client([apiserver.address], identity="kube-controller-manager") as own:
        factory = SharedInformerFactory(own)
        ctx = ControllerContext(client=own, factory=factory, workers=2)
        dc = DisruptionController(ctx, clock=clock)
        for rec in ctx.recorders.values():
            await rec.start()
        factory.start()
        task = asyncio.create_task(dc.controller.start())
        try:
            yield dc, clock
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()
            for rec in ctx.recorders.values():
                await rec.stop(drain=False)


async def make_rs(client: Client, ns: str, replicas: int) -> Any:
    return await client.create(RS, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}, namespace=ns)


async def test_controller_computes_the_budget_and_expires_disrupted_pods(
        client: Client, namespace: str, controller: tuple[DisruptionController, Clock]) -> None:
    dc, clock = controller
    rs = await make_rs(client, namespace, 4)
    for i in range(3):
        await make_pod(client, namespace, f"w{i}", owner=rs)
    await make_pod(client, namespace, "w3", owner=rs, ready=False)
    await make_pdb(client, namespace, maxUnavailable="30%")  # ceil(0.3 * 4) = 2 may be unavailable

    async def status_is(**want: Any) -> dict[str, Any] | None:
        status = await pdb_status(client, namespace)
        return status if all(status.get(k, 0) == v for k, v in want.items()) else None

    status = await eventually(lambda: status_is(expectedPods=4, desiredHealthy=2, currentHealthy=3,
                                                disruptionsAllowed=1, observedGeneration=1), "the first status")
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("DisruptionAllowed", "True", "SufficientPods")]
    # an eviction the pod does not follow (the kubelet never deletes it): counted as gone for 2 minutes
    await client.evict(namespace, "w0", grace_period=3600)
    pod = object_to_dict(PODS, await client.get(PODS, "w0", namespace=namespace))
    assert pod["metadata"].get("deletionTimestamp")  # the eviction deleted it gracefully
    # a terminating pod is no longer a pending disruption: its entry goes, it is not healthy
    await eventually(lambda: status_is(currentHealthy=2, disruptionsAllowed=0, disruptedPods=0),
                     "the terminating pod dropped")

    # a disrupted-pod entry whose pod was not deleted expires after DELETION_TIMEOUT
    await set_pod_status(client, namespace, "w3", ready=True)
    await eventually(lambda: status_is(currentHealthy=3, disruptionsAllowed=1), "w3 ready")
    await client.evict(namespace, "w1", dry_run=False, grace_period=3600)
    while True:  # as if w2 had been evicted but never deleted (the controller may write in between)
        pdb = object_to_dict(PDBS, await client.get(PDBS, "budget", namespace=namespace))
        pdb["status"]["disruptedPods"] = {"w2": now_text()}
        pdb["status"]["disruptionsAllowed"] = 0
        try:
            await client.update_status(PDBS, pdb, namespace=namespace)
            break
        except api.Conflict:
            continue
    await eventually(lambda: status_is(currentHealthy=1, disruptionsAllowed=0), "w2 counted as disrupted")
    assert list((await pdb_status(client, namespace))["disruptedPods"]) == ["w2"]
    clock.offset = DELETION_TIMEOUT + 1
    dc.controller.queue.add(f"{namespace}/budget")
    await eventually(lambda: status_is(currentHealthy=2, disruptionsAllowed=0, disruptedPods=0), "the w2 entry expired")


async def test_controller_integer_min_available_counts_pods_and_sync_failures(
        client: Client, namespace: str, controller: tuple[DisruptionController, Clock]) -> None:
    await make_pod(client, namespace, "a")
    await make_pod(client, namespace, "b")
    await make_pdb(client, namespace, minAvailable=1)

    async def status_is(**want: Any) -> dict[str, Any] | None:
        status = await pdb_status(client, namespace)
        return status if all(status.get(k, 0) == v for k, v in want.items()) else None

    await eventually(lambda: status_is(expectedPods=2, desiredHealthy=1, currentHealthy=2, disruptionsAllowed=1),
                     "the integer budget")
    # a percentage needs the pods' controllers: unmanaged pods count for nothing (and say so)
    pdb = object_to_dict(PDBS, await client.get(PDBS, "budget", namespace=namespace))
    pdb["spec"]["minAvailable"] = "50%"
    await client.update(PDBS, pdb, namespace=namespace)
    await eventually(lambda: status_is(expectedPods=0, desiredHealthy=0, disruptionsAllowed=0, observedGeneration=2),
                     "the percentage budget")

    async def unmanaged_event() -> bool:
        items, _, _ = await client.list(EVENTS, namespace=namespace)
        return any(e.reason == "UnmanagedPods" for e in items)  # type: ignore[attr-defined]

    await eventually(unmanaged_event, "the UnmanagedPods event")
    # a pod whose controller does not exist: SyncFailed, no disruption allowed
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "orphan", "labels": {"app": "web"}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost", "uid": "0000", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, namespace=namespace)

    async def sync_failed() -> bool:
        conds = (await pdb_status(client, namespace)).get("conditions", [])
        return any(c["reason"] == "SyncFailed" and 'found no controllers for pod "orphan"' in c.get("message", "")
                   for c in conds)

    await eventually(sync_failed, "the SyncFailed condition")
