"""The one-pass resource-plan scorers (the hot path) agree with the list-based reference
implementations (`requested_and_allocatable_lists` + the strategy scorers), for any node state,
pod request and resource list — extended resources, missing ones and over-commitment included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kplane.api.pb import core_pb2
from scheduler.framework import NodeInfo, Resource
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


@given(node_infos(), names_lists, st.data())
def test_planned_lists_match_reference(ni: NodeInfo, names: list[str], data: st.DataObject) -> None:
    requests = data.draw(st.lists(amounts, min_size=len(names), max_size=len(names)))
    plan = resource_plan(names, requests)
    for use_requested in (True, False):
        assert planned_lists(ni, plan, use_requested=use_requested) == requested_and_allocatable_lists(
            ni, names, requests, use_requested=use_requested)


@given(node_infos(), names_lists, st.data())
def test_planned_allocation_score_matches_reference(ni: NodeInfo, names: list[str], data: st.DataObject) -> None:
    requests = data.draw(st.lists(amounts, min_size=len(names), max_size=len(names)))
    weights = data.draw(st.lists(st.integers(1, 100), min_size=len(names), max_size=len(names)))
    plan = resource_plan(names, requests)
    requested, allocatable = requested_and_allocatable_lists(ni, names, requests, use_requested=False)
    for most, per_resource in ((False, least_requested_score), (True, most_requested_score)):
        want = node_resources_fit._weighted_scorer(weights, per_resource)(requested, allocatable)
        assert planned_allocation_score(ni, plan, weights, most_allocated=most) == want


@given(node_infos(), names_lists, st.data())
def test_planned_balanced_score_matches_reference(ni: NodeInfo, names: list[str], data: st.DataObject) -> None:
    requests = data.draw(st.lists(amounts, min_size=len(names), max_size=len(names)))
    requested, allocatable = requested_and_allocatable_lists(ni, names, requests, use_requested=True)
    want = balanced_allocation.balanced_resource_score(requested, allocatable)
    assert balanced_allocation.planned_balanced_score(ni, resource_plan(names, requests)) == want
