"""NodeUnschedulable plugin, ported from upstream's node_unschedulable_test.go."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import CycleState, FilterPlugin, Status
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import node_unschedulable

UNSCHEDULABLE = Status.unresolvable("node(s) were unschedulable")


@pytest.mark.parametrize(
    ("tolerations", "unschedulable", "want"),
    [
        pytest.param([], True, UNSCHEDULABLE, id="does not schedule pod to unschedulable node"),
        pytest.param([], False, Status.success(), id="schedules pod to normal node"),
        pytest.param(
            [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
            True,
            Status.success(),
            id="schedules pod with toleration to unschedulable node",
        ),
        pytest.param([{"operator": "Exists"}], True, Status.success(), id="tolerate-everything toleration"),
        pytest.param(
            [{"key": "node.kubernetes.io/unschedulable", "effect": "NoExecute"}],
            True,
            UNSCHEDULABLE,
            id="toleration for another effect",
        ),
    ],
)
def test_filter(tolerations: list[dict[str, Any]], unschedulable: bool, want: Status) -> None:
    """A cordoned node takes only pods tolerating the unschedulable:NoSchedule taint."""
    plugin = node_unschedulable.new({}, None)  # type: ignore[arg-type]
    pod = codec.from_dict({"spec": {"tolerations": tolerations}}, core_pb2.Pod)
    node = codec.from_dict(
        {"metadata": {"name": "n"}, "spec": {"unschedulable": unschedulable}}, core_pb2.Node
    )
    assert plugin.filter(CycleState(), pod, new_node_info(node)) == want


def test_plugin_shape() -> None:
    """The module registers as a filter plugin and rejects args it does not take."""
    plugin = node_unschedulable.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == "NodeUnschedulable"
    assert isinstance(plugin, FilterPlugin)
    with pytest.raises(ValueError, match="takes no args"):
        node_unschedulable.new({"x": 1}, None)  # type: ignore[arg-type]
