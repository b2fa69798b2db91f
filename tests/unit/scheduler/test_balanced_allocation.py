"""NodeResourcesBalancedAllocation, ported from upstream's noderesources balanced_allocation_test.go
(TestNodeResourcesBalancedAllocation: same pods, nodes and expected scores; the DRA cases are not
applicable here)."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import MAX_NODE_SCORE, Code, CycleState, NodeInfo, PreScorePlugin, ScorePlugin
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import balanced_allocation
from scheduler.plugins.balanced_allocation import balanced_resource_score
from scheduler.plugins.node_resources_fit import ResourceSpec

GPU = "nvidia.com/gpu"


def make_pod(spec: dict[str, Any], name: str = "p") -> Any:
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec}, core_pb2.Pod)


def containers(*requests: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": f"c{i}", "image": "i", "resources": {"requests": r}} for i, r in enumerate(requests)]


def make_node(name: str, milli_cpu: int, memory: int, extended: dict[str, int] | None = None) -> Any:
    """Upstream's makeNode: cpu in millicores, memory in bytes, 100 pods, optional extended resources."""
    alloc = {"cpu": f"{milli_cpu}m", "memory": str(memory), "pods": "100"}
    alloc.update({k: str(v) for k, v in (extended or {}).items()})
    return codec.from_dict({"metadata": {"name": name}, "status": {"capacity": alloc, "allocatable": alloc}},
                           core_pb2.Node)


def node_infos(nodes: list[Any], pods: list[Any]) -> list[NodeInfo]:
    return [new_node_info(n, [p for p in pods if p.spec.nodeName == n.metadata.name]) for n in nodes]


def spec(node: str, *requests: dict[str, str]) -> dict[str, Any]:
    return {"nodeName": node, "containers": containers(*requests)}


CPU_AND_MEMORY_AND_GPU = spec("node1", {"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000", GPU: "3"})
CPU_ONLY = spec("node1", {"cpu": "1000m", "memory": "0"}, {"cpu": "2000m", "memory": "0"})
CPU_AND_MEMORY = spec("node2", {"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000"})

DEFAULT: list[dict[str, Any]] = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
WITH_GPU: list[dict[str, Any]] = [*DEFAULT, {"name": GPU, "weight": 1}]
SCALAR = {GPU: 8}


def pods(*specs: dict[str, Any]) -> list[Any]:
    return [make_pod(s, f"existing-{i}") for i, s in enumerate(specs)]


CASES = [
    # CPU fraction 3000/4000 = 0.75, memory 5000/10000 = 0.5, std 0.125 -> 87; node2 both 0.5 -> 100
    ("nothing scheduled, resources requested, differently sized nodes", CPU_AND_MEMORY,
     [make_node("node1", 4000, 10000), make_node("node2", 6000, 10000)], [], DEFAULT, True, [87, MAX_NODE_SCORE]),
    # node1: 0.6 / 0.25 -> std 0.175 -> 82; node2: 0.6 / 0.5 -> std 0.05 -> 95
    ("resources requested, pods scheduled with resources", CPU_AND_MEMORY,
     [make_node("node1", 10000, 20000), make_node("node2", 10000, 20000)], pods(CPU_ONLY, CPU_AND_MEMORY), DEFAULT,
     True, [82, 95]),
    # node2: 0.6 / 0.2 -> std 0.2 -> 80
    ("resources requested, pods scheduled with resources, differently sized nodes", CPU_AND_MEMORY,
     [make_node("node1", 10000, 20000), make_node("node2", 10000, 50000)], pods(CPU_ONLY, CPU_AND_MEMORY), DEFAULT,
     True, [82, 80]),
    # node1: 1 / 0 -> 50; node2: 1 / 0.5 -> 75
    ("requested resources at node capacity", CPU_ONLY,
     [make_node("node1", 6000, 10000), make_node("node2", 6000, 10000)], pods(CPU_ONLY, CPU_AND_MEMORY), DEFAULT,
     True, [50, 75]),
    # three fractions: node1 0.857 / 0.125 / 0.5 -> 70; node2 0.857 / 0.125 / 0.125 -> 65
    ("include scalar resource on a node for balanced resource allocation",
     {"containers": containers({"memory": "0", GPU: "1"})},
     [make_node("node1", 3500, 40000, SCALAR), make_node("node2", 3500, 40000, SCALAR)],
     pods(CPU_AND_MEMORY, CPU_AND_MEMORY_AND_GPU), WITH_GPU, True, [70, 65]),
    # the pod does not request the GPU, so it is left out on both nodes: 0.857 / 0.125 -> 63
    ("node without the scalar resource should skip the scalar resource", CPU_AND_MEMORY,
     [make_node("node1", 3500, 40000, SCALAR), make_node("node2", 3500, 40000)], [], WITH_GPU, True, [63, 63]),
    ("resources requested, pods scheduled with resources if PreScore not called", CPU_AND_MEMORY,
     [make_node("node1", 10000, 20000), make_node("node2", 10000, 20000)], pods(CPU_ONLY, CPU_AND_MEMORY), DEFAULT,
     False, [82, 95]),
]


@pytest.mark.parametrize(("pod_spec", "nodes", "existing", "resources", "pre_score", "want"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_balanced_allocation(pod_spec: dict[str, Any], nodes: list[Any], existing: list[Any],
                             resources: list[dict[str, Any]], pre_score: bool, want: list[int]) -> None:
    """Scores are (1 - std of utilisation fractions) * 100, as upstream computes them."""
    plugin = balanced_allocation.new({"resources": resources}, None)  # type: ignore[arg-type]
    pod = make_pod(pod_spec)
    infos = node_infos(nodes, existing)
    state = CycleState()
    if pre_score:
        assert plugin.pre_score(state, pod, infos).is_success()
    got = []
    for ni in infos:
        score, status = plugin.score(state, pod, ni)
        assert status.is_success()
        got.append(score)
    assert got == want


def test_best_effort_pod_skips_pre_score() -> None:
    """A pod requesting nothing is skipped in pre-score ("nothing scheduled, nothing requested, skip in PreScore")."""
    plugin = balanced_allocation.new({}, None)  # type: ignore[arg-type]
    infos = node_infos([make_node("node1", 4000, 10000), make_node("node2", 4000, 10000)], [])
    assert plugin.pre_score(CycleState(), make_pod({}), infos).code == Code.SKIP
    # Containers without requests still count as best effort: balancing uses actual requests.
    best_effort = make_pod({"containers": [{"name": "c", "image": "i"}]})
    assert plugin.pre_score(CycleState(), best_effort, infos).code == Code.SKIP


def test_uses_actual_not_non_zero_requests() -> None:
    """Existing best-effort pods add nothing to the fractions (upstream's useRequested: true)."""
    plugin = balanced_allocation.new({}, None)  # type: ignore[arg-type]
    best_effort = make_pod({"nodeName": "node1", "containers": [{"name": "c", "image": "i"}]}, "be")
    [ni] = node_infos([make_node("node1", 4000, 10000)], [best_effort])
    pod = make_pod(CPU_AND_MEMORY)  # 3000m of 4000m, 5000 of 10000 -> 87 as on an empty node
    assert plugin.score(CycleState(), pod, ni)[0] == 87


@pytest.mark.parametrize(
    ("requested", "allocatable", "want"),
    [
        pytest.param([0, 0], [0, 0], 100, id="no resources on the node"),
        pytest.param([8000, 100], [4000, 1000], 55, id="fractions are capped at 1"),
        pytest.param([1, 2, 3], [4, 4, 4], 79, id="three resources use the full std formula"),
        pytest.param([1], [2], 100, id="a single fraction has zero deviation"),
    ],
)
def test_balanced_resource_score(requested: list[int], allocatable: list[int], want: int) -> None:
    """balanced_resource_score mirrors upstream's balancedResourceScorer on raw lists."""
    assert balanced_resource_score(requested, allocatable) == want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"resources": [{"name": "cpu", "weight": 2}]}, "resources[0].weight: Invalid value: 2: must be 1",
                     id="weight other than 1"),
        pytest.param({"resources": [{"name": "cpu"}, {"name": "cpu"}]}, "resources[1].name: Duplicate value: 'cpu'",
                     id="duplicate resource"),
        pytest.param({"resources": [{"weight": 1}]}, "resources[0].name: Required value", id="missing name"),
        pytest.param({"scoringStrategy": {}}, "unknown field(s) scoringStrategy", id="unknown field"),
    ],
)
def test_invalid_args(args: dict[str, Any], message: str) -> None:
    """new() rejects bad args with a clear ValueError (ValidateNodeResourcesBalancedAllocationArgs)."""
    with pytest.raises(ValueError, match="invalid NodeResourcesBalancedAllocation args") as exc:
        balanced_allocation.new(args, None)  # type: ignore[arg-type]
    assert message in str(exc.value)


def test_defaults_and_shape() -> None:
    """Default resources are cpu and memory; the plugin is a pre-score and score plugin."""
    assert balanced_allocation.parse_args({}) == (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))
    assert balanced_allocation.parse_args({"resources": [{"name": "cpu", "weight": 0}]}) == (ResourceSpec("cpu", 1),)
    plugin = balanced_allocation.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == balanced_allocation.NAME == "NodeResourcesBalancedAllocation"
    assert isinstance(plugin, PreScorePlugin) and isinstance(plugin, ScorePlugin)
