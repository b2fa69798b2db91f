"""kplane.api.scheduling against upstream's node affinity and taint/toleration vectors.

Every conformance case runs twice: on the table's JSON dicts and on the protobuf messages decoded
from them, since the helpers accept both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from kplane.api import codec
from kplane.api import field as fe
from kplane.api.labels import parse_selector
from kplane.api.pb import core_pb2
from kplane.api.scheduling import (
    DO_NOT_SCHEDULE_EFFECTS,
    NodeSelectorError,
    compile_node_selector,
    compile_preferred_terms,
    find_matching_untolerated_taint,
    match_node_selector_terms,
    match_taint,
    node_matches_node_selector,
    parse_taint,
    preferred_score,
    required_node_affinity,
    requirements_as_selector,
    taint_to_string,
    tolerates_taint,
    tolerations_tolerate_taint,
)

AFFINITY = "node_affinity.json"
TAINTS = "taints_tolerations.json"
FORMS = ["dict", "proto"]
_GATED = "TaintTolerationComparisonOperators (alpha, Gt/Lt tolerations) is not implemented"
_ERROR_TYPES = {"Invalid": fe.INVALID, "NotSupported": fe.NOT_SUPPORTED}


def _as(form: str, msg_cls: type[Any]) -> Callable[[Any], Any]:
    """A converter from the table's JSON to `form` (None stays None)."""

    def convert(data: Any) -> Any:
        if form == "dict" or data is None:
            return data
        return codec.from_dict(data, msg_cls)

    return convert


def _as_list(form: str, msg_cls: type[Any], items: list[Any] | None) -> Any:
    convert = _as(form, msg_cls)
    return None if items is None else [convert(item) for item in items]


def _error_rows(errors: list[fe.FieldError]) -> list[dict[str, Any]]:
    return [{"reason": e.reason, "field": e.field, "detail": e.detail, "bad_value": e.value} for e in errors]


def _expected_rows(expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "reason": _ERROR_TYPES[e["type"]],
            "field": e["field"],
            "detail": e["detail"],
            "bad_value": e["bad_value"],
        }
        for e in expected
    ]


def _skip_gated(case: dict[str, Any]) -> None:
    if case.get("comparison_operators_enabled"):
        pytest.skip(_GATED)


# ----- node affinity -------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(AFFINITY, "node_selector_match")
def test_node_selector_match(case: dict[str, Any], form: str) -> None:
    """A strict NodeSelector reports every parse error, else ORs its terms over the node."""
    ns = _as(form, core_pb2.NodeSelector)(case["node_selector"])
    node = _as(form, core_pb2.Node)(case["node"])
    if "expected_errors" in case:
        with pytest.raises(NodeSelectorError) as info:
            compile_node_selector(ns, strict=True)
        assert _error_rows(info.value.errors) == _expected_rows(case["expected_errors"])
        return
    assert compile_node_selector(ns, strict=True).matches(node) is case["expected_match"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(AFFINITY, "preferred_scheduling_terms_score")
def test_preferred_scheduling_terms_score(case: dict[str, Any], form: str) -> None:
    """Preferred terms score the sum of matching weights, or report every parse error."""
    terms = _as_list(form, core_pb2.PreferredSchedulingTerm, case["preferred_terms"])
    node = _as(form, core_pb2.Node)(case["node"])
    if "expected_errors" in case:
        with pytest.raises(NodeSelectorError) as info:
            compile_preferred_terms(terms)
        assert _error_rows(info.value.errors) == _expected_rows(case["expected_errors"])
        return
    assert compile_preferred_terms(terms).score(node) == case["expected_score"]
    assert preferred_score(terms, node) == case["expected_score"]


_FIELD_ERROR = re.compile(r"field\.(\w+)\(([^,]+), (.*)\)$")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(AFFINITY, "requirements_as_selector")
def test_requirements_as_selector(case: dict[str, Any], form: str) -> None:
    """matchExpressions become the label selector upstream parses, or the field error it reports."""
    reqs = _as_list(form, core_pb2.NodeSelectorRequirement, case["requirements"])
    selector, errors = requirements_as_selector(reqs, "root")
    if case.get("expect_error"):
        assert selector is None
        kind, path, rest = _FIELD_ERROR.match(case["expected_error"]).groups()  # type: ignore[union-attr]
        [error] = errors
        assert (error.reason, error.field) == (_ERROR_TYPES[kind], path)
        if error.reason == fe.INVALID:
            assert error.detail in rest
        else:
            assert list(error.supported) == rest.rsplit("[", 1)[1].rstrip("]").split()
        return
    assert not errors and selector is not None
    if "expected_selector" in case:
        assert case["expected_selector"] == "labels.Nothing()"
        assert selector.matches_nothing
        assert not selector.matches({})
    else:
        expected = parse_selector(case["expected_selector_parse_of"])
        assert str(selector) == str(expected)
        assert [(r.key, r.operator, sorted(r.values)) for r in selector.requirements] == [
            (r.key, r.operator, sorted(r.values)) for r in expected.requirements
        ]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(AFFINITY, "pod_matches_node_selector_and_affinity")
def test_pod_matches_node_selector_and_affinity(case: dict[str, Any], form: str) -> None:
    """A node must satisfy the pod's nodeSelector AND its required node affinity."""
    pod = _as(form, core_pb2.Pod)(case["pod"])
    node = _as(form, core_pb2.Node)(case["node"])
    assert node_matches_node_selector(pod, node) is case["expected_match"]
    assert required_node_affinity(pod).matches(node) is case["expected_match"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(AFFINITY, "match_node_selector_terms")
def test_match_node_selector_terms(case: dict[str, Any], form: str) -> None:
    """MatchNodeSelectorTerms: labels answer matchExpressions, only metadata.name answers matchFields."""
    ns = _as(form, core_pb2.NodeSelector)(case["node_selector"])
    node = _as(form, core_pb2.Node)(case["node"])
    assert match_node_selector_terms(node, ns) is case["expected_match"]
    if ns is not None:  # the bare list of terms works too
        terms = ns["nodeSelectorTerms"] if form == "dict" else ns.nodeSelectorTerms
        assert match_node_selector_terms(node, terms) is case["expected_match"]


def test_lazy_node_selector_keeps_errors_and_matches_valid_terms() -> None:
    """The lazy (default) form lets valid terms match and keeps the invalid ones' errors."""
    ns = {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "Bogus", "values": ["a"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        ]
    }
    selector = compile_node_selector(ns)
    assert [e.field for e in selector.errors] == ["nodeSelectorTerms[0].matchExpressions[0].operator"]
    assert selector.matches({"metadata": {"name": "n", "labels": {"zone": "a"}}})
    assert not selector.matches({"metadata": {"name": "n", "labels": {"zone": "b"}}})


def test_strict_error_message_is_an_aggregate() -> None:
    """NodeSelectorError renders one error plainly and several as Go's bracketed aggregate."""
    one = {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}]}
    with pytest.raises(
        NodeSelectorError, match=r"^nodeSelectorTerms\[0\]\.matchFields\[0\]\.operator: Unsupported"
    ):
        compile_node_selector(one, strict=True)
    two = {"nodeSelectorTerms": [one["nodeSelectorTerms"][0], one["nodeSelectorTerms"][0]]}
    with pytest.raises(NodeSelectorError, match=r"^\[nodeSelectorTerms\[0\].*, nodeSelectorTerms\[1\]"):
        compile_node_selector(two, strict=True)


@pytest.mark.parametrize(
    ("name", "op", "value", "expected"),
    [
        ("n1", "NotIn", "n2", True),
        ("n1", "NotIn", "n1", False),
        ("", "In", "n1", True),  # upstream quirk: a nameless node skips matchFields
    ],
)
def test_match_fields_operators(name: str, op: str, value: str, expected: bool) -> None:
    """matchFields compare metadata.name with In/NotIn; an empty node name skips them."""
    ns = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": op, "values": [value]}]}]
    }
    assert match_node_selector_terms({"metadata": {"name": name}}, ns) is expected


# ----- taints and tolerations ----------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(TAINTS, "toleration_tolerates_taint")
def test_toleration_tolerates_taint(case: dict[str, Any], form: str) -> None:
    """A toleration tolerates a taint on matching effect, key and (Equal) value or Exists."""
    _skip_gated(case)
    toleration = _as(form, core_pb2.Toleration)(case["toleration"])
    taint = _as(form, core_pb2.Taint)(case["taint"])
    assert tolerates_taint(toleration, taint) is case["expected_tolerated"]


@pytest.mark.conformance(TAINTS, "compare_numeric_values")
def test_compare_numeric_values(case: dict[str, Any]) -> None:
    """Numeric Gt/Lt comparison belongs to the feature-gated comparison operators."""
    pytest.skip(_GATED)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(TAINTS, "taint_to_string")
def test_taint_to_string(case: dict[str, Any], form: str) -> None:
    """Taints print as key[=value]:Effect the way Taint.ToString does."""
    assert taint_to_string(_as(form, core_pb2.Taint)(case["taint"])) == case["expected_string"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(TAINTS, "taint_match_taint")
def test_taint_match_taint(case: dict[str, Any], form: str) -> None:
    """Two taints match when key and effect agree, whatever their values."""
    convert = _as(form, core_pb2.Taint)
    assert match_taint(convert(case["taint"]), convert(case["taint_to_match"])) is case["expected_match"]


_FILTERS: dict[str, Any] = {
    "all": None,
    "nil (all taints apply)": None,
    "none": frozenset(),
    "effect==NoExecute": {"NoExecute"},
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.conformance(TAINTS, "find_matching_untolerated_taint")
def test_find_matching_untolerated_taint(case: dict[str, Any], form: str) -> None:
    """Only taints with a filtered effect count; the first untolerated one is returned."""
    _skip_gated(case)
    taints = _as_list(form, core_pb2.Taint, case["taints"])
    tolerations = _as_list(form, core_pb2.Toleration, case["tolerations"])
    found = find_matching_untolerated_taint(taints, tolerations, _FILTERS[case["filter"]])
    assert (found is None) is case["expected_tolerated"]
    if found is not None:
        assert any(found is t for t in taints)


@pytest.mark.parametrize(
    ("taints", "tolerations", "effects", "expected"),
    [
        ([{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}], [], None, "a"),
        (
            [{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "NoExecute"}],
            [],
            DO_NOT_SCHEDULE_EFFECTS,
            "b",
        ),
        ([{"key": "a", "effect": "NoSchedule"}], [{"operator": "Exists"}], None, None),
        ([{"key": "a", "value": "1", "effect": "NoSchedule"}], [{"key": "a", "value": "2"}], None, "a"),
        ([{"key": "a", "effect": "NoSchedule"}], [{"key": "a", "operator": "Lt", "value": "2"}], None, "a"),
    ],
)
def test_find_matching_untolerated_taint_picks_first(
    taints: list[dict[str, str]], tolerations: list[dict[str, str]], effects: Any, expected: str | None
) -> None:
    """The first filtered, untolerated taint is returned; Exists with no key tolerates everything."""
    found = find_matching_untolerated_taint(taints, tolerations, effects)
    assert (found["key"] if found else None) == expected


def test_tolerations_tolerate_taint_mixes_messages_and_dicts() -> None:
    """Proto tolerations and a dict taint (or the reverse) compare field by field."""
    pod = codec.from_dict({"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}}, core_pb2.Pod)
    assert tolerations_tolerate_taint(pod.spec.tolerations, {"key": "k", "effect": "NoSchedule"})
    assert not tolerations_tolerate_taint([{"key": "x", "operator": "Exists"}], core_pb2.Taint(key="k"))


# ----- kpctl taint specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "taint", "remove"),
    [
        ("dedicated=gpu:NoSchedule", {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, False),
        (
            "example.com/dedicated:PreferNoSchedule",
            {"key": "example.com/dedicated", "effect": "PreferNoSchedule"},
            False,
        ),
        ("k=:NoExecute", {"key": "k", "effect": "NoExecute"}, False),
        ("dedicated-", {"key": "dedicated"}, True),
        ("dedicated:NoSchedule-", {"key": "dedicated", "effect": "NoSchedule"}, True),
        ("dedicated=gpu:NoSchedule-", {"key": "dedicated", "effect": "NoSchedule"}, True),
    ],
)
def test_parse_taint(spec: str, taint: dict[str, str], remove: bool) -> None:
    """kpctl taint specs parse into a taint dict and whether to remove it."""
    assert parse_taint(spec) == (taint, remove)
    if not remove:
        assert taint_to_string(taint) == spec.replace("=:", ":")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dedicated", r"^invalid taint spec: dedicated, a taint to add needs an effect: .*use dedicated-$"),
        ("dedicated=gpu", r"^invalid taint spec: dedicated=gpu, a taint needs an effect: key=value:Effect"),
        (
            "dedicated=gpu:Sometimes",
            r"^invalid taint effect: 'Sometimes' .*supported: NoSchedule, PreferNoSchedule, NoExecute",
        ),
        ("a:b:NoSchedule", r"^invalid taint spec: a:b:NoSchedule, at most one ':'"),
        ("a=b=c:NoSchedule", r"^invalid taint spec: a=b=c:NoSchedule, at most one '='"),
        ("a=b c:NoSchedule", r"^invalid taint spec: a=b c:NoSchedule, value 'b c': a valid label must be"),
        (
            "bad key:NoSchedule",
            r"^invalid taint spec: bad key:NoSchedule, key 'bad key': name part must consist",
        ),
        (":NoSchedule", r"^invalid taint spec: :NoSchedule, key '': name part must be non-empty"),
        ("-", r"^invalid taint spec: -, key '': name part must be non-empty"),
        ("k:Bogus-", r"^invalid taint effect: 'Bogus'"),
    ],
)
def test_parse_taint_errors(spec: str, message: str) -> None:
    """Malformed taint specs raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_taint(spec)
