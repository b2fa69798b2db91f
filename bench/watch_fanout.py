"""watch_fanout: 100 watchers on one resource; latency from a create's acknowledgement to each
watcher's delivery (p50/p99), against a single watcher measured in the same run."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.common import latency_ms, local_cluster, machine
from kplane.api.resources import resolve
from kplane.client.client import Client

CMS = resolve("configmaps")


async def _measure(address: str, watchers: int, events: int, namespace: str) -> list[float]:
    clients = [Client([address], identity=f"watcher-{i}") for i in range(min(watchers, 10))]
    writer = Client([address], identity="writer")
    _, rv, _ = await writer.list(CMS, namespace=namespace)
    sent: dict[str, float] = {}
    samples: list[float] = []
    done = asyncio.Event()
    remaining = watchers * events

    async def watch(i: int) -> None:
        nonlocal remaining
        async for etype, obj in clients[i % len(clients)].watch(CMS, namespace=namespace, resource_version=rv):
            if etype != "ADDED":
                continue
            t = time.perf_counter()
            samples.append(t - sent[obj.metadata.name])  # type: ignore[attr-defined]
            remaining -= 1
            if remaining == 0:
                done.set()

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await asyncio.sleep(0.5)  # let every watch stream open
    run = uuid.uuid4().hex[:6]
    for i in range(events):
        name = f"cm-{run}-{i}"
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}
        t0 = time.perf_counter()
        sent[name] = t0
        await writer.create(CMS, body, namespace=namespace)
        await asyncio.sleep(0.01)
    await asyncio.wait_for(done.wait(), 120)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in [*clients, writer]:
        await c.close()
    return samples


async def run(quick: bool = False) -> list[dict[str, Any]]:
    events = 50 if quick else 200
    with local_cluster() as cluster:
        admin = Client([cluster.apiserver.address])
        ns_rt = resolve("namespaces")
        for ns in ("fan1", "fan100"):
            await admin.create(ns_rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await admin.close()
        base = latency_ms(await _measure(cluster.apiserver.address, 1, events, "fan1"))
        fan = latency_ms(await _measure(cluster.apiserver.address, 100, events, "fan100"))
    return [{
        "bench": "watch_fanout", "watchers": 100, "events": events, "deliveries": 100 * events,
        "p50_ms": fan["p50_ms"], "p99_ms": fan["p99_ms"],
        "baseline_p50_ms": base["p50_ms"], "baseline_p99_ms": base["p99_ms"],
        "ratio": round(fan["p99_ms"] / base["p99_ms"], 3) if base["p99_ms"] else None,
        "baseline": "one watcher, same events, same run", "quick": quick,
        "note": "latency = watcher receipt time - time the create was sent; watchers share one client process",
        **machine(),
    }]
