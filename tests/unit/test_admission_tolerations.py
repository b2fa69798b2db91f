"""DefaultTolerationSeconds admission: which pods get the not-ready/unreachable tolerations."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.admission import Admission, AdmissionOptions, default_toleration_seconds
from kplane.api.resources import resolve

NR, UR = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"


def pod(tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"metadata": {"name": "p"}, "spec": spec}


def keys(p: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(t.get("key", ""), t.get("tolerationSeconds")) for t in p["spec"].get("tolerations", [])]


def test_a_pod_without_tolerations_gets_both_with_the_configured_seconds() -> None:
    p = pod()
    added = default_toleration_seconds(p, AdmissionOptions(10, 20))
    assert added == [{"key": NR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
                     {"key": UR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20}]
    assert p["spec"]["tolerations"] == added


@pytest.mark.parametrize("existing, want_added", [
    ([{"key": NR, "operator": "Exists", "effect": "NoExecute"}], [UR]),
    ([{"key": UR, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7}], [NR]),
    ([{"key": NR, "operator": "Exists"}], [UR]),  # empty effect covers NoExecute
    ([{"operator": "Exists"}], []),  # tolerates everything
    ([{"operator": "Exists", "effect": "NoExecute"}], []),
    ([{"key": NR, "operator": "Exists", "effect": "NoSchedule"}], [NR, UR]),  # NoSchedule does not count
    ([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoExecute"}], [NR, UR]),
])
def test_existing_tolerations_are_respected(existing: list[dict[str, Any]], want_added: list[str]) -> None:
    p = pod(existing)
    added = default_toleration_seconds(p, AdmissionOptions())
    assert [t["key"] for t in added] == want_added
    assert p["spec"]["tolerations"][: len(existing)] == existing  # the user's come first, unchanged
    assert all(t["tolerationSeconds"] == 300 for t in added)


def test_admission_touches_pods_only() -> None:
    adm = Admission(AdmissionOptions(5, 5))
    p = pod()
    adm.admit_create(resolve("pods"), p)
    assert keys(p) == [(NR, 5), (UR, 5)]
    cm: dict[str, Any] = {"metadata": {"name": "c"}, "data": {}}
    adm.admit_create(resolve("configmaps"), cm)
    assert cm == {"metadata": {"name": "c"}, "data": {}}
