"""history: reading etcd's history back through the apiserver, and what attribution costs writes.

Three figures, each against a baseline measured in the same run:

* **history** — `History` of one ConfigMap with N revisions (1000; --quick 200) written through the
  apiserver, streamed to the end by the client; baseline: a raw etcd watch on that one key from
  its create revision (what etcd alone needs to replay the same revisions). Also `kplane history
  -o json` as a subprocess: wall time and its peak RSS.
* **history_events** — the change stream (`Changes`) over M revisions (100 000; --quick 10 000) of
  pods, written straight into etcd with the same bytes and writer records the apiserver writes
  (writing them through the apiserver would take most of the run); baseline: a raw etcd watch
  over the same revisions with previous values. Also `kplane events -o json` as a subprocess, and
  the apiserver's peak RSS growth while streaming (a stream that buffered would grow with M).
* **history_write_overhead** — what a write pays for attribution: compare-and-swap creates into
  etcd with and without the extra writer-record put in the transaction (the same 64-way load),
  and the apiserver's CPU per write for the record and for managedFields (µs, in-process).
"""

from __future__ import annotations

import asyncio
import copy
import statistics
import subprocess
import sys
import threading
import time
import timeit
import uuid
from typing import Any

import psutil

from apiserver import audit
from apiserver.history import WRITER_KEY, WriteRecorder, encode_record
from apiserver.leases import LeaseManager
from apiserver.managedfields import stamp
from apiserver.storage import Storage
from bench.common import local_cluster, machine
from kplane.api.resources import object_from_dict, resolve
from kplane.client.client import Client

CONFIGMAPS, PODS, NAMESPACES = resolve("configmaps"), resolve("pods"), resolve("namespaces")


class PeakRSS:
    """Samples a process's RSS every 20 ms in a thread: the peak growth over a measurement."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return round((self.peak - self.base) / 2**20, 1)


def _cli(args: list[str]) -> tuple[float, float, int]:
    """Run a kplane command, draining its stdout: (seconds, its peak RSS in MB, lines printed)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kplane.cli.kplane", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with PeakRSS(proc.pid) as rss:
        out, err = proc.communicate()
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"kplane {' '.join(args)} failed: {err[-2000:]}")
    return elapsed, round(rss.peak / 2**20, 1), out.count("\n")


async def _raw_watch(storage: Storage, key: str, start: int, end: int, *, prefix: bool) -> tuple[float, int]:
    """Seconds for a raw etcd watch from `start` to deliver everything up to `end`."""
    t0 = time.perf_counter()
    seen = 0
    watch = storage.open_watch(key, start, prev_kv=prefix, range_end=None if prefix else b"")
    try:
        async for batch in watch:
            seen += len(batch.events)
            if batch.events and batch.events[-1][1].mod_revision >= end:
                break
    finally:
        watch.close()
    return time.perf_counter() - t0, seen


async def bench_history(cluster: Any, storage: Storage, revisions: int) -> dict[str, Any]:
    async with Client([cluster.apiserver.address], identity="bench-writer") as client:
        cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h", "namespace": "default"},
              "data": {"counter": "0", "payload": "x" * 200}}
        created = await client.create(CONFIGMAPS, cm)
        first = int(created.metadata.resourceVersion)  # type: ignore[attr-defined]
        for i in range(1, revisions):
            cm["data"]["counter"] = str(i)
            last = await client.update(CONFIGMAPS, cm)
        end = int(last.metadata.resourceVersion)  # type: ignore[attr-defined]

        baseline_s, seen = await _raw_watch(storage, CONFIGMAPS.key("default", "h"), first, end, prefix=False)
        assert seen == revisions, (seen, revisions)
        with PeakRSS(cluster.apiserver.proc.pid) as rss:
            t0 = time.perf_counter()
            first_ms = 0.0
            count = 0
            async for _ in client.history(CONFIGMAPS, "h", namespace="default"):
                if count == 0:
                    first_ms = (time.perf_counter() - t0) * 1000
                count += 1
            elapsed = time.perf_counter() - t0
        assert count == revisions, (count, revisions)
    cli_s, cli_rss, lines = _cli(["history", "cm/h", "-n", "default", "-o", "json", "--server",
                                  cluster.apiserver.address])
    assert lines == revisions
    cli_text_s, _, _ = _cli(["history", "cm/h", "-n", "default", "--color", "never", "--server",
                             cluster.apiserver.address])
    return {"bench": "history", "revisions": revisions, "seconds": round(elapsed, 3),
            "entries_per_s": round(revisions / elapsed, 1), "first_entry_ms": round(first_ms, 1),
            "baseline_seconds": round(baseline_s, 3), "baseline_entries_per_s": round(revisions / baseline_s, 1),
            "ratio": round((revisions / elapsed) / (revisions / baseline_s), 3),
            "apiserver_rss_growth_mb": rss.growth_mb, "cli_json_seconds": round(cli_s, 2),
            "cli_diff_seconds": round(cli_text_s, 2), "cli_peak_rss_mb": cli_rss,
            "baseline": "raw etcd watch of the one key from its create revision (aetcd, same process)"}


async def _write_pods(storage: Storage, count: int) -> tuple[int, int]:
    """`count` revisions of pods written as the apiserver writes them (bytes + writer record):
    creates of count/4 pods, then three updates each. Returns (first, last) revision."""
    _, sample = object_from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "bench", "labels": {"app": "bench"}, "uid": str(uuid.uuid4()),
                     "creationTimestamp": "2026-11-22T00:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "resources": {"requests": {"cpu": "100m"}}}],
                 "nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "127.244.0.2"}})
    pods = max(1, count // 4)
    start = await storage.current_revision()
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        msg = copy.deepcopy(sample)
        msg.metadata.name = f"p-{i}"  # type: ignore[attr-defined]
        key = PODS.key("bench", f"p-{i}")
        async with sem:
            rev = await storage.create(key, msg.SerializeToString())
            for step in range(3):
                msg.status.podIP = f"127.244.{step}.{i % 250}"  # type: ignore[attr-defined]
                rev = await storage.update(key, msg.SerializeToString(), rev)

    await asyncio.gather(*(one(i) for i in range(pods)))
    return start, await storage.current_revision()


async def bench_events(cluster: Any, storage: Storage, revisions: int) -> dict[str, Any]:
    async with Client([cluster.apiserver.address], identity="bench") as client:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    writer = Storage(cluster.etcd.url)
    await writer.connect()
    writer.hooks = WriteRecorder(LeaseManager(writer))
    try:
        t0 = time.perf_counter()
        start, end = await _write_pods(writer, revisions)
        write_s = time.perf_counter() - t0
    finally:
        await writer.close()
    total = end - start
    baseline_s, seen = await _raw_watch(storage, "/registry/pods/bench/", start + 1, end, prefix=True)
    async with Client([cluster.apiserver.address], identity="bench") as client:
        with PeakRSS(cluster.apiserver.proc.pid) as rss:
            t0 = time.perf_counter()
            count = 0
            async for _ in client.changes(since_revision=start, resources=[PODS], namespace="bench"):
                count += 1
            elapsed = time.perf_counter() - t0
    assert count == seen == total, (count, seen, total)
    cli_s, cli_rss, lines = _cli(["events", "--since-revision", str(start), "--kind", "pods", "-n", "bench",
                                  "-o", "json", "--server", cluster.apiserver.address])
    assert lines == total
    return {"bench": "history_events", "revisions": total, "seconds": round(elapsed, 2),
            "changes_per_s": round(total / elapsed, 1), "baseline_seconds": round(baseline_s, 2),
            "baseline_changes_per_s": round(total / baseline_s, 1),
            "ratio": round((total / elapsed) / (total / baseline_s), 3),
            "apiserver_rss_growth_mb": rss.growth_mb, "cli_json_seconds": round(cli_s, 2),
            "cli_changes_per_s": round(total / cli_s, 1), "cli_peak_rss_mb": cli_rss,
            "setup_write_seconds": round(write_s, 1),
            "baseline": "raw etcd watch with previous values over the same revisions (aetcd, same process)"}


async def bench_write_overhead(storage: Storage, quick: bool) -> dict[str, Any]:
    total = 500 if quick else 2000
    run_id = uuid.uuid4().hex[:6]
    value = b"x" * 300
    record = encode_record(audit.RequestInfo(manager="kube-scheduler", verb="create", subresource="binding"), "create")

    class RecordOnly:
        async def write_ops(self, key: str, op: str) -> tuple[int, list[tuple[str, bytes, int]]]:
            return 0, [(WRITER_KEY, record, 0)]

        def lease_lost(self) -> None:
            pass

    async def drive(tag: str) -> float:
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                await storage.create(f"/bench/overhead/{run_id}/{tag}/{i}", value)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(total)))
        return total / (time.perf_counter() - t0)

    # etcd's rate drifts with disk latency and the machine's load: alternate rounds, take medians
    plains: list[float] = []
    records: list[float] = []
    for round_ in range(3):
        for tag in (("plain", "record") if round_ % 2 == 0 else ("record", "plain")):
            storage.hooks = RecordOnly() if tag == "record" else None
            (records if tag == "record" else plains).append(await drive(f"{tag}{round_}"))
    storage.hooks = None
    plain, with_record = statistics.median(plains), statistics.median(records)

    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"}, "uid": "u"},
           "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
           "status": {"phase": "Pending", "qosClass": "BestEffort"}}
    created = copy.deepcopy(pod)
    stamp(created, None, manager="kpctl", subresource="", api_version="v1", now="2026-11-22T00:00:00Z")
    updated: dict[str, Any] = copy.deepcopy(created)
    updated["status"]["phase"] = "Running"
    n = 2000
    stamp_create_us = timeit.timeit(lambda: stamp(copy.copy(pod), None, manager="kpctl", subresource="",
                                                  api_version="v1", now="2026-11-22T00:00:00Z"), number=n) / n * 1e6
    stamp_update_us = timeit.timeit(lambda: stamp(updated, created, manager="kubelet/node-1", subresource="status",
                                                  api_version="v1", now="2026-11-22T00:00:00Z"), number=n) / n * 1e6
    info = audit.RequestInfo(manager="kubelet/node-1", verb="update", subresource="status")
    record_us = timeit.timeit(lambda: encode_record(info, "update"), number=n) / n * 1e6
    return {"bench": "history_write_overhead", "concurrency": 64, "objects_per_round": total, "rounds": 3,
            "creates_per_s_with_record": round(with_record, 1), "baseline_creates_per_s": round(plain, 1),
            "ratio": round(with_record / plain, 3), "managedfields_create_us": round(stamp_create_us, 1),
            "managedfields_update_us": round(stamp_update_us, 1), "writer_record_us": round(record_us, 1),
            "baseline": "the same compare-and-swap creates without the writer-record put (aetcd, same process)"}


async def run(quick: bool = False) -> list[dict[str, Any]]:
    results = []
    with local_cluster() as cluster:
        storage = Storage(cluster.etcd.url)
        await storage.connect()
        try:
            results.append(await bench_write_overhead(storage, quick))
            results.append(await bench_history(cluster, storage, 200 if quick else 1000))
            results.append(await bench_events(cluster, storage, 10_000 if quick else 100_000))
        finally:
            await storage.close()
    for r in results:
        r.update({"quick": quick, **machine()})
    return results
