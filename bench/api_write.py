"""api_write: apiserver creates/s and latency at 1 and 64 concurrent clients, against raw etcd puts/s
of the same object bytes measured in the same run (the ratio is what the apiserver costs)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from apiserver.storage import Storage
from bench.common import latency_ms, local_cluster, machine
from kplane.api.resources import object_from_dict, resolve
from kplane.client.client import Client

PODS = resolve("pods")


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }


async def _drive(concurrency: int, total: int, op: Any) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


async def run(quick: bool = False) -> list[dict[str, Any]]:
    results = []
    with local_cluster() as cluster:
        storage = Storage(cluster.etcd.url)
        await storage.connect()
        clients = [Client([cluster.apiserver.address], identity="bench") for _ in range(8)]
        ns_rt = resolve("namespaces")
        await clients[0].create(ns_rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        # the baseline puts exactly what the apiserver stores for such a pod (defaults and all)
        sample = await clients[0].create(PODS, pod("sample"), namespace="bench")
        sample.metadata.ClearField("resourceVersion")  # type: ignore[attr-defined]
        raw = sample.SerializeToString()
        for concurrency in (1, 64):
            total = (200 if concurrency == 1 else 1000) if quick else (1000 if concurrency == 1 else 5000)
            run_id = uuid.uuid4().hex[:6]
            # baseline: the same bytes put straight into etcd with compare-and-swap creates
            elapsed_e, lat_e = await _drive(
                concurrency, total, lambda i, r=run_id: storage.create(f"/bench/raw/{r}/{i}", raw))
            elapsed_a, lat_a = await _drive(
                concurrency, total,
                lambda i, r=run_id: clients[i % len(clients)].create(PODS, pod(f"p-{r}-{i}"), namespace="bench"))
            # protobuf bodies: what components send (kpctl sends JSON, decoded strictly)
            proto_objs = []
            for i in range(total):
                _, m = object_from_dict(pod(f"q-{run_id}-{i}"))
                proto_objs.append(m)
            elapsed_p, lat_p = await _drive(
                concurrency, total,
                lambda i, objs=proto_objs: clients[i % len(clients)].create(PODS, objs[i], namespace="bench"))
            api_rate, etcd_rate, proto_rate = total / elapsed_a, total / elapsed_e, total / elapsed_p
            la, le, lp = latency_ms(lat_a), latency_ms(lat_e), latency_ms(lat_p)
            results.append({
                "bench": "api_write", "concurrency": concurrency, "objects": total, "object_bytes": len(raw),
                "creates_per_s": round(api_rate, 1), "p50_ms": la["p50_ms"], "p99_ms": la["p99_ms"],
                "proto_creates_per_s": round(proto_rate, 1), "proto_p50_ms": lp["p50_ms"], "proto_p99_ms": lp["p99_ms"],
                "baseline_creates_per_s": round(etcd_rate, 1), "baseline_p50_ms": le["p50_ms"],
                "baseline_p99_ms": le["p99_ms"], "ratio": round(api_rate / etcd_rate, 3),
                "proto_ratio": round(proto_rate / etcd_rate, 3),
                "baseline": "raw etcd compare-and-swap puts of the same protobuf bytes (aetcd, same process)",
                "quick": quick, **machine(),
            })
        for c in clients:
            await c.close()
        await storage.close()
    return results
