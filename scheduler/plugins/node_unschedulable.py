"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate the
`node.kubernetes.io/unschedulable:NoSchedule` taint.

Filter only; a rejection is UnschedulableAndUnresolvable (preemption cannot uncordon a node).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kplane.api.scheduling import (
    TAINT_EFFECT_NO_SCHEDULE,
    TAINT_NODE_UNSCHEDULABLE,
    tolerations_tolerate_taint,
)
from scheduler.framework import SUCCESS, CycleState, Handle, NodeInfo, Pod, Status

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"

# What a cordoned node amounts to, as a taint.
UNSCHEDULABLE_TAINT: Final = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": TAINT_EFFECT_NO_SCHEDULE}


class NodeUnschedulable:
    NAME = NAME

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if not node_info.unschedulable:
            return SUCCESS
        if tolerations_tolerate_taint(pod.spec.tolerations, UNSCHEDULABLE_TAINT):
            return Status.success()
        return Status.unresolvable(ERR_REASON_UNSCHEDULABLE)


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    if args:
        raise ValueError(f"{NAME} takes no args, got {sorted(args)}")
    return NodeUnschedulable()
