"""How changes read: YAML diffs, one-line summaries, writers, and kpctl events' ordering and columns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kplane.api.resources import resolve
from kplane.cli import changes as render
from kplane.cli.events import by_time, event_row, last_seen

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-7d9f-abcde", "namespace": "default", "resourceVersion": "10", "labels": {"app": "web"},
                 "managedFields": [{"manager": "kpctl", "operation": "Update"}]},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "side", "image": "busybox"}]},
    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]},
}


def modified(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(POD)
    out["metadata"]["resourceVersion"] = "11"
    for path, value in changes.items():
        node = out
        parts = path.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def test_summary_names_the_field_the_scheduler_set() -> None:
    """Binding reads as `spec.nodeName: "" → node-2`, the scheduled condition after it."""
    bound = modified(spec__nodeName="node-2")
    bound["status"]["conditions"] = [{"type": "PodScheduled", "status": "True",
                                      "lastTransitionTime": "2026-11-22T01:00:00Z"}]
    assert render.summarize("MODIFIED", POD, bound) == (
        'spec.nodeName: "" → node-2; status.conditions[PodScheduled].status: False → True; '
        'status.conditions[PodScheduled].lastTransitionTime: "" → 2026-11-22T01:00:00Z')


def test_summary_keys_list_items_by_name_and_ignores_bookkeeping() -> None:
    """A container's image change is named by the container; resourceVersion/managedFields never show."""
    new = modified()
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["metadata"]["managedFields"] = [{"manager": "someone-else"}]
    assert render.summarize("MODIFIED", POD, new) == "spec.containers[web].image: nginx:1.25 → nginx:1.26"
    assert render.summarize("MODIFIED", POD, modified()) == "no change"


def test_summary_limits_and_counts_the_rest() -> None:
    """More than three changes: the first three and how many more."""
    new = modified(status__phase="Running", status__podIP="127.244.0.2", status__hostIP="127.0.1.1",
                   status__startTime="2026-11-22T01:00:00Z")
    text = render.summarize("MODIFIED", POD, new)
    assert text.startswith("status.phase: Pending → Running; status.podIP: \"\" → 127.244.0.2")
    assert text.endswith("+1 more") and "startTime" not in text  # timestamps go last


def test_summary_of_creation_deletion_and_graceful_deletion() -> None:
    """Created/deleted say so; a deletionTimestamp appearing reads as a deletion request with its grace."""
    assert render.summarize("ADDED", None, POD) == "created"
    assert render.summarize("DELETED", POD, POD) == "deleted"
    terminating = modified(metadata__deletionTimestamp="2026-11-22T01:00:30Z", metadata__deletionGracePeriodSeconds=30)
    assert render.summarize("MODIFIED", POD, terminating) == "deletion requested (grace 30s)"


def test_summary_of_an_event_is_its_reason_and_message() -> None:
    """Events summarise as `Type Reason: message`, with the count when repeated."""
    event = {"kind": "Event", "type": "Warning", "reason": "BackOff", "message": "Back-off restarting\n", "count": 3}
    assert render.summarize("MODIFIED", event, event) == "Warning BackOff: Back-off restarting (x3)"


def test_values_are_quoted_when_empty_and_truncated_when_long() -> None:
    """Empty and absent show as "", long values end in an ellipsis, structures as compact JSON."""
    assert render.format_value(None) == '""' and render.format_value("") == '""'
    assert render.format_value("x" * 100).endswith("…") and len(render.format_value("x" * 100)) == 48
    assert render.format_value({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert render.format_value("two words") == "two words" and render.format_value(" pad") == '" pad"'


def test_flatten_keeps_scalar_lists_whole_and_indexes_anonymous_objects() -> None:
    """Lists of scalars are one leaf; lists of objects without a key are indexed."""
    leaves = dict(render.flatten({"a": ["x", "y"], "b": [{"v": 1}, {"v": 2}], "c": {}}))
    assert leaves == {"a": ["x", "y"], "b[0].v": 1, "b[1].v": 2, "c": {}}


def test_yaml_diff_is_unified_and_optionally_coloured() -> None:
    """The diff shows only what changed (not resourceVersion), hunks only; colour only when asked."""
    new = modified(spec__nodeName="node-2")
    plain = render.yaml_diff(POD, new)
    assert "+  nodeName: node-2" in plain.splitlines()
    assert "resourceVersion" not in plain and "managedFields" not in plain
    assert not plain.startswith("---") and plain.startswith("@@")
    coloured = render.yaml_diff(POD, new, color=True)
    assert f"{render.GREEN}+  nodeName: node-2{render.RESET}" in coloured
    assert render.yaml_diff(POD, modified()) == ""
    assert "managedFields" in render.yaml_diff(POD, modified(metadata__managedFields=[]), keep_managed_fields=True)


def test_writer_and_times() -> None:
    """A CLI writer shows its user; unattributed changes show a dash; times to the millisecond."""
    assert render.writer_name("kpctl", "alice") == "kpctl (alice)"
    assert render.writer_name("kube-scheduler") == "kube-scheduler"
    assert render.writer_name("") == "-"
    assert render.verb_text("update", "status") == "update status" and render.verb_text("") == ""
    moment = render.time_of(1_795_310_519, 720_000_000)
    assert render.iso_millis(moment) == "2026-11-22T01:21:59.720Z"
    assert render.time_of(0, 0) is None and render.clock_millis(None) == "-"


def _event(name: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "Event", "metadata": {"name": name, "namespace": "default"}, "type": "Normal", "reason": "R",
            "involvedObject": {"kind": "Pod", "name": "web"}, "message": " hello ", **fields}


def test_kpctl_events_sort_by_when_they_last_happened() -> None:
    """Oldest first by series.lastObservedTime, else lastTimestamp, else eventTime (kubectl's order)."""
    events = [
        _event("c", lastTimestamp="2026-11-22T01:00:03Z"),
        _event("a", eventTime="2026-11-22T01:00:01.000000Z"),
        _event("b", series={"count": 2, "lastObservedTime": "2026-11-22T01:00:02.000000Z"},
               lastTimestamp="2026-11-22T01:00:09Z"),
    ]
    assert [e["metadata"]["name"] for e in by_time(resolve("events"), events)] == ["a", "b", "c"]
    pods = [{"metadata": {"name": "z"}}, {"metadata": {"name": "a"}}]
    assert by_time(resolve("pods"), pods) == pods


def test_kpctl_events_columns_and_last_seen() -> None:
    """LAST SEEN shows repeats as kubectl does; OBJECT is Kind/name; -A puts the namespace first."""
    now = datetime(2026, 11, 22, 1, 10, tzinfo=UTC)
    repeated = _event("x", count=3, firstTimestamp="2026-11-22T01:00:00Z", lastTimestamp="2026-11-22T01:08:00Z")
    assert last_seen(repeated, now) == "2m (x3 over 10m)"
    once = _event("y", firstTimestamp="2026-11-22T01:09:15Z", lastTimestamp="2026-11-22T01:09:15Z", count=1)
    assert event_row(once, now, False) == ["45s", "Normal", "R", "Pod/web", "hello"]
    assert event_row(once, now, True)[0] == "default"


@pytest.mark.parametrize("value", ["", None])
def test_clean_drops_bookkeeping_only(value: Any) -> None:
    """clean() removes resourceVersion and managedFields (unless kept) and nothing else."""
    obj = {"metadata": {"name": "a", "resourceVersion": "1", "managedFields": [value]}, "spec": {}}
    assert render.clean(obj) == {"metadata": {"name": "a"}, "spec": {}}
    assert "managedFields" in render.clean(obj, keep_managed_fields=True)["metadata"]
    assert obj["metadata"]["resourceVersion"] == "1"  # the input is not modified


def test_change_decoder_decodes_each_state_once() -> None:
    """A change's previous state is the object of the change before it: decoded once, shared."""
    from google.protobuf.any_pb2 import Any as AnyPb

    from kplane.api.pb import api_pb2
    from kplane.api.resources import object_from_dict
    from kplane.cli.history import ChangeDecoder

    pods = resolve("pods")
    states = []
    for phase in ("Pending", "Running", "Succeeded"):
        _, msg = object_from_dict({**copy.deepcopy(POD), "status": {"phase": phase}})
        states.append(AnyPb(type_url=pods.type_url, value=msg.SerializeToString()))
    ref = api_pb2.ResourceRef(resource="pods", namespace="default", name="web-7d9f-abcde")
    decoder = ChangeDecoder(size=1)
    added, none = decoder.pair(api_pb2.Change(type="ADDED", ref=ref, object=states[0]))
    assert none is None and added["status"]["phase"] == "Pending"
    running, before = decoder.pair(api_pb2.Change(type="MODIFIED", ref=ref, object=states[1], previous=states[0]))
    assert before is added and running["status"]["phase"] == "Running"
    other = api_pb2.ResourceRef(resource="pods", namespace="default", name="other")
    decoder.pair(api_pb2.Change(type="ADDED", ref=other, object=states[0]))  # evicts web (size 1)
    done, before = decoder.pair(api_pb2.Change(type="MODIFIED", ref=ref, object=states[2], previous=states[1]))
    assert before is not running and before == running and done["status"]["phase"] == "Succeeded"
    last, before = decoder.pair(api_pb2.Change(type="DELETED", ref=ref, object=states[2], previous=states[2]))
    assert last is before and last["status"]["phase"] == "Succeeded"
