"""Scheduling predicates shared by the scheduler, the DaemonSet controller and node lifecycle.

Node selectors and node affinity (`k8s.io/component-helpers/scheduling/corev1/nodeaffinity`),
taints and tolerations (`k8s.io/api/core/v1` toleration.go / taint.go and component-helpers'
helpers.go), and `kpctl taint`'s spec syntax (`k8s.io/kubernetes/pkg/util/taints`).

Every function takes protobuf messages (`kplane.api.pb.core_pb2`) or their Kubernetes JSON dicts,
interchangeably. Selectors are *compiled* once (`compile_node_selector`, `required_node_affinity`,
`compile_preferred_terms`) and then matched against many nodes cheaply; the one-shot helpers
(`match_node_selector_terms`, `node_matches_node_selector`, `preferred_score`) compile on every call
and suit callers that look at one node.

Semantics, as upstream:

* a NodeSelector's terms are ORed; within a term matchExpressions (node labels) and matchFields
  (node fields: only `metadata.name`) are ANDed; a nil or empty term list, and a term with neither
  list, match nothing;
* an invalid term (bad key, operator or value) never matches, but the other terms still can: the
  lazy form keeps its errors in `.errors`, `strict=True` raises `NodeSelectorError` instead;
* a node with an empty name skips matchFields entirely (upstream's `len(nodeFields) > 0` check);
* a pod's required node affinity is `spec.nodeSelector` (every key=value present in the node's
  labels) AND `requiredDuringSchedulingIgnoredDuringExecution`;
* a toleration tolerates a taint when its effect is empty or equal, its key is empty or equal, and
  its operator is Exists or ("" / Equal with an equal value). The alpha comparison operators
  (Gt/Lt, feature gate TaintTolerationComparisonOperators) are not implemented: they tolerate
  nothing, as upstream does with the gate off.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.message import Message

from kplane.api import field as fe
from kplane.api.field import FieldError
from kplane.api.labels import (
    Requirement,
    Selector,
    validate_label_key,
    validate_label_value,
    validate_requirement,
)

Obj = Any  # a protobuf message or its Kubernetes JSON dict

TAINT_EFFECT_NO_SCHEDULE: Final = "NoSchedule"
TAINT_EFFECT_PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"
TAINT_EFFECT_NO_EXECUTE: Final = "NoExecute"
TAINT_EFFECTS: Final = (TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_PREFER_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE)
# The effects a pod must tolerate to be scheduled (the scheduler's DoNotScheduleTaintsFilterFunc).
DO_NOT_SCHEDULE_EFFECTS: Final = frozenset({TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE})
TAINT_NODE_UNSCHEDULABLE: Final = "node.kubernetes.io/unschedulable"

OBJECT_NAME_FIELD: Final = "metadata.name"
NODE_SELECTOR_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
FIELD_SELECTOR_OPERATORS: Final = ("In", "NotIn")
# NodeSelectorOperator -> label selector operator (kplane.api.labels.Operator values)
_LABEL_OPERATORS: Final = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!",
    "Gt": "gt",
    "Lt": "lt",
}
_NO_LABELS: Final[Mapping[str, str]] = {}


# ----- reading messages and dicts alike ----------------------------------------------------


def _str(obj: Obj, name: str) -> str:
    """A string field; "" when unset."""
    if isinstance(obj, dict):
        return obj.get(name) or ""
    return getattr(obj, name)  # type: ignore[no-any-return]


def _list(obj: Obj, name: str) -> Sequence[Any]:
    """A repeated field; empty when unset (or when obj is None)."""
    if obj is None:
        return ()
    if isinstance(obj, dict):
        return obj.get(name) or ()
    return getattr(obj, name)  # type: ignore[no-any-return]


def _sub(obj: Obj, name: str) -> Obj:
    """A singular sub-object, None when unset (or when obj is None)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name) if obj.HasField(name) else None


def _labels_and_name(node: Obj) -> tuple[Mapping[str, str], str]:
    if node is None:
        return _NO_LABELS, ""
    if isinstance(node, dict):
        meta = node.get("metadata") or {}
        return meta.get("labels") or _NO_LABELS, meta.get("name") or ""
    meta = node.metadata
    return meta.labels, meta.name


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ----- node selectors ----------------------------------------------------------------------


class NodeSelectorError(ValueError):
    """A node selector (or preferred terms) that does not parse; `errors` holds every field error."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        messages = [e.message() for e in self.errors]
        # Go's utilerrors.Aggregate rendering
        super().__init__(messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]")


def requirements_as_selector(
    requirements: Iterable[Obj] | None, path: str = ""
) -> tuple[Selector | None, list[FieldError]]:
    """matchExpressions as a label selector (nodeSelectorRequirementsAsSelector).

    None or [] gives `Selector.nothing()`. Any invalid requirement gives (None, every error), with
    field paths under `path` (e.g. `path[0].values`).
    """
    requirements = list(requirements or ())
    if not requirements:
        return Selector.nothing(), []
    errs: list[FieldError] = []
    parsed: list[Requirement] = []
    for i, expr in enumerate(requirements):
        p = f"{path}[{i}]"
        operator = _str(expr, "operator")
        op = _LABEL_OPERATORS.get(operator)
        if op is None:
            errs.append(fe.not_supported(f"{p}.operator", operator, NODE_SELECTOR_OPERATORS))
            continue
        key = _str(expr, "key")
        values = list(_list(expr, "values"))
        req_errs = validate_requirement(key, op, values, p)
        if req_errs:
            errs.extend(req_errs)
        else:
            parsed.append(Requirement(key, op, tuple(values)))
    if errs:
        return None, errs
    return Selector.everything().add(*parsed), []


# (field key, must equal?, value): a OneTermEqualSelector / OneTermNotEqualSelector
_FieldTerm = tuple[str, bool, str]


def _field_requirements(
    requirements: Sequence[Obj], path: str
) -> tuple[tuple[_FieldTerm, ...], list[FieldError]]:
    """matchFields (nodeSelectorRequirementsAsFieldSelector): In/NotIn with exactly one value."""
    errs: list[FieldError] = []
    out: list[_FieldTerm] = []
    for i, expr in enumerate(requirements):
        p = f"{path}[{i}]"
        operator = _str(expr, "operator")
        values = list(_list(expr, "values"))
        if operator not in FIELD_SELECTOR_OPERATORS:
            errs.append(fe.not_supported(f"{p}.operator", operator, FIELD_SELECTOR_OPERATORS))
        elif len(values) != 1:
            errs.append(fe.invalid(f"{p}.values", values, "must have one element"))
        else:
            out.append((_str(expr, "key"), operator == "In", values[0]))
    return tuple(out), errs


@dataclass(frozen=True, slots=True)
class _Term:
    """A compiled NodeSelectorTerm: a label selector AND a field selector (None: not given)."""

    labels: Selector | None
    fields: tuple[_FieldTerm, ...] | None
    errors: tuple[FieldError, ...] = ()

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if self.errors:
            return False
        if self.labels is not None:
            if self.labels.matches_nothing:
                return False
            for requirement in self.labels.requirements:  # Selector.matches, without a generator
                if not requirement.matches(labels):
                    return False
        if self.fields is not None and name:  # upstream skips matchFields for a nameless node
            for key, equal, value in self.fields:
                have = name if key == OBJECT_NAME_FIELD else ""
                if (have == value) is not equal:
                    return False
        return True


def _is_empty_term(term: Obj) -> bool:
    return not _list(term, "matchExpressions") and not _list(term, "matchFields")


def _compile_term(term: Obj, path: str) -> _Term:
    errs: list[FieldError] = []
    labels: Selector | None = None
    fields: tuple[_FieldTerm, ...] | None = None
    expressions = _list(term, "matchExpressions")
    if expressions:
        labels, label_errs = requirements_as_selector(expressions, _child(path, "matchExpressions"))
        errs.extend(label_errs)
    field_reqs = _list(term, "matchFields")
    if field_reqs:
        fields, field_errs = _field_requirements(field_reqs, _child(path, "matchFields"))
        errs.extend(field_errs)
    return _Term(labels, fields, tuple(errs))


@dataclass(frozen=True, slots=True)
class NodeSelector:
    """A compiled v1.NodeSelector: `matches(node)` ORs its terms. `errors`: its invalid terms'."""

    terms: tuple[_Term, ...] = ()
    errors: tuple[FieldError, ...] = ()

    def matches(self, node: Obj) -> bool:
        if node is None:
            return False
        labels, name = _labels_and_name(node)
        return self._matches(labels, name)

    def _matches(self, labels: Mapping[str, str], name: str) -> bool:
        return any(term.matches(labels, name) for term in self.terms)


def compile_node_selector(node_selector: Obj, *, path: str = "", strict: bool = False) -> NodeSelector:
    """Compile a v1.NodeSelector (None: no terms, matches nothing).

    Lazy by default (NewLazyErrorNodeSelector): invalid terms never match and their errors are in
    `.errors`. `strict=True` (NewNodeSelector) raises NodeSelectorError listing every error, with
    paths like `nodeSelectorTerms[0].matchFields[0].values` under `path`.
    """
    base = _child(path, "nodeSelectorTerms")
    terms = tuple(
        _compile_term(term, f"{base}[{i}]")
        for i, term in enumerate(_list(node_selector, "nodeSelectorTerms"))
        if not _is_empty_term(term)
    )
    errors = tuple(e for term in terms for e in term.errors)
    if strict and errors:
        raise NodeSelectorError(errors)
    return NodeSelector(terms, errors)


@dataclass(frozen=True, slots=True)
class PreferredSchedulingTerms:
    """Compiled []v1.PreferredSchedulingTerm: `score(node)` sums the weights of matching terms."""

    terms: tuple[tuple[_Term, int], ...] = ()
    errors: tuple[FieldError, ...] = ()

    def score(self, node: Obj) -> int:
        if node is None:
            return 0
        labels, name = _labels_and_name(node)
        return sum(weight for term, weight in self.terms if term.matches(labels, name))


def compile_preferred_terms(
    terms: Iterable[Obj] | None, *, path: str = "", strict: bool = True
) -> PreferredSchedulingTerms:
    """Compile preferred scheduling terms (NewPreferredSchedulingTerms).

    Terms with weight 0 or no requirements are dropped unvalidated. An invalid term raises
    NodeSelectorError (every error, paths like `[2].matchExpressions[0].key` under `path`), or with
    `strict=False` is dropped and its errors kept in `.errors`.
    """
    parsed: list[tuple[_Term, int]] = []
    errors: list[FieldError] = []
    for i, term in enumerate(terms or ()):
        weight = int(term.get("weight") or 0) if isinstance(term, dict) else term.weight
        preference = _sub(term, "preference")
        if weight == 0 or preference is None or _is_empty_term(preference):
            continue
        compiled = _compile_term(preference, f"{path}[{i}]")
        if compiled.errors:
            errors.extend(compiled.errors)
        else:
            parsed.append((compiled, weight))
    if strict and errors:
        raise NodeSelectorError(errors)
    return PreferredSchedulingTerms(tuple(parsed), tuple(errors))


@dataclass(frozen=True, slots=True)
class RequiredNodeAffinity:
    """A pod's hard node constraints: spec.nodeSelector AND required node affinity (either may be None)."""

    node_selector: tuple[tuple[str, str], ...] | None = None
    affinity: NodeSelector | None = None

    def matches(self, node: Obj) -> bool:
        labels, name = _labels_and_name(node)
        if self.node_selector is not None:
            for key, value in self.node_selector:
                if key not in labels or labels[key] != value:
                    return False
        if self.affinity is not None:
            return node is not None and self.affinity._matches(labels, name)
        return True


def required_node_affinity(pod: Obj) -> RequiredNodeAffinity:
    """Compile a pod's nodeSelector and required node affinity once (GetRequiredNodeAffinity)."""
    spec = _sub(pod, "spec")
    if spec is None:
        return RequiredNodeAffinity()
    selector = spec.get("nodeSelector") if isinstance(spec, dict) else spec.nodeSelector
    required = _sub(
        _sub(_sub(spec, "affinity"), "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution"
    )
    return RequiredNodeAffinity(
        tuple(sorted(selector.items())) if selector else None,
        compile_node_selector(required) if required is not None else None,
    )


def match_node_selector_terms(node: Obj, terms: Obj) -> bool:
    """Whether `node` matches a v1.NodeSelector, or a list of its terms (MatchNodeSelectorTerms).

    None terms or node match nothing; invalid terms are skipped.
    """
    if node is None or terms is None:
        return False
    if not isinstance(terms, (dict, Message)):
        terms = {"nodeSelectorTerms": list(terms)}
    return compile_node_selector(terms).matches(node)


def node_matches_node_selector(pod: Obj, node: Obj) -> bool:
    """Whether `node` satisfies the pod's spec.nodeSelector AND its required node affinity."""
    return required_node_affinity(pod).matches(node)


def preferred_score(terms: Iterable[Obj] | None, node: Obj) -> int:
    """The sum of the weights of the preferred scheduling terms `node` matches (invalid terms: 0)."""
    return compile_preferred_terms(terms, strict=False).score(node)


# ----- taints and tolerations --------------------------------------------------------------


def tolerates_taint(toleration: Obj, taint: Obj) -> bool:
    """Toleration.ToleratesTaint with the comparison-operator feature gate off."""
    effect = _str(toleration, "effect")
    if effect and effect != _str(taint, "effect"):
        return False
    key = _str(toleration, "key")
    if key and key != _str(taint, "key"):
        return False
    operator = _str(toleration, "operator")
    if operator in ("", "Equal"):
        return _str(toleration, "value") == _str(taint, "value")
    return operator == "Exists"


def tolerations_tolerate_taint(tolerations: Iterable[Obj], taint: Obj) -> bool:
    """Whether any of `tolerations` tolerates `taint`."""
    return any(tolerates_taint(toleration, taint) for toleration in tolerations)


def find_matching_untolerated_taint(
    taints: Iterable[Obj] | None, tolerations: Sequence[Obj] | None, effects: Collection[str] | None = None
) -> Obj | None:
    """The first taint with an effect in `effects` (None: any effect) that no toleration tolerates.

    Returns that taint object itself, or None when every such taint is tolerated.
    """
    tolerations = tolerations or ()
    for taint in taints or ():
        if effects is not None and _str(taint, "effect") not in effects:
            continue
        if not tolerations_tolerate_taint(tolerations, taint):
            return taint
    return None


def match_taint(taint: Obj, other: Obj) -> bool:
    """Taint.MatchTaint: same key and same effect (values may differ)."""
    return _str(taint, "key") == _str(other, "key") and _str(taint, "effect") == _str(other, "effect")


def taint_to_string(taint: Obj) -> str:
    """Taint.ToString: `key=value:Effect`, `key:Effect`, `key=value:` or `key`."""
    key, value, effect = _str(taint, "key"), _str(taint, "value"), _str(taint, "effect")
    if not effect:
        return f"{key}={value}:" if value else key
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def _check_effect(effect: str, spec: str) -> None:
    if effect not in TAINT_EFFECTS:
        raise ValueError(
            f"invalid taint effect: {effect!r} in {spec!r}, unsupported taint effect "
            f"(supported: {', '.join(TAINT_EFFECTS)})"
        )


def parse_taint(spec: str) -> tuple[dict[str, str], bool]:
    """Parse one `kpctl taint` argument into (taint as a JSON dict, remove?).

    `key=value:Effect` and `key:Effect` add (or update) a taint; `key-` removes every taint with
    that key and `key:Effect-` the one with that key and effect. Raises ValueError naming the
    problem (kubectl's `invalid taint spec: ...` messages, with a hint).
    """
    remove = spec.endswith("-")
    body = spec[:-1] if remove else spec
    parts = body.split(":")
    key, value, effect = parts[0], "", ""
    if len(parts) > 2:
        raise ValueError(f"invalid taint spec: {spec}, at most one ':' (expected key[=value]:Effect)")
    if len(parts) == 2:
        effect = parts[1]
        _check_effect(effect, spec)
        key_value = parts[0].split("=")
        if len(key_value) > 2:
            raise ValueError(f"invalid taint spec: {spec}, at most one '=' (expected key[=value]:Effect)")
        key = key_value[0]
        if len(key_value) == 2:
            value = key_value[1]
            value_errs = validate_label_value(value)
            if value_errs:
                raise ValueError(f"invalid taint spec: {spec}, value {value!r}: {'; '.join(value_errs)}")
    elif "=" in key:
        raise ValueError(
            f"invalid taint spec: {spec}, a taint needs an effect: key=value:Effect "
            f"(Effect one of {', '.join(TAINT_EFFECTS)})"
        )
    key_errs = validate_label_key(key)
    if key_errs:
        raise ValueError(f"invalid taint spec: {spec}, key {key!r}: {'; '.join(key_errs)}")
    if not remove and not effect:
        raise ValueError(
            f"invalid taint spec: {spec}, a taint to add needs an effect: {key}[=value]:Effect "
            f"(Effect one of {', '.join(TAINT_EFFECTS)}); to remove it use {key}-"
        )
    taint = {"key": key}
    if value and not remove:
        taint["value"] = value
    if effect:
        taint["effect"] = effect
    return taint, remove
