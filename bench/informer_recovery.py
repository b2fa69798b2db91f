"""informer_recovery: how long an informer is blind after its apiserver is SIGKILLed and restarted.

Setup: one etcd, apiserver A (the informer's, restarted on the same port every trial) and
apiserver B (the writer's, never restarted). Each trial SIGKILLs A, restarts it (in a thread, so
the informer keeps retrying meanwhile), and the moment A reports healthy creates a ConfigMap
through B; the figure is the time from A being ready again to the informer's handler receiving
that ConfigMap. The baseline is the same create -> handler latency with no restart, same run.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import latency_ms, machine, percentile
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.client.informer import Informer
from kplane.devcluster import APIServer, free_port, start_apiserver, start_etcd, stop_process
from kplane.logs import configure_logging

CMS = resolve("configmaps")
NAMESPACE = "recovery"


class _Arrivals:
    """Handler side: when each named object was first seen."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Event] = {}

    def on_add(self, obj: Any) -> None:
        name = obj.metadata.name
        self.seen.setdefault(name, time.perf_counter())
        event = self._waiters.get(name)
        if event is not None:
            event.set()

    async def wait(self, name: str, timeout: float = 120) -> float:
        if name not in self.seen:
            event = self._waiters.setdefault(name, asyncio.Event())
            await asyncio.wait_for(event.wait(), timeout)
        return self.seen[name]


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def _ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {**latency_ms(seconds), "max_ms": round(max(ms), 3) if ms else 0.0,
            "min_ms": round(min(ms), 3) if ms else 0.0}


async def run(quick: bool = False) -> list[dict[str, Any]]:
    # Informer logs (reconnect warnings every trial) go to stderr and only at error level, so
    # stdout stays one JSON object per line.
    configure_logging("bench", fmt="json", level="error")
    trials = 5 if quick else 20
    baseline_n = 20 if quick else 100
    with tempfile.TemporaryDirectory(prefix="kplane-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        etcd = start_etcd(tmp)
        port = free_port()
        procs: list[APIServer] = []
        try:
            api_a = start_apiserver(etcd, tmp, "--log-level", "warning", port=port)
            procs.append(api_a)
            api_b = start_apiserver(etcd, tmp, "--log-level", "warning")
            procs.append(api_b)
            writer = Client([api_b.address], identity="bench-writer")
            watcher = Client([api_a.address], identity="bench-informer")
            await writer.create(resolve("namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": NAMESPACE}})
            informer = Informer(watcher, CMS, namespace=NAMESPACE)
            arrivals = _Arrivals()
            informer.add_event_handler(arrivals)
            task = asyncio.create_task(informer.run())
            assert await informer.wait_for_sync(60), "informer never synced"
            run_id = uuid.uuid4().hex[:6]

            baseline: list[float] = []
            for i in range(baseline_n):
                name = f"base-{run_id}-{i}"
                t0 = time.perf_counter()
                await writer.create(CMS, _configmap(name), namespace=NAMESPACE)
                baseline.append(await arrivals.wait(name) - t0)
                await asyncio.sleep(0.02)

            downtime: list[float] = []
            recovery: list[float] = []
            for i in range(trials):
                # Start each trial from a healthy watch that has seen a bookmark (as in production).
                await asyncio.sleep(1.5)
                name = f"after-{run_id}-{i}"
                t_kill = time.perf_counter()
                api_a.proc.kill()
                api_a.proc.wait()
                api_a = await asyncio.to_thread(start_apiserver, etcd, tmp, "--log-level", "warning", port=port)
                procs[0] = api_a
                t_ready = time.perf_counter()
                await writer.create(CMS, _configmap(name), namespace=NAMESPACE)
                t_seen = await arrivals.wait(name)
                downtime.append(t_ready - t_kill)
                recovery.append(t_seen - t_ready)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            reconnects, lists = informer.reflector.reconnects, informer.reflector.lists
            await writer.close()
            await watcher.close()
        finally:
            for p in procs:
                stop_process(p.proc)
            stop_process(etcd.proc)

    rec, base, down = _ms(recovery), _ms(baseline), _ms(downtime)
    return [{
        "bench": "informer_recovery", "trials": trials, "baseline_events": baseline_n,
        "p50_ms": rec["p50_ms"], "p99_ms": rec["p99_ms"], "max_ms": rec["max_ms"], "mean_ms": rec["mean_ms"],
        "baseline_p50_ms": base["p50_ms"], "baseline_p99_ms": base["p99_ms"], "baseline_max_ms": base["max_ms"],
        "ratio": round(rec["p50_ms"] / base["p50_ms"], 3) if base["p50_ms"] else None,
        "apiserver_downtime_p50_ms": down["p50_ms"], "apiserver_downtime_max_ms": down["max_ms"],
        "informer_reconnects": reconnects, "informer_lists": lists,
        "samples_ms": [round(s * 1000, 1) for s in sorted(recovery)],
        "p90_ms": round(percentile([s * 1000 for s in recovery], 90), 3),
        "figure": "apiserver healthy again after SIGKILL+restart -> informer handler receives a create "
                  "made (through a second apiserver) right after",
        "baseline": "the same create -> handler latency with no restart, same run",
        "quick": quick, **machine(),
    }]
