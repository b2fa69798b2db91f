"""NodeName plugin, ported from upstream's node_name_test.go."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import CycleState, FilterPlugin, Status
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import node_name


@pytest.mark.parametrize(
    ("pod", "node", "want"),
    [
        pytest.param({}, {}, Status.success(), id="no host specified"),
        pytest.param(
            {"spec": {"nodeName": "foo"}}, {"metadata": {"name": "foo"}}, Status.success(), id="host matches"
        ),
        pytest.param(
            {"spec": {"nodeName": "bar"}},
            {"metadata": {"name": "foo"}},
            Status.unresolvable("node(s) didn't match the requested node name"),
            id="host doesn't match",
        ),
    ],
)
def test_filter(pod: dict[str, Any], node: dict[str, Any], want: Status) -> None:
    """A pod naming a node fits only that node, and the rejection is unresolvable."""
    plugin = node_name.new({}, None)  # type: ignore[arg-type]
    got = plugin.filter(
        CycleState(), codec.from_dict(pod, core_pb2.Pod), new_node_info(codec.from_dict(node, core_pb2.Node))
    )
    assert got == want


def test_plugin_shape() -> None:
    """The module registers as a filter plugin and rejects args it does not take."""
    plugin = node_name.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == node_name.NAME == "NodeName"
    assert isinstance(plugin, FilterPlugin)
    with pytest.raises(ValueError, match="takes no args"):
        node_name.new({"x": 1}, None)  # type: ignore[arg-type]


def test_pre_filter_skips_pods_without_a_node_name() -> None:
    """Every node fits a pod that names none: pre-filter returns Skip so no node is filtered."""
    plugin = node_name.new({}, None)  # type: ignore[arg-type]
    assert plugin.pre_filter(CycleState(), codec.from_dict({}, core_pb2.Pod), [])[1].is_skip()
    named = codec.from_dict({"spec": {"nodeName": "foo"}}, core_pb2.Pod)
    assert plugin.pre_filter(CycleState(), named, []) == (None, Status.success())
