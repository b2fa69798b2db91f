"""TaintToleration: a pod fits a node only if it tolerates the node's NoSchedule and NoExecute
taints, and prefers nodes with fewer PreferNoSchedule taints it does not tolerate.

* filter — the first untolerated NoSchedule/NoExecute taint rejects the node,
  UnschedulableAndUnresolvable (preemption removes pods, never taints);
* pre_score — keeps the pod's tolerations that can tolerate a PreferNoSchedule taint (effect
  PreferNoSchedule or empty); Skip when none of the candidate nodes has a PreferNoSchedule taint
  (every node would score 100 after normalizing: a constant that cannot change the winner);
* score — the number of PreferNoSchedule taints those tolerations leave untolerated;
* normalize_score — reversed: the node with the most such taints gets 0, nodes with none 100.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kplane.api.scheduling import (
    DO_NOT_SCHEDULE_EFFECTS,
    TAINT_EFFECT_PREFER_NO_SCHEDULE,
    find_matching_untolerated_taint,
    tolerations_tolerate_taint,
)
from scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    CycleState,
    Handle,
    NodeInfo,
    Pod,
    Status,
    default_normalize_score,
)

NAME = "TaintToleration"
PRE_SCORE_KEY = "PreScore" + NAME


def _prefer_no_schedule_tolerations(pod: Pod) -> tuple[Any, ...]:
    # An empty effect means every effect, PreferNoSchedule included.
    return tuple(
        t for t in pod.spec.tolerations if not t.effect or t.effect == TAINT_EFFECT_PREFER_NO_SCHEDULE
    )


def count_intolerable_prefer_no_schedule(taints: Sequence[Any], tolerations: Sequence[Any]) -> int:
    """How many PreferNoSchedule taints none of `tolerations` tolerates."""
    return sum(
        1
        for taint in taints
        if taint.effect == TAINT_EFFECT_PREFER_NO_SCHEDULE
        and not tolerations_tolerate_taint(tolerations, taint)
    )


class TaintToleration:
    NAME = NAME

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        taints = node_info.taints
        if not taints:
            return SUCCESS
        taint = find_matching_untolerated_taint(taints, pod.spec.tolerations, DO_NOT_SCHEDULE_EFFECTS)
        if taint is None:
            return Status.success()
        return Status.unresolvable(f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}")

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        if not any(t.effect == TAINT_EFFECT_PREFER_NO_SCHEDULE for ni in nodes if ni.taints for t in ni.taints):
            return Status.skip()
        state.write(PRE_SCORE_KEY, _prefer_no_schedule_tolerations(pod))
        return Status.success()

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        tolerations = state.get(PRE_SCORE_KEY)
        if tolerations is None:  # pre_score did not run (e.g. disabled): compute here
            tolerations = _prefer_no_schedule_tolerations(pod)
        taints = node_info.taints
        return (count_intolerable_prefer_no_schedule(taints, tolerations) if taints else 0), SUCCESS

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> Status:
        default_normalize_score(MAX_NODE_SCORE, True, scores)
        return Status.success()


def new(args: Mapping[str, Any], handle: Handle) -> TaintToleration:
    if args:
        raise ValueError(f"{NAME} takes no args, got {sorted(args)}")
    return TaintToleration()
