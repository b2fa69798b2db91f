"""Name formats (kplane.api.validation.names) and ObjectMeta validation (kplane.api.validation.meta)."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api.validation import names, validate_create
from kplane.api.validation.meta import semantic_equal, validate_object_meta

LABEL_REGEX = "'[a-z0-9]([-a-z0-9]*[a-z0-9])?'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web", []),
        ("123-abc", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("web.app", ["must not contain dots"]),
        (
            "Web",
            [
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
                f"and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is {LABEL_REGEX})"
            ],
        ),
    ],
)
def test_dns1123_label(value: str, expected: list[str]) -> None:
    """DNS-1123 labels allow lowercase alphanumerics and inner dashes, up to 63 characters."""
    assert names.is_dns1123_label(value) == expected


@pytest.mark.parametrize(
    ("fn", "value", "ok"),
    [
        (names.is_dns1123_subdomain, "example.com", True),
        (names.is_dns1123_subdomain, "web-1.default", True),
        (names.is_dns1123_subdomain, "Web_App", False),
        (names.is_dns1123_subdomain, "a" * 254, False),
        (names.is_dns1123_subdomain, "-web", False),
        (names.is_dns1035_label, "web", True),
        (names.is_dns1035_label, "1web", False),
        (names.is_qualified_name, "app.kubernetes.io/name", True),
        (names.is_qualified_name, "MyName", True),
        (names.is_qualified_name, "a/b/c", False),
        (names.is_qualified_name, "/name", False),
        (names.is_qualified_name, "example.com/", False),
        (names.is_config_map_key, "app.properties", True),
        (names.is_config_map_key, "..data", False),
        (names.is_config_map_key, "a/b", False),
        (names.is_env_var_name, "MY_VAR", True),
        (names.is_env_var_name, "1VAR", False),
        (names.is_relaxed_env_var_name, "1 VAR-x.y", True),
        (names.is_relaxed_env_var_name, "A=B", False),
        (names.is_relaxed_env_var_name, "tab\there", False),
        (names.is_valid_port_name, "http", True),
        (names.is_valid_port_name, "http--alt", False),
        (names.is_valid_port_name, "8080", False),
        (names.is_valid_percent, "25%", True),
        (names.is_valid_percent, "25", False),
        (names.is_valid_ip, "10.0.0.1", True),
        (names.is_valid_ip, "2001:db8::1", True),
        (names.is_valid_ip, "10.0.0.256", False),
        (names.is_valid_ip, "fe80::1%eth0", False),
        (names.is_valid_cidr, "10.0.0.0/24", True),
        (names.is_valid_cidr, "10.0.0.1", False),
    ],
)
def test_format_checks(fn: Any, value: str, ok: bool) -> None:
    """Each format check accepts exactly the values Kubernetes accepts."""
    assert (fn(value) == []) is ok


@pytest.mark.parametrize(
    ("value", "prefix", "ok"),
    [("web-", True, True), ("web-", False, False), ("w-", True, True), ("Web-", True, False)],
)
def test_generate_name_prefix_may_end_in_dash(value: str, prefix: bool, ok: bool) -> None:
    """A generateName prefix may end with '-', a name may not."""
    assert (names.name_is_dns_subdomain(value, prefix) == []) is ok


def meta_messages(meta: Any, *, namespaced: bool | None = True) -> list[str]:
    return [
        e.message()
        for e in validate_object_meta({"metadata": meta}, names.name_is_dns_subdomain, namespaced=namespaced)
    ]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"name": "web"}, []),
        ({}, ["metadata.name: Required value: name or generateName is required"]),
        (
            {"name": "web", "generateName": "Web-"},
            [
                'metadata.generateName: Invalid value: "Web-": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
        ),
        (
            {"name": "web", "generation": -1},
            ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"name": "web", "labels": {"app": "-bad"}},
            [
                'metadata.labels: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ],
        ),
        (
            {"name": "web", "annotations": {"a/b/c": "x"}},
            [
                'metadata.annotations: Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
                "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
                "subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ],
        ),
        (
            {"name": "web", "annotations": {"big": "x" * (256 * 1024)}},
            ["metadata.annotations: Too long: must have at most 262144 bytes"],
        ),
        (
            {"name": "web", "finalizers": ["kubernetes", "example.com/cleanup", "cleanup"]},
            [
                'metadata.finalizers[2]: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified'
            ],
        ),
        (
            {"name": "web", "ownerReferences": [{"apiVersion": "apps/", "kind": "", "name": "", "uid": ""}]},
            [
                'metadata.ownerReferences[0].apiVersion: Invalid value: "apps/": version must not be empty',
                'metadata.ownerReferences[0].kind: Invalid value: "": must not be empty',
                'metadata.ownerReferences[0].name: Invalid value: "": must not be empty',
                'metadata.ownerReferences[0].uid: Invalid value: "": must not be empty',
            ],
        ),
    ],
)
def test_object_meta(meta: dict[str, Any], expected: list[str]) -> None:
    """ObjectMeta validation covers name, generateName, generation, labels, annotations, finalizers and owners."""
    assert meta_messages(meta) == expected


def test_only_one_controller_owner() -> None:
    """At most one owner reference may be the controller."""
    refs = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True},
    ]
    got = meta_messages({"name": "web", "ownerReferences": refs})
    assert len(got) == 1
    assert got[0].startswith("metadata.ownerReferences: Invalid value: [")
    assert got[0].endswith(
        'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b'
    )


@pytest.mark.parametrize(
    ("kind", "namespace", "expected"),
    [
        ("ConfigMap", "default", []),
        ("ConfigMap", "Team_A", ['metadata.namespace: Invalid value: "Team_A": a lowercase RFC 1123 label']),
        ("Node", "default", ["metadata.namespace: Forbidden: not allowed on this type"]),
        ("Namespace", "default", ["metadata.namespace: Forbidden: not allowed on this type"]),
    ],
)
def test_namespace_rules_by_scope(kind: str, namespace: str, expected: list[str]) -> None:
    """Namespaced kinds need a valid namespace; cluster-scoped kinds may not have one."""
    got = [e.message() for e in validate_create(kind, {"metadata": {"name": "x", "namespace": namespace}})]
    assert [m[: len(e)] for m, e in zip(got, expected, strict=False)] == expected
    assert len(got) == len(expected)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"a": None, "b": []}, {}, True),
        ({"a": ""}, {}, True),
        ({"a": 0}, {}, False),
        ({"a": [1]}, {"a": [1]}, True),
        ({"a": {"b": {}}}, None, True),
    ],
)
def test_semantic_equality_treats_unset_as_zero(a: Any, b: Any, equal: bool) -> None:
    """Absent, null, empty string, empty list and empty object all compare equal, as Go zero values do."""
    assert semantic_equal(a, b) is equal
