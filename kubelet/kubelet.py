"""The kubelet of one node: pod sources, pod workers, the PLEG, the status manager.

Wiring (every arrow is asyncio inside one process; the apiserver is reached only through the
client):

    apiserver ──watch pods (fieldSelector spec.nodeName=<node>)──▶ informer ─┐
    --pod-manifest-path ──scan every few seconds──▶ static pods ─────────────┼─▶ pod workers ──▶ runtime
    runtime ──relist every second (PLEG)──▶ "container X changed" ───────────┘        │
    pod workers ──status──▶ status manager ──UpdateStatus (only when changed)──▶ apiserver

Restarting the kubelet loses nothing: the runtime keeps sandboxes and containers on disk, the
informer delivers the pods again, and each new worker finds its sandbox by pod UID and carries
on from the containers it finds (restart counts included). Sandboxes whose pod no longer exists
are torn down once the first list has been seen (housekeeping).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kplane.api import errors as api
from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.client.events import EventRecorder
from kplane.client.informer import DeletedFinalStateUnknown, Informer, last_known_state
from kplane.logs import get_logger
from kubelet import staticpods
from kubelet import status as podstatus
from kubelet.backoff import Backoff
from kubelet.node import NodeAgent, NodeConfig
from kubelet.podworker import NodeContext, PodWorker
from kubelet.runtime import ContainerInfo, Runtime

PODS = resolve("pods")
SERVICES = resolve("services")
SERVICES_SYNC_TIMEOUT = 10.0  # how long a container start waits for the first list of Services
log = get_logger(component="kubelet")


@dataclass
class KubeletConfig:
    node: NodeConfig
    pod_manifest_path: Path | None = None
    file_check_frequency: float = 5.0
    pleg_period: float = 1.0
    crash_backoff_base: float = 10.0
    crash_backoff_max: float = 300.0
    probe_time_scale: float = 1.0


class StatusManager:
    """Writes pod statuses to the apiserver: only when they changed, newest wins, conflicts
    retried against a fresh read, never blocking a pod worker.

    At most one write per pod is in flight (a status published meanwhile waits, and only the
    newest is written next), and at most ``write_slots`` writes in all: the fake nodes of one
    process share one such limit. Without them, a slow apiserver saw a pile of concurrent,
    superseded writes per pod that timed out and were retried — more load on the server that
    was already the bottleneck (1000 pods on 100 fake nodes: 2300 timed-out status writes)."""

    def __init__(self, client: Client, lookup: Callable[[str], core_pb2.Pod | None], *,
                 write_slots: asyncio.Semaphore | None = None) -> None:
        self.client = client
        self.lookup = lookup  # "ns/name" -> the latest API object we know (informer cache)
        self.write_slots = write_slots or asyncio.Semaphore(16)
        self._pending: dict[str, tuple[core_pb2.Pod, core_pb2.PodStatus, bool]] = {}
        self._in_flight: set[str] = set()
        self._sent: dict[str, core_pb2.PodStatus] = {}
        self._sent_rv: dict[str, int] = {}  # the pod's resourceVersion our last write produced
        self._wake = asyncio.Event()
        self.log = log

    def _stale(self, key: str, current: core_pb2.Pod) -> bool:
        """Our informer's copy of the pod predates our own last status write."""
        return int(current.metadata.resourceVersion or 0) < self._sent_rv.get(key, 0)

    def _settled(self, key: str, current: core_pb2.Pod | None, status: core_pb2.PodStatus) -> core_pb2.PodStatus:
        """``status`` with each kubelet condition that did not change its status keeping the
        lastTransitionTime the server holds — or, while ``current`` (the informer's copy) is
        older than our own last write, the one we last sent. A pod worker that computed its
        conditions from a copy of the pod older than our last write stamps a new time on a
        condition that never transitioned; written as is, that costs one more pod write that
        says nothing (Kubernetes' status manager keeps the transition times of its own cached
        status for the same reason)."""
        if current is None:
            return status
        sent = self._sent.get(key)
        base = {c.type: c for c in (sent.conditions if sent is not None and self._stale(key, current)
                                    else current.status.conditions)}
        out: core_pb2.PodStatus | None = None
        for i, cond in enumerate(status.conditions):
            prev = base.get(cond.type)
            if (cond.type in podstatus.KUBELET_CONDITIONS and prev is not None and prev.status == cond.status
                    and prev.HasField("lastTransitionTime") and prev.lastTransitionTime != cond.lastTransitionTime):
                if out is None:
                    out = core_pb2.PodStatus()
                    out.CopyFrom(status)
                out.conditions[i].lastTransitionTime.CopyFrom(prev.lastTransitionTime)
        return status if out is None else out

    def publish(self, pod: core_pb2.Pod, status: core_pb2.PodStatus, *, any_uid: bool = False) -> None:
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        current = self.lookup(key)
        status = self._settled(key, current, status)
        # Sent already, unless the server's copy of our conditions differs from what we sent (the
        # node lifecycle controller set Ready=False while this node was unreachable): then write
        # ours again. A copy older than our last write says nothing yet.
        if self._sent.get(key) == status and key not in self._pending and (
                current is None or self._stale(key, current)
                or podstatus.kubelet_conditions(current.status) == podstatus.kubelet_conditions(status)):
            return
        self._pending[key] = (pod, status, any_uid)
        self._wake.set()

    def forget(self, key: str) -> None:
        self._sent.pop(key, None)
        self._sent_rv.pop(key, None)
        self._pending.pop(key, None)

    async def run(self) -> None:
        async def write(key: str, pod: core_pb2.Pod, status: core_pb2.PodStatus, any_uid: bool) -> None:
            try:
                async with self.write_slots:
                    await self._write(key, pod, status, any_uid)
            except Exception as exc:
                self.log.warning("pod status update failed; will retry", pod=key, error=str(exc))
                self._pending.setdefault(key, (pod, status, any_uid))  # unless a newer one came
                await asyncio.sleep(1.0)
            finally:
                self._in_flight.discard(key)
                if key in self._pending:
                    self._wake.set()

        tasks: set[asyncio.Task[None]] = set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            for key in [k for k in self._pending if k not in self._in_flight]:
                pod, status, any_uid = self._pending.pop(key)
                self._in_flight.add(key)
                task = asyncio.create_task(write(key, pod, status, any_uid))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    async def _write(self, key: str, pod: core_pb2.Pod, status: core_pb2.PodStatus, any_uid: bool) -> None:
        current = self.lookup(key)
        for _ in range(10):
            if current is None or (not any_uid and current.metadata.uid != pod.metadata.uid):
                return  # the pod is gone (or replaced by a namesake): nothing to report to
            settled = self._settled(key, current, status)
            merged = podstatus.with_server_conditions(current.status, settled)
            if current.status == merged:
                self._sent[key] = settled
                return
            new = core_pb2.Pod()
            new.CopyFrom(current)
            new.status.CopyFrom(merged)
            try:
                written = await self.client.update_status(PODS, new)
                self._sent[key] = settled
                self._sent_rv[key] = int(written.metadata.resourceVersion or 0)  # type: ignore[attr-defined]
                return
            except api.Conflict:
                try:
                    fresh = await self.client.get(PODS, pod.metadata.name, namespace=pod.metadata.namespace)
                except api.NotFound:
                    return
                assert isinstance(fresh, core_pb2.Pod)
                current = fresh
            except api.NotFound:
                return


class Kubelet:
    def __init__(self, client: Client, config: KubeletConfig, runtime: Runtime, *,
                 recorder: EventRecorder, images: Any = None,
                 status_write_slots: asyncio.Semaphore | None = None) -> None:
        self.client = client
        self.config = config
        self.runtime = runtime
        self.images = images
        self.recorder = recorder
        self.node_name = config.node.name
        self.log = log.bind(node=self.node_name)
        self.workers: dict[str, PodWorker] = {}  # pod UID -> worker
        self.static: dict[str, staticpods.StaticPod] = {}  # static pod UID -> source
        self.informer = Informer(client, PODS, field_selector=f"spec.nodeName={self.node_name}",
                                 logger=self.log)
        self.statuses = StatusManager(client, self._lookup, write_slots=status_write_slots)
        # Services of every namespace, for the service environment variables of containers;
        # fake nodes run no containers, so they skip this watch (100 fake nodes = 100 watches).
        self.services = None if runtime.name == "fake" else Informer(client, SERVICES, logger=self.log)
        self.agent = NodeAgent(client, config.node, images=self._node_images if images is not None else None)
        self.ctx = NodeContext(
            client=client, runtime=runtime, recorder=recorder, node_name=self.node_name, node_ip=config.node.ip,
            publish_status=self._publish_status, finish_delete=self._finish_delete, images=images,
            crash_backoff=Backoff(config.crash_backoff_base, config.crash_backoff_max),
            pull_backoff=Backoff(config.crash_backoff_base, config.crash_backoff_max),
            probe_time_scale=config.probe_time_scale,
            runtime_scheme="fake" if runtime.name == "fake" else "kplane",
            service_env=self._service_env if self.services is not None else None)
        self._pleg_seen: dict[str, tuple[str, int | None]] = {}

    def _node_images(self) -> list[core_pb2.ContainerImage]:
        """The images this node holds, biggest first (Kubernetes reports them that way)."""
        out = [core_pb2.ContainerImage(names=list(s.names), sizeBytes=s.size_bytes) for s in self.images.list()]
        out.sort(key=lambda i: -i.sizeBytes)
        return out

    # -- lookups ---------------------------------------------------------------------------------

    def _lookup(self, key: str) -> core_pb2.Pod | None:
        obj = self.informer.store.get_by_key(key)
        return obj if isinstance(obj, core_pb2.Pod) else None

    async def _service_env(self, pod: core_pb2.Pod) -> dict[str, str]:
        """The service variables for ``pod``'s containers (kubelet/env.py); Kubernetes refuses to
        build an environment before the Services were listed once, and so do we."""
        from kubelet.env import CreateContainerConfigError, service_env_for_pod

        assert self.services is not None
        if not await self.services.wait_for_sync(SERVICES_SYNC_TIMEOUT):
            raise CreateContainerConfigError("services have not yet been read at least once, "
                                             "cannot construct envvars")
        return service_env_for_pod(pod, [s for s in self.services.store.list() if isinstance(s, core_pb2.Service)])

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.workers.values():
            meta = worker.pod.metadata
            if meta.namespace == namespace and meta.name == name:
                return worker
        return None

    def _publish_status(self, pod: core_pb2.Pod, status: core_pb2.PodStatus) -> None:
        is_static = staticpods.CONFIG_SOURCE in pod.metadata.annotations and \
            pod.metadata.annotations[staticpods.CONFIG_SOURCE] == "file"
        self.statuses.publish(pod, status, any_uid=is_static)

    async def _finish_delete(self, pod: core_pb2.Pod) -> None:
        try:
            async with self.statuses.write_slots:  # the same limit as status writes
                await self.client.delete(PODS, pod.metadata.name, namespace=pod.metadata.namespace,
                                         grace_period=0, uid=pod.metadata.uid)
        except (api.NotFound, api.Conflict):
            pass  # already gone, or a namesake with another UID now

    # -- pod sources -----------------------------------------------------------------------------

    def _on_pod(self, pod: core_pb2.Pod) -> None:
        if staticpods.is_mirror(pod):
            return  # a mirror pod runs nothing: its static pod's worker does
        worker = self.workers.get(pod.metadata.uid)
        if worker is None:
            self.log.debug("pod added", pod=f"{pod.metadata.namespace}/{pod.metadata.name}", uid=pod.metadata.uid)
            worker = PodWorker(self.ctx, pod)
            self.workers[pod.metadata.uid] = worker
            worker.start()
            asyncio.get_running_loop().create_task(self._reap(worker))
        else:
            worker.update(pod)

    def _on_pod_deleted(self, obj: core_pb2.Pod | DeletedFinalStateUnknown) -> None:
        pod = last_known_state(obj)
        assert isinstance(pod, core_pb2.Pod)
        if staticpods.is_mirror(pod):
            self._static_wake.set()
            return
        worker = self.workers.get(pod.metadata.uid)
        if worker is not None:
            worker.mark_gone()

    async def _reap(self, worker: PodWorker) -> None:
        await worker.done.wait()
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]
        self.statuses.forget(f"{worker.pod.metadata.namespace}/{worker.pod.metadata.name}")

    # -- static pods -----------------------------------------------------------------------------

    async def _static_loop(self) -> None:
        directory = self.config.pod_manifest_path
        assert directory is not None
        reported: set[str] = set()
        while True:
            pods, errors = await asyncio.to_thread(staticpods.scan, directory, self.node_name)
            for error in errors:
                if error not in reported:
                    self.log.error("static pod manifest skipped", error=error)
            reported = set(errors)
            for uid, static in pods.items():
                if uid not in self.static:
                    self.log.info("static pod added", pod=static.key, file=str(static.path))
                    worker = PodWorker(self.ctx, static.pod, static=True)
                    self.workers[uid] = worker
                    worker.start()
                    asyncio.get_running_loop().create_task(self._reap(worker))
            for uid, static in list(self.static.items()):
                if uid not in pods:
                    self.log.info("static pod removed", pod=static.key)
                    gone = self.workers.get(uid)
                    if gone is not None:
                        gone.mark_gone()
                        await gone.done.wait()
                    await self._delete_mirror(static)
            self.static = pods
            for static in pods.values():
                with contextlib.suppress(Exception):
                    await self._ensure_mirror(static)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.file_check_frequency):
                    await self._static_wake.wait()
            self._static_wake.clear()

    async def _ensure_mirror(self, static: staticpods.StaticPod) -> None:
        mirror = self._lookup(static.key)
        want_hash = static.pod.metadata.annotations[staticpods.CONFIG_HASH]
        if mirror is not None:
            if mirror.metadata.annotations.get(staticpods.CONFIG_MIRROR) == want_hash and \
                    not mirror.metadata.HasField("deletionTimestamp"):
                worker = self.workers.get(static.pod.metadata.uid)
                if worker is not None:
                    worker.poke()  # its status goes to this (maybe new) mirror
                return
            with contextlib.suppress(api.NotFound, api.Conflict):
                await self.client.delete(PODS, mirror.metadata.name, namespace=mirror.metadata.namespace,
                                         grace_period=0, uid=mirror.metadata.uid)
        try:
            created = await self.client.create(PODS, staticpods.mirror_of(static.pod, self.agent.node),
                                               namespace=static.pod.metadata.namespace)
            self.log.info("mirror pod created", pod=static.key)
            assert isinstance(created, core_pb2.Pod)
            worker = self.workers.get(static.pod.metadata.uid)
            if worker is not None:
                self.statuses.forget(static.key)
                worker.poke()
        except api.AlreadyExists:
            pass

    async def _delete_mirror(self, static: staticpods.StaticPod) -> None:
        mirror = self._lookup(static.key)
        if mirror is None:
            return
        with contextlib.suppress(api.NotFound, api.Conflict):
            await self.client.delete(PODS, mirror.metadata.name, namespace=mirror.metadata.namespace,
                                     grace_period=0, uid=mirror.metadata.uid)

    # -- PLEG and housekeeping -------------------------------------------------------------------

    async def _pleg_loop(self) -> None:
        """Relist the runtime every second; wake the worker of every pod whose containers changed."""
        while True:
            await asyncio.sleep(self.config.pleg_period)
            try:
                containers = await self.runtime.list_containers()
            except Exception as exc:
                self.log.warning("runtime relist failed", error=str(exc))
                continue
            seen: dict[str, tuple[str, int | None]] = {}
            changed_sandboxes: set[str] = set()
            for info in containers:
                state = (info.state, info.exit_code)
                seen[info.id] = state
                if self._pleg_seen.get(info.id) != state:
                    changed_sandboxes.add(info.sandbox_id)
            self._pleg_seen = seen
            if changed_sandboxes:
                for worker in self.workers.values():
                    if worker.sandbox is not None and worker.sandbox.id in changed_sandboxes:
                        worker.poke()

    async def _housekeeping(self) -> None:
        """Once the first list is in: tear down sandboxes whose pod does not exist any more."""
        await self.informer.wait_for_sync()
        await asyncio.sleep(0)
        known = set(self.workers)
        if self.config.pod_manifest_path is not None:
            known |= set(staticpods.scan(self.config.pod_manifest_path, self.node_name)[0])
        for sandbox in await self.runtime.list_sandboxes():
            if sandbox.pod_uid in known:
                continue
            self.log.info("removing orphaned sandbox", pod=f"{sandbox.namespace}/{sandbox.name}",
                          uid=sandbox.pod_uid)
            for info in await self.runtime.list_containers(sandbox.id):
                if info.state in ("running", "created"):
                    await self.runtime.stop_container(info.id, 2.0)
                await self.runtime.remove_container(info.id)
            await self.runtime.stop_pod_sandbox(sandbox.id)
            await self.runtime.remove_pod_sandbox(sandbox.id)
            if self.images is not None:
                from kubelet.volumes import cleanup_volumes

                await asyncio.to_thread(cleanup_volumes, sandbox.directory)

    # -- streaming: which container a log/exec request means -------------------------------------

    def locate(self, namespace: str, name: str, container: str, previous: bool) -> ContainerInfo:
        from kubelet.streaming import LocateError

        worker = self.worker_for(namespace, name)
        if worker is None:
            raise LocateError("NotFound", f'pods "{name}" not found')
        spec = worker.pod.spec
        names = [c.name for c in spec.containers]
        all_names = [c.name for c in spec.initContainers] + names
        if not container:
            default = worker.pod.metadata.annotations.get("kubectl.kubernetes.io/default-container", "")
            if default in all_names:
                container = default
            elif len(names) == 1:
                container = names[0]
            else:
                raise LocateError("BadRequest", f"a container name must be specified for pod {name}, "
                                                f"choose one of: [{' '.join(names)}]")
        if container not in all_names:
            raise LocateError("BadRequest", f"container {container} is not valid for pod {name}")
        attempts = worker.containers.get(container, [])
        if previous:
            if len(attempts) < 2:
                raise LocateError("BadRequest",
                                  f'previous terminated container "{container}" in pod "{name}" not found')
            return attempts[-2]
        if not attempts:
            reason = worker.waiting.get(container, ("ContainerCreating", ""))[0]
            raise LocateError("BadRequest",
                              f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return attempts[-1]

    # -- run -------------------------------------------------------------------------------------

    async def run(self, *, on_ready: Callable[[], Any] | None = None) -> None:
        self._static_wake = asyncio.Event()
        await self.agent.register()
        self.informer.add_event_handler(self)
        tasks = [
            asyncio.create_task(self.agent.run(), name="node-agent"),
            asyncio.create_task(self.informer.run(), name="pod-informer"),
            asyncio.create_task(self.statuses.run(), name="status-manager"),
            asyncio.create_task(self._pleg_loop(), name="pleg"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        if self.config.pod_manifest_path is not None:
            tasks.append(asyncio.create_task(self._static_loop(), name="static-pods"))
        if self.services is not None:
            tasks.append(asyncio.create_task(self.services.run(), name="service-informer"))
        if on_ready is not None:
            on_ready()
        self.log.info("kubelet running", runtime=self.runtime.name, pods_from=f"spec.nodeName={self.node_name}")
        try:
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if task.exception() is not None and task.get_name() != "housekeeping":
                        raise task.exception()  # type: ignore[misc]
                tasks = [t for t in tasks if not t.done()]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for worker in list(self.workers.values()):
                await worker.stop()

    # informer handler protocol
    def on_add(self, obj: core_pb2.Pod) -> None:
        self._on_pod(obj)

    def on_update(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        if staticpods.is_mirror(new):
            if new.metadata.HasField("deletionTimestamp"):
                self._static_wake.set()
            return
        self._on_pod(new)

    def on_delete(self, obj: core_pb2.Pod | DeletedFinalStateUnknown) -> None:
        self._on_pod_deleted(obj)

