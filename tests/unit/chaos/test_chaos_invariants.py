"""Invariants and recovery times computed from hand-written timelines (no cluster)."""

from __future__ import annotations

from typing import Any

from kplane.chaos import invariants as inv
from kplane.chaos.record import Entry, Timeline, summarize

NS = "chaos"
ALLOC = {"cpu": "2", "memory": "1Gi", "pods": "110"}


class Build:
    """A timeline built step by step; every object is given as Kubernetes JSON and summarized."""

    def __init__(self) -> None:
        self.tl = Timeline()
        self.rv = 100

    def watch(self, t: float, etype: str, resource: str, name: str, obj: dict[str, Any], ns: str = NS) -> None:
        self.rv += 1
        self.tl.add(Entry(t=t, kind="watch", type=etype, resource=resource, namespace=ns if resource != "nodes" else "",
                          name=name, rv=self.rv, obj=summarize(resource, obj)))

    def node(self, t: float, name: str, ready: str = "True", taints: tuple[str, ...] = (), etype: str = "MODIFIED",
             labels: dict[str, str] | None = None) -> None:
        self.watch(t, etype, "nodes", name, {
            "metadata": {"name": name, "uid": f"n-{name}", "labels": labels or {}},
            "spec": {"taints": [{"key": k, "effect": "NoExecute"} for k in taints]},
            "status": {"conditions": [{"type": "Ready", "status": ready}], "allocatable": ALLOC}})

    def pod(self, t: float, name: str, node: str, *, etype: str = "MODIFIED", phase: str = "Running",
            ready: bool = True, deleting: bool = False, owner: str = "web-1", owner_kind: str = "ReplicaSet",
            uid: str = "", cpu: str = "100m") -> None:
        meta: dict[str, Any] = {"name": name, "uid": uid or f"u-{name}",
                                "ownerReferences": [{"kind": owner_kind, "name": owner, "uid": "o", "controller": True}]}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        self.watch(t, etype, "pods", name, {
            "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})

    def workload(self, t: float, replicas: int = 3, available: int = 3, generation: int = 1) -> None:
        self.watch(t, "MODIFIED", "deployments", "web", {
            "metadata": {"name": "web", "uid": "d", "generation": generation},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": available, "updatedReplicas": available, "availableReplicas": available,
                       "readyReplicas": available, "observedGeneration": generation}})
        self.watch(t, "MODIFIED", "replicasets", "web-1", {
            "metadata": {"name": "web-1", "uid": "o", "ownerReferences": [
                {"kind": "Deployment", "name": "web", "uid": "d", "controller": True}]},
            "spec": {"replicas": replicas}, "status": {"replicas": available}})

    def fault(self, t: float, fault: str, target: str) -> None:
        self.tl.add(Entry(t=t, kind="fault", type=fault, name=target,
                          obj={"time": t, "fault": fault, "target": target, "revision": self.rv}))


def node_loss(replaced_at: float = 14.0) -> Build:
    """Three nodes, three pods; node-1 is killed at t=10, lost at 15, tainted at 15.5, its pod
    evicted at 20.5, the replacement runs on node-2 at ``replaced_at``."""
    b = Build()
    for n in ("node-1", "node-2", "node-3"):
        b.node(0, n, etype="ADDED")
    b.workload(1)
    for i, n in enumerate(("node-1", "node-2", "node-3")):
        b.pod(1 + i * 0.1, f"web-{i}", n, etype="ADDED")
    b.fault(10, "kill-node", "node-1")
    b.node(15, "node-1", ready="Unknown")
    b.node(15.5, "node-1", ready="Unknown", taints=("node.kubernetes.io/unreachable",))
    b.pod(20.5, "web-0", "node-1", deleting=True)
    b.workload(20.6, available=2)
    b.pod(20.7, "web-3", "", etype="ADDED", phase="Pending", ready=False)
    b.pod(20.8, "web-3", "node-2", phase="Pending", ready=False)
    b.pod(replaced_at, "web-3", "node-2")
    b.workload(replaced_at + 0.1)
    return b


def test_recovery_times_follow_the_node_loss_pipeline() -> None:
    """Detection, taint, eviction and replacement are measured from the kill."""
    [r] = inv.recovery_times(node_loss(replaced_at=22.0).tl)
    assert (r.fault, r.node, r.pods, r.evicted, r.replaced) == ("kill-node", "node-1", 1, 1, 1)
    assert (r.detection, r.taint, r.eviction_first, r.eviction_last) == (5.0, 5.5, 10.5, 10.5)
    assert r.replacement_running == 12.0


def test_replicas_restored_and_converged_hold_within_bounds() -> None:
    """The Deployment is whole again 12.1 s after the fault: within a 30 s bound, not within 5 s."""
    b = node_loss(replaced_at=22.0)
    b.watch(40, "MODIFIED", "nodes", "node-3", {"metadata": {"name": "node-3"}, "status": {
        "conditions": [{"type": "Ready", "status": "True"}], "allocatable": ALLOC}})  # end of the run
    ok = inv.check_replicas_restored(b.tl, NS, 30.0)
    assert ok.held is True and "after kill-node node-1: restored within 12.0s" in ok.evidence
    bad = inv.check_replicas_restored(b.tl, NS, 5.0)
    assert bad.held is False
    assert bad.evidence[0] == "deployment chaos/web: restored only 12.0s after kill-node node-1 (bound 5s)"
    assert inv.check_converged(b.tl, NS, 30.0).held is True


def test_never_restored_is_a_violation() -> None:
    """Without a replacement the Deployment stays short until the end of the run."""
    b = node_loss()
    b.tl.entries = [e for e in b.tl.entries if e.name != "web-3"]
    res = inv.check_replicas_restored(b.tl, NS, 30.0)
    assert res.held is False and res.evidence[0].startswith("deployment chaos/web: not restored within")


def test_duplicates_are_found() -> None:
    """The same pod UID on two nodes, and a second incarnation of a live pod name, are violations."""
    b = Build()
    b.pod(1, "a", "node-1", etype="ADDED")
    b.pod(2, "a", "node-2")
    b.pod(3, "a", "node-1", etype="ADDED", uid="other")
    res = inv.check_no_duplicates(b.tl)
    assert res.held is False and len(res.evidence) == 2
    assert "on node-1 and then on node-2" in res.evidence[0] and "was not deleted" in res.evidence[1]
    assert inv.check_no_duplicates(node_loss().tl).held is True


def test_allocatable_overcommit() -> None:
    """Requests above a node's allocatable cpu are reported once, with the revision."""
    b = Build()
    b.node(0, "node-1", etype="ADDED")
    b.pod(1, "big", "node-1", etype="ADDED", cpu="1500m")
    assert inv.check_allocatable(b.tl).held is True
    b.pod(2, "big2", "node-1", etype="ADDED", cpu="1")
    res = inv.check_allocatable(b.tl)
    assert res.held is False and res.evidence[0].startswith("node-1: cpu requests 2500 > allocatable 2000")


def test_daemonset_coverage() -> None:
    """One pod per ready eligible node; a missing one is named; too early after a change is skipped."""
    b = Build()
    for n in ("node-1", "node-2"):
        b.node(0, n, etype="ADDED", labels={"disk": "ssd"})
    b.node(0, "node-3", etype="ADDED", labels={"disk": "hdd"})
    b.watch(1, "ADDED", "daemonsets", "agent", {"metadata": {"name": "agent", "uid": "ds"},
                                                "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}})
    b.pod(2, "agent-a", "node-1", etype="ADDED", owner="agent", owner_kind="DaemonSet")
    b.pod(30, "x", "node-3", etype="ADDED", owner="other")
    res = inv.check_daemonsets(b.tl, NS, 10.0)
    assert res.held is False and res.evidence == ["daemonset chaos/agent: 0 pods on eligible node node-2"]
    b.pod(31, "agent-b", "node-2", etype="ADDED", owner="agent", owner_kind="DaemonSet")
    assert inv.check_daemonsets(b.tl, NS, 10.0).held is True
    b.fault(30.5, "kill-node", "node-1")
    assert inv.check_daemonsets(b.tl, NS, 10.0).held is None


def test_acknowledged_writes() -> None:
    """A write that is gone or was replaced (new UID) is lost."""
    acks = [inv.Ack("configmaps", NS, "a", "u1", 5, 0.0), inv.Ack("configmaps", NS, "b", "u2", 6, 0.0),
            inv.Ack("deployments", NS, "web", "u3", 7, 0.0)]
    res = inv.check_acknowledged(acks, {("configmaps", NS, "a"): "u1", ("configmaps", NS, "b"): None,
                                        ("deployments", NS, "web"): "zz"}, 2)
    assert res.held is False
    assert res.evidence == ["configmaps chaos/b (written at revision 6) is gone",
                            "deployments chaos/web (written at revision 7) was replaced: uid u3 -> zz"]


def test_expectations() -> None:
    """no-evictions, evicted within, max-pods and pods on the node-loss timeline."""
    tl = node_loss(replaced_at=22.0).tl
    ev = inv.expect_no_evictions(tl, NS, "deployments/web")
    assert ev.held is False and ev.evidence[0].startswith("pod chaos/web-0 deleted at +20.5s")
    assert inv.expect_evicted(tl, "node-1", 20.0).held is True
    assert inv.expect_evicted(tl, "node-1", 5.0).held is False
    assert inv.expect_evicted(tl, "node-2", 5.0).summary == "no kill-node/freeze-node fault on node-2 was recorded"
    assert inv.expect_max_pods(tl, NS, "deployments/web", 3).held is True
    assert inv.expect_max_pods(tl, NS, "deployments/web", 2).held is False
