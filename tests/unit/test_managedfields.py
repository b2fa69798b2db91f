"""managedFields bookkeeping: who owns which fields after creates and updates (two levels deep)."""

from __future__ import annotations

import copy
from typing import Any

from apiserver import audit
from apiserver.managedfields import changed_fields, from_fields_v1, present_fields, stamp, to_fields_v1

NOW = "2026-11-22T01:00:00Z"


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}, "status": {"phase": "Pending"}}


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    return {(e["manager"], e.get("subresource", "")): from_fields_v1(e["fieldsV1"])
            for e in obj["metadata"].get("managedFields", [])}


def test_fields_v1_round_trips_two_levels() -> None:
    """FieldsV1 is Kubernetes' `f:` shape; server-owned metadata is never a field anyone owns."""
    fields = present_fields(pod())
    assert ("metadata", "labels") in fields and ("metadata", "uid") not in fields
    assert ("metadata", "name") not in fields and ("apiVersion",) not in fields
    doc = to_fields_v1(fields)
    assert doc["f:spec"] == {"f:containers": {}} and doc["f:metadata"] == {"f:labels": {}}
    assert from_fields_v1(doc) == fields
    assert to_fields_v1({("data",)}) == {"f:data": {}}


def test_create_gives_the_creator_every_field() -> None:
    """The creator's one Update entry owns every present field, with time and apiVersion."""
    obj = pod()
    stamp(obj, None, manager="kpctl", subresource="", api_version="v1", now=NOW)
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "kpctl" and entry["operation"] == "Update" and entry["time"] == NOW
    assert entry["fieldsType"] == "FieldsV1" and "subresource" not in entry
    assert from_fields_v1(entry["fieldsV1"]) == present_fields(obj)


def test_updates_transfer_ownership_of_changed_fields() -> None:
    """The scheduler takes spec.nodeName, the kubelet status.phase; the creator keeps the rest."""
    created = pod()
    stamp(created, None, manager="kpctl", subresource="", api_version="v1", now=NOW)
    bound = copy.deepcopy(created)
    bound["spec"]["nodeName"] = "node-1"
    stamp(bound, created, manager="kube-scheduler", subresource="binding", api_version="v1", now=NOW)
    running = copy.deepcopy(bound)
    running["status"]["phase"] = "Running"
    stamp(running, bound, manager="kubelet/node-1", subresource="status", api_version="v1", now=NOW)
    owners = entries(running)
    assert owners[("kube-scheduler", "binding")] == {("spec", "nodeName")}
    assert owners[("kubelet/node-1", "status")] == {("status", "phase")}
    assert ("status", "phase") not in owners[("kpctl", "")]
    assert ("spec", "containers") in owners[("kpctl", "")]


def test_a_manager_losing_all_fields_is_dropped_and_removed_fields_are_unowned() -> None:
    """An entry with nothing left disappears; a removed field belongs to nobody."""
    created = pod()
    stamp(created, None, manager="a", subresource="", api_version="v1", now=NOW)
    labelled = copy.deepcopy(created)
    labelled["metadata"]["labels"]["tier"] = "x"
    stamp(labelled, created, manager="b", subresource="", api_version="v1", now=NOW)
    assert entries(labelled)[("b", "")] == {("metadata", "labels")}
    unlabelled = copy.deepcopy(labelled)
    del unlabelled["metadata"]["labels"]
    stamp(unlabelled, labelled, manager="a", subresource="", api_version="v1", now=NOW)
    assert ("b", "") not in entries(unlabelled)
    assert all(("metadata", "labels") not in f for f in entries(unlabelled).values())


def test_changed_fields_compares_children_of_objects_and_whole_scalars() -> None:
    """Only differing children count; a scalar top-level field counts as itself."""
    old = {"spec": {"a": 1, "b": 2}, "type": "x", "metadata": {"resourceVersion": "1"}}
    new = {"spec": {"a": 1, "b": 3}, "type": "y", "metadata": {"resourceVersion": "2"}}
    assert changed_fields(old, new) == {("spec", "b"), ("type",)}


def test_stamp_write_uses_the_request_scope() -> None:
    """Inside a request the manager and subresource come from the request; outside, the apiserver."""

    class Ctx:
        def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
            return (("x-kplane-identity", "kube-scheduler"),)

    from apiserver.managedfields import stamp_write

    log = audit.AuditLog()
    scope = log.begin("create", None, Ctx())
    try:
        obj = pod()
        stamp_write("v1", obj, None, "binding")
        assert obj["metadata"]["managedFields"][0]["manager"] == "kube-scheduler"
        assert obj["metadata"]["managedFields"][0]["subresource"] == "binding"
        assert audit.current() is not None and audit.current().subresource == "binding"  # type: ignore[union-attr]
    finally:
        log.end(scope, "OK")
    assert audit.current() is None
    obj = pod()
    stamp_write("v1", obj, None)
    assert obj["metadata"]["managedFields"][0]["manager"] == audit.SYSTEM_MANAGER
