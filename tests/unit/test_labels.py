"""kplane.api.labels against upstream's selector_test.go vectors and a few properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kplane.api import field as fe
from kplane.api.labels import (
    Requirement,
    RequirementError,
    Selector,
    Token,
    new_requirement,
    parse_operator_token,
    parse_selector,
    selector_from_label_selector,
    selector_from_set,
    tokenize,
    validate_label_key,
    validate_label_value,
    validate_labels,
    validated_selector_from_set,
)

TABLE = "labels_selector.json"
_ERROR_TYPES = {fe.INVALID: "Invalid", fe.NOT_SUPPORTED: "NotSupported"}


def _requirement(spec: dict[str, Any] | None) -> Requirement:
    """A requirement exactly as the table lists it; null is upstream's zero-value Requirement."""
    if spec is None:
        return Requirement("", "")
    return Requirement(spec["key"], spec["operator"], tuple(spec["values"]))


def _as_table(selector: Selector) -> list[dict[str, Any]]:
    return [{"key": r.key, "operator": r.operator, "values": list(r.values)} for r in selector.requirements]


@pytest.mark.conformance(TABLE, "parse_roundtrip")
def test_parse_roundtrip(case: dict[str, Any]) -> None:
    """A parsed selector prints back as its input without spaces."""
    assert str(parse_selector(case["input"])) == case["expected_string"]


@pytest.mark.conformance(TABLE, "parse_errors_basic")
def test_parse_errors_basic(case: dict[str, Any]) -> None:
    """Malformed selectors raise ValueError."""
    with pytest.raises(ValueError):
        parse_selector(case["input"])


@pytest.mark.conformance(TABLE, "deterministic_parse")
def test_deterministic_parse(case: dict[str, Any]) -> None:
    """Selectors listing the same requirements in different orders print identically."""
    first, second = (str(parse_selector(s)) for s in case["inputs"])
    assert first == second == "a=x,x=a"


@pytest.mark.conformance(TABLE, "selector_matches")
def test_selector_matches(case: dict[str, Any]) -> None:
    """A parsed selector matches label sets exactly as upstream's does."""
    assert parse_selector(case["selector"]).matches(case["labels"]) is case["expected_match"]


@pytest.mark.conformance(TABLE, "everything")
def test_everything(case: dict[str, Any]) -> None:
    """Selector.everything() matches any labels and is empty."""
    assert Selector.everything().matches(case["labels"]) is case["expected_match"]
    assert Selector.everything().empty() is case["expected_empty"]


@pytest.mark.conformance(TABLE, "set_selector_matches")
def test_set_selector_matches(case: dict[str, Any]) -> None:
    """selector_from_set requires every key=value of the set; the empty set selects everything."""
    assert selector_from_set(case["selector_set"]).matches(case["labels"]) is case["expected_match"]


@pytest.mark.conformance(TABLE, "lexer_single_token")
def test_lexer_single_token(case: dict[str, Any]) -> None:
    """The lexer reads the longest token at the start of the input."""
    assert tokenize(case["input"])[0] == (Token(case["token"]), case["input"])


@pytest.mark.conformance(TABLE, "lexer_sequence")
def test_lexer_sequence(case: dict[str, Any]) -> None:
    """The lexer splits a selector into upstream's token sequence."""
    tokens = tokenize(case["input"])
    assert tokens[-1] == (Token.END_OF_STRING, "")
    assert [tok for tok, _ in tokens[:-1]] == [Token(t) for t in case["tokens"]]


@pytest.mark.conformance(TABLE, "parse_operator")
def test_parse_operator(case: dict[str, Any]) -> None:
    """Only binary operators parse in operator position, with upstream's error otherwise."""
    if case["valid"]:
        assert parse_operator_token(case["token"])
    else:
        with pytest.raises(ValueError) as info:
            parse_operator_token(case["token"])
        assert str(info.value) == case["expected_error"]


@pytest.mark.conformance(TABLE, "requirement_constructor")
def test_requirement_constructor(case: dict[str, Any]) -> None:
    """new_requirement enforces NewRequirement's rules and reports each problem's type, field and value."""
    if not case["expect_error"]:
        r = new_requirement(case["key"], case["operator"], case["values"])
        assert (r.key, r.operator, list(r.values)) == (case["key"], case["operator"], case["values"])
        return
    with pytest.raises(RequirementError) as info:
        new_requirement(case["key"], case["operator"], case["values"])
    got = [
        {"type": _ERROR_TYPES[e.reason], "field": e.field, "bad_value": e.value} for e in info.value.errors
    ]
    assert got == case["expected_errors"]


@pytest.mark.conformance(TABLE, "to_string")
def test_to_string(case: dict[str, Any]) -> None:
    """A selector prints its requirements in order, joined by commas (a zero requirement prints empty)."""
    selector = Selector(tuple(_requirement(r) for r in case["requirements_in_order"]))
    assert str(selector) == case["expected_string"]


@pytest.mark.conformance(TABLE, "requirement_selector_matching")
def test_requirement_selector_matching(case: dict[str, Any]) -> None:
    """Requirements AND together; the zero requirement never matches."""
    selector = Selector(tuple(_requirement(r) for r in case["requirements"]))
    assert selector.matches(case["labels"]) is case["expected_match"]


@pytest.mark.conformance(TABLE, "set_selector_parser")
def test_set_selector_parser(case: dict[str, Any]) -> None:
    """Set-based syntax parses to upstream's sorted requirements, or fails where upstream fails."""
    if not case["valid"]:
        with pytest.raises(ValueError):
            parse_selector(case["input"])
        return
    selector = parse_selector(case["input"])
    if "expected_requirements" in case:
        assert _as_table(selector) == case["expected_requirements"]
        assert str(selector) == case["derived_string"]


@pytest.mark.conformance(TABLE, "set_selector_string")
def test_set_selector_string(case: dict[str, Any]) -> None:
    """A set selector prints key=value pairs sorted by key."""
    assert str(validated_selector_from_set(case["set"])) == case["expected_string"]
    assert str(selector_from_set(case["set"])) == case["expected_string"]


@pytest.mark.conformance(TABLE, "requires_exact_match")
def test_requires_exact_match(case: dict[str, Any]) -> None:
    """The first requirement on a key decides whether it demands one exact value."""
    selector = Selector(tuple(_requirement(r) for r in case["requirements"]))
    expected = case["expected_value"] if case["expected_found"] else None
    assert selector.requires_exact_match(case["label"]) == expected


@pytest.mark.conformance(TABLE, "validated_selector_from_set")
def test_validated_selector_from_set(case: dict[str, Any]) -> None:
    """validated_selector_from_set builds key=value requirements or reports the invalid entry."""
    if case.get("expect_error"):
        with pytest.raises(RequirementError) as info:
            validated_selector_from_set(case["set"])
        got = [
            {"type": _ERROR_TYPES[e.reason], "field": e.field, "bad_value": e.value}
            for e in info.value.errors
        ]
        assert got == case["expected_errors"]
    else:
        assert _as_table(validated_selector_from_set(case["set"])) == case["expected_requirements"]


@pytest.mark.conformance(TABLE, "matches_nothing_parsed")
def test_matches_nothing_parsed(case: dict[str, Any]) -> None:
    """No parsed selector is the special nothing selector, even a contradictory one."""
    assert parse_selector(case["selector"]).matches_nothing is case["expected_matches_nothing"]


# ----- kplane-specific behaviour -------------------------------------------------------------


def test_set_selectors_are_not_nothing() -> None:
    """Selectors from sets, even empty ones, are never the nothing selector; Selector.nothing() is."""
    assert not selector_from_set({}).matches_nothing
    assert not selector_from_set({"key": "value"}).matches_nothing
    assert Selector.nothing().matches_nothing and not Selector.nothing().matches({})


def test_label_selector_nil_empty_and_populated() -> None:
    """A nil LabelSelector matches nothing, an empty one everything, and fields combine as AND."""
    assert not selector_from_label_selector(None).matches({"a": "b"})
    assert selector_from_label_selector({}).empty()
    assert selector_from_label_selector({"matchLabels": {}, "matchExpressions": []}).matches({})
    selector = selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["z1"]},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env,tier in (be,fe),zone notin (z1)"
    assert selector.matches({"app": "web", "tier": "fe", "env": "prod"})
    assert not selector.matches({"app": "web", "tier": "fe", "env": "prod", "canary": "1"})
    assert not selector.matches({"app": "web", "tier": "fe"})


def test_label_selector_rejects_bad_operators_and_values() -> None:
    """An unknown operator or an invalid expression is a ValueError naming it."""
    with pytest.raises(ValueError, match='"Equals" is not a valid label selector operator'):
        selector_from_label_selector(
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}
        )
    with pytest.raises(RequirementError, match="values: Invalid value"):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    with pytest.raises(RequirementError, match="key: Invalid value"):
        selector_from_label_selector({"matchLabels": {"bad key": "v"}})


def test_label_key_and_value_messages_match_upstream() -> None:
    """validate_label_key/value return upstream's messages and nothing for valid input."""
    assert validate_label_key("example.com/My_Name-1") == []
    assert validate_label_value("") == [] and validate_label_value("a.b_c-d") == []
    assert validate_label_key("/x") == ["prefix part must be non-empty"]
    assert validate_label_key("a/b/c")[0].startswith(
        "a qualified name must consist of alphanumeric characters"
    )
    assert validate_label_key("Example.com/x")[0].startswith("prefix part a lowercase RFC 1123 subdomain")
    assert validate_label_key("a" * 64) == ["name part must be no more than 63 characters"]
    assert validate_label_key("-a") == [
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    ]
    assert validate_label_value("a\n") != []  # no "$ matches before a final newline" surprise
    assert validate_labels({"ok": "fine", "bad key": "-"}, "metadata.labels") == [
        fe.invalid("metadata.labels", "bad key", validate_label_key("bad key")[0]),
        fe.invalid("metadata.labels", "-", validate_label_value("-")[0]),
    ]


def test_parse_error_messages_name_the_problem() -> None:
    """Parse errors say what was found and what was expected, like upstream."""
    with pytest.raises(ValueError, match="found ',', expected: identifier after ','"):
        parse_selector("x,,y")
    with pytest.raises(ValueError, match=r"unable to parse requirement: Invalid value: \"a\|b\": name part"):
        parse_selector("a|b")
    with pytest.raises(ValueError, match="for 'Gt', 'Lt' operators, the value must be an integer"):
        parse_selector("x>99999999999999999999")


def test_gt_lt_compare_int64_values_only() -> None:
    """gt/lt compare base-10 int64 label values; anything else never matches."""
    selector = parse_selector("x>5,y<10")
    assert selector.matches({"x": "+6", "y": "-9"})
    assert not selector.matches({"x": "5", "y": "9"})
    assert not selector.matches({"x": " 6", "y": "9"})
    assert not selector.matches({"x": "1_0", "y": "9"})
    assert not selector.matches({"x": "99999999999999999999", "y": "9"})


def test_gt_lt_values_must_also_be_valid_label_values() -> None:
    """A negative gt/lt bound is rejected, because requirement values must be valid label values."""
    with pytest.raises(RequirementError, match=r"values\[0\]\[x\]: Invalid value: \"-5\""):
        parse_selector("x>-5")


def test_add_keeps_requirements_sorted() -> None:
    """add() returns a new selector with the requirements re-sorted by key."""
    base = parse_selector("b=1")
    added = base.add(new_requirement("a", "exists"))
    assert str(added) == "a,b=1" and str(base) == "b=1"


# ----- properties ----------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_ends = st.sampled_from(_ALNUM)
# Label names: alphanumeric at both ends, '-', '_' and '.' allowed inside.
_names = st.one_of(
    _ends, st.builds(lambda a, mid, b: a + mid + b, _ends, st.text(_ALNUM + "-_.", max_size=8), _ends)
)
_prefixes = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=5)
_keys = st.one_of(_names, st.builds(lambda p, n: f"{p}.io/{n}", _prefixes, _names))
_values = st.one_of(st.just(""), _names)


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    key = draw(_keys)
    op = draw(st.sampled_from(["in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt"]))
    if op in ("in", "notin"):
        values = tuple(sorted(set(draw(st.lists(_values, min_size=1, max_size=4)))))
    elif op in ("gt", "lt"):
        values = (str(draw(st.integers(min_value=0, max_value=2**63 - 1))),)
    elif op in ("exists", "!"):
        values = ()
    else:
        values = (draw(_values),)
    return new_requirement(key, op, values)


@given(st.lists(_requirements(), max_size=5))
def test_string_form_parses_back_to_the_same_selector(requirements: list[Requirement]) -> None:
    """str() of any valid selector parses back to an equal selector with the same string."""
    selector = Selector.everything().add(*requirements)
    reparsed = parse_selector(str(selector))
    assert reparsed == selector
    assert str(reparsed) == str(selector)


@given(st.lists(_requirements(), max_size=5), st.dictionaries(_keys, _values, max_size=5))
def test_selector_matches_iff_every_requirement_matches(
    requirements: list[Requirement], labels: dict[str, str]
) -> None:
    """A selector matches exactly when all of its requirements do."""
    selector = Selector.everything().add(*requirements)
    assert selector.matches(labels) == all(r.matches(labels) for r in requirements)


@given(st.text("ab1 =!(),<>-./_\t", max_size=20))
def test_parse_never_fails_with_anything_but_value_error(text: str) -> None:
    """Any string either parses to a selector whose string parses back to it, or raises ValueError."""
    try:
        selector = parse_selector(text)
    except ValueError:
        return
    assert parse_selector(str(selector)) == selector
