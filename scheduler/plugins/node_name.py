"""NodeName: a pod that names its node (spec.nodeName) fits only that node.

Filter only. A rejection is UnschedulableAndUnresolvable: no preemption can move the pod's
requested node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import CycleState, Handle, NodeInfo, Pod, Status

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


def fits(pod: Pod, node_info: NodeInfo) -> bool:
    """Whether the pod names no node, or names this one."""
    wanted = pod.spec.nodeName
    return not wanted or wanted == node_info.node.metadata.name


class NodeName:
    NAME = NAME

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if fits(pod, node_info):
            return Status.success()
        return Status.unresolvable(ERR_REASON)


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    if args:
        raise ValueError(f"{NAME} takes no args, got {sorted(args)}")
    return NodeName()
