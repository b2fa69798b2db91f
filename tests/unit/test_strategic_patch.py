"""Strategic merge patch semantics for the lists and directives kplane supports."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.patch import strategic_merge

POD: dict[str, Any] = {
    "metadata": {"finalizers": ["a", "b"]},
    "spec": {
        "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]},
                       {"name": "side", "image": "busybox"}],
        "tolerations": [{"key": "x", "operator": "Exists"}],
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
    },
}


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        ({"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}},
         lambda r: [c["image"] for c in r["spec"]["containers"]] == ["nginx:2", "busybox"]
         and r["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]),
        ({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}},
         lambda r: [c["name"] for c in r["spec"]["containers"]] == ["web"]),
        ({"spec": {"containers": [{"name": "new", "image": "x"}]}},
         lambda r: [c["name"] for c in r["spec"]["containers"]] == ["web", "side", "new"]),
        ({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}},
         lambda r: [c["name"] for c in r["spec"]["containers"]] == ["only"]),
        ({"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}},
         lambda r: r["spec"]["tolerations"] == [{"key": "y", "operator": "Exists"}]),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
         lambda r: r["metadata"]["finalizers"] == ["b"]),
        ({"metadata": {"finalizers": ["c"]}}, lambda r: r["metadata"]["finalizers"] == ["a", "b", "c"]),
        ({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
         lambda r: r["spec"]["strategy"] == {"type": "Recreate"}),
        ({"spec": {"strategy": None}}, lambda r: "strategy" not in r["spec"]),
    ],
    ids=["merge-by-name", "delete-item", "add-item", "replace-list", "atomic-list", "delete-from-primitive",
         "merge-primitive-set", "retain-keys", "null-deletes"],
)
def test_strategic_merge(patch: dict[str, Any], check: Any) -> None:
    """Each directive and list strategy produces what Kubernetes' strategic merge produces."""
    result = strategic_merge(POD, patch)
    assert check(result), result
    assert POD["spec"]["containers"][1]["name"] == "side"  # the original is never mutated
