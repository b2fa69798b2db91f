"""Field selectors (`spec.nodeName=node-1,status.phase!=Running`) as in `k8s.io/apimachinery/pkg/fields`.

A selector is comma-separated terms `field=value`, `field==value` or `field!=value`, ANDed.
In a value, `\\,`, `\\=` and `\\\\` stand for `,`, `=` and `\\`; any other backslash sequence, or
a bare `,`/`=`, is an error. Field names are not escaped: a term splits at its first operator.
A field absent from an object has the value "" (so `spec.nodeName=` selects unscheduled pods).

`object_fields(obj, kind)` extracts the selectable fields of a Kubernetes JSON object the way
each kind's registry strategy does; `convert_field_selector(selector, kind)` is the apiserver's
field-label conversion: it rejects fields the kind does not support and maps the legacy
`spec.host` to `spec.nodeName` for pods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

EQUALS: Final = "="
NOT_EQUALS: Final = "!="

# Checked in this order at each position, so "a==b" is (a, ==, b), not (a, =, =b).
_TERM_OPERATORS: Final = ("!=", "==", "=")
_INT_RE: Final = re.compile(r"-?[0-9]+")


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`field = value` or `field != value` (`==` is stored as `=`)."""

    field: str
    operator: str
    value: str

    @property
    def key(self) -> str:
        """The field name (same as `field`; named like labels.Requirement.key)."""
        return self.field

    def matches(self, fields: Mapping[str, str]) -> bool:
        actual = fields.get(self.field, "")
        return actual == self.value if self.operator == EQUALS else actual != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of field requirements, in the order upstream keeps them (sorted by raw term)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def everything(cls) -> FieldSelector:
        return _EVERYTHING

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        """True if the selector does not restrict the selection."""
        return not self.requirements

    def requires_exact_match(self, field: str) -> str | None:
        """The value an `=` term demands for `field` (e.g. spec.nodeName for a kubelet's watch), else None."""
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def transform(self, fn: Callable[[str, str], tuple[str, str]]) -> FieldSelector:
        """Map every (field, value) through `fn`; a term mapped to ("", "") is dropped (Transform)."""
        out: list[FieldRequirement] = []
        for r in self.requirements:
            field, value = fn(r.field, r.value)
            if field or value:
                out.append(FieldRequirement(field, r.operator, value))
        return FieldSelector(tuple(out))

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_EVERYTHING: Final = FieldSelector()


def escape_value(value: str) -> str:
    """EscapeValue: backslash-escape `\\`, `,` and `=` so the value parses back unchanged."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(value: str) -> str:
    """UnescapeValue: undo `escape_value`; ValueError on a bad escape or a bare `,` or `=`."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {c!r}")
        else:
            out.append(c)
    if in_slash:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def split_terms(selector: str) -> list[str]:
    """The comma-separated terms of `selector`; an escaped comma stays inside its term."""
    if not selector:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(selector):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def split_term(term: str) -> tuple[str, str, str] | None:
    """(field, operator, raw value) split at the first operator, or None if there is none."""
    for i in range(len(term)):
        for op in _TERM_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(selector: str) -> FieldSelector:
    """fields.ParseSelector: parse `selector`; ValueError names the bad term."""
    if not isinstance(selector, str):
        raise TypeError(f"field selector must be a string, not {type(selector).__name__}")
    requirements: list[FieldRequirement] = []
    for term in sorted(split_terms(selector)):
        if not term:
            continue
        parts = split_term(term)
        if parts is None:
            raise ValueError(f"invalid selector: '{selector}'; can't understand '{term}'")
        field, op, raw = parts
        value = unescape_value(raw)
        if not field and not value:
            continue  # "=" selects everything upstream (Transform drops empty terms)
        requirements.append(FieldRequirement(field, NOT_EQUALS if op == "!=" else EQUALS, value))
    return FieldSelector(tuple(requirements))


def selector_from_set(fields: Mapping[str, str] | None) -> FieldSelector:
    """fields.SelectorFromSet: `field=value` for each entry, sorted by field."""
    if not fields:
        return _EVERYTHING
    return FieldSelector(tuple(FieldRequirement(k, EQUALS, v) for k, v in sorted(fields.items())))


# ----- selectable fields per kind ----------------------------------------------------------

_META_FIELDS: Final = frozenset({"metadata.name", "metadata.namespace"})
# Kinds whose field-label conversion accepts only metadata.name (cluster-scoped, custom func).
_NAME_ONLY: Final = frozenset({"metadata.name"})
_SUPPORTED: Final[dict[str, frozenset[str]]] = {
    "Pod": _META_FIELDS
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "Node": _NAME_ONLY | {"spec.unschedulable"},
    "Event": _META_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Secret": _META_FIELDS | {"type"},
    "Namespace": _NAME_ONLY | {"status.phase"},
    "ReplicaSet": _META_FIELDS | {"status.replicas"},
    "ReplicationController": _META_FIELDS | {"status.replicas"},
    "Job": _META_FIELDS | {"status.successful"},
}
# Legacy names the conversion rewrites.
_ALIASES: Final[dict[str, dict[str, str]]] = {"Pod": {"spec.host": "spec.nodeName"}}


def supported_fields(kind: str) -> set[str]:
    """Field selector keys the apiserver accepts for `kind` (metadata.name/namespace for most kinds)."""
    return set(_SUPPORTED.get(kind, _META_FIELDS))


def convert_field_selector(selector: FieldSelector, kind: str) -> FieldSelector:
    """Apply the field-label conversion for `kind`: rewrite aliases, reject unsupported fields.

    Raises ValueError('field label not supported: spec.foo').
    """
    supported = _SUPPORTED.get(kind, _META_FIELDS)
    aliases = _ALIASES.get(kind, {})

    def convert(field: str, value: str) -> tuple[str, str]:
        field = aliases.get(field, field)
        if field not in supported:
            raise ValueError(f"field label not supported: {field}")
        return field, value

    return selector.transform(convert)


def object_fields(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The selectable fields of a Kubernetes JSON object, rendered as upstream's fields.Set.

    Strings absent from the object are "", absent numbers "0" and absent booleans "false"
    (proto3 JSON omits zero values, and upstream renders Go's zero values).
    """
    meta = _get(obj, "metadata")
    out = {"metadata.name": _str(meta, "name"), "metadata.namespace": _str(meta, "namespace")}
    spec = _get(obj, "spec")
    status = _get(obj, "status")
    if kind == "Pod":
        pod_ips = status.get("podIPs")
        pod_ip = _str(status, "podIP")
        if isinstance(pod_ips, list) and pod_ips and isinstance(pod_ips[0], Mapping):
            pod_ip = _str(pod_ips[0], "ip")
        out.update(
            {
                "spec.nodeName": _str(spec, "nodeName"),
                "spec.restartPolicy": _str(spec, "restartPolicy"),
                "spec.schedulerName": _str(spec, "schedulerName"),
                "spec.serviceAccountName": _str(spec, "serviceAccountName"),
                "spec.hostNetwork": _bool(spec, "hostNetwork"),
                "status.phase": _str(status, "phase"),
                "status.podIP": pod_ip,
                "status.nominatedNodeName": _str(status, "nominatedNodeName"),
            }
        )
    elif kind == "Node":
        out["spec.unschedulable"] = _bool(spec, "unschedulable")
    elif kind == "Event":
        involved = _get(obj, "involvedObject")
        source = _str(_get(obj, "source"), "component") or _str(obj, "reportingComponent")
        for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
            out[f"involvedObject.{name}"] = _str(involved, name)
        out.update(
            {
                "reason": _str(obj, "reason"),
                "reportingComponent": _str(obj, "reportingComponent"),
                "source": source,
                "type": _str(obj, "type"),
            }
        )
    elif kind == "Secret":
        out["type"] = _str(obj, "type")
    elif kind == "Namespace":
        out["status.phase"] = _str(status, "phase")
    elif kind in ("ReplicaSet", "ReplicationController"):
        out["status.replicas"] = _int(status, "replicas")
    elif kind == "Job":
        out["status.successful"] = _int(status, "successful")
    return out


def _get(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _bool(obj: Mapping[str, Any], key: str) -> str:
    return "true" if obj.get(key) is True else "false"


def _int(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    # int64 fields may arrive as JSON strings (proto3 JSON mapping).
    if isinstance(value, bool):
        return "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return str(int(value))
    return "0"
