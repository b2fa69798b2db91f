"""The scheduler's cache: nodes and the pods counted on them, including *assumed* pods.

A pod is counted on its node the moment the scheduler decides (assume), before the binding is
observed, so back-to-back decisions never overcommit a node; a failed binding forgets it. When the
informer later shows the pod bound, the assumed entry is confirmed (not counted twice).

Invariant: a pod key is counted on at most one node, in `_pod_node`.
"""

from __future__ import annotations

from typing import Any

from scheduler.framework import NodeInfo, PodInfo, Snapshot
from scheduler.nodeinfo import add_pod, is_terminal, new_node_info, new_pod_info, remove_pod, set_node

Pod = Any
Node = Any


def _key(pod: Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}
        self.assumed: set[str] = set()
        # pods bound to nodes we have not seen yet: counted once the node appears
        self._orphans: dict[str, Pod] = {}
        # NodeInfos change in place, so a snapshot stays current until a node is added, updated
        # (its image summary) or removed
        self._snapshot: Snapshot | None = None
        # names of nodes counting pods with (required anti-)affinity, shared with the snapshots
        self._with_affinity: set[str] = set()
        self._with_required_anti_affinity: set[str] = set()

    # -- nodes -------------------------------------------------------------------------------

    def add_node(self, node: Node) -> None:
        name = node.metadata.name
        info = self.nodes.get(name)
        if info is None:
            info = new_node_info(node)
            self.nodes[name] = info
            self._snapshot = None
            for key, pod in list(self._orphans.items()):
                if pod.spec.nodeName == name:
                    del self._orphans[key]
                    self._count(pod)
        else:
            set_node(info, node)
            self._snapshot = None  # its per-snapshot summaries (images) may be stale

    update_node = add_node

    def remove_node(self, node: Node) -> None:
        name = node.metadata.name
        info = self.nodes.pop(name, None)
        if info is None:
            return
        self._snapshot = None
        self._with_affinity.discard(name)
        self._with_required_anti_affinity.discard(name)
        for pod_info in info.pods:  # keep them around in case the node comes back
            self._pod_node.pop(pod_info.key, None)
            self.assumed.discard(pod_info.key)
            self._orphans[pod_info.key] = pod_info.pod

    # -- pods --------------------------------------------------------------------------------

    def _count(self, pod: Pod, requests_from: PodInfo | None = None) -> None:
        key = _key(pod)
        node_name = pod.spec.nodeName
        info = self.nodes.get(node_name)
        if info is None:
            self._orphans[key] = pod
            return
        if requests_from is not None:
            pod_info = PodInfo(pod, requests_from.requests, requests_from.non_zero_requests)
        else:
            pod_info = new_pod_info(pod)
        if add_pod(info, pod_info):
            self._pod_node[key] = node_name
            self._track_affinity(info)

    def _uncount(self, key: str) -> None:
        node_name = self._pod_node.pop(key, None)
        self._orphans.pop(key, None)
        if node_name is not None and node_name in self.nodes:
            info = self.nodes[node_name]
            remove_pod(info, key)
            self._track_affinity(info)

    def _track_affinity(self, info: NodeInfo) -> None:
        for names, pods in ((self._with_affinity, info.pods_with_affinity),
                            (self._with_required_anti_affinity, info.pods_with_required_anti_affinity)):
            if pods:
                names.add(info.name)
            else:
                names.discard(info.name)

    def add_pod(self, pod: Pod) -> None:
        """A bound pod observed by the informer (confirms an assumed one)."""
        key = _key(pod)
        self.assumed.discard(key)
        self._uncount(key)
        if not is_terminal(pod):
            self._count(pod)

    def update_pod(self, old: Pod, new: Pod) -> None:
        self.add_pod(new)

    def remove_pod(self, pod: Pod) -> None:
        key = _key(pod)
        self.assumed.discard(key)
        self._uncount(key)

    def assume_pod(self, pod: Pod, requests_from: PodInfo | None = None) -> None:
        """Count `pod` (with spec.nodeName set to the chosen node) before the binding is observed.
        `requests_from`: the scheduling cycle's PodInfo of the same pod (before spec.nodeName was
        set), whose requests are reused instead of computed again."""
        key = _key(pod)
        self._uncount(key)
        self._count(pod, requests_from)
        self.assumed.add(key)

    def forget_pod(self, pod: Pod) -> None:
        """The binding failed: stop counting the assumed pod."""
        key = _key(pod)
        if key in self.assumed:
            self.assumed.discard(key)
            self._uncount(key)

    def is_assumed(self, pod: Pod) -> bool:
        return _key(pod) in self.assumed

    def snapshot(self) -> Snapshot:
        """The node infos as they are now. Scheduling cycles are synchronous between snapshot and
        assume (no awaits), so the infos need no copy; the snapshot object itself is rebuilt only
        when a node is added, updated or removed."""
        if self._snapshot is None:
            self._snapshot = Snapshot(self.nodes.values(), with_affinity=self._with_affinity,
                                      with_required_anti_affinity=self._with_required_anti_affinity)
        return self._snapshot
