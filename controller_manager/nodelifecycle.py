"""Node failures: the node lifecycle controller and the NoExecute taint eviction controller
(Kubernetes' pkg/controller/nodelifecycle and pkg/controller/tainteviction).

**Health.** Every ``--node-monitor-period`` (5 s) each node's last sign of life is the later of
its ``kube-node-lease`` Lease ``renewTime`` and its Ready condition's ``lastHeartbeatTime`` (and
its creation time). A node not heard from for ``--node-monitor-grace-period`` (50 s;
``--node-startup-grace-period``, 60 s, while it never posted Ready) gets Ready and the other
kubelet-owned conditions set to Unknown (reason ``NodeStatusUnknown``, "Kubelet stopped posting
node status."; ``NodeStatusNeverUpdated`` for conditions it never posted), a ``NodeNotReady``
event, and every pod on it its Ready condition set to False (``MarkPodsNotReady``, a
``NodeNotReady`` event per pod).

**Taints.** NoSchedule taints follow the conditions (``not-ready`` when the kubelet reports
Ready=False, ``unreachable`` when Ready is Unknown, ``memory-pressure``, ``disk-pressure``,
``pid-pressure``, ``network-unavailable``, and ``unschedulable`` for a cordoned node). The
NoExecute ``not-ready``/``unreachable`` taints go through a rate-limited queue per zone; an
existing one is swapped at once when Ready flips between False and Unknown, and both are removed
at once when the node is Ready again. Every taint the controller adds carries ``timeAdded``.

**Zones** (simplified from Kubernetes, which keys zones by region and zone): the zone is the
``topology.kubernetes.io/zone`` label (no label: one zone of its own). A zone is
FullDisruption when none of its nodes is Ready, PartialDisruption when more than 2 nodes and at
least ``--unhealthy-zone-threshold`` (0.55) of them are not Ready, else Normal. NoExecute
tainting runs at ``--node-eviction-rate`` (0.1 nodes/s) in Normal and FullDisruption zones, at
``--secondary-node-eviction-rate`` (0.01) in PartialDisruption zones of clusters with more than
``--large-cluster-size-threshold`` (50) nodes and not at all in smaller ones. When every zone is
fully disrupted (the control plane is more likely cut off than every node dead) tainting stops
and the NoExecute taints are removed; when some node is Ready again every node gets a fresh grace
period ("master disruption mode", as Kubernetes).

**Eviction.** A pod on a node with NoExecute taints it does not tolerate is deleted at once; one
that tolerates them all is deleted at ``timeAdded + tolerationSeconds`` (the earliest over the
taints, each taint matched by its first tolerating toleration, as Kubernetes); a pod tolerating
them forever stays; a taint removed before the deadline cancels the deletion. Before deleting,
the pod gets the ``DisruptionTarget`` condition (``DeletionByTaintManager``); events
``TaintManagerEviction`` "Marking for deletion Pod ns/name" / "Cancelling deletion of Pod
ns/name".

**Restarts.** Everything is recomputed from the Node, Lease and Pod informers: conditions and
taints are on the nodes, eviction deadlines come from the taints' ``timeAdded``. As in
Kubernetes, a controller that starts (or takes over leadership) gives every node one grace
period from its start before declaring it Unknown, so a control plane that was down itself does
not condemn every node at once. Kubernetes measures silence by when *it* saw a heartbeat change
(immune to clock skew between machines); kplane reads the heartbeat times the kubelets wrote,
which is what makes a restart lose nothing, and assumes the machines' clocks agree.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge

from controller_manager.context import ControllerContext, NodeLifecycleOptions
from kplane.api import errors as api
from kplane.api.pb import coordination_pb2, core_pb2
from kplane.api.resources import ResourceType, resolve
from kplane.api.scheduling import tolerates_taint
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, ResourceEventHandlerFuncs, last_known_state
from kplane.client.store import NODE_NAME_INDEX, pods_by_node_index_func
from kplane.logs import get_logger

NODES: ResourceType = resolve("nodes")
PODS: ResourceType = resolve("pods")
LEASES: ResourceType = resolve("leases")
LEASE_NAMESPACE = "kube-node-lease"

COMPONENT = "node-controller"
TAINT_COMPONENT = "taint-eviction-controller"
ZONE_LABEL = "topology.kubernetes.io/zone"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"

# (condition type, status) -> the NoSchedule taint it calls for (nodeConditionToTaintKeyStatusMap)
CONDITION_TAINTS: dict[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): MEMORY_PRESSURE,
    ("DiskPressure", "True"): DISK_PRESSURE,
    ("PIDPressure", "True"): PID_PRESSURE,
    ("NetworkUnavailable", "True"): NETWORK_UNAVAILABLE,
}
NO_SCHEDULE_KEYS = frozenset([*CONDITION_TAINTS.values(), UNSCHEDULABLE])
NO_EXECUTE_KEYS = (NOT_READY, UNREACHABLE)
# The conditions a kubelet posts; the controller sets them Unknown when it goes silent.
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

NORMAL, PARTIAL_DISRUPTION, FULL_DISRUPTION = "Normal", "PartialDisruption", "FullDisruption"

MONITOR_KEY = "monitor"  # the node lifecycle controller's two pseudo-keys (one worker: never concurrent)
TAINT_PASS_KEY = "noexecute-tainting"
DISRUPTION_REASON = "DeletionByTaintManager"
DISRUPTION_MESSAGE = "Taint manager: deleting due to NoExecute taint"

ZONE_HEALTH = Gauge("node_collector_zone_health", "percentage of healthy nodes per zone", ["zone"])
ZONE_SIZE = Gauge("node_collector_zone_size", "nodes per zone", ["zone"])
UNHEALTHY_NODES = Gauge("node_collector_unhealthy_nodes_in_zone", "not-ready nodes per zone", ["zone"])
EVICTIONS = Counter("node_collector_evictions_total", "nodes tainted NoExecute, by zone", ["zone"])
TAINT_EVICTIONS = Counter("taint_eviction_controller_pod_deletions_total", "pods deleted for NoExecute taints")

log = get_logger(component=COMPONENT)
taint_log = get_logger(component=TAINT_COMPONENT)


# =============================================================================================
# Pure rules
# =============================================================================================


def ts_seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def whole_seconds(now: float) -> Timestamp:
    """Kubernetes times (metav1.Time) have whole seconds."""
    ts = Timestamp()
    ts.FromSeconds(int(now))
    return ts


def node_condition(node: core_pb2.Node, ctype: str) -> core_pb2.NodeCondition | None:
    for cond in node.status.conditions:
        if cond.type == ctype:
            return cond
    return None


def ready_status(node: core_pb2.Node) -> str | None:
    """The Ready condition's status ("True", "False", "Unknown"), None when never posted."""
    cond = node_condition(node, "Ready")
    return str(cond.status) if cond is not None else None


def last_heard(node: core_pb2.Node, lease: coordination_pb2.Lease | None) -> float:
    """The node's last sign of life: its lease renewal, its Ready heartbeat, its creation."""
    times = [ts_seconds(node.metadata.creationTimestamp)] if node.metadata.HasField("creationTimestamp") else [0.0]
    if lease is not None and lease.spec.HasField("renewTime"):
        times.append(ts_seconds(lease.spec.renewTime))
    ready = node_condition(node, "Ready")
    if ready is not None and ready.HasField("lastHeartbeatTime"):
        times.append(ts_seconds(ready.lastHeartbeatTime))
    return max(times)


def grace_period(node: core_pb2.Node, opts: NodeLifecycleOptions) -> float:
    """Startup grace for a node that never posted Ready, the monitor grace otherwise."""
    return opts.node_startup_grace_period if node_condition(node, "Ready") is None else opts.node_monitor_grace_period


def is_silent(node: core_pb2.Node, lease: coordination_pb2.Lease | None, now: float,
              opts: NodeLifecycleOptions, *, not_before: float = 0.0) -> bool:
    """Whether the node has not been heard from for longer than its grace period. ``not_before``
    (the controller's start, or the end of a full disruption) counts as a sign of life."""
    return now - max(last_heard(node, lease), not_before) > grace_period(node, opts)


def unknown_conditions(node: core_pb2.Node, now: float) -> list[core_pb2.NodeCondition] | None:
    """The node's conditions with the kubelet-owned ones set to Unknown (tryUpdateNodeHealth);
    None when they already are. Heartbeats are kept, transitions stamped ``now``."""
    out: list[core_pb2.NodeCondition] = []
    changed = False
    seen = set()
    for cond in node.status.conditions:
        copy = core_pb2.NodeCondition()
        copy.CopyFrom(cond)
        if cond.type in KUBELET_CONDITIONS:
            seen.add(cond.type)
            if cond.status != "Unknown":
                copy.status, copy.reason = "Unknown", "NodeStatusUnknown"
                copy.message = "Kubelet stopped posting node status."
                copy.lastTransitionTime.CopyFrom(whole_seconds(now))
                changed = True
        out.append(copy)
    for ctype in KUBELET_CONDITIONS:
        if ctype not in seen:
            cond = core_pb2.NodeCondition(type=ctype, status="Unknown", reason="NodeStatusNeverUpdated",
                                          message="Kubelet never posted node status.")
            if node.metadata.HasField("creationTimestamp"):
                cond.lastHeartbeatTime.CopyFrom(node.metadata.creationTimestamp)
            cond.lastTransitionTime.CopyFrom(whole_seconds(now))
            out.append(cond)
            changed = True
    return out if changed else None


def no_schedule_taint_keys(node: core_pb2.Node) -> set[str]:
    """The NoSchedule taints the node's conditions (and cordon) call for (doNoScheduleTaintingPass)."""
    keys = {CONDITION_TAINTS[(c.type, c.status)] for c in node.status.conditions
            if (c.type, c.status) in CONDITION_TAINTS}
    if node.spec.unschedulable:
        keys.add(UNSCHEDULABLE)
    return keys


def no_execute_taint_key(ready: str | None) -> str | None:
    """The NoExecute taint a Ready status calls for: not-ready (False), unreachable (Unknown)."""
    return {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready or "")


def has_taint(node: core_pb2.Node, key: str, effect: str) -> bool:
    return any(t.key == key and t.effect == effect for t in node.spec.taints)


def swap_taints(taints: Sequence[core_pb2.Taint], add: Iterable[tuple[str, str]], remove: Iterable[tuple[str, str]],
                now: float) -> list[core_pb2.Taint] | None:
    """``taints`` with the (key, effect) pairs of ``remove`` dropped and those of ``add`` present
    (an existing one is kept as is, its timeAdded too; a new one is stamped ``now``). None when
    nothing changes."""
    add_set, remove_set = set(add), set(remove) - set(add)
    out: list[core_pb2.Taint] = []
    present: set[tuple[str, str]] = set()
    for taint in taints:
        pair = (str(taint.key), str(taint.effect))
        if pair in remove_set:
            continue
        present.add(pair)
        copy = core_pb2.Taint()
        copy.CopyFrom(taint)
        out.append(copy)
    for key, effect in sorted(add_set - present):
        out.append(core_pb2.Taint(key=key, effect=effect, timeAdded=whole_seconds(now)))
    if len(out) == len(taints) and all(a == b for a, b in zip(out, taints, strict=True)):
        return None
    return out


def eviction_deadline(taints: Iterable[core_pb2.Taint], tolerations: Sequence[core_pb2.Toleration], *,
                      added_at: Callable[[core_pb2.Taint], float]) -> float | None:
    """When a pod must leave a node with these NoExecute taints: ``-inf`` (now) when one of them is
    not tolerated; the earliest ``added_at(taint) + tolerationSeconds`` over the taints, each taint
    matched by its first tolerating toleration (GetMatchingTolerations); None when every matching
    toleration tolerates forever (or there is no NoExecute taint)."""
    deadline: float | None = None
    for taint in taints:
        if taint.effect != NO_EXECUTE:
            continue
        match = next((t for t in tolerations if tolerates_taint(t, taint)), None)
        if match is None:
            return -math.inf
        if not match.HasField("tolerationSeconds"):
            continue
        at = added_at(taint) + max(0, match.tolerationSeconds)
        deadline = at if deadline is None else min(deadline, at)
    return deadline


def zone_of(node: core_pb2.Node) -> str:
    return str(node.metadata.labels.get(ZONE_LABEL, ""))


def zone_state(ready: Sequence[str | None], unhealthy_threshold: float) -> tuple[int, str]:
    """(not-ready nodes, state) of a zone from its nodes' Ready statuses (ComputeZoneState)."""
    ready_nodes = sum(1 for r in ready if r == "True")
    not_ready = len(ready) - ready_nodes
    if ready_nodes == 0 and not_ready > 0:
        return not_ready, FULL_DISRUPTION
    if not_ready > 2 and not_ready / len(ready) >= unhealthy_threshold:
        return not_ready, PARTIAL_DISRUPTION
    return not_ready, NORMAL


def zone_tainting_rate(state: str, cluster_size: int, opts: NodeLifecycleOptions) -> float:
    """NoExecute taints per second in a zone (setLimiterInZone): the full rate when Normal (and,
    as Kubernetes, when only this zone is fully disrupted), the secondary rate when partially
    disrupted in a large cluster, none in a small one."""
    if state == PARTIAL_DISRUPTION:
        return opts.secondary_node_eviction_rate if cluster_size > opts.large_cluster_size_threshold else 0.0
    return opts.node_eviction_rate


class TokenBucket:
    """A token bucket with burst 1 that starts full (flowcontrol.NewTokenBucketRateLimiter); a
    rate of 0 never accepts (NewFakeNeverRateLimiter)."""

    def __init__(self, qps: float, clock: Callable[[], float]) -> None:
        self.qps = qps
        self.clock = clock
        self._tokens = 1.0
        self._last = clock()

    def _refill(self) -> None:
        now = self.clock()
        if self.qps > 0:
            self._tokens = min(1.0, self._tokens + (now - self._last) * self.qps)
        self._last = now

    def try_accept(self) -> bool:
        if self.qps <= 0:
            return False
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def seconds_until_token(self) -> float:
        if self.qps <= 0:
            return math.inf
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.qps)


class ZoneTaintQueue:
    """Nodes waiting for a NoExecute taint in one zone, first come first served, released at the
    zone's rate (RateLimitedTimedQueue). Invariant: a node is queued at most once."""

    def __init__(self, qps: float, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.limiter = TokenBucket(qps, clock)
        self.items: OrderedDict[str, float] = OrderedDict()  # node name -> when queued

    def add(self, name: str) -> bool:
        if name in self.items:
            return False
        self.items[name] = self.clock()
        return True

    def remove(self, name: str) -> None:
        self.items.pop(name, None)

    def swap_limiter(self, qps: float) -> None:
        """A new rate; a bucket that was empty stays empty (SwapLimiter with burst 1)."""
        if qps == self.limiter.qps:
            return
        was_empty = not self.limiter.try_accept()
        self.limiter = TokenBucket(qps, self.clock)
        if was_empty:
            self.limiter.try_accept()

    async def process(self, fn: Callable[[str], Awaitable[bool]]) -> None:
        """Hand queued nodes to ``fn`` while the rate allows; a node stays queued when ``fn``
        returns False (a failed write: try again on a later pass)."""
        for name in list(self.items):
            if name not in self.items:
                continue
            if not self.limiter.try_accept():
                return
            if await fn(name):
                self.items.pop(name, None)

    def next_attempt_in(self) -> float | None:
        """Seconds until the queue can release its next node; None when it is empty."""
        if not self.items:
            return None
        return self.limiter.seconds_until_token()


def _node_key(obj: Message) -> str:
    return str(obj.metadata.name)  # type: ignore[attr-defined]


# =============================================================================================
# The node lifecycle controller
# =============================================================================================


class NodeLifecycleController:
    """Health, conditions, taints and zones. Two controllers over one set of informers:
    ``nodelifecycle`` (one worker; the periodic health pass and the NoExecute tainting pass as
    pseudo-keys) and ``node-taint`` (NoSchedule taints, keyed by node name)."""

    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.opts = ctx.node_lifecycle
        self.may_write = ctx.may_write
        self.clock = clock
        self.recorder = ctx.recorder(COMPONENT)
        self.nodes = ctx.factory.informer_for(NODES)
        self.leases = ctx.factory.informer_for(LEASES, namespace=LEASE_NAMESPACE)
        self.pods = ctx.factory.informer_for(PODS, indexers={NODE_NAME_INDEX: pods_by_node_index_func})
        self.started_at = clock()
        self.grace_floor = self.started_at  # a sign of life for every node: see the module doc
        self.zone_queues: dict[str, ZoneTaintQueue] = {}
        self.zone_states: dict[str, str] = {}
        self.all_disrupted = False
        self.known_nodes: set[str] = set()
        self.controller = Controller("nodelifecycle", self.reconcile, workers=1)
        self.controller.informers.extend([self.nodes, self.leases, self.pods])
        self.controller.queue.add(MONITOR_KEY)
        self.taints = Controller("node-taint", self.reconcile_taints, workers=ctx.workers)
        self.taints.watch(self.nodes, _node_key)

    def _writable(self) -> bool:
        return self.may_write is None or self.may_write()

    # -- the periodic passes -----------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        if not self._writable():
            return None
        if key == MONITOR_KEY:
            await self.monitor()
            return Result(requeue_after=self.opts.node_monitor_period)
        if key == TAINT_PASS_KEY:
            return await self.tainting_pass()
        return None

    def _lease(self, name: str) -> coordination_pb2.Lease | None:
        lease = self.leases.store.get_by_key(f"{LEASE_NAMESPACE}/{name}")
        return lease if isinstance(lease, coordination_pb2.Lease) else None

    def _queue(self, zone: str) -> ZoneTaintQueue:
        queue = self.zone_queues.get(zone)
        if queue is None:
            queue = self.zone_queues[zone] = ZoneTaintQueue(self.opts.node_eviction_rate, self.clock)
        return queue

    async def monitor(self) -> None:
        """monitorNodeHealth: conditions, pods, NoExecute taints, then zones."""
        now = self.clock()
        nodes = sorted((n for n in self.nodes.store.list() if isinstance(n, core_pb2.Node)),
                       key=lambda n: n.metadata.name)
        names = {n.metadata.name for n in nodes}
        for node in nodes:
            if node.metadata.name not in self.known_nodes:
                self.known_nodes.add(node.metadata.name)
                self.recorder.event(node, "Normal", "RegisteredNode",
                                    f"Node {node.metadata.name} event: Registered Node {node.metadata.name} in Controller")
        for gone in sorted(self.known_nodes - names):
            self.known_nodes.discard(gone)
            for queue in self.zone_queues.values():
                queue.remove(gone)
            log.info("node deleted", node=gone)
        zone_ready: dict[str, list[str | None]] = {}
        for node in nodes:
            try:
                node = await self._update_health(node, now)
            except api.APIError as exc:  # an outage or a race: the next pass looks again
                log.warning("node health update failed", node=node.metadata.name, error=str(exc))
            ready = ready_status(node)
            zone_ready.setdefault(zone_of(node), []).append(ready)
            if ready == "Unknown":
                await self._mark_pods_not_ready(node)
            if ready is not None:
                await self._taint_for_eviction(node, ready)
        await self._handle_disruption(zone_ready, nodes, len(nodes))

    async def _update_health(self, node: core_pb2.Node, now: float) -> core_pb2.Node:
        """tryUpdateNodeHealth: a silent node's kubelet conditions become Unknown. Returns the node
        as it now is (written, or the cached one)."""
        for attempt in range(3):
            if not is_silent(node, self._lease(node.metadata.name), now, self.opts, not_before=self.grace_floor):
                return node
            conditions = unknown_conditions(node, now)
            if conditions is None:
                return node
            was_ready = ready_status(node) == "True"
            updated = core_pb2.Node()
            updated.CopyFrom(node)
            del updated.status.conditions[:]
            updated.status.conditions.extend(conditions)
            try:
                written = await self.client.update_status(NODES, updated)
            except api.Conflict:
                if attempt == 2:
                    raise
                fresh = await self.client.get(NODES, node.metadata.name)  # the kubelet may just have posted
                assert isinstance(fresh, core_pb2.Node)
                node = fresh
                continue
            assert isinstance(written, core_pb2.Node)
            log.info("node stopped posting status; conditions set to Unknown", node=node.metadata.name,
                     resourceVersion=written.metadata.resourceVersion,
                     silent_for=round(now - last_heard(node, self._lease(node.metadata.name)), 1))
            if was_ready:
                self.recorder.event(written, "Normal", "NodeNotReady",
                                    f"Node {node.metadata.name} status is now: NodeNotReady")
            return written
        return node

    async def _mark_pods_not_ready(self, node: core_pb2.Node) -> None:
        """MarkPodsNotReady: every pod on an Unknown node reports Ready=False."""
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, node.metadata.name):
            assert isinstance(pod, core_pb2.Pod)
            ready = next((c for c in pod.status.conditions if c.type == "Ready"), None)
            if ready is None or ready.status == "False":
                continue
            updated = core_pb2.Pod()
            updated.CopyFrom(pod)
            for cond in updated.status.conditions:
                if cond.type == "Ready":
                    cond.status = "False"
                    cond.lastTransitionTime.CopyFrom(whole_seconds(self.clock()))
            try:
                await self.client.update_status(PODS, updated)
            except (api.Conflict, api.NotFound):
                continue  # changed or gone meanwhile: the next pass looks again
            except api.APIError as exc:
                log.warning("marking pod not ready failed", pod=f"{pod.metadata.namespace}/{pod.metadata.name}",
                            error=str(exc))
                continue
            log.info("pod marked not ready", pod=f"{pod.metadata.namespace}/{pod.metadata.name}",
                     node=node.metadata.name)
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _taint_for_eviction(self, node: core_pb2.Node, ready: str) -> None:
        """processTaintBaseEviction: queue (or swap, or remove) the NoExecute taint."""
        name = node.metadata.name
        target = no_execute_taint_key(ready)
        if target is None:
            self._queue(zone_of(node)).remove(name)
            tainted = any(has_taint(node, key, NO_EXECUTE) for key in NO_EXECUTE_KEYS)
            if tainted and await self._swap(name, add=[], remove=[(k, NO_EXECUTE) for k in NO_EXECUTE_KEYS]):
                log.info("node is Ready again; NoExecute taints removed", node=name)
            return
        if self.all_disrupted:
            return
        opposite = UNREACHABLE if target == NOT_READY else NOT_READY
        if has_taint(node, opposite, NO_EXECUTE):
            await self._swap(name, add=[(target, NO_EXECUTE)], remove=[(opposite, NO_EXECUTE)])
        elif not has_taint(node, target, NO_EXECUTE):
            if self._queue(zone_of(node)).add(name):
                log.info("node queued for a NoExecute taint", node=name, taint=target, zone=zone_of(node))
            self.controller.queue.add(TAINT_PASS_KEY)

    async def tainting_pass(self) -> Result | None:
        """doNoExecuteTaintingPass: taint queued nodes as fast as each zone's rate allows."""
        if self.all_disrupted:
            return None
        waits: list[float] = []
        for zone, queue in self.zone_queues.items():
            async def taint(name: str, zone: str = zone) -> bool:
                node = self.nodes.store.get_by_key(name)
                if not isinstance(node, core_pb2.Node):
                    return True
                target = no_execute_taint_key(ready_status(node))
                if target is None:
                    return True
                opposite = UNREACHABLE if target == NOT_READY else NOT_READY
                done = await self._swap(name, add=[(target, NO_EXECUTE)], remove=[(opposite, NO_EXECUTE)])
                if done:
                    EVICTIONS.labels(zone).inc()
                    log.info("node tainted NoExecute", node=name, taint=target, zone=zone)
                return done

            await queue.process(taint)
            wait = queue.next_attempt_in()
            if wait is not None and math.isfinite(wait):
                waits.append(max(wait, 0.05))
        return Result(requeue_after=min(waits)) if waits else None

    async def _handle_disruption(self, zone_ready: dict[str, list[str | None]], nodes: list[core_pb2.Node],
                                 cluster_size: int) -> None:
        """handleDisruption: zone states, their tainting rates, and the all-zones-down mode."""
        states: dict[str, str] = {}
        for zone, ready in zone_ready.items():
            not_ready, state = zone_state(ready, self.opts.unhealthy_zone_threshold)
            states[zone] = state
            ZONE_SIZE.labels(zone).set(len(ready))
            UNHEALTHY_NODES.labels(zone).set(not_ready)
            ZONE_HEALTH.labels(zone).set(100.0 * (len(ready) - not_ready) / len(ready) if ready else 100.0)
        all_down = bool(states) and all(s == FULL_DISRUPTION for s in states.values())
        if all_down and not self.all_disrupted:
            log.warning("Controller detected that all Nodes are not-Ready. Entering master disruption mode")
            self.all_disrupted = True
            for queue in self.zone_queues.values():
                queue.swap_limiter(0.0)
            for node in nodes:
                if any(has_taint(node, key, NO_EXECUTE) for key in NO_EXECUTE_KEYS):
                    await self._swap(node.metadata.name, add=[], remove=[(k, NO_EXECUTE) for k in NO_EXECUTE_KEYS])
        elif not all_down and self.all_disrupted:
            log.info("Controller detected that some Nodes are Ready. Exiting master disruption mode")
            self.all_disrupted = False
            self.grace_floor = self.clock()  # every node gets a fresh grace period
            for zone, state in states.items():
                self._queue(zone).swap_limiter(zone_tainting_rate(state, cluster_size, self.opts))
        elif not all_down:
            for zone, state in states.items():
                if self.zone_states.get(zone) != state:
                    log.info("zone state changed", zone=zone or "<none>", state=state,
                             previous=self.zone_states.get(zone, ""))
                self._queue(zone).swap_limiter(zone_tainting_rate(state, cluster_size, self.opts))
        self.zone_states = states

    # -- taint writes ------------------------------------------------------------------------

    async def _swap(self, name: str, *, add: list[tuple[str, str]], remove: list[tuple[str, str]]) -> bool:
        """SwapNodeControllerTaint: one compare-and-swap update of the node's taints, retried on a
        conflict against a fresh read. False when the node is gone or the write keeps failing."""
        node = self.nodes.store.get_by_key(name)
        for _ in range(5):
            if not isinstance(node, core_pb2.Node):
                return False
            taints = swap_taints(node.spec.taints, add, remove, self.clock())
            if taints is None:
                return True
            updated = core_pb2.Node()
            updated.CopyFrom(node)
            del updated.spec.taints[:]
            updated.spec.taints.extend(taints)
            try:
                written = await self.client.update(NODES, updated)
                log.debug("node taints updated", node=name, resourceVersion=written.metadata.resourceVersion,  # type: ignore[attr-defined]
                          add=add, remove=remove)
                return True
            except api.Conflict:
                try:
                    node = await self.client.get(NODES, name)
                except api.NotFound:
                    return False
            except api.NotFound:
                return False
            except api.APIError as exc:
                log.warning("node taint update failed", node=name, error=str(exc))
                return False
        return False

    async def reconcile_taints(self, key: str) -> Result | None:
        """doNoScheduleTaintingPass for one node."""
        if not self._writable():
            return None
        node = self.nodes.store.get_by_key(key)
        if not isinstance(node, core_pb2.Node):
            return None
        want = no_schedule_taint_keys(node)
        have = {str(t.key) for t in node.spec.taints if t.effect == NO_SCHEDULE and t.key in NO_SCHEDULE_KEYS}
        if want == have:
            return None
        if not await self._swap(key, add=[(k, NO_SCHEDULE) for k in want - have],
                                remove=[(k, NO_SCHEDULE) for k in have - want]):
            return Result(requeue=True)
        return None


# =============================================================================================
# The taint eviction controller
# =============================================================================================


class TaintEvictionController:
    """Deletes pods that do not (or no longer) tolerate their node's NoExecute taints; keyed by
    pod, so a pod's deadline is a requeue, recomputed from the taints on every look."""

    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.recorder = ctx.recorder(TAINT_COMPONENT)
        self.nodes = ctx.factory.informer_for(NODES)
        self.pods = ctx.factory.informer_for(PODS, indexers={NODE_NAME_INDEX: pods_by_node_index_func})
        self.scheduled: dict[str, float] = {}  # pod key -> deadline, for the "Cancelling" event
        self.first_seen: dict[tuple[str, str, str], float] = {}  # taints without timeAdded
        self.controller = Controller("taint-eviction", self.reconcile, workers=ctx.workers)
        self.controller.watch(self.pods)
        self.nodes.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._node_added, on_update=self._node_updated, on_delete=self._node_deleted))
        self.controller.informers.append(self.nodes)

    @staticmethod
    def _no_execute(node: Message) -> list[tuple[str, str, str, int]]:
        return sorted((t.key, t.value, t.effect, t.timeAdded.seconds)
                      for t in node.spec.taints if t.effect == NO_EXECUTE)  # type: ignore[attr-defined]

    def _enqueue_node_pods(self, name: str) -> None:
        for pod in self.pods.store.by_index(NODE_NAME_INDEX, name):
            self.controller.queue.add(f"{pod.metadata.namespace}/{pod.metadata.name}")  # type: ignore[attr-defined]

    def _node_added(self, node: Message) -> None:
        if self._no_execute(node):
            self._enqueue_node_pods(node.metadata.name)  # type: ignore[attr-defined]

    def _node_updated(self, old: Message, new: Message) -> None:
        if self._no_execute(old) != self._no_execute(new):
            self._enqueue_node_pods(new.metadata.name)  # type: ignore[attr-defined]

    def _node_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        node = last_known_state(obj)
        for k in [k for k in self.first_seen if k[0] == node.metadata.name]:  # type: ignore[attr-defined]
            del self.first_seen[k]
        self._enqueue_node_pods(node.metadata.name)  # type: ignore[attr-defined]

    def _added_at(self, node: str) -> Callable[[core_pb2.Taint], float]:
        def added_at(taint: core_pb2.Taint) -> float:
            if taint.HasField("timeAdded"):
                return ts_seconds(taint.timeAdded)
            return self.first_seen.setdefault((node, str(taint.key), str(taint.effect)), self.clock())
        return added_at

    def _cancel(self, key: str, pod: core_pb2.Pod | None) -> None:
        if self.scheduled.pop(key, None) is not None and pod is not None:
            taint_log.info("pod deletion cancelled", pod=key)
            self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {key}")

    async def reconcile(self, key: str) -> Result | None:
        if self.may_write is not None and not self.may_write():
            return None
        pod = self.pods.store.get_by_key(key)
        if not isinstance(pod, core_pb2.Pod) or not pod.spec.nodeName or pod.metadata.HasField("deletionTimestamp"):
            self.scheduled.pop(key, None)
            return None
        node = self.nodes.store.get_by_key(pod.spec.nodeName)
        if not isinstance(node, core_pb2.Node):
            self._cancel(key, pod)
            return None
        deadline = eviction_deadline(node.spec.taints, pod.spec.tolerations, added_at=self._added_at(node.metadata.name))
        if deadline is None:
            self._cancel(key, pod)
            return None
        now = self.clock()
        if deadline > now:
            if key not in self.scheduled:
                taint_log.info("pod deletion scheduled", pod=key, node=node.metadata.name, in_s=round(deadline - now, 1))
            self.scheduled[key] = deadline
            return Result(requeue_after=deadline - now)
        await self._evict(key, pod)
        return None

    async def _evict(self, key: str, pod: core_pb2.Pod) -> None:
        """addConditionAndDeletePod: DisruptionTarget first, then an ordinary (graceful) delete of
        this incarnation of the pod."""
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        namespace, name = pod.metadata.namespace, pod.metadata.name
        current: Any = pod
        for _ in range(5):
            if any(c.type == "DisruptionTarget" and c.status == "True" for c in current.status.conditions):
                break
            updated = core_pb2.Pod()
            updated.CopyFrom(current)
            conds = [c for c in updated.status.conditions if c.type != "DisruptionTarget"]
            del updated.status.conditions[:]
            updated.status.conditions.extend(conds)
            updated.status.conditions.add(type="DisruptionTarget", status="True", reason=DISRUPTION_REASON,
                                          message=DISRUPTION_MESSAGE,
                                          lastTransitionTime=whole_seconds(self.clock()))
            try:
                await self.client.update_status(PODS, updated)
                break
            except api.Conflict:
                try:
                    current = await self.client.get(PODS, name, namespace=namespace)
                except api.NotFound:
                    self.scheduled.pop(key, None)
                    return
                if current.metadata.uid != pod.metadata.uid:
                    self.scheduled.pop(key, None)
                    return
            except api.NotFound:
                self.scheduled.pop(key, None)
                return
        try:
            await self.client.delete(PODS, name, namespace=namespace, uid=pod.metadata.uid)
        except api.NotFound:
            pass
        except api.Conflict as exc:
            if "UID in precondition" not in str(exc):
                raise
        self.scheduled.pop(key, None)
        TAINT_EVICTIONS.inc()
        taint_log.info("pod deleted for a NoExecute taint", pod=key, node=pod.spec.nodeName)


def new(ctx: ControllerContext) -> list[Controller]:
    """Registry entry: the node lifecycle controller (health, taints, zones) and the taint
    eviction controller."""
    lifecycle = NodeLifecycleController(ctx)
    eviction = TaintEvictionController(ctx)
    return [lifecycle.controller, lifecycle.taints, eviction.controller]
