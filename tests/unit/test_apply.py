"""kpctl apply's three-way merge: what the JSON merge patch sends for removals, lists, unions and no-ops."""

from __future__ import annotations

import copy
import json
from typing import Any

from kplane.cli.apply import LAST_APPLIED, last_applied_annotation, three_way_patch


def deployment(**container: Any) -> dict[str, Any]:
    """A Deployment manifest with one container `c` (extra container fields from the keywords)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx",
                                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                         **container}]},
            },
        },
    }


FULL = {"args": ["--a", "--b"], "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "100m"}}}


def live_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the server stores after applying `manifest`: the annotation, metadata and spec defaults
    (some inside list items), and a status."""
    live = copy.deepcopy(manifest)
    meta = live["metadata"]
    meta.setdefault("annotations", {})[LAST_APPLIED] = last_applied_annotation(manifest)
    meta.update(uid="u-1", resourceVersion="7", generation=1)
    spec = live["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("strategy", {"type": "RollingUpdate"})
    if spec["strategy"]["type"] == "RollingUpdate":
        spec["strategy"].setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
    pod = spec["template"]["spec"]
    pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
    for c in pod["containers"]:
        c.setdefault("imagePullPolicy", "Always")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        for port in c.get("ports", []):
            port.setdefault("protocol", "TCP")
    live["status"] = {"replicas": 1, "observedGeneration": 1}
    return live


def original_of(live: dict[str, Any]) -> dict[str, Any]:
    """The last-applied manifest, read back from the live object's annotation as kpctl does."""
    result: dict[str, Any] = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    return result


def containers(patch: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers list a patch sends (KeyError when it sends none)."""
    result: list[dict[str, Any]] = patch["spec"]["template"]["spec"]["containers"]
    return result


def test_removing_fields_inside_a_list_item_sends_the_list_whole() -> None:
    """Dropping a container's args, ports and resources.limits sends the containers list without them."""
    live = live_of(deployment(**FULL))
    modified = deployment()
    patch = three_way_patch(original_of(live), modified, live)
    assert containers(patch) == modified["spec"]["template"]["spec"]["containers"]
    assert "status" not in patch and "strategy" not in patch["spec"]


def test_removing_a_nested_quantity_inside_a_list_item_is_sent() -> None:
    """Removing only resources.limits.cpu (the live copy still has it) replaces the containers list."""
    live = live_of(deployment(resources={"limits": {"cpu": "100m", "memory": "64Mi"}}))
    modified = deployment(resources={"limits": {"memory": "64Mi"}})
    patch = three_way_patch(original_of(live), modified, live)
    assert containers(patch)[0]["resources"] == {"limits": {"memory": "64Mi"}}


def test_removing_a_list_item_sends_the_shorter_list() -> None:
    """Removing env B sends env with A only."""
    live = live_of(deployment())
    modified = deployment(env=[{"name": "A", "value": "1"}])
    patch = three_way_patch(original_of(live), modified, live)
    assert containers(patch)[0]["env"] == [{"name": "A", "value": "1"}]


def test_a_list_changed_by_another_writer_is_restored() -> None:
    """A live list that no longer matches the manifest (someone changed the image) is sent again."""
    live = live_of(deployment())
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "httpd"
    patch = three_way_patch(original_of(live), deployment(), live)
    assert containers(patch)[0]["image"] == "nginx"


def test_reapplying_the_same_manifest_is_unchanged_despite_server_defaults() -> None:
    """Server defaults inside list items and elsewhere, plus status, do not make a re-apply a change."""
    manifest = deployment(**FULL)
    live = live_of(manifest)
    assert three_way_patch(original_of(live), manifest, live) == {}


def test_without_last_applied_defaults_inside_lists_are_unchanged() -> None:
    """An object never applied before (no annotation) whose lists only add defaults needs no list patch."""
    manifest = deployment(**FULL)
    live = live_of(manifest)
    del live["metadata"]["annotations"][LAST_APPLIED]
    patch = three_way_patch(None, manifest, live)
    assert set(patch) == {"metadata"} and set(patch["metadata"]) == {"annotations"}


def test_switching_strategy_type_removes_the_old_member() -> None:
    """Going to Recreate nulls the server-defaulted rollingUpdate ($retainKeys), and leaves the rest alone."""
    live = live_of(deployment())
    modified = deployment()
    modified["spec"]["strategy"] = {"type": "Recreate"}
    patch = three_way_patch(original_of(live), modified, live)
    assert patch["spec"] == {"strategy": {"type": "Recreate", "rollingUpdate": None}}
    after = live_of(modified)
    assert after["spec"]["strategy"] == {"type": "Recreate"}
    assert three_way_patch(original_of(after), modified, after) == {}


def test_same_strategy_type_keeps_the_defaulted_member() -> None:
    """Naming the type the object already has leaves the server's rollingUpdate defaults in place."""
    manifest = deployment()
    manifest["spec"]["strategy"] = {"type": "RollingUpdate"}
    live = live_of(manifest)
    assert three_way_patch(original_of(live), manifest, live) == {}


def test_switching_a_service_type_keeps_plain_fields() -> None:
    """Only struct members named after the old type are cleared, so a Service's clusterIP survives a type switch."""
    original: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    live = copy.deepcopy(original)
    live["metadata"]["annotations"] = {LAST_APPLIED: last_applied_annotation(original)}
    live["spec"].update(clusterIP="10.0.0.7", sessionAffinity="None")
    live["spec"]["ports"] = [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    modified = copy.deepcopy(original)
    modified["spec"]["type"] = "NodePort"
    patch = three_way_patch(original, modified, live)
    assert patch["spec"] == {"type": "NodePort"}


def test_removed_annotation_is_deleted_and_others_kept() -> None:
    """An annotation dropped from the manifest is nulled; one set by another writer is left alone."""
    manifest = deployment()
    manifest["metadata"]["annotations"] = {"team": "a", "note": "x"}
    live = live_of(manifest)
    live["metadata"]["annotations"]["other-writer"] = "keep"
    modified = deployment()
    modified["metadata"]["annotations"] = {"team": "a"}
    patch = three_way_patch(original_of(live), modified, live)
    annotations = patch["metadata"]["annotations"]
    assert annotations["note"] is None
    assert "team" not in annotations and "other-writer" not in annotations
    assert json.loads(annotations[LAST_APPLIED])["metadata"]["annotations"] == {"team": "a"}
    assert set(patch) == {"metadata"}
