"""The node lifecycle controller's rules: health, conditions, taints, eviction deadlines, zones
and their rate limits (pure functions, an injected clock)."""

from __future__ import annotations

import math

import pytest

from controller_manager.context import NodeLifecycleOptions
from controller_manager.nodelifecycle import (
    FULL_DISRUPTION,
    NORMAL,
    NOT_READY,
    PARTIAL_DISRUPTION,
    UNREACHABLE,
    UNSCHEDULABLE,
    TokenBucket,
    ZoneTaintQueue,
    eviction_deadline,
    is_silent,
    last_heard,
    no_execute_taint_key,
    no_schedule_taint_keys,
    swap_taints,
    unknown_conditions,
    zone_state,
    zone_tainting_rate,
)
from kplane.api.pb import coordination_pb2, core_pb2

OPTS = NodeLifecycleOptions()  # 50 s grace, 60 s startup grace


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def node(*, created: float = 0.0, ready: str | None = "True", heartbeat: float = 0.0,
         conditions: dict[str, str] | None = None, unschedulable: bool = False,
         taints: list[core_pb2.Taint] | None = None) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = "node-1"
    n.metadata.creationTimestamp.FromSeconds(int(created))
    for ctype, status in {**({"Ready": ready} if ready is not None else {}), **(conditions or {})}.items():
        c = n.status.conditions.add(type=ctype, status=status, reason="KubeletReady")
        c.lastHeartbeatTime.FromSeconds(int(heartbeat))
        c.lastTransitionTime.FromSeconds(int(heartbeat))
    n.spec.unschedulable = unschedulable
    n.spec.taints.extend(taints or [])
    return n


def lease(renew: float) -> coordination_pb2.Lease:
    le = coordination_pb2.Lease()
    le.spec.renewTime.FromNanoseconds(int(renew * 1e9))
    return le


def taint(key: str, effect: str = "NoExecute", added: float | None = None) -> core_pb2.Taint:
    t = core_pb2.Taint(key=key, effect=effect)
    if added is not None:
        t.timeAdded.FromSeconds(int(added))
    return t


def tol(key: str = "", *, operator: str = "Exists", effect: str = "NoExecute", seconds: int | None = None,
        value: str = "") -> core_pb2.Toleration:
    t = core_pb2.Toleration(key=key, operator=operator, effect=effect, value=value)
    if seconds is not None:
        t.tolerationSeconds = seconds
    return t


# -- health --------------------------------------------------------------------------------------


def test_last_heard_is_the_latest_of_lease_heartbeat_and_creation() -> None:
    n = node(created=10, heartbeat=100)
    assert last_heard(n, None) == 100
    assert last_heard(n, lease(250.5)) == 250.5
    assert last_heard(node(created=10, ready=None), None) == 10


@pytest.mark.parametrize("now, silent", [(149, False), (150, False), (151, True)])
def test_a_node_is_silent_after_the_monitor_grace_period(now: float, silent: bool) -> None:
    assert is_silent(node(heartbeat=0), lease(100), now, OPTS) is silent


def test_a_node_that_never_posted_ready_gets_the_startup_grace() -> None:
    fresh = node(created=100, ready=None)
    assert not is_silent(fresh, None, 160, OPTS)
    assert is_silent(fresh, None, 161, OPTS)


def test_the_grace_floor_counts_as_a_sign_of_life() -> None:
    """A controller that just started (or left full disruption) gives every node one grace period."""
    assert is_silent(node(heartbeat=0), None, 100, OPTS)
    assert not is_silent(node(heartbeat=0), None, 100, OPTS, not_before=60)


def test_unknown_conditions_keep_heartbeats_and_stamp_transitions() -> None:
    n = node(heartbeat=40, conditions={"MemoryPressure": "False", "DiskPressure": "False"})
    out = unknown_conditions(n, 100)
    assert out is not None
    by_type = {c.type: c for c in out}
    ready = by_type["Ready"]
    assert (ready.status, ready.reason, ready.message) == ("Unknown", "NodeStatusUnknown",
                                                            "Kubelet stopped posting node status.")
    assert ready.lastHeartbeatTime.seconds == 40 and ready.lastTransitionTime.seconds == 100
    assert by_type["MemoryPressure"].status == "Unknown"
    never = by_type["PIDPressure"]  # never posted by this kubelet
    assert (never.status, never.reason, never.message) == ("Unknown", "NodeStatusNeverUpdated",
                                                            "Kubelet never posted node status.")
    # a second pass changes nothing
    again = core_pb2.Node()
    again.status.conditions.extend(out)
    assert unknown_conditions(again, 200) is None


# -- taints --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ready, conditions, unschedulable, want", [
    ("True", {}, False, set()),
    ("False", {}, False, {NOT_READY}),
    ("Unknown", {}, False, {UNREACHABLE}),
    ("True", {"MemoryPressure": "True", "DiskPressure": "True", "PIDPressure": "False"}, False,
     {"node.kubernetes.io/memory-pressure", "node.kubernetes.io/disk-pressure"}),
    ("True", {"NetworkUnavailable": "True"}, True, {"node.kubernetes.io/network-unavailable", UNSCHEDULABLE}),
])
def test_no_schedule_taints_follow_conditions(ready: str, conditions: dict[str, str], unschedulable: bool,
                                             want: set[str]) -> None:
    assert no_schedule_taint_keys(node(ready=ready, conditions=conditions, unschedulable=unschedulable)) == want


def test_no_execute_taint_for_ready_status() -> None:
    assert [no_execute_taint_key(s) for s in ("True", "False", "Unknown", None)] == [None, NOT_READY, UNREACHABLE, None]


def test_swap_taints_adds_with_time_keeps_existing_and_removes() -> None:
    user = taint("dedicated", "NoSchedule")
    old = [user, taint(NOT_READY, "NoExecute", added=50)]
    out = swap_taints(old, add=[(UNREACHABLE, "NoExecute")], remove=[(NOT_READY, "NoExecute")], now=123.7)
    assert out is not None
    assert [(t.key, t.effect) for t in out] == [("dedicated", "NoSchedule"), (UNREACHABLE, "NoExecute")]
    assert out[1].timeAdded.seconds == 123
    # adding what is there keeps its timeAdded (the eviction deadline must not move) and writes nothing
    assert swap_taints(out, add=[(UNREACHABLE, "NoExecute")], remove=[], now=999) is None
    assert swap_taints(out, add=[], remove=[(NOT_READY, "NoExecute")], now=999) is None


# -- eviction deadlines ---------------------------------------------------------------------------


def added(t: core_pb2.Taint) -> float:
    return float(t.timeAdded.seconds)


def test_untolerated_no_execute_taint_evicts_at_once() -> None:
    assert eviction_deadline([taint(UNREACHABLE, added=100)], [], added_at=added) == -math.inf
    # a NoSchedule toleration does not cover a NoExecute taint
    assert eviction_deadline([taint(UNREACHABLE, added=100)], [tol(UNREACHABLE, effect="NoSchedule")],
                             added_at=added) == -math.inf


def test_toleration_seconds_count_from_time_added() -> None:
    tolerations = [tol(NOT_READY, seconds=300), tol(UNREACHABLE, seconds=300)]
    assert eviction_deadline([taint(UNREACHABLE, added=100)], tolerations, added_at=added) == 400


def test_the_earliest_deadline_over_taints_wins_and_first_matching_toleration_counts() -> None:
    taints = [taint(UNREACHABLE, added=100), taint("custom", added=150)]
    tolerations = [tol(UNREACHABLE, seconds=60), tol("", seconds=1000)]  # empty key: matches "custom"
    assert eviction_deadline(taints, tolerations, added_at=added) == 160
    # the first matching toleration decides, even when a later one would allow longer
    assert eviction_deadline([taint(UNREACHABLE, added=100)], [tol("", seconds=5), tol(UNREACHABLE)],
                             added_at=added) == 105


def test_forever_tolerations_and_no_taints_mean_no_eviction() -> None:
    assert eviction_deadline([taint(UNREACHABLE, added=100)], [tol(UNREACHABLE)], added_at=added) is None
    assert eviction_deadline([taint("x", "NoSchedule")], [], added_at=added) is None
    assert eviction_deadline([], [], added_at=added) is None


def test_non_positive_toleration_seconds_evict_at_the_taint_time() -> None:
    assert eviction_deadline([taint(UNREACHABLE, added=100)], [tol(UNREACHABLE, seconds=-5)], added_at=added) == 100


def test_equal_toleration_needs_the_value() -> None:
    t = core_pb2.Taint(key="k", value="v", effect="NoExecute")
    t.timeAdded.FromSeconds(10)
    assert eviction_deadline([t], [tol("k", operator="Equal", value="other", seconds=5)], added_at=added) == -math.inf
    assert eviction_deadline([t], [tol("k", operator="Equal", value="v", seconds=5)], added_at=added) == 15


# -- zones ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ready, want", [
    (["True", "True", "Unknown"], (1, NORMAL)),
    (["Unknown"], (1, FULL_DISRUPTION)),
    (["Unknown", None], (2, FULL_DISRUPTION)),
    (["True", "Unknown", "Unknown"], (2, NORMAL)),  # not more than 2 not ready
    (["True", "Unknown", "Unknown", "False"], (3, PARTIAL_DISRUPTION)),  # 3/4 >= 0.55
    (["True", "True", "Unknown", "Unknown", "False"], (3, PARTIAL_DISRUPTION)),  # 3/5 = 0.6
    (["True", "True", "True", "Unknown", "Unknown", "False"], (3, NORMAL)),  # 3/6 = 0.5
    ([], (0, NORMAL)),
])
def test_zone_state(ready: list[str | None], want: tuple[int, str]) -> None:
    assert zone_state(ready, 0.55) == want


def test_zone_tainting_rates() -> None:
    assert zone_tainting_rate(NORMAL, 3, OPTS) == 0.1
    assert zone_tainting_rate(FULL_DISRUPTION, 3, OPTS) == 0.1
    assert zone_tainting_rate(PARTIAL_DISRUPTION, 50, OPTS) == 0.0  # small cluster: stop
    assert zone_tainting_rate(PARTIAL_DISRUPTION, 51, OPTS) == 0.01


def test_token_bucket_starts_full_and_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(0.1, clock)
    assert bucket.try_accept()
    assert not bucket.try_accept()
    assert bucket.seconds_until_token() == pytest.approx(10.0)
    clock.now += 9.9
    assert not bucket.try_accept()
    clock.now += 0.2
    assert bucket.try_accept()
    never = TokenBucket(0.0, clock)
    assert not never.try_accept() and never.seconds_until_token() == math.inf


async def test_zone_queue_releases_nodes_at_the_rate_in_order_and_keeps_failures() -> None:
    clock = Clock()
    queue = ZoneTaintQueue(0.1, clock)
    for name in ("a", "b", "c"):
        assert queue.add(name)
    assert not queue.add("a")  # queued at most once
    done: list[str] = []

    async def taint(name: str) -> bool:
        done.append(name)
        return name != "b"  # b's write fails: it stays queued

    await queue.process(taint)
    assert done == ["a"] and list(queue.items) == ["b", "c"]
    assert queue.next_attempt_in() == pytest.approx(10.0)
    clock.now += 10
    await queue.process(taint)
    assert done == ["a", "b"] and list(queue.items) == ["b", "c"]
    clock.now += 10
    await queue.process(taint)
    assert done == ["a", "b", "b"]
    queue.remove("b")
    clock.now += 10
    await queue.process(taint)
    assert done[-1] == "c" and queue.next_attempt_in() is None


def test_swapping_the_limiter_keeps_an_empty_bucket_empty() -> None:
    clock = Clock()
    queue = ZoneTaintQueue(0.1, clock)
    assert queue.limiter.try_accept()
    queue.swap_limiter(0.01)
    assert not queue.limiter.try_accept()  # no free token from the swap
    queue.swap_limiter(0.0)
    clock.now += 1000
    assert not queue.limiter.try_accept()
