"""NodePorts: a pod's hostPorts must be free on the node.

Upstream pkg/scheduler/framework/plugins/nodeports/node_ports.go. Pre-filter collects the host
ports of the pod's containers and sidecars (hostPort > 0; hostIP defaults to 0.0.0.0, protocol to
TCP) and returns Skip when there are none. Filter rejects a node where a wanted
(hostIP, protocol, hostPort) is taken: same protocol and port, and either the same IP or one of
the two IPs is 0.0.0.0 (which binds every address). Unschedulable, with Kubernetes' reason
"node(s) didn't have free ports for the requested pod ports": deleting the pod holding the port
fixes it, so preemption may help.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scheduler import nodeinfo
from scheduler.framework import CycleState, Handle, NodeInfo, Pod, PreFilterResult, Status
from scheduler.nodeinfo import DEFAULT_BIND_ALL_HOST_IP, HostPort

NAME = "NodePorts"
PRE_FILTER_STATE_KEY = "PreFilter" + NAME
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"


def port_conflicts(used: Iterable[HostPort], want: HostPort) -> bool:
    """Whether `want` collides with a used (hostIP, protocol, port) (HostPortInfo.CheckConflict)."""
    ip, protocol, port = want
    if port <= 0:
        return False
    for used_ip, used_protocol, used_port in used:
        if used_port != port or used_protocol != protocol:
            continue
        if ip == DEFAULT_BIND_ALL_HOST_IP or used_ip in (DEFAULT_BIND_ALL_HOST_IP, ip):
            return True
    return False


def fits_ports(want: Sequence[HostPort], node_info: NodeInfo) -> bool:
    """No wanted host port conflicts with the ports in use on the node."""
    used = node_info.used_ports
    if not used:
        return True
    return not any(port_conflicts(used, hp) for hp in want)


class NodePorts:
    """Filter out nodes where the pod's host ports are already in use."""

    NAME = NAME

    def pre_filter(
        self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]
    ) -> tuple[PreFilterResult | None, Status]:
        ports = nodeinfo.host_ports(pod)
        if not ports:
            return None, Status.skip()
        state.write(PRE_FILTER_STATE_KEY, tuple(ports))
        return None, Status.success()

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        want = state.get(PRE_FILTER_STATE_KEY)
        if want is None:
            return Status.error(f"error reading {PRE_FILTER_STATE_KEY!r} from cycle state: not found")
        if not fits_ports(want, node_info):
            return Status.unschedulable(ERR_REASON)
        return Status.success()


def new(args: Mapping[str, Any], handle: Handle) -> NodePorts:
    if args:
        raise ValueError(f"{NAME} takes no args, got {sorted(args)}")
    return NodePorts()
