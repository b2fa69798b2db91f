"""The one-pass resource-plan scorers (the hot path) agree with the list-based reference
implementations (`requested_and_allocatable_lists` + the strategy scorers), for any node state,
pod request and resource list — extended resources, missing ones and over-commitment included;
and the per-node memos of NodeResourcesFit / BalancedAllocation never serve a stale answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import CycleState, NodeInfo, Resource, Status
from scheduler.nodeinfo import (
    add_pod,
    cycle_pod_info,
    new_node_info,
    new_pod_info,
    pod_request_values,
    remove_pod,
    set_node,
)
from scheduler.plugins import balanced_allocation, node_resources_fit
from scheduler.plugins.node_resources_fit import (
    least_requested_score,
    most_requested_score,
    planned_allocation_score,
    planned_lists,
    requested_and_allocatable_lists,
    resource_plan,
)

NAMES = ["cpu", "memory", "ephemeral-storage", "example.com/gpu", "hugepages-2Mi", "pods", "unknown"]
SCALARS = ["example.com/gpu", "hugepages-2Mi"]

amounts = st.integers(min_value=0, max_value=10_000)


@st.composite
def resources(draw: st.DrawFn) -> Resource:
    scalar = {name: draw(amounts) for name in SCALARS if draw(st.booleans())}
    return Resource(draw(amounts), draw(amounts), draw(amounts), draw(amounts), scalar)


@st.composite
def node_infos(draw: st.DrawFn) -> NodeInfo:
    return NodeInfo(core_pb2.Node(), requested=draw(resources()), non_zero_requested=draw(resources()),
                    allocatable=draw(resources()))


names_lists = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True)


@settings(deadline=None)  # no wall-clock limits: CI machines are shared
@given(node_infos(), names_lists, st.data())
def test_planned_lists_match_reference(ni: NodeInfo, names: list[str], data: st.DataObject) -> None:
    requests = data.draw(st.lists(amounts, min_size=len(names), max_size=len(names)))
    plan = resource_plan(names, requests)
    for use_requested in (True, False):
        assert planned_lists(ni, plan, use_requested=use_requested) == requested_and_allocatable_lists(
            ni, names, requests, use_requested=use_requested)


@settings(deadline=None)
@given(node_infos(), names_lists, st.data())
def test_planned_allocation_score_matches_reference(ni: NodeInfo, names: list[str], data: st.DataObject) -> None:
    requests = data.draw(st.lists(amounts, min_size=len(names), max_size=len(names)))
    weights = data.draw(st.lists(st.integers(1, 100), min_size=len(names), max_size=len(names)))
    plan = resource_plan(names, requests)
    requested, allocatable = requested_and_allocatable_lists(ni, names, requests, use_requested=False)
    for most, per_resource in ((False, least_requested_score), (True, most_requested_score)):
        want = node_resources_fit._weighted_scorer(weights, per_resource)(requested, allocatable)
        assert planned_allocation_score(ni, plan, weights, most_allocated=most) == want


@settings(deadline=None)
@given(node_infos(), names_lists, st.data())
def test_planned_balanced_score_matches_reference(ni: NodeInfo, names: list[str], data: st.DataObject) -> None:
    requests = data.draw(st.lists(amounts, min_size=len(names), max_size=len(names)))
    requested, allocatable = requested_and_allocatable_lists(ni, names, requests, use_requested=True)
    want = balanced_allocation.balanced_resource_score(requested, allocatable)
    assert balanced_allocation.planned_balanced_score(ni, resource_plan(names, requests)) == want


# ----- per-node memos: reused only while the node's generation is unchanged --------------------


def _node(cpu: int, memory: int, pods: int = 110) -> Any:
    return codec.from_dict({"metadata": {"name": "n"}, "status": {"allocatable": {
        "cpu": f"{cpu}m", "memory": str(memory), "pods": str(pods)}}}, core_pb2.Node)


def _pod(i: int, cpu: int, memory: int) -> Any:
    return codec.from_dict({"metadata": {"name": f"p{i}", "namespace": "default"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": f"{cpu}m", "memory": str(memory)}}}]}}, core_pb2.Pod)


def _fresh(pod: Any, ni: NodeInfo, args: dict[str, Any]) -> tuple[Status, int, int]:
    """Filter and scores from brand-new plugin instances (nothing memoized)."""
    fit = node_resources_fit.new(args, None)  # type: ignore[arg-type]
    balanced = balanced_allocation.new({}, None)  # type: ignore[arg-type]
    return _run(fit, balanced, pod, ni)


def _run(fit: Any, balanced: Any, pod: Any, ni: NodeInfo) -> tuple[Status, int, int]:
    state = CycleState()
    fit.pre_filter(state, pod, [ni])
    fit.pre_score(state, pod, [ni])
    balanced.pre_score(state, pod, [ni])
    return fit.filter(state, pod, ni), fit.score(state, pod, ni)[0], balanced.score(state, pod, ni)[0]


small = st.integers(min_value=1, max_value=4000)
operations = st.lists(st.one_of(
    st.tuples(st.just("add"), small, small),
    st.tuples(st.just("remove"), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("node"), small, small),
), max_size=25)
incoming = st.lists(st.tuples(small, small), min_size=1, max_size=3)


@pytest.mark.parametrize("args", [{}, {"scoringStrategy": {"type": "MostAllocated"}}])
@settings(max_examples=40, deadline=None)
@given(ops=operations, pods=incoming)
def test_memoized_results_match_fresh_ones_across_node_changes(
    args: dict[str, Any], ops: list[tuple[str, int, int]], pods: list[tuple[int, int]]
) -> None:
    """One plugin pair schedules pods of a few shapes against a node that keeps changing (pods
    counted and uncounted, the node itself updated): every answer equals a fresh computation."""
    ni = new_node_info(_node(4000, 4000, pods=5))
    fit = node_resources_fit.new(args, None)  # type: ignore[arg-type]
    balanced = balanced_allocation.new({}, None)  # type: ignore[arg-type]
    candidates = [_pod(100 + i, cpu, mem) for i, (cpu, mem) in enumerate(pods)]
    for i, (op, a, b) in enumerate(ops):
        if op == "add":
            add_pod(ni, new_pod_info(_pod(i, a, b)))
        elif op == "remove" and ni.pods:
            remove_pod(ni, ni.pods[a % len(ni.pods)].key)
        elif op == "node":
            set_node(ni, _node(a, b, pods=5))
        for candidate in candidates:
            assert _run(fit, balanced, candidate, ni) == _fresh(candidate, ni, args)


def test_memo_slots_are_per_plugin_instance() -> None:
    """Two profiles' NodeResourcesFit with different strategies never read each other's scores."""
    ni = new_node_info(_node(4000, 4000))
    add_pod(ni, new_pod_info(_pod(0, 3000, 3000)))
    pod = _pod(1, 100, 100)
    least = node_resources_fit.new({}, None)  # type: ignore[arg-type]
    most = node_resources_fit.new({"scoringStrategy": {"type": "MostAllocated"}}, None)  # type: ignore[arg-type]
    balanced = balanced_allocation.new({}, None)  # type: ignore[arg-type]
    least_score = _run(least, balanced, pod, ni)[1]
    most_score = _run(most, balanced, pod, ni)[1]
    assert (least_score, most_score) == (22, 77)
    assert _run(least, balanced, pod, ni)[1] == least_score


_ALL_NAMES = ["cpu", "memory", "ephemeral-storage", "pods", "example.com/gpu", "hugepages-2Mi", "foo"]


@pytest.mark.parametrize("spec", [
    {"containers": [{"name": "a"}]},
    {"containers": [{"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi", "foo": "3"}}},
                    {"name": "b", "resources": {"requests": {"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}}}]},
    {"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2", "ephemeral-storage": "1Gi"}}},
                        {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Mi"}}}],
     "containers": [{"name": "a", "resources": {"requests": {"cpu": "0", "pods": "1"}}}],
     "overhead": {"cpu": "10m", "memory": "5Mi"}},
], ids=["best-effort", "scalar-and-unknown", "init-sidecar-overhead"])
def test_pod_request_values_match_the_quantity_path(spec: dict[str, Any]) -> None:
    """Requests read from the cycle's PodInfo equal those computed from the pod's quantities."""
    pod = codec.from_dict({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}, core_pb2.Pod)
    state = CycleState()
    pod_info = cycle_pod_info(state, pod)
    assert cycle_pod_info(state, pod) is pod_info
    for non_zero in (False, True):
        want = node_resources_fit.pod_resource_request_list(pod, _ALL_NAMES, use_requested=not non_zero)
        assert pod_request_values(pod_info, _ALL_NAMES, non_zero=non_zero) == want
