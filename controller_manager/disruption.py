"""The disruption controller (Kubernetes' ``pkg/controller/disruption``): keeps every
PodDisruptionBudget's status, which the eviction API (``apiserver/eviction.py``) reads.

For each budget (reconciled by ``namespace/name``):

- **Pods.** Pods of its namespace its ``spec.selector`` matches (absent: none, ``{}``: all).
- **Expected and desired.** ``maxUnavailable`` (number or percent) and a *percentage*
  ``minAvailable`` count the pods' controllers' scale — the ``replicas`` of each distinct
  ReplicationController, ReplicaSet (or the Deployment owning it) or StatefulSet — and round a
  percentage *up*: ``desiredHealthy = expected - ceil(maxUnavailable% * expected)`` (at least 0),
  or ``ceil(minAvailable% * expected)``. An *integer* ``minAvailable`` needs no controller:
  ``expectedPods`` is the number of selected pods and ``desiredHealthy`` the integer. A pod
  without a controller is "unmanaged" (an ``UnmanagedPods`` Warning); one whose controller is
  not found (or is another kind) makes the sync fail.
- **Healthy.** ``currentHealthy`` counts selected pods that are Ready, not terminating and not
  in ``disruptedPods`` (evicted moments ago, not yet seen deleted).
- **Allowed.** ``disruptionsAllowed = currentHealthy - desiredHealthy``, 0 when negative or when
  no pod is expected. ``disruptedPods`` keeps entries of pods still present, not terminating and
  granted less than :data:`DELETION_TIMEOUT` (2 minutes) ago; an older entry is dropped (a
  ``NotDeleted`` Warning on the pod) and the budget is looked at again when the next one expires.
- **Condition.** ``DisruptionAllowed``: True/SufficientPods while disruptions are allowed,
  False/InsufficientPods otherwise, False/SyncFailed (and ``disruptionsAllowed: 0``) when the
  numbers cannot be computed.
- **Writes.** Status only, through ``pdbs/status`` with the cached resourceVersion (a Conflict
  requeues), and only when a number, ``disruptedPods``, ``observedGeneration`` or the condition
  changes.

Not done (as Kubernetes' newer versions do): clearing a stale ``DisruptionTarget`` pod condition,
and finding controllers other than RC/RS/Deployment/StatefulSet through their scale subresource.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from controller_manager.context import ControllerContext
from controller_manager.podcontrol import get_controller_of, is_pod_ready
from kplane.api import codec
from kplane.api import errors as api
from kplane.api.intstr import IntOrString, get_scaled_value_from_int_or_percent
from kplane.api.labels import selector_from_label_selector
from kplane.api.pb import apps_pb2, core_pb2, intstr_pb2, policy_pb2
from kplane.api.resources import ResourceType, resolve
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, Informer, ResourceEventHandlerFuncs
from kplane.client.store import NAMESPACE_INDEX, meta_namespace_key, split_key
from kplane.logs import get_logger

PDBS: ResourceType = resolve("poddisruptionbudgets")
PODS: ResourceType = resolve("pods")
REPLICASETS: ResourceType = resolve("replicasets")
DEPLOYMENTS: ResourceType = resolve("deployments")
STATEFULSETS: ResourceType = resolve("statefulsets")
RCS: ResourceType = resolve("replicationcontrollers")

DELETION_TIMEOUT = 120.0  # seconds a granted eviction waits for its pod's deletion to be seen
DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


class SyncError(Exception):
    """The budget's numbers cannot be computed (recorded as the SyncFailed condition)."""


# -- the pure part: numbers from a budget and its pods ------------------------------------------------

def int_or_string(value: intstr_pb2.IntOrString) -> IntOrString:
    return value.strVal if value.type == 1 else int(value.intVal)


@dataclass(frozen=True)
class Expected:
    expected: int
    desired: int
    unmanaged: tuple[str, ...] = ()


ScaleFinder = Callable[[core_pb2.Pod], "tuple[str, int] | None"]


def expected_scale(pods: Iterable[core_pb2.Pod], find_scale: ScaleFinder) -> tuple[int, tuple[str, ...]]:
    """``getExpectedScale``: the sum of the scale of each distinct controller of ``pods`` (by
    UID), and the names of pods without a controller. ``find_scale(pod)`` gives the pod's
    controller's (uid, replicas) or None when it cannot be found (a SyncError)."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = get_controller_of(pod)
        if ref is None:
            unmanaged.append(pod.metadata.name)
            continue
        if ref.uid in scales:
            continue
        found = find_scale(pod)
        if found is None:
            raise SyncError(f'found no controllers for pod "{pod.metadata.name}"')
        uid, replicas = found
        scales[uid] = replicas
    return sum(scales.values()), tuple(unmanaged)


def expected_pod_count(spec: policy_pb2.PodDisruptionBudgetSpec, pods: list[core_pb2.Pod],
                       find_scale: ScaleFinder) -> Expected:
    """``getExpectedPodCount``: (expectedPods, desiredHealthy, unmanaged pods) for a budget.
    Percentages round up (a budget never lets more go than it says)."""
    try:
        if spec.HasField("maxUnavailable"):
            expected, unmanaged = expected_scale(pods, find_scale)
            max_unavailable = get_scaled_value_from_int_or_percent(
                int_or_string(spec.maxUnavailable), expected, True)
            return Expected(expected, max(0, expected - max_unavailable), unmanaged)
        if spec.HasField("minAvailable"):
            if spec.minAvailable.type != 1:
                return Expected(len(pods), int(spec.minAvailable.intVal))
            expected, unmanaged = expected_scale(pods, find_scale)
            desired = get_scaled_value_from_int_or_percent(int_or_string(spec.minAvailable), expected, True)
            return Expected(expected, desired, unmanaged)
    except ValueError as exc:  # an IntOrString validation would have refused
        raise SyncError(str(exc)) from None
    return Expected(0, 0)


def seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def disrupted_pod_map(pods: list[core_pb2.Pod], disrupted: dict[str, Timestamp], now: float
                      ) -> tuple[dict[str, Timestamp], float | None, list[core_pb2.Pod]]:
    """``buildDisruptedPodMap``: the entries still pending (pod present, not terminating, granted
    less than DELETION_TIMEOUT ago), when the earliest of them expires, and the pods whose entry
    expired without a deletion."""
    kept: dict[str, Timestamp] = {}
    recheck: float | None = None
    expired: list[core_pb2.Pod] = []
    for pod in pods:
        if pod.metadata.HasField("deletionTimestamp"):
            continue
        granted = disrupted.get(pod.metadata.name)
        if granted is None:
            continue
        deadline = seconds(granted) + DELETION_TIMEOUT
        if deadline < now:
            expired.append(pod)
            continue
        kept[pod.metadata.name] = granted
        recheck = deadline if recheck is None else min(recheck, deadline)
    return kept, recheck, expired


def count_healthy(pods: list[core_pb2.Pod], disrupted: dict[str, Timestamp], now: float) -> int:
    """``countHealthyPods``: Ready, not terminating, not evicted within DELETION_TIMEOUT."""
    healthy = 0
    for pod in pods:
        if pod.metadata.HasField("deletionTimestamp"):
            continue
        granted = disrupted.get(pod.metadata.name)
        if granted is not None and seconds(granted) + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def disruptions_allowed(current_healthy: int, desired_healthy: int, expected: int) -> int:
    """No disruption while no pod is expected (a new budget whose pods just appeared is safe)."""
    allowed = current_healthy - desired_healthy
    return 0 if expected <= 0 or allowed <= 0 else allowed


def set_condition(status: policy_pb2.PodDisruptionBudgetStatus, cond_status: str, reason: str,
                  message: str, now: Timestamp) -> None:
    """``meta.SetStatusCondition`` for DisruptionAllowed: lastTransitionTime moves only when the
    status flips (or the condition is new)."""
    for cond in status.conditions:
        if cond.type == DISRUPTION_ALLOWED:
            if cond.status != cond_status:
                cond.lastTransitionTime.CopyFrom(now)
            break
    else:
        cond = status.conditions.add(type=DISRUPTION_ALLOWED)
        cond.lastTransitionTime.CopyFrom(now)
    cond.status, cond.reason, cond.observedGeneration = cond_status, reason, status.observedGeneration
    cond.message = message  # always present, as metav1.Condition renders `message: ""`


def update_disruption_allowed_condition(status: policy_pb2.PodDisruptionBudgetStatus, now: Timestamp) -> None:
    """``UpdateDisruptionAllowedCondition`` (also used by the eviction API after a decrement)."""
    if status.disruptionsAllowed > 0:
        set_condition(status, "True", SUFFICIENT_PODS, "", now)
    else:
        set_condition(status, "False", INSUFFICIENT_PODS, "", now)


def conditions_up_to_date(pdb: policy_pb2.PodDisruptionBudget) -> bool:
    cond = next((c for c in pdb.status.conditions if c.type == DISRUPTION_ALLOWED), None)
    if cond is None or pdb.status.observedGeneration != pdb.metadata.generation:
        return False
    if pdb.status.disruptionsAllowed > 0:
        return cond.status == "True" and cond.reason == SUFFICIENT_PODS
    return cond.status == "False" and cond.reason == INSUFFICIENT_PODS


@dataclass
class Computed:
    """What a sync found: the new status (None when nothing changed), when to look again, and
    what to tell users."""

    status: policy_pb2.PodDisruptionBudgetStatus | None
    recheck_at: float | None = None
    unmanaged: tuple[str, ...] = ()
    expired: list[core_pb2.Pod] = field(default_factory=list)


def compute_status(pdb: policy_pb2.PodDisruptionBudget, pods: list[core_pb2.Pod], find_scale: ScaleFinder,
                   now: float) -> Computed:
    """The status ``pdb`` should have (``trySync`` + ``updatePdbStatus``); raises SyncError."""
    counts = expected_pod_count(pdb.spec, pods, find_scale)
    disrupted, recheck, expired = disrupted_pod_map(pods, dict(pdb.status.disruptedPods), now)
    current = count_healthy(pods, disrupted, now)
    allowed = disruptions_allowed(current, counts.desired, counts.expected)
    old = pdb.status
    if (old.currentHealthy == current and old.desiredHealthy == counts.desired
            and old.expectedPods == counts.expected and old.disruptionsAllowed == allowed
            and dict(old.disruptedPods) == disrupted and conditions_up_to_date(pdb)):
        return Computed(None, recheck, counts.unmanaged, expired)
    status = policy_pb2.PodDisruptionBudgetStatus(
        observedGeneration=pdb.metadata.generation, disruptionsAllowed=allowed, currentHealthy=current,
        desiredHealthy=counts.desired, expectedPods=counts.expected)
    for name, granted in disrupted.items():
        status.disruptedPods[name].CopyFrom(granted)
    status.conditions.extend(old.conditions)
    update_disruption_allowed_condition(status, _timestamp(now))
    return Computed(status, recheck, counts.unmanaged, expired)


def fail_safe_status(pdb: policy_pb2.PodDisruptionBudget, error: str, now: float
                     ) -> policy_pb2.PodDisruptionBudgetStatus:
    """``failSafe``: no disruption allowed, DisruptionAllowed False/SyncFailed with the error."""
    status = policy_pb2.PodDisruptionBudgetStatus()
    status.CopyFrom(pdb.status)
    status.disruptionsAllowed = 0
    set_condition(status, "False", SYNC_FAILED, error, _timestamp(now))
    return status


def _timestamp(now: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(now * 1e9))
    return ts


def selects(pdb: policy_pb2.PodDisruptionBudget, pod: core_pb2.Pod) -> bool:
    """policy/v1: an absent selector selects nothing, an empty one every pod of the namespace."""
    if not pdb.spec.HasField("selector") or pod.metadata.namespace != pdb.metadata.namespace:
        return False
    try:
        selector = selector_from_label_selector(codec.to_dict(pdb.spec.selector))
    except ValueError:
        return False
    return bool(selector.matches(dict(pod.metadata.labels)))


# -- the controller ----------------------------------------------------------------------------------

class DisruptionController:
    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.recorder = ctx.recorder("controllermanager")
        self.log = get_logger(component="controller-manager", controller="disruption")
        self.pdbs: Informer = ctx.factory.informer_for(PDBS)
        self.pods: Informer = ctx.factory.informer_for(PODS)
        self.replicasets: Informer = ctx.factory.informer_for(REPLICASETS)
        self.deployments: Informer = ctx.factory.informer_for(DEPLOYMENTS)
        self.statefulsets: Informer = ctx.factory.informer_for(STATEFULSETS)
        self.rcs: Informer = ctx.factory.informer_for(RCS)
        self.controller = Controller("disruption", self.sync, workers=ctx.workers)
        self._reported: dict[str, tuple[str, ...]] = {}
        self.controller.watch(self.pdbs)
        self.pods.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed))
        for informer in (self.replicasets, self.deployments, self.statefulsets, self.rcs):
            informer.add_event_handler(ResourceEventHandlerFuncs(
                on_add=self._scale_changed, on_update=lambda old, new: self._scale_changed(new),
                on_delete=self._scale_changed))
        self.controller.informers.extend([self.pods, self.replicasets, self.deployments, self.statefulsets, self.rcs])

    # -- handlers: they only enqueue budget keys ----------------------------------------------------

    def _budgets(self, namespace: str) -> list[policy_pb2.PodDisruptionBudget]:
        return [p for p in self.pdbs.store.by_index(NAMESPACE_INDEX, namespace)
                if isinstance(p, policy_pb2.PodDisruptionBudget)]

    def _pod_changed(self, obj: Message | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if not isinstance(pod, core_pb2.Pod):
            return
        for pdb in self._budgets(pod.metadata.namespace):
            if selects(pdb, pod):
                self.controller.queue.add(meta_namespace_key(pdb))

    def _pod_updated(self, old: Message, new: Message) -> None:
        self._pod_changed(new)
        if isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod) \
                and dict(old.metadata.labels) != dict(new.metadata.labels):
            self._pod_changed(old)

    def _scale_changed(self, obj: Message | DeletedFinalStateUnknown) -> None:
        owner = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        namespace = getattr(getattr(owner, "metadata", None), "namespace", "")
        for pdb in self._budgets(namespace):
            self.controller.queue.add(meta_namespace_key(pdb))

    # -- finding a pod's controller's scale (Kubernetes' finders) ------------------------------------

    def find_scale(self, pod: core_pb2.Pod) -> tuple[str, int] | None:
        ref = get_controller_of(pod)
        if ref is None:
            return None
        ns = pod.metadata.namespace
        if ref.kind == "ReplicationController":
            rc = self.rcs.store.get_by_key(f"{ns}/{ref.name}")
            if isinstance(rc, core_pb2.ReplicationController) and rc.metadata.uid == ref.uid:
                return rc.metadata.uid, _replicas(rc.spec)
            return None
        if ref.kind == "ReplicaSet":
            rs = self.replicasets.store.get_by_key(f"{ns}/{ref.name}")
            if not isinstance(rs, apps_pb2.ReplicaSet) or rs.metadata.uid != ref.uid:
                return None
            owner = get_controller_of(rs)
            if owner is not None and owner.kind == "Deployment":
                deploy = self.deployments.store.get_by_key(f"{ns}/{owner.name}")
                if isinstance(deploy, apps_pb2.Deployment) and deploy.metadata.uid == owner.uid:
                    return deploy.metadata.uid, _replicas(deploy.spec)
                return None
            return rs.metadata.uid, _replicas(rs.spec)
        if ref.kind == "StatefulSet":
            sts = self.statefulsets.store.get_by_key(f"{ns}/{ref.name}")
            if isinstance(sts, apps_pb2.StatefulSet) and sts.metadata.uid == ref.uid:
                return sts.metadata.uid, _replicas(sts.spec)
        return None

    # -- reconcile --------------------------------------------------------------------------------

    async def sync(self, key: str) -> Result | None:
        if self.may_write is not None and not self.may_write():
            return None
        namespace, _ = split_key(key)
        pdb = self.pdbs.store.get_by_key(key)
        if pdb is None:
            self._reported.pop(key, None)
            return None
        assert isinstance(pdb, policy_pb2.PodDisruptionBudget)
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, namespace)
                if isinstance(p, core_pb2.Pod) and selects(pdb, p)]
        now = self.clock()
        try:
            computed = compute_status(pdb, pods, self.find_scale, now)
        except SyncError as exc:
            status = fail_safe_status(pdb, str(exc), now)
            if self._reported.get(key) != ("failed", str(exc)):
                self._reported[key] = ("failed", str(exc))
                self.log.warning("pdb sync failed", key=key, error=str(exc))
                self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                    f"Failed to calculate the number of expected pods: {exc}")
            if status != pdb.status:
                await self._write(pdb, status, key)
            return Result(requeue=True)  # as Kubernetes: retried with back-off until it computes
        self._report(key, pdb, pods, computed)
        result = None
        if computed.recheck_at is not None:
            result = Result(requeue_after=max(0.0, computed.recheck_at - now) + 0.1)
        if computed.status is None:
            return result
        written = await self._write(pdb, computed.status, key)
        return written or result

    async def _write(self, pdb: policy_pb2.PodDisruptionBudget, status: policy_pb2.PodDisruptionBudgetStatus,
                     key: str) -> Result | None:
        new = policy_pb2.PodDisruptionBudget()
        new.CopyFrom(pdb)  # never mutate the cached copy
        new.status.CopyFrom(status)
        try:
            written = await self.client.update_status(PDBS, new)
        except api.Conflict:
            return Result(requeue=True)  # the eviction API or another writer was first: recompute
        except api.NotFound:
            return None
        self.log.info("pdb status updated", key=key,
                      resourceVersion=written.metadata.resourceVersion,  # type: ignore[attr-defined]
                      disruptionsAllowed=status.disruptionsAllowed, currentHealthy=status.currentHealthy,
                      desiredHealthy=status.desiredHealthy, expectedPods=status.expectedPods,
                      disruptedPods=sorted(status.disruptedPods))
        return None

    def _report(self, key: str, pdb: policy_pb2.PodDisruptionBudget, pods: list[core_pb2.Pod],
                computed: Computed) -> None:
        """Events, once per change of what there is to say (Kubernetes repeats them every sync)."""
        for pod in computed.expired:
            self.recorder.event(pod, "Warning", "NotDeleted",
                                f"Pod was expected by PDB {pdb.metadata.namespace}/{pdb.metadata.name} "
                                "to be deleted but it wasn't")
        state = ("nopods",) if not pods else computed.unmanaged
        if self._reported.get(key) == state:
            return
        self._reported[key] = state
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        elif computed.unmanaged:
            selector = codec.to_dict(pdb.spec.selector)
            self.recorder.event(
                pdb, "Warning", "UnmanagedPods",
                f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
                "As a result, the status of the PDB cannot be calculated correctly, which may result in "
                'undefined behavior. To account for these pods please set ".spec.minAvailable" field of the '
                "PDB to an integer value.")


def _replicas(spec: Message) -> int:
    """``spec.replicas``, 1 when unset (the apiserver defaults it)."""
    return int(spec.replicas) if spec.HasField("replicas") else 1  # type: ignore[attr-defined]


def new(ctx: ControllerContext) -> Controller:
    return DisruptionController(ctx).controller


__all__ = [
    "DELETION_TIMEOUT",
    "DisruptionController",
    "Expected",
    "SyncError",
    "compute_status",
    "count_healthy",
    "disrupted_pod_map",
    "disruptions_allowed",
    "expected_pod_count",
    "new",
    "selects",
    "update_disruption_allowed_condition",
]
