"""PodTopologySpread plugin, ported from upstream's podtopologyspread filtering_test.go and scoring_test.go."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import (
    Code,
    CycleState,
    FilterPlugin,
    NormalizeScorePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Snapshot,
    Status,
)
from scheduler.nodeinfo import new_node_info, new_pod_info
from scheduler.plugins import pod_topology_spread
from scheduler.plugins.pod_topology_spread import (
    ERR_REASON_CONSTRAINTS_NOT_MATCH,
    ERR_REASON_NODE_LABEL_NOT_MATCH,
)

OK = Code.SUCCESS
UNSCHED = Code.UNSCHEDULABLE
UNRESOLVABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE
HOSTNAME = "kubernetes.io/hostname"
DNS, SA = "DoNotSchedule", "ScheduleAnyway"
FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
BAR = {"matchExpressions": [{"key": "bar", "operator": "Exists"}]}
UNSCHEDULABLE_TAINT = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]

_names = itertools.count()


# ----- builders ------------------------------------------------------------------------------


def spread(
    max_skew: int,
    key: str,
    when: str,
    selector: dict[str, Any] | None,
    *,
    min_domains: int | None = None,
    affinity_policy: str | None = None,
    taints_policy: str | None = None,
    match_label_keys: list[str] | None = None,
) -> dict[str, Any]:
    """A TopologySpreadConstraint (upstream's st.SpreadConstraint)."""
    c: dict[str, Any] = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when}
    if selector is not None:
        c["labelSelector"] = selector
    if min_domains is not None:
        c["minDomains"] = min_domains
    if affinity_policy is not None:
        c["nodeAffinityPolicy"] = affinity_policy
    if taints_policy is not None:
        c["nodeTaintsPolicy"] = taints_policy
    if match_label_keys is not None:
        c["matchLabelKeys"] = match_label_keys
    return c


def node_affinity(key: str, op: str, values: list[str]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]
            }
        }
    }


def pod(
    *labels: str,
    name: str = "",
    ns: str = "",
    node: str = "",
    constraints: tuple[dict[str, Any], ...] = (),
    node_selector: dict[str, str] | None = None,
    aff: dict[str, Any] | None = None,
    terminating: bool = False,
) -> Any:
    """A pod whose labels are `key` (value "") or `key=value`; unnamed pods get a unique name."""
    meta: dict[str, Any] = {
        "name": name or f"p-{next(_names)}",
        "namespace": ns,
        "labels": {k: v for k, _, v in (lbl.partition("=") for lbl in labels)},
    }
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec: dict[str, Any] = {"topologySpreadConstraints": list(constraints)}
    if node:
        spec["nodeName"] = node
    if node_selector:
        spec["nodeSelector"] = node_selector
    if aff:
        spec["affinity"] = aff
    return codec.from_dict({"metadata": meta, "spec": spec}, core_pb2.Pod)


def node(name: str, taints: list[dict[str, str]] | None = None, **labels: str) -> Any:
    """A node; label keys `zone`, `node`, `foo`, ... (`hostname=` becomes kubernetes.io/hostname)."""
    lbls = {(HOSTNAME if k == "hostname" else k): v for k, v in labels.items()}
    return codec.from_dict(
        {"metadata": {"name": name, "labels": lbls}, "spec": {"taints": taints or []}}, core_pb2.Node
    )


def on(node_name: str, *labels: str, ns: str = "", terminating: bool = False) -> Any:
    """An existing pod on `node_name`."""
    return pod(*labels, ns=ns, node=node_name, terminating=terminating)


class FakeHandle:
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot


def snapshot(pods: list[Any], nodes: list[Any]) -> Snapshot:
    by_node: dict[str, list[Any]] = defaultdict(list)
    for p in pods:
        by_node[p.spec.nodeName].append(p)
    return Snapshot(new_node_info(n, by_node[n.metadata.name]) for n in nodes)


def plugin(snap: Snapshot) -> Any:
    return pod_topology_spread.new({"defaultingType": "List"}, FakeHandle(snap))


def filter_codes(incoming: Any, pods: list[Any], nodes: list[Any]) -> dict[str, Code]:
    snap = snapshot(pods, nodes)
    p, state = plugin(snap), CycleState()
    _, status = p.pre_filter(state, incoming, snap.list())
    assert status.is_success(), status
    return {n.metadata.name: p.filter(state, incoming, snap.get(n.metadata.name)).code for n in nodes}


def pre_filter_state(incoming: Any, pods: list[Any], nodes: list[Any]) -> Any:
    snap = snapshot(pods, nodes)
    state = CycleState()
    assert plugin(snap).pre_filter(state, incoming, snap.list())[1].is_success()
    return state.read("PreFilterPodTopologySpread")


# The usual 2-zone, 4-node cluster of upstream's tests.
def four_nodes(**extra: dict[str, str]) -> list[Any]:
    zones = {"node-a": "zone1", "node-b": "zone1", "node-x": "zone2", "node-y": "zone2"}
    return [node(n, zone=z, node=n, **extra.get(n, {})) for n, z in zones.items()]


def codes(a: Code, b: Code, x: Code, y: Code) -> dict[str, Code]:
    return {"node-a": a, "node-b": b, "node-x": x, "node-y": y}


SPREAD_2103 = [
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-b", "foo"),
    on("node-y", "foo"),
    on("node-y", "foo"),
    on("node-y", "foo"),
]


# ----- pre-filter state (TestPreFilterState) ----------------------------------------------------

PRE_FILTER_CASES = [
    pytest.param(
        pod("foo", constraints=(spread(5, "zone", DNS, {"matchLabels": {"foo": "bar"}}),)),
        [],
        four_nodes(),
        [{"zone1": 0, "zone2": 0}],
        [0],
        id="clean cluster with one spreadConstraint",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        [
            on("node-a", "foo"),
            on("node-a", "foo"),
            on("node-b", "foo"),
            on("node-y", "foo"),
            on("node-y", "foo"),
        ],
        four_nodes(),
        [{"zone1": 3, "zone2": 2}],
        [2],
        id="normal case with one spreadConstraint",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, None),)),
        [
            on("node-a", "foo"),
            on("node-a", "foo"),
            on("node-b", "foo"),
            on("node-y", "foo"),
            on("node-y", "foo"),
        ],
        four_nodes(),
        [{"zone1": 0, "zone2": 0}],
        [0],
        id="normal case with null label selector",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        [
            on("node-a", "foo"),
            on("node-a", "foo"),
            on("node-b", "foo"),
            on("node-y", "foo"),
            on("node-y", "foo"),
        ],
        [
            *four_nodes(),
            node("node-o", zone="zone3", node="node-o"),
            node("node-p", zone="zone3", node="node-p"),
        ],
        [{"zone1": 3, "zone2": 2, "zone3": 0}],
        [0],
        id="normal case with one spreadConstraint, on a 3-zone cluster",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        [
            on("node-a", "foo"),
            on("node-a", "foo", ns="ns1"),
            on("node-b", "foo"),
            on("node-y", "foo", ns="ns2"),
            on("node-y", "foo"),
        ],
        four_nodes(),
        [{"zone1": 2, "zone2": 1}],
        [1],
        id="namespace mismatch doesn't count",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO), spread(1, "node", DNS, FOO))),
        [*SPREAD_2103, on("node-y", "foo")],
        four_nodes(),
        [{"zone1": 3, "zone2": 4}, {"node-a": 2, "node-b": 1, "node-x": 0, "node-y": 4}],
        [3, 0],
        id="normal case with two spreadConstraints",
    ),
    pytest.param(
        pod(
            "foo",
            constraints=(
                spread(1, "zone", SA, FOO),
                spread(1, "zone", DNS, FOO),
                spread(1, "node", SA, FOO),
                spread(1, "node", DNS, FOO),
            ),
        ),
        [*SPREAD_2103, on("node-y", "foo")],
        [
            node("node-a", zone="zone1", node="node-a"),
            node("node-b", zone="zone1", node="node-b"),
            node("node-y", zone="zone2", node="node-y"),
        ],
        [{"zone1": 3, "zone2": 4}, {"node-a": 2, "node-b": 1, "node-y": 4}],
        [3, 1],
        id="soft spreadConstraints should be bypassed",
    ),
]


@pytest.mark.parametrize(("incoming", "pods", "nodes", "want_counts", "want_min"), PRE_FILTER_CASES)
def test_pre_filter_state(
    incoming: Any, pods: list[Any], nodes: list[Any], want_counts: list[dict[str, int]], want_min: list[int]
) -> None:
    """Pre-filter counts matching pods per domain of each DoNotSchedule constraint and keeps the minimum."""
    s = pre_filter_state(incoming, pods, nodes)
    assert s.counts == want_counts
    assert s.minimum == want_min


def test_pod_without_hard_constraints_skips_pre_filter() -> None:
    """A pod with only ScheduleAnyway constraints (or none) makes pre-filter return Skip."""
    snap = snapshot([], four_nodes())
    for incoming in (pod("foo"), pod("foo", constraints=(spread(1, "zone", SA, FOO),))):
        assert plugin(snap).pre_filter(CycleState(), incoming, snap.list())[1] == Status.skip()


# ----- filter: one constraint (TestSingleConstraint) -------------------------------------------

_NODE_ONLY = [node("node-a", node="node-a"), node("node-b", node="node-b"), node("node-c", node="node-c")]
_SPREAD_221 = [
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-b", "foo"),
    on("node-b", "foo"),
    on("node-c", "foo"),
]
_ZONE_21 = [on("node-a", "foo"), on("node-b", "foo"), on("node-y", "foo")]
_FOO_NODES = four_nodes(**{n: {"foo": ""} for n in ("node-a", "node-b", "node-x")})
_FOO_NODES_ONLY = [
    node("node-a", node="node-a", foo=""),
    node("node-b", node="node-b", foo=""),
    node("node-x", node="node-x", foo=""),
    node("node-y", node="node-y"),
]
_TAINTED_Y = [
    node("node-a", node="node-a", foo=""),
    node("node-b", node="node-b", foo=""),
    node("node-x", node="node-x", foo=""),
    node("node-y", taints=UNSCHEDULABLE_TAINT, node="node-y"),
]
_POLICY_PODS = [on("node-a", "foo"), on("node-b", "foo"), on("node-y", "foo")]

SINGLE_CASES = [
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        [],
        four_nodes(),
        codes(OK, OK, OK, OK),
        id="no existing pods",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, BAR),)),
        [],
        four_nodes(),
        codes(OK, OK, OK, OK),
        id="no existing pods, incoming pod doesn't match itself",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        [
            on("node-a", "foo", ns="ns1"),
            on("node-a", "foo", ns="ns2"),
            on("node-x", "foo"),
            on("node-y", "foo"),
        ],
        four_nodes(),
        codes(OK, OK, UNSCHED, UNSCHED),
        id="existing pods in a different namespace do not count",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, None),)),
        [on("node-x", "foo"), on("node-y", "foo")],
        four_nodes(),
        codes(OK, OK, OK, OK),
        id="existing pods do not match null selector",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        SPREAD_2103,
        four_nodes(),
        codes(OK, OK, OK, OK),
        id="pods spread across zones as 3/3, all nodes fit",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        [on("node-a", "foo"), on("node-b", "foo"), on("node-x", "foo"), on("node-y", "foo")],
        [
            node("node-a", zone="zone1", node="node-a"),
            node("node-b", zon="zone1", node="node-b"),
            node("node-x", zone="zone2", node="node-x"),
            node("node-y", zone="zone2", node="node-y"),
        ],
        codes(OK, UNRESOLVABLE, UNSCHED, UNSCHED),
        id="pods spread across zones as 1/2 due to absence of label 'zone' on node-b",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "rack", DNS, FOO),)),
        [],
        [node("node-a", zone="zone1", node="node-a"), node("node-x", zone="zone2", node="node-x")],
        {"node-a": UNRESOLVABLE, "node-x": UNRESOLVABLE},
        id="all nodes lack the topology key 'rack'",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", DNS, FOO),)),
        SPREAD_2103,
        four_nodes(),
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="pods spread across nodes as 2/1/0/3, only node-x fits",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, "node", DNS, FOO),)),
        SPREAD_2103,
        four_nodes(),
        codes(UNSCHED, OK, OK, UNSCHED),
        id="pods spread across nodes as 2/1/0/3, maxSkew is 2",
    ),
    pytest.param(
        pod("bar", constraints=(spread(1, "node", DNS, FOO),)),
        SPREAD_2103,
        four_nodes(),
        codes(UNSCHED, OK, OK, UNSCHED),
        id="pods spread across nodes as 2/1/0/3, pod doesn't match itself",
    ),
    pytest.param(
        pod(
            "foo",
            aff=node_affinity("node", "In", ["node-a", "node-y"]),
            constraints=(spread(1, "node", DNS, FOO),),
        ),
        SPREAD_2103,
        four_nodes(),
        codes(OK, OK, OK, UNSCHED),
        id="nodeAffinity leaves 2/~1~/~0~/3, hence node-a fits",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", DNS, FOO),)),
        [on("node-a", "foo", terminating=True), on("node-b", "foo")],
        [node("node-a", node="node-a"), node("node-b", node="node-b")],
        {"node-a": OK, "node-b": UNSCHED},
        id="terminating pods are excluded",
    ),
    pytest.param(
        pod(
            "foo", aff=node_affinity("node", "NotIn", ["node-b"]), constraints=(spread(1, "zone", DNS, FOO),)
        ),
        [on("node-b", "foo"), on("node-b", "foo"), on("node-y", "foo")],
        four_nodes(),
        codes(OK, OK, UNSCHED, UNSCHED),
        id="nodeAffinity leaves 0/~2~/0/1, hence node-a fits",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, "node", DNS, FOO, min_domains=4),)),
        _SPREAD_221,
        _NODE_ONLY,
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-c": OK},
        id="2/2/1 with maxSkew 2 and fewer domains than minDomains: only the third node fits",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, "node", DNS, FOO, min_domains=2),)),
        _SPREAD_221,
        _NODE_ONLY,
        {"node-a": OK, "node-b": OK, "node-c": OK},
        id="2/2/1 with maxSkew 2 and more domains than minDomains: all nodes fit",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, "zone", DNS, FOO, min_domains=3),)),
        _ZONE_21,
        four_nodes(),
        codes(UNSCHED, UNSCHED, OK, OK),
        id="zones 2/1 with maxSkew 2 and fewer domains than minDomains: zone2 fits",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, "zone", DNS, FOO, min_domains=1),)),
        _ZONE_21,
        four_nodes(),
        codes(OK, OK, OK, OK),
        id="zones 2/1 with maxSkew 2 and more domains than minDomains: all fit",
    ),
    pytest.param(
        pod("foo", node_selector={"foo": ""}, constraints=(spread(1, "node", DNS, FOO),)),
        _POLICY_PODS,
        _FOO_NODES_ONLY,
        codes(UNSCHED, UNSCHED, OK, OK),
        id="NodeAffinityPolicy honored with nodeSelector",
    ),
    pytest.param(
        pod(
            "foo",
            node_selector={"foo": ""},
            constraints=(spread(1, "node", DNS, FOO, affinity_policy="Ignore"),),
        ),
        _POLICY_PODS,
        _FOO_NODES_ONLY,
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="NodeAffinityPolicy ignored with nodeSelector",
    ),
    pytest.param(
        pod("foo", aff=node_affinity("foo", "In", [""]), constraints=(spread(1, "node", DNS, FOO),)),
        _POLICY_PODS,
        _FOO_NODES_ONLY,
        codes(UNSCHED, UNSCHED, OK, OK),
        id="NodeAffinityPolicy honored with nodeAffinity",
    ),
    pytest.param(
        pod(
            "foo",
            aff=node_affinity("foo", "In", [""]),
            constraints=(spread(1, "node", DNS, FOO, affinity_policy="Ignore"),),
        ),
        _POLICY_PODS,
        _FOO_NODES_ONLY,
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="NodeAffinityPolicy ignored with nodeAffinity",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", DNS, FOO, taints_policy="Honor"),)),
        _POLICY_PODS,
        _TAINTED_Y,
        codes(UNSCHED, UNSCHED, OK, OK),
        id="NodeTaintsPolicy honored",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", DNS, FOO),)),
        _POLICY_PODS,
        _TAINTED_Y,
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="NodeTaintsPolicy ignored by default",
    ),
]


@pytest.mark.parametrize(("incoming", "pods", "nodes", "want"), SINGLE_CASES)
def test_single_constraint(incoming: Any, pods: list[Any], nodes: list[Any], want: dict[str, Code]) -> None:
    """Filter with one DoNotSchedule constraint gives upstream's per-node status codes."""
    assert filter_codes(incoming, pods, nodes) == want


# ----- filter: several constraints (TestMultipleConstraints) -----------------------------------

ZONE_AND_NODE = (spread(1, "zone", DNS, FOO), spread(1, "node", DNS, FOO))
ZONE_FOO_NODE_BAR = (spread(1, "zone", DNS, FOO), spread(1, "node", DNS, BAR))

MULTIPLE_CASES = [
    pytest.param(
        pod("foo", constraints=ZONE_AND_NODE),
        SPREAD_2103,
        four_nodes(),
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="two constraints on zone and node, spreads = [3/3, 2/1/0/3]",
    ),
    pytest.param(
        pod("foo", constraints=ZONE_AND_NODE),
        [*SPREAD_2103, on("node-y", "foo")],
        four_nodes(),
        codes(UNSCHED, UNSCHED, UNSCHED, UNSCHED),
        id="two constraints on zone and node, spreads = [3/4, 2/1/0/4]",
    ),
    pytest.param(
        pod("foo", "bar", constraints=ZONE_FOO_NODE_BAR),
        [on("node-a", "foo"), on("node-y", "bar")],
        four_nodes(),
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="constraints with different selectors, spreads = [1/0, 1/0/0/1]",
    ),
    pytest.param(
        pod("foo", "bar", constraints=ZONE_FOO_NODE_BAR),
        [on("node-a", "foo"), on("node-x", "bar"), on("node-y", "bar")],
        four_nodes(),
        codes(UNSCHED, UNSCHED, UNSCHED, UNSCHED),
        id="constraints with different selectors, spreads = [1/0, 0/0/1/1]",
    ),
    pytest.param(
        pod("foo", "bar", constraints=ZONE_FOO_NODE_BAR),
        [
            on("node-a", "foo"),
            on("node-a", "foo", "bar"),
            on("node-y", "foo"),
            on("node-y", "foo", "bar"),
            on("node-y", "foo"),
        ],
        four_nodes(),
        codes(UNSCHED, OK, UNSCHED, UNSCHED),
        id="constraints with different selectors, spreads = [2/3, 1/0/0/1]",
    ),
    pytest.param(
        pod("bar", constraints=ZONE_FOO_NODE_BAR),
        [on("node-a", "foo"), on("node-x", "bar"), on("node-y", "bar")],
        four_nodes(),
        codes(OK, OK, UNSCHED, UNSCHED),
        id="constraints with different selectors, pod doesn't match itself on zone",
    ),
    pytest.param(
        pod("foo", constraints=ZONE_AND_NODE),
        [on("node-a", "foo"), on("node-y", "foo")],
        [
            node("node-a", zone="zone1", node="node-a"),
            node("node-b", zone="zone1", node="node-b"),
            node("node-x", zone="zone2"),
            node("node-y", zone="zone2", node="node-y"),
        ],
        codes(UNSCHED, OK, UNRESOLVABLE, UNSCHED),
        id="two constraints, node-x lacks label 'node', spreads = [1/1, 1/0/0/1]",
    ),
    pytest.param(
        pod(
            "foo",
            node_selector={"foo": ""},
            constraints=(spread(1, "zone", DNS, FOO), spread(1, "node", DNS, FOO, affinity_policy="Ignore")),
        ),
        _POLICY_PODS,
        _FOO_NODES,
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="node inclusion, zone: honor/ignore, node: ignore/ignore",
    ),
    pytest.param(
        pod(
            "foo",
            constraints=(spread(1, "zone", DNS, FOO, taints_policy="Honor"), spread(1, "node", DNS, FOO)),
        ),
        _POLICY_PODS,
        [
            node("node-a", zone="zone1", node="node-a", foo=""),
            node("node-b", zone="zone1", node="node-b", foo=""),
            node("node-x", zone="zone2", node="node-x", foo=""),
            node("node-y", taints=UNSCHEDULABLE_TAINT, zone="zone2", node="node-y"),
        ],
        codes(UNSCHED, UNSCHED, OK, UNSCHED),
        id="node inclusion, zone: honor/honor, node: honor/ignore",
    ),
    pytest.param(
        pod("foo", node_selector={"foo": ""}, constraints=ZONE_AND_NODE),
        _POLICY_PODS,
        [
            node("node-a", zone="zone1", node="node-a", foo=""),
            node("node-b", zone="zone1", node="node-b"),
            node("node-x", zone="zone2", node="node-x", foo=""),
            node("node-y", taints=UNSCHEDULABLE_TAINT, zone="zone2", node="node-y", foo=""),
        ],
        codes(UNSCHED, OK, OK, UNSCHED),
        id="node inclusion, zone: honor/ignore, node: honor/ignore",
    ),
]


@pytest.mark.parametrize(("incoming", "pods", "nodes", "want"), MULTIPLE_CASES)
def test_multiple_constraints(
    incoming: Any, pods: list[Any], nodes: list[Any], want: dict[str, Code]
) -> None:
    """Filter with several DoNotSchedule constraints requires every one of them."""
    assert filter_codes(incoming, pods, nodes) == want


def test_empty_selector_counts_no_existing_pods() -> None:
    """As upstream, an empty labelSelector ({}) counts no existing pods, though the pod matches itself."""
    nodes = [node("node-a", node="node-a"), node("node-b", node="node-b")]
    incoming = pod("foo", constraints=(spread(1, "node", DNS, {}),))
    assert filter_codes(incoming, [on("node-a", "foo"), on("node-a", "foo")], nodes) == {
        "node-a": OK,
        "node-b": OK,
    }
    assert pre_filter_state(incoming, [on("node-a", "foo")], nodes).self_match == [1]


def test_filter_reasons() -> None:
    """Rejections carry upstream's reasons: a missing topology key, or skew above maxSkew."""
    nodes = [node("node-a", node="node-a"), node("node-b")]
    snap = snapshot([on("node-a", "foo")], nodes)
    incoming = pod("foo", constraints=(spread(1, "node", DNS, FOO, min_domains=2),))
    p, state = plugin(snap), CycleState()
    p.pre_filter(state, incoming, snap.list())
    assert p.filter(state, incoming, snap.get("node-a")) == Status.unschedulable(
        ERR_REASON_CONSTRAINTS_NOT_MATCH
    )
    assert p.filter(state, incoming, snap.get("node-b")) == Status.unresolvable(
        ERR_REASON_NODE_LABEL_NOT_MATCH
    )
    assert (
        ERR_REASON_NODE_LABEL_NOT_MATCH
        == "node(s) didn't match pod topology spread constraints (missing required label)"
    )


def test_filter_without_pre_filter_is_an_error() -> None:
    """Filter without its pre-filter state reports an internal error."""
    snap = snapshot([], four_nodes())
    status = plugin(snap).filter(CycleState(), pod("foo"), snap.get("node-a"))
    assert status.code == Code.ERROR


# ----- add / remove pod (preemption) ----------------------------------------------------------

ADD_REMOVE_CASES = [
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        SPREAD_2103,
        on("node-x", "foo"),
        four_nodes(),
        id="add a matching pod to a zone",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", DNS, FOO),)),
        SPREAD_2103,
        on("node-x", "foo"),
        four_nodes(),
        id="add a pod to the only node at the minimum: the minimum moves up",
    ),
    pytest.param(
        pod("foo", constraints=ZONE_AND_NODE),
        SPREAD_2103,
        on("node-b", "foo"),
        four_nodes(),
        id="add a pod under two constraints",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        SPREAD_2103,
        on("node-x", "foo", ns="ns1"),
        four_nodes(),
        id="a pod in another namespace changes nothing",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", DNS, FOO),)),
        SPREAD_2103,
        on("node-x", "bar"),
        four_nodes(),
        id="a pod not matching the selector changes nothing",
    ),
    pytest.param(
        pod(
            "foo", aff=node_affinity("node", "NotIn", ["node-x"]), constraints=(spread(1, "zone", DNS, FOO),)
        ),
        SPREAD_2103,
        on("node-x", "foo"),
        four_nodes(),
        id="a pod on a node failing the pod's node affinity",
    ),
]


def _comparable(s: Any) -> tuple[Any, ...]:
    return s.counts, s.minimum, [+h for h in s.domains_at_count]


@pytest.mark.parametrize(("incoming", "existing", "changed", "nodes"), ADD_REMOVE_CASES)
def test_add_and_remove_pod(incoming: Any, existing: list[Any], changed: Any, nodes: list[Any]) -> None:
    """add_pod yields the state pre-filter computes with the pod present, remove_pod the state without it."""
    without = pre_filter_state(incoming, existing, nodes)
    with_pod = pre_filter_state(incoming, [*existing, changed], nodes)
    node_name = changed.spec.nodeName

    snap = snapshot(existing, nodes)
    p, state = plugin(snap), CycleState()
    p.pre_filter(state, incoming, snap.list())
    assert p.add_pod(state, incoming, new_pod_info(changed), snap.get(node_name)).is_success()
    assert _comparable(state.read("PreFilterPodTopologySpread")) == _comparable(with_pod)

    snap = snapshot([*existing, changed], nodes)
    state = CycleState()
    p = plugin(snap)
    p.pre_filter(state, incoming, snap.list())
    cloned = state.clone()
    assert p.remove_pod(state, incoming, new_pod_info(changed), snap.get(node_name)).is_success()
    assert _comparable(state.read("PreFilterPodTopologySpread")) == _comparable(without)
    assert _comparable(cloned.read("PreFilterPodTopologySpread")) == _comparable(with_pod), (
        "clone is independent"
    )


def test_remove_pod_lowers_the_minimum() -> None:
    """Removing a pod from the domain at the minimum lowers the minimum, which filter then uses."""
    nodes = [node("node-a", node="node-a"), node("node-b", node="node-b")]
    existing = [on("node-a", "foo"), on("node-a", "foo"), on("node-b", "foo")]
    incoming = pod("foo", constraints=(spread(1, "node", DNS, FOO),))
    snap = snapshot(existing, nodes)
    p, state = plugin(snap), CycleState()
    p.pre_filter(state, incoming, snap.list())
    assert p.filter(state, incoming, snap.get("node-a")).code == UNSCHED  # 2 + 1 - 1 = 2 > 1
    p.remove_pod(state, incoming, new_pod_info(existing[2]), snap.get("node-b"))
    assert state.read("PreFilterPodTopologySpread").minimum == [0]
    assert p.filter(state, incoming, snap.get("node-b")).code == OK


# ----- score (TestPodTopologySpreadScore) -----------------------------------------------------

H = HOSTNAME


def host(name: str, **labels: str) -> Any:
    return node(name, hostname=name, **labels)


def hosts(*names: str) -> list[Any]:
    return [host(n) for n in names]


_HOST_2103 = [
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-b", "foo"),
    on("node-d", "foo"),
    on("node-d", "foo"),
    on("node-d", "foo"),
]
_HOST_4321 = [
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-b", "foo"),
    on("node-b", "foo"),
    on("node-b", "foo"),
    on("node-c", "foo"),
    on("node-c", "foo"),
    on("node-d", "foo"),
]
_SCORE_4213 = [
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-a", "foo"),
    on("node-b", "foo"),
    on("node-b", "foo"),
    on("node-x", "foo"),
    on("node-y", "foo"),
    on("node-y", "foo"),
    on("node-y", "foo"),
]
_ZONE_HOSTS = [
    host("node-a", zone="zone1"),
    host("node-b", zone="zone1"),
    host("node-x", zone="zone2"),
    host("node-y", zone="zone2"),
]
_SELECTORS_PODS = [on("node-a", "foo"), on("node-b", "foo", "bar"), on("node-y", "foo"), on("node-y", "bar")]
_POLICY_SCORE_PODS = [on("node-a", "foo"), on("node-a", "foo"), on("node-b", "foo"), on("node-c", "foo")]
_NODE_ABC_FOO = [
    node("node-a", node="node-a", foo=""),
    node("node-b", node="node-b", foo=""),
    node("node-c", node="node-c"),
]
_MLK_NODES = [
    host("node-a", zone="zone1"),
    host("node-b", zone="zone1"),
    host("node-c", zone="zone2"),
    host("node-d", zone="zone2"),
]


def _abcd(a: int, b: int, c: int, d: int) -> dict[str, int]:
    return {"node-a": a, "node-b": b, "node-c": c, "node-d": d}


SCORE_CASES = [
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        [],
        hosts("node-a", "node-b"),
        [],
        {"node-a": 100, "node-b": 100},
        id="one constraint on node, no existing pods",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        [on("node-a", "foo"), on("node-a", "foo"), on("node-b", "foo")],
        hosts("node-a"),
        hosts("node-b"),
        {"node-a": 100},
        id="one constraint on node, only one node is candidate",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        [on("node-a", "foo"), on("node-b", "foo")],
        hosts("node-a", "node-b"),
        [],
        {"node-a": 100, "node-b": 100},
        id="one constraint on node, all nodes have the same number of matching pods",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        _HOST_2103,
        hosts("node-a", "node-b", "node-c", "node-d"),
        [],
        _abcd(20, 60, 100, 0),
        id="one constraint on node, all 4 nodes are candidates",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, None),)),
        _HOST_2103,
        hosts("node-a", "node-b", "node-c", "node-d"),
        [],
        _abcd(100, 100, 100, 100),
        id="one constraint on node, null selector",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, H, SA, FOO),)),
        _HOST_2103,
        hosts("node-a", "node-b", "node-c", "node-d"),
        [],
        _abcd(33, 66, 100, 16),
        id="one constraint on node, all 4 nodes are candidates, maxSkew=2",
    ),
    pytest.param(
        pod("foo", constraints=(spread(3, H, SA, FOO),)),
        _HOST_4321,
        hosts("node-a", "node-b", "node-c", "node-d"),
        [],
        _abcd(44, 66, 77, 100),
        id="one constraint on node, all 4 nodes are candidates, maxSkew=3",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        _SCORE_4213,
        hosts("node-a", "node-b", "node-x"),
        hosts("node-y"),
        {"node-a": 33, "node-b": 83, "node-x": 100},
        id="one constraint on node, 3 out of 4 nodes are candidates",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        _SCORE_4213,
        [host("node-a"), node("node-b", n="node-b"), host("node-x")],
        hosts("node-y"),
        {"node-a": 16, "node-b": 0, "node-x": 100},
        id="one constraint on node, 3 out of 4 candidates, one lacks the topology key",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", SA, FOO),)),
        _SCORE_4213,
        _ZONE_HOSTS[:3],
        _ZONE_HOSTS[3:],
        {"node-a": 75, "node-b": 75, "node-x": 100},
        id="one constraint on zone, 3 out of 4 nodes are candidates",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "zone", SA, FOO), spread(1, H, SA, FOO))),
        [
            on("node-a", "foo"),
            on("node-a", "foo"),
            on("node-b", "foo"),
            on("node-x", "foo"),
            on("node-x", "foo"),
            on("node-y", "foo"),
            on("node-y", "foo"),
            on("node-y", "foo"),
            on("node-y", "foo"),
        ],
        [_ZONE_HOSTS[0], _ZONE_HOSTS[2]],
        [_ZONE_HOSTS[1], _ZONE_HOSTS[3]],
        {"node-a": 100, "node-x": 63},
        id="two constraints on zone and node, 2 out of 4 nodes are candidates",
    ),
    pytest.param(
        pod("foo", "bar", constraints=(spread(1, "zone", SA, FOO), spread(1, H, SA, BAR))),
        _SELECTORS_PODS,
        _ZONE_HOSTS,
        [],
        {"node-a": 60, "node-b": 20, "node-x": 100, "node-y": 60},
        id="two constraints on zone and node, with different selectors",
    ),
    pytest.param(
        pod("foo", "bar", constraints=(spread(1, "zone", SA, FOO), spread(1, H, SA, BAR))),
        [on("node-b", "bar"), on("node-x", "foo"), on("node-y", "foo", "bar")],
        _ZONE_HOSTS,
        [],
        {"node-a": 100, "node-b": 60, "node-x": 40, "node-y": 0},
        id="two constraints with different selectors, some nodes have 0 pods",
    ),
    pytest.param(
        pod("foo", "bar", constraints=(spread(1, "zone", SA, FOO), spread(1, H, SA, BAR))),
        _SELECTORS_PODS,
        _ZONE_HOSTS[:3],
        _ZONE_HOSTS[3:],
        {"node-a": 50, "node-b": 25, "node-x": 100},
        id="two constraints with different selectors, 3 out of 4 nodes are candidates",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        [on("node-a", "foo", ns="ns1"), on("node-a", "foo"), on("node-b", "foo"), on("node-b", "foo")],
        hosts("node-a", "node-b"),
        [],
        {"node-a": 100, "node-b": 33},
        id="existing pods in a different namespace do not count",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, H, SA, FOO),)),
        [on("node-a", "foo", terminating=True), on("node-b", "foo")],
        hosts("node-a", "node-b"),
        [],
        {"node-a": 100, "node-b": 0},
        id="terminating pods are excluded",
    ),
    pytest.param(
        pod("foo", constraints=(spread(2, "node", SA, FOO, min_domains=10),)),
        _SPREAD_221,
        _NODE_ONLY,
        [],
        {"node-a": 75, "node-b": 75, "node-c": 100},
        id="minDomains has no effect when ScheduleAnyway",
    ),
    pytest.param(
        pod("foo", node_selector={"foo": ""}, constraints=(spread(1, "node", SA, FOO),)),
        _POLICY_SCORE_PODS,
        _NODE_ABC_FOO,
        [],
        {"node-a": 0, "node-b": 33, "node-c": 100},
        id="NodeAffinityPolicy honored with nodeSelector",
    ),
    pytest.param(
        pod(
            "foo",
            node_selector={"foo": ""},
            constraints=(spread(1, "node", SA, FOO, affinity_policy="Ignore"),),
        ),
        _POLICY_SCORE_PODS,
        _NODE_ABC_FOO,
        [],
        {"node-a": 66, "node-b": 100, "node-c": 100},
        id="NodeAffinityPolicy ignored with nodeSelector",
    ),
    pytest.param(
        pod("foo", aff=node_affinity("foo", "In", [""]), constraints=(spread(1, "node", SA, FOO),)),
        _POLICY_SCORE_PODS,
        _NODE_ABC_FOO,
        [],
        {"node-a": 0, "node-b": 33, "node-c": 100},
        id="NodeAffinityPolicy honored with nodeAffinity",
    ),
    pytest.param(
        pod(
            "foo",
            aff=node_affinity("foo", "In", [""]),
            constraints=(spread(1, "node", SA, FOO, affinity_policy="Ignore"),),
        ),
        _POLICY_SCORE_PODS,
        _NODE_ABC_FOO,
        [],
        {"node-a": 66, "node-b": 100, "node-c": 100},
        id="NodeAffinityPolicy ignored with nodeAffinity",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", SA, FOO, taints_policy="Honor"),)),
        _POLICY_SCORE_PODS,
        [
            node("node-a", node="node-a"),
            node("node-b", node="node-b"),
            node("node-c", taints=UNSCHEDULABLE_TAINT, node="node-c"),
        ],
        [],
        {"node-a": 0, "node-b": 33, "node-c": 100},
        id="NodeTaintsPolicy honored",
    ),
    pytest.param(
        pod("foo", constraints=(spread(1, "node", SA, FOO),)),
        _POLICY_SCORE_PODS,
        [
            node("node-a", node="node-a"),
            node("node-b", node="node-b"),
            node("node-c", taints=UNSCHEDULABLE_TAINT, node="node-c"),
        ],
        [],
        {"node-a": 66, "node-b": 100, "node-c": 100},
        id="NodeTaintsPolicy ignored by default",
    ),
    pytest.param(
        pod(
            "foo",
            "bar",
            constraints=(
                spread(1, "zone", SA, {}, match_label_keys=["foo"]),
                spread(1, H, SA, {}, match_label_keys=["bar"]),
            ),
        ),
        [on("node-a", "foo"), on("node-b", "foo", "bar"), on("node-c", "foo"), on("node-c", "bar")],
        _MLK_NODES,
        [],
        _abcd(60, 20, 60, 100),
        id="matchLabelKeys ANDed with an empty labelSelector",
    ),
    pytest.param(
        pod(
            "foo",
            "bar",
            "baz",
            constraints=(spread(1, "zone", SA, FOO), spread(1, H, SA, BAR, match_label_keys=["baz"])),
        ),
        [
            on("node-a", "foo"),
            on("node-b", "foo", "bar", "baz"),
            on("node-c", "foo"),
            on("node-c", "bar"),
            on("node-c", "bar", "baz"),
        ],
        _MLK_NODES,
        [],
        _abcd(60, 20, 60, 100),
        id="matchLabelKeys ANDed with a non-empty labelSelector",
    ),
]


@pytest.mark.parametrize(("incoming", "pods", "nodes", "failed_nodes", "want"), SCORE_CASES)
def test_pod_topology_spread_score(
    incoming: Any, pods: list[Any], nodes: list[Any], failed_nodes: list[Any], want: dict[str, int]
) -> None:
    """Pre-score, score and normalize over the candidate nodes give upstream's scores."""
    snap = snapshot(pods, [*nodes, *failed_nodes])
    p, state = plugin(snap), CycleState()
    candidates = [snap.get(n.metadata.name) for n in nodes]
    assert p.pre_score(state, incoming, candidates).is_success()
    scores = {}
    for ni in candidates:
        score, status = p.score(state, incoming, ni)
        assert status.is_success()
        scores[ni.name] = score
    assert p.normalize_score(state, incoming, scores).is_success()
    assert scores == want


def test_pre_score_skips_without_soft_constraints() -> None:
    """A pod without ScheduleAnyway constraints, or an empty cluster, makes pre-score return Skip."""
    snap = snapshot([], hosts("node-a", "node-b"))
    for incoming in (pod(), pod("foo", constraints=(spread(1, H, DNS, FOO),))):
        assert plugin(snap).pre_score(CycleState(), incoming, snap.list()) == Status.skip()
    empty = snapshot([], [])
    assert (
        plugin(empty).pre_score(CycleState(), pod("foo", constraints=(spread(1, H, SA, FOO),)), [])
        == Status.skip()
    )


# ----- plugin surface ------------------------------------------------------------------------


def test_plugin_implements_its_extension_points() -> None:
    """The plugin is a pre-filter, filter, pre-score, score and normalize-score plugin named PodTopologySpread."""
    p = plugin(snapshot([], []))
    assert p.NAME == "PodTopologySpread"
    for protocol in (PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, NormalizeScorePlugin):
        assert isinstance(p, protocol)


def test_invalid_selector_is_an_error() -> None:
    """A constraint whose labelSelector does not parse fails pre-filter with an Error."""
    bad = {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["{{.bad}}"]}]}
    snap = snapshot([], four_nodes())
    _, status = plugin(snap).pre_filter(
        CycleState(), pod("foo", constraints=(spread(1, "zone", DNS, bad),)), snap.list()
    )
    assert status.code == Code.ERROR
    assert "hard topology spread constraints" in status.message()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"defaultingType": "Sometimes"}, "defaultingType: Unsupported value", id="unknown defaulting type"
        ),
        pytest.param(
            {"defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": SA}]},
            "not supported yet",
            id="default constraints",
        ),
        pytest.param({"defaultConstraints": "zone"}, "must be a list", id="default constraints not a list"),
        pytest.param({"maxSkew": 1}, "unknown field(s) maxSkew", id="unknown field"),
    ],
)
def test_new_rejects_invalid_args(args: dict[str, Any], message: str) -> None:
    """new() validates its args and says what is wrong."""
    with pytest.raises(ValueError) as info:
        pod_topology_spread.new(args, FakeHandle(snapshot([], [])))
    assert message in str(info.value)


def test_new_accepts_both_defaulting_types() -> None:
    """defaultingType System and List are both accepted (neither adds constraints yet)."""
    for defaulting in ("System", "List"):
        assert (
            pod_topology_spread.new({"defaultingType": defaulting}, FakeHandle(snapshot([], []))).NAME
            == "PodTopologySpread"
        )
