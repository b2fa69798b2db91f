"""Pod helpers shared by every workload controller (ReplicaSet, ReplicationController, Job,
DaemonSet, StatefulSet, ...): Kubernetes' ``pkg/controller/controller_utils.go`` and
``controller_ref_manager.go``, read and re-expressed.

Why one module: every controller that manages pods must agree on the same few rules, or they
fight each other —

- **Creating.** A pod is stamped from the owner's template with an ownerReference that has
  ``controller: true`` and ``blockOwnerDeletion: true``, and ``generateName: <owner>-`` so the
  apiserver picks Kubernetes' 5-character random suffix (``web-7xk2p``). Events use
  Kubernetes' reasons and wording (``SuccessfulCreate`` "Created pod: web-7xk2p",
  ``FailedCreate`` "Error creating: ...", ``SuccessfulDelete`` "Deleted pod: ...").
- **Ownership** (``ControllerRefManager``). A controller *claims* the objects it manages: ones it
  owns and still selects are kept, ones it owns but no longer selects are *released* (its
  ownerReference removed), orphans it selects are *adopted*. Adoption and release are strategic
  merge patches carrying the object's UID, which the apiserver treats as a precondition: a pod
  deleted and re-created under the same name is never adopted by mistake. Before the first
  adoption of a sync the controller re-reads itself live (not from the cache): a controller that
  was just deleted must not adopt anything (Kubernetes' ``RecheckDeletionTimestamp``).
- **Counting.** A pod with a deletionTimestamp, or in phase Succeeded/Failed, is not *active*;
  ``is_pod_ready`` / ``is_pod_available(pod, min_ready_seconds, now)`` read the Ready condition.
- **Choosing victims.** ``rank_pods_for_deletion`` orders pods the way Kubernetes'
  ``ActivePodsWithRanks`` does (unscheduled, pending, not ready, cheaper, doubled-up, recently
  ready, restarting, younger first), including the LogarithmicScaleDown buckets.

All functions take protobuf messages straight from informer caches and never modify them.
Times are float seconds since the epoch (``time.time()``).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kplane.api import errors as api
from kplane.api.labels import Selector
from kplane.api.pb import core_pb2, meta_pb2
from kplane.api.resources import TYPE_URL_PREFIX, ResourceType, for_type_url, resolve
from kplane.client.client import Client
from kplane.client.events import EventRecorder
from kplane.client.store import Indexer
from kplane.logs import get_logger

PODS: ResourceType = resolve("pods")

# Event reasons (Kubernetes' controller_utils.go).
FAILED_CREATE_POD_REASON = "FailedCreate"
SUCCESSFUL_CREATE_POD_REASON = "SuccessfulCreate"
FAILED_DELETE_POD_REASON = "FailedDelete"
SUCCESSFUL_DELETE_POD_REASON = "SuccessfulDelete"

# Kubernetes' controller.kubernetes.io/pod-deletion-cost (beta, on by default): lower goes first.
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
# The longest generateName the apiserver keeps whole (63 - 5 random characters).
MAX_GENERATED_NAME_PREFIX = 58
# The first batch of slow-start creations (Kubernetes' SlowStartInitialBatchSize).
SLOW_START_INITIAL_BATCH_SIZE = 1

log = get_logger(component="podcontrol")


# -- time ------------------------------------------------------------------------------------------


def ts_seconds(ts: Timestamp) -> float:
    """A Timestamp as float seconds since the epoch."""
    return ts.seconds + ts.nanos / 1e9


def _time_of(msg: Message, field: str) -> float | None:
    """The float time of a Timestamp field, or None when unset (Go's zero time)."""
    if not msg.HasField(field):
        return None
    ts: Timestamp = getattr(msg, field)
    return ts_seconds(ts)


# -- owner references ----------------------------------------------------------------------------


def resource_type_of(obj: Message) -> ResourceType:
    """The ResourceType of a message of a kind kplane serves."""
    return for_type_url(TYPE_URL_PREFIX + obj.DESCRIPTOR.full_name)


def new_controller_ref(owner: Message, rt: ResourceType | None = None) -> meta_pb2.OwnerReference:
    """``metav1.NewControllerRef``: the reference a controller puts on what it creates or adopts
    (``controller: true``, ``blockOwnerDeletion: true``)."""
    kind = rt or resource_type_of(owner)
    meta = owner.metadata  # type: ignore[attr-defined]
    return meta_pb2.OwnerReference(apiVersion=kind.api_version, kind=kind.kind, name=meta.name, uid=meta.uid,
                                   controller=True, blockOwnerDeletion=True)


def get_controller_of(obj: Message) -> meta_pb2.OwnerReference | None:
    """``metav1.GetControllerOf``: the ownerReference with ``controller: true``, if any."""
    for ref in obj.metadata.ownerReferences:  # type: ignore[attr-defined]
        if ref.controller:
            return ref  # type: ignore[no-any-return]
    return None


def owner_ref_dict(ref: meta_pb2.OwnerReference) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": ref.apiVersion, "kind": ref.kind, "name": ref.name, "uid": ref.uid}
    if ref.HasField("controller"):
        out["controller"] = ref.controller
    if ref.HasField("blockOwnerDeletion"):
        out["blockOwnerDeletion"] = ref.blockOwnerDeletion
    return out


def adopt_patch(controller_ref: meta_pb2.OwnerReference, obj_uid: str) -> dict[str, Any]:
    """The strategic merge patch that adds ``controller_ref`` to the object with uid ``obj_uid``
    (ownerReferences merge by uid; ``metadata.uid`` is the apiserver's UID precondition)."""
    return {"metadata": {"ownerReferences": [owner_ref_dict(controller_ref)], "uid": obj_uid}}


def release_patch(owner_uid: str, obj_uid: str) -> dict[str, Any]:
    """The strategic merge patch that removes the ownerReference to ``owner_uid``."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": obj_uid}}


# -- indexing pods by controller ------------------------------------------------------------------

# Kubernetes' PodControllerUIDIndex: owned objects under their controller's UID, orphans under
# "_ORPHAN_POD/<namespace>" — a controller finds its own objects and its adoption candidates
# without scanning the namespace. Register it with
# ``factory.informer_for(PODS, indexers={CONTROLLER_UID_INDEX: controller_uid_index_func})``
# (the very same function object, so controllers can share the informer).
CONTROLLER_UID_INDEX = "controllerUID"
ORPHAN_INDEX_KEY = "_ORPHAN_POD"


def orphan_index_key(namespace: str) -> str:
    return f"{ORPHAN_INDEX_KEY}/{namespace}"


def controller_uid_index_func(obj: Message) -> list[str]:
    ref = get_controller_of(obj)
    if ref is None:
        return [orphan_index_key(obj.metadata.namespace)]  # type: ignore[attr-defined]
    return [str(ref.uid)]


def objects_for_owner(indexer: Indexer, owner: Message, *, include_orphans: bool = True) -> list[Message]:
    """``FilterPodsByOwner``: the cached objects controlled by ``owner`` plus, with
    ``include_orphans``, the orphans in its namespace (the informer needs CONTROLLER_UID_INDEX)."""
    meta = owner.metadata  # type: ignore[attr-defined]
    out = indexer.by_index(CONTROLLER_UID_INDEX, meta.uid) if meta.uid else []
    if include_orphans:
        out = out + indexer.by_index(CONTROLLER_UID_INDEX, orphan_index_key(meta.namespace))
    return out


# -- pods from templates -------------------------------------------------------------------------


def pods_prefix(controller_name: str) -> str:
    """``getPodsPrefix``: ``<name>-`` (cut to what a generated name can hold)."""
    return f"{controller_name}-"[:MAX_GENERATED_NAME_PREFIX]


def pod_from_template(template: core_pb2.PodTemplateSpec, owner: Message,
                      controller_ref: meta_pb2.OwnerReference | None, *, generate_name: str = "") -> core_pb2.Pod:
    """``GetPodFromTemplate``: a new Pod with the template's labels, annotations, finalizers and
    spec, ``generateName`` ``<owner>-`` (or ``generate_name``) and the controller reference."""
    pod = core_pb2.Pod()
    tmeta = template.metadata
    pod.metadata.labels.update(tmeta.labels)
    pod.metadata.annotations.update(tmeta.annotations)
    pod.metadata.finalizers.extend(tmeta.finalizers)
    pod.metadata.generateName = (generate_name or pods_prefix(owner.metadata.name))[:MAX_GENERATED_NAME_PREFIX]  # type: ignore[attr-defined]
    if controller_ref is not None:
        pod.metadata.ownerReferences.append(controller_ref)
    pod.spec.CopyFrom(template.spec)
    return pod


# -- pod state -------------------------------------------------------------------------------------


def is_pod_active(pod: core_pb2.Pod) -> bool:
    """``IsPodActive``: not Succeeded, not Failed, and not being deleted."""
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField("deletionTimestamp")


def is_pod_terminating(pod: core_pb2.Pod) -> bool:
    """``IsPodTerminating``: being deleted but not yet in a terminal phase."""
    return pod.status.phase not in ("Succeeded", "Failed") and pod.metadata.HasField("deletionTimestamp")


def filter_active_pods(pods: Iterable[core_pb2.Pod]) -> list[core_pb2.Pod]:
    return [p for p in pods if is_pod_active(p)]


def pod_condition(pod: core_pb2.Pod, ctype: str) -> core_pb2.PodCondition | None:
    for cond in pod.status.conditions:
        if cond.type == ctype:
            return cond
    return None


def is_pod_ready(pod: core_pb2.Pod) -> bool:
    """``IsPodReady``: the Ready condition is True."""
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.status == "True"


def pod_ready_time(pod: core_pb2.Pod) -> float | None:
    """When a ready pod became ready (the Ready condition's lastTransitionTime), else None."""
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.status != "True":
        return None
    return _time_of(cond, "lastTransitionTime")


def is_pod_available(pod: core_pb2.Pod, min_ready_seconds: int, now: float) -> bool:
    """``IsPodAvailable``: ready, and ready for at least ``min_ready_seconds`` before ``now``
    (a ready pod without a transition time counts only when ``min_ready_seconds`` is 0)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds < now


def seconds_until_available(pod: core_pb2.Pod, min_ready_seconds: int, now: float) -> float | None:
    """For a ready pod not yet available: seconds until it will be (for a requeue); else None."""
    if min_ready_seconds <= 0 or not is_pod_ready(pod):
        return None
    since = pod_ready_time(pod)
    if since is None:
        return None
    remaining = since + min_ready_seconds - now
    return remaining if remaining >= 0 else None


def deletion_cost(pod: core_pb2.Pod) -> int:
    """The pod-deletion-cost annotation (an int32; absent or malformed: 0)."""
    raw = pod.metadata.annotations.get(POD_DELETION_COST_ANNOTATION, "")
    try:
        value = int(raw.strip()) if raw else 0
    except ValueError:
        return 0
    return value if -(2 ** 31) <= value < 2 ** 31 else 0


# -- ranking for deletion ----------------------------------------------------------------------

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _max_restarts(pod: core_pb2.Pod) -> tuple[int, int]:
    """(the highest restart count of a regular container, of a sidecar — a restartable init container)."""
    regular = max((int(c.restartCount) for c in pod.status.containerStatuses), default=0)
    sidecars = {c.name for c in pod.spec.initContainers if c.restartPolicy == "Always"}
    sidecar = max((int(c.restartCount) for c in pod.status.initContainerStatuses if c.name in sidecars), default=0)
    return regular, sidecar


def _log_rank_diff(t1: float, t2: float, now: float) -> int:
    """``logarithmicRankDiff``: compare floor(log2(age in ns)) of two times."""
    d1, d2 = (now - t1) * 1e9, (now - t2) * 1e9
    r1 = int(math.log2(d1)) if d1 > 0 else -1
    r2 = int(math.log2(d2)) if d2 > 0 else -1
    return r1 - r2


def _after_or_zero(t1: float | None, t2: float | None) -> bool:
    """``afterOrZero``: a zero time sorts first; otherwise the later time does."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _ranked_less(a: core_pb2.Pod, rank_a: int, b: core_pb2.Pod, rank_b: int, now: float | None) -> bool:
    """``ActivePodsWithRanks.Less``: True when ``a`` should be deleted before ``b``."""
    # 1. unassigned < assigned
    if a.spec.nodeName != b.spec.nodeName and (not a.spec.nodeName or not b.spec.nodeName):
        return not a.spec.nodeName
    # 2. Pending < Unknown < Running
    pa, pb = _PHASE_ORDINAL.get(a.status.phase, 0), _PHASE_ORDINAL.get(b.status.phase, 0)
    if pa != pb:
        return pa < pb
    # 3. not ready < ready
    ready_a, ready_b = is_pod_ready(a), is_pod_ready(b)
    if ready_a != ready_b:
        return not ready_a
    # 4. lower pod-deletion-cost < higher
    ca, cb = deletion_cost(a), deletion_cost(b)
    if ca != cb:
        return ca < cb
    # 5. doubled up (more related active pods on the same node) < not doubled up
    if rank_a != rank_b:
        return rank_a > rank_b
    # 6. ready for less time < ready for more time (logarithmic buckets)
    if ready_a and ready_b:
        ta, tb = pod_ready_time(a), pod_ready_time(b)
        if ta != tb:
            if now is None or ta is None or tb is None:
                return _after_or_zero(ta, tb)
            diff = _log_rank_diff(ta, tb, now)
            if diff == 0:
                return a.metadata.uid < b.metadata.uid
            return diff < 0
    # 7. more container restarts < fewer
    ra, rb = _max_restarts(a), _max_restarts(b)
    if ra[0] != rb[0]:
        return ra[0] > rb[0]
    if ra[1] != rb[1]:
        return ra[1] > rb[1]
    # 8. no creation time < newer < older (logarithmic buckets)
    cta, ctb = _time_of(a.metadata, "creationTimestamp"), _time_of(b.metadata, "creationTimestamp")
    if cta != ctb:
        if now is None or cta is None or ctb is None:
            return _after_or_zero(cta, ctb)
        diff = _log_rank_diff(cta, ctb, now)
        if diff == 0:
            return a.metadata.uid < b.metadata.uid
        return diff < 0
    return False


def related_pod_ranks(pods: Sequence[core_pb2.Pod], related_pods: Iterable[core_pb2.Pod]) -> list[int]:
    """``getPodsRankedByRelatedPodsOnSameNode``: for each pod, how many active related pods
    (e.g. of every ReplicaSet of the same Deployment) run on its node."""
    on_node: dict[str, int] = {}
    for pod in related_pods:
        if is_pod_active(pod):
            on_node[pod.spec.nodeName] = on_node.get(pod.spec.nodeName, 0) + 1
    return [on_node.get(p.spec.nodeName, 0) for p in pods]


def rank_pods_for_deletion(pods: Sequence[core_pb2.Pod], related_pods: Iterable[core_pb2.Pod] | None = None, *,
                           ranks: Sequence[int] | None = None, now: float | None = None) -> list[core_pb2.Pod]:
    """The pods sorted most-deletable first (``sort.Sort(ActivePodsWithRanks)``).

    ``ranks`` (one per pod) wins over ``related_pods``; with neither every rank is 0. ``now``
    enables the logarithmic comparison of ready/creation times (Kubernetes' default,
    LogarithmicScaleDown); pass ``None`` for the plain "newer first" comparison."""
    if ranks is None:
        ranks = related_pod_ranks(pods, related_pods) if related_pods is not None else [0] * len(pods)
    if len(ranks) != len(pods):
        raise ValueError("one rank per pod")
    pairs = list(zip(pods, ranks, strict=True))

    def cmp(x: tuple[core_pb2.Pod, int], y: tuple[core_pb2.Pod, int]) -> int:
        if _ranked_less(x[0], x[1], y[0], y[1], now):
            return -1
        if _ranked_less(y[0], y[1], x[0], x[1], now):
            return 1
        return 0

    pairs.sort(key=functools.cmp_to_key(cmp))
    return [p for p, _ in pairs]


def pods_to_delete(pods: Sequence[core_pb2.Pod], related_pods: Iterable[core_pb2.Pod], diff: int, *,
                   now: float | None = None) -> list[core_pb2.Pod]:
    """``getPodsToDelete``: the ``diff`` pods to delete (no sort when all of them go)."""
    if diff >= len(pods):
        return list(pods)
    ranked = rank_pods_for_deletion(pods, related_pods, now=time.time() if now is None else now)
    return ranked[:diff]


# -- slow start --------------------------------------------------------------------------------


async def slow_start_batch(count: int, fn: Callable[[], Awaitable[Any]],
                           initial_batch_size: int = SLOW_START_INITIAL_BATCH_SIZE) -> tuple[int, BaseException | None]:
    """``slowStartBatch``: call ``fn`` ``count`` times in concurrent batches of 1, 2, 4, ...;
    stop after the first batch with a failure. Returns (successes, the first error or None).
    A quota or admission problem thus costs one failed call, not ``count``."""
    remaining, successes = count, 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors:
            if isinstance(err, asyncio.CancelledError):
                raise err
        successes += batch - len(errors)
        if errors:
            return successes, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


def namespace_terminating(exc: BaseException) -> bool:
    """The apiserver refused a create because the namespace is being deleted (Kubernetes'
    NamespaceTerminatingCause): nothing to report, every create would fail the same way."""
    return isinstance(exc, api.Forbidden) and "because it is being terminated" in str(exc)


# -- pod control -----------------------------------------------------------------------------------


class PodControl:
    """Creates and deletes pods for a controller and records the events Kubernetes records
    (``RealPodControl``). Errors propagate as the typed API errors after the event."""

    def __init__(self, client: Client, recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.recorder = recorder

    def _event(self, obj: Message, etype: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, etype, reason, message)

    async def create_pods(self, namespace: str, template: core_pb2.PodTemplateSpec, owner: Message,
                          controller_ref: meta_pb2.OwnerReference | None, *,
                          generate_name: str = "") -> core_pb2.Pod:
        """Create one pod from ``template`` (``CreatePods`` / ``CreatePodsWithGenerateName``).
        Returns the created pod; raises the API error (after a FailedCreate event, unless the
        namespace is terminating)."""
        pod = pod_from_template(template, owner, controller_ref, generate_name=generate_name)
        return await self.create_pod(namespace, pod, owner)

    async def create_pod(self, namespace: str, pod: core_pb2.Pod, owner: Message) -> core_pb2.Pod:
        """Create an already built pod (a controller that customises it, e.g. a DaemonSet's node
        affinity or a Job's completion index) with the same events as ``create_pods``."""
        if not pod.metadata.labels:
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.client.create(PODS, pod, namespace=namespace)
        except api.APIError as exc:
            if not namespace_terminating(exc):
                self._event(owner, "Warning", FAILED_CREATE_POD_REASON, f"Error creating: {exc}")
            raise
        assert isinstance(created, core_pb2.Pod)
        self._event(owner, "Normal", SUCCESSFUL_CREATE_POD_REASON, f"Created pod: {created.metadata.name}")
        log.debug("created pod", key=f"{namespace}/{created.metadata.name}",
                  resourceVersion=created.metadata.resourceVersion, owner=owner.metadata.name)  # type: ignore[attr-defined]
        return created

    async def delete_pod(self, namespace: str, name: str, owner: Message, *, uid: str = "",
                         grace_period: int | None = None) -> None:
        """Delete a pod (``DeletePod``); with ``uid``, only that incarnation of it. NotFound (and a
        UID mismatch: the pod we meant is gone) raise ``api.NotFound`` without an event."""
        try:
            await self.client.delete(PODS, name, namespace=namespace, uid=uid, grace_period=grace_period)
        except api.NotFound:
            raise
        except api.Conflict as exc:
            if uid and "UID in precondition" in str(exc):
                raise api.NotFound.for_object(PODS.group_resource, name) from None
            self._event(owner, "Warning", FAILED_DELETE_POD_REASON, f"Error deleting: {exc}")
            raise
        except api.APIError as exc:
            self._event(owner, "Warning", FAILED_DELETE_POD_REASON, f"Error deleting: {exc}")
            raise
        self._event(owner, "Normal", SUCCESSFUL_DELETE_POD_REASON, f"Deleted pod: {name}")

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any], *,
                        patch_type: str = "strategic") -> core_pb2.Pod:
        out = await self.client.patch(PODS, name, patch, namespace=namespace, patch_type=patch_type)
        assert isinstance(out, core_pb2.Pod)
        return out


# -- controller ref manager -------------------------------------------------------------------------


class ClaimError(Exception):
    """Some adoptions or releases failed (the controller should requeue); ``claimed`` is what
    was claimed anyway."""

    def __init__(self, errors: list[BaseException], claimed: list[Message]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors
        self.claimed = claimed


class ControllerRefManager:
    """``BaseControllerRefManager`` + ``PodControllerRefManager`` for any owned resource type.

    ``claim(objs)`` returns the objects ``controller`` manages after adopting matching orphans
    and releasing owned objects that no longer match ``selector``. ``controller`` is the cached
    owner (read-only); ``target`` the resource type of the objects (pods by default);
    ``filters`` further restrict what matches (e.g. a Job's "not finished")."""

    def __init__(self, client: Client, controller: Message, selector: Selector, *,
                 target: ResourceType = PODS, controller_rt: ResourceType | None = None,
                 can_adopt: Callable[[], Awaitable[None]] | None = None) -> None:
        self.client = client
        self.controller = controller
        self.controller_rt = controller_rt or resource_type_of(controller)
        self.selector = selector
        self.target = target
        self._can_adopt = can_adopt or self.recheck_deletion_timestamp
        self._can_adopt_checked: asyncio.Future[None] | None = None

    @property
    def _meta(self) -> Any:
        return self.controller.metadata  # type: ignore[attr-defined]

    async def recheck_deletion_timestamp(self) -> None:
        """``RecheckDeletionTimestamp``: a live GET of the controller; raises if it is gone,
        replaced (another UID) or being deleted — then it must adopt nothing."""
        meta = self._meta
        fresh = await self.client.get(self.controller_rt, meta.name, namespace=meta.namespace)
        fmeta = fresh.metadata  # type: ignore[attr-defined]
        if fmeta.uid != meta.uid:
            raise api.Conflict(f"original {self.controller_rt.kind} {meta.namespace}/{meta.name} is gone: "
                               f"got uid {fmeta.uid}, wanted {meta.uid}")
        if fmeta.HasField("deletionTimestamp"):
            raise api.Conflict(f"{meta.namespace}/{meta.name} has just been deleted")

    async def can_adopt(self) -> None:
        """Run the adoption check once per manager (later callers share its outcome)."""
        if self._can_adopt_checked is None:
            self._can_adopt_checked = asyncio.ensure_future(self._can_adopt())
        await asyncio.shield(self._can_adopt_checked)

    def matches(self, obj: Message, filters: Sequence[Callable[[Message], bool]] = ()) -> bool:
        labels = obj.metadata.labels  # type: ignore[attr-defined]
        if not self.selector.matches(labels):
            return False
        return all(f(obj) for f in filters)

    async def adopt(self, obj: Message) -> Message:
        await self.can_adopt()
        meta = obj.metadata  # type: ignore[attr-defined]
        patch = adopt_patch(new_controller_ref(self.controller, self.controller_rt), meta.uid)
        return await self.client.patch(self.target, meta.name, patch, namespace=meta.namespace,
                                       patch_type="strategic")

    async def release(self, obj: Message) -> None:
        meta = obj.metadata  # type: ignore[attr-defined]
        try:
            await self.client.patch(self.target, meta.name, release_patch(self._meta.uid, meta.uid),
                                    namespace=meta.namespace, patch_type="strategic")
        except (api.NotFound, api.Invalid):
            pass  # gone, or the reference already went: nothing left to release

    async def claim_object(self, obj: Message, filters: Sequence[Callable[[Message], bool]] = ()) -> bool:
        """``ClaimObject``: True if the controller owns ``obj`` after this call."""
        ref = get_controller_of(obj)
        deleting = self._meta.HasField("deletionTimestamp")
        if ref is not None:
            if ref.uid != self._meta.uid:
                return False  # someone else's
            if self.matches(obj, filters):
                return True
            if deleting:
                return False  # a controller being deleted releases nothing either
            await self.release(obj)
            return False
        # an orphan
        if deleting or not self.matches(obj, filters):
            return False
        ometa = obj.metadata  # type: ignore[attr-defined]
        if ometa.HasField("deletionTimestamp"):
            return False
        if self._meta.namespace and self._meta.namespace != ometa.namespace:
            return False
        try:
            await self.adopt(obj)
        except api.NotFound:
            return False
        return True

    async def claim(self, objs: Iterable[Message],
                    filters: Sequence[Callable[[Message], bool]] = ()) -> list[Message]:
        """Claim every object; raises ``ClaimError`` (with ``claimed``) if any adoption/release failed."""
        claimed: list[Message] = []
        errors: list[BaseException] = []
        for obj in objs:
            try:
                if await self.claim_object(obj, filters):
                    claimed.append(obj)
            except api.APIError as exc:
                errors.append(exc)
        if errors:
            raise ClaimError(errors, claimed)
        return claimed

    async def claim_pods(self, pods: Iterable[core_pb2.Pod],
                         filters: Sequence[Callable[[Message], bool]] = ()) -> list[core_pb2.Pod]:
        """``ClaimPods`` (the objects are pods): typed convenience over ``claim``."""
        return [p for p in await self.claim(pods, filters) if isinstance(p, core_pb2.Pod)]


PodControllerRefManager = ControllerRefManager
