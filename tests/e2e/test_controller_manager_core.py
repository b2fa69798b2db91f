"""The controller-manager as a real process (ReplicaSet, ReplicationController, garbage
collector, namespace controllers) with a real scheduler and a kubelet running three fake nodes,
driven with kpctl: replicas are kept, replaced and scaled; cascading deletion in the background,
orphan and foreground; namespace deletion; a SIGKILL mid-scale-up never over-creates.

Other e2e modules share the session apiserver: our pods go only to our nodes (a nodeSelector on
a per-module label), and the nodes are deleted at teardown."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import component_argv, controller_manager_argv, kpctl, scheduler_argv, start_logged

from kplane.api import errors as api
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, stop_process

pytestmark = pytest.mark.e2e

PODS, RS, NODES, NS = resolve("pods"), resolve("replicasets"), resolve("nodes"), resolve("namespaces")
CONTROLLERS = "replicaset,replicationcontroller,garbagecollector,namespace"


class Cluster:
    def __init__(self, apiserver: APIServer, tmp: Path, tag: str) -> None:
        self.apiserver = apiserver
        self.tmp = tmp
        self.tag = tag
        self.node_prefix = f"f-{tag}"
        self.cm_log = tmp / "controller-manager.log"
        self.cm: subprocess.Popen[bytes] | None = None

    def start_controller_manager(self) -> None:
        self.cm = start_logged(controller_manager_argv(self.apiserver.address, CONTROLLERS), self.cm_log, append=True)

    def kill_controller_manager(self) -> None:
        assert self.cm is not None
        self.cm.send_signal(signal.SIGKILL)
        self.cm.wait(10)

    def kpctl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return kpctl(self.apiserver.address, *args, stdin=stdin)


@pytest.fixture(scope="module")
def cluster(apiserver: APIServer, tmp_path_factory: Any) -> Iterator[Cluster]:
    tag = uuid.uuid4().hex[:6]
    tmp = tmp_path_factory.mktemp("cm-core")
    c = Cluster(apiserver, tmp, tag)
    kubelet = start_logged(component_argv("kubelet", apiserver.address, "--fake-nodes", "3", "--node-name",
                                          c.node_prefix, "--node-labels", f"cm-e2e={tag}",
                                          "--data-dir", str(tmp / "kubelet"), "--node-lease-renew-interval", "2s"),
                           tmp / "kubelet.log")
    scheduler = start_logged(scheduler_argv(apiserver.address), tmp / "scheduler.log")
    c.start_controller_manager()
    try:
        yield c
    finally:
        if c.cm is not None:
            stop_process(c.cm)
        stop_process(scheduler)

        async def cleanup() -> None:
            async with Client(apiserver.address) as client:
                for i in range(3):
                    name = f"{c.node_prefix}-{i}"
                    pods, _ = await client.list_all(PODS, field_selector=f"spec.nodeName={name}")
                    for p in pods:
                        meta = p.metadata  # type: ignore[attr-defined]
                        try:
                            await client.delete(PODS, meta.name, namespace=meta.namespace, grace_period=0)
                        except api.NotFound:
                            pass

        asyncio.run(cleanup())
        stop_process(kubelet)

        async def delete_nodes() -> None:
            async with Client(apiserver.address) as client:
                for i in range(3):
                    try:
                        await client.delete(NODES, f"{c.node_prefix}-{i}")
                    except api.NotFound:
                        pass

        asyncio.run(delete_nodes())
        print(c.cm_log.read_text()[-4000:])


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"cm-{uuid.uuid4().hex[:8]}"
    result = cluster.kpctl("create", "namespace", name)
    assert result.returncode == 0, result.stderr
    return name


def rs_manifest(name: str, replicas: int, tag: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"nodeSelector": {"cm-e2e": tag}, "terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "c", "image": "busybox:1.36",
                                                       "command": ["sleep", "3600"]}]}}}})


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def pods(client: Client, namespace: str, app: str) -> list[Any]:
    items, _ = await client.list_all(PODS, namespace=namespace, label_selector=f"app={app}")
    return items


async def active(client: Client, namespace: str, app: str) -> list[Any]:
    return [p for p in await pods(client, namespace, app) if not p.metadata.HasField("deletionTimestamp")
            and p.status.phase not in ("Succeeded", "Failed")]


async def running(client: Client, namespace: str, app: str, n: int) -> bool:
    ps = await active(client, namespace, app)
    return len(ps) == n and all(p.status.phase == "Running" for p in ps)


async def gone(client: Client, rt: Any, name: str, namespace: str = "") -> bool:
    try:
        await client.get(rt, name, namespace=namespace)
    except api.NotFound:
        return True
    return False


async def test_replicaset_keeps_replaces_scales_and_cascades(cluster: Cluster, ns: str) -> None:
    out = cluster.kpctl("-n", ns, "apply", "-f", "-", stdin=rs_manifest("web", 5, cluster.tag))
    assert out.returncode == 0, out.stderr
    async with Client(cluster.apiserver.address) as client:
        await eventually(lambda: running(client, ns, "web", 5), what="5 running pods")
        web = await client.get(RS, "web", namespace=ns)
        for p in await active(client, ns, "web"):
            assert p.metadata.name.startswith("web-") and len(p.metadata.name) == 9
            assert p.metadata.ownerReferences[0].uid == web.metadata.uid  # type: ignore[attr-defined]
            assert p.spec.nodeName.startswith(cluster.node_prefix)

        async def ready() -> bool:
            rs = await client.get(RS, "web", namespace=ns)
            return rs.status.readyReplicas == 5 and rs.status.availableReplicas == 5  # type: ignore[attr-defined]

        await eventually(ready, what="status readyReplicas=5")
        listing = cluster.kpctl("-n", ns, "get", "all")
        assert "replicaset.apps/web" in listing.stdout and "pod/web-" in listing.stdout, listing.stdout
        # a deleted pod is replaced
        victim = (await active(client, ns, "web"))[0].metadata.name
        assert cluster.kpctl("-n", ns, "delete", "pod", victim).returncode == 0

        async def replaced() -> bool:
            ps = await active(client, ns, "web")
            return await running(client, ns, "web", 5) and victim not in {p.metadata.name for p in ps}

        await eventually(replaced, what="deleted pod replaced")
        # scale down
        assert cluster.kpctl("-n", ns, "patch", "rs", "web", "-p", '{"spec":{"replicas":2}}').returncode == 0
        await eventually(lambda: running(client, ns, "web", 2), what="scaled down to 2")
        # background cascade: the ReplicaSet goes at once, the garbage collector takes its pods
        assert cluster.kpctl("-n", ns, "delete", "rs", "web").returncode == 0

        async def no_pods() -> bool:
            return not await pods(client, ns, "web")

        await eventually(no_pods, what="pods collected after the ReplicaSet")


async def test_orphan_and_foreground_cascades(cluster: Cluster, ns: str) -> None:
    async with Client(cluster.apiserver.address) as client:
        assert cluster.kpctl("-n", ns, "apply", "-f", "-", stdin=rs_manifest("orph", 3, cluster.tag)).returncode == 0
        await eventually(lambda: running(client, ns, "orph", 3), what="3 running pods")
        out = cluster.kpctl("-n", ns, "delete", "rs", "orph", "--cascade=orphan")
        assert out.returncode == 0, out.stderr
        await eventually(lambda: gone(client, RS, "orph", ns), what="orphaned ReplicaSet removed")
        kept = await active(client, ns, "orph")
        assert len(kept) == 3 and all(not p.metadata.ownerReferences for p in kept)

        assert cluster.kpctl("-n", ns, "apply", "-f", "-", stdin=rs_manifest("fg", 2, cluster.tag)).returncode == 0
        await eventually(lambda: running(client, ns, "fg", 2), what="2 running pods")
        out = cluster.kpctl("-n", ns, "delete", "rs", "fg", "--cascade=foreground", "--wait=false")
        assert out.returncode == 0, out.stderr
        # the owner stays (deleting, with the finalizer) until its pods are gone
        deadline = time.monotonic() + 60
        while not await gone(client, RS, "fg", ns):
            rs = await client.get(RS, "fg", namespace=ns)
            if await pods(client, ns, "fg"):
                assert rs.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "foreground deletion did not finish"
            await asyncio.sleep(0.1)
        assert await pods(client, ns, "fg") == []
        await asyncio.sleep(1)
        assert len(await active(client, ns, "orph")) == 3  # orphans are nobody's: nothing recreates or deletes them


async def test_deleting_a_namespace_empties_and_removes_it(cluster: Cluster) -> None:
    name = f"cm-ns-{uuid.uuid4().hex[:6]}"
    assert cluster.kpctl("create", "namespace", name).returncode == 0
    assert cluster.kpctl("-n", name, "apply", "-f", "-", stdin=rs_manifest("ns-web", 2, cluster.tag)).returncode == 0
    assert cluster.kpctl("-n", name, "create", "-f", "-", stdin=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "b"}})).returncode == 0
    async with Client(cluster.apiserver.address) as client:
        await eventually(lambda: running(client, name, "ns-web", 2), what="2 running pods")
        out = cluster.kpctl("delete", "namespace", name, "--wait=false")
        assert out.returncode == 0, out.stderr
        await eventually(lambda: gone(client, NS, name), what="namespace removed")
    got = cluster.kpctl("get", "namespace", name)
    assert got.returncode != 0 and "not found" in got.stderr, got.stderr


async def test_sigkill_mid_scale_up_never_over_creates(cluster: Cluster, ns: str) -> None:
    replicas = 40
    created: set[str] = set()
    async with Client(cluster.apiserver.address) as client:
        async def watch_adds() -> None:
            async for etype, obj in client.watch(PODS, namespace=ns):
                if etype == "ADDED":
                    created.add(obj.metadata.name)  # type: ignore[attr-defined]

        watcher = asyncio.create_task(watch_adds())
        try:
            await asyncio.sleep(0.5)
            assert cluster.kpctl("-n", ns, "apply", "-f", "-",
                                 stdin=rs_manifest("burst", replicas, cluster.tag)).returncode == 0
            deadline = time.monotonic() + 60
            while len(created) < 3:  # a few batches in: 1, 2, then a batch of 4 in flight
                assert time.monotonic() < deadline, "no pods were created"
                await asyncio.sleep(0.01)
            cluster.kill_controller_manager()
            killed_at = len(created)
            cluster.start_controller_manager()
            await eventually(lambda: running(client, ns, "burst", replicas), timeout=120, what="all replicas running")
            await asyncio.sleep(3)
            assert len(await active(client, ns, "burst")) == replicas
            assert len(created) == replicas, f"created {len(created)} pods for {replicas} replicas " \
                                             f"({killed_at} before the kill)"
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        assert cluster.kpctl("-n", ns, "delete", "rs", "burst").returncode == 0

        async def no_pods() -> bool:
            return not await pods(client, ns, "burst")

        await eventually(no_pods, what="burst pods collected")
