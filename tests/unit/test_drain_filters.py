"""kpctl drain's pod filters and messages (kubectl's drain package, table-tested)."""

from __future__ import annotations

import pytest

from kplane.api.pb import core_pb2
from kplane.cli.drain import (
    DrainFlags,
    aggregate_message,
    deletion_errors,
    deletion_warnings,
    go_duration,
    pod_delete_status,
)


def pod(name: str, *, owner: str = "", phase: str = "Running", empty_dir: bool = False, mirror: bool = False,
        deleting: bool = False) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, "ns"
    if owner:
        p.metadata.ownerReferences.add(kind=owner, name=f"{name}-owner", controller=True, apiVersion="apps/v1")
    if mirror:
        p.metadata.annotations["kubernetes.io/config.mirror"] = "abc"
    if deleting:
        p.metadata.deletionTimestamp.FromSeconds(1)
    if empty_dir:
        p.spec.volumes.add(name="v").emptyDir.SetInParent()
    p.status.phase = phase
    return p


def ds_exists(namespace: str, name: str) -> str | None:
    return None if name != "gone-owner" else 'daemonsets.apps "gone-owner" not found'


NONE, ALL = DrainFlags(), DrainFlags(ignore_daemonsets=True, delete_emptydir_data=True, force=True)


@pytest.mark.parametrize("p, flags, want", [
    (pod("rs", owner="ReplicaSet"), NONE, (True, "Okay", "")),
    (pod("ds", owner="DaemonSet"), NONE, (False, "Error", "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)")),
    (pod("ds", owner="DaemonSet"), ALL, (False, "Warning", "ignoring DaemonSet-managed Pods")),
    (pod("ds", owner="DaemonSet", phase="Succeeded"), NONE, (True, "Okay", "")),
    (pod("gone", owner="DaemonSet"), NONE, (False, "Error", 'daemonsets.apps "gone-owner" not found')),
    (pod("gone", owner="DaemonSet"), ALL, (True, "Okay", "")),  # orphan removed with --force (warning overwritten)
    (pod("mirror", mirror=True), NONE, (False, "Skip", "")),
    (pod("deleting", deleting=True), NONE, (False, "Skip", "")),
    (pod("scratch", owner="ReplicaSet", empty_dir=True), NONE,
     (False, "Error", "Pods with local storage (use --delete-emptydir-data to override)")),
    # kubectl's later filter overwrites the local-storage warning of a pod with a controller
    (pod("scratch", owner="ReplicaSet", empty_dir=True), ALL, (True, "Okay", "")),
    (pod("scratch", empty_dir=True, phase="Failed"), NONE, (True, "Okay", "")),
    (pod("lonely"), NONE, (False, "Error", "cannot delete Pods that declare no controller (use --force to override)")),
    (pod("lonely"), ALL, (True, "Warning", "deleting Pods that declare no controller")),
    (pod("lonely", phase="Succeeded"), NONE, (True, "Okay", "")),
])
def test_pod_delete_status(p: core_pb2.Pod, flags: DrainFlags, want: tuple[bool, str, str]) -> None:
    status = pod_delete_status(p, flags, daemonset_exists=ds_exists)
    assert (status.delete, status.reason, status.message) == want


def test_errors_and_warnings_group_pods_by_reason() -> None:
    items = [(p, pod_delete_status(p, NONE, daemonset_exists=ds_exists))
             for p in (pod("ds1", owner="DaemonSet"), pod("ds2", owner="DaemonSet"), pod("lonely"), pod("ok", owner="Job"))]
    assert deletion_errors(items) == [
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ns/ds1, ns/ds2",
        "cannot delete cannot delete Pods that declare no controller (use --force to override): ns/lonely"]
    items = [(p, pod_delete_status(p, ALL, daemonset_exists=ds_exists)) for p in (pod("ds1", owner="DaemonSet"), pod("lonely"))]
    assert deletion_errors(items) == []
    assert deletion_warnings(items) == ("deleting Pods that declare no controller: ns/lonely; "
                                        "ignoring DaemonSet-managed Pods: ns/ds1")


def test_aggregate_and_durations_as_go_prints_them() -> None:
    assert aggregate_message(["a"]) == "a" and aggregate_message(["a", "b"]) == "[a, b]"
    assert [go_duration(s) for s in (0, 3, 1.5, 90, 3600)] == ["0s", "3s", "1.5s", "1m30s", "1h0m0s"]
