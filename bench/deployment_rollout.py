"""deployment_rollout: a Deployment of R replicas on N fake nodes, created and then rolled to a new
image, through the whole control plane as separate processes.

Real processes: etcd, the apiserver, the scheduler (``python -m scheduler``), the controller-manager
(``python -m controller_manager --controllers replicaset,deployment``) and one kubelet process
running N simulated nodes (``python -m kubelet --fake-nodes N``: containers "run" the moment they
start, so what is measured is the control plane, not container start-up).

Figures, each from a poll of the Deployment's status:

- ``create_s`` / ``create_pods_per_s``: Deployment created → ``availableReplicas == R`` with every
  replica updated (the Deployment controller creates the ReplicaSet, the ReplicaSet controller
  the pods, the scheduler binds them, the kubelets report them Running and Ready);
- ``update_s`` / ``update_pods_per_s``: the image changed (RollingUpdate, 25% surge / 25%
  unavailable) → the rollout complete: R new pods created, bound and ready, R old ones deleted;
- ``create_writes`` / ``update_writes``: etcd revisions consumed meanwhile (every writer: pods,
  bindings, statuses, ReplicaSets, events, and the nodes' own lease renewals), and what that is
  per second (``*_writes_per_s``).

Baseline, measured in the same run against the same apiserver before the components start: the
raw write rate of the apiserver — R pod creates, 64 in flight (``baseline_creates_per_s``). Each
pod of a rollout costs several writes (create, bind, status, and for the update the old pod's
delete and final removal), so ``create_ratio`` (create_writes_per_s / baseline) says how close the
control plane comes to the apiserver's ceiling.

``python -m bench deployment_rollout [--quick]`` (quick: 200 replicas on 20 nodes), or one size:
``python -m bench.deployment_rollout --replicas 1000 --nodes 100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import local_cluster, machine
from kplane.api import errors as api
from kplane.api.pb import apps_pb2
from kplane.api.resources import object_from_dict, resolve
from kplane.client.client import Client
from kplane.devcluster import ROOT, stop_process

PODS, NODES, NS, DEPLOY = resolve("pods"), resolve("nodes"), resolve("namespaces"), resolve("deployments")
IN_FLIGHT = 64
TIMEOUT = 900.0  # s, per phase


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "ceiling"}},
            "spec": {"containers": [{"name": "c", "image": "myapp:v1",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "myapp:v1",
                                                           "resources": {"requests": {"cpu": "10m",
                                                                                      "memory": "16Mi"}}}]}}}}


async def _bounded(n: int, fn: Any) -> None:
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with sem:
            await fn(i)

    await asyncio.gather(*(one(i) for i in range(n)))


async def etcd_revision(client: Client) -> int:
    _, rv, _ = await client.list(NS, limit=1)
    return int(rv)


async def measure_ceiling(client: Client, n: int, tag: str) -> float:
    """Pod creates per second through the apiserver (protobuf bodies, as components send them)."""
    ns = f"ceiling-{tag}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    bodies = [object_from_dict(pod(f"c-{i}"))[1] for i in range(n)]
    t0 = time.perf_counter()
    await _bounded(n, lambda i: client.create(PODS, bodies[i], namespace=ns))
    rate = n / (time.perf_counter() - t0)
    # gone before any scheduler or kubelet could see them (unbound pods are removed at once)
    await _bounded(n, lambda i: client.delete(PODS, f"c-{i}", namespace=ns))
    return rate


@contextlib.contextmanager
def components(address: str, nodes: int, prefix: str, tmp: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> None:
        log = open(tmp / f"{name}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", *argv, "--server", address, "--log-format", "json",
                                       "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))

    try:
        start("kubelet", "kubelet", "--fake-nodes", str(nodes), "--node-name", prefix, "--data-dir",
              str(tmp / "kubelet"), "--cpu", "64", "--memory", "256Gi", "--max-pods", "250")
        start("scheduler", "scheduler", "--leader-elect=false")
        start("controller-manager", "controller_manager", "--leader-elect=false",
              "--controllers", "replicaset,deployment")
        yield procs
    finally:
        for p in reversed(procs):
            stop_process(p)


async def wait_nodes_ready(client: Client, prefix: str, n: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"component exited early: {p.args!r}")
        items, _ = await client.list_all(NODES)
        ready = [x for x in items if x.metadata.name.startswith(prefix)  # type: ignore[attr-defined]
                 and any(c.type == "Ready" and c.status == "True" for c in x.status.conditions)]  # type: ignore[attr-defined]
        if len(ready) == n:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{n} nodes not Ready after 180 s")


async def wait_complete(client: Client, ns: str, replicas: int, generation: int,
                        procs: list[subprocess.Popen[bytes]]) -> float:
    """Poll until the rollout of ``generation`` is complete; returns time.perf_counter() then."""
    deadline = time.monotonic() + TIMEOUT
    next_report = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            d = await client.get(DEPLOY, "web", namespace=ns)
        except (api.Unavailable, api.Timeout) as exc:  # an overloaded etcd: the rollout goes on, ask again
            print(f"deployment_rollout: poll failed ({exc}); retrying", file=sys.stderr)
            await asyncio.sleep(0.5)
            continue
        assert isinstance(d, apps_pb2.Deployment)
        st = d.status
        if time.monotonic() >= next_report:
            next_report += 10
            print(f"deployment_rollout: generation {generation}: {st.updatedReplicas} updated, {st.replicas} total, "
                  f"{st.availableReplicas} available of {replicas}", file=sys.stderr)
        if (st.observedGeneration >= generation and st.updatedReplicas == replicas and st.replicas == replicas
                and st.availableReplicas == replicas):
            return time.perf_counter()
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"component exited during the rollout: {p.args!r}")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"rollout of generation {generation} not complete after {TIMEOUT} s")


async def one_size(replicas: int, nodes: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    with local_cluster() as cluster, tempfile.TemporaryDirectory(prefix="kplane-bench-deploy-") as tmpdir:
        address = cluster.apiserver.address
        async with Client([address], identity="bench") as client:
            ceiling = await measure_ceiling(client, replicas, tag)
            prefix = f"bench-{tag}"
            with components(address, nodes, prefix, Path(tmpdir)) as procs:
                await wait_nodes_ready(client, prefix, nodes, procs)
                ns = f"deploy-{tag}"
                await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                rev0 = await etcd_revision(client)
                t0 = time.perf_counter()
                created = await client.create(DEPLOY, deployment(replicas), namespace=ns)
                t1 = await wait_complete(client, ns, replicas, created.metadata.generation, procs)  # type: ignore[attr-defined]
                rev1 = await etcd_revision(client)
                patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "myapp:v2"}]}}}}
                t2 = time.perf_counter()
                updated = await client.patch(DEPLOY, "web", patch, namespace=ns, patch_type="strategic")
                t3 = await wait_complete(client, ns, replicas, updated.metadata.generation, procs)  # type: ignore[attr-defined]
                rev2 = await etcd_revision(client)
    create_s, update_s = t1 - t0, t3 - t2
    create_writes, update_writes = rev1 - rev0, rev2 - rev1
    return {
        "bench": "deployment_rollout", "replicas": replicas, "nodes": nodes,
        "create_s": round(create_s, 2), "create_pods_per_s": round(replicas / create_s, 1),
        "update_s": round(update_s, 2), "update_pods_per_s": round(replicas / update_s, 1),
        "create_writes": create_writes, "create_writes_per_s": round(create_writes / create_s, 1),
        "update_writes": update_writes, "update_writes_per_s": round(update_writes / update_s, 1),
        "baseline_creates_per_s": round(ceiling, 1),
        "create_ratio": round(create_writes / create_s / ceiling, 3),
        "update_ratio": round(update_writes / update_s / ceiling, 3),
        "baseline": "raw pod creates through the same apiserver, 64 in flight, same run, before the components start",
        "strategy": "RollingUpdate 25% surge / 25% unavailable",
    }


async def run(quick: bool = False, *, replicas: int | None = None, nodes: int | None = None) -> list[dict[str, Any]]:
    sizes = [(replicas or (200 if quick else 1000), nodes or (20 if quick else 100))]
    results = []
    for r, n in sizes:
        result = await one_size(r, n)
        result.update(quick=quick, **machine())
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deployment_rollout", description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    ns = parser.parse_args(argv)
    from kplane.logs import configure_logging

    configure_logging("bench", "json", "warning")
    for result in asyncio.run(run(replicas=ns.replicas, nodes=ns.nodes)):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
