"""scheduler_decision: the scheduler's per-pod decision in-process, no apiserver.

The same nodes and pods as scheduler_throughput (32 cpu / 128Gi / 110 pods, three zones, one
image; pods of 100m cpu / 64Mi from one "ReplicaSet"), fed through the default profile and the
scheduler cache exactly as the scheduler does it: snapshot → Profile.schedule → assume. Figures:
decisions per second and the decision time p50/p99 (wall clock, and this thread's CPU time, which a
busy machine does not inflate), and how many nodes a decision filtered and scored. Baseline: the same loop over a profile with every plugin disabled (the cost of the cycle
machinery, snapshot and assume alone), same run.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.common import latency_ms, machine
from bench.scheduler_throughput import node as node_body
from bench.scheduler_throughput import pod as pod_body
from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.cache import SchedulerCache
from scheduler.profile import Profile, load_profiles

_TYPE_META = frozenset({"apiVersion", "kind"})


def _cluster(nodes: int) -> SchedulerCache:
    cache = SchedulerCache()
    for i in range(nodes):
        cache.add_node(codec.from_dict(node_body(f"n-{i}", f"z{i % 3}"), core_pb2.Node, ignore=_TYPE_META))
    return cache


def _pods(count: int) -> list[Any]:
    out = []
    for i in range(count):
        body = pod_body(f"p-{i}")
        body["metadata"]["namespace"] = "default"
        body["metadata"]["uid"] = f"uid-{i}"
        out.append(codec.from_dict(body, core_pb2.Pod, ignore=_TYPE_META))
    return out


def _run(profile: Profile, nodes: int, pods: list[Any]) -> tuple[list[float], list[float], float, int, int]:
    cache = _cluster(nodes)
    times: list[float] = []
    cpu_times: list[float] = []
    evaluated = feasible = 0
    t0 = time.perf_counter()
    for p in pods:
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = profile.schedule(p, cache.snapshot())
        times.append(time.perf_counter() - start)
        cpu_times.append(time.thread_time() - start_cpu)
        evaluated += result.evaluated
        feasible += result.feasible
        if result.node is None:
            raise RuntimeError(f"{p.metadata.name} did not fit: {result.status.message()}")
        assumed = type(p)()
        assumed.CopyFrom(p)
        assumed.spec.nodeName = result.node
        cache.assume_pod(assumed, result.pod_info)
    return times, cpu_times, time.perf_counter() - t0, evaluated, feasible


async def run(quick: bool = False) -> list[dict[str, Any]]:
    configs = [(100, 300), (1000, 300)] if quick else [(100, 2000), (500, 2000), (1000, 2000), (5000, 500)]
    results = []
    for nodes, count in configs:
        pods = _pods(count)
        bare, _ = load_profiles({"profiles": [{"plugins": {"disabled": ["*"]}}]})
        _, _, bare_elapsed, _, _ = _run(bare[0], nodes, pods)
        times, cpu_times, elapsed, evaluated, feasible = _run(Profile(), nodes, pods)
        stats = latency_ms(times)
        cpu = latency_ms(cpu_times)
        rate = count / elapsed
        baseline = count / bare_elapsed
        results.append({
            "bench": "scheduler_decision", "nodes": nodes, "pods": count,
            "decisions_per_s": round(rate, 1),
            "decision_p50_ms": stats["p50_ms"], "decision_p99_ms": stats["p99_ms"],
            "decision_mean_ms": stats["mean_ms"],
            "decision_cpu_p50_ms": cpu["p50_ms"], "decision_cpu_p99_ms": cpu["p99_ms"],
            "nodes_filtered_per_pod": round(evaluated / count, 1),
            "nodes_scored_per_pod": round(feasible / count, 1),
            "baseline_decisions_per_s": round(baseline, 1), "ratio": round(rate / baseline, 3),
            "baseline": "same loop (snapshot, schedule, assume) with every plugin disabled, same run",
            "load_avg_1m": round(os.getloadavg()[0], 2), "quick": quick, **machine(),
        })
    return results
