"""NodeName: a pod that names its node (spec.nodeName) fits only that node.

A rejection is UnschedulableAndUnresolvable: no preemption can move the pod's requested node.
Pre-filter returns Skip for a pod without spec.nodeName (every node fits it), so the framework
does not run the filter for every node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.framework import SUCCESS, CycleState, Handle, NodeInfo, Pod, PreFilterResult, Status

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


def fits(pod: Pod, node_info: NodeInfo) -> bool:
    """Whether the pod names no node, or names this one."""
    wanted = pod.spec.nodeName
    return not wanted or wanted == node_info.name


class NodeName:
    NAME = NAME

    def pre_filter(
        self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        return None, (Status.success() if pod.spec.nodeName else Status.skip())

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if fits(pod, node_info):
            return SUCCESS
        return Status.unresolvable(ERR_REASON)


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    if args:
        raise ValueError(f"{NAME} takes no args, got {sorted(args)}")
    return NodeName()
