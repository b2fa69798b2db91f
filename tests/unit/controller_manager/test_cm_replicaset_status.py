"""ReplicaSet status arithmetic (calculateStatus): counts, minReadySeconds and the
ReplicaFailure condition, without an apiserver (the client is never used)."""

from __future__ import annotations

from controller_manager.context import ControllerContext
from controller_manager.replicaset import REPLICASETS, ReplicaSetController
from kplane.api import errors as api
from kplane.api.codec import from_dict
from kplane.api.pb import apps_pb2, core_pb2
from kplane.client.client import Client
from kplane.client.informer import SharedInformerFactory

NOW = 1_800_000_000.0


def rs(replicas: int = 3, min_ready: int = 0) -> apps_pb2.ReplicaSet:
    return from_dict({"metadata": {"name": "web", "namespace": "ns", "uid": "u", "generation": 4},
                      "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                               "selector": {"matchLabels": {"app": "web"}},
                               "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
                     apps_pb2.ReplicaSet)


def pod(labels: dict[str, str], ready_for: float | None = None) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.labels.update(labels)
    if ready_for is not None:
        c = p.status.conditions.add(type="Ready", status="True")
        c.lastTransitionTime.seconds = int(NOW - ready_for)
    return p


async def controller() -> ReplicaSetController:
    client = Client(["127.0.0.1:1"])
    ctx = ControllerContext(client=client, factory=SharedInformerFactory(client))
    return ReplicaSetController(ctx, REPLICASETS, name="replicaset", component="replicaset-controller")


async def test_counts_and_min_ready_seconds() -> None:
    c = await controller()
    pods = [pod({"app": "web", "tier": "fe"}, ready_for=100), pod({"app": "web"}, ready_for=5), pod({"app": "web"})]
    status = c.calculate_status(rs(min_ready=10), pods, None, NOW).status  # type: ignore[attr-defined]
    assert (status.replicas, status.fullyLabeledReplicas, status.readyReplicas, status.availableReplicas) == (
        3, 1, 2, 1)
    empty = c.calculate_status(rs(), [], None, NOW).status  # type: ignore[attr-defined]
    assert empty.HasField("replicas") and empty.replicas == 0
    assert not empty.HasField("readyReplicas") and not empty.HasField("availableReplicas")


async def test_replica_failure_condition_set_and_cleared() -> None:
    c = await controller()
    failed = c.calculate_status(rs(3), [pod({"app": "web"})], api.Forbidden("exceeded quota"), NOW)
    (cond,) = failed.status.conditions  # type: ignore[attr-defined]
    assert (cond.type, cond.status, cond.reason, cond.message) == ("ReplicaFailure", "True", "FailedCreate",
                                                                   "exceeded quota")
    surplus = c.calculate_status(rs(0), [pod({"app": "web"})], api.Forbidden("no"), NOW)
    assert surplus.status.conditions[0].reason == "FailedDelete"  # type: ignore[attr-defined]
    # an existing failure is kept while errors continue and removed once a sync succeeds
    again = c.calculate_status(failed, [pod({"app": "web"})], api.Forbidden("still"), NOW)
    assert [x.message for x in again.status.conditions] == ["exceeded quota"]  # type: ignore[attr-defined]
    cleared = c.calculate_status(failed, [pod({"app": "web"})], None, NOW)
    assert list(cleared.status.conditions) == []  # type: ignore[attr-defined]
