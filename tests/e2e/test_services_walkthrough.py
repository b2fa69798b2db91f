"""The Services walkthrough with real processes: two kubelets (process runtime: every pod a real
`myapp` HTTP server on its own loopback IP), a node proxy beside each, the scheduler, the
controller-manager (ReplicaSet, Deployment, garbage collector, Endpoints) — driven with kpctl:

create deployment myapp (3 replicas) → expose port 80 → GETs of <clusterIP>/hostname.html name
different pods → scale to 4 adds an endpoint → a pod failing readiness drops out of the
Endpoints and gets no traffic → NodePort answers on a node address → `set image myapp=myapp:v2`
with maxUnavailable 0 switches the answers to v2 while a client looping through the ClusterIP
the whole time sees no failed request.

Isolation: the module runs its own etcd and apiserver (ClusterIPs from 127.98.128.0/17), node IPs
127.0.248.(200+w)/(220+w), pod ranges 127.248.(100+w).0/24 and 127.249.(100+w).0/24; the
proxies open node ports on their node IP only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from procs import (
    Components,
    component_argv,
    controller_manager_argv,
    kill_leftovers,
    kpctl,
    kubelet_argv,
    scheduler_argv,
    worker_index,
)
from procs import eventually as poll

from kplane.api import errors as api
from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, start_apiserver, start_etcd, stop_process

pytestmark = pytest.mark.e2e

PODS, NODES, EP, SVC, NS = (resolve("pods"), resolve("nodes"), resolve("endpoints"), resolve("services"),
                            resolve("namespaces"))
NAMESPACE = "walk"


W = worker_index() % 20
NODE_IPS = [f"127.0.248.{200 + W}", f"127.0.248.{220 + W}"]
POD_CIDRS = [f"127.248.{100 + W}.0/24", f"127.249.{100 + W}.0/24"]
SERVICE_RANGE = "127.98.128.0/17"


@dataclass
class Env:
    apiserver: APIServer
    nodes: list[str]
    tmp: Path
    logs: dict[str, Path] = field(default_factory=dict)

    def kpctl(self, *args: str, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return kpctl(self.apiserver.address, *args, namespace=NAMESPACE, stdin=stdin, timeout=timeout)

    async def akpctl(self, *args: str, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.kpctl, *args, stdin=stdin, timeout=timeout)

    async def ok(self, *args: str, stdin: str | None = None, timeout: float = 90) -> str:
        res = await self.akpctl(*args, stdin=stdin, timeout=timeout)
        assert res.returncode == 0, f"kpctl {' '.join(args)}: {res.stderr}{res.stdout}"
        return res.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory: Any) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("services")
    etcd = start_etcd(tmp)
    apiserver = start_apiserver(etcd, tmp, "--service-cluster-ip-range", SERVICE_RANGE)
    nodes = [f"sv{W}-a", f"sv{W}-b"]
    e = Env(apiserver, nodes, tmp)
    comps = Components(tmp, logs=e.logs)
    server = apiserver.address
    for node, ip, cidr in zip(nodes, NODE_IPS, POD_CIDRS, strict=True):
        comps.start(f"kubelet-{node}", kubelet_argv(server, node, tmp / "data" / node, node_ip=ip, pod_cidr=cidr,
                                                    cpu="4", memory="4Gi"))
        comps.start(f"proxy-{node}", component_argv("proxy", server, "--node-name", node, "--node-ip", ip,
                                                     "--nodeport-addresses", ip))
    comps.start("scheduler", scheduler_argv(server))
    comps.start("controller-manager", controller_manager_argv(server, "replicaset,deployment,garbagecollector,endpoints"))
    kubelets = [name for name in comps.procs if name.startswith("kubelet-")]
    try:
        yield e
    finally:
        async def cleanup() -> None:
            async with Client(apiserver.address) as c:
                pods, _ = await c.list_all(PODS)
                for p in pods:
                    meta = p.metadata  # type: ignore[attr-defined]
                    with contextlib.suppress(api.NotFound):
                        await c.delete(PODS, meta.name, namespace=meta.namespace, grace_period=1)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and (await c.list_all(PODS))[0]:
                    await asyncio.sleep(0.2)

        # controllers and proxies first: nothing re-creates what we delete
        comps.stop_procs(*(name for name in comps.procs if name not in kubelets))
        with contextlib.suppress(Exception):
            asyncio.run(cleanup())
        comps.stop_procs(*kubelets)
        kill_leftovers(tmp / "data")
        stop_process(apiserver.proc)
        stop_process(etcd.proc)
        comps.print_logs(2500)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 90.0) -> Any:
    return await poll(check, what, timeout=timeout, interval=0.3, retry_on=(AssertionError, api.NotFound, OSError))


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


async def get(url: str) -> str:
    return await asyncio.to_thread(http_get, url)


async def endpoint_ips(client: Client, name: str = "myapp") -> tuple[list[str], list[str]]:
    ep = await client.get(EP, name, namespace=NAMESPACE)
    assert isinstance(ep, core_pb2.Endpoints)
    ready = sorted(a.ip for s in ep.subsets for a in s.addresses)
    not_ready = sorted(a.ip for s in ep.subsets for a in s.notReadyAddresses)
    return ready, not_ready


async def deployment_pods(client: Client) -> list[core_pb2.Pod]:
    pods, _ = await client.list_all(PODS, namespace=NAMESPACE, label_selector="app=myapp")
    return [p for p in pods if isinstance(p, core_pb2.Pod) and not p.metadata.HasField("deletionTimestamp")
            and "pod-template-hash" in p.metadata.labels]


class Looper:
    """A client GETting the service in a loop from a thread, new connection per request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.last: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                body = http_get(self.url)
                version = "v2" if "Version: v2" in body else "v1" if "Version: v1" in body else body
                self.answers[version] += 1
                self.last = [*self.last, version][-20:]
            except Exception as exc:  # every failure counts; the test asserts there are none
                self.failures.append(f"{time.strftime('%H:%M:%S')} {exc!r}")

    def __enter__(self) -> Looper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


async def test_services_walkthrough(env: Env) -> None:
    async with Client(env.apiserver.address) as client:
        async def nodes_ready() -> bool:
            nodes, _ = await client.list_all(NODES)
            ready = {n.metadata.name for n in nodes if any(  # type: ignore[attr-defined]
                c.type == "Ready" and c.status == "True" for c in n.status.conditions)}  # type: ignore[attr-defined]
            return set(env.nodes) <= ready

        await eventually(nodes_ready, "both nodes Ready")
        await env.ok("create", "namespace", NAMESPACE)
        await env.ok("create", "deployment", "myapp", "--image=myapp:v1", "--replicas=3")
        await env.ok("rollout", "status", "deployment/myapp", "--timeout=120s", timeout=150)

        # expose --port=80 (kubectl's expose; a manifest with the same result where kpctl lacks it)
        res = await env.akpctl("expose", "deployment", "myapp", "--port=80")
        if res.returncode != 0:
            assert "No such command" in res.stderr, res.stderr
            manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp", "labels": {"app": "myapp"}},
                        "spec": {"selector": {"app": "myapp"}, "ports": [{"port": 80, "targetPort": 80,
                                                                          "protocol": "TCP"}]}}
            await env.ok("apply", "-f", "-", stdin=json.dumps(manifest))
        svc = await client.get(SVC, "myapp", namespace=NAMESPACE)
        vip = svc.spec.clusterIP  # type: ignore[attr-defined]
        assert vip.startswith("127.98."), vip

        # Endpoints: the three pods; GETs through the ClusterIP name different pods
        names = {p.metadata.name for p in await deployment_pods(client)}
        assert len(names) == 3

        async def three_ready() -> bool:
            return len((await endpoint_ips(client))[0]) == 3

        await eventually(three_ready, "3 ready endpoints")

        async def spread(expected: set[str]) -> bool:
            seen = {(await get(f"http://{vip}/hostname.html")).strip() for _ in range(4 * len(expected))}
            return seen == expected

        await eventually(lambda: spread(names), "answers from every pod through the ClusterIP")

        # scale to 4: one more endpoint, and it answers too
        await env.ok("scale", "deployment/myapp", "--replicas=4")

        async def four() -> bool:
            return len((await endpoint_ips(client))[0]) == 4 and len(await deployment_pods(client)) == 4

        await eventually(four, "4 ready endpoints")
        names = {p.metadata.name for p in await deployment_pods(client)}
        await eventually(lambda: spread(names), "answers from 4 pods")

        # a pod failing readiness: in notReadyAddresses, never answering through the service
        probe_pod = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "flaky", "labels": {"app": "myapp"}},
            "spec": {"containers": [{"name": "myapp", "image": "myapp:v1",
                                     "readinessProbe": {"exec": {"command": ["test", "-e", "/state/ready"]},
                                                        "periodSeconds": 1, "failureThreshold": 1},
                                     "volumeMounts": [{"name": "state", "mountPath": "/state"}]}],
                     "volumes": [{"name": "state", "emptyDir": {}}]}}
        await env.ok("apply", "-f", "-", stdin=json.dumps(probe_pod))

        async def flaky_ip() -> str:
            pod = await client.get(PODS, "flaky", namespace=NAMESPACE)
            return pod.status.podIP  # type: ignore[attr-defined,no-any-return]

        ip = await eventually(flaky_ip, "flaky has an IP")

        async def not_ready() -> bool:
            return ip in (await endpoint_ips(client))[1]

        await eventually(not_ready, "flaky in notReadyAddresses")
        answers = {(await get(f"http://{vip}/hostname.html")).strip() for _ in range(20)}
        assert "flaky" not in answers and answers <= names
        # a pod created after the Service sees it in its environment (Kubernetes' service variables)
        out = await env.ok("exec", "flaky", "--", "sh", "-c", "echo $MYAPP_SERVICE_HOST:$MYAPP_SERVICE_PORT")
        assert out.strip() == f"{vip}:80"
        await env.ok("exec", "flaky", "--", "touch", "/state/ready")

        async def ready() -> bool:
            return ip in (await endpoint_ips(client))[0]

        await eventually(ready, "flaky ready")
        await eventually(lambda: spread(names | {"flaky"}), "flaky answering")
        await env.ok("exec", "flaky", "--", "rm", "/state/ready")
        await eventually(not_ready, "flaky failing readiness again")
        answers = {(await get(f"http://{vip}/hostname.html")).strip() for _ in range(20)}
        assert "flaky" not in answers and answers == names
        await env.ok("delete", "pod", "flaky", "--grace-period=1")

        # NodePort: a node address answers too
        await env.ok("patch", "service", "myapp", "-p", '{"spec":{"type":"NodePort"}}')
        svc = await client.get(SVC, "myapp", namespace=NAMESPACE)
        node_port = svc.spec.ports[0].nodePort  # type: ignore[attr-defined]
        assert 30000 <= node_port <= 32767

        async def via_node_port() -> bool:
            bodies = [await get(f"http://{node_ip}:{node_port}/") for node_ip in NODE_IPS]
            return all("Version: v1" in body for body in bodies)

        await eventually(via_node_port, "the node port answering on both node addresses")

        # rolling update to v2 with maxUnavailable 0 while a client loops through the ClusterIP
        await env.ok("patch", "deployment", "myapp", "-p",
                     '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}')
        with Looper(f"http://{vip}/") as looper:
            await eventually(lambda: asyncio.sleep(0, looper.answers["v1"] >= 20), "the client loop running")
            await env.ok("set", "image", "deployment/myapp", "myapp=myapp:v2")
            await env.ok("rollout", "status", "deployment/myapp", "--timeout=180s", timeout=200)

            async def all_v2() -> bool:
                return len(looper.last) == 20 and set(looper.last) == {"v2"}

            await eventually(all_v2, "only v2 answers")
        assert looper.failures == [], f"{len(looper.failures)} failed requests: {looper.failures[:5]}"
        assert looper.answers["v1"] > 0 and looper.answers["v2"] > 0
        assert set(looper.answers) == {"v1", "v2"}, looper.answers
        print(f"requests during the rollout: {dict(looper.answers)}, failures: 0")
