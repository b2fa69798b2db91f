"""The kubelet's status writes keep conditions other components own (DisruptionTarget) and notice
when the server's copy of its own conditions was changed (Ready=False from the node controller)."""

from __future__ import annotations

from kplane.api.pb import core_pb2
from kubelet.status import kubelet_conditions, with_server_conditions


def status(*conds: tuple[str, str]) -> core_pb2.PodStatus:
    st = core_pb2.PodStatus(phase="Running")
    for ctype, value in conds:
        st.conditions.add(type=ctype, status=value)
    return st


def test_conditions_owned_by_others_survive_a_kubelet_write() -> None:
    server = status(("Ready", "False"), ("DisruptionTarget", "True"), ("PodScheduled", "True"))
    ours = status(("Ready", "True"), ("PodScheduled", "True"))
    merged = with_server_conditions(server, ours)
    assert [(c.type, c.status) for c in merged.conditions] == [
        ("Ready", "True"), ("PodScheduled", "True"), ("DisruptionTarget", "True")]
    assert with_server_conditions(status(("Ready", "False")), ours) is ours  # nothing to keep: unchanged


def test_kubelet_conditions_tell_a_changed_server_copy_apart() -> None:
    sent = status(("Ready", "True"), ("PodScheduled", "True"), ("ContainersReady", "True"))
    server = status(("Ready", "False"), ("PodScheduled", "True"), ("ContainersReady", "True"))
    assert kubelet_conditions(sent) != kubelet_conditions(server)
    server.conditions[0].status = "True"
    server.conditions.add(type="DisruptionTarget", status="True")
    assert kubelet_conditions(sent) == kubelet_conditions(server)
