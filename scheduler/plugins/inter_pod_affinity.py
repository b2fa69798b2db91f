"""InterPodAffinity: place a pod relative to other pods (podAffinity / podAntiAffinity).

Filter (required terms, `requiredDuringSchedulingIgnoredDuringExecution`):

* every required *affinity* term of the incoming pod needs, in the node's topology domain, an
  existing pod matching *all* of those terms (so the terms are satisfied by one pod) — except for
  the first pod of a group: when no pod anywhere matches and the pod matches its own terms, any node
  carrying the topology keys is allowed;
* no existing pod in the node's domain may match any required *anti-affinity* term of the
  incoming pod;
* no existing pod's required anti-affinity term may match the incoming pod within that existing
  pod's domain (symmetry).

Score (preferred terms): per topology domain, the incoming pod's preferred affinity weights (+) and
anti-affinity weights (-) for matching existing pods, plus — symmetrically — existing pods'
preferred terms that match the incoming pod, and existing pods' *required* affinity terms weighted
by `hardPodAffinityWeight`. Scores are min-max normalised to 0..MAX_NODE_SCORE.

All counting happens once per cycle in pre-filter / pre-score, keyed by (topologyKey, value); filter
and score are then O(terms) per node. A node without a term's topologyKey label never matches it.

Term semantics follow Kubernetes: `namespaces` empty and no `namespaceSelector` → the owning pod's
namespace; a nil `labelSelector` matches nothing; `namespaceSelector: {}` matches every namespace.
`matchLabelKeys` / `mismatchLabelKeys` are merged into the label selector here (upstream's
apiserver merges them at pod creation; kplane's does not, and merging twice is harmless).

Limitation: namespace labels are not part of the scheduler snapshot. A non-empty
`namespaceSelector` is resolved against `namespace_labels` (namespace -> labels) from the handle's
optional `namespace_labels()` method, else the `namespaceLabels` plugin arg; namespaces missing
there are treated like upstream treats namespaces the lister doesn't know (no labels, and never
selected for the incoming pod's terms).

Args: `hardPodAffinityWeight` (0..100, default 1), `ignorePreferredTermsOfExistingPods` (bool,
default false), `namespaceLabels` (mapping, default empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kplane.api import codec
from kplane.api.labels import Requirement, Selector, selector_from_label_selector
from scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    Handle,
    NodeInfo,
    Pod,
    PodInfo,
    PreFilterResult,
    Status,
)

NAME = "InterPodAffinity"

ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_REASON_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod anti-affinity rules"

DEFAULT_HARD_POD_AFFINITY_WEIGHT = 1

_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME
_POD_TERMS_KEY = "PodTerms" + NAME  # the incoming pod's parsed terms, shared by both phases

_NOTHING = Selector.nothing()
_NO_LABELS: Mapping[str, str] = {}

TopologyPair = tuple[str, str]  # (topologyKey, value)


# ----- terms ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A parsed PodAffinityTerm. `namespace_selector` is Nothing() when the term has none; for the
    incoming pod a non-empty one is resolved into `namespaces` and then set to Nothing()."""

    namespaces: frozenset[str]
    selector: Selector
    topology_key: str
    namespace_selector: Selector = _NOTHING

    def matches(self, pod: Pod, ns_labels: Mapping[str, str] = _NO_LABELS) -> bool:
        """The pod is in one of the term's namespaces and its labels match the selector."""
        meta = pod.metadata
        return self.matches_meta(meta.namespace, meta.labels, ns_labels)

    def matches_meta(
        self, namespace: str, labels: Mapping[str, str], ns_labels: Mapping[str, str] = _NO_LABELS
    ) -> bool:
        """`matches` for a pod's namespace and labels (saves re-reading them in hot loops)."""
        if namespace in self.namespaces or self.namespace_selector.matches(ns_labels):
            return self.selector.matches(labels)
        return False


@dataclass(frozen=True, slots=True)
class WeightedAffinityTerm:
    term: AffinityTerm
    weight: int


@dataclass(frozen=True, slots=True)
class PodAffinityTerms:
    """All four kinds of a pod's inter-pod terms."""

    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[WeightedAffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[WeightedAffinityTerm, ...] = ()

    def empty(self) -> bool:
        return not (
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )


_NO_TERMS = PodAffinityTerms()


def _merge_label_keys(selector: Selector, term: Mapping[str, Any], pod_labels: Mapping[str, str]) -> Selector:
    # matchLabelKeys adds `key in (pod's value)`, mismatchLabelKeys `key notin (pod's value)`, for
    # keys the owning pod carries (KEP-3633).
    extra: list[Requirement] = []
    for key in term.get("matchLabelKeys") or ():
        if key in pod_labels:
            extra.append(Requirement(key, "in", (pod_labels[key],)))
    for key in term.get("mismatchLabelKeys") or ():
        if key in pod_labels:
            extra.append(Requirement(key, "notin", (pod_labels[key],)))
    return selector.add(*extra) if extra else selector


def _parse_term(term: Mapping[str, Any], namespace: str, pod_labels: Mapping[str, str]) -> AffinityTerm:
    raw_selector = term.get("labelSelector")
    selector = selector_from_label_selector(raw_selector)
    if raw_selector is not None:
        selector = _merge_label_keys(selector, term, pod_labels)
    namespaces = term.get("namespaces") or []
    raw_ns_selector = term.get("namespaceSelector")
    if not namespaces and raw_ns_selector is None:
        namespaces = [namespace]
    return AffinityTerm(
        frozenset(namespaces),
        selector,
        str(term.get("topologyKey", "")),
        selector_from_label_selector(raw_ns_selector),
    )


def _parse_terms(
    kind: str, raw: Iterable[Mapping[str, Any]], namespace: str, pod_labels: Mapping[str, str]
) -> tuple[AffinityTerm, ...]:
    try:
        return tuple(_parse_term(t, namespace, pod_labels) for t in raw)
    except ValueError as err:
        raise ValueError(f"{kind}: {err}") from None


def _parse_weighted(
    kind: str, raw: Iterable[Mapping[str, Any]], namespace: str, pod_labels: Mapping[str, str]
) -> tuple[WeightedAffinityTerm, ...]:
    try:
        return tuple(
            WeightedAffinityTerm(
                _parse_term(t.get("podAffinityTerm") or {}, namespace, pod_labels), int(t.get("weight", 0))
            )
            for t in raw
        )
    except ValueError as err:
        raise ValueError(f"{kind}: {err}") from None


def parse_affinity_terms(pod: Pod) -> PodAffinityTerms:
    """The pod's inter-pod affinity terms, parsed (upstream's NewPodInfo). Raises ValueError naming
    the kind of the first invalid term, e.g. `requiredAffinityTerms: values[0][k]: Invalid value...`."""
    spec = pod.spec
    if not spec.HasField("affinity"):
        return _NO_TERMS
    affinity = spec.affinity
    if not (affinity.HasField("podAffinity") or affinity.HasField("podAntiAffinity")):
        return _NO_TERMS
    raw = codec.to_dict(affinity)  # once per pod: dict access beats repeated proto access
    aff = raw.get("podAffinity") or {}
    anti = raw.get("podAntiAffinity") or {}
    ns = pod.metadata.namespace
    labels = dict(pod.metadata.labels)
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    return PodAffinityTerms(
        _parse_terms("requiredAffinityTerms", aff.get(required) or (), ns, labels),
        _parse_terms("requiredAntiAffinityTerms", anti.get(required) or (), ns, labels),
        _parse_weighted("preferredAffinityTerms", aff.get(preferred) or (), ns, labels),
        _parse_weighted("preferredAntiAffinityTerms", anti.get(preferred) or (), ns, labels),
    )


def _existing_pod_terms(pod_info: PodInfo) -> PodAffinityTerms:
    # Cached on the PodInfo (its `extra` is for per-plugin precomputations); a pod never changes
    # under its PodInfo, so the cache cannot go stale. Existing pods passed apiserver validation;
    # should one still fail to parse, it is treated as having no terms rather than failing every
    # other pod's cycle.
    terms = pod_info.extra.get(NAME)
    if terms is None:
        try:
            terms = parse_affinity_terms(pod_info.pod)
        except ValueError:
            terms = _NO_TERMS
        pod_info.extra[NAME] = terms
    return terms  # type: ignore[no-any-return]


def _resolve_namespace_selector(
    term: AffinityTerm, namespace_labels: Mapping[str, Mapping[str, str]]
) -> AffinityTerm:
    # For the incoming pod's terms (upstream's mergeAffinityTermNamespacesIfNotEmpty): unroll a
    # non-empty namespaceSelector into the namespaces it selects, so matching existing pods needs no
    # namespace-label lookup. An empty selector ({}) stays: it matches every namespace.
    if term.namespace_selector.empty():
        return term
    selected = {ns for ns, lbls in namespace_labels.items() if term.namespace_selector.matches(lbls)}
    return AffinityTerm(term.namespaces | selected, term.selector, term.topology_key, _NOTHING)


def _resolve_incoming(
    terms: PodAffinityTerms, namespace_labels: Mapping[str, Mapping[str, str]]
) -> PodAffinityTerms:
    if terms.empty():
        return terms

    def plain(ts: tuple[AffinityTerm, ...]) -> tuple[AffinityTerm, ...]:
        return tuple(_resolve_namespace_selector(t, namespace_labels) for t in ts)

    def weighted(ts: tuple[WeightedAffinityTerm, ...]) -> tuple[WeightedAffinityTerm, ...]:
        return tuple(
            WeightedAffinityTerm(_resolve_namespace_selector(t.term, namespace_labels), t.weight) for t in ts
        )

    return PodAffinityTerms(
        plain(terms.required_affinity),
        plain(terms.required_anti_affinity),
        weighted(terms.preferred_affinity),
        weighted(terms.preferred_anti_affinity),
    )


def _matches_all(terms: Sequence[AffinityTerm], pod: Pod) -> bool:
    # The incoming pod's terms have their namespaceSelector resolved, hence no namespace labels.
    return bool(terms) and all(t.matches(pod) for t in terms)


def _bump(counts: dict[TopologyPair, int], pair: TopologyPair, delta: int) -> None:
    # Invariant: no zero entries — "no pod matches anywhere" is `not counts`.
    value = counts.get(pair, 0) + delta
    if value:
        counts[pair] = value
    else:
        counts.pop(pair, None)


# ----- cycle state ---------------------------------------------------------------------------


@dataclass
class _PreFilterState:
    pod: Any  # the incoming pod
    terms: PodAffinityTerms  # its terms, namespaceSelectors resolved
    namespace_labels: Mapping[str, str]  # labels of the incoming pod's namespace
    # (key, value) -> existing pods whose required anti-affinity terms match the incoming pod
    existing_anti_affinity: dict[TopologyPair, int] = field(default_factory=dict)
    existing_anti_affinity_keys: set[str] = field(default_factory=set)
    # (key, value) -> existing pods matching all of the incoming pod's required affinity terms
    affinity: dict[TopologyPair, int] = field(default_factory=dict)
    # (key, value) -> existing pods matching any of the incoming pod's required anti-affinity terms
    anti_affinity: dict[TopologyPair, int] = field(default_factory=dict)

    def clone(self) -> _PreFilterState:
        return _PreFilterState(
            self.pod,
            self.terms,
            self.namespace_labels,
            dict(self.existing_anti_affinity),
            set(self.existing_anti_affinity_keys),
            dict(self.affinity),
            dict(self.anti_affinity),
        )

    def update_with_pod(self, existing: PodInfo, node: Any, delta: int) -> None:
        """Account for `existing` being added to (+1) or removed from (-1) `node`."""
        labels = node.metadata.labels
        for term in _existing_pod_terms(existing).required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is not None and term.matches(self.pod, self.namespace_labels):
                _bump(self.existing_anti_affinity, (term.topology_key, value), delta)
                self.existing_anti_affinity_keys.add(term.topology_key)
        pod = existing.pod
        if _matches_all(self.terms.required_affinity, pod):
            for term in self.terms.required_affinity:
                value = labels.get(term.topology_key)
                if value is not None:
                    _bump(self.affinity, (term.topology_key, value), delta)
        for term in self.terms.required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is not None and term.matches(pod):
                _bump(self.anti_affinity, (term.topology_key, value), delta)


@dataclass
class _PreScoreState:
    # topologyKey -> value -> summed weight
    topology_score: dict[str, dict[str, int]]


# ----- plugin --------------------------------------------------------------------------------


class InterPodAffinity:
    NAME = NAME

    def __init__(
        self,
        handle: Handle,
        *,
        hard_pod_affinity_weight: int,
        ignore_preferred_terms_of_existing_pods: bool,
        namespace_labels: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._handle = handle
        self.hard_pod_affinity_weight = hard_pod_affinity_weight
        self.ignore_preferred_terms_of_existing_pods = ignore_preferred_terms_of_existing_pods
        self._static_namespace_labels = namespace_labels

    # -- helpers --

    def _namespace_labels(self) -> Mapping[str, Mapping[str, str]]:
        provider = getattr(self._handle, "namespace_labels", None)
        if callable(provider):
            labels: Mapping[str, Mapping[str, str]] = provider()
            return labels
        return self._static_namespace_labels

    def _incoming(self, state: CycleState, pod: Pod) -> tuple[PodAffinityTerms, Mapping[str, str]]:
        """The incoming pod's terms (namespaceSelectors resolved) and its namespace's labels, parsed
        once per cycle. Raises ValueError for an invalid term."""
        cached = state.get(_POD_TERMS_KEY)
        if cached is None:
            ns_labels = self._namespace_labels()
            terms = _resolve_incoming(parse_affinity_terms(pod), ns_labels)
            cached = (terms, ns_labels.get(pod.metadata.namespace, _NO_LABELS))
            state.write(_POD_TERMS_KEY, cached)
        return cached  # type: ignore[no-any-return]

    # -- filter --

    def pre_filter(
        self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        try:
            terms, ns_labels = self._incoming(state, pod)
        except ValueError as err:
            return None, Status.unresolvable(f"parsing pod: {err}")
        snapshot = self._handle.snapshot()
        s = _PreFilterState(pod, terms, ns_labels)

        # (a) existing pods' required anti-affinity terms matching the incoming pod.
        for node_info in snapshot.have_pods_with_required_anti_affinity():
            labels = node_info.labels
            for existing in node_info.pods_with_required_anti_affinity:
                for term in _existing_pod_terms(existing).required_anti_affinity:
                    value = labels.get(term.topology_key)
                    if value is not None and term.matches(pod, ns_labels):
                        _bump(s.existing_anti_affinity, (term.topology_key, value), 1)
                        s.existing_anti_affinity_keys.add(term.topology_key)

        if not s.existing_anti_affinity and not terms.required_affinity and not terms.required_anti_affinity:
            return None, Status.skip()

        # (b) existing pods matching the incoming pod's required terms, over every node.
        affinity_terms, anti_terms = terms.required_affinity, terms.required_anti_affinity
        if affinity_terms or anti_terms:
            for node_info in snapshot.list():
                labels = node_info.labels
                # The keys' values on this node (None: the node lacks it, the term can't match here).
                aff_values = [labels.get(t.topology_key) for t in affinity_terms]
                anti_values = [labels.get(t.topology_key) for t in anti_terms]
                check_affinity = any(v is not None for v in aff_values)
                check_anti = any(v is not None for v in anti_values)
                if not (check_affinity or check_anti):
                    continue
                for existing in node_info.pods:
                    meta = existing.pod.metadata
                    namespace, pod_labels = meta.namespace, meta.labels
                    if check_affinity:
                        for t in affinity_terms:
                            if not t.matches_meta(namespace, pod_labels):
                                break
                        else:  # the pod matches all the terms
                            for t, v in zip(affinity_terms, aff_values, strict=True):
                                if v is not None:
                                    _bump(s.affinity, (t.topology_key, v), 1)
                    if check_anti:
                        for t, v in zip(anti_terms, anti_values, strict=True):
                            if v is not None and t.matches_meta(namespace, pod_labels):
                                _bump(s.anti_affinity, (t.topology_key, v), 1)

        state.write(_PRE_FILTER_KEY, s)
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
        s.update_with_pod(pod_info, node_info.node, delta)
        return Status.success()

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        s = state.get(_PRE_FILTER_KEY)
        if not isinstance(s, _PreFilterState):
            return Status.error(f"error reading {_PRE_FILTER_KEY!r} from cycle state: not found")
        labels = node_info.labels
        if not self._satisfies_affinity(s, pod, labels):
            # No existing pod can be evicted to fix missing affinity: preemption can't help.
            return Status.unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)
        if s.anti_affinity:
            for term in s.terms.required_anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and s.anti_affinity.get((term.topology_key, value), 0) > 0:
                    return Status.unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH)
        if s.existing_anti_affinity:
            for key in s.existing_anti_affinity_keys:
                value = labels.get(key)
                if value is not None and s.existing_anti_affinity.get((key, value), 0) > 0:
                    return Status.unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH)
        return Status.success()

    @staticmethod
    def _satisfies_affinity(s: _PreFilterState, pod: Pod, labels: Mapping[str, str]) -> bool:
        pods_exist = True
        for term in s.terms.required_affinity:
            value = labels.get(term.topology_key)
            if value is None:
                return False  # every topology key must be on the node, even for the first pod
            if s.affinity.get((term.topology_key, value), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # The first pod of a group whose terms select itself: no pod matches anywhere yet, so it
        # may go to any node with the topology keys instead of pending forever.
        return not s.affinity and _matches_all(s.terms.required_affinity, pod)

    # -- score --

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        try:
            terms, ns_labels = self._incoming(state, pod)
        except ValueError as err:
            return Status.error(f"failed to parse pod: {err}")
        has_constraints = bool(terms.preferred_affinity or terms.preferred_anti_affinity)
        if self.ignore_preferred_terms_of_existing_pods and not has_constraints:
            return Status.skip()

        snapshot = self._handle.snapshot()
        # Unless the incoming pod has preferred terms, only pods with affinity can contribute.
        node_infos = snapshot.list() if has_constraints else snapshot.have_pods_with_affinity()
        hard_weight = self.hard_pod_affinity_weight
        use_existing_preferred = not self.ignore_preferred_terms_of_existing_pods
        scores: dict[str, dict[str, int]] = {}

        def add(key: str, value: str | None, weight: int) -> None:
            if value is not None:
                per_key = scores.setdefault(key, {})
                per_key[value] = per_key.get(value, 0) + weight

        for node_info in node_infos:
            labels = node_info.labels
            if not labels:
                continue
            existing_pods = node_info.pods if has_constraints else node_info.pods_with_affinity
            for existing in existing_pods:
                other = existing.pod
                # The incoming pod's preferred terms, matched against the existing pod.
                for w in terms.preferred_affinity:
                    if w.term.matches(other):
                        add(w.term.topology_key, labels.get(w.term.topology_key), w.weight)
                for w in terms.preferred_anti_affinity:
                    if w.term.matches(other):
                        add(w.term.topology_key, labels.get(w.term.topology_key), -w.weight)
                # Symmetry: the existing pod's terms, matched against the incoming pod.
                other_terms = _existing_pod_terms(existing)
                if other_terms.empty():
                    continue
                if hard_weight > 0:
                    for t in other_terms.required_affinity:
                        if t.matches(pod, ns_labels):
                            add(t.topology_key, labels.get(t.topology_key), hard_weight)
                if use_existing_preferred:
                    for w in other_terms.preferred_affinity:
                        if w.term.matches(pod, ns_labels):
                            add(w.term.topology_key, labels.get(w.term.topology_key), w.weight)
                    for w in other_terms.preferred_anti_affinity:
                        if w.term.matches(pod, ns_labels):
                            add(w.term.topology_key, labels.get(w.term.topology_key), -w.weight)

        if not scores:
            return Status.skip()
        state.write(_PRE_SCORE_KEY, _PreScoreState(scores))
        return Status.success()

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        s = state.get(_PRE_SCORE_KEY)
        if not isinstance(s, _PreScoreState):
            return 0, Status.error(f"error reading {_PRE_SCORE_KEY!r} from cycle state: not found")
        labels = node_info.labels
        total = 0
        for key, per_value in s.topology_score.items():
            value = labels.get(key)
            if value is not None:
                total += per_value.get(value, 0)
        return total, Status.success()

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> Status:
        s = state.get(_PRE_SCORE_KEY)
        if not isinstance(s, _PreScoreState) or not s.topology_score or not scores:
            return Status.success()
        low, high = min(scores.values()), max(scores.values())
        spread = high - low
        for name, value in scores.items():
            # Same float arithmetic as upstream, truncated, so results match to the point.
            scores[name] = (
                int(float(MAX_NODE_SCORE) * (float(value - low) / float(spread))) if spread > 0 else 0
            )
        return Status.success()


def _validate_args(args: Mapping[str, Any]) -> tuple[int, bool, Mapping[str, Mapping[str, str]]]:
    known = {"hardPodAffinityWeight", "ignorePreferredTermsOfExistingPods", "namespaceLabels"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(
            f"{NAME} args: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    weight = args.get("hardPodAffinityWeight", DEFAULT_HARD_POD_AFFINITY_WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise ValueError(f"{NAME} args: hardPodAffinityWeight must be an integer, got {weight!r}")
    if not 0 <= weight <= 100:
        raise ValueError(
            f"{NAME} args: hardPodAffinityWeight: Invalid value: {weight}: not in valid range [0-100]"
        )
    ignore = args.get("ignorePreferredTermsOfExistingPods", False)
    if not isinstance(ignore, bool):
        raise ValueError(f"{NAME} args: ignorePreferredTermsOfExistingPods must be a boolean, got {ignore!r}")
    ns_labels = args.get("namespaceLabels", {})
    if not isinstance(ns_labels, Mapping) or not all(
        isinstance(ns, str)
        and isinstance(lbls, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in lbls.items())
        for ns, lbls in ns_labels.items()
    ):
        raise ValueError(
            f"{NAME} args: namespaceLabels must map namespace names to string->string label maps"
        )
    return weight, ignore, {ns: dict(lbls) for ns, lbls in ns_labels.items()}


def new(args: Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    """The plugin, with validated args (ValueError says what is wrong)."""
    weight, ignore, ns_labels = _validate_args(args or {})
    return InterPodAffinity(
        handle,
        hard_pod_affinity_weight=weight,
        ignore_preferred_terms_of_existing_pods=ignore,
        namespace_labels=ns_labels,
    )
