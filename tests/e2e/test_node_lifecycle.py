"""Node failure end to end with real processes: a kubelet frozen with SIGSTOP (a hung node) is
noticed by the node lifecycle controller after the grace period (Ready=Unknown, both unreachable
taints, its pods Ready=False); pods are evicted after their tolerationSeconds — also across a
controller-manager crash — and a Deployment's replacements run on the other node; a pod that
tolerates forever stays; a thawed kubelet brings its node and pods back to Ready at once; a node
thawed before the deadline gets its taints removed and nothing is evicted.

Timings as flags: controller-manager --node-monitor-grace-period 5s --node-monitor-period 1s,
apiserver --default-*-toleration-seconds 5, kubelets renewing leases and status every second."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from failure_cluster import (
    DEPLOYMENTS,
    NODES,
    PODS,
    Cluster,
    condition,
    deployment,
    eventually,
    nodes_ready,
    running_pods,
    start_cluster,
)

from kplane.api.resources import resolve
from kplane.client.client import Client

pytestmark = pytest.mark.e2e

UR, NR = "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"
EVENTS = resolve("events")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: Any) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("nodelifecycle"), pod_octet=250, ip_base=0)
    try:
        yield c
    finally:
        c.stop()


async def new_namespace(client: Client) -> str:
    name = f"nl-{uuid.uuid4().hex[:6]}"
    await client.create(resolve("namespaces"), {"metadata": {"name": name}})
    return name


async def place_on(cluster: Cluster, client: Client, node: str, create: Any) -> None:
    """Create workloads while every other node is cordoned, so they land on ``node``."""
    others = [n for n in cluster.nodes if n != node]
    for other in others:
        assert (await cluster.akpctl("cordon", other)).returncode == 0
    try:
        await create()
    finally:
        for other in others:
            assert (await cluster.akpctl("uncordon", other)).returncode == 0


def taints(node: Any) -> dict[tuple[str, str], Any]:
    return {(t.key, t.effect): t for t in node.spec.taints}


async def test_frozen_kubelet_node_goes_unknown_and_its_pods_are_evicted(cluster: Cluster) -> None:
    async with Client(cluster.address) as c:
        await eventually(lambda: nodes_ready(c, cluster.nodes), "both nodes Ready")
        a, b = cluster.nodes
        ns = await new_namespace(c)
        forever = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "forever", "labels": {"app": "forever"}},
                   "spec": {"terminationGracePeriodSeconds": 1,
                            "tolerations": [{"key": UR, "operator": "Exists", "effect": "NoExecute"},
                                            {"key": NR, "operator": "Exists", "effect": "NoExecute"}],
                            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}

        async def create() -> None:
            await c.create(DEPLOYMENTS, deployment("web", 2), namespace=ns)
            await c.create(PODS, forever, namespace=ns)
            await eventually(lambda: _count(running_pods(c, ns, "web"), 2), "2 web pods running")
            await eventually(lambda: _count(running_pods(c, ns, "forever"), 1), "the forever pod running")

        await place_on(cluster, c, a, create)
        web = await running_pods(c, ns, "web")
        assert {p.spec.nodeName for p in web} == {a}
        created = await c.get(PODS, "forever", namespace=ns)
        assert [(t.key, t.HasField("tolerationSeconds")) for t in created.spec.tolerations] == [(UR, False), (NR, False)]
        web_pod = web[0]
        assert {(t.key, t.tolerationSeconds) for t in web_pod.spec.tolerations} == {(NR, 5), (UR, 5)}  # admission

        cluster.freeze(a)
        try:
            async def unknown_and_tainted() -> Any:
                node = await c.get(NODES, a)
                ready = condition(node, "Ready")
                have = taints(node)
                return node if ready.status == "Unknown" and (UR, "NoSchedule") in have \
                    and (UR, "NoExecute") in have else None

            node = await eventually(unknown_and_tainted, "node a Unknown with both unreachable taints", 60)
            ready = condition(node, "Ready")
            assert (ready.reason, ready.message) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")
            assert {cond.status for cond in node.status.conditions} == {"Unknown"}
            assert taints(node)[(UR, "NoExecute")].HasField("timeAdded")
            assert condition(await c.get(NODES, b), "Ready").status == "True"

            async def pods_not_ready() -> bool:
                for name in [p.metadata.name for p in web] + ["forever"]:
                    pod = await c.get(PODS, name, namespace=ns)
                    if condition(pod, "Ready").status != "False":
                        return False
                return True

            await eventually(pods_not_ready, "pods on the frozen node Ready=False", 30)

            # the controller-manager crashes mid-countdown: the deadlines come from the taints
            cluster.restart("controller-manager")

            async def evicted() -> list[Any]:
                out = []
                for p in web:
                    pod = await c.get(PODS, p.metadata.name, namespace=ns)
                    if not pod.metadata.HasField("deletionTimestamp"):
                        return []
                    out.append(pod)
                return out

            gone = await eventually(evicted, "web pods evicted after their 5 s tolerations", 60)
            for pod in gone:
                target = condition(pod, "DisruptionTarget")
                assert (target.status, target.reason) == ("True", "DeletionByTaintManager")
            replacements = await eventually(lambda: _count(running_pods(c, ns, "web"), 2),
                                             "2 replacement web pods running", 90)
            assert {p.spec.nodeName for p in replacements} == {b}
            still = await c.get(PODS, "forever", namespace=ns)
            assert not still.metadata.HasField("deletionTimestamp")  # tolerates forever: stays

            events, _ = await c.list_all(EVENTS, namespace=ns)
            messages = {(e.reason, e.message) for e in events}  # type: ignore[attr-defined]
            for p in web:
                assert ("TaintManagerEviction", f"Marking for deletion Pod {ns}/{p.metadata.name}") in messages
            assert ("NodeNotReady", "Node is not ready") in messages
            all_events, _ = await c.list_all(EVENTS)
            assert any(e.reason == "NodeNotReady" and e.involvedObject.name == a  # type: ignore[attr-defined]
                       and e.message == f"Node {a} status is now: NodeNotReady" for e in all_events)  # type: ignore[attr-defined]
        finally:
            cluster.thaw(a)

        async def recovered() -> bool:
            node = await c.get(NODES, a)
            keys = {t.key for t in node.spec.taints}
            return condition(node, "Ready").status == "True" and UR not in keys and NR not in keys

        await eventually(recovered, "node a Ready again without taints", 30)

        async def forever_ready() -> bool:
            pod = await c.get(PODS, "forever", namespace=ns)
            return condition(pod, "Ready").status == "True"

        await eventually(forever_ready, "the forever pod Ready again (the kubelet re-asserts it)", 30)

        async def terminated() -> bool:
            items, _ = await c.list_all(PODS, namespace=ns, label_selector="app=web")
            return {p.metadata.uid for p in items}.isdisjoint({p.metadata.uid for p in web})  # type: ignore[attr-defined]

        await eventually(terminated, "the thawed kubelet finishes deleting the evicted pods", 60)


async def test_node_thawed_before_the_deadline_keeps_its_pods(cluster: Cluster) -> None:
    async with Client(cluster.address) as c:
        await eventually(lambda: nodes_ready(c, cluster.nodes), "both nodes Ready")
        a = cluster.nodes[0]
        ns = await new_namespace(c)
        patient = [{"key": UR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 120},
                   {"key": NR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 120}]

        async def create() -> None:
            await c.create(DEPLOYMENTS, deployment("patient", 2, tolerations=patient), namespace=ns)
            await eventually(lambda: _count(running_pods(c, ns, "patient"), 2), "2 patient pods running")

        await place_on(cluster, c, a, create)
        before = {p.metadata.uid for p in await running_pods(c, ns, "patient")}

        cluster.freeze(a)
        try:
            async def tainted() -> bool:
                return (UR, "NoExecute") in taints(await c.get(NODES, a))

            await eventually(tainted, "node a tainted unreachable:NoExecute", 60)
        finally:
            cluster.thaw(a)

        async def clean() -> bool:
            node = await c.get(NODES, a)
            return condition(node, "Ready").status == "True" and not any(
                t.key in (UR, NR) for t in node.spec.taints)

        await eventually(clean, "taints removed after the thaw", 30)
        after = await eventually(lambda: _count(running_pods(c, ns, "patient"), 2), "patient pods Ready again", 30)
        assert {p.metadata.uid for p in after} == before  # nothing evicted, nothing replaced
        events, _ = await c.list_all(EVENTS, namespace=ns)
        assert any(e.reason == "TaintManagerEviction" and e.message.startswith("Cancelling deletion of Pod")  # type: ignore[attr-defined]
                   for e in events)


async def _count(pods: Any, n: int) -> list[Any] | None:
    items = await pods
    return items if len(items) == n else None
