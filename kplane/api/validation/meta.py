"""ObjectMeta validation (create and update), labels, annotations, selectors, plus the typed
accessors every kind validator uses to read a Kubernetes JSON dict without ever raising.

Accessors never trust the shape of their input: a value of the wrong JSON type is reported as a
`FieldValueTypeInvalid` error at its path (`expected an object`, `expected an integer`, ...) and
treated as absent, so the rest of the object is still validated and every error is reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kplane.api import field as fe
from kplane.api.field import FieldError
from kplane.api.labels import selector_from_label_selector, validate_label_key, validate_label_value
from kplane.api.validation import names

Errs = list[FieldError]
JSONDict = dict[str, Any]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
CLUSTER_SCOPED_KINDS = frozenset({"Namespace", "Node", "PersistentVolume"})


# --------------------------------------------------------------------------------------------
# Paths


def child(path: str, name: str) -> str:
    """`spec` + `replicas` -> `spec.replicas` (no leading dot at the root)."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """Map keys render in brackets, as Kubernetes' `Path.Key`: `resources.limits[cpu]`."""
    return f"{path}[{k}]"


# --------------------------------------------------------------------------------------------
# Typed accessors (defensive: wrong JSON types become errors, never exceptions)


def as_dict(value: Any, path: str, errs: Errs) -> JSONDict | None:
    """`value` if it is an object; None when absent (None) or of the wrong type (reported)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    errs.append(fe.type_invalid(path, value, "expected an object"))
    return None


def get_dict(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> JSONDict:
    """obj[name] as an object; `{}` when absent or invalid (the invalid case is reported)."""
    found = as_dict(obj.get(name), child(path, name), errs)
    return found if found is not None else {}


def opt_dict(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> JSONDict | None:
    """obj[name] as an object, or None when absent or invalid (the invalid case is reported)."""
    return as_dict(obj.get(name), child(path, name), errs)


def get_list(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> list[Any]:
    value = obj.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    errs.append(fe.type_invalid(child(path, name), value, "expected an array"))
    return []


def dict_items(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> list[tuple[int, str, JSONDict]]:
    """(index, item path, item) for each object in the list obj[name]; non-objects are reported."""
    lpath = child(path, name)
    out: list[tuple[int, str, JSONDict]] = []
    for i, item in enumerate(get_list(obj, name, path, errs)):
        ipath = index(lpath, i)
        d = as_dict(item, ipath, errs)
        if d is None and item is None:
            d = {}
        if d is not None:
            out.append((i, ipath, d))
    return out


def get_str(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> str:
    """obj[name] as a string; "" when absent or of the wrong type (reported)."""
    value = obj.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    errs.append(fe.type_invalid(child(path, name), value, "expected a string"))
    return ""


def opt_str(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    errs.append(fe.type_invalid(child(path, name), value, "expected a string"))
    return None


def as_int(value: Any) -> int | None:
    """An integer JSON value (an integral float counts); None for anything else, bools included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def opt_int(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> int | None:
    """obj[name] as an integer; None when absent or of the wrong type (reported)."""
    value = obj.get(name)
    if value is None:
        return None
    n = as_int(value)
    if n is None:
        errs.append(fe.type_invalid(child(path, name), value, "expected an integer"))
    return n


def get_int(obj: Mapping[str, Any], name: str, path: str, errs: Errs, default: int = 0) -> int:
    n = opt_int(obj, name, path, errs)
    return default if n is None else n


def opt_bool(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> bool | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    errs.append(fe.type_invalid(child(path, name), value, "expected a boolean"))
    return None


def get_str_map(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> dict[str, str]:
    """obj[name] as a map of strings; entries whose value is not a string are reported and dropped."""
    mpath = child(path, name)
    d = as_dict(obj.get(name), mpath, errs)
    if d is None:
        return {}
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, str):
            out[str(k)] = v
        else:
            errs.append(fe.type_invalid(key(mpath, str(k)), v, "expected a string"))
    return out


def get_str_list(obj: Mapping[str, Any], name: str, path: str, errs: Errs) -> list[str]:
    lpath = child(path, name)
    out: list[str] = []
    for i, v in enumerate(get_list(obj, name, path, errs)):
        if isinstance(v, str):
            out.append(v)
        else:
            errs.append(fe.type_invalid(index(lpath, i), v, "expected a string"))
    return out


def quiet(value: Any) -> Any:
    """JSON-normalise a value for equality checks: null, "", {} and [] all mean "unset"."""
    if isinstance(value, dict):
        out = {k: q for k, v in value.items() if (q := quiet(v)) is not None}
        return out or None
    if isinstance(value, list):
        return [quiet(v) for v in value] or None
    if value == "" and isinstance(value, str):
        return None
    return value


def semantic_equal(a: Any, b: Any) -> bool:
    """Deep equality where an absent field, null, "", {} and [] are the same (Go's zero values)."""
    return bool(quiet(a) == quiet(b))


def render(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------------
# Small shared validators


def nonnegative(value: int | None, path: str, errs: Errs) -> None:
    if value is not None and value < 0:
        errs.append(fe.invalid(path, value, IS_NEGATIVE))


def name_errors(value: str, path: str, fn: names.NameFunc, errs: Errs, prefix: bool = False) -> None:
    for msg in fn(value, prefix):
        errs.append(fe.invalid(path, value, msg))


def format_errors(value: str, path: str, check: Any, errs: Errs) -> None:
    """Append `Invalid value` for each message of a `names.is_*` check."""
    for msg in check(value):
        errs.append(fe.invalid(path, value, msg))


def validate_immutable(new: Any, old: Any, path: str, errs: Errs) -> None:
    if not semantic_equal(new, old):
        errs.append(fe.invalid(path, new, FIELD_IMMUTABLE))


def validate_label_name(value: str, path: str, errs: Errs) -> None:
    """Label keys, taint and toleration keys, topology keys (`ValidateLabelName`)."""
    for msg in validate_label_key(value):
        errs.append(fe.invalid(path, value, msg))


def validate_labels(labels: Any, path: str, errs: Errs) -> None:
    """Every key and value of a label map; errors carry the map's path (`metadata.labels`)."""
    if labels is None:
        return
    if not isinstance(labels, dict):
        errs.append(fe.type_invalid(path, labels, "expected an object"))
        return
    for k, v in labels.items():
        validate_label_name(str(k), path, errs)
        if not isinstance(v, str):
            errs.append(fe.type_invalid(key(path, str(k)), v, "expected a string"))
            continue
        for msg in validate_label_value(v):
            errs.append(fe.invalid(path, v, msg))


def validate_annotations(annotations: Any, path: str, errs: Errs) -> None:
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        errs.append(fe.type_invalid(path, annotations, "expected an object"))
        return
    total = 0
    for k, v in annotations.items():
        for msg in names.is_qualified_name(str(k).lower()):
            errs.append(fe.invalid(path, k, msg))
        if not isinstance(v, str):
            errs.append(fe.type_invalid(key(path, str(k)), v, "expected a string"))
            continue
        total += len(str(k)) + len(v)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(FieldError(fe.TOO_LONG, path, f"must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"))


def validate_label_selector(selector: Any, path: str, errs: Errs) -> None:
    """A `metav1.LabelSelector` (`matchLabels` + `matchExpressions`)."""
    sel = as_dict(selector, path, errs)
    if sel is None:
        return
    validate_labels(sel.get("matchLabels"), child(path, "matchLabels"), errs)
    for _, epath, expr in dict_items(sel, "matchExpressions", path, errs):
        validate_selector_requirement(expr, epath, errs, label_values=True)


def validate_selector_requirement(expr: JSONDict, path: str, errs: Errs, *, label_values: bool) -> None:
    op = get_str(expr, "operator", path, errs)
    values = get_str_list(expr, "values", path, errs)
    if op in ("In", "NotIn"):
        if not values:
            errs.append(
                fe.required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                fe.forbidden(
                    child(path, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    else:
        errs.append(fe.invalid(child(path, "operator"), op, "not a valid selector operator"))
    validate_label_name(get_str(expr, "key", path, errs), child(path, "key"), errs)
    if label_values:
        for i, v in enumerate(values):
            for msg in validate_label_value(v):
                errs.append(fe.invalid(index(child(path, "values"), i), v, msg))


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool | None:
    """Whether a LabelSelector dict selects `labels`; a missing selector selects nothing.

    Returns None when the selector cannot be compiled (its problems are reported elsewhere).
    """
    if selector is None:
        return False
    if not isinstance(selector, dict):
        return None
    try:
        return bool(selector_from_label_selector(selector).matches(dict(labels)))
    except (ValueError, TypeError, AttributeError, KeyError):
        return None


def selector_is_empty(selector: Any) -> bool:
    if not isinstance(selector, dict):
        return False
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


# --------------------------------------------------------------------------------------------
# ObjectMeta


def _api_version_has_version(api_version: str) -> bool:
    parts = api_version.split("/")
    if len(parts) == 1:
        return bool(parts[0])
    if len(parts) == 2:
        return bool(parts[1])
    return False


def validate_owner_references(refs: list[Any], path: str, errs: Errs) -> None:
    first_controller = ""
    for _i, rpath, ref in _items(refs, path, errs):
        api_version = get_str(ref, "apiVersion", rpath, errs)
        kind = get_str(ref, "kind", rpath, errs)
        name = get_str(ref, "name", rpath, errs)
        uid = get_str(ref, "uid", rpath, errs)
        if not _api_version_has_version(api_version):
            errs.append(fe.invalid(child(rpath, "apiVersion"), api_version, "version must not be empty"))
        if not kind:
            errs.append(fe.invalid(child(rpath, "kind"), kind, "must not be empty"))
        if not name:
            errs.append(fe.invalid(child(rpath, "name"), name, "must not be empty"))
        if not uid:
            errs.append(fe.invalid(child(rpath, "uid"), uid, "must not be empty"))
        if opt_bool(ref, "controller", rpath, errs):
            current = f"{kind}/{name}"
            if first_controller:
                errs.append(
                    fe.invalid(
                        path,
                        refs,
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current


def _items(values: list[Any], path: str, errs: Errs) -> Iterable[tuple[int, str, JSONDict]]:
    for i, item in enumerate(values):
        ipath = index(path, i)
        d = as_dict(item, ipath, errs)
        if d is not None:
            yield i, ipath, d


def validate_finalizer_name(value: str, path: str, errs: Errs) -> None:
    for msg in names.is_qualified_name(value):
        errs.append(fe.invalid(path, value, msg))
    if "/" not in value and value not in STANDARD_FINALIZERS:
        errs.append(
            fe.invalid(path, value, "name is neither a standard finalizer name nor is it fully qualified")
        )


def validate_finalizers(finalizers: list[str], path: str, errs: Errs) -> None:
    for i, f in enumerate(finalizers):
        validate_finalizer_name(f, index(path, i), errs)
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(
            fe.invalid(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set")
        )


def _meta(obj: Mapping[str, Any], errs: Errs) -> JSONDict:
    return get_dict(obj, "metadata", "", errs)


def _common_meta(meta: JSONDict, path: str, errs: Errs) -> None:
    validate_labels(meta.get("labels"), child(path, "labels"), errs)
    validate_annotations(meta.get("annotations"), child(path, "annotations"), errs)
    validate_owner_references(
        get_list(meta, "ownerReferences", path, errs), child(path, "ownerReferences"), errs
    )
    validate_finalizers(get_str_list(meta, "finalizers", path, errs), child(path, "finalizers"), errs)


def validate_object_meta(
    obj: Mapping[str, Any],
    name_fn: names.NameFunc,
    *,
    namespaced: bool | None,
    path: str = "metadata",
) -> Errs:
    """`ValidateObjectMeta`: name (required; the apiserver resolves generateName first),
    generateName, namespace, generation, labels, annotations, ownerReferences, finalizers.

    `namespaced=True` validates a namespace when present (the apiserver fills in the request's
    namespace); `namespaced=False` forbids one; None skips the check.
    """
    errs: Errs = []
    meta = _meta(obj, errs) if path == "metadata" else as_dict(obj, path, errs) or {}
    generate_name = get_str(meta, "generateName", path, errs)
    if generate_name:
        name_errors(generate_name, child(path, "generateName"), name_fn, errs, prefix=True)
    name = get_str(meta, "name", path, errs)
    if not name:
        errs.append(fe.required(child(path, "name"), "name or generateName is required"))
    else:
        name_errors(name, child(path, "name"), name_fn, errs)
    namespace = get_str(meta, "namespace", path, errs)
    if namespaced is True and namespace:
        name_errors(namespace, child(path, "namespace"), names.validate_namespace_name, errs)
    elif namespaced is False and namespace:
        errs.append(fe.forbidden(child(path, "namespace"), "not allowed on this type"))
    nonnegative(opt_int(meta, "generation", path, errs), child(path, "generation"), errs)
    _common_meta(meta, path, errs)
    return errs


def _changed(new: Any, old: Any) -> bool:
    """True when `new` is set and differs from `old` (an omitted system field is carried forward)."""
    return new not in (None, "") and new != old


def validate_object_meta_update(
    new_obj: Mapping[str, Any], old_obj: Mapping[str, Any], path: str = "metadata"
) -> Errs:
    """`ValidateObjectMetaUpdate`: identity fields are immutable, generation never decreases,
    no finalizer may be added once deletion started; labels/annotations/... are re-validated.

    `uid`, `creationTimestamp` and `deletionTimestamp` may be omitted by the client (the
    apiserver carries them forward, as Kubernetes' BeforeUpdate does); a different value is an error.
    """
    errs: Errs = []
    new = _meta(new_obj, errs)
    old_errs: Errs = []
    old = _meta(old_obj, old_errs)

    def s(meta: JSONDict, name: str, sink: Errs) -> str:
        return get_str(meta, name, path, sink)

    for name in ("name", "namespace"):
        new_s, old_s = s(new, name, errs), s(old, name, old_errs)
        if new_s != old_s:
            errs.append(fe.invalid(child(path, name), new_s, FIELD_IMMUTABLE))
    for name in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        new_v, old_v = new.get(name), old.get(name)
        # Setting deletionTimestamp starts a graceful deletion (the apiserver's delete path);
        # changing it afterwards is not allowed.
        deletion_field = name in ("deletionTimestamp", "deletionGracePeriodSeconds")
        if (old_v is not None or not deletion_field) and _changed(new_v, old_v):
            errs.append(fe.invalid(child(path, name), new_v, FIELD_IMMUTABLE))
    new_gen = opt_int(new, "generation", path, errs)
    old_gen = opt_int(old, "generation", path, old_errs)
    if new_gen is not None and old_gen is not None and new_gen < old_gen:
        errs.append(fe.invalid(child(path, "generation"), new_gen, "must not be decremented"))
    if old.get("deletionTimestamp") is not None:
        old_fin = set(get_str_list(old, "finalizers", path, old_errs))
        extra = sorted({f for f in get_str_list(new, "finalizers", path, []) if f not in old_fin})
        if extra:
            errs.append(
                fe.forbidden(
                    child(path, "finalizers"),
                    f"no new finalizers can be added if the object is being deleted, found new finalizers {render(extra)}",
                )
            )
    _common_meta(new, path, errs)
    return errs


def validate_generic(obj: Mapping[str, Any], *, namespaced: bool | None = None) -> Errs:
    """Metadata-only validation for a kind without specific rules (names are DNS subdomains)."""
    return validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=namespaced)
