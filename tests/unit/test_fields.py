"""kplane.api.fields: upstream fields/selector_test.go cases, per-kind selectable fields, properties.

There is no conformance table for field selectors; the tables below restate upstream's tests.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kplane.api.fields import (
    FieldRequirement,
    FieldSelector,
    convert_field_selector,
    escape_value,
    object_fields,
    parse_field_selector,
    selector_from_set,
    split_term,
    split_terms,
    supported_fields,
    unescape_value,
)

SPLIT_TERMS = {
    "a": ["a"],
    "a=avalue": ["a=avalue"],
    "a=avalue,b=bvalue": ["a=avalue", "b=bvalue"],
    "a=avalue,b==bvalue,c!=cvalue": ["a=avalue", "b==bvalue", "c!=cvalue"],
    "": [],
    "a=a,": ["a=a", ""],
    ",a=a": ["", "a=a"],
    r"k=\,,k2=v2": [r"k=\,", "k2=v2"],
    r"k=\\,k2=v2": [r"k=\\", "k2=v2"],
    r"k=\\\,,k2=v2": [r"k=\\\,", "k2=v2"],
    "k=\\a\\b\\": ["k=\\a\\b\\"],
    "k=\\\\\\": ["k=\\\\\\"],
    r"k=\\\\": [r"k=\\\\"],
}

SPLIT_TERM = {
    "a=value": ("a", "=", "value"),
    "b==value": ("b", "==", "value"),
    "c!=value": ("c", "!=", "value"),
    "": None,
    "a": None,
    r"k=\,": ("k", "=", r"\,"),
    r"k=\=": ("k", "=", r"\="),
    "k=\\\\\\a\\b\\=\\,\\": ("k", "=", "\\\\\\a\\b\\=\\,\\"),
    "함=수": ("함", "=", "수"),
}

ESCAPE = {"": "", "a": "a", "=": r"\=", ",": r"\,", "\\": "\\\\", "\\=\\,\\": r"\\\=\\\,\\"}
UNESCAPE_INVALID = ["\\", r"\a", "=", ",", "\\\\\\"]


@pytest.mark.parametrize(("selector", "terms"), SPLIT_TERMS.items())
def test_split_terms(selector: str, terms: list[str]) -> None:
    """Terms split at unescaped commas, keeping escapes inside each term."""
    assert split_terms(selector) == terms


@pytest.mark.parametrize(("term", "parts"), SPLIT_TERM.items())
def test_split_term(term: str, parts: tuple[str, str, str] | None) -> None:
    """A term splits at its first operator, preferring != and == over =."""
    assert split_term(term) == parts


@pytest.mark.parametrize(("raw", "escaped"), ESCAPE.items())
def test_escape_and_unescape(raw: str, escaped: str) -> None:
    """escape_value escapes backslash, comma and equals, and unescape_value inverts it."""
    assert escape_value(raw) == escaped
    assert unescape_value(escaped) == raw


@pytest.mark.parametrize("value", UNESCAPE_INVALID)
def test_unescape_rejects_bad_sequences(value: str) -> None:
    """An unknown escape, a trailing backslash or a bare comma/equals is an error."""
    with pytest.raises(ValueError, match="invalid field selector"):
        unescape_value(value)


@pytest.mark.parametrize("selector", ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"])
def test_good_selectors_round_trip(selector: str) -> None:
    """A well-formed selector parses and prints back unchanged."""
    assert str(parse_field_selector(selector)) == selector


@pytest.mark.parametrize("selector", ["x=a||y=b", "x==a==b", "x=a,b", "x in (a)", "x in (a,b,c)", "x"])
def test_bad_selectors_are_rejected(selector: str) -> None:
    """Terms without an operator, or values with bare '=' or ',', are errors."""
    with pytest.raises(ValueError):
        parse_field_selector(selector)


def test_parse_error_names_the_term() -> None:
    """The error names the whole selector and the term it could not understand."""
    with pytest.raises(ValueError, match="invalid selector: 'a=b,c'; can't understand 'c'"):
        parse_field_selector("a=b,c")


def test_parse_is_deterministic() -> None:
    """Term order does not change the parsed selector or its string."""
    assert str(parse_field_selector("x=a,a=x")) == str(parse_field_selector("a=x,x=a")) == "a=x,x=a"


@pytest.mark.parametrize(
    ("selector", "fields", "expected"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x==y", {"x": "y"}, True),
        ("x=", {}, True),
        ("x!=y", {}, True),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x=y", {}, False),
    ],
)
def test_selector_matches(selector: str, fields: dict[str, str], expected: bool) -> None:
    """Terms AND together and a missing field has the value ""."""
    assert parse_field_selector(selector).matches(fields) is expected


def test_double_equals_is_stored_as_equals() -> None:
    """`==` is the same requirement as `=`, and the requirements are exposed with key and value."""
    selector = parse_field_selector(r"spec.nodeName==n1,status.phase!=Running\,x")
    assert selector.requirements == (
        FieldRequirement("spec.nodeName", "=", "n1"),
        FieldRequirement("status.phase", "!=", "Running,x"),
    )
    assert [r.key for r in selector.requirements] == ["spec.nodeName", "status.phase"]


def test_empty_term_selects_everything() -> None:
    """Like upstream, a lone '=' (no field, no value) and empty terms select everything."""
    assert parse_field_selector("=").empty()
    assert parse_field_selector(",,").empty()
    assert FieldSelector.everything().matches({"a": "b"})


def test_requires_exact_match() -> None:
    """requires_exact_match finds the value an '=' term demands, not a '!=' one."""
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert selector.requires_exact_match("spec.nodeName") == "n1"
    assert selector.requires_exact_match("status.phase") is None


def test_selector_from_set() -> None:
    """selector_from_set builds sorted field=value terms, escaping values."""
    assert str(selector_from_set({"b": "x,y", "a": "1"})) == r"a=1,b=x\,y"
    assert selector_from_set(None).empty()


# ----- selectable fields ---------------------------------------------------------------------

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-a", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
    "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.7"}]},
}


def test_pod_fields() -> None:
    """A pod exposes its selectable fields; missing strings are "", a missing bool "false"."""
    assert object_fields(POD, "Pod") == {
        "metadata.name": "web-1",
        "metadata.namespace": "default",
        "spec.nodeName": "node-a",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "",
        "spec.hostNetwork": "false",
        "status.phase": "Running",
        "status.podIP": "10.0.0.7",  # upstream takes podIPs[0]
        "status.nominatedNodeName": "",
    }
    assert object_fields({"spec": {"hostNetwork": True}}, "Pod")["spec.hostNetwork"] == "true"
    assert object_fields({"status": {"podIP": "10.1.1.1"}}, "Pod")["status.podIP"] == "10.1.1.1"


def test_unscheduled_pods_select_with_empty_node_name() -> None:
    """`spec.nodeName=` selects pods that have no node yet, as the scheduler's watch needs."""
    selector = parse_field_selector("spec.nodeName=")
    assert selector.matches(object_fields({"metadata": {"name": "p"}}, "Pod"))
    assert not selector.matches(object_fields(POD, "Pod"))


def test_other_kinds_fields() -> None:
    """Node, Event, Secret, Namespace, ReplicaSet and Job expose their kind-specific fields."""
    assert object_fields({"spec": {"unschedulable": True}}, "Node")["spec.unschedulable"] == "true"
    assert object_fields({}, "Node")["spec.unschedulable"] == "false"
    event = object_fields(
        {
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1", "apiVersion": "v1"},
            "reason": "Scheduled",
            "reportingComponent": "default-scheduler",
            "type": "Normal",
        },
        "Event",
    )
    assert event["involvedObject.kind"] == "Pod" and event["involvedObject.fieldPath"] == ""
    assert event["source"] == "default-scheduler"  # falls back to reportingComponent
    assert object_fields({"type": "Opaque"}, "Secret")["type"] == "Opaque"
    assert object_fields({"status": {"phase": "Active"}}, "Namespace")["status.phase"] == "Active"
    assert object_fields({"status": {"replicas": 3}}, "ReplicaSet")["status.replicas"] == "3"
    assert object_fields({}, "ReplicationController")["status.replicas"] == "0"
    assert object_fields({"status": {"successful": "2"}}, "Job")["status.successful"] == "2"
    assert object_fields({"metadata": {"name": "d"}}, "Deployment") == {
        "metadata.name": "d",
        "metadata.namespace": "",
    }


def test_supported_fields() -> None:
    """Each kind supports its own fields; unknown kinds support metadata.name and metadata.namespace."""
    assert "spec.nodeName" in supported_fields("Pod")
    assert supported_fields("ConfigMap") == {"metadata.name", "metadata.namespace"}
    assert supported_fields("Node") == {"metadata.name", "spec.unschedulable"}
    for kind in ("Pod", "Event", "Secret", "ReplicaSet", "ReplicationController", "Job", "Deployment"):
        assert supported_fields(kind) <= set(object_fields({}, kind))


def test_convert_rejects_unsupported_fields_and_maps_aliases() -> None:
    """Conversion rejects a field the kind lacks and maps the legacy spec.host to spec.nodeName."""
    with pytest.raises(ValueError, match=r"^field label not supported: spec\.foo$"):
        convert_field_selector(parse_field_selector("spec.foo=1"), "Pod")
    converted = convert_field_selector(parse_field_selector("spec.host=n1"), "Pod")
    assert str(converted) == "spec.nodeName=n1"


# ----- properties ----------------------------------------------------------------------------

# A small alphabet that still covers every escape-relevant character and a multi-byte one.
_values = st.text("ab =,\\!|é함", max_size=10)
_field_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789.", max_size=15),
)


@given(_values)
def test_escape_round_trips_any_value(value: str) -> None:
    """Any string survives escape_value then unescape_value."""
    assert unescape_value(escape_value(value)) == value


@given(st.lists(st.tuples(_field_names, st.sampled_from(["=", "!="]), _values), max_size=5))
def test_string_form_parses_back(terms: list[tuple[str, str, str]]) -> None:
    """A selector printed from any terms parses back to the same requirements."""
    text = ",".join(f"{f}{op}{escape_value(v)}" for f, op, v in terms)
    selector = parse_field_selector(text)
    assert sorted((r.field, r.operator, r.value) for r in selector.requirements) == sorted(terms)
    assert parse_field_selector(str(selector)) == selector


@given(st.text("ab.=!,\\ ", max_size=20))
def test_parse_never_fails_with_anything_but_value_error(text: str) -> None:
    """Any string either parses to a field selector whose string parses back to it, or raises ValueError."""
    try:
        selector = parse_field_selector(text)
    except ValueError:
        return
    assert parse_field_selector(str(selector)) == selector
