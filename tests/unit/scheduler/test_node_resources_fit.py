"""NodeResourcesFit, ported from upstream's noderesources fit_test.go, least_allocated_test.go and
most_allocated_test.go (same inputs, same expected statuses and scores)."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import (
    MAX_NODE_SCORE,
    Code,
    CycleState,
    FilterPlugin,
    NodeInfo,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import node_resources_fit
from scheduler.plugins.node_resources_fit import InsufficientResource, ResourceSpec, fits

EXT_A = "example.com/aaa"
EXT_B = "example.com/bbb"
K8S_IO_A = "kubernetes.io/something"
K8S_IO_B = "subdomain.kubernetes.io/something"
HUGEPAGE_A = "hugepages-2Mi"
EXTENDED_RES = "abc.com/xyz"


# ----- builders (upstream's newResourcePod / st.MakePod / st.MakeNode) ------------------------


def pod_from(spec: dict[str, Any], name: str = "p") -> Any:
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec}, core_pb2.Pod)


def usage(cpu: int = 0, mem: int = 0, storage: int = 0, scalar: dict[str, int] | None = None) -> dict[str, str]:
    """A container request list like upstream's newResourcePod (cpu in millicores)."""
    rl = {"cpu": f"{cpu}m", "memory": str(mem), "pods": "0", "ephemeral-storage": str(storage)}
    rl.update({k: str(v) for k, v in (scalar or {}).items()})
    return rl


def resource_pod(*usages: dict[str, str], init: tuple[dict[str, str], ...] = (),
                 overhead: dict[str, str] | None = None, name: str = "p") -> Any:
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": "i", "resources": {"requests": u}} for i, u in enumerate(usages)]
    }
    if init:
        spec["initContainers"] = [
            {"name": f"i{i}", "image": "i", "resources": {"requests": u}} for i, u in enumerate(init)
        ]
    if overhead:
        spec["overhead"] = overhead
    return pod_from(spec, name)


def req_pod(*requests: dict[str, str], node: str = "", name: str = "p") -> Any:
    """st.MakePod().Node(node).Req(r1).Req(r2)...: one container per request map."""
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": "i", "resources": {"requests": r}} for i, r in enumerate(requests)]
    }
    if node:
        spec["nodeName"] = node
    return pod_from(spec, name)


def make_node(name: str, allocatable: dict[str, str]) -> Any:
    return codec.from_dict(
        {"metadata": {"name": name}, "status": {"capacity": allocatable, "allocatable": allocatable}}, core_pb2.Node
    )


def node_infos(nodes: list[Any], pods: list[Any]) -> list[NodeInfo]:
    """cache.NewSnapshot: each node with the pods whose spec.nodeName names it."""
    return [new_node_info(n, [p for p in pods if p.spec.nodeName == n.metadata.name]) for n in nodes]


# makeAllocatableResources(10, 20, 32, 5, 20, 5): cpu 10m, memory 20, pods 32, example.com/aaa 5,
# ephemeral-storage 20, hugepages-2Mi 5.
def enough_node(pods: int = 32, ext_a: int = 5, storage: int = 20, hugepages: int = 5) -> dict[str, str]:
    return {"cpu": "10m", "memory": "20", "pods": str(pods), EXT_A: str(ext_a),
            "ephemeral-storage": str(storage), HUGEPAGE_A: str(hugepages)}


def insufficient(name: str, requested: int, used: int, capacity: int) -> InsufficientResource:
    return InsufficientResource(name, f"Insufficient {name}", requested, used, capacity)


def run_filter(args: dict[str, Any], pod: Any, node_info: NodeInfo) -> Status:
    plugin = node_resources_fit.new(args, None)  # type: ignore[arg-type]
    state = CycleState()
    result, status = plugin.pre_filter(state, pod, [node_info])
    assert result is None and status.is_success()
    return plugin.filter(state, pod, node_info)


# ----- TestEnoughRequests ------------------------------------------------------------------------

ENOUGH_CASES = [
    ("no resources requested always fits", pod_from({}), usage(10, 20), {}, []),
    ("too many resources fails", resource_pod(usage(1, 1)), usage(10, 20), {},
     [insufficient("cpu", 1, 10, 10), insufficient("memory", 1, 20, 20)]),
    ("too many resources fails due to init container cpu",
     resource_pod(usage(1, 1), init=(usage(3, 1),)), usage(8, 19), {}, [insufficient("cpu", 3, 8, 10)]),
    ("too many resources fails due to highest init container cpu",
     resource_pod(usage(1, 1), init=(usage(3, 1), usage(2, 1))), usage(8, 19), {}, [insufficient("cpu", 3, 8, 10)]),
    ("too many resources fails due to init container memory",
     resource_pod(usage(1, 1), init=(usage(1, 3),)), usage(9, 19), {}, [insufficient("memory", 3, 19, 20)]),
    ("too many resources fails due to highest init container memory",
     resource_pod(usage(1, 1), init=(usage(1, 3), usage(1, 2))), usage(9, 19), {}, [insufficient("memory", 3, 19, 20)]),
    ("init container fits because it's the max, not sum, of containers and init containers",
     resource_pod(usage(1, 1), init=(usage(1, 1),)), usage(9, 19), {}, []),
    ("multiple init containers fit because it's the max, not sum, of containers and init containers",
     resource_pod(usage(1, 1), init=(usage(1, 1), usage(1, 1))), usage(9, 19), {}, []),
    ("both resources fit", resource_pod(usage(1, 1)), usage(5, 5), {}, []),
    ("one resource memory fits", resource_pod(usage(2, 1)), usage(9, 5), {}, [insufficient("cpu", 2, 9, 10)]),
    ("one resource cpu fits", resource_pod(usage(1, 2)), usage(5, 19), {}, [insufficient("memory", 2, 19, 20)]),
    ("equal edge case", resource_pod(usage(5, 1)), usage(5, 19), {}, []),
    ("equal edge case for init container", resource_pod(usage(4, 1), init=(usage(5, 1),)), usage(5, 19), {}, []),
    ("extended resource fits", resource_pod(usage(scalar={EXT_A: 1})), usage(), {}, []),
    ("extended resource fits for init container",
     resource_pod(usage(), init=(usage(scalar={EXT_A: 1}),)), usage(), {}, []),
    ("extended resource capacity enforced", resource_pod(usage(1, 1, scalar={EXT_A: 10})),
     usage(scalar={EXT_A: 0}), {}, [insufficient(EXT_A, 10, 0, 5)]),
    ("extended resource capacity enforced for init container",
     resource_pod(usage(), init=(usage(1, 1, scalar={EXT_A: 10}),)), usage(scalar={EXT_A: 0}), {},
     [insufficient(EXT_A, 10, 0, 5)]),
    ("extended resource allocatable enforced", resource_pod(usage(1, 1, scalar={EXT_A: 1})),
     usage(scalar={EXT_A: 5}), {}, [insufficient(EXT_A, 1, 5, 5)]),
    ("extended resource allocatable enforced for init container",
     resource_pod(usage(), init=(usage(1, 1, scalar={EXT_A: 1}),)), usage(scalar={EXT_A: 5}), {},
     [insufficient(EXT_A, 1, 5, 5)]),
    ("extended resource allocatable enforced for multiple containers",
     resource_pod(usage(1, 1, scalar={EXT_A: 3}), usage(1, 1, scalar={EXT_A: 3})), usage(scalar={EXT_A: 2}), {},
     [insufficient(EXT_A, 6, 2, 5)]),
    ("extended resource allocatable admits multiple init containers",
     resource_pod(usage(), init=(usage(1, 1, scalar={EXT_A: 3}), usage(1, 1, scalar={EXT_A: 3}))),
     usage(scalar={EXT_A: 2}), {}, []),
    ("extended resource allocatable enforced for multiple init containers",
     resource_pod(usage(), init=(usage(1, 1, scalar={EXT_A: 6}), usage(1, 1, scalar={EXT_A: 3}))),
     usage(scalar={EXT_A: 2}), {}, [insufficient(EXT_A, 6, 2, 5)]),
    ("extended resource allocatable enforced for unknown resource", resource_pod(usage(1, 1, scalar={EXT_B: 1})),
     usage(), {}, [insufficient(EXT_B, 1, 0, 0)]),
    ("extended resource allocatable enforced for unknown resource for init container",
     resource_pod(usage(), init=(usage(1, 1, scalar={EXT_B: 1}),)), usage(), {}, [insufficient(EXT_B, 1, 0, 0)]),
    ("kubernetes.io resource capacity enforced", resource_pod(usage(1, 1, scalar={K8S_IO_A: 10})),
     usage(), {}, [insufficient(K8S_IO_A, 10, 0, 0)]),
    ("kubernetes.io resource capacity enforced for init container",
     resource_pod(usage(), init=(usage(1, 1, scalar={K8S_IO_B: 10}),)), usage(), {},
     [insufficient(K8S_IO_B, 10, 0, 0)]),
    ("hugepages resource capacity enforced", resource_pod(usage(1, 1, scalar={HUGEPAGE_A: 10})),
     usage(scalar={HUGEPAGE_A: 0}), {}, [insufficient(HUGEPAGE_A, 10, 0, 5)]),
    ("hugepages resource capacity enforced for init container",
     resource_pod(usage(), init=(usage(1, 1, scalar={HUGEPAGE_A: 10}),)), usage(scalar={HUGEPAGE_A: 0}), {},
     [insufficient(HUGEPAGE_A, 10, 0, 5)]),
    ("hugepages resource allocatable enforced for multiple containers",
     resource_pod(usage(1, 1, scalar={HUGEPAGE_A: 3}), usage(1, 1, scalar={HUGEPAGE_A: 3})), usage(scalar={HUGEPAGE_A: 2}), {},
     [insufficient(HUGEPAGE_A, 6, 2, 5)]),
    ("skip checking ignored extended resource", resource_pod(usage(1, 1, scalar={EXT_B: 1})), usage(),
     {"ignoredResources": ["example.com/bbb"]}, []),
    ("resources + pod overhead fits",
     resource_pod(usage(1, 1), overhead={"cpu": "3m", "memory": "13"}), usage(5, 5), {}, []),
    ("requests + overhead does not fit for memory",
     resource_pod(usage(1, 1), overhead={"cpu": "1m", "memory": "15"}), usage(5, 5), {},
     [insufficient("memory", 16, 5, 20)]),
    ("skip checking ignored extended resource via resource groups",
     resource_pod(usage(1, 1, scalar={EXT_B: 1, K8S_IO_A: 1})), usage(),
     {"ignoredResourceGroups": ["example.com"]}, [insufficient(K8S_IO_A, 1, 0, 0)]),
    ("skip checking extended resource request with quantity zero via resource groups",
     resource_pod(usage(1, 1, scalar={EXT_A: 0})), usage(scalar={EXT_A: 6}), {}, []),
    ("skip checking resource request with quantity zero", resource_pod(usage(scalar={EXT_A: 1})),
     usage(20, 30, scalar={EXT_A: 1}), {}, []),
]


@pytest.mark.parametrize(("pod", "existing", "args", "want"), [pytest.param(*c[1:], id=c[0]) for c in ENOUGH_CASES])
def test_enough_requests(pod: Any, existing: dict[str, str], args: dict[str, Any],
                         want: list[InsufficientResource]) -> None:
    """Filter reports one Kubernetes-worded reason per insufficient resource (fit_test TestEnoughRequests)."""
    ni = new_node_info(make_node("n", enough_node()), [resource_pod(existing, name="existing")])
    status = run_filter(args, pod, ni)
    if want:
        assert status == Status.unschedulable(*(w.reason for w in want))
    else:
        assert status.is_success()
    plugin = node_resources_fit.new(args, None)  # type: ignore[arg-type]
    got = node_resources_fit.fits_request(node_resources_fit.nodeinfo.pod_requests(pod), ni,
                                          plugin.args.ignored_resources, plugin.args.ignored_resource_groups)
    assert got == want


@pytest.mark.parametrize(
    ("pod", "existing"),
    [
        pytest.param(pod_from({}), usage(10, 20),
                     id="even without specified resources, predicate fails when there's no space for additional pod"),
        pytest.param(resource_pod(usage(1, 1)), usage(5, 5),
                     id="even if both resources fit, predicate fails when there's no space for additional pod"),
        pytest.param(resource_pod(usage(5, 1)), usage(5, 19),
                     id="even for equal edge case, predicate fails when there's no space for additional pod"),
        pytest.param(resource_pod(usage(5, 1), init=(usage(5, 1),)), usage(5, 19),
                     id="even for equal edge case, predicate fails when there's no space for additional pod due to init container"),
    ],
)
def test_not_enough_requests(pod: Any, existing: dict[str, str]) -> None:
    """A node allowing one pod that already runs one rejects with "Too many pods" (TestNotEnoughRequests)."""
    ni = new_node_info(make_node("n", enough_node(pods=1, ext_a=0, storage=0, hugepages=0)),
                       [resource_pod(existing, name="existing")])
    assert run_filter({}, pod, ni) == Status.unschedulable("Too many pods")


@pytest.mark.parametrize(
    ("pod", "existing", "want"),
    [
        pytest.param(resource_pod(usage(1, 1)), usage(2, 10), None, id="empty storage requested, and pod fits"),
        pytest.param(resource_pod(usage(storage=25)), usage(2, 2), "Insufficient ephemeral-storage",
                     id="storage ephemeral local storage request exceeds allocatable"),
        pytest.param(resource_pod(usage(storage=5)), usage(2, 2, storage=10), None,
                     id="ephemeral local storage is sufficient"),
        pytest.param(resource_pod(usage(storage=10)), usage(2, 2), None, id="pod fits"),
    ],
)
def test_storage_requests(pod: Any, existing: dict[str, str], want: str | None) -> None:
    """Ephemeral storage requests are checked like cpu and memory (TestStorageRequests)."""
    ni = new_node_info(make_node("n", enough_node()), [resource_pod(existing, name="existing")])
    status = run_filter({}, pod, ni)
    assert status == (Status.unschedulable(want) if want else Status.success())


def test_pre_filter_disabled() -> None:
    """Filter without pre-filter state is an Error, not a silent pass (TestPreFilterDisabled)."""
    plugin = node_resources_fit.new({}, None)  # type: ignore[arg-type]
    status = plugin.filter(CycleState(), pod_from({}), new_node_info(make_node("n", {})))
    assert status.code == Code.ERROR
    assert "PreFilterNodeResourcesFit" in status.message()


def test_sidecar_requests_counted() -> None:
    """Restartable init containers (sidecars) add to the pod's requests and can make it not fit."""
    pod = pod_from({
        "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "6m"}}}],
        "initContainers": [{"name": "s", "image": "i", "restartPolicy": "Always",
                            "resources": {"requests": {"cpu": "5m"}}}],
    })
    ni = new_node_info(make_node("n", enough_node()))
    assert run_filter({}, pod, ni) == Status.unschedulable("Insufficient cpu")


def test_fits_helper() -> None:
    """fits() computes the pod's requests itself (upstream's Fits)."""
    ni = new_node_info(make_node("n", enough_node()), [resource_pod(usage(9, 0), name="existing")])
    assert fits(resource_pod(usage(2, 1)), ni) == [insufficient("cpu", 2, 9, 10)]


def test_message_format_in_event() -> None:
    """Reasons join into the FailedScheduling message the way Kubernetes prints them."""
    ni = new_node_info(make_node("n", {"cpu": "1", "memory": "1Gi", "pods": "0"}))
    status = run_filter({}, req_pod({"cpu": "2", "memory": "2Gi", "example.com/gpu": "1"}), ni)
    assert status.reasons == ("Too many pods", "Insufficient cpu", "Insufficient memory", "Insufficient example.com/gpu")


# ----- scoring ------------------------------------------------------------------------------------

DEFAULT = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
EXTENDED_SET = [*DEFAULT, {"name": EXTENDED_RES, "weight": 1}]


def run_scores(strategy: dict[str, Any], pod: Any, nodes: list[Any], existing: list[Any], *,
               pre_score: bool = True) -> list[int]:
    plugin = node_resources_fit.new({"scoringStrategy": strategy}, None)  # type: ignore[arg-type]
    infos = node_infos(nodes, existing)
    state = CycleState()
    if pre_score:
        assert plugin.pre_score(state, pod, infos).is_success()
    out = []
    for ni in infos:
        score, status = plugin.score(state, pod, ni)
        assert status.is_success()
        out.append(score)
    return out


def cm(cpu: str, mem: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"cpu": cpu, "memory": mem, **(extra or {})}


N_4_10 = make_node("node1", cm("4000", "10000"))
N2_4_10 = make_node("node2", cm("4000", "10000"))
N2_6_10 = make_node("node2", cm("6000", "10000"))
N_10_20 = make_node("node1", cm("10000", "20000"))
N2_10_20 = make_node("node2", cm("10000", "20000"))
N2_10_50 = make_node("node2", cm("10000", "50000"))
N_6_10 = make_node("node1", cm("6000", "10000"))
N2_6_10_EXT4 = make_node("node2", cm("6000", "10000", {EXTENDED_RES: "4"}))
N_6_10_EXT4 = make_node("node1", cm("6000", "10000", {EXTENDED_RES: "4"}))
N2_6_10_EXT10 = make_node("node2", cm("6000", "10000", {EXTENDED_RES: "10"}))
TWO_CONTAINERS = req_pod(cm("1000", "2000"), cm("2000", "3000"))
EXT_POD = req_pod(cm("3000", "5000", {EXTENDED_RES: "2"}), node="node1")

LEAST_CASES = [
    ("nothing scheduled, nothing requested", pod_from({}), [N_4_10, N2_4_10], [], DEFAULT,
     [MAX_NODE_SCORE, MAX_NODE_SCORE]),
    ("nothing scheduled, resources requested, differently sized nodes", TWO_CONTAINERS, [N_4_10, N2_6_10], [],
     DEFAULT, [37, 50]),
    ("no resources requested, pods scheduled", pod_from({}), [N_4_10, N2_4_10],
     [pod_from({"nodeName": "node1"}, "a"), pod_from({"nodeName": "node1"}, "b"),
      pod_from({"nodeName": "node2"}, "c"), pod_from({"nodeName": "node2"}, "d")], DEFAULT,
     [MAX_NODE_SCORE, MAX_NODE_SCORE]),
    ("no resources requested, pods scheduled with resources", pod_from({}), [N_10_20, N2_10_20],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "0"), node="node1", name="b"),
      req_pod(cm("3000", "0"), node="node2", name="c"), req_pod(cm("3000", "5000"), node="node2", name="d")],
     DEFAULT, [70, 57]),
    ("resources requested, pods scheduled with resources", TWO_CONTAINERS, [N_10_20, N2_10_20],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "5000"), node="node2", name="b")],
     DEFAULT, [57, 45]),
    ("resources requested, pods scheduled with resources, differently sized nodes", TWO_CONTAINERS,
     [N_10_20, N2_10_50],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "5000"), node="node2", name="b")],
     DEFAULT, [57, 60]),
    ("requested resources exceed node capacity", req_pod(cm("3000", "0")), [N_4_10, N2_4_10],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "5000"), node="node2", name="b")],
     DEFAULT, [50, 25]),
    ("zero node resources, pods scheduled with resources", pod_from({}),
     [make_node("node1", {}), make_node("node2", {})],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "5000"), node="node2", name="b")],
     DEFAULT, [0, 0]),
    ("nothing scheduled, resources requested with different weight on CPU and memory, differently sized nodes",
     TWO_CONTAINERS, [N_4_10, N2_6_10], [], [{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}],
     [41, 50]),
    ("bypass extended resource if the pod does not request", TWO_CONTAINERS, [N_6_10, N2_6_10_EXT4], [],
     EXTENDED_SET, [50, 50]),
    ("honor extended resource if the pod requests", EXT_POD, [N_6_10_EXT4, N2_6_10_EXT10], [], EXTENDED_SET,
     [50, 60]),
    ("if the node doesn't have a resource", req_pod(cm("3000", "4000")), [N_6_10, N2_6_10_EXT4], [],
     [{"name": EXTENDED_RES, "weight": 2}, *DEFAULT], [55, 55]),
]


@pytest.mark.parametrize(("pod", "nodes", "existing", "resources", "want"),
                         [pytest.param(*c[1:], id=c[0]) for c in LEAST_CASES])
def test_least_allocated(pod: Any, nodes: list[Any], existing: list[Any], resources: list[dict[str, Any]],
                         want: list[int]) -> None:
    """LeastAllocated favours free capacity (least_allocated_test TestLeastAllocatedScoringStrategy)."""
    assert run_scores({"type": "LeastAllocated", "resources": resources}, pod, nodes, existing) == want


MOST_CASES = [
    ("nothing scheduled, nothing requested", pod_from({}), [N_4_10, N2_4_10], [], DEFAULT, [0, 0]),
    ("nothing scheduled, resources requested, differently sized nodes", TWO_CONTAINERS, [N_4_10, N2_6_10], [],
     DEFAULT, [62, 50]),
    ("no resources requested, pods scheduled with resources", pod_from({}), [N_10_20, N2_10_20],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "0"), node="node1", name="b"),
      req_pod(cm("3000", "0"), node="node2", name="c"), req_pod(cm("3000", "5000"), node="node2", name="d")],
     DEFAULT, [30, 42]),
    ("resources requested, pods scheduled with resources", TWO_CONTAINERS, [N_10_20, N2_10_20],
     [req_pod(cm("3000", "0"), node="node1", name="a"), req_pod(cm("3000", "5000"), node="node2", name="b")],
     DEFAULT, [42, 55]),
    ("resources requested equal node capacity", req_pod(cm("2000", "4000"), cm("3000", "5000")),
     [make_node("node1", cm("5000", "10000")), make_node("node2", cm("10000", "9000"))], [], DEFAULT, [95, 75]),
    ("nothing scheduled, resources requested, differently sized nodes (weighted)", TWO_CONTAINERS,
     [N_4_10, N2_6_10], [], [{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}], [58, 50]),
    ("no resources requested, pods scheduled, nonzero request for resource",
     pod_from({"containers": [{"name": "container", "image": "i"}]}),
     [make_node("node1", cm("250m", "1000Mi")), make_node("node2", cm("250m", "1000Mi"))],
     [pod_from({"nodeName": "node1", "containers": [{"name": "container", "image": "i"}]}, "a"),
      pod_from({"nodeName": "node1", "containers": [{"name": "container", "image": "i"}]}, "b")],
     DEFAULT, [80, 30]),
    ("bypass extended resource if the pod does not request", TWO_CONTAINERS, [N_6_10, N2_6_10_EXT4], [],
     EXTENDED_SET, [50, 50]),
    ("honor extended resource if the pod request", EXT_POD, [N_6_10_EXT4, N2_6_10_EXT10], [], EXTENDED_SET,
     [50, 40]),
    ("if the node doesn't have a resource", req_pod(cm("3000", "4000"), node="node1"), [N_6_10, N2_6_10_EXT4], [],
     [{"name": EXTENDED_RES, "weight": 2}, *DEFAULT], [45, 45]),
]


@pytest.mark.parametrize(("pod", "nodes", "existing", "resources", "want"),
                         [pytest.param(*c[1:], id=c[0]) for c in MOST_CASES])
def test_most_allocated(pod: Any, nodes: list[Any], existing: list[Any], resources: list[dict[str, Any]],
                        want: list[int]) -> None:
    """MostAllocated favours full nodes (most_allocated_test TestMostAllocatedScoringStrategy)."""
    assert run_scores({"type": "MostAllocated", "resources": resources}, pod, nodes, existing) == want


RTCR_SHAPE_DOWN = {"shape": [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]}
RTCR_SHAPE_UP = {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}
FIT_SCORE_EXISTING = [req_pod(cm("2000", "4000"), node="node1", name="a"),
                      req_pod(cm("1000", "2000"), node="node2", name="b")]


@pytest.mark.parametrize("pre_score", [True, False], ids=["with PreScore", "if PreScore is not called"])
@pytest.mark.parametrize(
    ("strategy", "pod", "want"),
    [
        pytest.param({"type": "RequestedToCapacityRatio", "resources": DEFAULT, "requestedToCapacityRatio": RTCR_SHAPE_DOWN},
                     req_pod(cm("3000", "5000")), [10, 32], id="RequestedToCapacityRatio case1"),
        pytest.param({"type": "RequestedToCapacityRatio", "resources": DEFAULT, "requestedToCapacityRatio": RTCR_SHAPE_UP},
                     req_pod(cm("3000", "5000")), [95, 68], id="RequestedToCapacityRatio case2"),
        pytest.param({"type": "MostAllocated", "resources": DEFAULT}, req_pod(cm("1000", "2000")), [67, 36],
                     id="MostAllocated"),
        pytest.param({"type": "LeastAllocated", "resources": DEFAULT}, req_pod(cm("1000", "2000")), [32, 63],
                     id="LeastAllocated"),
    ],
)
def test_fit_score(strategy: dict[str, Any], pod: Any, want: list[int], pre_score: bool) -> None:
    """Each scoring strategy gives upstream's scores, with or without pre-score (fit_test TestFitScore)."""
    nodes = [N_4_10, N2_6_10]
    assert run_scores(strategy, pod, nodes, FIT_SCORE_EXISTING, pre_score=pre_score) == want


def test_default_strategy_is_least_allocated() -> None:
    """Without args the plugin scores LeastAllocated over cpu and memory with weight 1."""
    plugin = node_resources_fit.new({}, None)  # type: ignore[arg-type]
    assert plugin.args.strategy == "LeastAllocated"
    assert plugin.args.resources == (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))
    infos = node_infos([N_4_10, N2_6_10], FIT_SCORE_EXISTING)
    pod = req_pod(cm("1000", "2000"))
    assert [plugin.score(CycleState(), pod, ni)[0] for ni in infos] == [32, 63]


# ----- args -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"scoringStrategy": {"resources": [{"name": "memory", "weight": -1}, {"name": "cpu", "weight": 1}]}},
                     "scoringStrategy.resources[0].weight: Invalid value: -1", id="resource with negative weight"),
        pytest.param({"scoringStrategy": {"resources": [{"name": "memory", "weight": 1}, {"name": "cpu", "weight": 101}]}},
                     "scoringStrategy.resources[1].weight: Invalid value: 101", id="resource weight larger than MaxNodeScore"),
        pytest.param({"scoringStrategy": {"type": "Balanced"}}, 'scoringStrategy.type: Unsupported value: \'Balanced\'',
                     id="unknown strategy"),
        pytest.param({"scoringStrategy": {"type": "RequestedToCapacityRatio"}},
                     "shape: Required value: at least one point must be specified", id="ratio without shape"),
        pytest.param({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [
            {"utilization": 50, "score": 1}, {"utilization": 40, "score": 2}]}}},
                     "utilization values must be sorted in increasing order", id="shape not sorted"),
        pytest.param({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [
            {"utilization": 101, "score": 11}]}}}, "not in valid range [0, 100]", id="shape out of range"),
        pytest.param({"ignoredResourceGroups": ["example.com/foo"]}, "resource group name can't contain '/'",
                     id="ignored group with slash"),
        pytest.param({"ignoredResources": ["a/b/c"]}, "ignoredResources[0]: Invalid value", id="bad ignored resource"),
        pytest.param({"scoringStrategy": {"resources": [{"name": "cpu", "weight": "1"}]}}, "must be an integer",
                     id="weight not an integer"),
        pytest.param({"ignoreResources": ["x"]}, "unknown field(s) ignoreResources", id="unknown field"),
    ],
)
def test_invalid_args(args: dict[str, Any], message: str) -> None:
    """new() rejects bad args with a ValueError naming the field, as ValidateNodeResourcesFitArgs does."""
    with pytest.raises(ValueError, match="invalid NodeResourcesFit args") as exc:
        node_resources_fit.new(args, None)  # type: ignore[arg-type]
    assert message in str(exc.value)


def test_zero_weight_defaults_to_one() -> None:
    """v1 defaulting: a weight of 0 (or none) becomes 1, so upstream's "zero weight" config is accepted."""
    plugin = node_resources_fit.new(
        {"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "memory", "weight": 1}, {"name": "cpu"},
                                                                     {"name": "example.com/gpu", "weight": 0}]}},
        None,  # type: ignore[arg-type]
    )
    assert plugin.args.resources == (ResourceSpec("memory", 1), ResourceSpec("cpu", 1), ResourceSpec("example.com/gpu", 1))
    assert node_resources_fit.new({"scoringStrategy": {"resources": []}}, None).args.resources == (  # type: ignore[arg-type]
        ResourceSpec("cpu", 1), ResourceSpec("memory", 1))


def test_plugin_shape() -> None:
    """The module exposes NAME and a plugin with pre-filter, filter, pre-score and score."""
    plugin = node_resources_fit.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == node_resources_fit.NAME == "NodeResourcesFit"
    for proto in (PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
        assert isinstance(plugin, proto)
