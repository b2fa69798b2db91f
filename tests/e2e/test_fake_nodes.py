"""`python -m kubelet --fake-nodes 5` as a real process against the session apiserver: five fake
nodes register Ready with leases; pods bound to them (spec.nodeName set directly, no scheduler) run
with their own pod IPs and Ready conditions, init containers complete, and deletes finish."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from procs import component_argv, start_logged
from procs import eventually as poll

from kplane.api import errors as api
from kplane.api.pb import coordination_pb2, core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, stop_process

pytestmark = pytest.mark.e2e

PODS, NODES, LEASES = resolve("pods"), resolve("nodes"), resolve("leases")
COUNT = 5


@dataclass
class FakeKubelet:
    prefix: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def nodes(self) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(COUNT)]


@pytest.fixture(scope="module")
def fake_kubelet(apiserver: APIServer, tmp_path_factory: Any) -> Iterator[FakeKubelet]:
    tmp = tmp_path_factory.mktemp("fake-nodes")
    prefix = f"f-{uuid.uuid4().hex[:6]}"
    log = tmp / "kubelet.log"
    proc = start_logged(component_argv("kubelet", apiserver.address, "--fake-nodes", str(COUNT), "--node-name", prefix,
                                       "--data-dir", str(tmp / "data"), "--node-lease-renew-interval", "1s"), log)
    k = FakeKubelet(prefix, log, proc)
    yield k

    async def cleanup() -> None:
        # pods first, while the fake kubelet runs to finish their deletes; then the nodes
        async with Client(apiserver.address) as c:
            for node in k.nodes:
                pods, _ = await c.list_all(PODS, field_selector=f"spec.nodeName={node}")
                for p in pods:
                    meta = p.metadata  # type: ignore[attr-defined]
                    try:
                        await c.delete(PODS, meta.name, namespace=meta.namespace, grace_period=0)
                    except api.NotFound:
                        pass
        stop_process(proc)
        async with Client(apiserver.address) as c:
            for node in k.nodes:
                for rt, ns in ((NODES, ""), (LEASES, "kube-node-lease")):
                    try:
                        await c.delete(rt, node, namespace=ns)
                    except api.NotFound:
                        pass

    asyncio.run(cleanup())
    print(log.read_text()[-4000:])


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    return await poll(check, what, timeout=timeout, interval=0.2, retry_on=(AssertionError, api.NotFound), show=str)


def condition(obj: Any, ctype: str) -> str:
    return next((c.status for c in obj.status.conditions if c.type == ctype), "")


@pytest.fixture
async def ready_nodes(client: Client, fake_kubelet: FakeKubelet) -> list[str]:
    async def ready() -> list[core_pb2.Node] | None:
        nodes = []
        for name in fake_kubelet.nodes:
            n = await client.get(NODES, name)
            assert isinstance(n, core_pb2.Node)
            if condition(n, "Ready") != "True":
                return None
            nodes.append(n)
        return nodes

    if fake_kubelet.proc.poll() is not None:
        pytest.fail(f"the fake kubelet exited: {fake_kubelet.log.read_text()[-3000:]}")
    await eventually(ready, f"{COUNT} fake nodes to register Ready")
    return fake_kubelet.nodes


def pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.25"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


async def test_fake_nodes_register_ready_with_renewed_leases(client: Client, ready_nodes: list[str]) -> None:
    cidrs = set()
    for name in ready_nodes:
        n = await client.get(NODES, name)
        assert isinstance(n, core_pb2.Node)
        assert n.status.nodeInfo.containerRuntimeVersion.startswith("fake://")
        assert n.metadata.labels["kubernetes.io/hostname"] == name
        assert n.status.capacity["pods"].string == "110"
        cidrs.add(n.spec.podCIDR)
    assert len(cidrs) == COUNT  # a pod range of its own per node
    first = {}
    for name in ready_nodes:
        lease = await client.get(LEASES, name, namespace="kube-node-lease")
        assert isinstance(lease, coordination_pb2.Lease)
        assert lease.spec.holderIdentity == name
        assert lease.metadata.ownerReferences[0].kind == "Node"
        first[name] = lease.spec.renewTime.ToNanoseconds()

    async def all_renewed() -> bool:
        for name in ready_nodes:
            lease = await client.get(LEASES, name, namespace="kube-node-lease")
            if lease.spec.renewTime.ToNanoseconds() <= first[name]:  # type: ignore[attr-defined]
                return False
        return True

    await eventually(all_renewed, "every lease to be renewed")


async def test_bound_pods_run_with_ips_and_ready_conditions(client: Client, namespace: str,
                                                           ready_nodes: list[str]) -> None:
    names = []
    for i, node in enumerate(ready_nodes):
        for j in range(2):
            name = f"p-{i}-{j}"
            names.append(name)
            await client.create(PODS, pod(name, node), namespace=namespace)
    # an image with no command and an init container: the fake runtime runs anything
    await client.create(PODS, pod("with-init", ready_nodes[0], initContainers=[
        {"name": "setup", "image": "busybox", "command": ["sh", "-c", "exit 0"]}]), namespace=namespace)
    names.append("with-init")

    async def all_running() -> list[core_pb2.Pod] | None:
        pods = []
        for name in names:
            p = await client.get(PODS, name, namespace=namespace)
            assert isinstance(p, core_pb2.Pod)
            if p.status.phase != "Running" or condition(p, "Ready") != "True":
                return None
            pods.append(p)
        return pods

    pods = await eventually(all_running, "every pod Running and Ready")
    ips = [p.status.podIP for p in pods]
    assert all(ip.startswith("127.") for ip in ips)
    assert len(set(ips)) == len(ips)  # unique across the five nodes
    for p in pods:
        assert p.status.hostIP and [i.ip for i in p.status.podIPs] == [p.status.podIP]
        assert {"Initialized", "ContainersReady", "Ready", "PodScheduled"} <= {c.type for c in p.status.conditions}
        app = p.status.containerStatuses[0]
        assert app.ready and app.started and app.state.running.HasField("startedAt")
        assert app.containerID.startswith("fake://")
    init = next(p for p in pods if p.metadata.name == "with-init").status.initContainerStatuses[0]
    assert init.state.terminated.exitCode == 0 and init.state.terminated.reason == "Completed"


async def test_deleting_a_pod_completes(client: Client, namespace: str, ready_nodes: list[str]) -> None:
    await client.create(PODS, pod("doomed", ready_nodes[1]), namespace=namespace)

    async def running() -> bool:
        p = await client.get(PODS, "doomed", namespace=namespace)
        return p.status.phase == "Running"  # type: ignore[attr-defined,no-any-return]

    await eventually(running, "pod doomed to run")
    _, deleted = await client.delete(PODS, "doomed", namespace=namespace)  # graceful: 30 s by default
    assert not deleted  # the kubelet finishes it

    async def gone() -> bool:
        try:
            await client.get(PODS, "doomed", namespace=namespace)
        except api.NotFound:
            return True
        return False

    await eventually(gone, "the fake kubelet to finish the delete", timeout=20)
