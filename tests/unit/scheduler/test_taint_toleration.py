"""TaintToleration plugin, ported from upstream's taint_toleration_test.go."""

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
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import taint_toleration

PNS = "PreferNoSchedule"


def _pod(tolerations: list[dict[str, Any]]) -> Any:
    return codec.from_dict({"metadata": {"name": "pod1"}, "spec": {"tolerations": tolerations}}, core_pb2.Pod)


def _node(name: str, taints: list[dict[str, Any]]) -> Any:
    return codec.from_dict({"metadata": {"name": name}, "spec": {"taints": taints}}, core_pb2.Node)


def _untolerated(key: str, value: str) -> Status:
    return Status.unresolvable(f"node(s) had untolerated taint {{{key}: {value}}}")


DEDICATED_USER1 = {"key": "dedicated", "value": "user1", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("tolerations", "taints", "want"),
    [
        pytest.param(
            [], [DEDICATED_USER1], _untolerated("dedicated", "user1"), id="no tolerations, tainted node"
        ),
        pytest.param(
            [DEDICATED_USER1], [DEDICATED_USER1], Status.success(), id="toleration matches dedicated taint"
        ),
        pytest.param(
            [{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}],
            [DEDICATED_USER1],
            _untolerated("dedicated", "user1"),
            id="toleration for another value",
        ),
        pytest.param(
            [{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}],
            [{"key": "foo", "value": "bar", "effect": "NoSchedule"}],
            Status.success(),
            id="Exists tolerates any value",
        ),
        pytest.param(
            [
                {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"},
                {"key": "foo", "operator": "Exists", "effect": "NoSchedule"},
            ],
            [
                {"key": "dedicated", "value": "user2", "effect": "NoSchedule"},
                {"key": "foo", "value": "bar", "effect": "NoSchedule"},
            ],
            Status.success(),
            id="every taint tolerated",
        ),
        pytest.param(
            [{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}],
            [{"key": "foo", "value": "bar", "effect": "NoSchedule"}],
            _untolerated("foo", "bar"),
            id="non-empty effect must match",
        ),
        pytest.param(
            [{"key": "foo", "operator": "Equal", "value": "bar"}],
            [{"key": "foo", "value": "bar", "effect": "NoSchedule"}],
            Status.success(),
            id="empty effect tolerates every effect",
        ),
        pytest.param(
            [{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}],
            [{"key": "dedicated", "value": "user1", "effect": PNS}],
            Status.success(),
            id="PreferNoSchedule taints do not filter",
        ),
        pytest.param(
            [],
            [{"key": "dedicated", "value": "user1", "effect": PNS}],
            Status.success(),
            id="no tolerations, PreferNoSchedule",
        ),
        pytest.param(
            [],
            [{"key": "gone", "effect": "NoExecute"}],
            _untolerated("gone", ""),
            id="NoExecute filters, empty value",
        ),
    ],
)
def test_filter(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]], want: Status) -> None:
    """Untolerated NoSchedule/NoExecute taints reject the node, naming the first such taint."""
    plugin = taint_toleration.new({}, None)  # type: ignore[arg-type]
    assert plugin.filter(CycleState(), _pod(tolerations), new_node_info(_node("nodeA", taints))) == want


def _pns(key: str, value: str) -> dict[str, str]:
    return {"key": key, "value": value, "effect": PNS}


@pytest.mark.parametrize(
    ("tolerations", "nodes", "want"),
    [
        pytest.param(
            [{"key": "foo", "operator": "Equal", "value": "bar", "effect": PNS}],
            {"nodeA": [_pns("foo", "bar")], "nodeB": [_pns("foo", "blah")]},
            {"nodeA": MAX_NODE_SCORE, "nodeB": 0},
            id="tolerated taints score higher than intolerable ones",
        ),
        pytest.param(
            [
                {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": PNS},
                {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": PNS},
            ],
            {
                "nodeA": [],
                "nodeB": [_pns("cpu-type", "arm64")],
                "nodeC": [_pns("cpu-type", "arm64"), _pns("disk-type", "ssd")],
            },
            {"nodeA": MAX_NODE_SCORE, "nodeB": MAX_NODE_SCORE, "nodeC": MAX_NODE_SCORE},
            id="the number of tolerated taints does not matter",
        ),
        pytest.param(
            [{"key": "foo", "operator": "Equal", "value": "bar", "effect": PNS}],
            {
                "nodeA": [],
                "nodeB": [_pns("cpu-type", "arm64")],
                "nodeC": [_pns("cpu-type", "arm64"), _pns("disk-type", "ssd")],
            },
            {"nodeA": MAX_NODE_SCORE, "nodeB": 50, "nodeC": 0},
            id="more intolerable taints, lower score",
        ),
        pytest.param(
            [
                {"key": "cpu-type", "operator": "Equal", "value": "arm64", "effect": "NoSchedule"},
                {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"},
            ],
            {
                "nodeA": [],
                "nodeB": [{"key": "cpu-type", "value": "arm64", "effect": "NoSchedule"}],
                "nodeC": [_pns("cpu-type", "arm64"), _pns("disk-type", "ssd")],
            },
            {"nodeA": MAX_NODE_SCORE, "nodeB": MAX_NODE_SCORE, "nodeC": 0},
            id="only PreferNoSchedule taints and tolerations count",
        ),
        pytest.param(
            [],
            {"nodeA": [], "nodeB": [_pns("cpu-type", "arm64")]},
            {"nodeA": MAX_NODE_SCORE, "nodeB": 0},
            id="no tolerations prefers the untainted node",
        ),
        pytest.param(
            [{"key": "cpu-type", "operator": "Exists"}],
            {"nodeA": [], "nodeB": [_pns("cpu-type", "arm64")]},
            {"nodeA": MAX_NODE_SCORE, "nodeB": MAX_NODE_SCORE},
            id="an effect-less toleration counts for PreferNoSchedule",
        ),
    ],
)
@pytest.mark.parametrize("run_pre_score", [True, False])
def test_score(
    tolerations: list[dict[str, Any]],
    nodes: dict[str, list[dict[str, Any]]],
    want: dict[str, int],
    run_pre_score: bool,
) -> None:
    """Scores count intolerable PreferNoSchedule taints, normalized so fewer is better."""
    plugin = taint_toleration.new({}, None)  # type: ignore[arg-type]
    pod = _pod(tolerations)
    infos = [new_node_info(_node(name, taints)) for name, taints in nodes.items()]
    state = CycleState()
    if run_pre_score:
        assert plugin.pre_score(state, pod, infos).is_success()
    scores: dict[str, int] = {}
    for info in infos:
        score, status = plugin.score(state, pod, info)
        assert status.is_success()
        scores[info.name] = score
    assert plugin.normalize_score(state, pod, scores).is_success()
    assert scores == want


def test_plugin_shape() -> None:
    """The module provides exactly filter, pre-score, score and normalize."""
    plugin = taint_toleration.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == "TaintToleration"
    for protocol in (FilterPlugin, PreScorePlugin, ScorePlugin, NormalizeScorePlugin):
        assert isinstance(plugin, protocol)
    assert not hasattr(plugin, "pre_filter")
    with pytest.raises(ValueError, match="takes no args"):
        taint_toleration.new({"x": 1}, None)  # type: ignore[arg-type]


def test_pre_score_skips_without_prefer_no_schedule_taints() -> None:
    """No candidate has a PreferNoSchedule taint: every node would normalize to 100, so pre-score
    returns Skip (a constant cannot change the winner); one such taint anywhere and it scores."""
    plugin = taint_toleration.new({}, None)  # type: ignore[arg-type]
    pod = _pod([])
    plain = [new_node_info(_node("a", [])), new_node_info(_node("b", [DEDICATED_USER1]))]
    assert plugin.pre_score(CycleState(), pod, plain).is_skip()
    tainted = [*plain, new_node_info(_node("c", [{"key": "k", "value": "v", "effect": PNS}]))]
    assert plugin.pre_score(CycleState(), pod, tainted).is_success()
