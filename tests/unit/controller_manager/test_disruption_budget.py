"""The disruption controller's arithmetic (Kubernetes' getExpectedPodCount, countHealthyPods,
buildDisruptedPodMap, updatePdbStatus): expected/desired healthy for integer and percentage
bounds rounded up, controllers counted once, disrupted pods expiring after 2 minutes."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from controller_manager.disruption import (
    DELETION_TIMEOUT,
    SyncError,
    compute_status,
    count_healthy,
    disrupted_pod_map,
    disruptions_allowed,
    expected_pod_count,
    fail_safe_status,
    selects,
)
from kplane.api import codec
from kplane.api.pb import core_pb2, policy_pb2

NOW = 1_800_000_000.0


def pdb(**spec: Any) -> policy_pb2.PodDisruptionBudget:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    msg = codec.from_dict({"metadata": {"name": "b", "namespace": "ns", "generation": 1}, "spec": spec},
                          policy_pb2.PodDisruptionBudget)
    return msg


def pod(name: str, *, ready: bool = True, owner: str | None = "rs-uid", terminating: bool = False,
        labels: dict[str, str] | None = None) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, "ns"
    p.metadata.labels.update(labels or {"app": "web"})
    if owner:
        p.metadata.ownerReferences.add(kind="ReplicaSet", name="rs", uid=owner, controller=True)
    if terminating:
        p.metadata.deletionTimestamp.FromSeconds(int(NOW))
    p.status.phase = "Running"
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return p


def scales(**by_uid: int) -> Any:
    def find(p: core_pb2.Pod) -> tuple[str, int] | None:
        uid = p.metadata.ownerReferences[0].uid
        return (uid, by_uid[uid]) if uid in by_uid else None
    return find


def at(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromSeconds(int(seconds))
    return ts


@pytest.mark.parametrize(("spec", "replicas", "expected", "desired"), [
    ({"minAvailable": 2}, 10, 3, 2),  # an integer minAvailable counts the pods, not the controller
    ({"minAvailable": "50%"}, 10, 10, 5),
    ({"minAvailable": "25%"}, 10, 10, 3),  # ceil(2.5)
    ({"minAvailable": "1%"}, 10, 10, 1),  # ceil(0.1): rounds up
    ({"minAvailable": "100%"}, 3, 3, 3),
    ({"minAvailable": "0%"}, 3, 3, 0),
    ({"maxUnavailable": 1}, 5, 5, 4),
    ({"maxUnavailable": 7}, 5, 5, 0),  # never negative
    ({"maxUnavailable": "30%"}, 5, 5, 3),  # 5 - ceil(1.5)
    ({"maxUnavailable": "1%"}, 5, 5, 4),  # 5 - ceil(0.05)
    ({"maxUnavailable": "0%"}, 5, 5, 5),
    ({"maxUnavailable": "100%"}, 5, 5, 0),
    ({}, 5, 0, 0),  # neither bound: nothing expected, nothing desired
])
def test_expected_and_desired_healthy(spec: dict[str, Any], replicas: int, expected: int, desired: int) -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    got = expected_pod_count(pdb(**spec).spec, pods, scales(**{"rs-uid": replicas}))
    assert (got.expected, got.desired) == (expected, desired)


def test_each_controller_counts_once_and_unmanaged_pods_are_named() -> None:
    pods = [pod("a", owner="one"), pod("b", owner="one"), pod("c", owner="two"), pod("loose", owner=None)]
    got = expected_pod_count(pdb(maxUnavailable="50%").spec, pods, scales(one=4, two=2))
    assert (got.expected, got.desired, got.unmanaged) == (6, 3, ("loose",))


def test_a_missing_controller_fails_the_sync_but_an_integer_bound_does_not_need_one() -> None:
    pods = [pod("a", owner="gone")]
    with pytest.raises(SyncError, match='found no controllers for pod "a"'):
        expected_pod_count(pdb(minAvailable="50%").spec, pods, scales())
    assert expected_pod_count(pdb(minAvailable=1).spec, pods, scales()).expected == 1


def test_healthy_means_ready_not_terminating_not_just_evicted() -> None:
    pods = [pod("ready"), pod("unready", ready=False), pod("going", terminating=True), pod("evicted")]
    assert count_healthy(pods, {"evicted": at(NOW - 10)}, NOW) == 1
    # an eviction older than DELETION_TIMEOUT no longer hides the pod
    assert count_healthy(pods, {"evicted": at(NOW - DELETION_TIMEOUT - 1)}, NOW) == 2


def test_disrupted_pods_expire_after_two_minutes() -> None:
    pods = [pod("fresh"), pod("stale"), pod("going", terminating=True)]
    disrupted = {"fresh": at(NOW - 30), "stale": at(NOW - 121), "going": at(NOW - 5), "absent": at(NOW - 5)}
    kept, recheck, expired = disrupted_pod_map(pods, disrupted, NOW)
    assert list(kept) == ["fresh"] and [p.metadata.name for p in expired] == ["stale"]
    assert recheck == NOW - 30 + DELETION_TIMEOUT


@pytest.mark.parametrize(("current", "desired", "expected", "allowed"), [
    (3, 2, 3, 1), (2, 2, 3, 0), (1, 2, 3, 0), (5, 0, 5, 5), (2, 0, 0, 0)])
def test_disruptions_allowed(current: int, desired: int, expected: int, allowed: int) -> None:
    assert disruptions_allowed(current, desired, expected) == allowed


def test_compute_status_writes_only_when_something_changes() -> None:
    budget = pdb(maxUnavailable=1)
    pods = [pod("a"), pod("b"), pod("c", ready=False)]
    first = compute_status(budget, pods, scales(**{"rs-uid": 3}), NOW)
    assert first.status is not None
    st = first.status
    assert (st.expectedPods, st.desiredHealthy, st.currentHealthy, st.disruptionsAllowed, st.observedGeneration) \
        == (3, 2, 2, 0, 1)
    assert [(c.type, c.status, c.reason) for c in st.conditions] == [("DisruptionAllowed", "False", "InsufficientPods")]
    budget.status.CopyFrom(st)
    assert compute_status(budget, pods, scales(**{"rs-uid": 3}), NOW + 5).status is None  # unchanged: no write
    pods[2].status.conditions[0].status = "True"
    later = compute_status(budget, pods, scales(**{"rs-uid": 3}), NOW + 10).status
    assert later is not None and later.disruptionsAllowed == 1
    cond = later.conditions[0]
    assert (cond.status, cond.reason, cond.lastTransitionTime.seconds) == ("True", "SufficientPods", int(NOW + 10))


def test_fail_safe_allows_nothing_and_says_why() -> None:
    budget = pdb(minAvailable="50%")
    budget.status.disruptionsAllowed = 3
    st = fail_safe_status(budget, 'found no controllers for pod "a"', NOW)
    assert st.disruptionsAllowed == 0
    assert [(c.status, c.reason, c.message) for c in st.conditions] == [
        ("False", "SyncFailed", 'found no controllers for pod "a"')]


def test_selector_absent_selects_nothing_empty_selects_all() -> None:
    none = policy_pb2.PodDisruptionBudget()
    none.metadata.namespace = "ns"
    assert not selects(none, pod("a"))
    assert selects(pdb(selector={}), pod("a", labels={"x": "y"}))
    assert not selects(pdb(), pod("a", labels={"app": "db"}))
    other_ns = pod("a")
    other_ns.metadata.namespace = "elsewhere"
    assert not selects(pdb(selector={}), other_ns)
