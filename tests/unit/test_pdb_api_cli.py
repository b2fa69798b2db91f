"""PodDisruptionBudget validation (ValidatePodDisruptionBudgetSpec / StatusUpdate, every error
with its path) and its kpctl faces: the `get` table, `describe`, and the object `create pdb`
builds (compared byte for byte with kubectl 1.32's --dry-run=client -o yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kplane.api.resources import resolve
from kplane.api.validation import validate_create, validate_status_update, validate_update
from kplane.cli import printers
from kplane.cli.describe import describe
from kplane.cli.kpctl import CLIError
from kplane.cli.workloads import build_pdb, parse_to_label_selector

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def budget(**spec: Any) -> dict[str, Any]:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-11-22T11:55:00Z"},
            "spec": spec}


def errors(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in validate_create("PodDisruptionBudget", obj)]


def test_the_resource_is_registered_like_kubernetes() -> None:
    rt = resolve("pdb")
    assert (rt.group, rt.version, rt.kind, rt.plural, rt.namespaced) == \
        ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True)
    assert rt.subresources == ("status",) and resolve("poddisruptionbudgets.policy") is rt


@pytest.mark.parametrize("spec", [
    {"minAvailable": 0}, {"minAvailable": 3}, {"minAvailable": "0%"}, {"minAvailable": "100%"},
    {"maxUnavailable": 1}, {"maxUnavailable": "25%"}, {}, {"selector": {}},
    {"minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "IfHealthyBudget"},
])
def test_valid_budgets(spec: dict[str, Any]) -> None:
    assert errors(budget(**spec)) == []


@pytest.mark.parametrize(("spec", "want"), [
    ({"minAvailable": -1}, ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]),
    ({"maxUnavailable": "101%"}, ['spec.maxUnavailable: Invalid value: "101%": must not be greater than 100%']),
    ({"minAvailable": "ten"}, ['spec.minAvailable: Invalid value: "ten": a valid percent string must be a numeric '
                               "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation "
                               "is '[0-9]+%')"]),
    ({"unhealthyPodEvictionPolicy": "Never"},
     ['spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", '
      '"IfHealthyBudget"']),
    ({"selector": {"matchLabels": {"a b": "c"}}}, None),
])
def test_invalid_budgets_name_the_field(spec: dict[str, Any], want: list[str] | None) -> None:
    got = errors(budget(**spec))
    if want is None:
        assert got and all(m.startswith("spec.selector.matchLabels") for m in got), got
    else:
        assert got == want


def test_both_bounds_is_invalid_at_spec_and_every_error_is_reported() -> None:
    got = errors(budget(minAvailable="200%", maxUnavailable=-2))
    assert len(got) == 3
    assert got[0].startswith("spec: Invalid value: ") and got[0].endswith(
        "minAvailable and maxUnavailable cannot be both set")
    assert got[1:] == ['spec.minAvailable: Invalid value: "200%": must not be greater than 100%',
                       "spec.maxUnavailable: Invalid value: -2: must be greater than or equal to 0"]


def test_spec_updates_are_validated_too() -> None:
    old = budget(minAvailable=1)
    assert validate_update("PodDisruptionBudget", budget(minAvailable="50%"), old) == []
    assert [e.field for e in validate_update("PodDisruptionBudget", budget(maxUnavailable="x%"), old)] == \
        ["spec.maxUnavailable"]


def test_status_updates_check_counts_and_conditions() -> None:
    old = budget(minAvailable=1)
    new = budget(minAvailable=1)
    new["status"] = {"disruptionsAllowed": -1, "currentHealthy": 1, "desiredHealthy": -3, "expectedPods": 2,
                     "conditions": [{"type": "DisruptionAllowed", "status": "Maybe", "reason": "bad reason!",
                                     "lastTransitionTime": "2026-11-22T11:00:00Z"},
                                    {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods"}]}
    fields = [e.field for e in validate_status_update("PodDisruptionBudget", new, old)]
    assert fields == ["status.conditions[0].status", "status.conditions[0].reason", "status.conditions[1].type",
                      "status.conditions[1].lastTransitionTime", "status.disruptionsAllowed", "status.desiredHealthy"]


def test_get_table_matches_kubectl() -> None:
    objs = [budget(minAvailable=1), {**budget(maxUnavailable="25%"), "status": {"disruptionsAllowed": 2}}]
    objs[1]["metadata"] = {**objs[1]["metadata"], "name": "db"}
    assert printers.render_table(objs, now=NOW) == (
        "NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE\n"
        "web    1               N/A               0                     5m\n"
        "db     N/A             25%               2                     5m\n")


def test_describe_matches_kubectl() -> None:
    obj = {**budget(maxUnavailable="25%", selector={"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
           "status": {"disruptionsAllowed": 1, "currentHealthy": 4, "desiredHealthy": 3, "expectedPods": 4}}
    assert describe(obj, [], NOW) == (
        "Name:             web\n"
        "Namespace:        default\n"
        "Max unavailable:  25%\n"
        "Selector:         app=web,tier in (a,b)\n"
        "Status:\n"
        "    Allowed disruptions:  1\n"
        "    Current:              4\n"
        "    Desired:              3\n"
        "    Total:                4\n"
        "Events:                   <none>\n")
    unset = budget(minAvailable="50%")
    del unset["spec"]["selector"]
    assert "Selector:       <unset>\n" in describe(unset, None, NOW)


def test_create_pdb_builds_what_kubectl_builds() -> None:
    got = printers.render_yaml(build_pdb("my-pdb", "app=rails,tier in (b,a),!x", "", "50%", "foo"))
    assert got == """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  creationTimestamp: null
  name: my-pdb
  namespace: foo
spec:
  maxUnavailable: 50%
  selector:
    matchExpressions:
    - key: tier
      operator: In
      values:
      - a
      - b
    - key: x
      operator: DoesNotExist
    matchLabels:
      app: rails
status:
  currentHealthy: 0
  desiredHealthy: 0
  disruptionsAllowed: 0
  expectedPods: 0
"""
    assert build_pdb("p", "a=b", "2", "", None)["spec"]["minAvailable"] == 2
    with pytest.raises(CLIError, match='"!=" is not a valid label selector operator'):
        parse_to_label_selector("a!=b")
    with pytest.raises(CLIError, match="\"gt\" isn't supported in label selectors"):
        parse_to_label_selector("a>1")
