"""DaemonSet: node eligibility (selectors, affinity, taints and the daemon tolerations), the pod's
node affinity, the manage step per node, RollingUpdate arithmetic with and without surge, status
counts and the revision hash."""

from __future__ import annotations

from typing import Any

import pytest

from controller_manager.daemonset import (
    REVISION_HASH_LABEL,
    add_daemon_tolerations,
    compute_hash,
    daemon_pod_spec,
    daemon_status,
    node_should_run,
    pods_should_be_on_node,
    replace_node_name_affinity,
    revision_data,
    rolling_update,
    safe_encode,
    target_node_name,
    unavailable_and_surge,
    updated_pods_on_node,
)
from kplane.api.codec import from_dict
from kplane.api.pb import core_pb2

NOW = 1_800_000_000.0


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None) -> core_pb2.Node:
    return from_dict({"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}},
                     core_pb2.Node)


def template(spec: dict[str, Any] | None = None) -> core_pb2.Pod:
    body = {"containers": [{"name": "c", "image": "busybox"}], **(spec or {})}
    return daemon_pod_spec(from_dict({"metadata": {"labels": {"app": "d"}}, "spec": body}, core_pb2.PodTemplateSpec))


def test_daemon_tolerations_are_added_once() -> None:
    """Every daemon pod tolerates not-ready/unreachable (NoExecute) and pressure/unschedulable
    (NoSchedule); host-network pods also network-unavailable; adding twice changes nothing."""
    spec = template().spec
    got = {(t.key, t.operator, t.effect) for t in spec.tolerations}
    assert got == {("node.kubernetes.io/not-ready", "Exists", "NoExecute"),
                   ("node.kubernetes.io/unreachable", "Exists", "NoExecute"),
                   ("node.kubernetes.io/disk-pressure", "Exists", "NoSchedule"),
                   ("node.kubernetes.io/memory-pressure", "Exists", "NoSchedule"),
                   ("node.kubernetes.io/pid-pressure", "Exists", "NoSchedule"),
                   ("node.kubernetes.io/unschedulable", "Exists", "NoSchedule")}
    add_daemon_tolerations(spec)
    assert len(spec.tolerations) == 6
    host = template({"hostNetwork": True}).spec
    assert any(t.key == "node.kubernetes.io/network-unavailable" for t in host.tolerations)
    # a user toleration with a tolerationSeconds for the same key/operator/effect is replaced
    custom = template({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                        "effect": "NoExecute", "tolerationSeconds": 30}]}).spec
    mine = [t for t in custom.tolerations if t.key == "node.kubernetes.io/not-ready"]
    assert len(mine) == 1 and not mine[0].HasField("tolerationSeconds")


@pytest.mark.parametrize(("spec", "the_node", "expected"), [
    ({}, node("n"), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n", {"disk": "ssd"}), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n", {"disk": "hdd"}), (False, False)),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}},
     node("n", {"zone": "b"}), (True, True)),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}},
     node("n", {"zone": "b"}), (False, False)),
    ({"nodeName": "other"}, node("n"), (False, False)),
    # an untolerated NoSchedule taint: no new pod, but a running one may stay
    ({}, node("n", taints=[{"key": "gpu", "effect": "NoSchedule"}]), (False, True)),
    # an untolerated NoExecute taint: not even that
    ({}, node("n", taints=[{"key": "gpu", "effect": "NoExecute"}]), (False, False)),
    ({}, node("n", taints=[{"key": "gpu", "effect": "PreferNoSchedule"}]), (True, True)),
    ({"tolerations": [{"key": "gpu", "operator": "Exists"}]},
     node("n", taints=[{"key": "gpu", "effect": "NoExecute"}]), (True, True)),
    # the daemon tolerations: cordoned and not-ready nodes keep (and get) their daemon
    ({}, node("n", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]), (True, True)),
    ({}, node("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]), (True, True)),
    ({}, node("n", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
     (False, True)),
])
def test_node_should_run(spec: dict[str, Any], the_node: core_pb2.Node, expected: tuple[bool, bool]) -> None:
    assert node_should_run(the_node, template(spec)) == expected


def test_pods_get_a_node_name_affinity_that_replaces_required_terms() -> None:
    """The pod is pinned by matchFields metadata.name In [node]; preferred terms survive."""
    spec = template({"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}}}).spec
    replace_node_name_affinity(spec, "node-7")
    terms = spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
    assert len(terms) == 1 and not terms[0].matchExpressions
    assert [(r.key, r.operator, list(r.values)) for r in terms[0].matchFields] == [("metadata.name", "In", ["node-7"])]
    assert len(spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution) == 1
    p = core_pb2.Pod()
    p.spec.CopyFrom(spec)
    assert target_node_name(p) == "node-7"
    p.spec.nodeName = "bound"
    assert target_node_name(p) == "bound"
    assert target_node_name(core_pb2.Pod()) == ""


def dpod(name: str, *, hash_: str = "new", ready: bool = True, ready_at: float = NOW - 600, phase: str = "Running",
         deleting: bool = False, created: float = NOW - 1000, node_name: str = "n") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.uid = f"uid-{name}"
    p.metadata.labels[REVISION_HASH_LABEL] = hash_
    p.metadata.creationTimestamp.seconds = int(created)
    if deleting:
        p.metadata.deletionTimestamp.seconds = int(NOW)
    p.spec.nodeName = node_name
    p.status.phase = phase
    cond = p.status.conditions.add(type="Ready", status="True" if ready else "False")
    cond.lastTransitionTime.seconds = int(ready_at)
    return p


def available(p: core_pb2.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)


def names(pods: list[core_pb2.Pod]) -> list[str]:
    return sorted(p.metadata.name for p in pods)


def test_manage_per_node() -> None:
    """Create where missing; replace failed pods; keep only the oldest of duplicates; remove
    all from nodes that must not run one; wait while one is terminating."""
    kw: dict[str, Any] = dict(surge=False, hash_="new", available=available)
    assert pods_should_be_on_node([], should_run=True, should_continue=True, **kw).create
    plan = pods_should_be_on_node([dpod("a", phase="Failed")], should_run=True, should_continue=True, **kw)
    assert not plan.create and names(plan.failed or []) == ["a"]
    plan = pods_should_be_on_node([dpod("old", created=NOW - 50), dpod("young", created=NOW - 5)],
                                  should_run=True, should_continue=True, **kw)
    assert names(plan.delete or []) == ["young"]
    plan = pods_should_be_on_node([dpod("a"), dpod("b", deleting=True)], should_run=False, should_continue=False, **kw)
    assert names(plan.delete or []) == ["a"]
    plan = pods_should_be_on_node([dpod("t", deleting=True)], should_run=True, should_continue=True, **kw)
    assert not plan.create and not plan.delete


def test_manage_with_surge_keeps_old_until_new_is_available() -> None:
    kw: dict[str, Any] = dict(should_run=True, should_continue=True, surge=True, hash_="new")
    old, new = dpod("old", hash_="old", created=NOW - 100), dpod("new", created=NOW - 10, ready=False)
    assert names(pods_should_be_on_node([old, new], available=available, **kw).delete or []) == []
    ready_new = dpod("new", created=NOW - 10)
    assert names(pods_should_be_on_node([old, ready_new], available=available, **kw).delete or []) == ["old"]
    unready_old = dpod("old", hash_="old", ready=False)
    assert names(pods_should_be_on_node([unready_old, new], available=available, **kw).delete or []) == ["old"]


@pytest.mark.parametrize(("strategy", "desired", "expected"), [
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}, 10, (1, 0)),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}}, 10, (3, 0)),  # rounds up
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}, 15, (0, 2)),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "0%", "maxSurge": 0}}, 4, (1, 0)),
    ({"type": "RollingUpdate"}, 3, (1, 0)),
    ({"type": "OnDelete"}, 3, (0, 0)),
])
def test_unavailable_and_surge(strategy: dict[str, Any], desired: int, expected: tuple[int, int]) -> None:
    assert unavailable_and_surge(strategy, desired) == expected


def plan(node_pods: dict[str, list[core_pb2.Pod]], *, surge: int = 0, unavailable: int = 1,
         should_run: set[str] | None = None) -> tuple[list[str], list[str]]:
    run = set(node_pods) if should_run is None else should_run
    doomed, create = rolling_update(node_pods, hash_="new", generation=None, max_surge=surge,
                                    max_unavailable=unavailable, desired=len(run), available=available,
                                    should_run=lambda n: n in run)
    return names(doomed), sorted(create)


def test_rolling_update_without_surge_respects_max_unavailable() -> None:
    """Old available pods go at most maxUnavailable at a time, counting nodes already down;
    unavailable old pods are replaced regardless."""
    nodes = {f"n{i}": [dpod(f"old{i}", hash_="old")] for i in range(4)}
    assert plan(nodes, unavailable=1) == (["old0"], [])
    assert plan(nodes, unavailable=3) == (["old0", "old1", "old2"], [])
    # one node is being recreated (no pod): it uses the whole budget of 1
    assert plan({**nodes, "n0": []}, unavailable=1) == ([], [])
    # a new pod that is not yet available also counts against the budget
    assert plan({**nodes, "n0": [dpod("new0", ready=False)]}, unavailable=2) == (["old1"], [])
    # an old pod that is not available anyway is always replaced
    assert plan({**nodes, "n3": [dpod("sick", hash_="old", ready=False)]}, unavailable=1) == (["old0", "sick"], [])
    # all updated: nothing to do
    assert plan({f"n{i}": [dpod(f"new{i}")] for i in range(3)}) == ([], [])


def test_rolling_update_with_surge_starts_new_pods_first() -> None:
    """With maxSurge, up to maxSurge nodes get a new pod beside the old one; an old pod goes
    once its node's new pod is available; an unavailable old pod is replaced at once."""
    nodes = {f"n{i}": [dpod(f"old{i}", hash_="old")] for i in range(4)}
    assert plan(nodes, surge=2, unavailable=0) == ([], ["n0", "n1"])
    surging = {**nodes, "n0": [dpod("old0", hash_="old"), dpod("new0", ready=False)]}
    assert plan(surging, surge=2, unavailable=0) == ([], ["n1"])
    done = {**nodes, "n0": [dpod("old0", hash_="old"), dpod("new0")]}
    assert plan(done, surge=1, unavailable=0) == (["old0"], ["n1"])
    sick = {**nodes, "n3": [dpod("old3", hash_="old", ready=False)]}
    assert plan(sick, surge=1, unavailable=0) == ([], ["n0", "n3"])


def test_updated_pods_on_node() -> None:
    new, old, ok = updated_pods_on_node([dpod("a"), dpod("b", hash_="old"), dpod("c", hash_="old", deleting=True)],
                                        "new", None)
    assert ok and new is not None and old is not None and (new.metadata.name, old.metadata.name) == ("a", "b")
    assert not updated_pods_on_node([dpod("a"), dpod("b")], "new", None)[2]
    # the deprecated template-generation label also marks a pod as updated
    p = dpod("g", hash_="x")
    p.metadata.labels["pod-template-generation"] = "3"
    assert updated_pods_on_node([p], "new", "3")[0] is p


def test_status_counts() -> None:
    """Desired/current/misscheduled/ready/available/updated, the oldest pod speaking per node."""
    nodes = [node("a"), node("b"), node("c"), node("d")]
    node_pods = {"a": [dpod("pa")], "b": [dpod("pb", hash_="old", ready=False)],
                 "d": [dpod("pd", ready_at=NOW - 2)]}
    st = daemon_status(nodes, node_pods, lambda n: n.metadata.name != "d", hash_="new", generation=None,
                       min_ready_seconds=0, now=NOW)
    assert (st.desired, st.current, st.misscheduled, st.ready, st.available, st.updated) == (3, 2, 1, 1, 1, 1)
    assert st.as_dict(4, None)["numberUnavailable"] == 2
    st = daemon_status(nodes, {"a": [dpod("pa", ready_at=NOW - 2)]}, lambda n: True, hash_="new", generation=None,
                       min_ready_seconds=10, now=NOW)
    assert (st.ready, st.available) == (1, 0)


def test_revision_hash_and_data() -> None:
    """The hash is stable, changes with the template and with the collision count, and is label-safe."""
    t1 = {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    t2 = {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    assert compute_hash(t1, None) == compute_hash(dict(reversed(list(t1.items()))), None)
    assert len({compute_hash(t1, None), compute_hash(t2, None), compute_hash(t1, 1)}) == 3
    assert set(compute_hash(t1, None)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert safe_encode("0129") == "456f"  # rand.SafeEncodeString of a decimal string
    assert revision_data(t1) == {"spec": {"template": {**t1, "$patch": "replace"}}}
