"""The kubelet as a real process with the process runtime against a real apiserver: pods become
real processes, with init containers, shared volumes and pod IPs, restarts, probes, graceful
termination, static pods, and re-adoption after a kubelet restart."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from procs import eventually as poll
from procs import kill_leftovers, kubelet_argv, start_logged, worker_index
from procs import kpctl as run_kpctl

from kplane.api import errors as api
from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, stop_process

pytestmark = pytest.mark.e2e

PODS, NODES, EVENTS, LEASES = resolve("pods"), resolve("nodes"), resolve("events"), resolve("leases")
CONFIGMAPS = resolve("configmaps")


@dataclass
class KubeletProc:
    name: str
    data_dir: Path
    manifests: Path
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes]

    def restart(self) -> None:
        stop_process(self.proc)
        self.proc = start_logged(self.argv, self.log, append=True)


@pytest.fixture(scope="module")
def kubelet(apiserver: APIServer, tmp_path_factory: Any) -> Iterator[KubeletProc]:
    index = worker_index() + 10
    tmp = tmp_path_factory.mktemp("kubelet")
    name = f"k-{uuid.uuid4().hex[:6]}"
    manifests = tmp / "manifests"
    manifests.mkdir()
    log = tmp / "kubelet.log"
    argv = kubelet_argv(apiserver.address, name, tmp / "data", node_ip=f"127.0.1.{index}",
                        pod_cidr=f"127.245.{index}.0/24", cpu="2", memory="4Gi",
                        flags=("--pod-manifest-path", str(manifests), "--file-check-frequency", "0.5s",
                               "--crash-backoff-base", "1s", "--crash-backoff-max", "4s",
                               "--node-lease-renew-interval", "1s"))
    proc = start_logged(argv, log)
    k = KubeletProc(name, tmp / "data", manifests, argv, log, proc)
    yield k
    # clean up: pods on the node first (the kubelet kills their processes), then the node
    async def cleanup() -> None:
        async with Client(apiserver.address) as c:
            pods, _ = await c.list_all(PODS, field_selector=f"spec.nodeName={name}")
            for p in pods:
                meta = p.metadata  # type: ignore[attr-defined]
                try:
                    await c.delete(PODS, meta.name, namespace=meta.namespace, grace_period=1)
                except api.NotFound:
                    pass
            for f in manifests.iterdir():
                f.unlink()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                left, _ = await c.list_all(PODS, field_selector=f"spec.nodeName={name}")
                if not left:
                    break
                await asyncio.sleep(0.2)
            try:
                await c.delete(NODES, name)
            except api.NotFound:
                pass
    asyncio.run(cleanup())
    stop_process(k.proc)
    kill_leftovers(tmp / "data", process_groups=True)
    print(log.read_text()[-6000:])


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    return await poll(check, what, timeout=timeout, interval=0.2, retry_on=(AssertionError, api.NotFound), show=str)


async def get_pod(client: Client, namespace: str, name: str) -> core_pb2.Pod:
    p = await client.get(PODS, name, namespace=namespace)
    assert isinstance(p, core_pb2.Pod)
    return p


def status_of(p: core_pb2.Pod, container: str) -> core_pb2.ContainerStatus:
    for st in list(p.status.containerStatuses) + list(p.status.initContainerStatuses):
        if st.name == container:
            return st
    raise AssertionError(f"no status for container {container}")


def condition(p: core_pb2.Pod, ctype: str) -> str:
    return next((c.status for c in p.status.conditions if c.type == ctype), "")


async def events_for(client: Client, namespace: str, name: str) -> list[tuple[str, str]]:
    evs, _ = await client.list_all(EVENTS, namespace=namespace)
    return [(e.reason, e.message) for e in evs if e.involvedObject.name == name]  # type: ignore[attr-defined]


def pod_manifest(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"nodeName": node, "containers": containers, "terminationGracePeriodSeconds": 5}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return str(resp.read().decode())


@pytest.fixture
async def ready_node(client: Client, kubelet: KubeletProc) -> AsyncIterator[str]:
    async def ready() -> bool:
        n = await client.get(NODES, kubelet.name)
        return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)  # type: ignore[attr-defined]

    await eventually(ready, "the node to register Ready")
    yield kubelet.name


async def test_node_registers_with_capacity_lease_and_endpoint(client: Client, ready_node: str,
                                                              kubelet: KubeletProc) -> None:
    n = await client.get(NODES, ready_node)
    assert isinstance(n, core_pb2.Node)
    assert n.status.capacity["cpu"].string == "2"
    assert n.status.allocatable["memory"].string == "4Gi"
    assert n.status.capacity["pods"].string == "110"
    assert {c.type for c in n.status.conditions} >= {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert [a.address for a in n.status.addresses if a.type == "InternalIP"] == [f"127.0.1.{worker_index() + 10}"]
    assert n.status.daemonEndpoints.kubeletEndpoint.Port > 0
    assert n.metadata.labels["kubernetes.io/hostname"] == ready_node
    assert n.spec.podCIDR == f"127.245.{worker_index() + 10}.0/24"
    lease = await client.get(LEASES, ready_node, namespace="kube-node-lease")
    first = lease.spec.renewTime.ToNanoseconds()  # type: ignore[attr-defined]

    async def renewed() -> bool:
        again = await client.get(LEASES, ready_node, namespace="kube-node-lease")
        return bool(again.spec.renewTime.ToNanoseconds() > first)  # type: ignore[attr-defined]

    await eventually(renewed, "the lease to be renewed")


async def test_init_containers_shared_volume_pod_ip_and_http(client: Client, namespace: str, ready_node: str) -> None:
    """An init container writes into an emptyDir; two app containers share it and the pod IP;
    myapp answers on the pod IP; exec sees the volume at its path."""
    await client.create(PODS, pod_manifest("web", ready_node, [
        {"name": "app", "image": "myapp:v1"},
        {"name": "sidecar", "image": "busybox", "command": ["sh", "-c", "cat /data/msg; sleep 3600"],
         "volumeMounts": [{"name": "shared", "mountPath": "/data"}]},
    ], initContainers=[
        {"name": "init", "image": "busybox", "command": ["sh", "-c", "echo from-init > /data/msg"],
         "volumeMounts": [{"name": "shared", "mountPath": "/data"}]},
    ], volumes=[{"name": "shared", "emptyDir": {}}]), namespace=namespace)

    async def running() -> core_pb2.Pod | None:
        p = await get_pod(client, namespace, "web")
        return p if p.status.phase == "Running" and condition(p, "Ready") == "True" else None

    p = await eventually(running, "pod web to run and be Ready", timeout=60)
    assert p.status.podIP.startswith("127.245.")
    assert p.status.hostIP == f"127.0.1.{worker_index() + 10}"
    assert status_of(p, "init").state.terminated.reason == "Completed"
    assert condition(p, "Initialized") == "True"
    assert status_of(p, "app").containerID.startswith("kplane://")

    async def answers() -> str:  # Ready without a readiness probe means "started", not "listening"
        try:
            return await asyncio.to_thread(http_get, f"http://{p.status.podIP}/")
        except OSError as exc:
            raise AssertionError(str(exc)) from None

    body = await eventually(answers, "myapp to answer on the pod IP", timeout=30)
    assert body.strip() == 'Hello MyApp | Version: v1 | <a href="hostname.html">Pod Name</a>'
    assert (await asyncio.to_thread(http_get, f"http://{p.status.podIP}/hostname.html")).strip() == "web"
    reasons = [r for r, _ in await events_for(client, namespace, "web")]
    assert {"Pulled", "Created", "Started"} <= set(reasons)


async def test_crash_loop_backs_off(client: Client, namespace: str, ready_node: str) -> None:
    await client.create(PODS, pod_manifest("crash", ready_node, [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo dying; exit 3"]}]), namespace=namespace)

    async def looping() -> core_pb2.Pod | None:
        p = await get_pod(client, namespace, "crash")
        st = status_of(p, "c")
        ok = st.restartCount >= 2 and st.state.waiting.reason == "CrashLoopBackOff"
        return p if ok else None

    p = await eventually(looping, "CrashLoopBackOff with restarts", timeout=60)
    st = status_of(p, "c")
    assert st.lastState.terminated.exitCode == 3
    assert st.lastState.terminated.reason == "Error"
    assert "restarting failed container=c" in st.state.waiting.message
    assert p.status.phase == "Running"
    assert any(r == "BackOff" for r, _ in await events_for(client, namespace, "crash"))


async def test_liveness_failure_restarts_and_readiness_gates_ready(client: Client, namespace: str,
                                                                  ready_node: str) -> None:
    await client.create(PODS, pod_manifest("probed", ready_node, [
        {"name": "live", "image": "busybox", "command": ["sh", "-c", "sleep 3600"],
         "livenessProbe": {"tcpSocket": {"port": 81}, "periodSeconds": 1, "failureThreshold": 2}},
        {"name": "ready", "image": "busybox", "command": ["sh", "-c", "sleep 3600"],
         "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}},
    ]), namespace=namespace)

    async def restarted() -> core_pb2.Pod | None:
        p = await get_pod(client, namespace, "probed")
        return p if status_of(p, "live").restartCount >= 1 else None

    p = await eventually(restarted, "a liveness restart", timeout=60)
    assert not status_of(p, "ready").ready
    assert condition(p, "Ready") == "False"
    evs = await events_for(client, namespace, "probed")
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed:") for r, m in evs)
    assert any(r == "Killing" and "failed liveness probe" in m for r, m in evs)


async def test_graceful_deletion_sends_sigterm(client: Client, namespace: str, ready_node: str,
                                               kubelet: KubeletProc) -> None:
    out = kubelet.data_dir.parent / f"out-{uuid.uuid4().hex[:6]}"
    await client.create(PODS, pod_manifest("graceful", ready_node, [
        {"name": "c", "image": "busybox", "volumeMounts": [{"name": "out", "mountPath": "/out"}],
         "command": ["sh", "-c", "trap 'echo got-term > /out/term; exit 0' TERM; while true; do sleep 0.1; done"]}],
        volumes=[{"name": "out", "hostPath": {"path": str(out), "type": "DirectoryOrCreate"}}]),
        namespace=namespace)

    async def running() -> core_pb2.Pod | None:
        p = await get_pod(client, namespace, "graceful")
        return p if p.status.phase == "Running" else None

    await eventually(running, "pod graceful to run", timeout=60)
    await client.delete(PODS, "graceful", namespace=namespace)

    async def gone() -> bool:
        try:
            await get_pod(client, namespace, "graceful")
        except api.NotFound:
            return True
        return False

    await eventually(gone, "the kubelet to finish the delete", timeout=30)
    assert (out / "term").read_text().strip() == "got-term"  # SIGTERM reached the process, which exited
    reasons = [r for r, _ in await events_for(client, namespace, "graceful")]
    assert "Killing" in reasons


async def test_bad_pods_end_in_kubernetes_reasons(client: Client, namespace: str, ready_node: str) -> None:
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                     "data": {"present": "yes"}}, namespace=namespace)
    await client.create(PODS, pod_manifest("noimage", ready_node, [{"name": "c", "image": "nosuch:v9"}]),
                        namespace=namespace)
    await client.create(PODS, pod_manifest("nocmd", ready_node, [
        {"name": "c", "image": "busybox", "command": ["no-such-command"]}], restartPolicy="Never"),
        namespace=namespace)
    await client.create(PODS, pod_manifest("nokey", ready_node, [
        {"name": "c", "image": "busybox", "command": ["sleep", "3600"],
         "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "absent"}}}]}]),
        namespace=namespace)

    async def reason(name: str, want: str) -> bool:
        st = status_of(await get_pod(client, namespace, name), "c")
        return want in (st.state.waiting.reason, st.state.terminated.reason)

    await eventually(lambda: reason("noimage", "ImagePullBackOff"), "ImagePullBackOff", timeout=60)
    await eventually(lambda: reason("nocmd", "StartError"), "StartError", timeout=60)
    p = await get_pod(client, namespace, "nocmd")
    assert p.status.phase == "Failed"
    assert status_of(p, "c").state.terminated.exitCode == 128
    await eventually(lambda: reason("nokey", "CreateContainerConfigError"), "CreateContainerConfigError")
    st = status_of(await get_pod(client, namespace, "nokey"), "c")
    assert st.state.waiting.message == f"couldn't find key absent in ConfigMap {namespace}/cfg"
    evs = await events_for(client, namespace, "noimage")
    assert any(r == "Failed" and m == "Error: ErrImagePull" for r, m in evs)


async def test_run_to_completion(client: Client, namespace: str, ready_node: str) -> None:
    await client.create(PODS, pod_manifest("once", ready_node, [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo done"]}], restartPolicy="Never"),
        namespace=namespace)
    await client.create(PODS, pod_manifest("retry", ready_node, [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "test -f /data/ok || (touch /data/ok; exit 1)"],
         "volumeMounts": [{"name": "d", "mountPath": "/data"}]}], restartPolicy="OnFailure",
        volumes=[{"name": "d", "emptyDir": {}}]), namespace=namespace)

    async def phase(name: str, want: str) -> bool:
        return (await get_pod(client, namespace, name)).status.phase == want

    await eventually(lambda: phase("once", "Succeeded"), "once to succeed", timeout=60)
    await eventually(lambda: phase("retry", "Succeeded"), "retry to succeed after one failure", timeout=60)
    st = status_of(await get_pod(client, namespace, "retry"), "c")
    assert st.restartCount == 1 and st.state.terminated.exitCode == 0


async def test_static_pod_has_a_mirror(client: Client, ready_node: str, kubelet: KubeletProc) -> None:
    (kubelet.manifests / "static-web.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\nspec:\n  containers:\n"
        "  - name: web\n    image: busybox\n    command: [sleep, '3600']\n")
    mirror = f"static-web-{ready_node}"

    async def mirrored() -> core_pb2.Pod | None:
        p = await get_pod(client, "default", mirror)
        return p if p.status.phase == "Running" else None

    p = await eventually(mirrored, "the mirror pod to show the static pod running", timeout=60)
    assert "kubernetes.io/config.mirror" in p.metadata.annotations
    assert p.metadata.ownerReferences[0].kind == "Node"
    first_uid = p.metadata.uid
    await client.delete(PODS, mirror, namespace="default")

    async def recreated() -> bool:
        again = await get_pod(client, "default", mirror)
        return again.metadata.uid != first_uid and not again.metadata.HasField("deletionTimestamp")

    await eventually(recreated, "the mirror pod to be recreated", timeout=30)
    (kubelet.manifests / "static-web.yaml").unlink()

    async def removed() -> bool:
        try:
            await get_pod(client, "default", mirror)
        except api.NotFound:
            return True
        return False

    await eventually(removed, "the mirror pod to go with its file", timeout=30)


async def test_restarted_kubelet_readopts_running_pods(client: Client, namespace: str, ready_node: str,
                                                       kubelet: KubeletProc) -> None:
    await client.create(PODS, pod_manifest("steady", ready_node, [
        {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]), namespace=namespace)

    async def running() -> core_pb2.Pod | None:
        p = await get_pod(client, namespace, "steady")
        return p if p.status.phase == "Running" else None

    before = await eventually(running, "steady to run", timeout=60)
    kubelet.restart()
    await asyncio.sleep(3)
    after = await eventually(running, "steady to still run", timeout=30)
    assert status_of(after, "c").containerID == status_of(before, "c").containerID
    assert status_of(after, "c").restartCount == 0
    assert after.status.podIP == before.status.podIP


def kpctl(apiserver: APIServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kpctl(apiserver.address, *args, stdin=stdin)


async def test_logs_exec_and_previous_through_the_apiserver(client: Client, namespace: str, ready_node: str,
                                                            apiserver: APIServer) -> None:
    """`kpctl logs` (with --tail and --previous) and `kpctl exec` reach the container through the
    apiserver's proxy to this kubelet's streaming endpoint."""
    await client.create(PODS, pod_manifest("chatty", ready_node, [
        {"name": "c", "image": "busybox",
         "command": ["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); echo run-$n; echo 1 > /data/n; "
                                 "for i in 1 2 3; do echo line-$i; done; "
                                 "if [ $n = 0 ]; then sleep 1; exit 1; fi; sleep 3600"],
         "volumeMounts": [{"name": "d", "mountPath": "/data"}]}], volumes=[{"name": "d", "emptyDir": {}}]),
        namespace=namespace)

    async def restarted() -> bool:
        st = status_of(await get_pod(client, namespace, "chatty"), "c")
        return st.restartCount >= 1 and bool(st.state.running.startedAt.seconds)

    await eventually(restarted, "a restart of chatty", timeout=60)
    previous = await asyncio.to_thread(kpctl, apiserver, "-n", namespace, "logs", "chatty", "--previous")
    assert previous.returncode == 0, previous.stderr
    assert previous.stdout.splitlines() == ["run-0", "line-1", "line-2", "line-3"]

    async def tail_one() -> bool:
        current = await asyncio.to_thread(kpctl, apiserver, "-n", namespace, "logs", "chatty", "--tail", "1")
        return current.stdout.splitlines() == ["line-3"] and "run-1" in (await asyncio.to_thread(
            kpctl, apiserver, "-n", namespace, "logs", "chatty")).stdout

    await eventually(tail_one, "the current attempt's last line", timeout=20)
    out = await asyncio.to_thread(kpctl, apiserver, "-n", namespace, "exec", "chatty", "--",
                                  "sh", "-c", "cat /data/n; echo $POD_NAME; exit 7")
    assert out.returncode == 7
    assert out.stdout.splitlines() == ["1", "chatty"]
    missing = await asyncio.to_thread(kpctl, apiserver, "-n", namespace, "logs", "chatty", "-c", "nope")
    assert missing.returncode != 0 and "container nope is not valid for pod chatty" in missing.stderr
