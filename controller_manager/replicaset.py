"""The ReplicaSet and ReplicationController controllers (Kubernetes'
``pkg/controller/replicaset``; the ReplicationController is the same controller over the older
kind, with an equality-based selector — Kubernetes runs it through adapters, here it is the same
class parameterised by resource type).

Each keeps exactly ``spec.replicas`` active pods that match its selector:

- **Level-triggered.** ``sync(key)`` reads the owner and its pods from the informer caches,
  claims pods (adopts matching orphans, releases owned pods whose labels stopped matching — see
  ``podcontrol.ControllerRefManager``), then creates or deletes the difference.
- **Expectations.** Before creating N pods it records that it expects to *see* N creations; the
  pod informer lowers the count as they arrive, and until then the owner is not managed again
  (status is still written). A slow informer therefore never causes a second round of
  creations; a create that failed lowers the expectation at once. Expectations live in memory
  only: after a restart the fresh informer lists every pod before any worker runs, so the count
  it starts from is complete.
- **Slow start.** Creations go out in batches of 1, 2, 4, ... and stop at the first failing
  batch (a quota or admission error costs one call, not 500); at most 500 creations or
  deletions per sync (Kubernetes' burstReplicas).
- **Deletion order.** Surplus pods are chosen with ``podcontrol.pods_to_delete``
  (ActivePodsWithRanks: unscheduled, pending, not ready, low deletion cost, doubled up on a node
  with pods of sibling ReplicaSets of the same Deployment, recently ready, restarting, young).
- **Status.** replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
  ``minReadySeconds``; the owner is requeued when the next pod becomes available),
  observedGeneration and the ReplicaFailure condition — written only when something changed.

Pods with a deletionTimestamp and terminal (Succeeded/Failed) pods are not active: they are
neither counted nor deleted again, and a replacement is created for them at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.expectations import ControllerExpectations
from controller_manager.podcontrol import (
    CONTROLLER_UID_INDEX,
    PODS,
    ClaimError,
    ControllerRefManager,
    PodControl,
    controller_uid_index_func,
    filter_active_pods,
    get_controller_of,
    is_pod_available,
    is_pod_ready,
    namespace_terminating,
    new_controller_ref,
    objects_for_owner,
    pods_to_delete,
    seconds_until_available,
    slow_start_batch,
)
from kplane.api import codec
from kplane.api import errors as api
from kplane.api.labels import Selector, selector_from_label_selector, selector_from_set
from kplane.api.pb import core_pb2
from kplane.api.resources import ResourceType, resolve
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, Informer, ResourceEventHandlerFuncs
from kplane.client.store import NAMESPACE_INDEX, meta_namespace_key, split_key
from kplane.logs import get_logger

REPLICASETS: ResourceType = resolve("replicasets")
REPLICATIONCONTROLLERS: ResourceType = resolve("replicationcontrollers")

# Kubernetes' BurstReplicas: at most this many creations or deletions per sync.
BURST_REPLICAS = 500
# Status writes retried after a Conflict (Kubernetes' statusUpdateRetries).
STATUS_UPDATE_RETRIES = 1
REPLICA_FAILURE = "ReplicaFailure"


class ReplicaSetController:
    """One controller for ``replicasets`` or ``replicationcontrollers`` (``rt``)."""

    def __init__(self, ctx: ControllerContext, rt: ResourceType, *, name: str, component: str,
                 burst_replicas: int = BURST_REPLICAS) -> None:
        self.rt = rt
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.recorder = ctx.recorder(component)
        self.pod_control = PodControl(ctx.client, self.recorder)
        self.expectations = ControllerExpectations()
        self.burst_replicas = burst_replicas
        self.log = get_logger(component="controller-manager", controller=name)
        self.rs_informer: Informer = ctx.factory.informer_for(rt, indexers={CONTROLLER_UID_INDEX:
                                                                            controller_uid_index_func})
        self.pod_informer: Informer = ctx.factory.informer_for(PODS, indexers={CONTROLLER_UID_INDEX:
                                                                               controller_uid_index_func})
        self.controller = Controller(name, self.sync, workers=ctx.workers)
        self._selectors: dict[str, tuple[int, Selector | None]] = {}
        self.rs_informer.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._rs_added, on_update=self._rs_updated, on_delete=self._rs_deleted))
        self.pod_informer.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted))
        self.controller.informers.extend([self.rs_informer, self.pod_informer])

    # -- selectors ---------------------------------------------------------------------------

    def selector(self, rs: Message) -> Selector | None:
        """The owner's pod selector (None when it cannot be parsed: such an owner selects nothing)."""
        meta = rs.metadata  # type: ignore[attr-defined]
        cached = self._selectors.get(meta.uid)
        if cached is not None and cached[0] == meta.generation:
            return cached[1]
        spec = rs.spec  # type: ignore[attr-defined]
        sel: Selector | None
        if self.rt is REPLICATIONCONTROLLERS:
            sel = selector_from_set(dict(spec.selector))
        else:
            try:
                sel = selector_from_label_selector(codec.to_dict(spec.selector) if spec.HasField("selector")
                                                   else None)
            except ValueError as exc:
                self.log.error("invalid selector; the owner selects nothing", key=meta_namespace_key(rs),
                               resourceVersion=meta.resourceVersion, error=str(exc))
                sel = None
        self._selectors[meta.uid] = (meta.generation, sel)
        return sel

    def _selects(self, rs: Message, labels: Any) -> bool:
        sel = self.selector(rs)
        if sel is None:
            return False
        if self.rt is REPLICASETS and sel.empty():
            return False  # GetPodReplicaSets skips an empty selector
        return sel.matches(labels)

    # -- event handlers (they only enqueue keys and count observations) ------------------------

    def _enqueue(self, rs: Message, after: float | None = None) -> None:
        key = meta_namespace_key(rs)
        if after is None:
            self.controller.queue.add(key)
        else:
            self.controller.queue.add_after(key, after)

    def _rs_added(self, rs: Message) -> None:
        self._enqueue(rs)

    def _rs_updated(self, old: Message, new: Message) -> None:
        if old.metadata.uid != new.metadata.uid:  # type: ignore[attr-defined]
            self._rs_deleted(DeletedFinalStateUnknown(meta_namespace_key(old), old))
        self._enqueue(new)

    def _rs_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        rs = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        key = meta_namespace_key(rs)
        self.expectations.delete(key)
        self._selectors.pop(rs.metadata.uid, None)  # type: ignore[attr-defined]
        self.controller.queue.add(key)

    def _resolve_controller_ref(self, namespace: str, pod: Message) -> Message | None:
        ref = get_controller_of(pod)
        if ref is None or ref.kind != self.rt.kind:
            return None
        rs = self.rs_informer.store.get_by_key(f"{namespace}/{ref.name}")
        if rs is None or rs.metadata.uid != ref.uid:  # type: ignore[attr-defined]
            return None
        return rs

    def _matching_owners(self, pod: core_pb2.Pod) -> list[Message]:
        return [rs for rs in self.rs_informer.store.by_index(NAMESPACE_INDEX, pod.metadata.namespace)
                if self._selects(rs, pod.metadata.labels)]

    def _pod_added(self, pod: Message) -> None:
        assert isinstance(pod, core_pb2.Pod)
        if pod.metadata.HasField("deletionTimestamp"):
            # A restarted informer may first see a pod already being deleted: that is a deletion.
            self._pod_deleted(pod)
            return
        rs = self._resolve_controller_ref(pod.metadata.namespace, pod)
        if rs is not None:
            self.expectations.creation_observed(meta_namespace_key(rs))
            self._enqueue(rs)
            return
        if get_controller_of(pod) is not None:
            return  # someone else's
        for owner in self._matching_owners(pod):  # an orphan: whoever matches may adopt it
            self._enqueue(owner)

    def _pod_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod)
        labels_changed = dict(old.metadata.labels) != dict(new.metadata.labels)
        if new.metadata.HasField("deletionTimestamp"):
            # Graceful deletion started: count it as the deletion we expected now, so a
            # replacement is created while the old pod terminates.
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = get_controller_of(old), get_controller_of(new)
        ref_changed = (old_ref.uid if old_ref else "") != (new_ref.uid if new_ref else "")
        if ref_changed and old_ref is not None:
            previous = self._resolve_controller_ref(old.metadata.namespace, old)
            if previous is not None:
                self._enqueue(previous)
        if new_ref is not None:
            rs = self._resolve_controller_ref(new.metadata.namespace, new)
            if rs is not None:
                self._enqueue(rs)
                min_ready = int(rs.spec.minReadySeconds)  # type: ignore[attr-defined]
                if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                    self._enqueue(rs, after=float(min_ready) + 0.5)
            return
        if labels_changed or ref_changed:
            for owner in self._matching_owners(new):
                self._enqueue(owner)

    def _pod_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        rs = self._resolve_controller_ref(pod.metadata.namespace, pod)  # type: ignore[attr-defined]
        if rs is None:
            return
        key = meta_namespace_key(rs)
        self.expectations.deletion_observed(key, pod.metadata.uid)  # type: ignore[attr-defined]
        self.controller.queue.add(key)

    # -- reconcile -----------------------------------------------------------------------------

    async def sync(self, key: str) -> Result | None:
        split_key(key)  # a malformed key raises here, before anything is read
        rs = self.rs_informer.store.get_by_key(key)
        if rs is None:
            self.expectations.delete(key)
            return None
        if self.may_write is not None and not self.may_write():
            return None
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector(rs)
        if selector is None:
            return None
        meta = rs.metadata  # type: ignore[attr-defined]
        active = filter_active_pods(p for p in objects_for_owner(self.pod_informer.store, rs)
                                    if isinstance(p, core_pb2.Pod))
        manager = ControllerRefManager(self.client, rs, selector, controller_rt=self.rt)
        try:
            pods = await manager.claim_pods(active)
        except ClaimError as exc:
            raise RuntimeError(f"claiming pods: {exc}") from None
        manage_error: BaseException | None = None
        if needs_sync and not meta.HasField("deletionTimestamp"):
            try:
                await self.manage_replicas(key, rs, pods)
            except (api.APIError, ValueError) as exc:
                manage_error = exc
        now = time.time()
        await self.update_status(rs, pods, manage_error, now)
        if manage_error is not None:
            raise RuntimeError(f"{self.rt.kind} {key}: {manage_error}")
        # Requeue when the next ready pod becomes available (minReadySeconds).
        min_ready = int(rs.spec.minReadySeconds)  # type: ignore[attr-defined]
        waits = [w for p in pods if (w := seconds_until_available(p, min_ready, now)) is not None]
        if waits:
            return Result(requeue_after=min(waits) + 0.5)
        return None

    async def manage_replicas(self, key: str, rs: Message, pods: list[core_pb2.Pod]) -> None:
        """Create or delete pods so that ``len(pods) == spec.replicas`` (``manageReplicas``)."""
        meta, spec = rs.metadata, rs.spec  # type: ignore[attr-defined]
        want = int(spec.replicas) if spec.HasField("replicas") else 1
        diff = len(pods) - want
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            self.log.info("too few replicas; creating", key=key, resourceVersion=meta.resourceVersion,
                          need=want, have=len(pods), creating=count)
            ref = new_controller_ref(rs, self.rt)

            async def create() -> None:
                try:
                    await self.pod_control.create_pods(meta.namespace, spec.template, rs, ref)
                except api.APIError as exc:
                    if namespace_terminating(exc):
                        return  # every create would fail the same way; the namespace goes anyway
                    raise

            successes, error = await slow_start_batch(count, create)
            # Creations that were never made (or failed) will never be observed.
            skipped = count - successes
            if skipped > 0:
                self.expectations.lower(key, adds=skipped)
            if error is not None:
                raise error
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            related = self._related_pods(rs)
            victims = pods_to_delete(pods, related, count)
            self.expectations.expect_deletions(key, [p.metadata.uid for p in victims])
            self.log.info("too many replicas; deleting", key=key, resourceVersion=meta.resourceVersion,
                          need=want, have=len(pods), deleting=count)

            async def delete(pod: core_pb2.Pod) -> BaseException | None:
                try:
                    await self.pod_control.delete_pod(pod.metadata.namespace, pod.metadata.name, rs,
                                                      uid=pod.metadata.uid)
                except api.APIError as exc:
                    # The informer will not observe this deletion: stop expecting it.
                    self.expectations.deletion_observed(key, pod.metadata.uid)
                    if not isinstance(exc, api.NotFound):
                        return exc
                return None

            errors = [e for e in await asyncio.gather(*(delete(p) for p in victims)) if e is not None]
            if errors:
                raise errors[0]

    def _related_pods(self, rs: Message) -> list[core_pb2.Pod]:
        """``getIndirectlyRelatedPods``: the pods of every owner with the same controller (the
        ReplicaSets of one Deployment), for the doubled-up rank; none when there is no controller."""
        ref = get_controller_of(rs)
        if ref is None:
            return []
        seen: set[str] = set()
        out: list[core_pb2.Pod] = []
        namespace = rs.metadata.namespace  # type: ignore[attr-defined]
        for sibling in self.rs_informer.store.by_index(CONTROLLER_UID_INDEX, ref.uid):
            sel = self.selector(sibling)
            if sel is None:
                continue
            for pod in self.pod_informer.store.by_index(NAMESPACE_INDEX, namespace):
                if isinstance(pod, core_pb2.Pod) and pod.metadata.uid not in seen and sel.matches(pod.metadata.labels):
                    seen.add(pod.metadata.uid)
                    out.append(pod)
        return out

    # -- status --------------------------------------------------------------------------------

    def calculate_status(self, rs: Message, pods: list[core_pb2.Pod], manage_error: BaseException | None,
                         now: float) -> Message:
        """``calculateStatus``: a copy of the owner with the new status filled in."""
        new = codec.copy_message(rs)
        spec, status = new.spec, new.status  # type: ignore[attr-defined]
        template_labels = dict(spec.template.metadata.labels)
        min_ready = int(spec.minReadySeconds)
        fully_labeled = ready = available = 0
        for pod in pods:
            labels = pod.metadata.labels
            if all(labels.get(k) == v for k, v in template_labels.items()):
                fully_labeled += 1
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, min_ready, now):
                    available += 1
        failure = next((c for c in status.conditions if c.type == REPLICA_FAILURE), None)
        if manage_error is not None and failure is None:
            want = int(spec.replicas) if spec.HasField("replicas") else 1
            diff = len(pods) - want
            cond = status.conditions.add()
            cond.type, cond.status = REPLICA_FAILURE, "True"
            cond.reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
            cond.message = str(manage_error)
            cond.lastTransitionTime.GetCurrentTime()
        elif manage_error is None and failure is not None:
            kept = [c for c in status.conditions if c.type != REPLICA_FAILURE]
            del status.conditions[:]
            status.conditions.extend(kept)
        status.replicas = len(pods)
        for name, value in (("fullyLabeledReplicas", fully_labeled), ("readyReplicas", ready),
                            ("availableReplicas", available)):
            if value:
                setattr(status, name, value)
            else:
                status.ClearField(name)
        return new

    async def update_status(self, rs: Message, pods: list[core_pb2.Pod], manage_error: BaseException | None,
                            now: float) -> Message:
        """Write the new status unless nothing changed (``updateReplicaSetStatus``)."""
        new = self.calculate_status(rs, pods, manage_error, now)
        old_status, new_status = rs.status, new.status  # type: ignore[attr-defined]
        meta = new.metadata  # type: ignore[attr-defined]
        if (old_status.replicas == new_status.replicas
                and old_status.fullyLabeledReplicas == new_status.fullyLabeledReplicas
                and old_status.readyReplicas == new_status.readyReplicas
                and old_status.availableReplicas == new_status.availableReplicas
                and meta.generation == old_status.observedGeneration
                and list(old_status.conditions) == list(new_status.conditions)):
            return rs
        target = codec.copy_message(new_status)
        target.observedGeneration = meta.generation
        current = new
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            current.status.CopyFrom(target)  # type: ignore[attr-defined]
            try:
                updated = await self.client.update_status(self.rt, current)
            except api.Conflict:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
                current = await self.client.get(self.rt, meta.name, namespace=meta.namespace)
                continue
            except api.NotFound:
                return rs
            self.log.debug("status updated", key=meta_namespace_key(rs),
                           resourceVersion=updated.metadata.resourceVersion,  # type: ignore[attr-defined]
                           replicas=target.replicas, ready=target.readyReplicas,
                           available=target.availableReplicas)
            return updated
        return rs


def new_replicaset(ctx: ControllerContext) -> Controller:
    return ReplicaSetController(ctx, REPLICASETS, name="replicaset", component="replicaset-controller").controller


def new_replicationcontroller(ctx: ControllerContext) -> Controller:
    return ReplicaSetController(ctx, REPLICATIONCONTROLLERS, name="replicationcontroller",
                                component="replication-controller").controller
