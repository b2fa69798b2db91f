"""The scheduler as a real process against a real apiserver: pods land where Kubernetes would put
them; pods that cannot fit stay Pending with the Kubernetes message."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, stop_process

pytestmark = pytest.mark.e2e

PODS, NODES, EVENTS = resolve("pods"), resolve("nodes"), resolve("events")


@pytest.fixture(scope="module")
def scheduler_proc(apiserver: APIServer, tmp_path_factory: Any) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path_factory.mktemp("sched") / "scheduler.log"
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", "--server", apiserver.address, "--log-format", "json",
                             "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
                             "--leader-elect-retry-period", "0.5s"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    yield proc
    stop_process(proc)
    print(Path(log).read_text()[-3000:])


def node(name: str, cpu: str = "4", memory: str = "8Gi", labels: dict[str, str] | None = None,
         taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "100m", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox",
                                            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


@pytest.fixture
async def nodes(client: Client) -> AsyncIterator[list[str]]:
    tag = uuid.uuid4().hex[:6]
    names = [f"s-{tag}-{i}" for i in range(3)]
    await client.create(NODES, node(names[0], cpu="2", labels={"disk": "ssd", "run": tag}))
    await client.create(NODES, node(names[1], cpu="2", labels={"disk": "hdd", "run": tag}))
    await client.create(NODES, node(names[2], cpu="2", labels={"run": tag},
                                    taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    yield names
    for n in names:
        await client.delete(NODES, n)


async def bound_node(client: Client, namespace: str, name: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = await client.get(PODS, name, namespace=namespace)
        if p.spec.nodeName:  # type: ignore[attr-defined]
            return str(p.spec.nodeName)  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
    raise AssertionError(f"pod {name} was never bound")


async def test_pods_land_where_kubernetes_puts_them(client: Client, namespace: str, nodes: list[str],
                                                    scheduler_proc: Any) -> None:
    """nodeSelector, tolerations, resource fit and an explicit nodeName are honoured; a pod that
    fits nowhere stays Pending with PodScheduled=False and a FailedScheduling event."""
    ssd, hdd, tainted = nodes
    run = (await client.get(NODES, ssd)).metadata.labels["run"]  # type: ignore[attr-defined]
    await client.create(PODS, pod("sel", nodeSelector={"disk": "ssd", "run": run}), namespace=namespace)
    assert await bound_node(client, namespace, "sel") == ssd
    await client.create(PODS, pod("tol", nodeSelector={"run": run},
                                  affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                                      "nodeSelectorTerms": [{"matchExpressions": [
                                          {"key": "disk", "operator": "DoesNotExist"}]}]}}},
                                  tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                                "effect": "NoSchedule"}]), namespace=namespace)
    assert await bound_node(client, namespace, "tol") == tainted
    # fill hdd with a big pod, then a second big pod for the run's non-tainted nodes has no room on hdd
    await client.create(PODS, pod("big1", cpu="1500m", nodeSelector={"disk": "hdd"}), namespace=namespace)
    assert await bound_node(client, namespace, "big1") == hdd
    await client.create(PODS, pod("huge", cpu="3", nodeSelector={"run": run}), namespace=namespace)
    deadline = time.monotonic() + 30
    message = ""
    while time.monotonic() < deadline and not message:
        p = object_to_dict(PODS, await client.get(PODS, "huge", namespace=namespace))
        for c in p.get("status", {}).get("conditions", []):
            if c["type"] == "PodScheduled" and c["status"] == "False":
                message = c.get("message", "")
        await asyncio.sleep(0.2)
    assert message.startswith("0/") and "Insufficient cpu" in message and "untolerated taint {dedicated: gpu}" in message
    events, _ = await client.list_all(EVENTS, namespace=namespace,
                                      field_selector="involvedObject.name=huge,involvedObject.kind=Pod")
    assert any(e.reason == "FailedScheduling" for e in events)  # type: ignore[attr-defined]
    scheduled, _ = await client.list_all(EVENTS, namespace=namespace,
                                         field_selector="involvedObject.name=sel,involvedObject.kind=Pod")
    assert any(e.reason == "Scheduled" and f"to {ssd}" in e.message for e in scheduled)  # type: ignore[attr-defined]
    # a pod already bound by name is never touched by the scheduler
    await client.create(PODS, pod("named", nodeName=hdd, cpu="10"), namespace=namespace)
    await asyncio.sleep(1)
    assert (await client.get(PODS, "named", namespace=namespace)).spec.nodeName == hdd  # type: ignore[attr-defined]
    # freeing capacity moves the unschedulable pod back: delete big1 and add room by a new node
    await client.create(NODES, node(f"{ssd}-big", cpu="8", labels={"run": run}))
    try:
        assert await bound_node(client, namespace, "huge", timeout=60) == f"{ssd}-big"
    finally:
        await client.delete(NODES, f"{ssd}-big")


def start_scheduler(apiserver: APIServer, log: Path, identity: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "scheduler", "--server", apiserver.address, "--log-format", "json",
                             "--identity", identity, "--leader-elect-lease-duration", "3s",
                             "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "0.5s"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


async def test_killing_the_leader_mid_run_loses_and_double_binds_nothing(
        client: Client, namespace: str, apiserver: APIServer, tmp_path: Path, scheduler_proc: Any) -> None:
    """With two more schedulers competing for the lease, SIGKILLing whoever leads mid-run still gets
    every pod bound exactly once: no pod is left pending and no bound pod ever changes node."""
    import signal as _signal

    tag = uuid.uuid4().hex[:6]
    names = [f"k-{tag}-{i}" for i in range(4)]
    for n in names:
        await client.create(NODES, node(n, cpu="64", labels={"kill": tag}))
    # stop the module's scheduler so only ours compete
    scheduler_proc.send_signal(_signal.SIGSTOP)
    procs = {i: start_scheduler(apiserver, tmp_path / f"s{i}.log", f"sched-{i}-{tag}") for i in ("a", "b")}
    first_node: dict[str, str] = {}
    changed: list[str] = []

    async def observe() -> None:
        async for _etype, obj in client.watch(PODS, namespace=namespace):
            node_name = obj.spec.nodeName  # type: ignore[attr-defined]
            name = obj.metadata.name  # type: ignore[attr-defined]
            if node_name:
                if name in first_node and first_node[name] != node_name:
                    changed.append(name)
                first_node.setdefault(name, node_name)

    watcher = asyncio.create_task(observe())
    try:
        sem = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with sem:
                await client.create(PODS, pod(f"w-{i}", nodeSelector={"kill": tag}), namespace=namespace)

        await asyncio.gather(*(make(i) for i in range(150)))
        deadline = time.monotonic() + 60
        while len(first_node) < 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        lease = await client.get(resolve("leases"), "kube-scheduler", namespace="kube-system")
        leader = lease.spec.holderIdentity  # type: ignore[attr-defined]
        victim = next(i for i in procs if f"sched-{i}-" in leader)
        procs[victim].send_signal(_signal.SIGKILL)
        deadline = time.monotonic() + 90
        while len(first_node) < 150 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert len(first_node) == 150, f"only {len(first_node)} of 150 pods were bound"
        await asyncio.sleep(1)
        assert not changed, f"pods changed node: {changed}"
        items, _ = await client.list_all(PODS, namespace=namespace)
        assert all(p.spec.nodeName == first_node[p.metadata.name] for p in items)  # type: ignore[attr-defined]
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        for proc in procs.values():
            stop_process(proc)
        scheduler_proc.send_signal(_signal.SIGCONT)
        for n in names:
            await client.delete(NODES, n)


async def test_pod_anti_affinity_and_topology_spread(client: Client, namespace: str, scheduler_proc: Any) -> None:
    """Required anti-affinity on the hostname puts each replica on its own node, and a zone spread
    constraint with maxSkew 1 balances replicas across zones; a fourth anti-affine replica on three
    nodes stays Pending with the Kubernetes reason."""
    tag = uuid.uuid4().hex[:6]
    names = [f"a-{tag}-{i}" for i in range(3)]
    for i, n in enumerate(names):
        await client.create(NODES, node(n, cpu="8", labels={"aff": tag, "kubernetes.io/hostname": n,
                                                           "topology.kubernetes.io/zone": f"zone-{i % 2}"}))
    try:
        anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": f"anti-{tag}"}}, "topologyKey": "kubernetes.io/hostname"}]}}
        for i in range(4):
            body = pod(f"anti-{i}", nodeSelector={"aff": tag}, affinity=anti)
            body["metadata"]["labels"] = {"app": f"anti-{tag}"}
            await client.create(PODS, body, namespace=namespace)
        placed = [await bound_node(client, namespace, f"anti-{i}") for i in range(3)]
        assert sorted(placed) == sorted(names)
        deadline = time.monotonic() + 30
        message = ""
        while time.monotonic() < deadline and not message:
            p = object_to_dict(PODS, await client.get(PODS, "anti-3", namespace=namespace))
            message = next((c.get("message", "") for c in p.get("status", {}).get("conditions", [])
                            if c["type"] == "PodScheduled" and c["status"] == "False"), "")
            await asyncio.sleep(0.2)
        assert "node(s) didn't match pod anti-affinity rules" in message
        spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": f"spread-{tag}"}}}]
        zones: list[str] = []
        for i in range(4):
            body = pod(f"spread-{i}", nodeSelector={"aff": tag}, topologySpreadConstraints=spread)
            body["metadata"]["labels"] = {"app": f"spread-{tag}"}
            await client.create(PODS, body, namespace=namespace)
            placed_node = await bound_node(client, namespace, f"spread-{i}")
            zones.append(f"zone-{names.index(placed_node) % 2}")
        assert zones.count("zone-0") == 2 and zones.count("zone-1") == 2
    finally:
        for n in names:
            await client.delete(NODES, n)
