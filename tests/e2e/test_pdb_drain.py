"""`kpctl drain` respects a PodDisruptionBudget, end to end with real processes (etcd, apiserver,
scheduler, controller-manager with the disruption controller, two process-runtime kubelets): a
Deployment of 2 with both pods on one node and `minAvailable: 1` — drain evicts one pod, is
refused for the other (kubectl's "will retry after 5s" line) until the replacement is Ready on the
other node, then evicts it; the Deployment never has fewer than 1 Ready pod."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from failure_cluster import (
    DEPLOYMENTS,
    Cluster,
    deployment,
    eventually,
    nodes_ready,
    running_pods,
    start_cluster,
)
from procs import kubelet_argv, worker_index

from kplane.api.resources import resolve
from kplane.client.client import Client

pytestmark = pytest.mark.e2e

PDBS = resolve("poddisruptionbudgets")
RETRY = "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: Any) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("pdb-drain"), pod_octet=242, ip_base=0, kubelets=0,
                      controllers="replicaset,deployment,garbagecollector,disruption")
    try:
        w = worker_index()
        for i in (1, 2):  # node IPs 127.0.242.i, pod ranges 127.242.x.0/24 (this file's own)
            name = f"p{i}-{c.tag}"
            c.start(name, kubelet_argv(c.address, name, c.tmp / "data" / name, node_ip=f"127.0.242.{i + 8 * w}",
                                       pod_cidr=f"127.242.{i + 8 * w}.0/24", cpu="4", memory="4Gi"))
            c.nodes.append(name)
        yield c
    finally:
        c.stop()


def web() -> dict[str, Any]:
    """Two busybox pods that become Ready 3 s after they start (so a replacement takes a while)."""
    body = deployment("web", 2)
    body["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["true"]}, "initialDelaySeconds": 3, "periodSeconds": 1}
    return body


async def test_drain_waits_for_the_budget(cluster: Cluster) -> None:
    async with Client(cluster.address) as c:
        await eventually(lambda: nodes_ready(c, cluster.nodes), "both nodes Ready")
        a, b = cluster.nodes
        ns = f"pdb-{uuid.uuid4().hex[:6]}"
        await c.create(resolve("namespaces"), {"metadata": {"name": ns}})
        assert (await cluster.akpctl("cordon", b)).returncode == 0
        await c.create(DEPLOYMENTS, web(), namespace=ns)
        made = await cluster.akpctl("create", "pdb", "web", "--selector=app=web", "--min-available=1", "-n", ns)
        assert made.stdout == "poddisruptionbudget.policy/web created\n", made.stderr

        async def two_ready_on_a() -> list[Any] | None:
            pods = await running_pods(c, ns, "web")
            return pods if len(pods) == 2 and {p.spec.nodeName for p in pods} == {a} else None

        before = await eventually(two_ready_on_a, "2 web pods Ready on the first node")

        async def budget_allows_one() -> bool:
            pdb = await c.get(PDBS, "web", namespace=ns)
            st = pdb.status  # type: ignore[attr-defined]
            return (st.disruptionsAllowed, st.currentHealthy, st.desiredHealthy, st.expectedPods) == (1, 2, 1, 2)

        await eventually(budget_allows_one, "the budget's status (1 disruption allowed)")
        listed = await cluster.akpctl("get", "pdb", "-n", ns)
        assert listed.stdout.splitlines()[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE",
                                                         "ALLOWED", "DISRUPTIONS", "AGE"]
        assert listed.stdout.splitlines()[1].split()[:4] == ["web", "1", "N/A", "1"]
        assert (await cluster.akpctl("uncordon", b)).returncode == 0

        fewest_ready = 2

        async def watch_ready() -> None:
            nonlocal fewest_ready
            while True:
                fewest_ready = min(fewest_ready, len(await running_pods(c, ns, "web")))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_ready())
        try:
            drained = await cluster.akpctl("drain", a, "--timeout=120s", timeout=180)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert drained.returncode == 0, drained.stderr
        names = sorted(p.metadata.name for p in before)
        out = drained.stdout.splitlines()
        assert out[0] == f"node/{a} cordoned" and out[-1] == f"node/{a} drained"
        assert sorted(line for line in out if line.endswith(" evicted")) == [f"pod/{n} evicted" for n in names]
        retries = [line for line in drained.stderr.splitlines() if line.endswith(RETRY)]
        assert retries, drained.stderr  # one of the two waited for the budget
        assert all(line.startswith('error when evicting pods/"') and f'-n "{ns}"' in line for line in retries)
        refused = {n for n in names if any(f'pods/"{n}"' in line for line in retries)}
        assert len(refused) == 1  # the first eviction went through at once, only the second waited
        after = await eventually(lambda: _two_ready_on(c, ns, b), "both web pods Ready on the other node", 90)
        assert not {p.metadata.name for p in after} & set(names)
        assert fewest_ready >= 1, "the Deployment dropped below the budget's 1 Ready pod"


async def _two_ready_on(c: Client, ns: str, node: str) -> list[Any] | None:
    pods = await running_pods(c, ns, "web")
    return pods if len(pods) == 2 and {p.spec.nodeName for p in pods} == {node} else None
