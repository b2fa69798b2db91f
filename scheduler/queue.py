"""The scheduling queue: which pending pod the scheduler tries next, and when a failed one is retried.

kube-scheduler's PriorityQueue (pkg/scheduler/backend/queue/scheduling_queue.go) with three
sub-queues:

* active — pods ready to be tried: highest priority first, then the oldest (creation time);
* backoff — pods that failed and wait out their back-off, `initial * 2^(attempts-1)` capped at
  `max`, counted from the failed attempt; a background task moves them to active when it ends;
* unschedulable — pods some plugins rejected. They stay until a cluster event one of those plugins
  cares about (`PLUGIN_EVENTS`) could make them fit, and at most `max_in_unschedulable` seconds.

A popped pod is *in flight* until the scheduler reports back. The scheduler's loop::

    qpi = await queue.pop()                 # raises ShutDown once the queue is closed
    cycle = queue.scheduling_cycle()
    try:
        ...                                 # run the framework; on failure:
        qpi.unschedulable_plugins = {...}   # the plugins that rejected it (empty: an error)
        queue.add_unschedulable_if_not_present(qpi, cycle)
    finally:
        queue.done(qpi.key)

The informer handlers: unassigned pods → `add` / `update` / `delete`; assigned pods →
`assigned_pod_added` / `assigned_pod_updated` / `assigned_pod_deleted`; nodes →
`move_all_to_active_or_backoff(NODE_ADD)` and, for updates, each event of
`node_update_events(old, new)`.

The move-request rule (kube-scheduler's moveRequestCycle): an event that arrives while a pod is
in flight cannot move it (it is in no sub-queue), but the pod's attempt may have seen the cluster
from before the event. So the queue remembers the last cycle each event happened in, and a pod
that fails in cycle N goes to backoff instead of the unschedulable pool when an event relevant to
its rejecting plugins happened in cycle N or later.

Everything runs on one event loop and nothing here is thread-safe; no method awaits while the
state is inconsistent, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge

from kplane.logs import get_logger

__all__ = [
    "PLUGIN_EVENTS",
    "WILDCARD_EVENTS",
    "ClusterEvent",
    "QueuedPodInfo",
    "SchedulingQueue",
    "ShutDown",
    "node_update_events",
    "pod_key",
    "pod_priority",
]

Pod = Any  # kplane.api.pb.core_pb2.Pod
Node = Any  # kplane.api.pb.core_pb2.Node
Clock = Callable[[], float]

ACTIVE = "active"
BACKOFF = "backoff"
UNSCHEDULABLE = "unschedulable"

# Created once per process (prometheus-client refuses a second registration of a name). The gauge
# reflects the most recently changed queue: a process runs one scheduler, hence one queue.
_PENDING = Gauge("scheduler_pending_pods", "Pending pods by sub-queue (active, backoff, unschedulable)",
                 ["queue"])
_PENDING_BY_QUEUE = (_PENDING.labels(ACTIVE), _PENDING.labels(BACKOFF), _PENDING.labels(UNSCHEDULABLE))
_INCOMING = Counter("scheduler_queue_incoming_pods_total",
                    "Pods entering a sub-queue, by sub-queue and the event that sent them", ["queue", "event"])

# Incoming-pod event labels that are not cluster events (kube-scheduler's names).
POD_ADD = "PodAdd"
POD_UPDATE = "PodUpdate"
SCHEDULE_ATTEMPT_FAILURE = "ScheduleAttemptFailure"
BACKOFF_COMPLETE = "BackoffComplete"

_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class ShutDown(Exception):
    """Raised by `SchedulingQueue.pop` once the queue is closed."""


class ClusterEvent(enum.Enum):
    """A change in the cluster that may make unschedulable pods schedulable (values: metric labels)."""

    NODE_ADD = "NodeAdd"
    NODE_UPDATE_LABEL = "NodeLabelChange"
    NODE_UPDATE_TAINT = "NodeTaintChange"
    NODE_UPDATE_ALLOCATABLE = "NodeAllocatableChange"
    NODE_UPDATE_UNSCHEDULABLE = "NodeSpecUnschedulableChange"
    NODE_UPDATE_CONDITION = "NodeConditionChange"
    ASSIGNED_POD_ADD = "AssignedPodAdd"
    ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
    ASSIGNED_POD_DELETE = "AssignedPodDelete"
    UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"
    FORCE_ACTIVATE = "ForceActivate"


_E = ClusterEvent
# Not cluster changes but the queue's own decisions: they concern every pod, whatever rejected it.
WILDCARD_EVENTS: frozenset[ClusterEvent] = frozenset({_E.UNSCHEDULABLE_TIMEOUT, _E.FORCE_ACTIVATE})
_ASSIGNED_POD_ANY = frozenset({_E.ASSIGNED_POD_ADD, _E.ASSIGNED_POD_UPDATE, _E.ASSIGNED_POD_DELETE})
_RESOURCES_FREED = frozenset({_E.NODE_ADD, _E.NODE_UPDATE_ALLOCATABLE, _E.ASSIGNED_POD_DELETE})

# Which events can resolve a rejection by each plugin (kube-scheduler's EventsToRegister,
# simplified). A plugin missing here (out of tree) is taken to care about every event, as
# kube-scheduler does for plugins that register none.
PLUGIN_EVENTS: dict[str, frozenset[ClusterEvent]] = {
    "NodeName": frozenset({_E.NODE_ADD}),
    # spec.unschedulable may also show up as the node.kubernetes.io/unschedulable taint.
    "NodeUnschedulable": frozenset({_E.NODE_ADD, _E.NODE_UPDATE_UNSCHEDULABLE, _E.NODE_UPDATE_TAINT}),
    "NodeAffinity": frozenset({_E.NODE_ADD, _E.NODE_UPDATE_LABEL}),
    "TaintToleration": frozenset({_E.NODE_ADD, _E.NODE_UPDATE_TAINT}),
    "NodeResourcesFit": _RESOURCES_FREED,
    # Score-only plugins never reject a pod; their entries only keep the table complete.
    "NodeResourcesBalancedAllocation": _RESOURCES_FREED,
    "ImageLocality": frozenset({_E.NODE_ADD}),
    "NodePorts": frozenset({_E.NODE_ADD, _E.ASSIGNED_POD_DELETE}),
    # Affinity terms match other pods' labels in topology domains given by node labels.
    "InterPodAffinity": frozenset({_E.NODE_ADD, _E.NODE_UPDATE_LABEL}) | _ASSIGNED_POD_ANY,
    # Skew counts pods per domain; with nodeTaintsPolicy=Honor, taints change which nodes count.
    "PodTopologySpread": frozenset({_E.NODE_ADD, _E.NODE_UPDATE_LABEL, _E.NODE_UPDATE_TAINT}) | _ASSIGNED_POD_ANY,
}
_ALL_EVENTS: frozenset[ClusterEvent] = frozenset(ClusterEvent)


def pod_key(pod: Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def pod_priority(pod: Pod) -> int:
    """`spec.priority` (resolved from the priority class by admission), 0 when unset."""
    return int(pod.spec.priority) if pod.spec.HasField("priority") else 0


def _creation_seconds(pod: Pod) -> float:
    ts = pod.metadata.creationTimestamp
    return float(ts.seconds) + ts.nanos / 1e9


def _uid(pod: Pod) -> str:
    return str(pod.metadata.uid)


def node_update_events(old_node: Node, new_node: Node) -> list[ClusterEvent]:
    """The events a node update amounts to, in enum order; empty when nothing the scheduler reads
    changed (e.g. a heartbeat)."""
    events: list[ClusterEvent] = []
    if dict(old_node.metadata.labels) != dict(new_node.metadata.labels):
        events.append(_E.NODE_UPDATE_LABEL)
    if _taints(old_node) != _taints(new_node):
        events.append(_E.NODE_UPDATE_TAINT)
    if _allocatable(old_node) != _allocatable(new_node):
        events.append(_E.NODE_UPDATE_ALLOCATABLE)
    # Only cordoned -> uncordoned can help a pod (kube-scheduler's nodeSpecUnschedulableChanged).
    if old_node.spec.unschedulable and not new_node.spec.unschedulable:
        events.append(_E.NODE_UPDATE_UNSCHEDULABLE)
    if _conditions(old_node) != _conditions(new_node):
        events.append(_E.NODE_UPDATE_CONDITION)
    return events


def _taints(node: Node) -> list[tuple[str, str, str]]:
    # timeAdded is bookkeeping: a taint that only got a new timestamp rejects the same pods.
    return sorted((t.key, t.value, t.effect) for t in node.spec.taints)


def _allocatable(node: Node) -> dict[str, str]:
    return {name: q.string for name, q in node.status.allocatable.items()}


def _conditions(node: Node) -> list[tuple[str, str]]:
    # Heartbeat and transition times change all the time without changing what the node offers.
    return sorted((c.type, c.status) for c in node.status.conditions)


def _is_pod_updated(old_pod: Pod, new_pod: Pod) -> bool:
    """Whether an update could change the scheduling outcome: anything but status and bookkeeping
    (resourceVersion, generation, managedFields, finalizers) changed (kube-scheduler's isPodUpdated)."""

    def strip(pod: Pod) -> Pod:
        out = type(pod)()
        out.CopyFrom(pod)
        for name in ("resourceVersion", "generation", "managedFields", "finalizers"):
            out.metadata.ClearField(name)
        out.ClearField("status")
        return out

    return bool(strip(old_pod) != strip(new_pod))


@dataclass(eq=False)
class QueuedPodInfo:
    """A pending pod plus its queueing history. Owned by the queue, or by the scheduler while the
    pod is in flight (between `pop` and `add_unschedulable_if_not_present` / `done`)."""

    pod: Pod
    key: str
    # When the pod entered the queue or last failed; back-off is counted from here.
    timestamp: float
    # When the pod was first popped (None until then): for "time to schedule" metrics.
    initial_attempt_timestamp: float | None = None
    attempts: int = 0
    # Plugins that rejected the pod in its last attempt (empty after an Error): only events these
    # plugins care about move it out of the unschedulable pool. Cleared by `pop`.
    unschedulable_plugins: set[str] = field(default_factory=set)
    # Plugins that made the pod wait (Code.WAIT); they count like unschedulable_plugins here.
    pending_plugins: set[str] = field(default_factory=set)

    @property
    def priority(self) -> int:
        return pod_priority(self.pod)

    def rejector_plugins(self) -> set[str]:
        return self.unschedulable_plugins | self.pending_plugins


@dataclass
class _InFlight:
    """What happened to a popped pod's key while the scheduler worked on it."""

    qpi: QueuedPodInfo
    latest: Pod | None = None  # the newest object from add/update during the cycle
    spec_changed: bool = False  # an update during the cycle could change the outcome
    deleted: bool = False  # deleted during the cycle (and not re-added since)
    activate: bool = False  # `activate` asked for it during the cycle


class _KeyedHeap:
    """A min-heap of keys by a sort key, with removal and re-prioritisation in O(log n).

    Invariant: each key in `_live` has exactly one heap entry carrying its current token; entries
    with any other token are stale (removed or re-pushed) and skipped on the way out.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[float, ...], int, str]] = []
        self._live: dict[str, int] = {}
        self._tokens = itertools.count()

    def push(self, key: str, sort_key: tuple[float, ...]) -> None:
        token = next(self._tokens)
        self._live[key] = token
        heapq.heappush(self._heap, (sort_key, token, key))

    def remove(self, key: str) -> None:
        self._live.pop(key, None)
        if len(self._heap) > 2 * len(self._live) + 32:  # keep stale entries from piling up
            self._heap = [e for e in self._heap if self._live.get(e[2]) == e[1]]
            heapq.heapify(self._heap)

    def peek(self) -> str | None:
        while self._heap:
            _, token, key = self._heap[0]
            if self._live.get(key) == token:
                return key
            heapq.heappop(self._heap)
        return None

    def pop(self) -> str:
        key = self.peek()
        if key is None:
            raise IndexError("pop from an empty heap")
        heapq.heappop(self._heap)
        del self._live[key]
        return key

    def ordered(self) -> list[str]:
        return [key for _, token, key in sorted(self._heap) if self._live.get(key) == token]

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __len__(self) -> int:
        return len(self._live)

    def keys(self) -> set[str]:
        return set(self._live)


class SchedulingQueue:
    """Pending pods in three sub-queues (active, backoff, unschedulable) plus the in-flight set.

    Invariants (state changes only inside non-awaiting methods, so they hold at every await):
    - a key is in at most one of active, backoff, unschedulable and in-flight — never two;
    - `_infos` holds exactly the pods of the three sub-queues, `_where` names each one's sub-queue,
      and the active/backoff heaps hold exactly the keys `_where` places there;
    - an in-flight pod is in no sub-queue: add/update/delete/activate for it are recorded in its
      `_InFlight` and applied when it comes back (`add_unschedulable_if_not_present` or `done`);
    - a pod in backoff keeps its `timestamp` and `attempts`, so its expiry (the heap order) is fixed;
    - `_move_request_cycle[e]` is the scheduling cycle in which event `e` last asked for a move.
    """

    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_in_unschedulable: float = 300.0,
        clock: Clock = time.monotonic,
        flush_interval: float = 1.0,
    ) -> None:
        if initial_backoff < 0 or max_backoff < initial_backoff:
            raise ValueError(f"need 0 <= initial_backoff <= max_backoff, got {initial_backoff}, {max_backoff}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_in_unschedulable = max_in_unschedulable
        self._clock = clock
        self._flush_interval = flush_interval
        self._infos: dict[str, QueuedPodInfo] = {}
        self._where: dict[str, str] = {}
        self._active = _KeyedHeap()
        self._backoff = _KeyedHeap()
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._cycle = 0
        self._move_request_cycle: dict[ClusterEvent, int] = {}
        self._arrivals = itertools.count()  # last tie-break in active: first come, first served
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._log = get_logger(component="scheduling-queue")

    # ----- informer-facing: unassigned pods -------------------------------------------------------

    def add(self, pod: Pod) -> None:
        """A new pending pod goes to active; a pod the queue already knows is updated instead."""
        key = pod_key(pod)
        if key in self._in_flight:
            self.update(None, pod)
            return
        known = self._infos.get(key)
        if known is not None:
            self.update(known.pod, pod)
            return
        self._put(self._new_info(pod), ACTIVE, POD_ADD)

    def update(self, old_pod: Pod | None, new_pod: Pod) -> None:
        """A pending pod changed: update it where it is; an unschedulable pod whose spec changed in a
        way that could matter moves to backoff (if still backing off) or active."""
        key = pod_key(new_pod)
        flight = self._in_flight.get(key)
        if flight is not None:
            # Remembered, not applied: the scheduler is using the pod (see _InFlight).
            previous = flight.latest if flight.latest is not None else flight.qpi.pod
            flight.spec_changed |= _is_pod_updated(old_pod if old_pod is not None else previous, new_pod)
            flight.latest, flight.deleted = new_pod, False
            return
        qpi = self._infos.get(key)
        if qpi is None:
            self._put(self._new_info(new_pod), ACTIVE, POD_UPDATE)  # missed its add: queue it now
            return
        if _uid(qpi.pod) != _uid(new_pod):
            # A different pod with the same name (deleted and recreated): its history is not ours.
            self._take(key)
            self._put(self._new_info(new_pod), ACTIVE, POD_UPDATE)
            return
        old = old_pod if old_pod is not None else qpi.pod
        where = self._where[key]
        qpi.pod = new_pod
        if where == ACTIVE:
            self._active.push(key, self._active_order(qpi))  # priority may have changed
        elif where == UNSCHEDULABLE and _is_pod_updated(old, new_pod):
            self._take(key)
            self._requeue(qpi, POD_UPDATE)
        # In backoff the pod stays put: its expiry does not depend on the pod object.

    def delete(self, pod: Pod) -> None:
        """The pod is gone (or got bound by someone else): forget it wherever it is."""
        key = pod_key(pod)
        flight = self._in_flight.get(key)
        if flight is not None:
            flight.deleted, flight.latest, flight.spec_changed = True, None, False
            return
        self._take(key)

    # ----- scheduler-facing -----------------------------------------------------------------------

    async def pop(self) -> QueuedPodInfo:
        """The next pod to try (highest priority, then oldest), waiting for one if need be; the pod
        is in flight until `add_unschedulable_if_not_present` or `done`. Raises ShutDown when closed."""
        self._ensure_flusher()
        while True:
            qpi = self.pop_nowait()
            if qpi is not None:
                return qpi
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass  # already taken off by _wake

    def pop_nowait(self) -> QueuedPodInfo | None:
        """`pop` without waiting: the next pod, or None when active is empty (after moving pods whose
        back-off has ended). Raises ShutDown when closed."""
        if self._closed:
            raise ShutDown("scheduling queue is closed")
        self.flush_backoff_completed()
        if not self._active:
            return None
        key = self._active.pop()
        del self._where[key]
        qpi = self._infos.pop(key)
        now = self._clock()
        qpi.attempts += 1
        if qpi.initial_attempt_timestamp is None:
            qpi.initial_attempt_timestamp = now
        # The plugins of the next failure (if any) are filled in by the scheduler.
        qpi.unschedulable_plugins.clear()
        qpi.pending_plugins.clear()
        self._cycle += 1
        self._in_flight[key] = _InFlight(qpi)
        self._record_depths()
        return qpi

    def scheduling_cycle(self) -> int:
        """The number of pods popped so far: the cycle of the most recent pop."""
        return self._cycle

    def add_unschedulable_if_not_present(self, qpi: QueuedPodInfo, scheduling_cycle: int) -> None:
        """Take back a pod whose attempt (begun in `scheduling_cycle`) failed. It goes to backoff when
        it failed with an error (no rejecting plugin), when it changed during the attempt, or when
        an event relevant to its rejecting plugins happened since the attempt began; otherwise to
        the unschedulable pool. A no-op when the pod is already queued; dropped when it was
        deleted during the attempt."""
        key = qpi.key
        flight = self._in_flight.pop(key, None)
        if key in self._where:
            return  # already queued: the queued copy is the newer one
        if flight is not None:
            if flight.deleted:
                return
            if flight.latest is not None and _uid(flight.latest) != _uid(qpi.pod):
                # Recreated under the same name during the attempt: queue the new pod afresh.
                self._put(self._new_info(flight.latest), ACTIVE, POD_ADD)
                return
            if flight.latest is not None:
                qpi.pod = flight.latest
        qpi.timestamp = self._clock()
        if flight is not None and (flight.activate or flight.spec_changed):
            self._requeue(qpi, _E.FORCE_ACTIVATE.value if flight.activate else POD_UPDATE)
        elif not qpi.rejector_plugins() or self._moved_since(qpi, scheduling_cycle):
            self._requeue(qpi, SCHEDULE_ATTEMPT_FAILURE)
        else:
            self._put(qpi, UNSCHEDULABLE, SCHEDULE_ATTEMPT_FAILURE)

    def done(self, key: str) -> None:
        """The cycle for this pod finished. If the pod is still in flight (it was not handed back
        as unschedulable), it was scheduled: updates recorded meanwhile concern a bound pod and
        are dropped — unless the pod was deleted and recreated, in which case the new one is queued."""
        flight = self._in_flight.pop(key, None)
        if flight is None or flight.deleted or flight.latest is None:
            return
        if _uid(flight.latest) != _uid(flight.qpi.pod):
            self._put(self._new_info(flight.latest), ACTIVE, POD_ADD)

    def activate(self, pods: Iterable[Pod]) -> None:
        """Move these pods from backoff or the unschedulable pool straight to active (kube-scheduler's
        PodsToActivate). An in-flight pod that comes back failed skips the unschedulable pool."""
        for pod in pods:
            key = pod_key(pod)
            if key in self._in_flight:
                self._in_flight[key].activate = True
                continue
            if self._where.get(key) not in (BACKOFF, UNSCHEDULABLE):
                continue  # already active, or unknown
            qpi = self._take(key)
            assert qpi is not None
            self._put(qpi, ACTIVE, _E.FORCE_ACTIVATE.value)

    # ----- cluster events -------------------------------------------------------------------------

    def move_all_to_active_or_backoff(self, event: ClusterEvent,
                                      pre_check: Callable[[Any], bool] | None = None) -> int:
        """Move the unschedulable pods `event` could help (their rejecting plugins care about it, or
        they failed with no plugin) and that pass `pre_check` to backoff or active; returns how
        many moved. Also records the event for in-flight pods (the move-request rule)."""
        if event is not _E.UNSCHEDULABLE_TIMEOUT:  # the timeout is not news about the cluster
            self._move_request_cycle[event] = self._cycle
        candidates = [qpi for qpi in self._unschedulable.values()
                      if _matches(qpi, event) and (pre_check is None or pre_check(qpi.pod))]
        return self._move_to_active_or_backoff(candidates, event)

    def assigned_pod_added(self, pod: Pod) -> int:
        """A pod got bound: pods with affinity to it (or spreading around it) may fit now."""
        return self.move_all_to_active_or_backoff(_E.ASSIGNED_POD_ADD)

    def assigned_pod_updated(self, old_pod: Pod, new_pod: Pod) -> int:
        """A bound pod changed: finishing frees its resources like a delete; new labels can satisfy
        affinity or change spreading. Other changes move nothing."""
        if new_pod.status.phase in _TERMINAL_PHASES and old_pod.status.phase not in _TERMINAL_PHASES:
            return self.move_all_to_active_or_backoff(_E.ASSIGNED_POD_DELETE)
        if dict(old_pod.metadata.labels) != dict(new_pod.metadata.labels):
            return self.move_all_to_active_or_backoff(_E.ASSIGNED_POD_UPDATE)
        return 0

    def assigned_pod_deleted(self, pod: Pod) -> int:
        """A bound pod is gone: its resources, ports and anti-affinity no longer block anybody."""
        return self.move_all_to_active_or_backoff(_E.ASSIGNED_POD_DELETE)

    # ----- periodic flushing ------------------------------------------------------------------------

    def flush_backoff_completed(self) -> int:
        """Move pods whose back-off has ended to active; returns how many moved."""
        now = self._clock()
        moved = 0
        while (key := self._backoff.peek()) is not None and self._backoff_expiry(self._infos[key]) <= now:
            qpi = self._take(key)
            assert qpi is not None
            self._put(qpi, ACTIVE, BACKOFF_COMPLETE)
            moved += 1
        return moved

    def flush_unschedulable_leftover(self) -> int:
        """Move pods that sat in the unschedulable pool longer than `max_in_unschedulable` to
        backoff or active, whatever rejected them; returns how many moved."""
        now = self._clock()
        stale = [qpi for qpi in self._unschedulable.values()
                 if now - qpi.timestamp > self._max_in_unschedulable]
        return self._move_to_active_or_backoff(stale, _E.UNSCHEDULABLE_TIMEOUT)

    # ----- introspection and lifecycle --------------------------------------------------------------

    def pending(self) -> dict[str, list[str]]:
        """Keys per sub-queue — active in pop order, backoff by expiry, unschedulable by arrival —
        plus `in_flight`; for debugging and metrics."""
        return {
            ACTIVE: self._active.ordered(),
            BACKOFF: self._backoff.ordered(),
            UNSCHEDULABLE: list(self._unschedulable),
            "in_flight": list(self._in_flight),
        }

    def backoff_duration(self, qpi: QueuedPodInfo) -> float:
        """initial * 2^(attempts-1), capped at max (attempts 0 and 1 both give initial)."""
        exponent = min(max(qpi.attempts - 1, 0), 64)  # 2^64 * any sane initial exceeds any cap
        return float(min(self._initial_backoff * 2**exponent, self._max_backoff))

    def close(self) -> None:
        """Stop: pending and future `pop`s raise ShutDown, and the flushing task ends."""
        self._closed = True
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        self._flusher = None
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        """Pods waiting in the three sub-queues (not counting in-flight ones)."""
        return len(self._infos)

    # ----- internals --------------------------------------------------------------------------------

    def _new_info(self, pod: Pod) -> QueuedPodInfo:
        return QueuedPodInfo(pod=pod, key=pod_key(pod), timestamp=self._clock())

    def _active_order(self, qpi: QueuedPodInfo) -> tuple[float, ...]:
        # Higher priority first, then older pods; ties by the time queued, then first come first served.
        return (-qpi.priority, _creation_seconds(qpi.pod), qpi.timestamp, next(self._arrivals))

    def _backoff_expiry(self, qpi: QueuedPodInfo) -> float:
        return qpi.timestamp + self.backoff_duration(qpi)

    def _is_backing_off(self, qpi: QueuedPodInfo) -> bool:
        return self._backoff_expiry(qpi) > self._clock()

    def _moved_since(self, qpi: QueuedPodInfo, scheduling_cycle: int) -> bool:
        """Whether an event relevant to the pod's rejecting plugins was recorded in
        `scheduling_cycle` or later (kube-scheduler: moveRequestCycle >= podSchedulingCycle)."""
        relevant = _relevant_events(qpi)
        return any(cycle >= scheduling_cycle for event, cycle in self._move_request_cycle.items()
                   if event in relevant)

    # _put and _take are the only ways into and out of the sub-queues (besides pop_nowait), so they
    # keep the invariants, the wake-ups and the metrics.

    def _put(self, qpi: QueuedPodInfo, where: str, event: str) -> None:
        """Insert a pod that is in no sub-queue and not in flight."""
        key = qpi.key
        assert key not in self._where and key not in self._in_flight, f"{key} is already queued"
        self._infos[key] = qpi
        self._where[key] = where
        if where == ACTIVE:
            self._active.push(key, self._active_order(qpi))
            self._wake()
        elif where == BACKOFF:
            self._backoff.push(key, (self._backoff_expiry(qpi),))
        else:
            self._unschedulable[key] = qpi
        _INCOMING.labels(where, event).inc()
        self._record_depths()

    def _take(self, key: str) -> QueuedPodInfo | None:
        """Remove a pod from whichever sub-queue holds it (None if none does)."""
        where = self._where.pop(key, None)
        if where is None:
            return None
        if where == ACTIVE:
            self._active.remove(key)
        elif where == BACKOFF:
            self._backoff.remove(key)
        else:
            del self._unschedulable[key]
        self._record_depths()
        return self._infos.pop(key)

    def _requeue(self, qpi: QueuedPodInfo, event: str) -> None:
        """Back to backoff if the pod's back-off is still running, else straight to active."""
        self._put(qpi, BACKOFF if self._is_backing_off(qpi) else ACTIVE, event)

    def _move_to_active_or_backoff(self, pods: list[QueuedPodInfo], event: ClusterEvent) -> int:
        for qpi in pods:
            self._take(qpi.key)
            self._requeue(qpi, event.value)
        return len(pods)

    def _wake(self) -> None:
        # Wake every waiting pop (a broadcast): each re-checks active, so a waiter cancelled in the
        # meantime cannot swallow the wake-up of another.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _record_depths(self) -> None:
        active, backoff, unschedulable = _PENDING_BY_QUEUE  # children resolved once: this runs per queue op
        active.set(len(self._active))
        backoff.set(len(self._backoff))
        unschedulable.set(len(self._unschedulable))

    def _ensure_flusher(self) -> None:
        """Start the flushing task on the running loop, once (again if an earlier loop ended)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        task = self._flusher
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._flusher = loop.create_task(self._flush_periodically(), name="scheduling-queue-flush")

    async def _flush_periodically(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._flush_interval)
            try:
                self.flush_backoff_completed()
                self.flush_unschedulable_leftover()
            except Exception:
                # A bug here must not stop retries for good: log it and try again next tick.
                self._log.exception("scheduling queue flush failed")

    def _check_invariants(self) -> None:
        """Assert the invariants in the class docstring (for tests)."""
        active = {k for k, w in self._where.items() if w == ACTIVE}
        backoff = {k for k, w in self._where.items() if w == BACKOFF}
        unschedulable = {k for k, w in self._where.items() if w == UNSCHEDULABLE}
        assert set(self._infos) == set(self._where)
        assert self._active.keys() == active
        assert self._backoff.keys() == backoff
        assert set(self._unschedulable) == unschedulable
        assert not set(self._in_flight) & set(self._where)
        assert all(qpi.key == key for key, qpi in self._infos.items())
        assert all(self._unschedulable[k] is self._infos[k] for k in unschedulable)


def _relevant_events(qpi: QueuedPodInfo) -> frozenset[ClusterEvent]:
    plugins = qpi.rejector_plugins()
    if not plugins:
        return _ALL_EVENTS
    events: frozenset[ClusterEvent] = WILDCARD_EVENTS
    for plugin in plugins:
        events |= PLUGIN_EVENTS.get(plugin, _ALL_EVENTS)
    return events


def _matches(qpi: QueuedPodInfo, event: ClusterEvent) -> bool:
    """Whether `event` could make the pod schedulable (kube-scheduler's podMatchesEvent)."""
    return event in _relevant_events(qpi)
