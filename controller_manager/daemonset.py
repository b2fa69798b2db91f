"""The DaemonSet controller (Kubernetes' pkg/controller/daemon): one pod on every eligible node.

**Which nodes.** A node should run the daemon pod when the pod, as the controller would create it,
fits the node: ``spec.nodeName`` (if the template names a node), ``nodeSelector`` and required node
affinity, and every NoSchedule/NoExecute taint tolerated. The pod "as created" carries the
tolerations Kubernetes adds to every daemon pod — ``node.kubernetes.io/not-ready`` and
``unreachable`` (NoExecute), ``disk-pressure``, ``memory-pressure``, ``pid-pressure``,
``unschedulable`` (NoSchedule) and, for host-network pods, ``network-unavailable`` — so a
daemon keeps running on a node that goes NotReady or is cordoned. A pod already on a node keeps
running there while it tolerates the NoExecute taints (``should_continue_running``), even when a
new NoSchedule taint would keep a new one off.

**How pods get there.** Since Kubernetes 1.12 daemon pods go through the scheduler: each pod is
created unbound with a required node affinity ``metadata.name In [<node>]`` (matchFields), which
replaces the template's required node-affinity terms (the controller has already checked them).
Pods are named ``<ds>-<5 random>`` by the apiserver's ``generateName``.

**Reconcile, per DaemonSet** (handlers only enqueue keys): snapshot the template as a
ControllerRevision (``<ds>-<hash>``, ``revision`` numbers increasing, pods labelled
``controller-revision-hash``); claim pods (adopt orphans matching the selector, release owned
pods that stopped matching); group them by target node; create the missing pods and delete the
extra ones (failed pods after a per-node back-off, duplicates, pods on nodes that should not run
them, pods on nodes that no longer exist); then, once the informer has seen our writes
(expectations), progress a RollingUpdate; prune old revisions beyond ``revisionHistoryLimit``
that no pod uses; write the status.

**RollingUpdate.** With ``maxSurge`` 0, old pods are deleted while at most ``maxUnavailable``
nodes (absolute or percent of the desired nodes, rounded up) are without an available pod; the
manage step recreates them from the new template. With ``maxSurge`` > 0, a new pod is started
next to an old one on up to ``maxSurge`` nodes, and the old pod goes once the new one is
available. ``OnDelete`` replaces a pod only after someone deletes it.

Differences from Kubernetes: the hash that names revisions is an FNV-32a over the template's
canonical JSON (Kubernetes hashes Go's struct dump), so values differ; revisions are not adopted
from other owners; the deprecated ``pod-template-generation`` label is only set when the
DaemonSet carries the ``deprecated.daemonset.template.generation`` annotation (kplane's
apiserver does not add it); pods bound to a node that no longer exists are force-deleted here,
because kplane has no pod garbage collector (Kubernetes leaves them to the PodGC controller).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.expectations import ControllerExpectations
from controller_manager.podcontrol import (
    CONTROLLER_UID_INDEX,
    ClaimError,
    ControllerRefManager,
    PodControl,
    controller_uid_index_func,
    get_controller_of,
    is_pod_available,
    is_pod_ready,
    new_controller_ref,
    objects_for_owner,
    pod_from_template,
    seconds_until_available,
    slow_start_batch,
    ts_seconds,
)
from kplane.api import errors as api
from kplane.api.intstr import get_scaled_value_from_int_or_percent
from kplane.api.labels import Selector, selector_from_label_selector
from kplane.api.pb import apps_pb2, core_pb2
from kplane.api.resources import ResourceType, object_to_dict, resolve
from kplane.api.scheduling import (
    DO_NOT_SCHEDULE_EFFECTS,
    TAINT_EFFECT_NO_EXECUTE,
    find_matching_untolerated_taint,
    required_node_affinity,
)
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, ResourceEventHandlerFuncs, last_known_state
from kplane.client.store import by_owner_uid_index_func
from kplane.logs import get_logger

DAEMONSETS: ResourceType = resolve("daemonsets")
PODS: ResourceType = resolve("pods")
NODES: ResourceType = resolve("nodes")
REVISIONS: ResourceType = resolve("controllerrevisions")

COMPONENT = "daemonset-controller"
REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
OWNER_INDEX = "ownerUID"
FAILED_DAEMON_POD_REASON = "FailedDaemonPod"
# Kubernetes' failedPodsBackoff: 1 s doubling to 15 min, per (DaemonSet, node).
FAILED_POD_BACKOFF = 1.0
MAX_FAILED_POD_BACKOFF = 900.0
BURST_REPLICAS = 250

log = get_logger(component=COMPONENT)


# =============================================================================================
# Pure rules
# =============================================================================================


def _tol(key: str, effect: str) -> dict[str, str]:
    return {"key": key, "operator": "Exists", "effect": effect}


def daemon_tolerations(host_network: bool) -> list[dict[str, str]]:
    """``AddOrUpdateDaemonPodTolerations``: what every daemon pod tolerates."""
    out = [_tol("node.kubernetes.io/not-ready", "NoExecute"), _tol("node.kubernetes.io/unreachable", "NoExecute"),
           _tol("node.kubernetes.io/disk-pressure", "NoSchedule"),
           _tol("node.kubernetes.io/memory-pressure", "NoSchedule"),
           _tol("node.kubernetes.io/pid-pressure", "NoSchedule"),
           _tol("node.kubernetes.io/unschedulable", "NoSchedule")]
    if host_network:
        out.append(_tol("node.kubernetes.io/network-unavailable", "NoSchedule"))
    return out


def add_daemon_tolerations(spec: core_pb2.PodSpec) -> None:
    """Add the daemon tolerations to a pod spec, replacing one with the same key, operator and
    effect (``AddOrUpdateTolerationInPodSpec``)."""
    for want in daemon_tolerations(spec.hostNetwork):
        existing = [t for t in spec.tolerations
                    if t.key == want["key"] and (t.operator or "Equal") == want["operator"] and t.effect == want["effect"]]
        if existing:
            for t in existing:
                t.Clear()
                t.key, t.operator, t.effect = want["key"], want["operator"], want["effect"]
            continue
        spec.tolerations.add(**want)


def replace_node_name_affinity(spec: core_pb2.PodSpec, node_name: str) -> None:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required node affinity becomes exactly
    ``metadata.name In [node_name]`` (preferred terms and pod affinities are kept)."""
    required = spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    del required.nodeSelectorTerms[:]
    term = required.nodeSelectorTerms.add()
    term.matchFields.add(key="metadata.name", operator="In", values=[node_name])


def target_node_name(pod: core_pb2.Pod) -> str:
    """``GetTargetNodeName``: the node a daemon pod is for — its nodeName once bound, else the
    node its ``metadata.name In [...]`` affinity names ("" when neither)."""
    if pod.spec.nodeName:
        return str(pod.spec.nodeName)
    required = pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    for term in required.nodeSelectorTerms:
        for req in term.matchFields:
            if req.key == "metadata.name" and req.operator == "In" and len(req.values) == 1:
                return str(req.values[0])
    return ""


def daemon_pod_spec(template: core_pb2.PodTemplateSpec) -> core_pb2.Pod:
    """The pod the controller would create, without a node: template plus daemon tolerations."""
    pod = core_pb2.Pod()
    pod.metadata.CopyFrom(template.metadata)
    pod.spec.CopyFrom(template.spec)
    add_daemon_tolerations(pod.spec)
    return pod


def node_should_run(node: core_pb2.Node, pod: core_pb2.Pod) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (should run a daemon pod here, should keep one already here).
    ``pod`` is ``daemon_pod_spec(template)``."""
    if pod.spec.nodeName and pod.spec.nodeName != node.metadata.name:
        return False, False
    if not required_node_affinity(pod).matches(node):
        return False, False
    taints, tolerations = list(node.spec.taints), list(pod.spec.tolerations)
    if find_matching_untolerated_taint(taints, tolerations, DO_NOT_SCHEDULE_EFFECTS) is not None:
        untolerated_no_execute = find_matching_untolerated_taint(taints, tolerations, {TAINT_EFFECT_NO_EXECUTE})
        return False, untolerated_no_execute is None
    return True, True


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: no vowels (no words), no look-alike characters."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def compute_hash(template: dict[str, Any], collision_count: int | None) -> str:
    """``ComputeHash``: a short, label-safe hash of the pod template (and the collision count,
    which changes the name when two templates hash alike)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(8, "little")
    return safe_encode(str(_fnv32a(data)))


def revision_data(template: dict[str, Any]) -> dict[str, Any]:
    """``getPatch``: what a ControllerRevision stores — a patch that replaces spec.template."""
    return {"spec": {"template": {**template, "$patch": "replace"}}}


def unavailable_and_surge(strategy: dict[str, Any], desired: int) -> tuple[int, int]:
    """(maxUnavailable, maxSurge) as node counts, percentages of ``desired`` rounded up; both 0
    (an impossible configuration) allows one unavailable node so the rollout can move."""
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    unavailable = get_scaled_value_from_int_or_percent(rolling.get("maxUnavailable", 1), desired, True)
    surge = get_scaled_value_from_int_or_percent(rolling.get("maxSurge", 0), desired, True)
    if desired > 0 and unavailable == 0 and surge == 0:
        unavailable = 1
    return unavailable, surge


def pod_is_updated(pod: core_pb2.Pod, hash_: str, generation: str | None) -> bool:
    """``IsPodUpdated``: labelled with the current revision's hash (or template generation)."""
    labels = pod.metadata.labels
    return (generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation) or \
        labels.get(REVISION_HASH_LABEL) == hash_


def creation_order(pods: Iterable[core_pb2.Pod]) -> list[core_pb2.Pod]:
    """``podByCreationTimestampAndPhase``: bound pods first, then oldest, then by name."""
    def key(p: core_pb2.Pod) -> tuple[int, float, str]:
        created = ts_seconds(p.metadata.creationTimestamp) if p.metadata.HasField("creationTimestamp") else 0.0
        return (0 if p.spec.nodeName else 1, created, p.metadata.name)
    return sorted(pods, key=key)


def updated_pods_on_node(pods: Iterable[core_pb2.Pod], hash_: str, generation: str | None
                         ) -> tuple[core_pb2.Pod | None, core_pb2.Pod | None, bool]:
    """``findUpdatedPodsOnNode``: (the new pod, the old pod, ok) ignoring pods being deleted;
    not ok when there are two of either kind (the manage step cleans that up first)."""
    new = old = None
    for pod in pods:
        if pod.metadata.HasField("deletionTimestamp"):
            continue
        if pod_is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def rolling_update(node_pods: dict[str, list[core_pb2.Pod]], *, hash_: str, generation: str | None,
                   max_surge: int, max_unavailable: int, desired: int, available: Callable[[core_pb2.Pod], bool],
                   should_run: Callable[[str], bool]) -> tuple[list[core_pb2.Pod], list[str]]:
    """One step of a RollingUpdate (``rollingUpdate``): (old pods to delete, nodes to give a new
    pod). ``node_pods`` maps every node that should run the daemon (and every node with daemon
    pods) to its pods."""
    if max_surge == 0:
        unavailable = 0
        replace: list[core_pb2.Pod] = []  # old pods that are not available anyway
        candidates: list[core_pb2.Pod] = []
        for node in sorted(node_pods):
            new, old, ok = updated_pods_on_node(node_pods[node], hash_, generation)
            if not ok or (old is None) == (new is None):
                unavailable += 1  # the manage step is creating or deleting here
            elif new is not None:
                if not available(new):
                    unavailable += 1
            elif old is not None:
                if not available(old):
                    replace.append(old)
                elif unavailable < max_unavailable:
                    candidates.append(old)
        budget = max(0, min(max_unavailable - unavailable, len(candidates)))
        return replace + candidates[:budget], []

    doomed: list[core_pb2.Pod] = []
    misplaced: list[core_pb2.Pod] = []  # available old pods on nodes that should not run one
    surge_candidates: list[str] = []
    allowed: list[str] = []
    surging = available_count = 0
    for node in sorted(node_pods):
        new, old, ok = updated_pods_on_node(node_pods[node], hash_, generation)
        if not ok:
            surging += 1
            continue
        if old is not None:
            available_count += available(old)
        elif new is not None:
            available_count += available(new)
        if old is None:
            continue
        if new is None:
            if not available(old):
                if not should_run(node):
                    doomed.append(old)
                else:
                    allowed.append(node)
            elif not should_run(node):
                misplaced.append(old)
            elif surging < max_surge:
                surge_candidates.append(node)
        elif not available(new):
            surging += 1
        else:
            doomed.append(old)  # the new pod is available: the old one may go
    # with surge the owner expects full availability: retire misplaced pods only beyond desired
    spare = min(available_count - desired, len(misplaced))
    if spare > 0:
        doomed.extend(misplaced[:spare])
    budget = max(0, min(max_surge - surging, len(surge_candidates)))
    return doomed, allowed + surge_candidates[:budget]


@dataclass
class NodePlan:
    """What the manage step does on one node."""

    create: bool = False
    delete: list[core_pb2.Pod] | None = None
    failed: list[core_pb2.Pod] | None = None  # failed pods to delete (after back-off): events


def pods_should_be_on_node(pods: Sequence[core_pb2.Pod], *, should_run: bool, should_continue: bool,
                           surge: bool, hash_: str, available: Callable[[core_pb2.Pod], bool]) -> NodePlan:
    """``podsShouldBeOnNode``: create a pod, delete failed/duplicate pods, or delete them all."""
    plan = NodePlan(delete=[], failed=[])
    assert plan.delete is not None and plan.failed is not None
    if should_run and not pods:
        plan.create = True
        return plan
    if should_continue:
        running = []
        for pod in pods:
            if pod.metadata.HasField("deletionTimestamp"):
                continue
            if pod.status.phase in ("Failed", "Succeeded"):
                plan.failed.append(pod)  # a daemon must not finish: replace it
            else:
                running.append(pod)
        if not surge:
            plan.delete.extend(creation_order(running)[1:])  # keep the oldest
        else:
            oldest_new = oldest_old = None
            for pod in creation_order(running):
                if pod.metadata.labels.get(REVISION_HASH_LABEL) == hash_:
                    if oldest_new is None:
                        oldest_new = pod
                        continue
                elif oldest_old is None:
                    oldest_old = pod
                    continue
                plan.delete.append(pod)
            if oldest_new is not None and oldest_old is not None and (
                    not is_pod_ready(oldest_old) or available(oldest_new)):
                plan.delete.append(oldest_old)
        return plan
    plan.delete.extend(p for p in pods if not p.metadata.HasField("deletionTimestamp"))
    return plan


@dataclass
class DaemonStatus:
    desired: int = 0
    current: int = 0
    misscheduled: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0

    def as_dict(self, generation: int, collision_count: int | None) -> dict[str, Any]:
        out = {"currentNumberScheduled": self.current, "numberMisscheduled": self.misscheduled,
               "desiredNumberScheduled": self.desired, "numberReady": self.ready,
               "observedGeneration": generation, "updatedNumberScheduled": self.updated,
               "numberAvailable": self.available, "numberUnavailable": self.desired - self.available}
        if collision_count is not None:
            out["collisionCount"] = collision_count
        return out


def daemon_status(nodes: Iterable[core_pb2.Node], node_pods: dict[str, list[core_pb2.Pod]],
                  should_run: Callable[[core_pb2.Node], bool], *, hash_: str, generation: str | None,
                  min_ready_seconds: int, now: float) -> DaemonStatus:
    """``updateDaemonSetStatus``'s counts; each node's oldest daemon pod speaks for it."""
    st = DaemonStatus()
    for node in nodes:
        pods = node_pods.get(node.metadata.name) or []
        if should_run(node):
            st.desired += 1
            if not pods:
                continue
            st.current += 1
            pod = creation_order(pods)[0]
            if is_pod_ready(pod):
                st.ready += 1
                if is_pod_available(pod, min_ready_seconds, now):
                    st.available += 1
            if pod_is_updated(pod, hash_, generation):
                st.updated += 1
        elif pods:
            st.misscheduled += 1
    return st


# =============================================================================================
# The controller
# =============================================================================================


class DaemonSetController:
    """Reconciles DaemonSets; ``clock`` gives epoch seconds (availability, back-off)."""

    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time,
                 failed_pod_backoff: float = FAILED_POD_BACKOFF) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.failed_pod_backoff = failed_pod_backoff
        self.recorder = ctx.recorder(COMPONENT)
        self.pod_control = PodControl(ctx.client, self.recorder)
        self.expectations = ControllerExpectations()
        self._failed_backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (ds key, node) -> (delay, at)
        self.daemonsets = ctx.factory.informer_for(DAEMONSETS)
        self.pods = ctx.factory.informer_for(PODS, indexers={CONTROLLER_UID_INDEX: controller_uid_index_func})
        self.nodes = ctx.factory.informer_for(NODES)
        self.revisions = ctx.factory.informer_for(REVISIONS, indexers={OWNER_INDEX: by_owner_uid_index_func})
        self.controller = Controller("daemonset", self.reconcile, workers=ctx.workers)
        self.controller.watch(self.daemonsets)
        self.controller.watch(self.revisions, self._owner_key)
        self.pods.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted))
        self.nodes.add_event_handler(ResourceEventHandlerFuncs(
            on_add=lambda n: self._enqueue_all(), on_update=self._node_updated,
            on_delete=lambda n: self._enqueue_all()))
        self.controller.informers.extend([self.pods, self.nodes])

    # -- events -> keys ---------------------------------------------------------------------------

    @staticmethod
    def _owner_key(obj: Message) -> str | None:
        ref = get_controller_of(obj)
        if ref is None or ref.kind != "DaemonSet":
            return None
        return f"{obj.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]

    def _enqueue_all(self) -> None:
        for key in self.daemonsets.store.list_keys():
            self.controller.queue.add(key)

    def _node_updated(self, old: Message, new: Message) -> None:
        # heartbeats and status churn change nothing for placement: labels, taints and the
        # schedulable bit do
        if (dict(old.metadata.labels) != dict(new.metadata.labels)  # type: ignore[attr-defined]
                or list(old.spec.taints) != list(new.spec.taints)  # type: ignore[attr-defined]
                or old.spec.unschedulable != new.spec.unschedulable):  # type: ignore[attr-defined]
            self._enqueue_all()

    def _orphan_keys(self, pod: Message) -> list[str]:
        keys = []
        labels = pod.metadata.labels  # type: ignore[attr-defined]
        for ds in self.daemonsets.store.by_index("namespace", pod.metadata.namespace):  # type: ignore[attr-defined]
            selector = _selector(ds)
            if selector is not None and not selector.empty() and selector.matches(labels):
                keys.append(f"{ds.metadata.namespace}/{ds.metadata.name}")  # type: ignore[attr-defined]
        return keys

    def _pod_keys(self, pod: Message) -> list[str]:
        if get_controller_of(pod) is None:
            return self._orphan_keys(pod)
        key = self._owner_key(pod)
        return [key] if key else []

    def _pod_added(self, pod: Message) -> None:
        key = self._owner_key(pod)
        if key is not None:
            if pod.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
                self.expectations.deletion_observed(key, pod.metadata.uid)  # type: ignore[attr-defined]
            else:
                self.expectations.creation_observed(key)
        for k in self._pod_keys(pod):
            self.controller.queue.add(k)

    def _pod_updated(self, old: Message, new: Message) -> None:
        key = self._owner_key(new)
        deleting = new.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
        if key is not None and deleting and not old.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            self.expectations.deletion_observed(key, new.metadata.uid)  # type: ignore[attr-defined]
        for k in {*self._pod_keys(new), *self._pod_keys(old)}:
            self.controller.queue.add(k)

    def _pod_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        pod = last_known_state(obj)
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, pod.metadata.uid)  # type: ignore[attr-defined]
            self.controller.queue.add(key)

    # -- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        if self.may_write is not None and not self.may_write():
            return None  # leadership lost: the next leader reconciles
        try:
            return await self._reconcile(key)
        except api.Conflict as exc:
            # a write raced one we made moments ago (our cache was behind): not a failure, look
            # again once the informer has caught up
            log.debug("write conflict; requeueing", key=key, error=str(exc))
            return Result(requeue=True)

    async def _reconcile(self, key: str) -> Result | None:
        ds = self.daemonsets.store.get_by_key(key)
        if ds is None:
            self.expectations.delete(key)
            for k in [k for k in self._failed_backoff if k[0] == key]:
                del self._failed_backoff[k]
            return None
        assert isinstance(ds, apps_pb2.DaemonSet)
        if ds.metadata.HasField("deletionTimestamp"):
            return None  # its pods go with it (garbage collector); nothing to create or report
        selector = _selector(ds)
        if selector is None or selector.empty():
            self.recorder.event(ds, "Warning", "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector is required.")
            return None
        data = object_to_dict(DAEMONSETS, ds)
        now = self.clock()
        nodes = [n for n in self.nodes.store.list() if isinstance(n, core_pb2.Node)]
        template_pod = daemon_pod_spec(ds.spec.template)
        runs = {n.metadata.name: node_should_run(n, template_pod) for n in nodes}
        hash_, old_revisions = await self._history(ds, data)
        generation = ds.metadata.annotations.get(TEMPLATE_GENERATION_ANNOTATION)
        node_pods = await self._node_pods(ds, selector)
        result = Result()
        if self.expectations.satisfied(key):
            result = await self._manage(key, ds, nodes, runs, node_pods, hash_, generation, now)
            if self.expectations.satisfied(key) and data["spec"].get("updateStrategy", {}).get(
                    "type", "RollingUpdate") == "RollingUpdate":
                await self._rolling_update(key, ds, data, runs, node_pods, hash_, generation, now)
            await self._cleanup_history(ds, old_revisions, node_pods)
        requeue = await self._update_status(ds, data, nodes, runs, node_pods, hash_, generation, now)
        if requeue is not None and (result.requeue_after is None or requeue < result.requeue_after):
            result = Result(requeue_after=requeue)
        return result if result.requeue_after is not None else None

    async def _node_pods(self, ds: apps_pb2.DaemonSet, selector: Selector, *, claim: bool = True
                         ) -> dict[str, list[core_pb2.Pod]]:
        """``getNodesToDaemonPods``: the DaemonSet's pods by target node (claiming orphans first);
        finished pods that are being deleted no longer count."""
        candidates = [p for p in objects_for_owner(self.pods.store, ds, include_orphans=claim)
                      if isinstance(p, core_pb2.Pod)]
        pods = candidates
        if claim:
            manager = ControllerRefManager(self.client, ds, selector, controller_rt=DAEMONSETS)
            try:
                pods = await manager.claim_pods(candidates)
            except ClaimError as exc:
                log.warning("claiming pods failed", key=f"{ds.metadata.namespace}/{ds.metadata.name}", error=str(exc))
                pods = [p for p in exc.claimed if isinstance(p, core_pb2.Pod)]
        out: dict[str, list[core_pb2.Pod]] = {}
        for pod in pods:
            if pod.metadata.HasField("deletionTimestamp") and pod.status.phase in ("Succeeded", "Failed"):
                continue
            out.setdefault(target_node_name(pod), []).append(pod)
        return out

    # -- history -------------------------------------------------------------------------------------

    async def _history(self, ds: apps_pb2.DaemonSet, data: dict[str, Any]
                       ) -> tuple[str, list[apps_pb2.ControllerRevision]]:
        """``constructHistory``: the current revision's hash (creating or renumbering it) and the
        other revisions, oldest first."""
        template = data["spec"].get("template") or {}
        wanted = revision_data(template)
        owned = sorted((r for r in self.revisions.store.by_index(OWNER_INDEX, ds.metadata.uid)
                        if isinstance(r, apps_pb2.ControllerRevision)), key=lambda r: r.revision)
        current = [r for r in owned if _revision_json(r) == wanted]
        old = [r for r in owned if _revision_json(r) != wanted]
        max_revision = max((r.revision for r in owned), default=0)
        if current:
            # duplicates (a lost race): keep the newest, the rest are history
            keep = current[-1]
            old.extend(current[:-1])
            if keep.revision < max_revision:
                renumbered = object_to_dict(REVISIONS, keep)
                renumbered["revision"] = max_revision + 1
                await self.client.update(REVISIONS, renumbered)
            return keep.metadata.labels.get(REVISION_HASH_LABEL, ""), sorted(old, key=lambda r: r.revision)
        collision = ds.status.collisionCount if ds.status.HasField("collisionCount") else None
        hash_ = compute_hash(template, collision)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels[REVISION_HASH_LABEL] = hash_
        owner = new_controller_ref(ds, DAEMONSETS)
        body: dict[str, Any] = {
            "apiVersion": REVISIONS.api_version, "kind": REVISIONS.kind,
            "metadata": {"name": f"{ds.metadata.name}-{hash_}", "namespace": ds.metadata.namespace,
                         "labels": labels, "annotations": dict(ds.metadata.annotations),
                         "ownerReferences": [{"apiVersion": owner.apiVersion, "kind": owner.kind,
                                              "name": owner.name, "uid": owner.uid, "controller": True,
                                              "blockOwnerDeletion": True}]},
            "data": wanted, "revision": max_revision + 1}
        if not body["metadata"]["annotations"]:
            del body["metadata"]["annotations"]
        try:
            await self.client.create(REVISIONS, body, namespace=ds.metadata.namespace)
        except api.AlreadyExists:
            existing = await self.client.get(REVISIONS, body["metadata"]["name"], namespace=ds.metadata.namespace)
            assert isinstance(existing, apps_pb2.ControllerRevision)
            ref = get_controller_of(existing)
            if ref is not None and ref.uid == ds.metadata.uid and _revision_json(existing) == wanted:
                return hash_, sorted(old, key=lambda r: r.revision)  # ours: the cache was behind
            # a different revision holds the name: bump the collision count and try again
            status = dict(data.get("status") or {})
            status["collisionCount"] = (collision or 0) + 1
            await self.client.update_status(DAEMONSETS, {**data, "status": status})
            raise RuntimeError(f"controller revision {body['metadata']['name']} exists; collisionCount raised") from None
        return hash_, sorted(old, key=lambda r: r.revision)

    async def _cleanup_history(self, ds: apps_pb2.DaemonSet, old: list[apps_pb2.ControllerRevision],
                               node_pods: dict[str, list[core_pb2.Pod]]) -> None:
        """``cleanupHistory``: delete the oldest revisions beyond revisionHistoryLimit that no
        live pod is labelled with."""
        limit = ds.spec.revisionHistoryLimit if ds.spec.HasField("revisionHistoryLimit") else 10
        in_use = {p.metadata.labels.get(REVISION_HASH_LABEL) for pods in node_pods.values() for p in pods}
        unused = [r for r in old if r.metadata.labels.get(REVISION_HASH_LABEL) not in in_use]
        for rev in unused[: max(0, len(unused) - limit)]:
            try:
                await self.client.delete(REVISIONS, rev.metadata.name, namespace=rev.metadata.namespace,
                                         uid=rev.metadata.uid)
            except api.NotFound:
                pass

    # -- manage ----------------------------------------------------------------------------------------

    def _in_backoff(self, key: str, node: str, now: float) -> float:
        """Seconds left in the failed-pod back-off for (DaemonSet, node); 0 means act, and
        starts (or doubles) the next back-off."""
        delay, at = self._failed_backoff.get((key, node), (0.0, 0.0))
        if delay and now < at + delay:
            return at + delay - now
        self._failed_backoff[(key, node)] = (min(max(delay * 2, self.failed_pod_backoff), MAX_FAILED_POD_BACKOFF), now)
        return 0.0

    async def _manage(self, key: str, ds: apps_pb2.DaemonSet, nodes: list[core_pb2.Node],
                      runs: dict[str, tuple[bool, bool]], node_pods: dict[str, list[core_pb2.Pod]], hash_: str,
                      generation: str | None, now: float) -> Result:
        surge = self._surge_allowed(ds)
        min_ready = ds.spec.minReadySeconds

        def available(p: core_pb2.Pod) -> bool:
            return is_pod_available(p, min_ready, now)

        create: list[str] = []
        delete: list[core_pb2.Pod] = []
        requeue: float | None = None
        for node in nodes:
            name = node.metadata.name
            should_run, should_continue = runs[name]
            plan = pods_should_be_on_node(node_pods.get(name) or [], should_run=should_run,
                                          should_continue=should_continue, surge=surge, hash_=hash_,
                                          available=available)
            if plan.create:
                create.append(name)
            delete.extend(plan.delete or [])
            for pod in plan.failed or []:
                wait = self._in_backoff(key, name, now)
                if wait:
                    requeue = wait if requeue is None else min(requeue, wait)
                    continue
                self.recorder.event(ds, "Warning", FAILED_DAEMON_POD_REASON,
                                    f"Found failed daemon pod {pod.metadata.namespace}/{pod.metadata.name} on node "
                                    f"{name}, will try to kill it")
                delete.append(pod)
        known = {n.metadata.name for n in nodes}
        for node_name, pods in node_pods.items():
            if node_name in known:
                continue
            # the node is gone (or the pod names none): nothing will ever run or stop these
            delete.extend(p for p in pods if not p.metadata.HasField("deletionTimestamp"))
        await self._sync_nodes(key, ds, delete, create, hash_, generation, known)
        return Result(requeue_after=requeue)

    @staticmethod
    def _surge_allowed(ds: apps_pb2.DaemonSet) -> bool:
        data = object_to_dict(DAEMONSETS, ds)
        strategy = data.get("spec", {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False
        surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", 0)
        return surge not in (0, "0", "0%", None)

    async def _sync_nodes(self, key: str, ds: apps_pb2.DaemonSet, delete: list[core_pb2.Pod], create: list[str],
                          hash_: str, generation: str | None, known_nodes: set[str]) -> None:
        """``syncNodes``: create pods for ``create`` nodes and delete ``delete`` pods, with
        expectations recorded first so the next sync waits for the informer to see them."""
        create = create[:BURST_REPLICAS]
        delete = delete[:BURST_REPLICAS]
        if not create and not delete:
            return
        self.expectations.expect_deletions(key, [p.metadata.uid for p in delete])
        if create:
            # one record holds both counts: raise its add count to what we are about to create
            self.expectations.lower(key, adds=-len(create))
        queue = list(create)

        async def create_one() -> None:
            node = queue.pop(0)  # before any await: concurrent calls take distinct nodes
            pod = pod_from_template(ds.spec.template, ds, new_controller_ref(ds, DAEMONSETS))
            pod.metadata.labels[REVISION_HASH_LABEL] = hash_
            if generation is not None:
                pod.metadata.labels[TEMPLATE_GENERATION_LABEL] = generation
            add_daemon_tolerations(pod.spec)
            replace_node_name_affinity(pod.spec, node)
            try:
                await self.pod_control.create_pod(ds.metadata.namespace, pod, ds)
            except api.APIError:
                self.expectations.lower(key, adds=1)
                raise

        error: BaseException | None = None
        if create:
            _, error = await slow_start_batch(len(create), create_one)
            if queue:
                self.expectations.lower(key, adds=len(queue))
        for pod in delete:
            node = target_node_name(pod)
            force = bool(pod.spec.nodeName) and node not in known_nodes
            try:
                await self.pod_control.delete_pod(pod.metadata.namespace, pod.metadata.name, ds, uid=pod.metadata.uid,
                                                  grace_period=0 if force else None)
            except api.NotFound:
                self.expectations.deletion_observed(key, pod.metadata.uid)
            except api.APIError as exc:
                self.expectations.deletion_observed(key, pod.metadata.uid)
                error = error or exc
        if error is not None:
            raise error

    # -- rolling update ----------------------------------------------------------------------------------

    async def _rolling_update(self, key: str, ds: apps_pb2.DaemonSet, data: dict[str, Any],
                              runs: dict[str, tuple[bool, bool]], node_pods: dict[str, list[core_pb2.Pod]],
                              hash_: str, generation: str | None, now: float) -> None:
        pods_by_node = {name: list(pods) for name, pods in node_pods.items() if name in runs}
        desired = 0
        for name, (should_run, _) in runs.items():
            if should_run:
                desired += 1
                pods_by_node.setdefault(name, [])
        strategy = data["spec"].get("updateStrategy") or {}
        max_unavailable, max_surge = unavailable_and_surge(strategy, desired)
        min_ready = ds.spec.minReadySeconds
        doomed, new_nodes = rolling_update(
            pods_by_node, hash_=hash_, generation=generation, max_surge=max_surge, max_unavailable=max_unavailable,
            desired=desired, available=lambda p: is_pod_available(p, min_ready, now),
            should_run=lambda n: runs.get(n, (False, False))[0])
        if doomed or new_nodes:
            log.info("rolling update step", key=key, delete=[p.metadata.name for p in doomed], create=new_nodes,
                     resourceVersion=ds.metadata.resourceVersion)
        await self._sync_nodes(key, ds, doomed, new_nodes, hash_, generation, set(runs))

    # -- status ----------------------------------------------------------------------------------------

    async def _update_status(self, ds: apps_pb2.DaemonSet, data: dict[str, Any], nodes: list[core_pb2.Node],
                             runs: dict[str, tuple[bool, bool]], node_pods: dict[str, list[core_pb2.Pod]],
                             hash_: str, generation: str | None, now: float) -> float | None:
        min_ready = ds.spec.minReadySeconds
        st = daemon_status(nodes, node_pods, lambda n: runs[n.metadata.name][0], hash_=hash_, generation=generation,
                           min_ready_seconds=min_ready, now=now)
        current = dict(data.get("status") or {})
        collision = current.get("collisionCount")
        wanted = {**{k: v for k, v in current.items() if k == "conditions"},
                  **st.as_dict(ds.metadata.generation, collision)}
        if wanted != current:
            await self.client.update_status(DAEMONSETS, {**data, "status": wanted})
        if min_ready > 0 and st.ready != st.available:
            waits = [w for pods in node_pods.values() for p in pods
                     if (w := seconds_until_available(p, min_ready, now)) is not None]
            return min(waits) if waits else float(min_ready)
        return None


def _selector(ds: Message) -> Selector | None:
    try:
        return selector_from_label_selector(object_to_dict(DAEMONSETS, ds).get("spec", {}).get("selector"))
    except ValueError:
        return None


def _revision_json(rev: apps_pb2.ControllerRevision) -> Any:
    try:
        return json.loads(rev.data.raw) if rev.data.raw else None
    except ValueError:
        return None


def new(ctx: ControllerContext) -> Controller:
    """Registry entry: the DaemonSet controller."""
    return DaemonSetController(ctx).controller
