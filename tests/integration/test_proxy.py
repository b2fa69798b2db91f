"""Two node proxies (`python -m proxy` processes) against a real apiserver, forwarding real TCP.

The module runs its own etcd and apiserver with ClusterIPs from 127.98.64.0/18 (no other test's
proxy binds there); backends are asyncio servers of this test on 127.248.(40+w).x; the two
"nodes" have IPs 127.0.248.(40+w) and 127.0.248.(80+w) and open node ports there only.
Services here are selector-less: the test writes their Endpoints itself, so only the proxy is
under test."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from procs import component_argv, start_logged, worker_index
from procs import eventually as poll
from tcp_backend import Backend

from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, start_apiserver, start_etcd, stop_process

SVC, EP, NS = resolve("services"), resolve("endpoints"), resolve("namespaces")


W = 40 + worker_index() % 40
NODE_A, NODE_B = f"127.0.248.{W}", f"127.0.248.{W + 40}"
SERVICE_RANGE = "127.98.64.0/18"


@dataclass
class Cluster:
    apiserver: APIServer
    proxies: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]


def proxy_argv(node: str, ip: str, server: str) -> list[str]:
    return component_argv("proxy", server, "--node-name", node, "--node-ip", ip, "--nodeport-addresses", ip)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: Any) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("proxy")
    etcd = start_etcd(tmp)
    apiserver = start_apiserver(etcd, tmp, "--service-cluster-ip-range", SERVICE_RANGE)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    for node, ip in (("node-a", NODE_A), ("node-b", NODE_B)):
        logs[node] = tmp / f"proxy-{node}.log"
        procs[node] = start_logged(proxy_argv(node, ip, apiserver.address), logs[node])
    try:
        yield Cluster(apiserver, procs, logs)
    finally:
        for p in procs.values():
            stop_process(p)
        stop_process(apiserver.proc)
        stop_process(etcd.proc)
        for name, path in logs.items():
            print(f"--- {name} (tail)\n{path.read_text()[-3000:]}")


@pytest.fixture
async def kc(cluster: Cluster) -> AsyncIterator[Client]:
    async with Client([cluster.apiserver.address], identity="pytest") as c:
        yield c


@pytest.fixture
async def ns(kc: Client) -> AsyncIterator[str]:
    name = f"px-{int(time.time() * 1000) % 10**9}"
    await kc.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(api.NotFound):
        await kc.delete(NS, name)


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    started = [await Backend(f"pod-{i}", f"127.248.{W}.{i}", newline=False).start() for i in range(1, 4)]
    yield started
    for b in started:
        await b.stop()


async def ask(ip: str, port: int) -> str:
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        async with asyncio.timeout(10):
            return (await reader.read()).decode()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    return await poll(check, what, timeout=timeout, interval=0.1, retry_on=(OSError, AssertionError))


async def make_service(kc: Client, ns: str, name: str, backends: list[Backend], nodes: list[str] | None = None,
                       **spec: Any) -> Any:
    svc = await kc.create(SVC, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}},
                          namespace=ns)
    await write_endpoints(kc, ns, name, backends, nodes)
    return svc


async def write_endpoints(kc: Client, ns: str, name: str, backends: list[Backend],
                          nodes: list[str] | None = None) -> None:
    """Endpoints of the backends (one subset per backend: their ports differ)."""
    nodes = nodes or ["node-a"] * len(backends)
    body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
            "subsets": [{"addresses": [{"ip": b.ip, "nodeName": n}], "ports": [{"name": "http", "port": b.port}]}
                        for b, n in zip(backends, nodes, strict=True)]}
    try:
        current = await kc.get(EP, name, namespace=ns)
    except api.NotFound:
        await kc.create(EP, body, namespace=ns)
        return
    body["metadata"]["resourceVersion"] = current.metadata.resourceVersion  # type: ignore[attr-defined]
    await kc.update(EP, body, namespace=ns)


async def test_cluster_ip_spreads_over_endpoints_and_follows_endpoint_updates(
        cluster: Cluster, kc: Client, ns: str, backends: list[Backend]) -> None:
    """Connections to clusterIP:80 reach every endpoint; after an Endpoints update drops one, it
    gets nothing more."""
    svc = await make_service(kc, ns, "web", backends)
    vip = svc.spec.clusterIP
    assert vip.startswith("127.98.")

    async def all_three() -> bool:
        return {await ask(vip, 80) for _ in range(12)} == {"pod-1", "pod-2", "pod-3"}

    await eventually(all_three, "traffic on every endpoint")
    await write_endpoints(kc, ns, "web", backends[1:])

    async def only_two() -> bool:
        return {await ask(vip, 80) for _ in range(6)} == {"pod-2", "pod-3"}

    await eventually(only_two, "pod-1 dropped")
    hits = backends[0].hits
    answers = Counter([await ask(vip, 80) for _ in range(20)])
    assert backends[0].hits == hits and set(answers) == {"pod-2", "pod-3"}


async def test_both_node_proxies_serve_the_cluster_ip(cluster: Cluster, kc: Client, ns: str,
                                                      backends: list[Backend]) -> None:
    """Both proxies listen on the ClusterIP (SO_REUSEPORT); with one stopped (SIGSTOP would hang
    its share, so it is killed and restarted) the other serves every connection."""
    svc = await make_service(kc, ns, "web", backends)
    vip = svc.spec.clusterIP
    await eventually(lambda: ask(vip, 80), "service answering")

    async def both_listening() -> bool:  # the "listening" log lines of both proxies
        return all(f'"{vip}:80"' in cluster.logs[n].read_text() for n in ("node-a", "node-b"))

    await eventually(both_listening, "both proxies listening on the ClusterIP")
    stop_process(cluster.proxies["node-b"])
    answers = [await ask(vip, 80) for _ in range(20)]
    assert all(a.startswith("pod-") for a in answers)
    cluster.proxies["node-b"] = start_logged(proxy_argv("node-b", NODE_B, cluster.apiserver.address),
                                             cluster.logs["node-b"], append=True)


async def test_node_port_and_external_traffic_policy_local(cluster: Cluster, kc: Client, ns: str,
                                                           backends: list[Backend]) -> None:
    """Switching to NodePort opens nodeIP:nodePort on each node; externalTrafficPolicy Local sends
    a node's node-port traffic only to its own endpoints."""
    svc = await make_service(kc, ns, "web", backends, nodes=["node-a", "node-b", "node-b"])
    vip = svc.spec.clusterIP
    await eventually(lambda: ask(vip, 80), "service answering")
    body = object_to_dict(SVC, await kc.get(SVC, "web", namespace=ns))
    body["spec"]["type"] = "NodePort"
    updated = await kc.update(SVC, body, namespace=ns)
    node_port = updated.spec.ports[0].nodePort  # type: ignore[attr-defined]
    assert 30000 <= node_port <= 32767

    async def via_node_a() -> set[str]:
        got = {await ask(NODE_A, node_port) for _ in range(9)}
        return got if got == {"pod-1", "pod-2", "pod-3"} else set()

    await eventually(via_node_a, "node port on node-a reaching every endpoint")
    body = object_to_dict(SVC, updated)
    body["spec"]["externalTrafficPolicy"] = "Local"
    await kc.update(SVC, body, namespace=ns)

    async def local_only() -> bool:
        a = {await ask(NODE_A, node_port) for _ in range(6)}
        b = {await ask(NODE_B, node_port) for _ in range(6)}
        return a == {"pod-1"} and b == {"pod-2", "pod-3"}

    await eventually(local_only, "Local policy per node")
    assert {await ask(vip, 80) for _ in range(9)} == {"pod-1", "pod-2", "pod-3"}  # the ClusterIP keeps all


async def test_deleted_service_stops_listening_and_no_endpoints_rejects(cluster: Cluster, kc: Client, ns: str,
                                                                        backends: list[Backend]) -> None:
    """Without endpoints a connection is closed with nothing forwarded; a deleted Service's address
    stops accepting connections."""
    svc = await make_service(kc, ns, "web", [])
    vip = svc.spec.clusterIP

    async def rejected() -> bool:
        try:
            return await ask(vip, 80) == ""
        except ConnectionResetError:
            return True

    await eventually(rejected, "listening with no endpoints")
    await kc.delete(SVC, "web", namespace=ns)

    async def refused() -> bool:
        try:
            await ask(vip, 80)
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            return False
        return False

    await eventually(refused, "listener closed")
    assert all(p.poll() is None for p in cluster.proxies.values())
