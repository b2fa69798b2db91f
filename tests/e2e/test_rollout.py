"""The Deployment walkthrough with real processes: a kubelet with the process runtime (every pod a
real `myapp` HTTP server on its own loopback IP), the scheduler and the controller-manager
(ReplicaSet, Deployment, garbage collector), driven only with kpctl — create, scale, set image,
rollout status/history/undo/pause/resume/restart, describe — while a watch checks that the
rolling update keeps within maxSurge and maxUnavailable, and curl-like requests to pod IPs show
which version is serving.

The session apiserver is shared with other e2e modules: our pods go only to our node (a
nodeSelector), and the node is deleted at teardown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from procs import (
    Components,
    controller_manager_argv,
    kill_leftovers,
    kpctl,
    kubelet_argv,
    scheduler_argv,
    worker_index,
)
from procs import eventually as poll

from kplane.api import errors as api
from kplane.api.pb import apps_pb2, core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer

pytestmark = pytest.mark.e2e

PODS, NODES, DEPLOY, NS = resolve("pods"), resolve("nodes"), resolve("deployments"), resolve("namespaces")
REPLICAS, SURGE, UNAVAILABLE = 4, 1, 1


@dataclass
class Env:
    apiserver: APIServer
    node: str
    ns: str
    tmp: Path
    logs: dict[str, Path] = field(default_factory=dict)

    def kpctl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return kpctl(self.apiserver.address, *args, namespace=self.ns, stdin=stdin, timeout=timeout)

    async def akpctl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.kpctl, *args, stdin=stdin, timeout=timeout)


@pytest.fixture(scope="module")
def env(apiserver: APIServer, tmp_path_factory: Any) -> Iterator[Env]:
    n = worker_index() + 40
    tmp = tmp_path_factory.mktemp("rollout")
    node = f"k-{uuid.uuid4().hex[:6]}"
    e = Env(apiserver, node, f"ro-{uuid.uuid4().hex[:8]}", tmp)
    comps = Components(tmp, logs=e.logs)
    comps.start("kubelet", kubelet_argv(apiserver.address, node, tmp / "data", node_ip=f"127.0.1.{n}",
                                        pod_cidr=f"127.246.{n}.0/24", cpu="8", memory="8Gi"))
    comps.start("scheduler", scheduler_argv(apiserver.address))
    comps.start("controller-manager", controller_manager_argv(apiserver.address,
                                                              "replicaset,deployment,garbagecollector"))
    try:
        yield e
    finally:
        async def cleanup() -> None:
            async with Client(apiserver.address) as c:
                with contextlib.suppress(api.NotFound):
                    await c.delete(NS, e.ns)
                pods, _ = await c.list_all(PODS, field_selector=f"spec.nodeName={node}")
                for p in pods:
                    meta = p.metadata  # type: ignore[attr-defined]
                    with contextlib.suppress(api.NotFound):
                        await c.delete(PODS, meta.name, namespace=meta.namespace, grace_period=1)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    left, _ = await c.list_all(PODS, field_selector=f"spec.nodeName={node}")
                    if not left:
                        break
                    await asyncio.sleep(0.2)
                with contextlib.suppress(api.NotFound):
                    await c.delete(NODES, node)

        comps.stop_procs("scheduler", "controller-manager")  # the controllers first: nothing re-creates what we delete
        asyncio.run(cleanup())
        comps.stop_procs("kubelet")
        kill_leftovers(tmp / "data")
        comps.print_logs(3000)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> Any:
    return await poll(check, what, timeout=timeout, interval=0.3, retry_on=(AssertionError, api.NotFound, OSError))


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return str(resp.read().decode())


@dataclass
class Bounds:
    """What a watch on the namespace's pods saw: the most pods at once (not terminating, not
    finished) and the fewest ready ones, and every image that ran."""

    max_total: int = 0
    min_ready: int = 1 << 30
    events: int = 0
    images: set[str] = field(default_factory=set)


@contextlib.asynccontextmanager
async def watch_bounds(client: Client, namespace: str) -> AsyncIterator[Bounds]:
    bounds = Bounds()
    items, rv = await client.list_all(PODS, namespace=namespace)
    state: dict[str, core_pb2.Pod] = {p.metadata.name: p for p in items if isinstance(p, core_pb2.Pod)}  # type: ignore[attr-defined]

    def observe() -> None:
        live = [p for p in state.values() if not p.metadata.HasField("deletionTimestamp")
                and p.status.phase not in ("Succeeded", "Failed")]
        ready = [p for p in live if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)]
        bounds.max_total = max(bounds.max_total, len(live))
        bounds.min_ready = min(bounds.min_ready, len(ready))
        bounds.images.update(p.spec.containers[0].image for p in live)

    async def run() -> None:
        async for etype, obj in client.watch(PODS, namespace=namespace, resource_version=rv):
            assert isinstance(obj, core_pb2.Pod)
            bounds.events += 1
            if etype == "DELETED":
                state.pop(obj.metadata.name, None)
            elif etype in ("ADDED", "MODIFIED"):
                state[obj.metadata.name] = obj
            observe()

    observe()
    task = asyncio.create_task(run())
    try:
        yield bounds
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def serving(client: Client, namespace: str, version: str) -> bool:
    """Every running pod of the deployment answers HTTP on its pod IP with `version`."""
    pods, _ = await client.list_all(PODS, namespace=namespace, label_selector="app=web")
    live = [p for p in pods if isinstance(p, core_pb2.Pod) and not p.metadata.HasField("deletionTimestamp")]
    if len(live) != REPLICAS or not all(p.status.podIP for p in live):
        return False
    for p in live:
        body = await asyncio.to_thread(http_get, f"http://{p.status.podIP}/")
        if f"Version: {version}" not in body:
            return False
    return True


async def test_deployment_walkthrough(env: Env) -> None:
    async with Client(env.apiserver.address) as client:
        async def node_ready() -> bool:
            n = await client.get(NODES, env.node)
            return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)  # type: ignore[attr-defined]

        await eventually(node_ready, "our node to be Ready")
        assert (await env.akpctl("create", "namespace", env.ns)).returncode == 0

        # kpctl create deployment builds the manifest (as kubectl does); we pin it to our node and
        # set the rolling-update budget before creating it
        dry = await env.akpctl("create", "deployment", "web", "--image=myapp:v1", "--replicas=2", "--port=80",
                               "--dry-run=client", "-o", "json")
        assert dry.returncode == 0, dry.stderr
        manifest = json.loads(dry.stdout)
        assert manifest["spec"]["template"]["spec"]["containers"][0]["name"] == "myapp"
        manifest["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": env.node}
        manifest["spec"]["strategy"] = {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": SURGE, "maxUnavailable": UNAVAILABLE}}
        created = await env.akpctl("create", "-f", "-", stdin=json.dumps(manifest))
        assert created.stdout.strip() == "deployment.apps/web created", created.stderr
        status = await env.akpctl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.splitlines()[-1] == 'deployment "web" successfully rolled out'

        scaled = await env.akpctl("scale", "deployment", "web", f"--replicas={REPLICAS}")
        assert scaled.stdout.strip() == "deployment.apps/web scaled", scaled.stderr
        wrong = await env.akpctl("scale", "deployment/web", "--current-replicas=9", "--replicas=1")
        assert wrong.returncode == 1 and wrong.stderr.strip() == f"error: Expected replicas to be 9, was {REPLICAS}"
        status = await env.akpctl("rollout", "status", "deploy/web", "--timeout=120s", timeout=150)
        assert status.returncode == 0, status.stdout + status.stderr
        await eventually(lambda: serving(client, env.ns, "v1"), f"{REPLICAS} pods serving v1")

        # the rolling update, watched
        async with watch_bounds(client, env.ns) as bounds:
            updated = await env.akpctl("set", "image", "deployment/web", "myapp=myapp:v2", "--record")
            assert updated.stdout.strip() == "deployment.apps/web image updated", updated.stderr
            status = await env.akpctl("rollout", "status", "deployment/web", "--timeout=180s", timeout=200)
            assert status.returncode == 0, status.stdout + status.stderr
            await eventually(lambda: serving(client, env.ns, "v2"), f"{REPLICAS} pods serving v2")
        lines = status.stdout.splitlines()
        assert lines[-1] == 'deployment "web" successfully rolled out'
        assert all(line.startswith('Waiting for deployment "web" rollout to finish: ') for line in lines[:-1]), lines
        assert bounds.images == {"myapp:v1", "myapp:v2"} and bounds.events > 0
        assert bounds.max_total <= REPLICAS + SURGE, bounds
        assert bounds.min_ready >= REPLICAS - UNAVAILABLE, bounds

        history = await env.akpctl("rollout", "history", "deployment/web")
        assert history.stdout == (
            "deployment.apps/web \n"
            "REVISION  CHANGE-CAUSE\n"
            "1         <none>\n"
            "2         kpctl set image deployment/web myapp=myapp:v2 --record=true\n\n"), history.stdout
        one = await env.akpctl("rollout", "history", "deployment/web", "--revision=1")
        assert one.stdout.startswith("deployment.apps/web with revision #1\nPod Template:\n"), one.stdout
        assert "myapp:v1" in one.stdout and "pod-template-hash=" in one.stdout

        # a revision that does not exist: an error, and nothing changes
        generation = (await client.get(DEPLOY, "web", namespace=env.ns)).metadata.generation  # type: ignore[attr-defined]
        missing = await env.akpctl("rollout", "undo", "deployment/web", "--to-revision=7")
        assert missing.returncode == 1
        assert missing.stderr.strip() == "error: unable to find specified revision 7 in history"
        assert (await client.get(DEPLOY, "web", namespace=env.ns)).metadata.generation == generation  # type: ignore[attr-defined]

        # back to revision 1: it becomes revision 3, and v1 serves again
        undo = await env.akpctl("rollout", "undo", "deployment/web", "--to-revision=1")
        assert undo.stdout.strip() == "deployment.apps/web rolled back", undo.stderr
        status = await env.akpctl("rollout", "status", "deployment/web", "--timeout=180s", timeout=200)
        assert status.returncode == 0, status.stdout + status.stderr
        await eventually(lambda: serving(client, env.ns, "v1"), f"{REPLICAS} pods serving v1 again")
        history = await env.akpctl("rollout", "history", "deployment/web")
        assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line] == ["2", "3"], history.stdout
        d = await client.get(DEPLOY, "web", namespace=env.ns)
        assert isinstance(d, apps_pb2.Deployment)
        assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
        assert d.spec.template.spec.containers[0].image == "myapp:v1"

        # describe shows the strategy, the conditions, the replica sets and the scaling events
        described = (await env.akpctl("describe", "deployment", "web")).stdout
        assert "RollingUpdateStrategy:  1 max unavailable, 1 max surge" in described
        assert "Available      True    MinimumReplicasAvailable" in described
        assert "NewReplicaSetAvailable" in described
        assert f"({REPLICAS}/{REPLICAS} replicas created)" in described
        assert "ScalingReplicaSet" in described and "deployment-controller" in described

        # pause / resume / restart
        assert (await env.akpctl("rollout", "pause", "deployment/web")).stdout.strip() == "deployment.apps/web paused"
        again = await env.akpctl("rollout", "pause", "deployment/web")
        assert again.returncode == 1
        assert again.stderr.strip() == 'error: deployments.apps "web" is already paused'
        restart = await env.akpctl("rollout", "restart", "deployment/web")
        assert restart.returncode == 1 and "can't restart paused deployment (run rollout resume first)" in restart.stderr
        assert (await env.akpctl("rollout", "resume", "deployment/web")).stdout.strip() == "deployment.apps/web resumed"
        restart = await env.akpctl("rollout", "restart", "deployment/web")
        assert restart.stdout.strip() == "deployment.apps/web restarted", restart.stderr
        status = await env.akpctl("rollout", "status", "deployment/web", "--timeout=180s", timeout=200)
        assert status.returncode == 0, status.stdout + status.stderr
        d = await client.get(DEPLOY, "web", namespace=env.ns)
        assert isinstance(d, apps_pb2.Deployment)
        assert "kubectl.kubernetes.io/restartedAt" in d.spec.template.metadata.annotations
        assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "4"


async def test_rollout_status_times_out(env: Env) -> None:
    """A rollout that cannot finish (an image that does not exist): --timeout ends the wait with
    kubectl's error and exit code 1, having printed where it got stuck."""
    # its own Deployment: tests of this module may run on different xdist workers, in any order
    await env.akpctl("create", "namespace", env.ns)  # the walkthrough's, unless it ran first here
    created = await env.akpctl("create", "deployment", "stuck", "--image=myapp:v1", "--replicas=1")
    assert created.returncode == 0, created.stderr
    updated = await env.akpctl("set", "image", "deployment/stuck", "myapp=nosuch:v9")
    assert updated.returncode == 0, updated.stderr
    status = await env.akpctl("rollout", "status", "deployment/stuck", "--timeout=3s", timeout=60)
    assert status.returncode == 1
    assert status.stderr.strip() == "error: timed out waiting for the condition"
    assert status.stdout.startswith('Waiting for deployment "stuck" rollout to finish: ')
    once = await env.akpctl("rollout", "status", "deployment/stuck", "--watch=false")
    assert once.returncode == 0 and len(once.stdout.splitlines()) == 1
