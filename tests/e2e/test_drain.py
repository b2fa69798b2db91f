"""`kpctl drain` end to end with real processes: kubectl's refusals (DaemonSet, emptyDir and
unmanaged pods) leave every pod in place and exit 1; with the override flags the node's pods are
evicted through pods/eviction, waited for, and the ReplicaSet recreates them on the other node
while the DaemonSet pod stays; --dry-run=client changes nothing; a pod that cannot terminate (its
kubelet is frozen) ends in kubectl's global-timeout error."""

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
    deployment,
    eventually,
    nodes_ready,
    running_pods,
    start_cluster,
)

from kplane.api import errors as api
from kplane.api.resources import resolve
from kplane.client.client import Client

pytestmark = pytest.mark.e2e

DAEMONSET = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": {"metadata": {"labels": {"app": "agent"}},
                                   "spec": {"terminationGracePeriodSeconds": 1,
                                            "containers": [{"name": "c", "image": "busybox",
                                                            "command": ["sleep", "3600"]}]}}}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: Any) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("drain"), pod_octet=251, ip_base=2,
                      controllers="replicaset,deployment,daemonset,garbagecollector")
    try:
        yield c
    finally:
        c.stop()


async def count(pods: Any, n: int) -> list[Any] | None:
    items = await pods
    return items if len(items) == n else None


async def test_drain_refuses_then_evicts_and_pods_move(cluster: Cluster) -> None:
    async with Client(cluster.address) as c:
        await eventually(lambda: nodes_ready(c, cluster.nodes), "both nodes Ready")
        a, b = cluster.nodes
        ns = f"dr-{uuid.uuid4().hex[:6]}"
        await c.create(resolve("namespaces"), {"metadata": {"name": ns}})
        await c.create(resolve("daemonsets"), DAEMONSET, namespace=ns)
        assert (await cluster.akpctl("cordon", b)).returncode == 0
        await c.create(DEPLOYMENTS, deployment("web", 2), namespace=ns)
        await c.create(DEPLOYMENTS, deployment("scratch", 1, volumes=True), namespace=ns)
        await c.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": "lonely", "labels": {"app": "lonely"}},
                              "spec": {"nodeName": a, "terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "c", "image": "busybox",
                                                       "command": ["sleep", "3600"]}]}}, namespace=ns)
        for app, n in (("web", 2), ("scratch", 1), ("lonely", 1), ("agent", 2)):
            await eventually(lambda app=app, n=n: count(running_pods(c, ns, app), n), f"{n} {app} pods running")
        assert (await cluster.akpctl("uncordon", b)).returncode == 0
        ds_a = next(p for p in await running_pods(c, ns, "agent") if p.spec.nodeName == a)
        scratch = (await running_pods(c, ns, "scratch"))[0]
        web_before = {p.metadata.uid for p in await running_pods(c, ns, "web")}

        refused = await cluster.akpctl("drain", a)
        assert refused.returncode == 1
        assert refused.stdout == f"node/{a} cordoned\n"
        ds_err = f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {ns}/{ds_a.metadata.name}"
        local_err = (f"cannot delete Pods with local storage (use --delete-emptydir-data to override): "
                     f"{ns}/{scratch.metadata.name}")
        lonely_err = f"cannot delete cannot delete Pods that declare no controller (use --force to override): {ns}/lonely"
        assert refused.stderr == (
            f'error: unable to drain node "{a}" due to error: [{ds_err}, {local_err}, {lonely_err}], '
            "continuing command...\n"
            f"There are pending nodes to be drained:\n {a}\n{ds_err}\n{local_err}\n{lonely_err}\n")
        assert {p.metadata.uid for p in await running_pods(c, ns, "web")} == web_before  # nothing evicted
        assert (await c.get(NODES, a)).spec.unschedulable  # type: ignore[attr-defined]

        drained = await cluster.akpctl("drain", a, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                                       "--grace-period=1", "--timeout=120s")
        assert drained.returncode == 0, drained.stderr
        lines = drained.stdout.splitlines()
        assert lines[0] == f"node/{a} already cordoned" and lines[-1] == f"node/{a} drained"
        evicting = sorted(line for line in lines if line.startswith("evicting pod "))
        evicted = sorted(line for line in lines if line.endswith(" evicted"))
        moved = [p.metadata.name for p in await _pods_named(c, ns, web_before)] or []
        assert len(evicting) == 4 and len(evicted) == 4, drained.stdout  # web x2, scratch, lonely
        assert f"evicting pod {ns}/lonely" in evicting and "pod/lonely evicted" in evicted
        assert drained.stderr == (f"Warning: deleting Pods that declare no controller: {ns}/lonely; "
                                  f"ignoring DaemonSet-managed Pods: {ns}/{ds_a.metadata.name}\n")
        assert not moved  # the evicted web pods are gone
        web_after = await eventually(lambda: count(running_pods(c, ns, "web"), 2), "web recreated", 90)
        assert {p.spec.nodeName for p in web_after} == {b}
        assert (await eventually(lambda: count(running_pods(c, ns, "scratch"), 1), "scratch recreated", 90)
                )[0].spec.nodeName == b
        with pytest.raises(api.NotFound):
            await c.get(PODS, "lonely", namespace=ns)
        ds_still = await c.get(PODS, ds_a.metadata.name, namespace=ns)  # DaemonSet pod left alone
        assert not ds_still.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]

        # --dry-run=client on the other node: says what it would do, changes nothing
        dry = await cluster.akpctl("drain", b, "--ignore-daemonsets", "--delete-emptydir-data", "--dry-run=client")
        assert dry.returncode == 0, dry.stderr
        out = dry.stdout.splitlines()
        assert out[0] == f"node/{b} cordoned (dry run)" and out[-1] == f"node/{b} drained (dry run)"
        assert len([x for x in out if x.startswith("evicting pod ") and x.endswith(" (dry run)")]) == 3
        assert not (await c.get(NODES, b)).spec.unschedulable  # type: ignore[attr-defined]
        assert len(await running_pods(c, ns, "web")) == 2

        # a pod that cannot go (its kubelet is frozen): kubectl's timeout error, exit 1
        assert (await cluster.akpctl("uncordon", a)).returncode == 0
        cluster.freeze(b)
        try:
            stuck = await cluster.akpctl("drain", b, "--ignore-daemonsets", "--delete-emptydir-data",
                                         "--pod-selector", "app=scratch", "--timeout=3s")
        finally:
            cluster.thaw(b)
        assert stuck.returncode == 1
        name = (await _scratch_on(c, ns, b))
        assert (f'error when waiting for pod "{name}" in namespace "{ns}" to terminate: global timeout reached: 3s'
                in stuck.stderr), stuck.stderr
        assert f'There are pending pods in node "{b}" when an error occurred' in stuck.stderr
        assert "There are pending nodes to be drained:" in stuck.stderr


async def _pods_named(c: Client, ns: str, uids: set[str]) -> list[Any]:
    items, _ = await c.list_all(PODS, namespace=ns)
    return [p for p in items if p.metadata.uid in uids]  # type: ignore[attr-defined]


async def _scratch_on(c: Client, ns: str, node: str) -> str:
    items, _ = await c.list_all(PODS, namespace=ns, label_selector="app=scratch")
    return next(str(p.metadata.name) for p in items if p.spec.nodeName == node)  # type: ignore[attr-defined]
