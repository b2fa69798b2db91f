"""The scheduling queue: ordering, back-off, the unschedulable pool and its events, in-flight pods."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import REGISTRY

from kplane.api.pb import core_pb2, meta_pb2
from scheduler import plugins
from scheduler.queue import (
    PLUGIN_EVENTS,
    ClusterEvent,
    QueuedPodInfo,
    SchedulingQueue,
    ShutDown,
    node_update_events,
)

WAIT = 10.0  # generous: for things that must happen
QUIET = 0.05  # short: for things that must not have happened yet
FIT = "NodeResourcesFit"


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_pod(name: str, *, priority: int | None = None, created: int = 0, uid: str | None = None,
             labels: dict[str, str] | None = None, image: str = "img", phase: str = "") -> Any:
    meta = meta_pb2.ObjectMeta(name=name, namespace="default", uid=uid or f"uid-{name}", labels=labels or {})
    meta.creationTimestamp.seconds = created
    spec = core_pb2.PodSpec(containers=[core_pb2.Container(name="c", image=image)])
    if priority is not None:
        spec.priority = priority
    pod = core_pb2.Pod(metadata=meta, spec=spec)
    if phase:
        pod.status.phase = phase
    return pod


def copy_pod(pod: Any) -> Any:
    out = core_pb2.Pod()
    out.CopyFrom(pod)
    return out


def make_node(*, labels: dict[str, str] | None = None, taints: Sequence[tuple[str, str, str]] = (),
              allocatable: dict[str, str] | None = None, unschedulable: bool = False,
              conditions: Sequence[tuple[str, str]] = ()) -> Any:
    node = core_pb2.Node(metadata=meta_pb2.ObjectMeta(name="n", labels=labels or {}))
    node.spec.unschedulable = unschedulable
    for key, value, effect in taints:
        node.spec.taints.add(key=key, value=value, effect=effect)
    for name, quantity in (allocatable or {"cpu": "4"}).items():
        node.status.allocatable[name].string = quantity
    for ctype, status in conditions:
        node.status.conditions.add(type=ctype, status=status)
    return node


def new_queue(clock: FakeClock, **kwargs: Any) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, **kwargs)


def fail(q: SchedulingQueue, qpi: QueuedPodInfo, *plugin_names: str, cycle: int | None = None) -> None:
    """Hand a popped pod back as the scheduler does after a failed attempt."""
    qpi.unschedulable_plugins = set(plugin_names)
    q.add_unschedulable_if_not_present(qpi, q.scheduling_cycle() if cycle is None else cycle)
    q.done(qpi.key)


def pop_now(q: SchedulingQueue) -> QueuedPodInfo:
    qpi = q.pop_nowait()
    assert qpi is not None, "active is empty"
    return qpi


def where(q: SchedulingQueue, key: str) -> list[str]:
    return [name for name, keys in q.pending().items() if key in keys]


def unschedulable_for(q: SchedulingQueue, clock: FakeClock, *plugin_names: str, name: str = "p") -> QueuedPodInfo:
    """A pod that failed once because of `plugin_names` and now sits in the unschedulable pool."""
    q.add(make_pod(name))
    qpi = pop_now(q)
    fail(q, qpi, *plugin_names)
    assert where(q, qpi.key) == ["unschedulable"]
    return qpi


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_async_queue(clock: FakeClock) -> AsyncIterator[Callable[..., SchedulingQueue]]:
    """Queues for async tests, closed afterwards so their flushing tasks end with the test."""
    made: list[SchedulingQueue] = []

    def factory(**kwargs: Any) -> SchedulingQueue:
        q = SchedulingQueue(clock=clock, **kwargs)
        made.append(q)
        return q

    yield factory
    for q in made:
        q.close()
    await asyncio.sleep(0)


# ----- ordering and popping -------------------------------------------------------------------------


def test_pops_by_priority_then_age(clock: FakeClock) -> None:
    """Higher priority pops first; among equal priorities the older pod (creation time) does."""
    q = new_queue(clock)
    q.add(make_pod("low-old", priority=1, created=10))
    q.add(make_pod("high-new", priority=5, created=30))
    q.add(make_pod("unset", created=5))
    q.add(make_pod("high-old", priority=5, created=20))
    q.add(make_pod("low-new", priority=1, created=40))
    order = [pop_now(q).pod.metadata.name for _ in range(5)]
    assert order == ["high-old", "high-new", "low-old", "low-new", "unset"]


def test_equal_priority_and_age_pop_in_arrival_order(clock: FakeClock) -> None:
    """Pods that tie on priority and creation time pop first come, first served."""
    q = new_queue(clock)
    for name in ["c", "a", "b"]:
        q.add(make_pod(name))
    assert [pop_now(q).pod.metadata.name for _ in range(3)] == ["c", "a", "b"]


def test_pop_counts_attempts_cycles_and_first_attempt(clock: FakeClock) -> None:
    """Each pop increments the pod's attempts and the scheduling cycle; the first sets the initial attempt time."""
    q = new_queue(clock, initial_backoff=0.0, max_backoff=0.0)
    q.add(make_pod("p"))
    assert q.scheduling_cycle() == 0
    first = pop_now(q)
    assert (first.attempts, q.scheduling_cycle(), first.initial_attempt_timestamp) == (1, 1, clock.now)
    clock.advance(5)
    fail(q, first)  # an error: straight back (zero back-off)
    again = pop_now(q)
    assert again is first
    assert (again.attempts, q.scheduling_cycle(), again.initial_attempt_timestamp) == (2, 2, clock.now - 5)


def test_pop_clears_last_attempts_plugins(clock: FakeClock) -> None:
    """A popped pod starts its attempt with no rejecting plugins recorded."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    q.activate([qpi.pod])
    assert pop_now(q).unschedulable_plugins == set()


async def test_pop_blocks_until_add(make_async_queue: Callable[..., SchedulingQueue]) -> None:
    """`pop` waits while active is empty and returns the pod once one is added."""
    q = make_async_queue()
    popping = asyncio.ensure_future(q.pop())
    await asyncio.sleep(QUIET)
    assert not popping.done()
    q.add(make_pod("p"))
    qpi = await asyncio.wait_for(popping, WAIT)
    assert qpi.key == "default/p"


async def test_close_wakes_pop_with_shutdown(make_async_queue: Callable[..., SchedulingQueue]) -> None:
    """Closing the queue makes a waiting `pop` raise ShutDown, and later pops raise it at once."""
    q = make_async_queue()
    popping = asyncio.ensure_future(q.pop())
    await asyncio.sleep(QUIET)
    q.close()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(popping, WAIT)
    q.add(make_pod("p"))
    with pytest.raises(ShutDown):
        await asyncio.wait_for(q.pop(), WAIT)


async def test_cancelled_pop_does_not_swallow_a_wakeup(make_async_queue: Callable[..., SchedulingQueue]) -> None:
    """A cancelled waiter leaves the other waiting pop to receive the next pod."""
    q = make_async_queue()
    first = asyncio.ensure_future(q.pop())
    second = asyncio.ensure_future(q.pop())
    await asyncio.sleep(QUIET)
    first.cancel()
    q.add(make_pod("p"))
    assert (await asyncio.wait_for(second, WAIT)).key == "default/p"


# ----- back-off ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("initial", "maximum", "expected"), [
    (1.0, 10.0, [1.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]),
    (0.5, 3.0, [0.5, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0]),
])
def test_backoff_doubles_and_caps(clock: FakeClock, initial: float, maximum: float, expected: list[float]) -> None:
    """Back-off is initial * 2^(attempts-1) capped at the maximum (attempts 0..6), also for huge attempt counts."""
    q = new_queue(clock, initial_backoff=initial, max_backoff=maximum)
    qpi = QueuedPodInfo(pod=make_pod("p"), key="default/p", timestamp=0.0)
    durations = []
    for attempts in range(7):
        qpi.attempts = attempts
        durations.append(q.backoff_duration(qpi))
    assert durations == expected
    qpi.attempts = 10_000
    assert q.backoff_duration(qpi) == maximum


def test_failed_pod_waits_out_its_backoff_from_the_last_attempt(clock: FakeClock) -> None:
    """An errored pod sits in backoff until timestamp + back-off, which doubles with each attempt."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    for attempt, backoff in [(1, 1.0), (2, 2.0), (3, 4.0)]:
        qpi = pop_now(q)
        assert qpi.attempts == attempt
        clock.advance(0.5)  # the attempt takes a while: back-off counts from its failure
        fail(q, qpi)
        assert where(q, qpi.key) == ["backoff"]
        clock.advance(backoff - 0.01)
        assert q.pop_nowait() is None
        assert where(q, qpi.key) == ["backoff"]
        clock.advance(0.02)
        assert q.flush_backoff_completed() == 1
        assert where(q, qpi.key) == ["active"]


async def test_background_flush_moves_completed_backoff(make_async_queue: Callable[..., SchedulingQueue],
                                                        clock: FakeClock) -> None:
    """The flushing task moves a pod whose back-off ended to active, waking a waiting pop."""
    q = make_async_queue(flush_interval=0.01)
    q.add(make_pod("p"))
    qpi = await asyncio.wait_for(q.pop(), WAIT)
    fail(q, qpi)
    popping = asyncio.ensure_future(q.pop())
    await asyncio.sleep(QUIET)
    assert not popping.done()
    clock.advance(1.5)
    assert (await asyncio.wait_for(popping, WAIT)) is qpi


# ----- the unschedulable pool and cluster events --------------------------------------------------------


@pytest.mark.parametrize(("event", "moves"), [
    (ClusterEvent.ASSIGNED_POD_DELETE, True),
    (ClusterEvent.NODE_ADD, True),
    (ClusterEvent.NODE_UPDATE_ALLOCATABLE, True),
    (ClusterEvent.NODE_UPDATE_LABEL, False),
    (ClusterEvent.NODE_UPDATE_TAINT, False),
    (ClusterEvent.ASSIGNED_POD_ADD, False),
    (ClusterEvent.FORCE_ACTIVATE, True),
])
def test_fit_failure_moves_only_on_events_that_free_resources(clock: FakeClock, event: ClusterEvent,
                                                              moves: bool) -> None:
    """A NodeResourcesFit rejection leaves the pool on events that can free room, not on others."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    assert q.move_all_to_active_or_backoff(event) == int(moves)
    assert where(q, qpi.key) == (["backoff"] if moves else ["unschedulable"])


def test_event_relevant_to_any_rejecting_plugin_moves_the_pod(clock: FakeClock) -> None:
    """A pod rejected by several plugins moves when the event concerns any one of them."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT, "NodeAffinity")
    assert q.move_all_to_active_or_backoff(ClusterEvent.NODE_UPDATE_LABEL) == 1
    assert where(q, qpi.key) == ["backoff"]


def test_unknown_plugin_failure_moves_on_any_event(clock: FakeClock) -> None:
    """A rejection by a plugin without registered events is resolved by every event."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, "OutOfTreePlugin")
    assert q.move_all_to_active_or_backoff(ClusterEvent.NODE_UPDATE_CONDITION) == 1
    assert where(q, qpi.key) == ["backoff"]


def test_moved_pod_goes_straight_to_active_once_its_backoff_is_over(clock: FakeClock) -> None:
    """A pod moved out of the pool after its back-off ended skips the backoff queue."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    clock.advance(1.5)
    assert q.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD) == 1
    assert where(q, qpi.key) == ["active"]


def test_pre_check_filters_moved_pods(clock: FakeClock) -> None:
    """Only pods passing `pre_check` move."""
    q = new_queue(clock)
    unschedulable_for(q, clock, FIT, name="a")
    unschedulable_for(q, clock, FIT, name="b")
    moved = q.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD, lambda pod: pod.metadata.name == "b")
    assert moved == 1
    assert q.pending()["unschedulable"] == ["default/a"]
    assert q.pending()["backoff"] == ["default/b"]


def test_assigned_pod_events(clock: FakeClock) -> None:
    """Bound-pod changes move pods when they can matter: deletion or finishing frees room, new labels
    concern affinity; other updates move nothing."""
    q = new_queue(clock)
    fit = unschedulable_for(q, clock, FIT, name="fit")
    affinity = unschedulable_for(q, clock, "InterPodAffinity", name="affinity")
    bound = make_pod("bound", labels={"app": "x"})
    assert q.assigned_pod_updated(bound, bound) == 0
    assert q.assigned_pod_added(bound) == 1
    assert where(q, affinity.key) == ["backoff"]
    relabelled = make_pod("bound", labels={"app": "y"})
    assert q.assigned_pod_updated(bound, relabelled) == 0  # only the fit pod is left, and labels don't help it
    finished = make_pod("bound", labels={"app": "y"}, phase="Succeeded")
    assert q.assigned_pod_updated(relabelled, finished) == 1
    assert where(q, fit.key) == ["backoff"]
    unschedulable_for(q, clock, FIT, name="fit2")
    assert q.assigned_pod_deleted(finished) == 1


def test_error_goes_to_backoff_not_the_pool(clock: FakeClock) -> None:
    """A failure with no rejecting plugin (an Error) is retried after back-off, without waiting for an event."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    fail(q, qpi)
    assert where(q, qpi.key) == ["backoff"]


def test_relevant_event_during_the_cycle_sends_the_pod_to_backoff(clock: FakeClock) -> None:
    """An event relevant to the failure that arrives while the pod is being scheduled sends it to backoff."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    cycle = q.scheduling_cycle()
    assert q.move_all_to_active_or_backoff(ClusterEvent.ASSIGNED_POD_DELETE) == 0
    fail(q, qpi, FIT, cycle=cycle)
    assert where(q, qpi.key) == ["backoff"]


def test_irrelevant_or_earlier_event_does_not_divert_the_pod(clock: FakeClock) -> None:
    """Events before the pod's cycle, or irrelevant to its failure, leave it for the unschedulable pool."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    q.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)  # before the cycle
    qpi = pop_now(q)
    cycle = q.scheduling_cycle()
    q.move_all_to_active_or_backoff(ClusterEvent.NODE_UPDATE_LABEL)  # during it, but irrelevant to Fit
    fail(q, qpi, FIT, cycle=cycle)
    assert where(q, qpi.key) == ["unschedulable"]


def test_event_during_a_later_cycle_still_counts(clock: FakeClock) -> None:
    """With pods scheduled concurrently, an event in a later cycle still concerns an earlier, unfinished one."""
    q = new_queue(clock)
    q.add(make_pod("a"))
    q.add(make_pod("b"))
    first = pop_now(q)
    first_cycle = q.scheduling_cycle()
    pop_now(q)
    q.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)
    fail(q, first, FIT, cycle=first_cycle)
    assert where(q, first.key) == ["backoff"]


def test_unschedulable_pool_is_flushed_after_max_in_unschedulable(clock: FakeClock) -> None:
    """A pod no event moved leaves the pool once it has been there longer than max_in_unschedulable."""
    q = new_queue(clock, max_in_unschedulable=60.0)
    qpi = unschedulable_for(q, clock, FIT)
    clock.advance(60.0)
    assert q.flush_unschedulable_leftover() == 0
    clock.advance(0.5)
    assert q.flush_unschedulable_leftover() == 1
    assert where(q, qpi.key) == ["active"]  # its 1 s back-off is long over


async def test_background_flush_empties_the_unschedulable_pool(make_async_queue: Callable[..., SchedulingQueue],
                                                               clock: FakeClock) -> None:
    """The flushing task sends a pod that outstayed max_in_unschedulable back to pop."""
    q = make_async_queue(flush_interval=0.01, max_in_unschedulable=30.0)
    q.add(make_pod("p"))
    qpi = await asyncio.wait_for(q.pop(), WAIT)
    fail(q, qpi, FIT)
    popping = asyncio.ensure_future(q.pop())
    await asyncio.sleep(QUIET)
    assert not popping.done()
    clock.advance(31.0)
    assert (await asyncio.wait_for(popping, WAIT)) is qpi


# ----- update, delete, activate -------------------------------------------------------------------------


def test_spec_update_moves_an_unschedulable_pod(clock: FakeClock) -> None:
    """An unschedulable pod whose spec changes moves to backoff while backing off, else to active."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    new = make_pod("p", image="img:2")
    q.update(qpi.pod, new)
    assert where(q, qpi.key) == ["backoff"]
    assert qpi.pod is new

    q2 = new_queue(clock)
    qpi2 = unschedulable_for(q2, clock, FIT)
    clock.advance(2.0)
    q2.update(qpi2.pod, make_pod("p", image="img:2"))
    assert where(q2, qpi2.key) == ["active"]


def test_status_only_update_keeps_the_pod_in_the_pool(clock: FakeClock) -> None:
    """Status and bookkeeping changes cannot make a pod fit, so it stays unschedulable (with the new object)."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    new = copy_pod(qpi.pod)
    new.status.phase = "Pending"
    new.metadata.resourceVersion = "42"
    q.update(qpi.pod, new)
    assert where(q, qpi.key) == ["unschedulable"]
    assert qpi.pod is new


def test_update_in_active_reorders(clock: FakeClock) -> None:
    """Raising a queued pod's priority moves it ahead."""
    q = new_queue(clock)
    q.add(make_pod("a", priority=5))
    q.add(make_pod("b", priority=1))
    q.update(make_pod("b", priority=1), make_pod("b", priority=9))
    assert q.pending()["active"] == ["default/b", "default/a"]
    assert pop_now(q).priority == 9


def test_add_of_a_known_pod_updates_it_in_place(clock: FakeClock) -> None:
    """Adding a pod the queue already holds replaces its object without a second entry or lost history."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    q.add(make_pod("p"))  # identical: an informer re-list
    assert where(q, qpi.key) == ["unschedulable"]
    assert len(q) == 1
    q.add(make_pod("p", priority=3))  # the spec changed: as for update
    assert where(q, qpi.key) == ["backoff"]
    assert qpi.attempts == 1


def test_recreated_pod_starts_a_fresh_history(clock: FakeClock) -> None:
    """A pod object with a new uid under a known name replaces the old one in active, attempts reset."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    q.update(qpi.pod, make_pod("p", uid="other"))
    assert where(q, qpi.key) == ["active"]
    fresh = pop_now(q)
    assert (fresh.pod.metadata.uid, fresh.attempts) == ("other", 1)


@pytest.mark.parametrize("sub_queue", ["active", "backoff", "unschedulable"])
def test_delete_removes_from_every_sub_queue(clock: FakeClock, sub_queue: str) -> None:
    """Deleting a pod removes it from whichever sub-queue holds it."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    if sub_queue != "active":
        fail(q, pop_now(q), *([FIT] if sub_queue == "unschedulable" else []))
    assert where(q, "default/p") == [sub_queue]
    q.delete(make_pod("p"))
    assert len(q) == 0
    assert all(keys == [] for keys in q.pending().values())


def test_activate_moves_pods_to_active(clock: FakeClock) -> None:
    """`activate` sends backoff and unschedulable pods straight to active and ignores unknown pods."""
    q = new_queue(clock)
    unschedulable = unschedulable_for(q, clock, FIT, name="u")
    q.add(make_pod("b"))
    fail(q, pop_now(q))
    q.activate([unschedulable.pod, make_pod("b"), make_pod("unknown")])
    assert sorted(q.pending()["active"]) == ["default/b", "default/u"]
    assert len(q) == 2


# ----- in-flight pods -----------------------------------------------------------------------------------


def test_update_during_the_cycle_is_applied_when_the_pod_comes_back(clock: FakeClock) -> None:
    """A spec change while the pod is being scheduled is kept and sends the failed pod to backoff."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    old = qpi.pod
    new = make_pod("p", image="img:2")
    q.update(old, new)
    assert qpi.pod is old  # the scheduler's object is not touched mid-cycle
    assert len(q) == 0
    fail(q, qpi, FIT)
    assert where(q, qpi.key) == ["backoff"]
    assert qpi.pod is new


def test_status_update_during_the_cycle_does_not_divert_the_pod(clock: FakeClock) -> None:
    """A status-only change during the cycle is applied but the pod still goes to the pool."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    new = copy_pod(qpi.pod)
    new.status.phase = "Pending"
    q.update(qpi.pod, new)
    fail(q, qpi, FIT)
    assert where(q, qpi.key) == ["unschedulable"]
    assert qpi.pod is new


def test_update_during_a_successful_cycle_is_dropped(clock: FakeClock) -> None:
    """A pod that got scheduled is not re-queued by updates seen during its cycle."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    q.update(qpi.pod, make_pod("p", image="img:2"))
    q.done(qpi.key)
    assert len(q) == 0
    assert q.pending()["in_flight"] == []


def test_delete_during_the_cycle_drops_the_pod(clock: FakeClock) -> None:
    """A pod deleted while being scheduled is not resurrected by its failure."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    q.delete(qpi.pod)
    fail(q, qpi, FIT)
    assert len(q) == 0
    assert q.pending()["in_flight"] == []


@pytest.mark.parametrize("succeeded", [True, False])
def test_pod_recreated_during_the_cycle_is_queued_afresh(clock: FakeClock, succeeded: bool) -> None:
    """A pod deleted and recreated under the same name while the old one was in flight is queued as new."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    q.delete(qpi.pod)
    q.add(make_pod("p", uid="second"))
    assert len(q) == 0
    if succeeded:
        q.done(qpi.key)
    else:
        fail(q, qpi, FIT)
    assert where(q, "default/p") == ["active"]
    fresh = pop_now(q)
    assert (fresh.pod.metadata.uid, fresh.attempts) == ("second", 1)


def test_activate_during_the_cycle_skips_the_pool(clock: FakeClock) -> None:
    """A pod activated while in flight comes back to backoff instead of the unschedulable pool."""
    q = new_queue(clock)
    q.add(make_pod("p"))
    qpi = pop_now(q)
    q.activate([qpi.pod])
    fail(q, qpi, FIT)
    assert where(q, qpi.key) == ["backoff"]


def test_add_unschedulable_if_not_present_ignores_a_queued_pod(clock: FakeClock) -> None:
    """Handing back a pod the queue already holds changes nothing."""
    q = new_queue(clock)
    qpi = unschedulable_for(q, clock, FIT)
    q.add_unschedulable_if_not_present(qpi, q.scheduling_cycle())
    assert where(q, qpi.key) == ["unschedulable"]
    assert len(q) == 1


# ----- node events, plugin table, metrics ------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "expected"), [
    ({}, {}, []),
    ({"labels": {"a": "1"}}, {"labels": {"a": "2"}}, [ClusterEvent.NODE_UPDATE_LABEL]),
    ({"taints": [("k", "v", "NoSchedule")]}, {}, [ClusterEvent.NODE_UPDATE_TAINT]),
    ({}, {"taints": [("k", "v", "NoSchedule")]}, [ClusterEvent.NODE_UPDATE_TAINT]),
    ({"taints": [("a", "", "NoSchedule"), ("b", "", "NoSchedule")]},
     {"taints": [("b", "", "NoSchedule"), ("a", "", "NoSchedule")]}, []),
    ({"allocatable": {"cpu": "4"}}, {"allocatable": {"cpu": "8"}}, [ClusterEvent.NODE_UPDATE_ALLOCATABLE]),
    ({"unschedulable": True}, {"unschedulable": False}, [ClusterEvent.NODE_UPDATE_UNSCHEDULABLE]),
    ({"unschedulable": False}, {"unschedulable": True}, []),
    ({"conditions": [("Ready", "False")]}, {"conditions": [("Ready", "True")]}, [ClusterEvent.NODE_UPDATE_CONDITION]),
    ({"labels": {"a": "1"}, "allocatable": {"cpu": "1"}}, {"labels": {}, "allocatable": {"cpu": "2"}},
     [ClusterEvent.NODE_UPDATE_LABEL, ClusterEvent.NODE_UPDATE_ALLOCATABLE]),
])
def test_node_update_events(old: dict[str, Any], new: dict[str, Any], expected: list[ClusterEvent]) -> None:
    """A node update maps to the events for what changed; heartbeats and reorderings map to none."""
    assert node_update_events(make_node(**old), make_node(**new)) == expected


def test_node_update_ignores_heartbeat_times() -> None:
    """Condition timestamps changing alone is no event."""
    old = make_node(conditions=[("Ready", "True")])
    new = make_node(conditions=[("Ready", "True")])
    new.status.conditions[0].lastHeartbeatTime.seconds = 99
    assert node_update_events(old, new) == []


def test_plugin_events_cover_every_in_tree_plugin() -> None:
    """Every registered plugin has an entry in PLUGIN_EVENTS, and no entry names an unknown plugin."""
    assert sorted(PLUGIN_EVENTS) == plugins.names()
    assert all(PLUGIN_EVENTS.values())


def test_metrics_count_incoming_pods_and_pending_depths(clock: FakeClock) -> None:
    """The incoming counter is labelled by sub-queue and event, and the gauge shows each sub-queue's depth."""

    def incoming(queue: str, event: str) -> float:
        labels = {"queue": queue, "event": event}
        return REGISTRY.get_sample_value("scheduler_queue_incoming_pods_total", labels) or 0.0

    before_add = incoming("active", "PodAdd")
    before_fail = incoming("unschedulable", "ScheduleAttemptFailure")
    before_move = incoming("backoff", "NodeAdd")
    q = new_queue(clock)
    unschedulable_for(q, clock, FIT)
    assert incoming("active", "PodAdd") == before_add + 1
    assert incoming("unschedulable", "ScheduleAttemptFailure") == before_fail + 1
    assert REGISTRY.get_sample_value("scheduler_pending_pods", {"queue": "unschedulable"}) == 1
    q.move_all_to_active_or_backoff(ClusterEvent.NODE_ADD)
    assert incoming("backoff", "NodeAdd") == before_move + 1
    assert REGISTRY.get_sample_value("scheduler_pending_pods", {"queue": "unschedulable"}) == 0
    assert REGISTRY.get_sample_value("scheduler_pending_pods", {"queue": "backoff"}) == 1


def test_rejects_bad_configuration() -> None:
    """Negative or inverted back-offs and a non-positive flush interval are refused."""
    for kwargs in [{"initial_backoff": -1.0}, {"initial_backoff": 5.0, "max_backoff": 1.0}, {"flush_interval": 0.0}]:
        with pytest.raises(ValueError):
            SchedulingQueue(**kwargs)  # type: ignore[arg-type]


# ----- a model-based check of the invariants -------------------------------------------------------


NAMES = ["a", "b", "c"]
PLUGIN_CHOICES = [FIT, "NodeAffinity", "TaintToleration", "InterPodAffinity"]


class QueueMachine(RuleBasedStateMachine):
    """Random informer events, pops, failures, successes, cluster events and clock ticks.

    Model: `live` maps each pending pod's key to its uid (added, neither deleted nor scheduled);
    `flying` holds the popped pods the scheduler still owns.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.q = SchedulingQueue(clock=self.clock, max_in_unschedulable=60.0)
        self.live: dict[str, str] = {}
        self.objects: dict[str, Any] = {}
        self.flying: dict[str, tuple[QueuedPodInfo, int]] = {}
        self.uids = itertools.count()

    @rule(name=st.sampled_from(NAMES), priority=st.integers(0, 2))
    def add(self, name: str, priority: int) -> None:
        key = f"default/{name}"
        uid = self.live.get(key) or f"{name}-{next(self.uids)}"
        pod = make_pod(name, priority=priority, uid=uid)
        self.live[key], self.objects[key] = uid, pod
        self.q.add(pod)

    @rule(name=st.sampled_from(NAMES), priority=st.integers(0, 2), image=st.sampled_from(["x", "y"]),
          phase=st.sampled_from(["", "Pending"]))
    def update(self, name: str, priority: int, image: str, phase: str) -> None:
        key = f"default/{name}"
        if key not in self.live:
            return
        new = make_pod(name, priority=priority, uid=self.live[key], image=image, phase=phase)
        self.q.update(self.objects[key], new)
        self.objects[key] = new

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        key = f"default/{name}"
        if key in self.objects:
            self.q.delete(self.objects.pop(key))
            self.live.pop(key, None)

    @rule(name=st.sampled_from(NAMES))
    def recreate(self, name: str) -> None:
        """Delete the pod and create another one under the same name (a new uid)."""
        key = f"default/{name}"
        if key in self.objects:
            self.delete(name)
            self.add(name, 0)

    @rule()
    def pop(self) -> None:
        qpi = self.q.pop_nowait()
        if qpi is None:
            assert self.q.pending()["active"] == []
            return
        assert qpi.key not in self.flying
        assert all(self.q._infos[k].priority <= qpi.priority for k in self.q.pending()["active"])
        self.flying[qpi.key] = (qpi, self.q.scheduling_cycle())

    @precondition(lambda self: self.flying)
    @rule(data=st.data(), plugin_names=st.sets(st.sampled_from(PLUGIN_CHOICES), max_size=2))
    def fail(self, data: st.DataObject, plugin_names: set[str]) -> None:
        key = data.draw(st.sampled_from(sorted(self.flying)))
        qpi, cycle = self.flying.pop(key)
        qpi.unschedulable_plugins = set(plugin_names)
        self.q.add_unschedulable_if_not_present(qpi, cycle)
        self.q.done(key)

    @precondition(lambda self: self.flying)
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.flying)))
        qpi, _ = self.flying.pop(key)
        self.q.done(key)
        if self.live.get(key) == qpi.pod.metadata.uid:  # now bound: no longer pending
            del self.live[key]
            del self.objects[key]

    @rule(event=st.sampled_from(list(ClusterEvent)))
    def cluster_event(self, event: ClusterEvent) -> None:
        self.q.move_all_to_active_or_backoff(event)

    @rule(name=st.sampled_from(NAMES))
    def activate(self, name: str) -> None:
        key = f"default/{name}"
        if key in self.objects:
            self.q.activate([self.objects[key]])

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 61.0]))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.q.flush_backoff_completed()
        self.q.flush_unschedulable_leftover()

    @invariant()
    def each_pending_pod_is_in_exactly_one_place(self) -> None:
        self.q._check_invariants()
        pending = self.q.pending()
        queued = pending["active"] + pending["backoff"] + pending["unschedulable"]
        assert len(queued) == len(set(queued)) == len(self.q)
        assert set(pending["in_flight"]) == set(self.flying)
        assert set(queued) == {k for k in self.live if k not in self.flying}
        for key in queued:
            assert self.q._infos[key].pod == self.objects[key]


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
