"""PodTopologySpread: spread matching pods evenly over topology domains (spec.topologySpreadConstraints).

For a constraint, a *domain* is one value of its topologyKey; its count is the number of pods in the
incoming pod's namespace, not terminating, that match the constraint's selector, on *eligible*
nodes: nodes carrying every topology key of the pod's constraints and passing the constraint's node
inclusion policies (nodeAffinityPolicy Honor, the default: the pod's nodeSelector and required node
affinity; nodeTaintsPolicy Honor, default Ignore: the pod tolerates the node's NoSchedule/NoExecute
taints).

Filter (`whenUnsatisfiable: DoNotSchedule`): a node lacking a topology key is rejected
UnschedulableAndUnresolvable; otherwise, for each constraint,
`count(node's domain) + (1 if the pod matches its own selector) - global minimum <= maxSkew`,
where the global minimum is 0 while fewer than `minDomains` (default 1) domains exist.

Score (`ScheduleAnyway`): per constraint, `count(node's domain) * log(number of domains + 2) +
maxSkew - 1`, summed and normalised in reverse (fewer matching pods is better); a candidate lacking
a topology key scores 0. Counts for `kubernetes.io/hostname` are taken per node in score.

`matchLabelKeys` adds `key in (the pod's value)` to the selector for keys the pod carries. As
upstream, a nil labelSelector matches nothing and an empty one (`{}`) counts no existing pods.

Limitations: the cluster-level default constraints (upstream's `defaultingType: System` and
`defaultConstraints`, applied to pods without constraints) need the Services / ReplicaSets /
StatefulSets selecting the pod, which the scheduler does not watch yet: pods without
constraints are skipped, and non-empty `defaultConstraints` args are rejected. Pre-filter counts
over the nodes the framework passes (all nodes, as upstream).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kplane.api import codec
from kplane.api.labels import Requirement, Selector, selector_from_label_selector
from kplane.api.scheduling import (
    DO_NOT_SCHEDULE_EFFECTS,
    RequiredNodeAffinity,
    find_matching_untolerated_taint,
    required_node_affinity,
)
from scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    Handle,
    Node,
    NodeInfo,
    Pod,
    PodInfo,
    PreFilterResult,
    Status,
)

NAME = "PodTopologySpread"

ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"

DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
NODE_INCLUSION_POLICY_HONOR = "Honor"
NODE_INCLUSION_POLICY_IGNORE = "Ignore"
LABEL_HOSTNAME = "kubernetes.io/hostname"

SYSTEM_DEFAULTING = "System"
LIST_DEFAULTING = "List"

_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME
_NO_DOMAIN_MIN = 2**31 - 1  # upstream's MaxInt32: the minimum while a constraint has no domain


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """A parsed TopologySpreadConstraint (policies as booleans: True = Honor)."""

    max_skew: int
    topology_key: str
    selector: Selector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_node_taints: bool = False


def parse_constraints(pod: Pod, action: str) -> list[SpreadConstraint]:
    """The pod's constraints with `whenUnsatisfiable == action`, parsed. Raises ValueError for an
    invalid labelSelector."""
    raw = pod.spec.topologySpreadConstraints
    if not raw:
        return []
    labels = pod.metadata.labels
    out: list[SpreadConstraint] = []
    for c in raw:
        if c.whenUnsatisfiable != action:
            continue
        selector = selector_from_label_selector(
            codec.to_dict(c.labelSelector) if c.HasField("labelSelector") else None
        )
        if c.matchLabelKeys and not selector.matches_nothing:
            # upstream's mergeLabelSetWithSelector: key=value for the keys the pod has, ANDed.
            extra = [Requirement(k, "=", (labels[k],)) for k in c.matchLabelKeys if k in labels]
            if extra:
                selector = selector.add(*extra)
        out.append(
            SpreadConstraint(
                max_skew=int(c.maxSkew),
                topology_key=c.topologyKey,
                selector=selector,
                min_domains=int(c.minDomains) if c.HasField("minDomains") else 1,
                honor_node_affinity=(c.nodeAffinityPolicy or NODE_INCLUSION_POLICY_HONOR)
                == NODE_INCLUSION_POLICY_HONOR,
                honor_node_taints=(c.nodeTaintsPolicy or NODE_INCLUSION_POLICY_IGNORE)
                == NODE_INCLUSION_POLICY_HONOR,
            )
        )
    return out


def _has_all_keys(labels: Mapping[str, str], constraints: Sequence[SpreadConstraint]) -> bool:
    return all(c.topology_key in labels for c in constraints)


def _count_matching(pod_infos: Sequence[PodInfo], selector: Selector, namespace: str) -> int:
    # As upstream: an empty selector counts nothing; terminating pods and other namespaces don't count.
    if selector.empty():
        return 0
    count = 0
    for pi in pod_infos:
        meta = pi.pod.metadata
        if (
            meta.namespace == namespace
            and not meta.HasField("deletionTimestamp")
            and selector.matches(meta.labels)
        ):
            count += 1
    return count


class _NodeEligibility:
    """The inclusion-policy checks of one pod against nodes, each computed at most once per node."""

    def __init__(self, pod: Pod, constraints: Sequence[SpreadConstraint]) -> None:
        self._affinity: RequiredNodeAffinity | None = (
            required_node_affinity(pod) if any(c.honor_node_affinity for c in constraints) else None
        )
        self._tolerations = (
            list(pod.spec.tolerations) if any(c.honor_node_taints for c in constraints) else None
        )

    def eligible(self, c: SpreadConstraint, node: Node, cache: dict[str, bool]) -> bool:
        # `cache` holds this node's answers ("affinity", "taints"), shared by the pod's constraints.
        if c.honor_node_affinity and self._affinity is not None:
            ok = cache.get("affinity")
            if ok is None:
                ok = cache["affinity"] = self._affinity.matches(node)
            if not ok:
                return False
        if c.honor_node_taints and self._tolerations is not None:
            ok = cache.get("taints")
            if ok is None:
                ok = cache["taints"] = (
                    find_matching_untolerated_taint(
                        node.spec.taints, self._tolerations, DO_NOT_SCHEDULE_EFFECTS
                    )
                    is None
                )
            if not ok:
                return False
        return True


# ----- cycle state ---------------------------------------------------------------------------


@dataclass
class _PreFilterState:
    pod: Any
    constraints: list[SpreadConstraint]
    self_match: list[int]  # 1 where the incoming pod matches constraint i's selector
    eligibility: _NodeEligibility
    # Per constraint: domain value -> matching pods; and how many domains hold exactly k pods, which
    # keeps `minimum` exact under the +-1 updates of add_pod/remove_pod without rescanning.
    counts: list[dict[str, int]]
    domains_at_count: list[Counter[int]]
    minimum: list[int]

    def clone(self) -> _PreFilterState:
        return _PreFilterState(
            self.pod,
            self.constraints,
            self.self_match,
            self.eligibility,
            [dict(c) for c in self.counts],
            [Counter(h) for h in self.domains_at_count],
            list(self.minimum),
        )

    def min_match(self, i: int) -> int:
        # Fewer eligible domains than minDomains: the global minimum is treated as 0.
        if len(self.counts[i]) < self.constraints[i].min_domains:
            return 0
        return self.minimum[i]

    def update(self, i: int, value: str, delta: int) -> None:
        counts, hist = self.counts[i], self.domains_at_count[i]
        old = counts.get(value)
        new = (old or 0) + delta
        counts[value] = new
        hist[new] += 1
        if old is None:  # a domain no eligible node had at pre-filter time
            self.minimum[i] = min(self.minimum[i], new)
            return
        hist[old] -= 1
        if hist[old] <= 0:
            del hist[old]
        if new < self.minimum[i]:
            self.minimum[i] = new
        elif old == self.minimum[i] and old not in hist:
            # The last domain at the minimum moved up by one: every other domain is >= old + 1.
            self.minimum[i] = new


@dataclass
class _PreScoreState:
    constraints: list[SpreadConstraint]
    ignored_nodes: set[str]  # candidates lacking a topology key: scored 0
    counts: list[dict[str, int]]  # per constraint (not hostname): domain value -> matching pods
    weights: list[float]  # per constraint: log(number of domains + 2)


# ----- plugin --------------------------------------------------------------------------------


class PodTopologySpread:
    NAME = NAME

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    # -- filter --

    def pre_filter(
        self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        try:
            constraints = parse_constraints(pod, DO_NOT_SCHEDULE)
        except ValueError as err:
            return None, Status.error(f"obtaining pod's hard topology spread constraints: {err}")
        if not constraints:
            return None, Status.skip()

        namespace = pod.metadata.namespace
        eligibility = _NodeEligibility(pod, constraints)
        counts: list[dict[str, int]] = [{} for _ in constraints]
        for node_info in nodes:
            node = node_info.node
            labels = node_info.labels
            if not _has_all_keys(labels, constraints):
                continue
            cache: dict[str, bool] = {}
            for i, c in enumerate(constraints):
                if not eligibility.eligible(c, node, cache):
                    continue
                value = labels[c.topology_key]
                counts[i][value] = counts[i].get(value, 0) + _count_matching(
                    node_info.pods, c.selector, namespace
                )

        hists = [Counter(cs.values()) for cs in counts]
        minimum = [min(cs.values(), default=_NO_DOMAIN_MIN) for cs in counts]
        pod_labels = pod.metadata.labels
        self_match = [1 if c.selector.matches(pod_labels) else 0 for c in constraints]
        state.write(
            _PRE_FILTER_KEY,
            _PreFilterState(pod, constraints, self_match, eligibility, counts, hists, minimum),
        )
        return None, Status.success()

    def add_pod(self, state: CycleState, pod: Pod, pod_info_to_add: PodInfo, node_info: NodeInfo) -> Status:
        """Pre-filter extension (for preemption): count `pod_info_to_add` as if on `node_info`."""
        return self._update(state, pod_info_to_add, node_info, 1)

    def remove_pod(
        self, state: CycleState, pod: Pod, pod_info_to_remove: PodInfo, node_info: NodeInfo
    ) -> Status:
        """Pre-filter extension (for preemption): stop counting `pod_info_to_remove` on `node_info`."""
        return self._update(state, pod_info_to_remove, node_info, -1)

    def _update(self, state: CycleState, pod_info: PodInfo, node_info: NodeInfo, delta: int) -> Status:
        s = state.get(_PRE_FILTER_KEY)
        if not isinstance(s, _PreFilterState):
            return Status.error(f"error reading {_PRE_FILTER_KEY!r} from cycle state: not found")
        other = pod_info.pod
        node = node_info.node
        labels = node_info.labels
        if other.metadata.namespace != s.pod.metadata.namespace or not _has_all_keys(labels, s.constraints):
            return Status.success()
        cache: dict[str, bool] = {}
        other_labels = other.metadata.labels
        for i, c in enumerate(s.constraints):
            if c.selector.matches(other_labels) and s.eligibility.eligible(c, node, cache):
                s.update(i, labels[c.topology_key], delta)
        return Status.success()

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        s = state.get(_PRE_FILTER_KEY)
        if not isinstance(s, _PreFilterState):
            return Status.error(f"error reading {_PRE_FILTER_KEY!r} from cycle state: not found")
        labels = node_info.labels
        for i, c in enumerate(s.constraints):
            value = labels.get(c.topology_key)
            if value is None:
                # Labels are the node's own business: removing pods (preemption) can't add one.
                return Status.unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH)
            skew = s.counts[i].get(value, 0) + s.self_match[i] - s.min_match(i)
            if skew > c.max_skew:
                return Status.unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        return Status.success()

    # -- score --

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        all_nodes = self._handle.snapshot().list()
        if not all_nodes:
            return Status.skip()
        try:
            constraints = parse_constraints(pod, SCHEDULE_ANYWAY)
        except ValueError as err:
            return Status.error(f"obtaining pod's soft topology spread constraints: {err}")
        if not constraints:
            return Status.skip()

        # Domains are those of the candidate nodes; nodes lacking a key are not scored.
        ignored: set[str] = set()
        counts: list[dict[str, int]] = [{} for _ in constraints]
        for node_info in nodes:
            labels = node_info.labels
            if not _has_all_keys(labels, constraints):
                ignored.add(node_info.name)
                continue
            for i, c in enumerate(constraints):
                if c.topology_key != LABEL_HOSTNAME:  # hostname counts are taken per node in score
                    counts[i].setdefault(labels[c.topology_key], 0)
        weights = [
            _topology_normalizing_weight(
                len(nodes) - len(ignored) if c.topology_key == LABEL_HOSTNAME else len(counts[i])
            )
            for i, c in enumerate(constraints)
        ]

        # Counts come from every node, but only for domains some candidate is in.
        if any(counts):
            namespace = pod.metadata.namespace
            eligibility = _NodeEligibility(pod, constraints)
            for node_info in all_nodes:
                node = node_info.node
                labels = node_info.labels
                if not _has_all_keys(labels, constraints):
                    continue
                cache: dict[str, bool] = {}
                for i, c in enumerate(constraints):
                    per_value = counts[i]
                    value = labels[c.topology_key]
                    if value not in per_value or not eligibility.eligible(c, node, cache):
                        continue
                    per_value[value] += _count_matching(node_info.pods, c.selector, namespace)

        state.write(_PRE_SCORE_KEY, _PreScoreState(constraints, ignored, counts, weights))
        return Status.success()

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        s = state.get(_PRE_SCORE_KEY)
        if not isinstance(s, _PreScoreState):
            return 0, Status.error(f"error reading {_PRE_SCORE_KEY!r} from cycle state: not found")
        if node_info.name in s.ignored_nodes:
            return 0, Status.success()
        labels = node_info.labels
        namespace = pod.metadata.namespace
        total = 0.0
        for i, c in enumerate(s.constraints):
            value = labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == LABEL_HOSTNAME:
                count = _count_matching(node_info.pods, c.selector, namespace)
            else:
                count = s.counts[i].get(value, 0)
            # maxSkew - 1 waters down differences between domains: the tolerance to skew.
            total += count * s.weights[i] + (c.max_skew - 1)
        return math.floor(total + 0.5), Status.success()  # Go's math.Round for non-negative values

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> Status:
        s = state.get(_PRE_SCORE_KEY)
        if not isinstance(s, _PreScoreState):
            return Status.error(f"error reading {_PRE_SCORE_KEY!r} from cycle state: not found")
        valid = [v for name, v in scores.items() if name not in s.ignored_nodes]
        low, high = min(valid, default=0), max(valid, default=0)
        for name, v in scores.items():
            if name in s.ignored_nodes:
                scores[name] = 0
            elif high == 0:
                scores[name] = MAX_NODE_SCORE
            else:  # reversed: the fewest matching pods scores MAX_NODE_SCORE
                scores[name] = MAX_NODE_SCORE * (high + low - v) // high
        return Status.success()


def _topology_normalizing_weight(size: int) -> float:
    # log(size + 2): counts in small topologies aren't watered down by big ones (1.09..8.52 for
    # 1..5000 domains). size may be 0 when no candidate has the keys; every score is 0 then.
    return math.log(size + 2)


def _validate_args(args: Mapping[str, Any]) -> None:
    known = {"defaultConstraints", "defaultingType"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(
            f"{NAME} args: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    defaulting = args.get("defaultingType", LIST_DEFAULTING)
    if defaulting not in (SYSTEM_DEFAULTING, LIST_DEFAULTING):
        raise ValueError(
            f"{NAME} args: defaultingType: Unsupported value: {defaulting!r}: "
            f"supported values: {SYSTEM_DEFAULTING!r}, {LIST_DEFAULTING!r}"
        )
    defaults = args.get("defaultConstraints") or []
    if not isinstance(defaults, list):
        raise ValueError(f"{NAME} args: defaultConstraints must be a list")
    if defaults:
        raise ValueError(
            f"{NAME} args: defaultConstraints are not supported yet (they need the Services and "
            "ReplicaSets selecting the pod, which the scheduler does not watch)"
        )


def new(args: Mapping[str, Any], handle: Handle) -> PodTopologySpread:
    """The plugin, with validated args (ValueError says what is wrong).

    `defaultingType` System and List are accepted and behave alike for now: no default constraints.
    """
    _validate_args(args or {})
    return PodTopologySpread(handle)
