"""Shared benchmark plumbing: a throwaway etcd + apiserver, latency statistics, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kplane.devcluster import APIServer, EtcdServer, start_apiserver, start_etcd, stop_process


@dataclass
class Cluster:
    etcd: EtcdServer
    apiserver: APIServer


@contextmanager
def local_cluster() -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="kplane-bench-") as tmp:
        etcd = start_etcd(Path(tmp))
        try:
            api = start_apiserver(etcd, Path(tmp), "--log-level", "warning")
            try:
                yield Cluster(etcd, api)
            finally:
                stop_process(api.proc)
        finally:
            stop_process(etcd.proc)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def latency_ms(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {"p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(statistics.fmean(ms), 3) if ms else 0.0}


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
