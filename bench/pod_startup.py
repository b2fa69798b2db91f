"""pod_startup: pod creation → Running, as seen by a watch, through the whole control plane.

Real processes: etcd, the apiserver, the scheduler (``python -m scheduler``) and kubelets
(``python -m kubelet``), each its own OS process. N pods are created at once (concurrently, at
most 100 create calls in flight: more time out against one Python apiserver at 1000 pods); a
watch on their namespace records when each pod is first seen bound (``spec.nodeName``) and when
it is first seen with ``status.phase: Running``. Per-pod latency is that watch event's arrival
time minus the start of the pod's create call (``creationTimestamp`` has one-second precision, too
coarse for the small cases; the create call starts earlier, so the figure is a slight
over-estimate of Kubernetes' definition). Kubernetes' SLO: p99 ≤ 5 s for stateless pods.
Also reported: create → bound and bound → Running (p50/p99, to tell the scheduler's share from the
kubelet's), the time to delete all N pods (the kubelets finish every delete), and the longest gap
between two lease renewals of one node while the pods start (renewed every 10 s; at 40 s the node
would be declared dead).

Configurations:

- ``process``: one kubelet with the process runtime (each container a bubblewrap process; needs
  root and ``bwrap``), pods running ``busybox:1.36`` ``sleep 3600``, at 1, 10 and 100 pods;
- ``fake``: one ``python -m kubelet --fake-nodes 100`` process (100 simulated nodes, each with its
  own pod informer, node status and lease loops), at 100 and 1000 pods.

Baseline, measured in the same run against the same apiserver: the floor the control plane cannot
beat. The benchmark itself does, for each of the same N pods concurrently, the writes the control
plane needs at least — create, bind (the scheduler's write) and one status update to Running
(the kubelet's write) — observed by the same kind of watch. ``ratio`` is kplane's p99 over the
floor's p99.

Every process is stopped at the end, and so is every container process (they outlive their
kubelet by design; see :mod:`kplane.cluster.pods`).

Run one configuration while profiling: ``python -m bench.pod_startup --runtime fake --pods 1000``.
Environment knobs for looking into a run: ``KPLANE_BENCH_LOG_LEVEL`` (the components' log level,
default warning), ``KPLANE_BENCH_KEEP_LOGS=DIR`` (their logs and a per-pod trace in wall-clock
time are kept there, to line up with the kubelet's log), ``KPLANE_BENCH_TIMEOUT`` (seconds per wait).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import local_cluster, machine, percentile
from kplane.api import errors as api
from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.cluster.pods import stop_pod_processes
from kplane.devcluster import ROOT, stop_process

PODS, NODES, NS, LEASES = resolve("pods"), resolve("nodes"), resolve("namespaces"), resolve("leases")
SLO_P99_MS = 5000.0
FLOOR_SCHEDULER = "bench-floor"  # no scheduler serves it: the floor's pods are bound by the benchmark
FLOOR_NODE = "bench-floor-node"  # exists nowhere: nothing runs the floor's pods
RUNNING_TIMEOUT = float(os.environ.get("KPLANE_BENCH_TIMEOUT", "600"))  # s, per wait
IN_FLIGHT = 100  # creates (floor: create+bind+status chains) in flight at once; more time out at 1000 pods
LOG_LEVEL = os.environ.get("KPLANE_BENCH_LOG_LEVEL", "warning")  # of the scheduler and kubelets
KEEP_LOGS = os.environ.get("KPLANE_BENCH_KEEP_LOGS", "")  # a directory: the components' logs are copied there


# -- the observer -------------------------------------------------------------------------------


@dataclass
class Trace:
    """Per pod (by name): when its create call started, when a watch first saw it bound, and when
    a watch first saw it Running (time.perf_counter())."""

    created: dict[str, float] = field(default_factory=dict)
    scheduled: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    gone: dict[str, float] = field(default_factory=dict)
    all_running: asyncio.Event = field(default_factory=asyncio.Event)
    all_gone: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def startup(self) -> list[float]:
        return [self.running[n] - self.created[n] for n in self.running if n in self.created]

    def to_bound(self) -> list[float]:
        return [self.scheduled[n] - self.created[n] for n in self.scheduled if n in self.created]

    def bound_to_running(self) -> list[float]:
        return [self.running[n] - self.scheduled[n] for n in self.running if n in self.scheduled]


class PodWatch:
    """One watch stream on a namespace's pods (its own client and gRPC channel), started at the
    namespace's current resourceVersion so no event is missed."""

    def __init__(self, address: str, namespace: str, expected: int) -> None:
        self.client = Client([address], identity="bench-observer")
        self.namespace = namespace
        self.trace = Trace(expected=expected)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Trace:
        _, rv, _ = await self.client.list(PODS, namespace=self.namespace)
        self._task = asyncio.create_task(self._run(rv))
        return self.trace

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _run(self, rv: str) -> None:
        trace = self.trace
        async for etype, obj in self.client.watch(PODS, namespace=self.namespace, resource_version=rv):
            now = time.perf_counter()
            assert isinstance(obj, core_pb2.Pod)
            name = obj.metadata.name
            if etype == "DELETED":
                trace.gone.setdefault(name, now)
                if len(trace.gone) >= trace.expected:
                    trace.all_gone.set()
                continue
            if obj.spec.nodeName and name not in trace.scheduled:
                trace.scheduled[name] = now
            if obj.status.phase == "Running" and name not in trace.running:
                trace.running[name] = now
                if len(trace.running) >= trace.expected:
                    trace.all_running.set()


class LeaseWatch:
    """Node lease renewals as they are committed (a watch on kube-node-lease): the longest gap
    between two renewals of one node while pods start, and the longest silence up to the end.
    A kubelet renews every 10 s; a gap near the 40 s lease duration would get the node marked
    NotReady."""

    def __init__(self, address: str, nodes: list[str]) -> None:
        self.client = Client([address], identity="bench-lease-observer")
        self.nodes = set(nodes)
        self.last: dict[str, float] = {}
        self.max_gap = 0.0
        self.renewals = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LeaseWatch:
        _, rv, _ = await self.client.list(LEASES, namespace="kube-node-lease")
        self.started = time.perf_counter()
        self.last = dict.fromkeys(self.nodes, self.started)
        self._task = asyncio.create_task(self._run(rv))
        return self

    async def __aexit__(self, *exc: object) -> None:
        now = time.perf_counter()
        for last in self.last.values():
            self.max_gap = max(self.max_gap, now - last)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _run(self, rv: str) -> None:
        async for etype, obj in self.client.watch(LEASES, namespace="kube-node-lease", resource_version=rv):
            name = obj.metadata.name  # type: ignore[attr-defined]
            if etype != "MODIFIED" or name not in self.nodes:
                continue
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - self.last[name])
            self.last[name] = now
            self.renewals += 1


# -- pods ---------------------------------------------------------------------------------------


def bench_pod(name: str) -> dict[str, Any]:
    """``busybox:1.36`` running ``sleep 3600`` (the host's sleep in the container's view; the
    ``pause`` image would be a Python interpreter per pod, measuring Python start-up instead)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "pod-startup"}},
            "spec": {"terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "sleep", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def floor_status(pod: core_pb2.Pod) -> core_pb2.Pod:
    """What a kubelet writes for a running single-container pod, written unconditionally."""
    out = core_pb2.Pod()
    out.metadata.name = pod.metadata.name
    out.metadata.namespace = pod.metadata.namespace
    st = out.status
    st.phase = "Running"
    st.hostIP = "127.0.1.254"
    st.hostIPs.add(ip="127.0.1.254")
    st.podIP = "127.251.0.1"
    st.podIPs.add(ip="127.251.0.1")
    now = time.time()
    st.startTime.FromSeconds(int(now))
    for ctype in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
        cond = st.conditions.add(type=ctype, status="True")
        cond.lastTransitionTime.FromSeconds(int(now))
    cs = st.containerStatuses.add(name="sleep", image="busybox:1.36", imageID="sha256:floor", ready=True, started=True,
                                  containerID="fake://floor")
    cs.state.running.startedAt.FromSeconds(int(now))
    return out


async def _create_namespace(client: Client, name: str) -> None:
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def _wait(event: asyncio.Event, what: str, trace: Trace, timeout: float = RUNNING_TIMEOUT) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        raise TimeoutError(f"{what}: only {len(trace.running)}/{trace.expected} Running after {timeout}s") from None


async def measure_floor(client: Client, address: str, pods: int, tag: str) -> Trace:
    ns = f"floor-{tag}"
    await _create_namespace(client, ns)
    async with PodWatch(address, ns, pods) as trace:

        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int) -> None:
            body = bench_pod(f"p-{i}")
            body["spec"]["schedulerName"] = FLOOR_SCHEDULER
            async with sem:
                trace.created[body["metadata"]["name"]] = time.perf_counter()
                created = await client.create(PODS, body, namespace=ns)
                assert isinstance(created, core_pb2.Pod)
                await client.bind(ns, created.metadata.name, FLOOR_NODE, uid=created.metadata.uid)
                await client.update_status(PODS, floor_status(created))

        await asyncio.gather(*(one(i) for i in range(pods)))
        await _wait(trace.all_running, "floor", trace)
    await _delete_all(client, ns, pods, grace=0, wait=False)
    return trace


async def measure_kplane(client: Client, address: str, pods: int, tag: str,
                         nodes: list[str]) -> tuple[Trace, float, LeaseWatch]:
    """Create the pods, wait until all are Running, then delete them and wait until the kubelets
    have finished every delete. Returns the trace, the delete time (s) and the lease renewals."""
    ns = f"startup-{tag}"
    await _create_namespace(client, ns)
    async with PodWatch(address, ns, pods) as trace, LeaseWatch(address, nodes) as leases:

        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int) -> None:
            body = bench_pod(f"p-{i}")
            async with sem:
                trace.created[body["metadata"]["name"]] = time.perf_counter()
                await client.create(PODS, body, namespace=ns)

        await asyncio.gather(*(one(i) for i in range(pods)))
        await _wait(trace.all_running, "kplane", trace)
        t0 = time.perf_counter()
        await _delete_all(client, ns, pods, grace=None, wait=False)
        try:
            await asyncio.wait_for(trace.all_gone.wait(), RUNNING_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(f"only {len(trace.gone)}/{pods} pods deleted after {RUNNING_TIMEOUT}s") from None
        deleted_in = time.perf_counter() - t0
    return trace, deleted_in, leases


async def _delete_all(client: Client, ns: str, pods: int, *, grace: int | None, wait: bool) -> None:
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            for attempt in range(5):  # an overloaded apiserver may time out or cancel a call
                try:
                    await client.delete(PODS, f"p-{i}", namespace=ns, grace_period=grace)
                    return
                except api.NotFound:
                    return
                except (api.Timeout, api.InternalError, api.Unavailable):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(1.0)

    await asyncio.gather(*(one(i) for i in range(pods)))


def _ms(values: list[float], pct: float) -> float:
    return round(percentile([v * 1000 for v in values], pct), 1)


def summarise(kind: str, nodes: int, pods: int, trace: Trace, floor: Trace, deleted_in: float,
              leases: LeaseWatch, quick: bool) -> dict[str, Any]:
    samples, base = trace.startup(), floor.startup()
    span = max(trace.running.values()) - min(trace.created.values())
    floor_span = max(floor.running.values()) - min(floor.created.values())
    p99, base_p99 = _ms(samples, 99), _ms(base, 99)
    return {
        "bench": "pod_startup", "runtime": kind, "nodes": nodes, "pods": pods,
        "p50_ms": _ms(samples, 50), "p90_ms": _ms(samples, 90), "p99_ms": p99, "max_ms": _ms(samples, 100),
        "pods_per_s": round(pods / span, 1),
        "to_bound_p50_ms": _ms(trace.to_bound(), 50), "to_bound_p99_ms": _ms(trace.to_bound(), 99),
        "bound_to_running_p50_ms": _ms(trace.bound_to_running(), 50),
        "bound_to_running_p99_ms": _ms(trace.bound_to_running(), 99),
        "delete_all_s": round(deleted_in, 2),
        "lease_renewals": leases.renewals, "lease_max_gap_s": round(leases.max_gap, 1),
        "baseline_p50_ms": _ms(base, 50), "baseline_p99_ms": base_p99,
        "baseline_pods_per_s": round(pods / floor_span, 1),
        "ratio": round(p99 / base_p99, 2) if base_p99 else None,
        "slo_p99_ms": SLO_P99_MS, "within_slo": p99 <= SLO_P99_MS,
        "baseline": "create + bind + one Running status write per pod by the benchmark, N at once, same apiserver, "
                    "same run",
        "loadavg_1m": round(os.getloadavg()[0], 1), "quick": quick, **machine(),
    }


def _dump(path: Path, trace: Trace) -> None:
    """The per-pod times as wall-clock seconds, to line up with the components' logs."""
    offset = time.time() - time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        name: {"created": created + offset, "bound": trace.scheduled.get(name, 0) + offset,
               "running": trace.running.get(name, 0) + offset, "gone": trace.gone.get(name, 0) + offset}
        for name, created in trace.created.items()}))


# -- processes ----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")


def spawn(name: str, argv: list[str], tmp: Path) -> Proc:
    log = tmp / f"{name}.log"
    proc = subprocess.Popen([sys.executable, *argv], stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    return Proc(name, proc, log)


@contextlib.contextmanager
def processes(tmp: Path) -> Iterator[Callable[[str, list[str]], Proc]]:
    started: list[Proc] = []

    def start(name: str, argv: list[str]) -> Proc:
        p = spawn(name, argv, tmp)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in reversed(started):
            stop_process(p.proc, timeout=20)


async def wait_nodes_ready(client: Client, names: list[str], procs: list[Proc], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    want = set(names)
    while True:
        for p in procs:
            p.check()
        nodes, _ = await client.list_all(NODES)
        ready = {n.metadata.name for n in nodes  # type: ignore[attr-defined]
                 if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)}  # type: ignore[attr-defined]
        if want <= ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes not Ready after {timeout}s: {sorted(want - ready)[:5]}")
        await asyncio.sleep(0.5)


async def run_config(kind: str, sizes: list[int], *, fake_nodes: int = 100, quick: bool = False) -> list[dict[str, Any]]:
    """One cluster (etcd, apiserver, scheduler, kubelets) for one runtime; a round per size."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    if me is not None:  # SIGTERM (a `timeout`, a CI runner): clean up like after Ctrl-C
        loop.add_signal_handler(signal.SIGTERM, me.cancel)
    try:
        return await _run_config(kind, sizes, fake_nodes=fake_nodes, quick=quick)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run_config(kind: str, sizes: list[int], *, fake_nodes: int, quick: bool) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    tag = uuid.uuid4().hex[:6]
    with local_cluster() as cluster, tempfile.TemporaryDirectory(prefix="kplane-podstartup-") as tmp_name:
        tmp = Path(tmp_name)
        address = cluster.apiserver.address
        data_dir = tmp / "kubelet"
        try:
            with processes(tmp) as start:
                sched = start("scheduler", ["-m", "scheduler", "--server", address, "--leader-elect", "false",
                                            "--log-format", "json", "--log-level", LOG_LEVEL])
                if kind == "process":
                    names = [f"bench-{tag}"]
                    kubelets = [start("kubelet", [
                        "-m", "kubelet", "--node-name", names[0], "--server", address, "--data-dir", str(data_dir),
                        "--node-ip", "127.0.1.200", "--pod-cidr", "127.248.0.0/24", "--cpu", "64",
                        "--memory", "64Gi", "--max-pods", "250", "--log-format", "json", "--log-level", LOG_LEVEL])]
                else:
                    prefix = f"fake-{tag}"
                    names = [f"{prefix}-{i}" for i in range(fake_nodes)]
                    kubelets = [start("kubelet", [
                        "-m", "kubelet", "--fake-nodes", str(fake_nodes), "--node-name", prefix, "--server", address,
                        "--data-dir", str(data_dir), "--cpu", "32",
                        "--memory", "128Gi", "--max-pods", "110", "--log-format", "json",
                        "--log-level", LOG_LEVEL])]
                async with Client([address], identity="bench", timeout=120) as client:
                    await wait_nodes_ready(client, names, [sched, *kubelets])
                    for n in sizes:
                        round_tag = f"{tag}-{n}"
                        floor = await measure_floor(client, address, n, round_tag)
                        for p in (sched, *kubelets):
                            p.check()
                        trace, deleted_in, leases = await measure_kplane(client, address, n, round_tag, names)
                        if KEEP_LOGS:
                            _dump(Path(KEEP_LOGS) / f"{kind}-{n}-trace.json", trace)
                        results.append(summarise(kind, len(names), n, trace, floor, deleted_in, leases, quick))
        finally:
            if KEEP_LOGS:
                Path(KEEP_LOGS).mkdir(parents=True, exist_ok=True)
                for log in tmp.glob("*.log"):
                    shutil.copy(log, Path(KEEP_LOGS) / f"{kind}-{log.name}")
            if data_dir.exists():
                stop_pod_processes(data_dir, lambda _msg: None)
                shutil.rmtree(data_dir, ignore_errors=True)
    return results


async def run(quick: bool = False) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if shutil.which("bwrap") is not None:
        results += await run_config("process", [1, 10] if quick else [1, 10, 100], quick=quick)
    else:
        print("pod_startup: bubblewrap (bwrap) not found: skipping the process runtime", file=sys.stderr)
    if quick:
        results += await run_config("fake", [50], fake_nodes=10, quick=quick)
    else:
        results += await run_config("fake", [100, 1000], fake_nodes=100, quick=quick)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pod_startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", choices=["process", "fake"], required=True)
    parser.add_argument("--pods", type=int, action="append", help="pods per round (repeatable)")
    parser.add_argument("--fake-nodes", type=int, default=100)
    ns = parser.parse_args(argv)
    from kplane.logs import configure_logging

    configure_logging("bench", "json", "warning")
    sizes = ns.pods or ([1, 10, 100] if ns.runtime == "process" else [100])
    for result in asyncio.run(run_config(ns.runtime, sizes, fake_nodes=ns.fake_nodes)):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
