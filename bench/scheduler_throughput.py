"""scheduler_throughput: N pending pods onto M fake nodes through the real apiserver.

Figures: pods scheduled per second end to end (scheduler start → every pod bound, as seen by a
watch), the scheduler's own per-pod decision time (p50/p99, wall clock and this thread's CPU time —
the CPU figure is what a busy machine does not inflate), the CPU milliseconds per pod spent by this
process (scheduler, its informers and client), the apiserver and etcd while scheduling, and the
ceiling measured in the same run: the raw apiserver bind rate (the same number of binds issued
directly, 32 in flight). Nodes are plain Node objects (no kubelets); the scheduler runs in this
process after the pods exist, so pod creation does not compete with scheduling.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import psutil

from bench.common import latency_ms, local_cluster, machine
from kplane.api.resources import resolve
from kplane.client.client import Client
from scheduler.profile import load_profiles
from scheduler.scheduler import Scheduler

PODS, NODES, NS = resolve("pods"), resolve("nodes"), resolve("namespaces")


def node(name: str, zone: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}},
            "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "images": [{"names": ["nginx:1.25"], "sizeBytes": 60_000_000}]}}


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


async def _create_all(client: Client, rt: Any, bodies: list[dict[str, Any]], namespace: str = "") -> None:
    sem = asyncio.Semaphore(64)

    async def one(body: dict[str, Any]) -> None:
        async with sem:
            await client.create(rt, body, namespace=namespace)

    await asyncio.gather(*(one(b) for b in bodies))


def _cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}


async def _one_config(address: str, nodes: int, pods: int, pids: dict[str, int]) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    ns = f"sched-{tag}"
    async with Client([address], identity="bench") as client:
        await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await _create_all(client, NODES, [node(f"n-{tag}-{i}", f"z{i % 3}") for i in range(nodes)])
        # ceiling: raw binds through the apiserver, same count, 32 in flight
        ceiling_ns = f"ceil-{tag}"
        await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ceiling_ns}})
        await _create_all(client, PODS, [pod(f"c-{i}") for i in range(pods)], ceiling_ns)
        sem = asyncio.Semaphore(32)

        async def bind(i: int) -> None:
            async with sem:
                await client.bind(ceiling_ns, f"c-{i}", f"n-{tag}-{i % nodes}")

        t0 = time.perf_counter()
        await asyncio.gather(*(bind(i) for i in range(pods)))
        ceiling = pods / (time.perf_counter() - t0)
        # the real thing
        await _create_all(client, PODS, [pod(f"p-{i}") for i in range(pods)], ns)
        profiles, _ = load_profiles(None)
        sched = Scheduler(client, profiles)
        bound: set[str] = set()
        done = asyncio.Event()

        def on_bound(key: str, node_name: str) -> None:
            if key.startswith(f"{ns}/"):
                bound.add(key)
                if len(bound) == pods:
                    done.set()

        sched.on_bound = on_bound
        procs = {"scheduler_process": psutil.Process(os.getpid())}
        procs.update({name: psutil.Process(pid) for name, pid in pids.items()})
        cpu0 = _cpu_seconds(procs)
        t0 = time.perf_counter()
        task = asyncio.create_task(sched.run())
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - t0
        cpu1 = _cpu_seconds(procs)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sched.factory.shutdown()
        decisions = latency_ms(sched.decision_times[-pods:])
        decisions_cpu = latency_ms(sched.decision_cpu_times[-pods:])
        placed, _ = await client.list_all(PODS, namespace=ns)
        per_node: dict[str, int] = {}
        for p in placed:
            per_node[p.spec.nodeName] = per_node.get(p.spec.nodeName, 0) + 1  # type: ignore[attr-defined]
        # the next configuration must see only its own nodes
        sem2 = asyncio.Semaphore(64)

        async def drop(i: int) -> None:
            async with sem2:
                await client.delete(NODES, f"n-{tag}-{i}")

        await asyncio.gather(*(drop(i) for i in range(nodes)))
    rate = pods / elapsed
    return {"bench": "scheduler_throughput", "nodes": nodes, "pods": pods,
            "pods_scheduled_per_s": round(rate, 1),
            "decision_p50_ms": decisions["p50_ms"], "decision_p99_ms": decisions["p99_ms"],
            "decision_cpu_p50_ms": decisions_cpu["p50_ms"], "decision_cpu_p99_ms": decisions_cpu["p99_ms"],
            "decision_cpu_mean_ms": decisions_cpu["mean_ms"],
            "cpu_ms_per_pod": {name: round((cpu1[name] - cpu0[name]) * 1000 / pods, 2) for name in procs},
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "baseline_binds_per_s": round(ceiling, 1), "ratio": round(rate / ceiling, 3),
            "max_pods_on_one_node": max(per_node.values()), "nodes_used": len(per_node),
            "baseline": "raw pods/binding calls through the same apiserver, 32 in flight, same run",
            "reference": "kube-scheduler default client QPS 50 binds/s; Kubernetes e2e scheduler-throughput >= 400 pods/s"}


async def run(quick: bool = False) -> list[dict[str, Any]]:
    configs = [(50, 300), (200, 300)] if quick else [(100, 2000), (500, 2000), (1000, 2000)]
    results = []
    with local_cluster() as cluster:
        for nodes, pods in configs:
            pids = {"apiserver": cluster.apiserver.proc.pid, "etcd": cluster.etcd.proc.pid}
            result = await _one_config(cluster.apiserver.address, nodes, pods, pids)
            result.update(quick=quick, **machine())
            results.append(result)
    return results
