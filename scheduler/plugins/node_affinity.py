"""NodeAffinity: a pod fits only nodes matching its spec.nodeSelector and required node affinity,
and prefers nodes matching its weighted preferred terms.

* pre_filter — compiles the pod's nodeSelector + required affinity once per cycle; Skip when the
  pod has neither (and no `addedAffinity` is configured). When every required term names nodes
  through `matchFields: metadata.name In [...]`, narrows the cycle to those names (a
  PreFilterResult); terms whose names cannot intersect give UnschedulableAndUnresolvable;
* filter — rejects nodes that miss the configured `addedAffinity` or the pod's constraints,
  UnschedulableAndUnresolvable (preemption cannot change node labels);
* pre_score / score — the sum of the weights of the preferred terms (the pod's and the added
  ones) a node matches; Skip when there are none;
* normalize_score — scaled to 0..100 by the best node.

Args (NodeAffinityArgs): `{"addedAffinity": <v1.NodeAffinity>}`, applied to every pod on top of
its own: required terms filter, preferred terms score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from kplane.api import codec
from kplane.api.pb import core_pb2
from kplane.api.scheduling import (
    OBJECT_NAME_FIELD,
    NodeSelector,
    NodeSelectorError,
    PreferredSchedulingTerms,
    RequiredNodeAffinity,
    compile_node_selector,
    compile_preferred_terms,
    required_node_affinity,
)
from scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    Handle,
    NodeInfo,
    Pod,
    PreFilterResult,
    Status,
    default_normalize_score,
)

NAME = "NodeAffinity"
PRE_FILTER_KEY = "PreFilter" + NAME
PRE_SCORE_KEY = "PreScore" + NAME

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT = "pod affinity terms conflict"

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_PREFERRED_PATH = f"spec.affinity.nodeAffinity.{_PREFERRED}"


def _node_affinity(pod: Pod) -> Any:
    spec = pod.spec
    if spec.HasField("affinity") and spec.affinity.HasField("nodeAffinity"):
        return spec.affinity.nodeAffinity
    return None


def required_node_names(terms: Sequence[Any]) -> frozenset[str] | None:
    """The node names required terms can match at all, from `metadata.name In` matchFields.

    None when some term does not pin node names (terms are ORed, so any node may match it).
    Within a term the requirements are ANDed, so their name sets intersect; across terms they unite.
    """
    names: set[str] = set()
    for term in terms:
        term_names: set[str] | None = None
        for req in term.matchFields:
            if req.key == OBJECT_NAME_FIELD and req.operator == "In":
                values = set(req.values)
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


class NodeAffinity:
    NAME = NAME

    def __init__(
        self,
        added_required: NodeSelector | None = None,
        added_preferred: PreferredSchedulingTerms | None = None,
    ) -> None:
        self.added_required = added_required
        self.added_preferred = added_preferred

    def pre_filter(
        self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        affinity = _node_affinity(pod)
        required = (
            getattr(affinity, _REQUIRED) if affinity is not None and affinity.HasField(_REQUIRED) else None
        )
        if required is None and self.added_required is None and not pod.spec.nodeSelector:
            return None, Status.skip()
        state.write(PRE_FILTER_KEY, required_node_affinity(pod))
        if required is None or not required.nodeSelectorTerms:
            return None, Status.success()
        names = required_node_names(required.nodeSelectorTerms)
        if names is None:
            return None, Status.success()
        if not names:
            return None, Status.unresolvable(ERR_REASON_CONFLICT)
        return PreFilterResult(names), Status.success()

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        node = node_info.node
        if self.added_required is not None and not self.added_required.matches(node):
            return Status.unresolvable(ERR_REASON_ENFORCED)
        required: RequiredNodeAffinity | None = state.get(PRE_FILTER_KEY)
        if required is None:  # pre_filter did not run: compile here
            required = required_node_affinity(pod)
        if not required.matches(node):
            return Status.unresolvable(ERR_REASON_POD)
        return Status.success()

    def _pod_preferred(self, pod: Pod) -> PreferredSchedulingTerms | None:
        affinity = _node_affinity(pod)
        terms = getattr(affinity, _PREFERRED) if affinity is not None else ()
        return compile_preferred_terms(terms, path=_PREFERRED_PATH) if terms else None

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        try:
            preferred = self._pod_preferred(pod)
        except NodeSelectorError as exc:
            return Status.error(str(exc))
        if preferred is None and self.added_preferred is None:
            return Status.skip()
        state.write(PRE_SCORE_KEY, preferred or PreferredSchedulingTerms())
        return Status.success()

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        node = node_info.node
        count = self.added_preferred.score(node) if self.added_preferred is not None else 0
        preferred: PreferredSchedulingTerms | None = state.get(PRE_SCORE_KEY)
        if preferred is None:  # pre_score did not run: compile here
            try:
                preferred = self._pod_preferred(pod)
            except NodeSelectorError as exc:
                return 0, Status.error(str(exc))
        if preferred is not None:
            count += preferred.score(node)
        return count, Status.success()

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> Status:
        default_normalize_score(MAX_NODE_SCORE, False, scores)
        return Status.success()


def new(args: Mapping[str, Any], handle: Handle) -> NodeAffinity:
    """Build the plugin from NodeAffinityArgs; ValueError names every problem in `addedAffinity`."""
    unknown = sorted(set(args) - {"addedAffinity"})
    if unknown:
        raise ValueError(f"{NAME} args: unknown field(s) {unknown}; the only one is 'addedAffinity'")
    added = args.get("addedAffinity")
    if added is None:
        return NodeAffinity()
    if not isinstance(added, Message):
        added = codec.from_dict(added, core_pb2.NodeAffinity, "addedAffinity")
    added_required: NodeSelector | None = None
    added_preferred: PreferredSchedulingTerms | None = None
    try:
        if added.HasField(_REQUIRED):
            added_required = compile_node_selector(
                getattr(added, _REQUIRED), path=f"addedAffinity.{_REQUIRED}", strict=True
            )
        if getattr(added, _PREFERRED):
            added_preferred = compile_preferred_terms(
                getattr(added, _PREFERRED), path=f"addedAffinity.{_PREFERRED}"
            )
    except NodeSelectorError as exc:
        raise ValueError(f"{NAME} args: {exc}") from exc
    return NodeAffinity(added_required, added_preferred)
