"""NodeResourcesBalancedAllocation: prefer nodes whose resources would be used evenly.

Upstream pkg/scheduler/framework/plugins/noderesources/balanced_allocation.go. For each configured
resource (default cpu and memory) the node's utilisation fraction after placing the pod is
`min(1, (requested + pod request) / allocatable)`, using the *actual* requests (not the non-zero
defaults); resources the node lacks, and extended resources the pod does not request, are left
out. The score is `(1 - std) * MAX_NODE_SCORE` where `std` is the standard deviation of those
fractions (for two resources simply `|f1 - f2| / 2`).

Pre-score returns Skip for a best-effort pod (requests nothing scored): balancing on zero
requests would herd such pods onto the same node (kubernetes/kubernetes#129138).

Args (`NodeResourcesBalancedAllocationArgs`): `{"resources": [{"name": "cpu", "weight": 1}, ...]}`;
names must be unique and weights 1 (missing/0 defaults to 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, Handle, NodeInfo, Pod, Status
from scheduler.nodeinfo import cycle_pod_info, pod_request_values
from scheduler.plugins.node_resources_fit import (
    CPU,
    EPHEMERAL,
    MEMORY,
    SCALAR,
    ResourcePlan,
    ResourceSpec,
    parse_resource_specs,
    pod_resource_request_list,
    resource_plan,
)

NAME = "NodeResourcesBalancedAllocation"
PRE_SCORE_STATE_KEY = "PreScore" + NAME


def parse_args(args: Mapping[str, Any] | None) -> tuple[ResourceSpec, ...]:
    """Validate and default the args; ValueError lists every problem."""
    args = args or {}
    if not isinstance(args, Mapping):
        raise ValueError(f"{NAME} args: must be a mapping, got {type(args).__name__}")
    errs: list[str] = []
    unknown = set(args) - {"resources"}
    if unknown:
        errs.append(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    resources = parse_resource_specs(args.get("resources"), "resources", errs)
    seen: set[str] = set()
    for i, spec in enumerate(resources):
        if spec.name in seen:
            errs.append(f"resources[{i}].name: Duplicate value: {spec.name!r}")
        seen.add(spec.name)
        if spec.weight != 1:
            errs.append(f"resources[{i}].weight: Invalid value: {spec.weight}: must be 1")
    if errs:
        raise ValueError(f"invalid {NAME} args: " + "; ".join(errs))
    return resources


def balanced_resource_score(requested: Sequence[int], allocatable: Sequence[int]) -> int:
    """(1 - standard deviation of the utilisation fractions) * MAX_NODE_SCORE, truncated."""
    fractions = [
        min(1.0, req / alloc) for req, alloc in zip(requested, allocatable, strict=True) if alloc != 0
    ]
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) * (f - mean) for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


def planned_balanced_score(node_info: NodeInfo, plan: ResourcePlan) -> int:
    """`balanced_resource_score` of `planned_lists(node_info, plan, use_requested=True)` in one pass."""
    alloc = node_info.allocatable
    actual = node_info.requested
    fractions: list[float] = []
    for kind, name, request in plan:
        if kind == CPU:
            a, r = alloc.milli_cpu, actual.milli_cpu + request
        elif kind == MEMORY:
            a, r = alloc.memory, actual.memory + request
        elif kind == EPHEMERAL:
            a, r = alloc.ephemeral_storage, actual.ephemeral_storage + request
        elif kind == SCALAR:
            a = alloc.scalar.get(name, 0)
            r = actual.scalar.get(name, 0) + request
        else:
            continue
        if a == 0:
            continue
        f = r / a
        fractions.append(f if f < 1.0 else 1.0)
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) * (f - mean) for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


class BalancedAllocation:
    """Score nodes by how evenly the pod would leave their resources used."""

    NAME = NAME

    def __init__(self, resources: Sequence[ResourceSpec], handle: Handle | None = None) -> None:
        self._names = [r.name for r in resources]
        self._handle = handle
        # memo slot on NodeInfo: the score depends only on the node and the pod's resource plan
        self._token = object()

    def pod_request_list(self, pod: Pod) -> list[int]:
        return pod_resource_request_list(pod, self._names, use_requested=True)

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        requests = pod_request_values(cycle_pod_info(state, pod), self._names, non_zero=False)
        if not any(requests):
            return Status.skip()
        state.write(PRE_SCORE_STATE_KEY, resource_plan(self._names, requests))
        return Status.success()

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        plan: ResourcePlan | None = state.get(PRE_SCORE_STATE_KEY)
        if plan is None:  # pre-score not run: compute here, as upstream does
            plan = resource_plan(self._names, self.pod_request_list(pod))
        generation = node_info.generation
        hit = node_info.memo.get(self._token)
        if hit is not None and hit[0] == generation and hit[1] is plan:  # plans are interned
            return hit[2], SUCCESS
        value = planned_balanced_score(node_info, plan)
        node_info.memo[self._token] = (generation, plan, value)
        return value, SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    return BalancedAllocation(parse_args(args), handle)
