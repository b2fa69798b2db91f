"""InterPodAffinity plugin, ported from upstream's interpodaffinity filtering_test.go and scoring_test.go."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import (
    MAX_NODE_SCORE,
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
from scheduler.plugins import inter_pod_affinity
from scheduler.plugins.inter_pod_affinity import (
    ERR_REASON_AFFINITY_RULES_NOT_MATCH,
    ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
    ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
)

OK = Status.success()
SKIP = Status.skip()
AFFINITY = Status.unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH)
ANTI = Status.unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH)
EXISTING = Status.unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH)

# upstream's `namespaces` informer objects, as namespace -> labels
NAMESPACE_LABELS = {
    "subteam1.team1": {"team": "team1"},
    "subteam2.team1": {"team": "team1"},
    "subteam1.team2": {"team": "team2"},
    "subteam2.team2": {"team": "team2"},
}

_names = itertools.count()


# ----- builders ------------------------------------------------------------------------------


def term(key: str, op: str, values: list[str] | None, topology: str, **extra: Any) -> dict[str, Any]:
    """A PodAffinityTerm with one matchExpression (upstream's st.PodAffinityIn/NotIn/Exists)."""
    expr: dict[str, Any] = {"key": key, "operator": op}
    if values is not None:
        expr["values"] = values
    return {"labelSelector": {"matchExpressions": [expr]}, "topologyKey": topology, **extra}


def term_in(key: str, values: list[str], topology: str, **extra: Any) -> dict[str, Any]:
    return term(key, "In", values, topology, **extra)


def term_not_in(key: str, values: list[str], topology: str) -> dict[str, Any]:
    return term(key, "NotIn", values, topology)


def term_exists(key: str, topology: str) -> dict[str, Any]:
    return term(key, "Exists", None, topology)


def exprs(*items: tuple[str, str, list[str] | None], topology: str, **extra: Any) -> dict[str, Any]:
    """A PodAffinityTerm whose labelSelector ANDs several matchExpressions."""
    out = []
    for key, op, values in items:
        out.append({"key": key, "operator": op, **({"values": values} if values is not None else {})})
    return {"labelSelector": {"matchExpressions": out}, "topologyKey": topology, **extra}


def weighted(weight: int, t: dict[str, Any]) -> dict[str, Any]:
    return {"weight": weight, "podAffinityTerm": t}


def affinity(
    required: list[dict[str, Any]] = (),
    anti: list[dict[str, Any]] = (),  # type: ignore[assignment]
    preferred: list[dict[str, Any]] = (),
    preferred_anti: list[dict[str, Any]] = (),
) -> dict[str, Any]:  # type: ignore[assignment]
    out: dict[str, Any] = {}
    req, pref = (
        "requiredDuringSchedulingIgnoredDuringExecution",
        "preferredDuringSchedulingIgnoredDuringExecution",
    )
    if required or preferred:
        out["podAffinity"] = {k: v for k, v in ((req, list(required)), (pref, list(preferred))) if v}
    if anti or preferred_anti:
        out["podAntiAffinity"] = {k: v for k, v in ((req, list(anti)), (pref, list(preferred_anti))) if v}
    return out


def pod(
    *,
    ns: str = "",
    labels: dict[str, str] | None = None,
    node: str = "",
    aff: dict[str, Any] | None = None,
    name: str = "",
) -> Any:
    """A pod; unnamed pods get a unique name (NodeInfo keys pods by namespace/name)."""
    spec: dict[str, Any] = {"nodeName": node} if node else {}
    if aff:
        spec["affinity"] = aff
    meta: dict[str, Any] = {"name": name or f"pod-{next(_names)}", "namespace": ns}
    if labels:
        meta["labels"] = labels
    return codec.from_dict({"metadata": meta, "spec": spec}, core_pb2.Pod)


def node(name: str, labels: dict[str, str]) -> Any:
    return codec.from_dict({"metadata": {"name": name, "labels": labels}}, core_pb2.Node)


class FakeHandle:
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot


def snapshot(pods: list[Any], nodes: list[Any]) -> Snapshot:
    """Pods go to their spec.nodeName; pods on nodes not in `nodes` are dropped."""
    by_node: dict[str, list[Any]] = defaultdict(list)
    for p in pods:
        by_node[p.spec.nodeName].append(p)
    return Snapshot(new_node_info(n, by_node[n.metadata.name]) for n in nodes)


def plugin(snap: Snapshot, **args: Any) -> Any:
    args.setdefault("namespaceLabels", NAMESPACE_LABELS)
    return inter_pod_affinity.new(args, FakeHandle(snap))


def run_filter(incoming: Any, pods: list[Any], nodes: list[Any]) -> tuple[Status, list[Status]]:
    snap = snapshot(pods, nodes)
    p = plugin(snap)
    state = CycleState()
    _, status = p.pre_filter(state, incoming, snap.list())
    if not status.is_success():
        return status, []
    return status, [p.filter(state, incoming, snap.get(n.metadata.name)) for n in nodes]


def run_score(incoming: Any, pods: list[Any], nodes: list[Any], **args: Any) -> tuple[Status, dict[str, int]]:
    snap = snapshot(pods, nodes)
    p = plugin(snap, **args)
    state = CycleState()
    status = p.pre_score(state, incoming, snap.list())
    if not status.is_success():
        return status, {}
    scores = {}
    for n in nodes:
        score, s = p.score(state, incoming, snap.get(n.metadata.name))
        assert s.is_success()
        scores[n.metadata.name] = score
    assert p.normalize_score(state, incoming, scores).is_success()
    return status, scores


# ----- filter: one node (TestRequiredAffinitySingleNode) ---------------------------------------

SECURITYSCAN = {"service": "securityscan"}
S1 = {"security": "S1"}
NODE1 = node("node1", {"region": "r1", "zone": "z11"})


def _existing() -> Any:
    return pod(labels=SECURITYSCAN, node="node1")


def _team1_selector() -> dict[str, Any]:
    return {"matchExpressions": [{"key": "team", "operator": "In", "values": ["team1"]}]}


SINGLE_NODE_CASES = [
    pytest.param(pod(), [], SKIP, None, id="no required pod affinity rules: pre-filter skips"),
    pytest.param(
        pod(labels=S1, aff=affinity([term_in("service", ["securityscan", "value2"], "region")])),
        [_existing()],
        OK,
        OK,
        id="affinity In matches the existing pod",
    ),
    pytest.param(
        pod(labels=S1, aff=affinity([term_not_in("service", ["securityscan3", "value3"], "region")])),
        [_existing()],
        OK,
        OK,
        id="affinity NotIn matches the existing pod",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity([term_in("service", ["securityscan", "value2"], "", namespaces=["DiffNameSpace"])]),
        ),
        [pod(ns="ns", labels=SECURITYSCAN, node="node1")],
        OK,
        AFFINITY,
        id="affinity does not match a pod in another namespace",
    ),
    pytest.param(
        pod(labels=SECURITYSCAN, aff=affinity([term_in("service", ["antivirusscan", "value2"], "")])),
        [_existing()],
        OK,
        AFFINITY,
        id="affinity selector does not match the existing pod",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity(
                [
                    exprs(("service", "Exists", None), ("wrongkey", "DoesNotExist", None), topology="region"),
                    exprs(
                        ("service", "In", ["securityscan"]),
                        ("service", "NotIn", ["WrongValue"]),
                        topology="region",
                    ),
                ]
            ),
        ),
        [_existing()],
        OK,
        OK,
        id="several terms with different operators all match",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity(
                [
                    exprs(("service", "Exists", None), ("wrongkey", "DoesNotExist", None), topology="region"),
                    exprs(
                        ("service", "In", ["securityscan2"]),
                        ("service", "NotIn", ["WrongValue"]),
                        topology="region",
                    ),
                ]
            ),
        ),
        [_existing()],
        OK,
        AFFINITY,
        id="matchExpressions are ANDed: one unmatched expression fails",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity(
                [term_in("service", ["securityscan", "value2"], "region")],
                [term_in("service", ["antivirusscan", "value2"], "node")],
            ),
        ),
        [_existing()],
        OK,
        OK,
        id="affinity and anti-affinity both satisfied",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity(
                [term_in("service", ["securityscan", "value2"], "region")],
                [term_in("service", ["antivirusscan", "value2"], "node")],
            ),
        ),
        [
            pod(
                labels=SECURITYSCAN,
                node="node1",
                aff=affinity(anti=[term_in("service", ["antivirusscan", "value2"], "node")]),
            )
        ],
        OK,
        OK,
        id="affinity, anti-affinity and anti-affinity symmetry satisfied",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity(
                [term_in("service", ["securityscan", "value2"], "region")],
                [term_in("service", ["securityscan", "value2"], "zone")],
            ),
        ),
        [_existing()],
        OK,
        ANTI,
        id="affinity satisfied but anti-affinity violated",
    ),
    pytest.param(
        pod(
            labels=SECURITYSCAN,
            aff=affinity(
                [term_in("service", ["securityscan", "value2"], "region")],
                [term_in("service", ["antivirusscan", "value2"], "node")],
            ),
        ),
        [
            pod(
                labels=SECURITYSCAN,
                node="node1",
                aff=affinity(anti=[term_in("service", ["securityscan", "value2"], "zone")]),
            )
        ],
        OK,
        EXISTING,
        id="existing pod's anti-affinity (symmetry) violated",
    ),
    pytest.param(
        pod(
            labels=SECURITYSCAN, aff=affinity([term_not_in("service", ["securityscan", "value2"], "region")])
        ),
        [pod(labels=SECURITYSCAN, node="node2")],
        OK,
        AFFINITY,
        id="pod does not match its own affinity and no pod matches it",
    ),
    pytest.param(
        pod(labels=SECURITYSCAN),
        [
            pod(
                labels=SECURITYSCAN,
                node="node1",
                aff=affinity(anti=[term_in("service", ["securityscan", "value2"], "zone")]),
            )
        ],
        OK,
        EXISTING,
        id="existing pod's anti-affinity applies to a pod without terms",
    ),
    pytest.param(
        pod(labels=SECURITYSCAN),
        [
            pod(
                labels=SECURITYSCAN,
                node="node1",
                aff=affinity(anti=[term_not_in("service", ["securityscan", "value2"], "zone")]),
            )
        ],
        SKIP,
        None,
        id="existing pod's anti-affinity does not match: pre-filter skips",
    ),
    pytest.param(
        pod(
            labels=SECURITYSCAN,
            aff=affinity(anti=[term_exists("service", "region"), term_exists("security", "region")]),
        ),
        [pod(labels=S1, node="node1", aff=affinity(anti=[term_exists("security", "zone")]))],
        OK,
        ANTI,
        id="incoming anti-affinity matches the existing pod",
    ),
    pytest.param(
        pod(
            labels=SECURITYSCAN,
            aff=affinity(anti=[term_exists("service", "zone"), term_exists("security", "zone")]),
        ),
        [pod(labels=S1, node="node1", aff=affinity(anti=[term_exists("security", "zone")]))],
        OK,
        ANTI,
        id="symmetry a1: pods partially match each other's terms",
    ),
    pytest.param(
        pod(labels=S1, aff=affinity(anti=[term_exists("security", "zone")])),
        [
            pod(
                labels=SECURITYSCAN,
                node="node1",
                aff=affinity(anti=[term_exists("service", "zone"), term_exists("security", "zone")]),
            )
        ],
        OK,
        EXISTING,
        id="symmetry a2: pods partially match each other's terms",
    ),
    pytest.param(
        pod(
            labels={"abc": "", "xyz": ""},
            aff=affinity(anti=[term_exists("abc", "zone"), term_exists("def", "zone")]),
        ),
        [
            pod(
                labels={"def": "", "xyz": ""},
                node="node1",
                aff=affinity(anti=[term_exists("abc", "zone"), term_exists("def", "zone")]),
            )
        ],
        OK,
        ANTI,
        id="symmetry b1: pods partially match each other's terms",
    ),
    pytest.param(
        pod(
            labels={"def": "", "xyz": ""},
            aff=affinity(anti=[term_exists("abc", "zone"), term_exists("def", "zone")]),
        ),
        [
            pod(
                labels={"abc": "", "xyz": ""},
                node="node1",
                aff=affinity(anti=[term_exists("abc", "zone"), term_exists("def", "zone")]),
            )
        ],
        OK,
        ANTI,
        id="symmetry b2: pods partially match each other's terms",
    ),
    pytest.param(
        pod(
            ns="",
            labels=S1,
            aff=affinity(
                [
                    term_in(
                        "service", ["securityscan", "value2"], "region", namespaceSelector=_team1_selector()
                    )
                ]
            ),
        ),
        [pod(ns="subteam1.team1", labels=SECURITYSCAN, node="node1")],
        OK,
        OK,
        id="affinity with a matching namespaceSelector",
    ),
    pytest.param(
        pod(
            labels=S1,
            aff=affinity(
                [
                    term_in(
                        "service", ["securityscan", "value2"], "region", namespaceSelector=_team1_selector()
                    )
                ]
            ),
        ),
        [pod(ns="subteam1.team2", labels=SECURITYSCAN, node="node1")],
        OK,
        AFFINITY,
        id="affinity with a non-matching namespaceSelector",
    ),
    pytest.param(
        pod(
            ns="subteam1.team1",
            labels=S1,
            aff=affinity(
                anti=[
                    term_in(
                        "service", ["securityscan", "value2"], "zone", namespaceSelector=_team1_selector()
                    )
                ]
            ),
        ),
        [pod(ns="subteam2.team1", labels=SECURITYSCAN, node="node1")],
        OK,
        ANTI,
        id="anti-affinity with a matching namespaceSelector",
    ),
    pytest.param(
        pod(
            ns="subteam1.team1",
            labels=S1,
            aff=affinity(anti=[term_in("service", ["securityscan", "value2"], "zone", namespaceSelector={})]),
        ),
        [pod(ns="subteam2.team1", labels=SECURITYSCAN, node="node1")],
        OK,
        ANTI,
        id="anti-affinity with an empty namespaceSelector matches every namespace",
    ),
    pytest.param(
        pod(
            ns="subteam1.team1",
            labels=S1,
            aff=affinity(
                anti=[
                    term_in(
                        "service", ["securityscan", "value2"], "zone", namespaceSelector=_team1_selector()
                    )
                ]
            ),
        ),
        [pod(ns="subteam1.team2", labels=SECURITYSCAN, node="node1")],
        OK,
        OK,
        id="anti-affinity with a non-matching namespaceSelector",
    ),
]


@pytest.mark.parametrize(("incoming", "pods", "want_pre_filter", "want_filter"), SINGLE_NODE_CASES)
def test_required_affinity_single_node(
    incoming: Any, pods: list[Any], want_pre_filter: Status, want_filter: Status | None
) -> None:
    """Pre-filter and filter on one node give upstream's statuses and reasons."""
    pre_filter, filters = run_filter(incoming, pods, [NODE1])
    assert pre_filter == want_pre_filter
    if want_filter is not None:
        assert filters == [want_filter]


@pytest.mark.parametrize("kind", ["required", "second required"])
def test_invalid_label_value_fails_pre_filter(kind: str) -> None:
    """An invalid value in a term's selector makes pre-filter UnschedulableAndUnresolvable with upstream's message."""
    bad = term_in("service", ["{{.bad-value.}}"], "region")
    good = term_in("service", ["antivirusscan", "value2"], "node")
    terms = (
        [bad, good]
        if kind == "required"
        else [term_in("service", ["foo"], "region"), term_in("service", ["{{.bad-value.}}"], "node")]
    )
    status, _ = run_filter(pod(labels=SECURITYSCAN, aff=affinity(terms)), [], [NODE1])
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message().startswith(
        'parsing pod: requiredAffinityTerms: values[0][service]: Invalid value: "{{.bad-value.}}": '
        "a valid label must be an empty string or consist of alphanumeric characters"
    )


# ----- filter: several nodes (TestRequiredAffinityMultipleNodes) ------------------------------

CHINA = {"region": "China"}
CHINA_AZ1 = {"region": "China", "az": "az1"}
INDIA = {"region": "India"}


def _zone_nodes(*zones: str, key: str = "zone") -> list[Any]:
    names = ["nodeA", "nodeB", "nodeC"]
    return [node(n, {"region": "r1", key: z, "hostname": n}) for n, z in zip(names, zones, strict=False)]


MULTI_NODE_CASES = [
    pytest.param(
        pod(aff=affinity([term_in("foo", ["bar"], "region")])),
        [pod(node="node1", labels={"foo": "bar"})],
        [node("node1", CHINA), node("node2", CHINA_AZ1), node("node3", INDIA)],
        OK,
        [OK, OK, AFFINITY],
        id="nodes sharing the matching pod's topology value all fit",
    ),
    pytest.param(
        pod(
            labels={"foo": "bar", "service": "securityscan"},
            aff=affinity([term_in("foo", ["bar"], "zone"), term_in("service", ["securityscan"], "zone")]),
        ),
        [pod(node="nodeA", labels={"foo": "bar"})],
        [node("nodeA", {"zone": "az1", "hostname": "h1"}), node("nodeB", {"zone": "az2", "hostname": "h2"})],
        OK,
        [OK, OK],
        id="the first pod of a group matching its own terms may go anywhere",
    ),
    pytest.param(
        pod(
            labels={"foo": "bar", "service": "securityscan"},
            aff=affinity([term_in("foo", ["bar"], "zone"), term_in("service", ["securityscan"], "zone")]),
        ),
        [pod(node="nodeA", labels={"foo": "bar"})],
        [
            node("nodeA", {"zoneLabel": "az1", "hostname": "h1"}),
            node("nodeB", {"zoneLabel": "az2", "hostname": "h2"}),
        ],
        OK,
        [AFFINITY, AFFINITY],
        id="the first pod of a group still needs the topology keys",
    ),
    pytest.param(
        pod(aff=affinity(anti=[term_in("foo", ["abc"], "region")])),
        [pod(node="nodeA", labels={"foo": "abc"})],
        [
            node("nodeA", {"region": "r1", "hostname": "nodeA"}),
            node("nodeB", {"region": "r1", "hostname": "nodeB"}),
        ],
        OK,
        [ANTI, ANTI],
        id="anti-affinity excludes every node of the matching pod's region",
    ),
    pytest.param(
        pod(
            aff=affinity(
                anti=[term_in("foo", ["abc"], "region"), term_in("service", ["securityscan"], "zone")]
            )
        ),
        [pod(node="nodeA", labels={"foo": "abc", "service": "securityscan"})],
        _zone_nodes("z1", "z2"),
        OK,
        [ANTI, ANTI],
        id="anti-affinity matches when any term matches",
    ),
    pytest.param(
        pod(aff=affinity(anti=[term_in("foo", ["abc"], "region")])),
        [pod(node="nodeA", labels={"foo": "abc"})],
        [node("nodeA", CHINA), node("nodeB", CHINA_AZ1), node("nodeC", INDIA)],
        OK,
        [ANTI, ANTI, OK],
        id="anti-affinity leaves other regions free",
    ),
    pytest.param(
        pod(ns="NS1", labels={"foo": "123"}, aff=affinity(anti=[term_in("foo", ["bar"], "region")])),
        [
            pod(node="nodeA", ns="NS1", labels={"foo": "bar"}),
            pod(node="nodeC", ns="NS2", aff=affinity(anti=[term_in("foo", ["123"], "region")])),
        ],
        [node("nodeA", CHINA), node("nodeB", CHINA_AZ1), node("nodeC", INDIA)],
        OK,
        [ANTI, ANTI, OK],
        id="an existing pod's anti-affinity only covers its own namespace",
    ),
    pytest.param(
        pod(labels={"foo": ""}),
        [pod(node="nodeA", aff=affinity(anti=[term_exists("foo", "invalid-node-label")]))],
        _zone_nodes("z1", "z1"),
        SKIP,
        None,
        id="existing anti-affinity term on a topology key no node has: pre-filter skips",
    ),
    pytest.param(
        pod(node="nodeA", aff=affinity(anti=[term_exists("foo", "invalid-node-label")])),
        [pod(node="nodeA", labels={"foo": ""})],
        _zone_nodes("z1", "z1"),
        OK,
        [OK, OK],
        id="incoming anti-affinity also needs the topology key",
    ),
    pytest.param(
        pod(labels={"foo": "", "bar": ""}),
        [
            pod(node="nodeA", aff=affinity(anti=[term_exists("foo", "zone")])),
            pod(node="nodeA", aff=affinity(anti=[term_exists("bar", "region")])),
        ],
        _zone_nodes("z1", "z2"),
        OK,
        [EXISTING, EXISTING],
        id="violating existing pods' terms on every node",
    ),
    pytest.param(
        pod(aff=affinity(anti=[term_exists("foo", "zone"), term_exists("bar", "region")])),
        [pod(node="nodeA", labels={"foo": ""}), pod(node="nodeB", labels={"bar": ""})],
        _zone_nodes("z1", "z2"),
        OK,
        [ANTI, ANTI],
        id="violating one incoming anti-affinity term is enough",
    ),
    pytest.param(
        pod(labels={"foo": "", "bar": ""}),
        [
            pod(
                node="nodeA",
                aff=affinity(anti=[term_exists("foo", "invalid-node-label"), term_exists("bar", "zone")]),
            )
        ],
        _zone_nodes("z1", "z2"),
        OK,
        [EXISTING, OK],
        id="existing term counts only when selector and topology key both match",
    ),
    pytest.param(
        pod(aff=affinity(anti=[term_exists("foo", "invalid-node-label"), term_exists("bar", "zone")])),
        [pod(node="nodeA", labels={"foo": "", "bar": ""})],
        _zone_nodes("z1", "z2"),
        OK,
        [ANTI, OK],
        id="incoming term counts only when selector and topology key both match",
    ),
    pytest.param(
        pod(labels={"foo": "", "bar": ""}),
        [pod(node="nodeA", aff=affinity(anti=[term_exists("foo", "region"), term_exists("bar", "zone")]))],
        _zone_nodes("z1", "z2"),
        OK,
        [EXISTING, EXISTING],
        id="existing terms with valid keys cover region and zone",
    ),
    pytest.param(
        pod(aff=affinity(anti=[term_exists("foo", "region"), term_exists("bar", "zone")])),
        [pod(node="nodeA", labels={"foo": "", "bar": ""})],
        _zone_nodes("z1", "z2"),
        OK,
        [ANTI, ANTI],
        id="incoming terms with valid keys cover region and zone",
    ),
    pytest.param(
        pod(labels={"foo": "", "bar": ""}),
        [
            pod(node="nodeA", aff=affinity(anti=[term_exists("foo", "zone"), term_exists("labelA", "zone")])),
            pod(node="nodeB", aff=affinity(anti=[term_exists("bar", "zone"), term_exists("labelB", "zone")])),
        ],
        _zone_nodes("z1", "z2", "z3"),
        OK,
        [EXISTING, EXISTING, OK],
        id="only the zone without conflicting existing pods fits",
    ),
    pytest.param(
        pod(aff=affinity([term_exists("foo", "region"), term_exists("bar", "zone")])),
        [pod(node="nodeA", labels={"foo": "", "bar": ""})],
        _zone_nodes("z1", "z1"),
        OK,
        [OK, OK],
        id="one pod matching all affinity terms satisfies them in its domains",
    ),
    pytest.param(
        pod(aff=affinity([term_exists("foo", "region"), term_exists("bar", "zone")])),
        [pod(node="nodeA", labels={"foo": ""}), pod(node="nodeB", labels={"bar": ""})],
        _zone_nodes("z1", "z2"),
        OK,
        [AFFINITY, AFFINITY],
        id="affinity terms must be satisfied by the same pod",
    ),
]


@pytest.mark.parametrize(("incoming", "pods", "nodes", "want_pre_filter", "want_filters"), MULTI_NODE_CASES)
def test_required_affinity_multiple_nodes(
    incoming: Any,
    pods: list[Any],
    nodes: list[Any],
    want_pre_filter: Status,
    want_filters: list[Status] | None,
) -> None:
    """Pre-filter and filter over several nodes give upstream's per-node statuses."""
    pre_filter, filters = run_filter(incoming, pods, nodes)
    assert pre_filter == want_pre_filter
    if want_filters is not None:
        assert filters == want_filters


def test_filter_without_pre_filter_is_an_error() -> None:
    """Filter without its pre-filter state reports an internal error (upstream's TestPreFilterDisabled)."""
    snap = snapshot([], [NODE1])
    status = plugin(snap).filter(CycleState(), pod(), snap.get("node1"))
    assert status.code == Code.ERROR
    assert "PreFilterInterPodAffinity" in status.message()


# ----- pre-filter counts (TestGetTPMapMatchingIncomingAffinityAntiAffinity) --------------------

HOST_A = node("nodeA", {"hostname": "nodeA"})


def _normal(*keys: str) -> Any:
    return pod(node="nodeA", labels=dict.fromkeys(keys, ""))


COUNT_CASES = [
    pytest.param([], pod(), None, None, id="nil test"),
    pytest.param([_normal("aaa")], pod(), None, None, id="incoming pod without affinity is a no-op"),
    pytest.param(
        [_normal("bbb")],
        pod(aff=affinity([term_exists("aaa", "hostname")], [term_exists("aaa", "hostname")])),
        {},
        {},
        id="no pod has a label that matches the incoming pod's terms",
    ),
    pytest.param(
        [_normal("aaa")],
        pod(aff=affinity([term_exists("aaa", "hostname")], [term_exists("aaa", "hostname")])),
        {("hostname", "nodeA"): 1},
        {("hostname", "nodeA"): 1},
        id="existing pod matches affinity and anti-affinity, single term",
    ),
    pytest.param(
        [_normal("aaa", "bbb")],
        pod(
            aff=affinity(
                [term_exists("aaa", "hostname"), term_exists("bbb", "hostname")],
                [term_exists("aaa", "hostname")],
            )
        ),
        {("hostname", "nodeA"): 2},
        {("hostname", "nodeA"): 1},
        id="existing pod matches affinity and anti-affinity, one count per affinity term",
    ),
    pytest.param(
        [_normal("aaa")],
        pod(
            aff=affinity(
                [term_exists("aaa", "hostname"), term_exists("bbb", "hostname")],
                [term_exists("aaa", "hostname"), term_exists("bbb", "hostname")],
            )
        ),
        {},
        {("hostname", "nodeA"): 1},
        id="existing pod misses one affinity term but matches anti-affinity",
    ),
    pytest.param(
        [_normal("aaa", "bbb")],
        pod(
            aff=affinity(
                [term_exists("aaa", "hostname"), term_exists("ccc", "hostname")],
                [term_exists("aaa", "hostname"), term_exists("ccc", "hostname")],
            )
        ),
        {},
        {("hostname", "nodeA"): 1},
        id="existing pod violates part of the anti-affinity terms, case 1",
    ),
    pytest.param(
        [_normal("bbb")],
        pod(
            aff=affinity(
                [term_exists("aaa", "hostname"), term_exists("bbb", "hostname")],
                [term_exists("aaa", "hostname"), term_exists("bbb", "hostname")],
            )
        ),
        {},
        {("hostname", "nodeA"): 1},
        id="existing pod violates part of the anti-affinity terms, case 2",
    ),
]


@pytest.mark.parametrize(("pods", "incoming", "want_affinity", "want_anti"), COUNT_CASES)
def test_incoming_affinity_counts(
    pods: list[Any], incoming: Any, want_affinity: dict[Any, int] | None, want_anti: dict[Any, int] | None
) -> None:
    """Pre-filter counts existing pods per topology pair for the incoming pod's required terms."""
    snap = snapshot(pods, [HOST_A])
    state = CycleState()
    _, status = plugin(snap).pre_filter(state, incoming, snap.list())
    if want_affinity is None:
        assert status == SKIP
        return
    s = state.read("PreFilterInterPodAffinity")
    assert (s.affinity, s.anti_affinity) == (want_affinity, want_anti)


# ----- add / remove pod (TestPreFilterStateAddRemovePod) ---------------------------------------

ANTI_FOO_BAR = [term_in("foo", ["bar"], "region")]
COMPLEX = [
    term_in("foo", ["bar", "buzz"], "region"),
    term_not_in("service", ["bar", "security", "test"], "zone"),
]
ADD_REMOVE_NODES = [
    node("nodeA", {"region": "r1", "zone": "z11"}),
    node("nodeB", {"region": "r1", "zone": "z12"}),
    node("nodeC", {"region": "r2", "zone": "z21"}),
]
FOO_BAR = {"foo": "bar"}


ADD_REMOVE_CASES = [
    pytest.param(
        pod(name="pending", labels=FOO_BAR, aff=affinity(anti=ANTI_FOO_BAR)),
        [
            pod(name="p1", labels=FOO_BAR, node="nodeA"),
            pod(name="p2", node="nodeC", aff=affinity(anti=ANTI_FOO_BAR)),
        ],
        pod(name="addedPod", labels=FOO_BAR, node="nodeB", aff=affinity(anti=ANTI_FOO_BAR)),
        {("region", "r1"): 2},
        {},
        id="anti-affinity counts follow an added and removed pod",
    ),
    pytest.param(
        pod(name="pending", labels=FOO_BAR, aff=affinity(anti=COMPLEX)),
        [
            pod(name="p1", labels=FOO_BAR, node="nodeA"),
            pod(name="p2", node="nodeC", aff=affinity(anti=ANTI_FOO_BAR)),
        ],
        pod(name="addedPod", labels=FOO_BAR, node="nodeA", aff=affinity(anti=COMPLEX)),
        {("region", "r1"): 2, ("zone", "z11"): 2, ("zone", "z21"): 1},
        {},
        id="several anti-affinity terms follow an added and removed pod",
    ),
    pytest.param(
        pod(name="pending", labels=FOO_BAR, aff=affinity(COMPLEX)),
        [
            pod(name="p1", labels=FOO_BAR, node="nodeA"),
            pod(name="p2", node="nodeC", aff=affinity(COMPLEX, ANTI_FOO_BAR)),
        ],
        pod(name="addedPod", labels=FOO_BAR, node="nodeA", aff=affinity(anti=COMPLEX)),
        {},
        {("region", "r1"): 2, ("zone", "z11"): 2},
        id="affinity and anti-affinity counts follow an added and removed pod",
    ),
    pytest.param(
        pod(name="pending", labels=FOO_BAR, aff=affinity(anti=[term_in("foo", ["nomatch"], "region")])),
        [pod(name="p1", labels=FOO_BAR, node="nodeA")],
        pod(name="addedPod", node="nodeB", aff=affinity(anti=ANTI_FOO_BAR)),
        {},
        {},
        id="an added pod brings the first existing anti-affinity term",
    ),
]


@pytest.mark.parametrize(("pending", "existing", "added", "want_anti", "want_affinity"), ADD_REMOVE_CASES)
def test_add_remove_pod(
    pending: Any, existing: list[Any], added: Any, want_anti: dict[Any, int], want_affinity: dict[Any, int]
) -> None:
    """add_pod yields the counts and filter results pre-filter computes with the pod present; remove_pod
    restores the original counts."""

    def pre_filter(pods: list[Any]) -> tuple[Any, CycleState, Snapshot]:
        snap = snapshot(pods, ADD_REMOVE_NODES)
        p, state = plugin(snap), CycleState()
        assert p.pre_filter(state, pending, snap.list())[1].is_success()
        return p, state, snap

    def counts(state: CycleState) -> tuple[dict[Any, int], ...]:
        s = state.read("PreFilterInterPodAffinity")
        return dict(s.existing_anti_affinity), dict(s.affinity), dict(s.anti_affinity)

    all_plugin, all_state, _ = pre_filter([*existing, added])
    p, state, snap = pre_filter(existing)
    original = counts(state.clone())
    node_info = snap.get(added.spec.nodeName)

    assert p.add_pod(state, pending, new_pod_info(added), node_info).is_success()
    after_add = counts(state)
    assert (after_add[2], after_add[1]) == (want_anti, want_affinity)
    assert after_add == counts(all_state)
    for name in ("nodeA", "nodeB", "nodeC"):  # filter reads the updated state like a fresh one
        assert p.filter(state, pending, snap.get(name)) == all_plugin.filter(
            all_state, pending, snap.get(name)
        )
    assert p.remove_pod(state, pending, new_pod_info(added), node_info).is_success()
    assert counts(state) == original


# ----- score (TestPreferredAffinity) ------------------------------------------------------------

S2 = {"security": "S2"}
AZ1, AZ2 = {"az": "az1"}, {"az": "az2"}
STAY_WITH_S1_IN_REGION = affinity(preferred=[weighted(5, term_in("security", ["S1"], "region"))])
STAY_WITH_S2_IN_REGION = affinity(preferred=[weighted(6, term_in("security", ["S2"], "region"))])
AFFINITY3 = affinity(
    preferred=[
        weighted(8, exprs(("security", "NotIn", ["S1"]), ("security", "In", ["S2"]), topology="region")),
        weighted(
            2, exprs(("security", "Exists", None), ("wrongkey", "DoesNotExist", None), topology="region")
        ),
    ]
)
HARD_AFFINITY = affinity(
    [
        term_in("security", ["S1", "value2"], "region"),
        exprs(("security", "Exists", None), ("wrongkey", "DoesNotExist", None), topology="region"),
    ]
)
AWAY_FROM_S1_IN_AZ = affinity(preferred_anti=[weighted(5, term_in("security", ["S1"], "az"))])
AWAY_FROM_S2_IN_AZ = affinity(preferred_anti=[weighted(5, term_in("security", ["S2"], "az"))])
STAY_WITH_S1_AWAY_FROM_S2 = affinity(
    preferred=[weighted(8, term_in("security", ["S1"], "region"))],
    preferred_anti=[weighted(5, term_in("security", ["S2"], "az"))],
)
_NS_TERM = term_in(
    "security",
    ["S1"],
    "region",
    namespaces=["subteam2.team2"],
    namespaceSelector={"matchExpressions": [{"key": "team", "operator": "In", "values": ["team1"]}]},
)
AFFINITY_NS_SELECTOR = affinity(preferred=[weighted(5, _NS_TERM)])
ANTI_AFFINITY_NS_SELECTOR = affinity(preferred_anti=[weighted(5, _NS_TERM)])


def _nodes(*labels: dict[str, str]) -> list[Any]:
    return [node(f"node{i}", lbl) for i, lbl in enumerate(labels, start=1)]


def _scores(*values: int) -> dict[str, int]:
    return {f"node{i}": v for i, v in enumerate(values, start=1)}


M = MAX_NODE_SCORE
TEAM1 = "subteam1.team1"

SCORE_CASES = [
    pytest.param(
        pod(labels=S1),
        [],
        _nodes(CHINA, INDIA, AZ1),
        {},
        SKIP,
        None,
        id="no affinity anywhere: pre-score skips",
    ),
    pytest.param(
        pod(labels=S1, aff=STAY_WITH_S1_IN_REGION),
        [pod(node="node1", labels=S1), pod(node="node2", labels=S2), pod(node="node3", labels=S1)],
        _nodes(CHINA, INDIA, AZ1),
        {},
        OK,
        _scores(M, 0, 0),
        id="affinity: matching pod and topology key scores highest",
    ),
    pytest.param(
        pod(aff=STAY_WITH_S1_IN_REGION),
        [pod(node="node1", labels=S1)],
        _nodes(CHINA, CHINA_AZ1, INDIA),
        {},
        OK,
        _scores(M, M, 0),
        id="affinity: nodes in the matching pod's region score the same",
    ),
    pytest.param(
        pod(labels=S1, aff=STAY_WITH_S2_IN_REGION),
        [
            pod(node="node1", labels=S2),
            pod(node="node1", labels=S2),
            pod(node="node2", labels=S2),
            pod(node="node3", labels=S2),
            pod(node="node4", labels=S2),
            pod(node="node5", labels=S2),
        ],
        _nodes(CHINA, INDIA, CHINA, CHINA, INDIA),
        {},
        OK,
        _scores(M, 0, M, M, 0),
        id="affinity: the region with more matching pods scores higher",
    ),
    pytest.param(
        pod(labels=S1, aff=AFFINITY3),
        [pod(node="node1", labels=S1), pod(node="node2", labels=S2), pod(node="node3", labels=S1)],
        _nodes(CHINA, INDIA, AZ1),
        {},
        OK,
        _scores(20, M, 0),
        id="affinity: different operators and weights, some unmatched",
    ),
    pytest.param(
        pod(labels=S2),
        [
            pod(node="node1", labels=S1, aff=STAY_WITH_S1_IN_REGION),
            pod(node="node2", labels=S2, aff=STAY_WITH_S2_IN_REGION),
        ],
        _nodes(CHINA, INDIA, AZ1),
        {},
        OK,
        _scores(0, M, 0),
        id="affinity symmetry: existing pods' preferred affinity",
    ),
    pytest.param(
        pod(ns=TEAM1, labels=S1),
        [
            pod(node="node1", labels=S1, aff=AFFINITY_NS_SELECTOR),
            pod(node="node2", labels=S2, aff=STAY_WITH_S2_IN_REGION),
        ],
        _nodes(CHINA, INDIA, AZ1),
        {},
        OK,
        _scores(M, 0, 0),
        id="affinity symmetry with a namespaceSelector",
    ),
    pytest.param(
        pod(ns=TEAM1, labels=S1),
        [
            pod(node="node1", labels=S1, aff=ANTI_AFFINITY_NS_SELECTOR),
            pod(node="node2", labels=S2, aff=STAY_WITH_S2_IN_REGION),
        ],
        _nodes(CHINA, INDIA, AZ1),
        {},
        OK,
        _scores(0, M, M),
        id="anti-affinity symmetry with a namespaceSelector",
    ),
    pytest.param(
        pod(labels=S1),
        [pod(node="node1", labels=S1, aff=HARD_AFFINITY), pod(node="node2", labels=S2, aff=HARD_AFFINITY)],
        _nodes(CHINA, INDIA, AZ1),
        {},
        OK,
        _scores(M, M, 0),
        id="affinity symmetry: existing pods' required affinity counts hardPodAffinityWeight",
    ),
    pytest.param(
        pod(labels=S1, aff=AWAY_FROM_S1_IN_AZ),
        [pod(node="node1", labels=S1), pod(node="node2", labels=S2)],
        _nodes(AZ1, CHINA),
        {},
        OK,
        _scores(0, M),
        id="anti-affinity: node without matching pods scores highest",
    ),
    pytest.param(
        pod(labels=S1, aff=AWAY_FROM_S1_IN_AZ),
        [pod(node="node1", labels=S1), pod(node="node2", labels=S1)],
        _nodes(AZ1, CHINA),
        {},
        OK,
        _scores(0, M),
        id="anti-affinity: node without the topology key scores highest",
    ),
    pytest.param(
        pod(labels=S1, aff=AWAY_FROM_S1_IN_AZ),
        [pod(node="node1", labels=S1), pod(node="node1", labels=S1), pod(node="node2", labels=S2)],
        _nodes(AZ1, INDIA),
        {},
        OK,
        _scores(0, M),
        id="anti-affinity: node with more matching pods scores lower",
    ),
    pytest.param(
        pod(labels=S2),
        [
            pod(node="node1", labels=S1, aff=AWAY_FROM_S2_IN_AZ),
            pod(node="node2", labels=S2, aff=AWAY_FROM_S1_IN_AZ),
        ],
        _nodes(AZ1, AZ2),
        {},
        OK,
        _scores(0, M),
        id="anti-affinity symmetry: existing pods' preferred anti-affinity",
    ),
    pytest.param(
        pod(labels=S1, aff=STAY_WITH_S1_AWAY_FROM_S2),
        [pod(node="node1", labels=S1), pod(node="node2", labels=S1)],
        _nodes(CHINA, AZ1),
        {},
        OK,
        _scores(M, 0),
        id="affinity and anti-affinity preferred terms together",
    ),
    pytest.param(
        pod(labels=S1, aff=STAY_WITH_S1_AWAY_FROM_S2),
        [
            pod(node="node1", labels=S1),
            pod(node="node1", labels=S1),
            pod(node="node2", labels=S1),
            pod(node="node3", labels=S1),
            pod(node="node3", labels=S1),
            pod(node="node4", labels=S1),
            pod(node="node5", labels=S1),
        ],
        _nodes(CHINA_AZ1, INDIA, CHINA, CHINA, INDIA),
        {},
        OK,
        _scores(M, 0, M, M, 0),
        id="affinity and anti-affinity with pods of the same labels",
    ),
    pytest.param(
        pod(labels=S1, aff=STAY_WITH_S1_AWAY_FROM_S2),
        [
            pod(node="node1", labels=S1),
            pod(node="node2", labels=S2),
            pod(node="node3", aff=STAY_WITH_S1_AWAY_FROM_S2),
            pod(node="node4", aff=AWAY_FROM_S1_IN_AZ),
        ],
        _nodes(CHINA, AZ1, INDIA, AZ2),
        {},
        OK,
        _scores(M, 0, M, 0),
        id="affinity, anti-affinity and both symmetries",
    ),
    pytest.param(
        pod(labels=S1),
        [pod(node="node1", labels=S1), pod(node="node2", aff=STAY_WITH_S1_AWAY_FROM_S2)],
        _nodes(CHINA, CHINA),
        {},
        OK,
        _scores(0, 0),
        id="nodes of one topology where only some have pods with affinity",
    ),
    pytest.param(
        pod(ns=TEAM1, labels=S1, aff=AFFINITY_NS_SELECTOR),
        [
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns="subteam1.team2", labels=S1),
            pod(node="node2", ns="subteam2.team1", labels=S1),
        ],
        _nodes(CHINA, INDIA),
        {},
        OK,
        _scores(M, 0),
        id="affinity with pods matching the namespaceSelector",
    ),
    pytest.param(
        pod(ns=TEAM1, labels=S1, aff=AFFINITY_NS_SELECTOR),
        [
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns="subteam2.team2", labels=S1),
            pod(node="node2", ns="subteam2.team1", labels=S1),
        ],
        _nodes(CHINA, INDIA),
        {},
        OK,
        _scores(M, 0),
        id="affinity with pods matching namespaceSelector and namespaces",
    ),
    pytest.param(
        pod(ns=TEAM1, labels=S1, aff=ANTI_AFFINITY_NS_SELECTOR),
        [
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns="subteam1.team2", labels=S1),
            pod(node="node2", ns="subteam2.team1", labels=S1),
        ],
        _nodes(CHINA, INDIA),
        {},
        OK,
        _scores(0, M),
        id="anti-affinity with pods matching the namespaceSelector",
    ),
    pytest.param(
        pod(ns=TEAM1, labels=S1, aff=ANTI_AFFINITY_NS_SELECTOR),
        [
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns=TEAM1, labels=S1),
            pod(node="node1", ns="subteam2.team2", labels=S1),
            pod(node="node2", ns="subteam2.team1", labels=S1),
        ],
        _nodes(CHINA, INDIA),
        {},
        OK,
        _scores(0, M),
        id="anti-affinity with pods matching namespaceSelector and namespaces",
    ),
    pytest.param(
        pod(labels=S2),
        [
            pod(node="node1", labels=S1, aff=STAY_WITH_S1_AWAY_FROM_S2),
            pod(node="node2", labels=S2, aff=STAY_WITH_S2_IN_REGION),
        ],
        _nodes(CHINA, INDIA),
        {"ignorePreferredTermsOfExistingPods": True},
        SKIP,
        None,
        id="ignorePreferredTermsOfExistingPods: pre-score skips",
    ),
    pytest.param(
        pod(labels=S2),
        [
            pod(node="node1", labels=S1, aff=STAY_WITH_S1_AWAY_FROM_S2),
            pod(node="node2", labels=S2, aff=STAY_WITH_S2_IN_REGION),
        ],
        _nodes(CHINA, INDIA),
        {"ignorePreferredTermsOfExistingPods": False},
        OK,
        _scores(0, M),
        id="existing pods' preferred terms count by default",
    ),
    pytest.param(pod(labels=S2), [], [], {}, SKIP, None, id="no nodes to score: pre-score skips"),
]


@pytest.mark.parametrize(("incoming", "pods", "nodes", "args", "want_status", "want_scores"), SCORE_CASES)
def test_preferred_affinity(
    incoming: Any,
    pods: list[Any],
    nodes: list[Any],
    args: dict[str, Any],
    want_status: Status,
    want_scores: dict[str, int] | None,
) -> None:
    """Pre-score, score and normalize give upstream's node scores."""
    status, scores = run_score(incoming, pods, nodes, hardPodAffinityWeight=1, **args)
    assert status == want_status
    if want_scores is not None:
        assert scores == want_scores


@pytest.mark.parametrize("kind", ["preferred", "preferred_anti"])
def test_invalid_preferred_term_fails_pre_score(kind: str) -> None:
    """An invalid selector value in a preferred term makes pre-score an Error naming the value."""
    bad = [weighted(8, term_in("security", ["{{.bad-value.}}"], "region"))]
    status, _ = run_score(pod(aff=affinity(**{kind: bad})), [], _nodes(CHINA, CHINA))
    assert status.code == Code.ERROR
    assert 'Invalid value: "{{.bad-value.}}"' in status.message()


# ----- score: hardPodAffinityWeight (TestPreferredAffinityWithHardPodAffinitySymmetricWeight) ---

HARD_NS_AFFINITY = affinity(
    [
        term_in(
            "service",
            ["S1"],
            "region",
            namespaces=["", "subteam2.team2"],
            namespaceSelector=_team1_selector(),
        )
    ]
)
SERVICE_S1 = {"service": "S1"}


@pytest.mark.parametrize(
    ("incoming", "weight", "want_status", "want_scores"),
    [
        pytest.param(pod(labels=SERVICE_S1), 1, OK, _scores(M, M, 0), id="with default weight"),
        pytest.param(pod(labels=SERVICE_S1), 0, SKIP, None, id="with zero weight"),
        pytest.param(
            pod(ns="subteam1.team2", labels=SERVICE_S1), 1, SKIP, None, id="with no matching namespace"
        ),
        pytest.param(
            pod(ns=TEAM1, labels=SERVICE_S1), 1, OK, _scores(M, M, 0), id="with matching namespaceSelector"
        ),
        pytest.param(
            pod(ns="subteam2.team2", labels=SERVICE_S1),
            1,
            OK,
            _scores(M, M, 0),
            id="with matching namespaces",
        ),
    ],
)
def test_hard_pod_affinity_weight(
    incoming: Any, weight: int, want_status: Status, want_scores: dict[str, int] | None
) -> None:
    """Existing pods' required affinity terms matching the incoming pod score hardPodAffinityWeight each."""
    pods = [pod(node="node1", aff=HARD_NS_AFFINITY), pod(node="node2", aff=HARD_NS_AFFINITY)]
    status, scores = run_score(incoming, pods, _nodes(CHINA, INDIA, AZ1), hardPodAffinityWeight=weight)
    assert status == want_status
    if want_scores is not None:
        assert scores == want_scores


# ----- plugin surface ------------------------------------------------------------------------


def test_namespace_labels_from_handle() -> None:
    """A handle's namespace_labels() resolves namespaceSelectors instead of the static arg."""

    class Handle(FakeHandle):
        def namespace_labels(self) -> dict[str, dict[str, str]]:
            return {"other": {"team": "team1"}}

    incoming = pod(
        labels=S1,
        aff=affinity([term_in("service", ["securityscan"], "region", namespaceSelector=_team1_selector())]),
    )
    snap = snapshot([pod(ns="other", labels=SECURITYSCAN, node="node1")], [NODE1])
    p = inter_pod_affinity.new({}, Handle(snap))
    state = CycleState()
    assert p.pre_filter(state, incoming, snap.list())[1].is_success()
    assert p.filter(state, incoming, snap.get("node1")) == OK


def test_match_label_keys_are_merged_into_the_selector() -> None:
    """matchLabelKeys restrict a term to pods sharing the owner's value, mismatchLabelKeys to others."""
    nodes = _zone_nodes("z1", "z2")
    same = term_exists("app", "zone") | {"matchLabelKeys": ["version"]}
    other = term_exists("app", "zone") | {"mismatchLabelKeys": ["version"]}
    pods = [
        pod(node="nodeA", labels={"app": "web", "version": "v1"}),
        pod(node="nodeB", labels={"app": "web", "version": "v2"}),
    ]
    _, filters = run_filter(pod(labels={"app": "web", "version": "v1"}, aff=affinity([same])), pods, nodes)
    assert filters == [OK, AFFINITY]
    _, filters = run_filter(
        pod(labels={"app": "web", "version": "v1"}, aff=affinity(anti=[other])), pods, nodes
    )
    assert filters == [OK, ANTI]


def test_plugin_implements_its_extension_points() -> None:
    """The plugin is a pre-filter, filter, pre-score, score and normalize-score plugin named InterPodAffinity."""
    p = plugin(snapshot([], []))
    assert p.NAME == "InterPodAffinity"
    for protocol in (PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, NormalizeScorePlugin):
        assert isinstance(p, protocol)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"hardPodAffinityWeight": 101}, "not in valid range [0-100]", id="weight too high"),
        pytest.param({"hardPodAffinityWeight": -1}, "not in valid range [0-100]", id="negative weight"),
        pytest.param({"hardPodAffinityWeight": "1"}, "must be an integer", id="weight not an integer"),
        pytest.param(
            {"ignorePreferredTermsOfExistingPods": "yes"}, "must be a boolean", id="flag not a boolean"
        ),
        pytest.param(
            {"namespaceLabels": {"ns": ["team"]}}, "namespaceLabels must map", id="bad namespace labels"
        ),
        pytest.param({"hardPodAffinity": 1}, "unknown field(s) hardPodAffinity", id="unknown field"),
    ],
)
def test_new_rejects_invalid_args(args: dict[str, Any], message: str) -> None:
    """new() validates its args and says what is wrong."""
    with pytest.raises(ValueError, match=None) as info:
        inter_pod_affinity.new(args, FakeHandle(snapshot([], [])))
    assert message in str(info.value)
