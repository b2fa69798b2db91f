"""The scheduler: pending pods from the queue, one cycle each, bound through `pods/binding`.

    informers (pods, nodes) → cache (+ assumed pods) and queue (pending pods)
    pop → profile.schedule(pod, snapshot) → assume → bind (async, with the pod's UID as precondition)
                                           ↘ unschedulable: PodScheduled=False + FailedScheduling event

A pod with `spec.nodeName` is never touched (it is counted in the cache, nothing more). A bind that
fails rolls back the assumed pod and requeues it with back-off; a pod already bound elsewhere
(Conflict) is simply dropped — it is never rebound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

from kplane.api import errors as api
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.client.events import EventRecorder
from kplane.client.informer import (
    DeletedFinalStateUnknown,
    Informer,
    ResourceEventHandlerFuncs,
    SharedInformerFactory,
    last_known_state,
)
from kplane.logs import get_logger
from scheduler.cache import SchedulerCache
from scheduler.framework import Code
from scheduler.profile import DEFAULT_SCHEDULER, Profile
from scheduler.queue import ClusterEvent, QueuedPodInfo, SchedulingQueue, ShutDown, node_update_events

PODS = resolve("pods")
NODES = resolve("nodes")

ATTEMPTS = Counter("scheduler_schedule_attempts_total", "scheduling attempts by result", ["result", "profile"])
DECISION = Histogram("scheduler_scheduling_algorithm_duration_seconds", "time to decide one pod",
                     buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
BINDS = Counter("scheduler_binds_total", "bind calls by result", ["result"])
BINDS_OK = BINDS.labels("ok")  # resolved once: counted for every pod

log = get_logger(component="scheduler")


def _key(pod: Any) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


class Scheduler:
    def __init__(self, client: Client, profiles: list[Profile], *, recorder: EventRecorder | None = None,
                 factory: SharedInformerFactory | None = None, queue: SchedulingQueue | None = None,
                 bind_concurrency: int = 32, may_write: Callable[[], bool] | None = None) -> None:
        self.client = client
        self.profiles = {p.name: p for p in profiles}
        self._scheduled = {p.name: ATTEMPTS.labels("scheduled", p.name) for p in profiles}
        self.recorder = recorder
        self.factory = factory or SharedInformerFactory(client)
        self.queue = queue or SchedulingQueue()
        self.cache = SchedulerCache()
        self.pods: Informer = self.factory.informer_for(PODS)
        self.nodes: Informer = self.factory.informer_for(NODES)
        self._binds = asyncio.Semaphore(bind_concurrency)
        self._bind_tasks: set[asyncio.Task[None]] = set()
        self.decision_times: list[float] = []  # seconds per decision (for the benchmark)
        # CPU seconds per decision (this thread's): unlike wall time, not inflated by a busy machine
        self.decision_cpu_times: list[float] = []
        self.on_bound: Callable[[str, str], None] | None = None
        # Checked right before every write: a leader frozen (SIGSTOP) past its renew deadline wakes
        # up no longer leading and must not bind anything before its elector notices.
        self.may_write = may_write or (lambda: True)
        self._wire()

    # -- informers → cache and queue ---------------------------------------------------------

    def _responsible(self, pod: Any) -> bool:
        return (pod.spec.schedulerName or DEFAULT_SCHEDULER) in self.profiles

    @staticmethod
    def _pending(pod: Any) -> bool:
        return not pod.spec.nodeName and not pod.metadata.HasField("deletionTimestamp") and \
            pod.status.phase not in ("Succeeded", "Failed")

    def _wire(self) -> None:
        def pod_added(pod: Any) -> None:
            if pod.spec.nodeName:
                self.cache.add_pod(pod)
                self.queue.assigned_pod_added(pod)
            elif self._pending(pod) and self._responsible(pod):
                self.queue.add(pod)

        def pod_updated(old: Any, new: Any) -> None:
            if new.spec.nodeName:
                if not old.spec.nodeName:
                    self.queue.delete(new)  # bound (by us or someone else): no longer pending
                    self.cache.add_pod(new)
                    self.queue.assigned_pod_added(new)
                else:
                    self.cache.update_pod(old, new)
                    self.queue.assigned_pod_updated(old, new)
            elif self._pending(new) and self._responsible(new):
                self.queue.update(old, new)
            else:
                self.queue.delete(new)

        def pod_deleted(obj: Any) -> None:
            pod: Any = last_known_state(obj) if isinstance(obj, DeletedFinalStateUnknown) else obj
            if pod.spec.nodeName or self.cache.is_assumed(pod):
                self.cache.remove_pod(pod)
                self.queue.assigned_pod_deleted(pod)
            self.queue.delete(pod)

        def node_added(node: Any) -> None:
            self.cache.add_node(node)
            self.queue.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)

        def node_updated(old: Any, new: Any) -> None:
            self.cache.update_node(new)
            for event in node_update_events(old, new):
                self.queue.move_all_to_active_or_backoff(event)

        def node_deleted(obj: Any) -> None:
            self.cache.remove_node(last_known_state(obj) if isinstance(obj, DeletedFinalStateUnknown) else obj)

        self.pods.add_event_handler(ResourceEventHandlerFuncs(pod_added, pod_updated, pod_deleted))
        self.nodes.add_event_handler(ResourceEventHandlerFuncs(node_added, node_updated, node_deleted))

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Runnable: sync caches, then schedule until cancelled."""
        self.factory.start()
        if not await self.factory.wait_for_cache_sync(timeout=120):
            raise TimeoutError("scheduler caches did not sync")
        log.info("caches synced; scheduling", profiles=sorted(self.profiles))
        try:
            while True:
                try:
                    qpi = await self.queue.pop()
                except ShutDown:
                    return
                self.schedule_one(qpi)
                await asyncio.sleep(0)  # let informer events and binds interleave with decisions
        finally:
            self.queue.close()
            for task in list(self._bind_tasks):
                task.cancel()
            await asyncio.gather(*self._bind_tasks, return_exceptions=True)

    def schedule_one(self, qpi: QueuedPodInfo) -> None:
        """One scheduling cycle; synchronous from snapshot to assume, so no event interleaves."""
        cycle = self.queue.scheduling_cycle()
        pod: Any = self.pods.store.get_by_key(qpi.key) or qpi.pod
        if not self._pending(pod) or not self._responsible(pod):
            self.queue.done(qpi.key)
            return
        profile = self.profiles[pod.spec.schedulerName or DEFAULT_SCHEDULER]
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = profile.schedule(pod, self.cache.snapshot())
        elapsed = time.perf_counter() - start
        self.decision_cpu_times.append(time.thread_time() - start_cpu)
        DECISION.observe(elapsed)
        self.decision_times.append(elapsed)
        if result.node is None:
            ATTEMPTS.labels("unschedulable" if result.status.code != Code.ERROR else "error", profile.name).inc()
            qpi.unschedulable_plugins = {s.plugin for s in result.diagnosis.values() if s.plugin}
            if result.status.plugin:
                qpi.unschedulable_plugins.add(result.status.plugin)
            if result.status.code == Code.ERROR:
                qpi.unschedulable_plugins.clear()
            message = result.status.message()
            log.info("unschedulable", pod=qpi.key, reason=message, rv=pod.metadata.resourceVersion)
            self.queue.add_unschedulable_if_not_present(qpi, cycle)
            self._track(self._report_unschedulable(pod, message))
            return
        self._scheduled[profile.name].inc()
        assumed = type(pod)()
        assumed.CopyFrom(pod)
        assumed.spec.nodeName = result.node
        self.cache.assume_pod(assumed, result.pod_info)
        self.queue.done(qpi.key)
        self._track(self._bind(qpi, pod, assumed, result.node, cycle))

    def _track(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._bind_tasks.add(task)
        task.add_done_callback(self._bind_tasks.discard)

    async def _bind(self, qpi: QueuedPodInfo, pod: Any, assumed: Any, node: str, cycle: int) -> None:
        async with self._binds:
            if not self.may_write():
                self.cache.forget_pod(assumed)
                log.warning("not leading any more; binding skipped", pod=qpi.key)
                return
            try:
                await self.client.bind(pod.metadata.namespace, pod.metadata.name, node, uid=pod.metadata.uid)
            except (api.Conflict, api.NotFound) as exc:
                # already bound elsewhere, being deleted, or gone: never rebind; the informer tells the truth
                BINDS.labels("conflict").inc()
                self.cache.forget_pod(assumed)
                log.info("binding rejected; not retrying", pod=qpi.key, node=node, reason=str(exc))
                return
            except Exception as exc:
                BINDS.labels("error").inc()
                self.cache.forget_pod(assumed)
                qpi.unschedulable_plugins.clear()
                log.warning("binding failed; requeueing", pod=qpi.key, node=node, error=str(exc))
                self.queue.add_unschedulable_if_not_present(qpi, cycle)
                return
        BINDS_OK.inc()
        log.info("bound", pod=qpi.key, node=node, rv=pod.metadata.resourceVersion)
        if self.recorder is not None:
            self.recorder.event(pod, "Normal", "Scheduled",
                                f"Successfully assigned {pod.metadata.namespace}/{pod.metadata.name} to {node}")
        if self.on_bound is not None:
            self.on_bound(qpi.key, node)

    async def _report_unschedulable(self, pod: Any, message: str) -> None:
        if not self.may_write():
            return
        if self.recorder is not None:
            self.recorder.event(pod, "Warning", "FailedScheduling", message)
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
        current = next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)
        if current is not None and current.status == "False" and current.message == message:
            return  # already says so: no write
        from kplane.api.codec import format_time, now_timestamp

        condition["lastTransitionTime"] = format_time(now_timestamp())
        try:
            await self.client.patch(PODS, pod.metadata.name, {"status": {"conditions": [condition]}},
                                    namespace=pod.metadata.namespace, patch_type="strategic",
                                    subresource="status")
        except api.APIError as exc:
            log.info("could not record the unschedulable condition", pod=_key(pod), error=str(exc))
