"""`metadata.managedFields`: which manager last set which fields of an object, and when.

Kubernetes tracks field ownership leaf by leaf (structured-merge-diff) for server-side apply.
kplane has no server-side apply, so it keeps the bookkeeping cheap and two levels deep — the
top-level fields and their direct children (`f:spec: {f:nodeName: {}}`, `f:status:
{f:conditions: {}}`, `f:metadata: {f:labels: {}}`) — which is what answers "who set this?":
the scheduler owns `spec.nodeName`, the kubelet `status.phase`, kpctl `spec.replicas`.

Rules (Kubernetes' Update semantics, at this depth):

* an entry is keyed by (manager, operation, subresource); operation is always `Update`;
* create: the creator owns every field present (server-owned metadata aside);
* update: the writer gains every field it changed; other managers lose those fields; a field
  that no longer exists is owned by nobody; an entry left with no fields is dropped;
* clients cannot write managedFields: the registry always starts from the stored entries.

The registry calls `stamp` with the JSON forms it already has, after the no-op check (a write
that changes nothing changes no timestamps) and before encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]
Field = tuple[str, ...]

# Metadata the server owns: never attributed to a manager.
SERVER_METADATA = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                             "managedFields", "selfLink", "generateName", "deletionTimestamp",
                             "deletionGracePeriodSeconds"})
IGNORED_TOP = frozenset({"apiVersion", "kind"})


def _children(top: str, value: Any) -> Iterable[str]:
    if not isinstance(value, dict):
        return ()
    if top == "metadata":
        return [k for k in value if k not in SERVER_METADATA]
    return value.keys()


def present_fields(obj: Mapping[str, Any]) -> set[Field]:
    """Every field of `obj` at two levels (a top-level object contributes its children)."""
    out: set[Field] = set()
    for top, value in obj.items():
        if top in IGNORED_TOP:
            continue
        if isinstance(value, dict):
            out.update([(top, child) for child in _children(top, value)])
        else:
            out.add((top,))
    return out


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[Field]:
    """Fields (two levels) whose value differs between `old` and `new`, removed ones included."""
    out: set[Field] = set()
    for top in old.keys() | new.keys():
        if top in IGNORED_TOP:
            continue
        before, after = old.get(top), new.get(top)
        if before == after:
            continue
        if isinstance(before, dict) or isinstance(after, dict):
            b = before if isinstance(before, dict) else {}
            a = after if isinstance(after, dict) else {}
            for child in {*_children(top, b), *_children(top, a)}:
                if b.get(child) != a.get(child):
                    out.add((top, child))
        else:
            out.add((top,))
    return out


def to_fields_v1(fields: Iterable[Field]) -> Obj:
    """{("spec", "replicas"), ("data",)} -> {"f:data": {}, "f:spec": {"f:replicas": {}}}"""
    out: Obj = {}
    for path in sorted(fields):
        node = out
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return out


def from_fields_v1(doc: Any) -> set[Field]:
    out: set[Field] = set()
    if not isinstance(doc, dict):
        return out
    for top, sub in doc.items():
        if not isinstance(top, str) or not top.startswith("f:"):
            continue
        name = top[2:]
        if sub and isinstance(sub, dict):
            out.update([(name, c[2:]) for c in sub if isinstance(c, str) and c.startswith("f:")])
        else:
            out.add((name,))
    return out


def _entry(manager: str, subresource: str, api_version: str, now: str, fields: set[Field]) -> Obj:
    entry: Obj = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": now,
                  "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fields)}
    if subresource:
        entry["subresource"] = subresource
    return entry


def stamp(new: Obj, old: Obj | None, *, manager: str, subresource: str, api_version: str, now: str) -> None:
    """Set new["metadata"]["managedFields"] for a create (old None) or an update by `manager`."""
    meta = new.setdefault("metadata", {})
    present = present_fields(new)
    if old is None:
        meta["managedFields"] = [_entry(manager, subresource, api_version, now, present)] if present else []
        return
    touched = changed_fields(old, new)
    entries: list[Obj] = []
    mine: Obj | None = None
    for entry in (old.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, dict):
            continue
        was = from_fields_v1(entry.get("fieldsV1"))
        same = (entry.get("manager") == manager and entry.get("operation", "Update") == "Update"
                and (entry.get("subresource") or "") == subresource)
        if same:
            mine = _entry(manager, subresource, api_version, now, (was | touched) & present)
            entries.append(mine)
            continue
        owned = (was - touched) & present
        if owned == was:
            entries.append(entry)  # untouched: kept as it is (the caller's dict is a fresh copy)
        elif owned:
            entries.append({**entry, "fieldsV1": to_fields_v1(owned)})
    if mine is None and touched & present:
        entries.append(_entry(manager, subresource, api_version, now, touched & present))
    meta["managedFields"] = [e for e in entries if e.get("fieldsV1")]
    if not meta["managedFields"]:
        meta.pop("managedFields")


def stamp_write(api_version: str, new: Obj, old: Obj | None, subresource: str = "") -> None:
    """`stamp` for the request being served (apiserver/audit.py); the apiserver's own writes are
    managed by `kube-apiserver`."""
    from apiserver import audit
    from kplane.api.codec import format_time, now_timestamp

    info = audit.current()
    if info is not None and subresource and not info.subresource:
        info.subresource = subresource  # UpdateStatus sent without ref.subresource, binding, ...
    manager = info.manager if info is not None else audit.SYSTEM_MANAGER
    sub = subresource or (info.subresource if info is not None else "")
    stamp(new, old, manager=manager, subresource=sub, api_version=api_version, now=format_time(now_timestamp()))
