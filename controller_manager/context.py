"""What every controller of the controller-manager shares.

Controllers are built by a function ``new(ctx: ControllerContext) -> Controller | list[Controller]``
(see :mod:`controller_manager.registry`). They read through the one shared informer factory —
one list+watch per resource type for the whole process, however many controllers use it — and
write through the one client. Events go through the shared recorder with the controller's name
as ``source.component`` (Kubernetes: "replicaset-controller", "deployment-controller", ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kplane.client.client import Client
from kplane.client.events import EventRecorder
from kplane.client.informer import SharedInformerFactory


@dataclass(frozen=True)
class NodeLifecycleOptions:
    """The node lifecycle controller's flags (Kubernetes' kube-controller-manager defaults)."""

    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 50.0
    node_startup_grace_period: float = 60.0
    node_eviction_rate: float = 0.1  # nodes/s tainted NoExecute per healthy zone
    secondary_node_eviction_rate: float = 0.01  # nodes/s in a partially disrupted zone
    large_cluster_size_threshold: int = 50  # at or below: no tainting in a partially disrupted zone
    unhealthy_zone_threshold: float = 0.55  # fraction of not-ready nodes that disrupts a zone


@dataclass
class ControllerContext:
    client: Client
    factory: SharedInformerFactory
    recorders: dict[str, EventRecorder] = field(default_factory=dict)
    workers: int = 5  # per controller (Kubernetes: --concurrent-*-syncs, 5 for most)
    may_write: Callable[[], bool] | None = None  # False once leadership is lost: stop writing
    node_lifecycle: NodeLifecycleOptions = field(default_factory=NodeLifecycleOptions)

    def recorder(self, component: str) -> EventRecorder:
        """The event recorder for ``component`` (created on first use, started by the manager)."""
        rec = self.recorders.get(component)
        if rec is None:
            rec = EventRecorder(self.client, component=component)
            self.recorders[component] = rec
        return rec
