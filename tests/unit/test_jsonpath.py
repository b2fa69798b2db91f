"""kubectl's JSONPath templates: expected outputs were taken from kubectl 1.32 on the same data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kplane.cli.jsonpath import (
    JSONPathError,
    find_results,
    go_format_float,
    go_json_float,
    parse_jsonpath,
    relaxed_jsonpath_expression,
    render_jsonpath,
)

DATA: dict[str, Any] = json.loads(
    """
{"apiVersion": "v1", "kind": "ConfigMap",
 "metadata": {"name": "jp", "namespace": "default", "creationTimestamp": null,
              "labels": {"app.kubernetes.io/name": "web", "b": "2", "a": "1"}},
 "data": {"k": "v"},
 "list": [{"name": "a", "n": 1, "f": 1.5, "ok": true, "tags": ["x", "y"], "status": {"phase": "Running"}},
          {"name": "b", "n": 2, "f": 2.0, "ok": false, "status": {"phase": "Pending"}},
          {"name": "c", "n": 3, "f": 1e21, "status": {"phase": "Running"}, "big": 123456789.0}],
 "nothing": null, "html": "<a&b>", "float": 3.0, "e": 1e-7}
"""
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.metadata.name}", "jp"),
        (".metadata.name", ".metadata.name"),
        ("text only", "text only"),
        ("{.kind}{.apiVersion}", "ConfigMapv1"),
        ("{ .kind }", "ConfigMap"),
        ("{$.kind}", "ConfigMap"),
        ("{.metadata.name} {.kind}", "jp ConfigMap"),
        ("{.}", ""),
        ("{.list[*].name}", "a b c"),
        ("{.list[0].name}", "a"),
        ("{.list[-1].name}", "c"),
        ("{.list[-1:].name}", "c"),
        ("{.list[::2].name}", "a c"),
        ("{.list[0:3:2].name}", "a c"),
        ("{.list[1:1]}", ""),
        ("{.list[0,2].name}", "a c"),
        ("{.list[*]['name', 'n']}", "a b c 1 2 3"),
        ("{.list[0]['status']['phase']}", "Running"),
        ("{.metadata.labels['b']}", "2"),
        ("{.metadata.labels.app\\.kubernetes\\.io/name}", "web"),
        ("{.metadata.labels}", '{"a":"1","app.kubernetes.io/name":"web","b":"2"}'),
        ("{.list[0]}", '{"f":1.5,"n":1,"name":"a","ok":true,"status":{"phase":"Running"},"tags":["x","y"]}'),
        ("{.list[0].tags}", '["x","y"]'),
        ("{.list[*].status}", '{"phase":"Running"} {"phase":"Pending"} {"phase":"Running"}'),
        ("{.metadata.creationTimestamp}", "null"),
        ("{.nothing}", "null"),
        ("{.html}", "<a&b>"),
        ("{.float}", "3"),
        ("{.e}", "1e-07"),
        ("{.list[*].f}", "1.5 2 1e+21"),
        ("{.list[2].big}", "1.23456789e+08"),
        ("{.e}{.list[2].f}", "1e-071e+21"),
        ("{.list[*].ok}", "true false"),
        ("{.list[?(@.n>1)].name}", "b c"),
        ("{.list[?(@.n > 1)].name}", "b c"),
        ("{.list[?(@.n>=2)].name}{.list[?(@.n<=2)].name}", "b ca b"),
        ("{.list[?(@.n!=2)].name}", "a c"),
        ("{.list[?(@.f==2.0)].name}", "b"),
        ("{.list[?(@.ok)].name}", "a b"),
        ("{.list[?(@.ok==true)].name}", "a"),
        ("{.list[?(@.ok==false)].name}", "b"),
        ("{.list[?(@.tags)].name}", "a"),
        ('{.list[?(@.status.phase!="Running")].name}', "b"),
        ("{.list[?(@.status.phase=='Running')].name}", "a c"),
        ('{.list[?(@.name>"a")].name}', "b c"),
        ("{.list[?(@.name==@.name)].name}", "a b c"),
        ('{.list[?(@.tags[0]=="x")].name}', "a"),
        ('{.list[?(@.nope=="x")].name}', ""),
        ('{.list[?(@.name=="a")].tags[*]}', "x y"),
        ("{.list[*].tags[*]}", "x y"),
        ("{.list[*].tags[0]}", "x"),
        ("{.list..phase}", "Running Pending Running"),
        ("{..phase}", "Running Pending Running"),
        ("{.data..k}", "v"),
        ("{.foo}", ""),
        ("{.foo.bar}", ""),
        ("{.list.name}", ""),
        ("{.list[*].missing}", ""),
        ('{"a\\tb"}', "a\tb"),
        ("{'single'}", "single"),
        ('{"a\\"b"}', 'a"b'),
        ('{"\\u00e9\\x41\\101"}', "éAA"),
        ("{1}", "1"),
        ("{true}", "true"),
        ('{range .list[*]}{.name}{"\\t"}{.status.phase}{"\\n"}{end}', "a\tRunning\nb\tPending\nc\tRunning\n"),
        ("{range .list[*]}[{range .tags[*]}{@},{end}]{end}", "[x,y,][][]"),
        ("{range .list[*]}{.name}{end}{.kind}", "abcConfigMap"),
        ("{range .none[*]}{.x}{end}done", "done"),
        ("{range .list}{.name}{end}", ""),
        ("{range .list[*]}{.name}", "abc"),
    ],
)
def test_render_jsonpath(template: str, expected: str) -> None:
    """Each template prints what kubectl prints for the same data."""
    assert render_jsonpath(template, DATA) == expected


def test_whole_object_prints_as_compact_go_json() -> None:
    """{@}, {$} and {} print the current object as compact JSON with Go's escapes and floats."""
    text = render_jsonpath("{@}", DATA)
    assert text.startswith(
        '{"apiVersion":"v1","data":{"k":"v"},"e":1e-7,"float":3,"html":"\\u003ca\\u0026b\\u003e",'
    )
    assert render_jsonpath("{$}", DATA) == text == render_jsonpath("{}", DATA)


def test_quoted_keys_are_one_field_name() -> None:
    """A bracketed, quoted key may contain dots (kubectl would split it and find nothing)."""
    assert render_jsonpath("{.metadata.labels['app.kubernetes.io/name']}", DATA) == "web"


def test_wildcard_and_recursive_descent_over_maps_use_sorted_keys() -> None:
    """Map values come out in key order, a deterministic choice where Go's order is random."""
    assert render_jsonpath("{.list[1].*}", DATA) == '2 2 b false {"phase":"Pending"}'
    assert render_jsonpath("{..name}", DATA) == "a b c jp"


@pytest.mark.parametrize(
    ("template", "cause"),
    [
        ("{.list[5]}", "array index out of bounds: index 5, length 3"),
        ("{.list[-4]}", "array index out of bounds: index -1, length 3"),
        ("{.list[2:5]}", "array index out of bounds: index 4, length 3"),
        ("{.list[3:1]}", "array index out of bounds: index 3, length 3"),
        ("{.list[::0]}", "step must be > 0"),
        ("{.data.k[0]}", "string is not array or slice"),
        ("{.metadata.labels[0]}", "map[string]interface {} is not array or slice"),
        ("{.list[?(@.f==2)].name}", "incompatible types for comparison"),
        ('{.list[?(@.n<"2")].name}', "incompatible types for comparison"),
        ("{.list[?(@.ok>true)].name}", "invalid type for comparison"),
        (
            "{.metadata[?(@.x)]}",
            "map[creationTimestamp:<nil> labels:map[a:1 app.kubernetes.io/name:web b:2] "
            "name:jp namespace:default] is not array or slice and cannot be filtered",
        ),
        ("{end}", "not in range, nothing to end"),
        ("{nope}", "unrecognized identifier nope"),
    ],
)
def test_execution_errors_carry_kubectls_message(template: str, cause: str) -> None:
    """Failures read like kubectl's "error executing jsonpath" message, data dump included."""
    with pytest.raises(JSONPathError) as caught:
        render_jsonpath(template, DATA)
    message = str(caught.value)
    assert message.startswith(
        f"error executing jsonpath {json.dumps(template)}: Error executing template: {cause}. "
        "Printing more information for debugging the template:\n"
        f"\ttemplate was:\n\t\t{template}\n\tobject given to jsonpath engine was:\n\t\t"
    )
    assert message.endswith("\n\n")


def test_error_dump_is_gos_sharp_v() -> None:
    """The object dump is Go's %#v of the decoded JSON, as kubectl prints it."""
    with pytest.raises(JSONPathError) as caught:
        render_jsonpath("{.x[0]}", {"x": "s", "n": [1, 2.5, None, True], "m": {}})
    assert str(caught.value).endswith(
        '\t\tmap[string]interface {}{"m":map[string]interface {}{}, "n":[]interface {}{1, 2.5, interface {}(nil), '
        'true}, "x":"s"}\n\n'
    )


@pytest.mark.parametrize(
    ("template", "cause"),
    [
        ("{.x", "unclosed action"),
        ("{.list[x]}", "invalid array index x"),
        ("{.list[-]}", "array index - is not a number"),
        ("{.list[0}", "unterminated array"),
        ('{.list[?(@.name=~"a")]}', "unrecognized character in action: U+007E '~'"),
        ("{\t.kind}", "unrecognized character in action: U+0009"),
        ("{....x}", "invalid multiple recursive descent"),
        ('{"bad\\q"}', 'unquote string "bad\\q" error invalid syntax'),
        ('{"open}', "unterminated quoted string"),
        ('{.list[?(@.name=="a"]}', "unterminated filter"),
    ],
)
def test_parse_errors_carry_kubectls_message(template: str, cause: str) -> None:
    """Templates that do not parse fail with kubectl's "error parsing jsonpath" message."""
    with pytest.raises(JSONPathError) as caught:
        parse_jsonpath(template)
    assert str(caught.value) == f"error parsing jsonpath {template}, {cause}\n"


def test_missing_keys_fail_when_not_allowed() -> None:
    """With allow_missing_keys=False a missing field is an error, as with --allow-missing-template-keys=false."""
    assert render_jsonpath("{.foo}", DATA, allow_missing_keys=True) == ""
    with pytest.raises(JSONPathError, match=r"Error executing template: foo is not found\."):
        render_jsonpath("{.foo}", DATA, allow_missing_keys=False)
    with pytest.raises(JSONPathError, match=r"name is not found"):
        render_jsonpath("{.list.name}", DATA, allow_missing_keys=False)
    assert render_jsonpath("{.list[?(@.nope)].name}", DATA, allow_missing_keys=False) == ""


def test_find_results_returns_one_list_per_action() -> None:
    """find_results exposes the raw values each printed action selected."""
    assert find_results("{.list[*].n} and {.kind}", DATA) == [[1, 2, 3], [" and "], ["ConfigMap"]]


def test_as_json_prints_each_action_as_an_indented_array() -> None:
    """-o jsonpath-as-json prints every action's results as a JSON array."""
    assert render_jsonpath("{.list[*].name}", DATA, as_json=True) == '[\n    "a",\n    "b",\n    "c"\n]\n'


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("metadata.name", "{.metadata.name}"),
        (".metadata.name", "{.metadata.name}"),
        ("{metadata.name}", "{.metadata.name}"),
        ("{.metadata.name}", "{.metadata.name}"),
        ("", ""),
    ],
)
def test_relaxed_expression(expression: str, expected: str) -> None:
    """custom-columns/--sort-by paths are relaxed into a full template the way kubectl does."""
    assert relaxed_jsonpath_expression(expression) == expected


def test_relaxed_expression_rejects_templates() -> None:
    """Only a single path can be relaxed."""
    with pytest.raises(JSONPathError, match="unexpected path string"):
        relaxed_jsonpath_expression("{.a}{.b}")


@pytest.mark.parametrize(
    ("value", "text", "json_text"),
    [
        (3.0, "3", "3"),
        (1.5, "1.5", "1.5"),
        (0.0001, "0.0001", "0.0001"),
        (1e-7, "1e-07", "1e-7"),
        (123456789.0, "1.23456789e+08", "123456789"),
        (100000.0, "100000", "100000"),
        (1e21, "1e+21", "1e+21"),
        (-2.5e-10, "-2.5e-10", "-2.5e-10"),
    ],
)
def test_go_float_formatting(value: float, text: str, json_text: str) -> None:
    """Floats print as Go's fmt (%v) and encoding/json print them."""
    assert go_format_float(value) == text
    assert go_json_float(value) == json_text
