"""podcontrol: deletion ranking (ActivePodsWithRanks), readiness/availability, pods from
templates, slow-start batches and the ControllerRefManager's claim decisions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller_manager.podcontrol import (
    POD_DELETION_COST_ANNOTATION,
    ClaimError,
    ControllerRefManager,
    adopt_patch,
    controller_uid_index_func,
    get_controller_of,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    new_controller_ref,
    orphan_index_key,
    pod_from_template,
    pods_to_delete,
    rank_pods_for_deletion,
    related_pod_ranks,
    release_patch,
    seconds_until_available,
    slow_start_batch,
)
from kplane.api import errors as api
from kplane.api.codec import from_dict
from kplane.api.labels import selector_from_set
from kplane.api.pb import apps_pb2, core_pb2

NOW = 1_800_000_000.0


def mkpod(name: str, *, node: str = "", phase: str = "Running", ready: bool | None = None, ready_at: float | None = None,
          created: float | None = NOW - 3600, restarts: int = 0, cost: int | None = None, uid: str = "",
          labels: dict[str, str] | None = None, deleting: bool = False, owner: Any = None) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = "ns"
    pod.metadata.uid = uid or f"uid-{name}"
    pod.metadata.labels.update(labels or {})
    if created is not None:
        pod.metadata.creationTimestamp.seconds = int(created)
    if cost is not None:
        pod.metadata.annotations[POD_DELETION_COST_ANNOTATION] = str(cost)
    if deleting:
        pod.metadata.deletionTimestamp.seconds = int(NOW)
    if owner is not None:
        pod.metadata.ownerReferences.append(owner)
    pod.spec.nodeName = node
    pod.status.phase = phase
    if ready is not None:
        cond = pod.status.conditions.add(type="Ready", status="True" if ready else "False")
        if ready_at is not None:
            cond.lastTransitionTime.seconds = int(ready_at)
    if restarts:
        pod.status.containerStatuses.add(name="c", restartCount=restarts)
    return pod


def names(pods: list[core_pb2.Pod]) -> list[str]:
    return [p.metadata.name for p in pods]


# -- ranking -----------------------------------------------------------------------------------


def test_rank_each_criterion_in_kubernetes_order() -> None:
    # 1. unassigned before assigned
    assert names(rank_pods_for_deletion([mkpod("a", node="n"), mkpod("u", phase="Pending")], now=NOW)) == ["u", "a"]
    # 2. Pending < Unknown < Running
    pods = [mkpod("run", node="n"), mkpod("unk", node="n", phase="Unknown"), mkpod("pend", node="n", phase="Pending")]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["pend", "unk", "run"]
    # 3. not ready < ready
    pods = [mkpod("r", node="n", ready=True, ready_at=NOW - 100), mkpod("nr", node="n", ready=False)]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["nr", "r"]
    # 4. lower deletion cost first (beats doubled-up and age)
    pods = [mkpod("cheap", node="n", cost=-5, created=NOW - 10_000), mkpod("dear", node="n", cost=10, created=NOW - 1)]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["cheap", "dear"]
    # 7. more restarts first
    pods = [mkpod("calm", node="n"), mkpod("crashy", node="n", restarts=4)]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["crashy", "calm"]
    # 8. newer first; no creation time first of all
    pods = [mkpod("old", node="n", created=NOW - 100_000), mkpod("new", node="n", created=NOW - 10),
            mkpod("zero", node="n", created=None)]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["zero", "new", "old"]


def test_rank_doubled_up_pods_go_first() -> None:
    a1, a2, b1 = mkpod("a1", node="a"), mkpod("a2", node="a"), mkpod("b1", node="b")
    related = [a1, a2, b1, mkpod("sib", node="a"), mkpod("gone", node="b", deleting=True)]
    assert related_pod_ranks([a1, a2, b1], related) == [3, 3, 1]
    ranked = rank_pods_for_deletion([b1, a1, a2], related, now=NOW)
    assert names(ranked)[2] == "b1"


def test_rank_ready_time_and_logarithmic_buckets() -> None:
    # ready 10 s ago vs 5000 s ago: different log2 buckets, the more recently ready goes first
    pods = [mkpod("long", node="n", ready=True, ready_at=NOW - 5000),
            mkpod("fresh", node="n", ready=True, ready_at=NOW - 10)]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["fresh", "long"]
    # 100 s vs 101 s: the same bucket; ties broken by UID, before restarts are considered
    pods = [mkpod("x", node="n", ready=True, ready_at=NOW - 100, uid="b", restarts=9),
            mkpod("y", node="n", ready=True, ready_at=NOW - 101, uid="a")]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["y", "x"]
    # without `now` the plain comparison applies: later ready time first
    assert names(rank_pods_for_deletion(pods, now=None)) == ["x", "y"]
    # creation times in the same bucket: UID order
    pods = [mkpod("p", node="n", created=NOW - 1000, uid="z"), mkpod("q", node="n", created=NOW - 1001, uid="m")]
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["q", "p"]


def test_pods_to_delete_takes_the_most_deletable() -> None:
    pods = [mkpod("ready", node="n", ready=True, ready_at=NOW - 500), mkpod("pending", phase="Pending"),
            mkpod("notready", node="n", ready=False)]
    assert names(pods_to_delete(pods, [], 2, now=NOW)) == ["pending", "notready"]
    assert names(pods_to_delete(pods, [], 5, now=NOW)) == ["ready", "pending", "notready"]


def test_bad_deletion_cost_is_zero() -> None:
    pods = [mkpod("neg", node="n", cost=-1, created=NOW - 5), mkpod("junk", node="n", created=NOW - 1)]
    pods[1].metadata.annotations[POD_DELETION_COST_ANNOTATION] = "lots"
    assert names(rank_pods_for_deletion(pods, now=NOW)) == ["neg", "junk"]


# -- state -------------------------------------------------------------------------------------


def test_active_ready_available() -> None:
    assert is_pod_active(mkpod("a"))
    assert not is_pod_active(mkpod("s", phase="Succeeded"))
    assert not is_pod_active(mkpod("f", phase="Failed"))
    assert not is_pod_active(mkpod("d", deleting=True))
    assert not is_pod_ready(mkpod("none"))
    assert not is_pod_ready(mkpod("no", ready=False))
    ready = mkpod("yes", ready=True, ready_at=NOW - 10)
    assert is_pod_ready(ready)
    assert is_pod_available(ready, 0, NOW)
    assert is_pod_available(ready, 9, NOW)
    assert not is_pod_available(ready, 10, NOW)  # strictly before now, as Kubernetes
    assert not is_pod_available(ready, 30, NOW)
    assert seconds_until_available(ready, 30, NOW) == pytest.approx(20)
    assert seconds_until_available(ready, 5, NOW) is None
    assert seconds_until_available(mkpod("no", ready=False), 30, NOW) is None
    assert not is_pod_available(mkpod("nr", ready=False), 0, NOW)
    # ready without a transition time: available only without minReadySeconds
    assert is_pod_available(mkpod("t", ready=True), 0, NOW)
    assert not is_pod_available(mkpod("t", ready=True), 1, NOW)


# -- templates and references -------------------------------------------------------------------


def test_pod_from_template_and_controller_refs() -> None:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = "web", "ns", "rs-uid"
    template = from_dict({"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"},
                                       "finalizers": ["example.com/f"]},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, core_pb2.PodTemplateSpec)
    ref = new_controller_ref(rs)
    assert (ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion) == (
        "apps/v1", "ReplicaSet", "web", "rs-uid", True, True)
    pod = pod_from_template(template, rs, ref)
    assert pod.metadata.generateName == "web-" and not pod.metadata.name
    assert dict(pod.metadata.labels) == {"app": "web"} and dict(pod.metadata.annotations) == {"a": "b"}
    assert list(pod.metadata.finalizers) == ["example.com/f"]
    assert pod.spec.containers[0].image == "busybox"
    assert get_controller_of(pod) == ref
    assert controller_uid_index_func(pod) == ["rs-uid"]
    assert controller_uid_index_func(mkpod("o")) == [orphan_index_key("ns")]
    long = apps_pb2.ReplicaSet()
    long.metadata.name = "x" * 100
    assert len(pod_from_template(template, long, None).metadata.generateName) == 58
    assert adopt_patch(ref, "pod-uid") == {"metadata": {"uid": "pod-uid", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": True,
         "blockOwnerDeletion": True}]}}
    assert release_patch("rs-uid", "pod-uid") == {"metadata": {"uid": "pod-uid", "ownerReferences": [
        {"$patch": "delete", "uid": "rs-uid"}]}}


# -- slow start --------------------------------------------------------------------------------


async def test_slow_start_batches_and_stops_at_the_first_failing_batch() -> None:
    calls: list[int] = []
    inflight = 0
    peak: list[int] = []

    async def ok() -> None:
        nonlocal inflight
        inflight += 1
        peak.append(inflight)
        await asyncio.sleep(0)
        calls.append(1)
        inflight -= 1

    assert await slow_start_batch(10, ok) == (10, None)
    assert len(calls) == 10 and max(peak) == 4  # batches 1, 2, 4, 3

    n = 0

    async def fails_from_fourth() -> None:
        nonlocal n
        n += 1
        if n >= 4:
            raise api.Forbidden("quota")

    successes, error = await slow_start_batch(20, fails_from_fourth)
    # batch 1 (ok), batch 2 (ok), batch 4: calls 4..7 fail -> stop; 3 succeeded, 7 attempted
    assert successes == 3 and isinstance(error, api.Forbidden) and n == 7


# -- claiming ----------------------------------------------------------------------------------


class RecordingClient:
    """Answers the two calls a ControllerRefManager makes (get of the controller, patch of an object)."""

    def __init__(self, controller: Any, *, patch_error: Exception | None = None) -> None:
        self.controller = controller
        self.patch_error = patch_error
        self.gets = 0
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def get(self, rt: Any, name: str, *, namespace: str = "") -> Any:
        self.gets += 1
        return self.controller

    async def patch(self, rt: Any, name: str, patch: dict[str, Any], *, namespace: str = "",
                    patch_type: str = "merge") -> Any:
        assert patch_type == "strategic"
        if self.patch_error is not None:
            raise self.patch_error
        self.patches.append((name, patch))
        return None


def mkrs(deleting: bool = False, uid: str = "rs-uid") -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = "web", "ns", uid
    if deleting:
        rs.metadata.deletionTimestamp.seconds = int(NOW)
    return rs


def manager(rs: apps_pb2.ReplicaSet, client: RecordingClient) -> ControllerRefManager:
    return ControllerRefManager(client, rs, selector_from_set({"app": "web"}))  # type: ignore[arg-type]


async def test_claim_decisions() -> None:
    rs = mkrs()
    mine = new_controller_ref(rs)
    theirs = new_controller_ref(mkrs(uid="other"))
    client = RecordingClient(rs)
    m = manager(rs, client)
    owned = mkpod("owned", labels={"app": "web"}, owner=mine)
    foreign = mkpod("foreign", labels={"app": "web"}, owner=theirs)
    strayed = mkpod("strayed", labels={"app": "db"}, owner=mine)
    orphan = mkpod("orphan", labels={"app": "web"})
    dying_orphan = mkpod("dying", labels={"app": "web"}, deleting=True)
    other_orphan = mkpod("other", labels={"app": "db"})
    claimed = await m.claim_pods([owned, foreign, strayed, orphan, dying_orphan, other_orphan])
    assert names(claimed) == ["owned", "orphan"]
    assert [(n, p["metadata"]["ownerReferences"][0].get("$patch")) for n, p in client.patches] == [
        ("strayed", "delete"), ("orphan", None)]
    assert client.patches[1][1]["metadata"]["uid"] == "uid-orphan"
    assert client.gets == 1  # the live re-check of the controller happens once
    assert await m.claim_pods([mkpod("o2", labels={"app": "web"})]) and client.gets == 1


async def test_a_deleting_controller_adopts_and_releases_nothing() -> None:
    rs = mkrs(deleting=True)
    client = RecordingClient(rs)
    m = manager(rs, client)
    owned = mkpod("owned", labels={"app": "web"}, owner=new_controller_ref(rs))
    strayed = mkpod("strayed", labels={"app": "db"}, owner=new_controller_ref(rs))
    assert names(await m.claim_pods([owned, strayed, mkpod("orphan", labels={"app": "web"})])) == ["owned"]
    assert client.patches == [] and client.gets == 0


async def test_adoption_refused_when_the_controller_was_replaced_or_is_deleting() -> None:
    cached = mkrs()
    for live in (mkrs(uid="new-incarnation"), mkrs(deleting=True)):
        client = RecordingClient(live)
        with pytest.raises(ClaimError) as info:
            await manager(cached, client).claim_pods([mkpod("orphan", labels={"app": "web"})])
        assert info.value.claimed == [] and client.patches == []


async def test_adoption_of_a_vanished_pod_is_no_claim_and_release_ignores_invalid() -> None:
    rs = mkrs()
    client = RecordingClient(rs, patch_error=api.NotFound("gone"))
    assert await manager(rs, client).claim_pods([mkpod("orphan", labels={"app": "web"})]) == []
    client = RecordingClient(rs, patch_error=api.Invalid("no such reference"))
    strayed = mkpod("strayed", labels={"app": "db"}, owner=new_controller_ref(rs))
    assert await manager(rs, client).claim_pods([strayed]) == []
    client = RecordingClient(rs, patch_error=api.Conflict("uid precondition"))
    with pytest.raises(ClaimError):
        await manager(rs, client).claim_pods([mkpod("orphan", labels={"app": "web"})])
