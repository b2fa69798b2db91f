"""The scheduling framework's types: statuses, per-cycle state, node snapshots, plugin interfaces.

Mirrors kube-scheduler's framework (pkg/scheduler/framework): a plugin is one module with a
`NAME`, a factory `new(args, handle)`, and only the extension points it needs. Pods and nodes are
the protobuf messages from `kplane.api.pb.core_pb2` and are read-only here (they come from
informer caches).

Outcomes are typed values: a `Status` with a `Code`. Effects on the scheduling queue:

* SUCCESS — the node passes / the step succeeded;
* UNSCHEDULABLE — rejected, but a cluster change (a node added, a pod deleted, ...) could fix it:
  the pod goes to the unschedulable pool and post-filter (preemption) may run;
* UNSCHEDULABLE_AND_UNRESOLVABLE — rejected and preemption cannot help (e.g. node affinity);
* ERROR — an internal failure: the pod is retried with back-off;
* SKIP — from pre-filter/pre-score: this plugin has nothing to do for this pod; its filter/score
  extension points are skipped for the rest of the cycle.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0

Pod = Any  # kplane.api.pb.core_pb2.Pod (protobuf messages are typed loosely here)
Node = Any  # kplane.api.pb.core_pb2.Node


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(frozen=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def success(cls) -> Status:
        return _SUCCESS

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)

    @classmethod
    def error(cls, message: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, (message,), plugin)

    @classmethod
    def skip(cls) -> Status:
        return _SKIP

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin or self.code == Code.SUCCESS else Status(self.code, self.reasons, plugin)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)


SUCCESS = Status()
"""The one success status: plugins return it, and the framework tests for it by identity first."""
_SUCCESS = SUCCESS
_SKIP = Status(Code.SKIP)


class CycleState(dict[str, Any]):
    """Data a plugin computes once per scheduling cycle (in pre-filter/pre-score) and reads in
    filter/score, keyed by the plugin's NAME. `clone()` gives preemption its own copy.

    A dict itself, so that `get` — called for every node by every filter and score — is the
    built-in one."""

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter_plugins: set[str] = set()
        self.skip_score_plugins: set[str] = set()

    def write(self, key: str, value: Any) -> None:
        self[key] = value

    def read(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise KeyError(f"cycle state has no entry {key!r}: did its pre-filter/pre-score run?") from None

    def clone(self) -> CycleState:
        out = CycleState()
        out.update({k: (v.clone() if hasattr(v, "clone") else v) for k, v in self.items()})
        out.skip_filter_plugins = set(self.skip_filter_plugins)
        out.skip_score_plugins = set(self.skip_score_plugins)
        return out


@dataclass
class Resource:
    """Requested or allocatable resources in scheduler units: millicores, bytes, pod count, and
    extended resources (e.g. `example.com/gpu`) as integer values."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pod_number: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    def add(self, other: Resource) -> None:
        self.milli_cpu += other.milli_cpu
        self.memory += other.memory
        self.ephemeral_storage += other.ephemeral_storage
        self.allowed_pod_number += other.allowed_pod_number
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + v

    def sub(self, other: Resource) -> None:
        self.milli_cpu -= other.milli_cpu
        self.memory -= other.memory
        self.ephemeral_storage -= other.ephemeral_storage
        self.allowed_pod_number -= other.allowed_pod_number
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) - v

    def clone(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pod_number,
                        dict(self.scalar))


@dataclass
class PodInfo:
    """A pod plus what the scheduler derives from it once (requests, affinity terms)."""

    pod: Pod
    requests: Resource = field(default_factory=Resource)
    # Requests with Kubernetes' non-zero defaults (100m cpu / 200Mi memory for containers that set
    # none): what the *scoring* plugins use, so best-effort pods still spread.
    non_zero_requests: Resource = field(default_factory=Resource)
    extra: dict[str, Any] = field(default_factory=dict)  # per-plugin precomputations
    _key: str = field(init=False, default="", repr=False, compare=False)

    @property
    def key(self) -> str:
        """`namespace/name`, cached (NodeInfo.remove_pod compares it for every pod on the node)."""
        if not self._key:
            meta = self.pod.metadata
            self._key = f"{meta.namespace}/{meta.name}"
        return self._key


@dataclass
class NodeInfo:
    """A node and the pods the scheduler counts on it (bound ones and assumed ones).

    `name`, `labels`, `taints` and `unschedulable` are plain-Python copies of the node's fields,
    taken when the node is set (here and in `nodeinfo.set_node`): filters and scores read them for
    every node in every cycle, and protobuf field access is not free.

    `generation` must change with every change to the node or its pods (`nodeinfo.set_node`,
    `add_pod` and `remove_pod` bump it): `memo` entries are only valid for the generation they
    were computed at."""

    node: Node
    pods: list[PodInfo] = field(default_factory=list)
    requested: Resource = field(default_factory=Resource)
    non_zero_requested: Resource = field(default_factory=Resource)
    allocatable: Resource = field(default_factory=Resource)
    # (hostIP, protocol, hostPort) in use on the node.
    used_ports: set[tuple[str, str, int]] = field(default_factory=set)
    # image name -> size in bytes, from node.status.images
    image_sizes: dict[str, int] = field(default_factory=dict)
    pods_with_affinity: list[PodInfo] = field(default_factory=list)
    pods_with_required_anti_affinity: list[PodInfo] = field(default_factory=list)
    generation: int = 0
    name: str = field(init=False, default="")
    labels: dict[str, str] = field(init=False, default_factory=dict)
    taints: tuple[Any, ...] = field(init=False, default=())
    unschedulable: bool = field(init=False, default=False)
    # Results of node-local plugin steps (their value depends only on this node and a key derived
    # from the pod, e.g. its resource requests), as plugin token -> (generation, key, value): valid
    # while `generation` is unchanged — every node update and every pod counted or uncounted here,
    # assumed ones included, bumps it. Pods of one shape (a ReplicaSet's) reuse them across cycles.
    memo: dict[object, tuple[int, Any, Any]] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.refresh_node_fields()

    def refresh_node_fields(self) -> None:
        """Re-read the plain copies of the node's fields (after `node` changed)."""
        node = self.node
        self.name = str(node.metadata.name)
        self.labels = dict(node.metadata.labels)
        self.taints = tuple(node.spec.taints)
        self.unschedulable = bool(node.spec.unschedulable)

    def clone(self) -> NodeInfo:
        return NodeInfo(self.node, list(self.pods), self.requested.clone(), self.non_zero_requested.clone(),
                        self.allocatable.clone(), set(self.used_ports), dict(self.image_sizes),
                        list(self.pods_with_affinity), list(self.pods_with_required_anti_affinity), self.generation)


class Snapshot:
    """The cluster as one scheduling cycle sees it: a consistent set of NodeInfos.

    `with_affinity` / `with_required_anti_affinity`, when given, are live collections of the names
    of nodes that count pods with (anti-)affinity, kept by whoever changes the NodeInfos (the
    scheduler cache): when one is empty, the matching `have_pods_with_*` answer is known to be empty
    without a scan of every node."""

    def __init__(self, node_infos: Iterable[NodeInfo], *, with_affinity: Collection[str] | None = None,
                 with_required_anti_affinity: Collection[str] | None = None) -> None:
        self._list = list(node_infos)
        self._by_name = {ni.name: ni for ni in self._list}
        self._image_nodes: dict[str, int] | None = None
        self._image_sizes: dict[str, set[int]] = {}
        self._with_affinity = with_affinity
        self._with_required_anti_affinity = with_required_anti_affinity

    def list(self) -> builtins.list[NodeInfo]:
        return self._list

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def image_num_nodes(self) -> Mapping[str, int]:
        """Image key -> how many nodes have that image (upstream's ImageStateSummary.NumNodes),
        counted once per snapshot: a snapshot must be rebuilt when a node's images change."""
        if self._image_nodes is None:
            counts: dict[str, int] = {}
            sizes: dict[str, set[int]] = {}
            for ni in self._list:
                for key, size in ni.image_sizes.items():
                    counts[key] = counts.get(key, 0) + 1
                    sizes.setdefault(key, set()).add(size)
            self._image_nodes, self._image_sizes = counts, sizes
        return self._image_nodes

    def image_sizes(self, key: str) -> Collection[int]:
        """The distinct sizes nodes report for an image (empty: no node has it)."""
        self.image_num_nodes()
        return self._image_sizes.get(key, ())

    def have_pods_with_affinity(self) -> builtins.list[NodeInfo]:
        if self._with_affinity is not None and not self._with_affinity:
            return []
        return [ni for ni in self._list if ni.pods_with_affinity]

    def have_pods_with_required_anti_affinity(self) -> builtins.list[NodeInfo]:
        if self._with_required_anti_affinity is not None and not self._with_required_anti_affinity:
            return []
        return [ni for ni in self._list if ni.pods_with_required_anti_affinity]

    def __len__(self) -> int:
        return len(self._list)


class Handle(Protocol):
    """What the framework gives plugins besides the pod: the cycle's snapshot (and later: the
    client, the event recorder)."""

    def snapshot(self) -> Snapshot: ...


@dataclass(frozen=True)
class PreFilterResult:
    """A pre-filter may narrow the candidate nodes (None: all nodes)."""

    node_names: frozenset[str] | None = None


@runtime_checkable
class Plugin(Protocol):
    NAME: str


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> tuple[PreFilterResult | None, Status]:
        ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status: ...


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]: ...


@runtime_checkable
class NormalizeScorePlugin(Plugin, Protocol):
    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> Status: ...


def default_normalize_score(max_priority: int, reverse: bool, scores: dict[str, int]) -> None:
    """kube-scheduler's helper: scale scores to [0, max_priority] by the highest one, optionally
    reversed (for 'fewer is better' plugins)."""
    max_count = max(scores.values(), default=0)
    if max_count == 0:
        if reverse:
            for k in scores:
                scores[k] = max_priority
        return
    for k, v in scores.items():
        score = max_priority * v // max_count
        scores[k] = max_priority - score if reverse else score


PluginFactory = Callable[[Mapping[str, Any], Handle], Plugin]
