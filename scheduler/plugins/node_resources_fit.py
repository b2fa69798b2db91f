"""NodeResourcesFit: does the node have room for the pod's requests, and how full would it be?

Filter (pkg/scheduler/framework/plugins/noderesources/fit.go): a node fits when it can take one
more pod (`len(pods) + 1 <= allocatable pods`) and, for every resource the pod requests (> 0),
`request <= allocatable - requested`. One reason per shortfall, in Kubernetes' wording — they end
up in FailedScheduling events: "Too many pods", "Insufficient cpu", "Insufficient memory",
"Insufficient ephemeral-storage", "Insufficient example.com/gpu". Extended resources listed in
`ignoredResources` (or whose domain is in `ignoredResourceGroups`) are not checked. The outcome is
Unschedulable: deleting pods or adding capacity can fix it, so preemption may run.

Score, by `scoringStrategy.type` over the weighted `scoringStrategy.resources` (default cpu and
memory, weight 1), using *non-zero* requests for cpu/memory (a container without requests counts
100m / 200Mi) and skipping resources the node lacks or — for extended resources — the pod does
not request:

* LeastAllocated (default): per resource `(allocatable - requested) * 100 / allocatable`,
  weighted average — spreads pods;
* MostAllocated: `requested * 100 / allocatable` (requested capped at allocatable) — bin-packs;
* RequestedToCapacityRatio: a broken-linear function of utilisation given by
  `requestedToCapacityRatio.shape` points (`utilization` 0..100 -> `score` 0..10).

Args (KubeSchedulerConfiguration `NodeResourcesFitArgs`, v1 defaulting: weight 0/missing -> 1,
missing resources -> cpu+memory, missing type -> LeastAllocated)::

    {"scoringStrategy": {"type": "LeastAllocated",
                         "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
                         "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 10}, ...]}},
     "ignoredResources": ["example.com/foo"], "ignoredResourceGroups": ["example.com"]}
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kplane.api.validation.names import is_qualified_name
from scheduler import nodeinfo
from scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    CycleState,
    Handle,
    NodeInfo,
    Pod,
    PreFilterResult,
    Resource,
    Status,
)

NAME = "NodeResourcesFit"
PRE_FILTER_STATE_KEY = "PreFilter" + NAME
PRE_SCORE_STATE_KEY = "PreScore" + NAME

LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO = "RequestedToCapacityRatio"
SCORING_STRATEGIES = (LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO)

MAX_CUSTOM_PRIORITY_SCORE = 10  # shape scores are 0..10, scaled to 0..MAX_NODE_SCORE
MAX_UTILIZATION = 100
MAX_RESOURCE_WEIGHT = 100

REASON_TOO_MANY_PODS = "Too many pods"


@dataclass(frozen=True)
class ResourceSpec:
    name: str
    weight: int = 1


DEFAULT_RESOURCES: tuple[ResourceSpec, ...] = (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))


@dataclass(frozen=True)
class InsufficientResource:
    """One resource the node lacks for the pod (upstream's InsufficientResource)."""

    resource_name: str
    reason: str
    requested: int
    used: int
    capacity: int


def insufficient_reason(resource_name: str) -> str:
    return f"Insufficient {resource_name}"


# ----- shared resource-allocation scoring (also used by NodeResourcesBalancedAllocation) --------


def pod_resource_request_list(pod: Pod, names: Sequence[str], *, use_requested: bool) -> list[int]:
    """The pod's request for each named resource in scheduler units; with `use_requested=False`
    cpu/memory use the non-zero defaults for containers that set none."""
    rl = nodeinfo.pod_resource_list(pod, non_zero=not use_requested)
    return [nodeinfo.quantity_value(name, rl.get(name)) for name in names]


def allocatable_and_requested(
    node_info: NodeInfo, name: str, pod_request: int, *, use_requested: bool
) -> tuple[int, int]:
    """(allocatable, requested-including-this-pod) of one resource on the node; (0, 0) means
    "leave this resource out of the score" (an extended resource the pod does not request, or a
    resource the node does not have)."""
    if pod_request == 0 and nodeinfo.is_scalar_resource_name(name):
        return 0, 0
    requested = node_info.requested if use_requested else node_info.non_zero_requested
    alloc = node_info.allocatable
    if name == nodeinfo.RESOURCE_CPU:
        return alloc.milli_cpu, requested.milli_cpu + pod_request
    if name == nodeinfo.RESOURCE_MEMORY:
        return alloc.memory, requested.memory + pod_request
    if name == nodeinfo.RESOURCE_EPHEMERAL_STORAGE:
        return alloc.ephemeral_storage, node_info.requested.ephemeral_storage + pod_request
    if name in alloc.scalar:
        return alloc.scalar[name], node_info.requested.scalar.get(name, 0) + pod_request
    return 0, 0


def requested_and_allocatable_lists(
    node_info: NodeInfo, names: Sequence[str], pod_requests: Sequence[int], *, use_requested: bool
) -> tuple[list[int], list[int]]:
    requested = [0] * len(names)
    allocatable = [0] * len(names)
    for i, name in enumerate(names):
        alloc, req = allocatable_and_requested(node_info, name, pod_requests[i], use_requested=use_requested)
        if alloc == 0:
            continue
        allocatable[i] = alloc
        requested[i] = req
    return requested, allocatable


# Resource kinds of a plan entry (see `resource_plan`).
OMIT, CPU, MEMORY, EPHEMERAL, SCALAR = range(5)
_KINDS = {
    nodeinfo.RESOURCE_CPU: CPU,
    nodeinfo.RESOURCE_MEMORY: MEMORY,
    nodeinfo.RESOURCE_EPHEMERAL_STORAGE: EPHEMERAL,
}

ResourcePlan = tuple[tuple[int, str, int], ...]


def resource_plan(names: Sequence[str], pod_requests: Sequence[int]) -> ResourcePlan:
    """Per scored resource, what `allocatable_and_requested` has to look at, decided once per pod:
    (kind, name, the pod's request). Extended/scalar resources the pod does not request are
    omitted up front. Equal inputs give the identical (interned) plan, so plans double as cheap
    memo keys."""
    return _resource_plan(tuple(names), tuple(pod_requests))


@functools.lru_cache(maxsize=1024)
def _resource_plan(names: tuple[str, ...], pod_requests: tuple[int, ...]) -> ResourcePlan:
    plan = []
    for name, request in zip(names, pod_requests, strict=True):
        kind = _KINDS.get(name)
        if kind is None:
            kind = OMIT if request == 0 and nodeinfo.is_scalar_resource_name(name) else SCALAR
        plan.append((kind, name, request))
    return tuple(plan)


def planned_lists(node_info: NodeInfo, plan: ResourcePlan, *, use_requested: bool) -> tuple[list[int], list[int]]:
    """`requested_and_allocatable_lists` for a precomputed plan: the same values, fewer lookups."""
    alloc = node_info.allocatable
    actual = node_info.requested
    counted = actual if use_requested else node_info.non_zero_requested
    requested: list[int] = []
    allocatable: list[int] = []
    for kind, name, request in plan:
        if kind == CPU:
            a, r = alloc.milli_cpu, counted.milli_cpu + request
        elif kind == MEMORY:
            a, r = alloc.memory, counted.memory + request
        elif kind == EPHEMERAL:
            a, r = alloc.ephemeral_storage, actual.ephemeral_storage + request
        elif kind == SCALAR:
            a = alloc.scalar.get(name, 0)
            r = actual.scalar.get(name, 0) + request
        else:
            a = 0
        if a == 0:
            a = r = 0
        allocatable.append(a)
        requested.append(r)
    return requested, allocatable


def planned_allocation_score(
    node_info: NodeInfo, plan: ResourcePlan, weights: Sequence[int], *, most_allocated: bool
) -> int:
    """LeastAllocated (or MostAllocated) in one pass over a plan: the weighted average of
    `least_requested_score` (`most_requested_score`) over the resources the node has — what
    `_weighted_scorer` computes from `planned_lists(..., use_requested=False)`, without the lists."""
    alloc = node_info.allocatable
    actual = node_info.requested
    counted = node_info.non_zero_requested
    node_score = weight_sum = 0
    for (kind, name, request), weight in zip(plan, weights, strict=True):
        if kind == CPU:
            a, r = alloc.milli_cpu, counted.milli_cpu + request
        elif kind == MEMORY:
            a, r = alloc.memory, counted.memory + request
        elif kind == EPHEMERAL:
            a, r = alloc.ephemeral_storage, actual.ephemeral_storage + request
        elif kind == SCALAR:
            a = alloc.scalar.get(name, 0)
            r = actual.scalar.get(name, 0) + request
        else:
            continue
        if a == 0:
            continue
        if most_allocated:
            score = (r if r < a else a) * MAX_NODE_SCORE // a
        else:
            score = (a - r) * MAX_NODE_SCORE // a if r <= a else 0
        node_score += score * weight
        weight_sum += weight
    return node_score // weight_sum if weight_sum else 0


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def least_requested_score(requested: int, capacity: int) -> int:
    """Unused share of the resource on a 0..MAX_NODE_SCORE scale (0 when over capacity)."""
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested_score(requested: int, capacity: int) -> int:
    """Used share of the resource on a 0..MAX_NODE_SCORE scale (capped at full)."""
    if capacity == 0:
        return 0
    requested = min(requested, capacity)
    return requested * MAX_NODE_SCORE // capacity


Scorer = Callable[[Sequence[int], Sequence[int]], int]


def _weighted_scorer(weights: Sequence[int], per_resource: Callable[[int, int], int]) -> Scorer:
    def score(requested: Sequence[int], allocatable: Sequence[int]) -> int:
        node_score = weight_sum = 0
        for i, alloc in enumerate(allocatable):
            if alloc == 0:
                continue
            node_score += per_resource(requested[i], alloc) * weights[i]
            weight_sum += weights[i]
        return node_score // weight_sum if weight_sum else 0

    return score


def broken_linear_function(shape: Sequence[tuple[int, int]]) -> Callable[[int], int]:
    """helper.BuildBrokenLinearFunction over (utilization, score) points sorted by utilization."""

    def f(p: int) -> int:
        for i, (util, score) in enumerate(shape):
            if p <= util:
                if i == 0:
                    return score
                prev_util, prev_score = shape[i - 1]
                return prev_score + _go_div((score - prev_score) * (p - prev_util), util - prev_util)
        return shape[-1][1]

    return f


def requested_to_capacity_ratio_scorer(weights: Sequence[int], shape: Sequence[tuple[int, int]]) -> Scorer:
    scaled = [(u, s * (MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE)) for u, s in shape]
    raw = broken_linear_function(scaled)

    def resource_score(requested: int, capacity: int) -> int:
        if capacity == 0 or requested > capacity:
            return raw(MAX_UTILIZATION)
        return raw(requested * MAX_UTILIZATION // capacity)

    def score(requested: Sequence[int], allocatable: Sequence[int]) -> int:
        node_score = weight_sum = 0
        for i, alloc in enumerate(allocatable):
            if alloc == 0:
                continue
            s = resource_score(requested[i], alloc)
            if s > 0:
                node_score += s * weights[i]
                weight_sum += weights[i]
        if weight_sum == 0:
            return 0
        return _round_half_away(node_score / weight_sum)

    return score


def _round_half_away(x: float) -> int:
    """Go's math.Round: halves round away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


# ----- args ------------------------------------------------------------------------------------


def _int_field(value: Any, path: str, errs: list[str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errs.append(f"{path}: Invalid value: {value!r}: must be an integer")
        return None
    return value


def parse_resource_specs(raw: Any, path: str, errs: list[str]) -> tuple[ResourceSpec, ...]:
    """`[{"name": ..., "weight": ...}]` with v1 defaulting (empty -> cpu+memory, weight 0 -> 1)."""
    if raw is None:
        return DEFAULT_RESOURCES
    if not isinstance(raw, list):
        errs.append(f"{path}: Invalid value: {raw!r}: must be a list of {{name, weight}}")
        return DEFAULT_RESOURCES
    if not raw:
        return DEFAULT_RESOURCES
    specs: list[ResourceSpec] = []
    for i, item in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            errs.append(f"{p}: Invalid value: {item!r}: must be an object with name and weight")
            continue
        unknown = set(item) - {"name", "weight"}
        if unknown:
            errs.append(f"{p}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            errs.append(f"{p}.name: Required value: a resource name is required")
            continue
        weight = _int_field(item.get("weight", 0), f"{p}.weight", errs)
        if weight is None:
            continue
        specs.append(ResourceSpec(name, weight or 1))
    return tuple(specs)


def _check_keys(raw: Mapping[str, Any], allowed: set[str], path: str, errs: list[str]) -> None:
    unknown = set(raw) - allowed
    if unknown:
        where = f"{path}: " if path else ""
        errs.append(f"{where}unknown field(s) {', '.join(sorted(map(str, unknown)))}")


def _string_list(raw: Any, path: str, errs: list[str]) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        errs.append(f"{path}: Invalid value: {raw!r}: must be a list of strings")
        return []
    return list(raw)


def _parse_shape(raw: Any, path: str, errs: list[str]) -> list[tuple[int, int]]:
    if not isinstance(raw, list) or not raw:
        errs.append(f"{path}: Required value: at least one point must be specified")
        return []
    points: list[tuple[int, int]] = []
    for i, item in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            errs.append(f"{p}: Invalid value: {item!r}: must be an object with utilization and score")
            continue
        _check_keys(item, {"utilization", "score"}, p, errs)
        util = _int_field(item.get("utilization", 0), f"{p}.utilization", errs)
        score = _int_field(item.get("score", 0), f"{p}.score", errs)
        if util is None or score is None:
            continue
        if not 0 <= util <= MAX_UTILIZATION:
            errs.append(f"{p}.utilization: Invalid value: {util}: not in valid range [0, {MAX_UTILIZATION}]")
        if not 0 <= score <= MAX_CUSTOM_PRIORITY_SCORE:
            errs.append(
                f"{p}.score: Invalid value: {score}: not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]"
            )
        points.append((util, score))
    for i in range(1, len(points)):
        if points[i - 1][0] >= points[i][0]:
            errs.append(
                f"{path}[{i}].utilization: Invalid value: {points[i][0]}: "
                "utilization values must be sorted in increasing order"
            )
            break
    return points


@dataclass(frozen=True)
class FitArgs:
    strategy: str = LEAST_ALLOCATED
    resources: tuple[ResourceSpec, ...] = DEFAULT_RESOURCES
    shape: tuple[tuple[int, int], ...] = ()
    ignored_resources: frozenset[str] = frozenset()
    ignored_resource_groups: frozenset[str] = frozenset()


def parse_args(args: Mapping[str, Any] | None) -> FitArgs:
    """Validate and default NodeResourcesFitArgs; ValueError lists every problem."""
    args = args or {}
    errs: list[str] = []
    if not isinstance(args, Mapping):
        raise ValueError(f"{NAME} args: must be a mapping, got {type(args).__name__}")
    _check_keys(args, {"scoringStrategy", "ignoredResources", "ignoredResourceGroups"}, "", errs)

    ignored = _string_list(args.get("ignoredResources"), "ignoredResources", errs)
    for i, res in enumerate(ignored):
        for msg in is_qualified_name(res):
            errs.append(f"ignoredResources[{i}]: Invalid value: {res!r}: {msg}")
    groups = _string_list(args.get("ignoredResourceGroups"), "ignoredResourceGroups", errs)
    for i, group in enumerate(groups):
        if "/" in group:
            errs.append(
                f"ignoredResourceGroups[{i}]: Invalid value: {group!r}: resource group name can't contain '/'"
            )
        for msg in is_qualified_name(group):
            errs.append(f"ignoredResourceGroups[{i}]: Invalid value: {group!r}: {msg}")

    strategy = LEAST_ALLOCATED
    resources = DEFAULT_RESOURCES
    shape: list[tuple[int, int]] = []
    raw_ss = args.get("scoringStrategy")
    if raw_ss is not None:
        if not isinstance(raw_ss, Mapping):
            errs.append(f"scoringStrategy: Invalid value: {raw_ss!r}: must be an object")
        else:
            _check_keys(raw_ss, {"type", "resources", "requestedToCapacityRatio"}, "scoringStrategy", errs)
            strategy = raw_ss.get("type") or LEAST_ALLOCATED
            if strategy not in SCORING_STRATEGIES:
                errs.append(
                    f"scoringStrategy.type: Unsupported value: {strategy!r}: supported values: "
                    + ", ".join(f'"{s}"' for s in SCORING_STRATEGIES)
                )
            resources = parse_resource_specs(raw_ss.get("resources"), "scoringStrategy.resources", errs)
            for i, spec in enumerate(resources):
                if not 0 < spec.weight <= MAX_RESOURCE_WEIGHT:
                    errs.append(
                        f"scoringStrategy.resources[{i}].weight: Invalid value: {spec.weight}: "
                        f"resource weight of {spec.name} not in valid range (0, {MAX_RESOURCE_WEIGHT}]"
                    )
            rtcr = raw_ss.get("requestedToCapacityRatio")
            if rtcr is not None and not isinstance(rtcr, Mapping):
                errs.append(
                    f"scoringStrategy.requestedToCapacityRatio: Invalid value: {rtcr!r}: must be an object"
                )
            elif strategy == REQUESTED_TO_CAPACITY_RATIO or rtcr is not None:
                rtcr = rtcr or {}
                _check_keys(rtcr, {"shape"}, "scoringStrategy.requestedToCapacityRatio", errs)
                shape = _parse_shape(
                    rtcr.get("shape"), "scoringStrategy.requestedToCapacityRatio.shape", errs
                )
    if errs:
        raise ValueError(f"invalid {NAME} args: " + "; ".join(errs))
    return FitArgs(strategy, resources, tuple(shape), frozenset(ignored), frozenset(groups))


# ----- the plugin ------------------------------------------------------------------------------


def fits_request(
    pod_request: Resource,
    node_info: NodeInfo,
    ignored_resources: frozenset[str] = frozenset(),
    ignored_resource_groups: frozenset[str] = frozenset(),
) -> list[InsufficientResource]:
    """Every resource the node lacks for a pod with these requests (empty: it fits)."""
    out: list[InsufficientResource] = []
    alloc = node_info.allocatable
    used = node_info.requested
    pod_count = len(node_info.pods)
    if pod_count + 1 > alloc.allowed_pod_number:
        out.append(InsufficientResource("pods", REASON_TOO_MANY_PODS, 1, pod_count, alloc.allowed_pod_number))

    if (
        pod_request.milli_cpu == 0
        and pod_request.memory == 0
        and pod_request.ephemeral_storage == 0
        and not pod_request.scalar
    ):
        return out

    if pod_request.milli_cpu > 0 and pod_request.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        out.append(
            InsufficientResource(
                "cpu", insufficient_reason("cpu"), pod_request.milli_cpu, used.milli_cpu, alloc.milli_cpu
            )
        )
    if pod_request.memory > 0 and pod_request.memory > alloc.memory - used.memory:
        out.append(
            InsufficientResource(
                "memory", insufficient_reason("memory"), pod_request.memory, used.memory, alloc.memory
            )
        )
    if pod_request.ephemeral_storage > 0 and (
        pod_request.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage
    ):
        out.append(
            InsufficientResource(
                "ephemeral-storage",
                insufficient_reason("ephemeral-storage"),
                pod_request.ephemeral_storage,
                used.ephemeral_storage,
                alloc.ephemeral_storage,
            )
        )
    for name in sorted(pod_request.scalar):
        quantity = pod_request.scalar[name]
        if quantity == 0:
            continue
        if nodeinfo.is_extended_resource_name(name) and (
            name in ignored_resources or name.split("/", 1)[0] in ignored_resource_groups
        ):
            continue
        have = alloc.scalar.get(name, 0)
        in_use = used.scalar.get(name, 0)
        if quantity > have - in_use:
            out.append(InsufficientResource(name, insufficient_reason(name), quantity, in_use, have))
    return out


def fits(pod: Pod, node_info: NodeInfo) -> list[InsufficientResource]:
    """Upstream's `Fits`: the resources `node_info` lacks for `pod` (no resources ignored)."""
    return fits_request(nodeinfo.pod_requests(pod), node_info)


@dataclass(frozen=True, slots=True)
class PreFilterState:
    """The pod's requests, and an interned key for them (equal requests give the identical key)."""

    request: Resource
    key: tuple[Any, ...]

    @classmethod
    def of(cls, request: Resource) -> PreFilterState:
        key = (request.milli_cpu, request.memory, request.ephemeral_storage, request.allowed_pod_number,
               tuple(sorted(request.scalar.items())))
        return cls(request, _intern(key))


@functools.lru_cache(maxsize=1024)
def _intern(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return key


class NodeResourcesFit:
    """Filter on requests vs. free allocatable; score by the configured allocation strategy."""

    NAME = NAME

    def __init__(self, args: FitArgs, handle: Handle | None = None) -> None:
        self.args = args
        self._handle = handle
        self._names = [r.name for r in args.resources]
        weights = [r.weight for r in args.resources]
        self._weights = tuple(weights)
        # memo slots on NodeInfo: filter and score depend only on the node and the pod's requests
        self._filter_token = object()
        self._score_token = object()
        self._scorer: Scorer
        if args.strategy == MOST_ALLOCATED:
            self._scorer = _weighted_scorer(weights, most_requested_score)
        elif args.strategy == REQUESTED_TO_CAPACITY_RATIO:
            self._scorer = requested_to_capacity_ratio_scorer(weights, args.shape)
        else:
            self._scorer = _weighted_scorer(weights, least_requested_score)

    # -- filtering

    def pre_filter(
        self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        state.write(PRE_FILTER_STATE_KEY, PreFilterState.of(nodeinfo.cycle_pod_info(state, pod).requests))
        return None, Status.success()

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        pre: PreFilterState | None = state.get(PRE_FILTER_STATE_KEY)
        if pre is None:
            return Status.error(f"error reading {PRE_FILTER_STATE_KEY!r} from cycle state: not found")
        generation = node_info.generation
        hit = node_info.memo.get(self._filter_token)
        if hit is not None and hit[0] == generation and hit[1] is pre.key:
            return hit[2]  # type: ignore[no-any-return]
        status = self._filter(pre.request, node_info)
        node_info.memo[self._filter_token] = (generation, pre.key, status)
        return status

    def _filter(self, request: Resource, node_info: NodeInfo) -> Status:
        # The common case — room for the pod, no extended resources — without building a list.
        alloc, used = node_info.allocatable, node_info.requested
        if (
            not request.scalar
            and len(node_info.pods) < alloc.allowed_pod_number
            and request.milli_cpu <= alloc.milli_cpu - used.milli_cpu
            and request.memory <= alloc.memory - used.memory
            and request.ephemeral_storage <= alloc.ephemeral_storage - used.ephemeral_storage
        ):
            return SUCCESS
        missing = fits_request(
            request, node_info, self.args.ignored_resources, self.args.ignored_resource_groups
        )
        if missing:
            return Status.unschedulable(*(m.reason for m in missing))
        return SUCCESS

    # -- scoring

    def pod_request_list(self, pod: Pod) -> list[int]:
        return pod_resource_request_list(pod, self._names, use_requested=False)

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        requests = nodeinfo.pod_request_values(nodeinfo.cycle_pod_info(state, pod), self._names, non_zero=True)
        state.write(PRE_SCORE_STATE_KEY, resource_plan(self._names, requests))
        return Status.success()

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        plan: ResourcePlan | None = state.get(PRE_SCORE_STATE_KEY)
        if plan is None:  # pre-score skipped: compute here, as upstream does
            plan = resource_plan(self._names, self.pod_request_list(pod))
        generation = node_info.generation
        hit = node_info.memo.get(self._score_token)
        if hit is not None and hit[0] == generation and hit[1] is plan:  # plans are interned
            return hit[2], SUCCESS
        strategy = self.args.strategy
        if strategy == REQUESTED_TO_CAPACITY_RATIO:
            requested, allocatable = planned_lists(node_info, plan, use_requested=False)
            value = self._scorer(requested, allocatable)
        else:
            value = planned_allocation_score(
                node_info, plan, self._weights, most_allocated=strategy == MOST_ALLOCATED
            )
        node_info.memo[self._score_token] = (generation, plan, value)
        return value, SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> NodeResourcesFit:
    return NodeResourcesFit(parse_args(args), handle)
