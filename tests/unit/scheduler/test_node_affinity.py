"""NodeAffinity plugin, ported from upstream's node_affinity_test.go (TestNodeAffinity,
TestNodeAffinityPriority) plus args validation."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    NormalizeScorePlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import node_affinity

POD = Status.unresolvable("node(s) didn't match Pod's node affinity/selector")
ENFORCED = Status.unresolvable("node(s) didn't match scheduler-enforced node affinity")
CONFLICT = Status.unresolvable("pod affinity terms conflict")
OK = Status.success()


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)} if values else {"key": key, "operator": op}


def name_in(*names: str) -> dict[str, Any]:
    return expr("metadata.name", "In", *names)


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}


def pod(node_affinity_: dict[str, Any] | None = None, node_selector: dict[str, str] | None = None) -> Any:
    spec: dict[str, Any] = {}
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if node_affinity_ is not None:
        spec["affinity"] = {"nodeAffinity": node_affinity_}
    return codec.from_dict({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}, core_pb2.Pod)


def node(name: str = "", labels: dict[str, str] | None = None) -> Any:
    return codec.from_dict({"metadata": {"name": name, "labels": labels or {}}}, core_pb2.Node)


ADDED_NAME_NODE2 = {"addedAffinity": required({"matchFields": [name_in("node2")]})}
FILTER_CASES = [
    # (name, pod, node name, node labels, args, want pre-filter result, want pre-filter status, want filter status)
    ("missing labels", pod(node_selector={"foo": "bar"}), "", None, {}, None, OK, POD),
    ("same labels", pod(node_selector={"foo": "bar"}), "", {"foo": "bar"}, {}, None, OK, OK),
    (
        "node labels are superset",
        pod(node_selector={"foo": "bar"}),
        "",
        {"foo": "bar", "baz": "blah"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "node labels are subset",
        pod(node_selector={"foo": "bar", "baz": "blah"}),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        POD,
    ),
    (
        "In matches",
        pod(required({"matchExpressions": [expr("foo", "In", "bar", "value2")]})),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "Gt matches",
        pod(required({"matchExpressions": [expr("kernel-version", "Gt", "0204")]})),
        "",
        {"kernel-version": "0206"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "NotIn matches",
        pod(required({"matchExpressions": [expr("mem-type", "NotIn", "DDR", "DDR2")]})),
        "",
        {"mem-type": "DDR3"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "Exists matches",
        pod(required({"matchExpressions": [expr("GPU", "Exists")]})),
        "",
        {"GPU": "NVIDIA-GRID-K1"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "In does not match",
        pod(required({"matchExpressions": [expr("foo", "In", "value1", "value2")]})),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        POD,
    ),
    (
        "empty matchExpressions match nothing",
        pod(required({"matchExpressions": []})),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        POD,
    ),
    ("no affinity skips", pod(), "", {"foo": "bar"}, {}, None, Status.skip(), OK),
    ("affinity without required skips", pod({}), "", {"foo": "bar"}, {}, None, Status.skip(), OK),
    (
        "ANDed expressions match",
        pod(required({"matchExpressions": [expr("GPU", "Exists"), expr("GPU", "NotIn", "AMD", "INTER")]})),
        "",
        {"GPU": "NVIDIA-GRID-K1"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "ANDed expressions do not match",
        pod(required({"matchExpressions": [expr("GPU", "Exists"), expr("GPU", "In", "AMD", "INTER")]})),
        "",
        {"GPU": "NVIDIA-GRID-K1"},
        {},
        None,
        OK,
        POD,
    ),
    (
        "ORed terms match",
        pod(
            required(
                {"matchExpressions": [expr("foo", "In", "bar", "value2")]},
                {"matchExpressions": [expr("diffkey", "In", "wrong", "value2")]},
            )
        ),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "affinity and nodeSelector both satisfied",
        pod(required({"matchExpressions": [expr("foo", "Exists")]}), {"foo": "bar"}),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "affinity satisfied, nodeSelector not",
        pod(required({"matchExpressions": [expr("foo", "Exists")]}), {"foo": "bar"}),
        "",
        {"foo": "barrrrrr"},
        {},
        None,
        OK,
        POD,
    ),
    (
        "invalid value never matches",
        pod(required({"matchExpressions": [expr("foo", "NotIn", "invalid value: ___@#$%^")]})),
        "",
        {"foo": "bar"},
        {},
        None,
        OK,
        POD,
    ),
    (
        "matchFields In matches",
        pod(required({"matchFields": [name_in("node1")]})),
        "node1",
        None,
        {},
        {"node1"},
        OK,
        OK,
    ),
    (
        "matchFields In does not match",
        pod(required({"matchFields": [name_in("node1")]})),
        "node2",
        None,
        {},
        {"node1"},
        OK,
        POD,
    ),
    (
        "two terms: fields miss, expressions match",
        pod(
            required(
                {"matchFields": [name_in("node1"), name_in("node2")]},
                {"matchExpressions": [expr("foo", "In", "bar")]},
            )
        ),
        "node2",
        {"foo": "bar"},
        {},
        None,
        OK,
        OK,
    ),
    (
        "one term: fields miss, expressions match",
        pod(required({"matchFields": [name_in("node1")], "matchExpressions": [expr("foo", "In", "bar")]})),
        "node2",
        {"foo": "bar"},
        {},
        {"node1"},
        OK,
        POD,
    ),
    (
        "one term: both match",
        pod(required({"matchFields": [name_in("node1")], "matchExpressions": [expr("foo", "In", "bar")]})),
        "node1",
        {"foo": "bar"},
        {},
        {"node1"},
        OK,
        OK,
    ),
    (
        "two terms: neither matches",
        pod(
            required(
                {"matchFields": [name_in("node1")]},
                {"matchExpressions": [expr("foo", "In", "not-match-to-bar")]},
            )
        ),
        "node2",
        {"foo": "bar"},
        {},
        None,
        OK,
        POD,
    ),
    (
        "two terms of node name affinity",
        pod(required({"matchFields": [name_in("node1")]}, {"matchFields": [name_in("node2")]})),
        "node2",
        None,
        {},
        {"node1", "node2"},
        OK,
        OK,
    ),
    (
        "two conflicting matchFields requirements",
        pod(required({"matchFields": [name_in("node1"), name_in("node2")]})),
        "node2",
        {"foo": "bar"},
        {},
        None,
        CONFLICT,
        POD,
    ),
    (
        "matches added affinity and pod affinity",
        pod(required({"matchExpressions": [expr("zone", "In", "foo")]})),
        "node2",
        {"zone": "foo"},
        ADDED_NAME_NODE2,
        None,
        OK,
        OK,
    ),
    (
        "matches added affinity, not pod affinity",
        pod(required({"matchExpressions": [expr("zone", "In", "bar")]})),
        "node2",
        {"zone": "foo"},
        ADDED_NAME_NODE2,
        None,
        OK,
        POD,
    ),
    (
        "does not match added affinity",
        pod(),
        "node2",
        {"zone": "foo"},
        {"addedAffinity": required({"matchExpressions": [expr("zone", "In", "bar")]})},
        None,
        OK,
        ENFORCED,
    ),
]


@pytest.mark.parametrize(
    ("pod_", "node_name", "labels", "args", "want_names", "want_pre_status", "want_status"),
    [pytest.param(*case[1:], id=case[0]) for case in FILTER_CASES],
)
@pytest.mark.parametrize("run_pre_filter", [True, False])
def test_filter(
    pod_: Any,
    node_name: str,
    labels: dict[str, str] | None,
    args: dict[str, Any],
    want_names: set[str] | None,
    want_pre_status: Status,
    want_status: Status,
    run_pre_filter: bool,
) -> None:
    """Pre-filter narrows or skips as upstream does; filter applies added affinity, then the pod's."""
    plugin = node_affinity.new(args, None)  # type: ignore[arg-type]
    info = new_node_info(node(node_name, labels))
    state = CycleState()
    if run_pre_filter:
        result, status = plugin.pre_filter(state, pod_, [info])
        assert status == want_pre_status
        assert result == (PreFilterResult(frozenset(want_names)) if want_names is not None else None)
    assert plugin.filter(state, pod_, info) == want_status


LABEL1 = {"foo": "bar"}
LABEL2 = {"key": "value"}
LABEL3 = {"az": "az1"}
LABEL4 = {"abc": "az11", "def": "az22"}
LABEL5 = {"foo": "bar", "key": "value", "az": "az1"}
PREFER_FOO = {"weight": 2, "preference": {"matchExpressions": [expr("foo", "In", "bar")]}}
AFFINITY1 = {"preferredDuringSchedulingIgnoredDuringExecution": [PREFER_FOO]}
AFFINITY2 = {
    "preferredDuringSchedulingIgnoredDuringExecution": [
        PREFER_FOO,
        {"weight": 4, "preference": {"matchExpressions": [expr("key", "In", "value")]}},
        {
            "weight": 5,
            "preference": {
                "matchExpressions": [
                    expr("foo", "In", "bar"),
                    expr("key", "In", "value"),
                    expr("az", "In", "az1"),
                ]
            },
        },
    ]
}
ADDED_PREFER_KEY = {
    "addedAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 3, "preference": {"matchExpressions": [expr("key", "In", "value")]}}
        ]
    }
}


@pytest.mark.parametrize(
    ("pod_", "nodes", "args", "want"),
    [
        pytest.param(
            pod(),
            {"node1": LABEL1, "node2": LABEL2, "node3": LABEL3},
            {},
            {"node1": 0, "node2": 0, "node3": 0},
            id="no affinity",
        ),
        pytest.param(
            pod(AFFINITY1),
            {"node1": LABEL4, "node2": LABEL2, "node3": LABEL3},
            {},
            {"node1": 0, "node2": 0, "node3": 0},
            id="no node matches",
        ),
        pytest.param(
            pod(AFFINITY1),
            {"node1": LABEL1, "node2": LABEL2, "node3": LABEL3},
            {},
            {"node1": MAX_NODE_SCORE, "node2": 0, "node3": 0},
            id="only node1 matches",
        ),
        pytest.param(
            pod(AFFINITY2),
            {"node1": LABEL1, "node5": LABEL5, "node2": LABEL2},
            {},
            {"node1": 18, "node5": MAX_NODE_SCORE, "node2": 36},
            id="all match with different weights",
        ),
        pytest.param(
            pod(),
            {"node1": LABEL1, "node2": LABEL2},
            {"addedAffinity": AFFINITY1},
            {"node1": MAX_NODE_SCORE, "node2": 0},
            id="added affinity",
        ),
        pytest.param(
            pod(AFFINITY1),
            {"node1": LABEL1, "node2": LABEL2, "node3": LABEL5},
            ADDED_PREFER_KEY,
            {"node1": 40, "node2": 60, "node3": MAX_NODE_SCORE},
            id="added affinity and pod affinity",
        ),
    ],
)
@pytest.mark.parametrize("run_pre_score", [True, False])
def test_score(
    pod_: Any,
    nodes: dict[str, dict[str, str]],
    args: dict[str, Any],
    want: dict[str, int],
    run_pre_score: bool,
) -> None:
    """Scores sum matching preferred weights (pod's and added), normalized to 0..100."""
    plugin = node_affinity.new(args, None)  # type: ignore[arg-type]
    infos = [new_node_info(node(name, labels)) for name, labels in nodes.items()]
    state = CycleState()
    if run_pre_score:
        status = plugin.pre_score(state, pod_, infos)
        assert status.is_success() or (status.is_skip() and not args and not pod_.spec.HasField("affinity"))
    scores = {}
    for info in infos:
        score, status = plugin.score(state, pod_, info)
        assert status.is_success()
        scores[info.name] = score
    assert plugin.normalize_score(state, pod_, scores).is_success()
    assert scores == want


def test_pre_score_skips_without_preferred_terms() -> None:
    """Pre-score skips pods without preferred terms when no added preferences are configured."""
    plugin = node_affinity.new({}, None)  # type: ignore[arg-type]
    assert plugin.pre_score(
        CycleState(), pod(required({"matchExpressions": [expr("a", "Exists")]})), []
    ).is_skip()
    added = node_affinity.new({"addedAffinity": AFFINITY1}, None)  # type: ignore[arg-type]
    assert added.pre_score(CycleState(), pod(), []).is_success()


def test_pre_score_reports_invalid_preferred_terms() -> None:
    """An invalid preferred term is an Error naming its field, as upstream's AsStatus(err)."""
    plugin = node_affinity.new({}, None)  # type: ignore[arg-type]
    bad = pod(
        {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [expr("k", "Bogus")]}}
            ]
        }
    )
    status = plugin.pre_score(CycleState(), bad, [])
    assert status.code == Status.error("").code
    assert (
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].matchExpressions[0].operator"
        in status.message()
    )


def test_pre_filter_does_not_skip_with_added_affinity() -> None:
    """A configured added required affinity keeps the filter running for plain pods."""
    plugin = node_affinity.new(ADDED_NAME_NODE2, None)  # type: ignore[arg-type]
    result, status = plugin.pre_filter(CycleState(), pod(), [])
    assert (result, status) == (None, OK)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"bogus": 1}, r"unknown field\(s\) \['bogus'\]"),
        (
            {"addedAffinity": {"requiredDuringScheduling": {}}},
            r'unknown field "addedAffinity.requiredDuringScheduling"',
        ),
        (
            {"addedAffinity": required({"matchFields": [name_in("a", "b")]})},
            r"addedAffinity\.requiredDuringSchedulingIgnoredDuringExecution\.nodeSelectorTerms\[0\]\.matchFields\[0\]\.values: "
            r"Invalid value: \[\"a\", \"b\"\]: must have one element",
        ),
        (
            {
                "addedAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "preference": {"matchExpressions": [expr("bad key", "Exists")]}}
                    ]
                }
            },
            r"addedAffinity\.preferredDuringSchedulingIgnoredDuringExecution\[0\]\.matchExpressions\[0\]\.key",
        ),
    ],
)
def test_new_rejects_bad_args(args: dict[str, Any], message: str) -> None:
    """Bad NodeAffinityArgs fail at construction with every problem's field path."""
    with pytest.raises(ValueError, match=message):
        node_affinity.new(args, None)  # type: ignore[arg-type]


def test_plugin_shape() -> None:
    """The module provides pre-filter, filter, pre-score, score and normalize."""
    plugin = node_affinity.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == "NodeAffinity"
    for protocol in (PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, NormalizeScorePlugin):
        assert isinstance(plugin, protocol)
