"""`kpctl apply`: the three-way merge kubectl computes from the last-applied configuration.

    original = the manifest applied last time (the last-applied annotation)
    modified = the manifest being applied now
    current  = the live object

The patch deletes what the user removed since last time (in original, not in modified) and sets
everything the user specifies that differs from the live object, leaving fields the user never
managed (status, defaults, what controllers and other writers set) alone.

A JSON merge patch cannot reach inside a list, so lists are atomic: one the user changed since
last time (modified differs from original — an item removed, or a field inside an item removed,
such as a container's args) is sent whole, and so is one the live object no longer matches; the
server re-applies its defaults to the new items. A list the user left alone whose live copy only
adds server defaults (a container's imagePullPolicy) is unchanged.

Discriminated unions (a struct with a `type` and one member per type, e.g. a Deployment's
`strategy: {type: RollingUpdate, rollingUpdate: {...}}`) get kubectl's `$retainKeys` treatment:
when the user switches the type, the live member of the old type (often a server default the
user never wrote) is removed, or the server would reject the new type.
"""

from __future__ import annotations

import copy
import json
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def last_applied_annotation(manifest: dict[str, Any]) -> str:
    """The annotation value: the manifest itself, without the annotation, compact JSON."""
    clean = copy.deepcopy(manifest)
    annotations = clean.get("metadata", {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            clean["metadata"].pop("annotations")
    return json.dumps(clean, separators=(",", ":"), sort_keys=True)


def with_last_applied(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = last_applied_annotation(manifest)
    return out


def _deletions(original: Any, modified: Any) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return patch
    for key, value in original.items():
        if key not in modified:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(modified[key], dict):
            sub = _deletions(value, modified[key])
            if sub:
                patch[key] = sub
    return patch


def _changes(original: Any, current: Any, modified: dict[str, Any]) -> dict[str, Any]:
    """What to set so that `current` has everything in `modified`; `original` (the same place in
    the last-applied manifest, or None) tells which lists the user changed since last time."""
    patch: dict[str, Any] = {}
    for key, value in modified.items():
        live = current.get(key) if isinstance(current, dict) else None
        before = original.get(key) if isinstance(original, dict) else None
        if isinstance(value, dict) and isinstance(live, dict):
            sub = _changes(before, live, value)
            sub.update(_union_switch(live, value))
            if sub:
                patch[key] = sub
        elif isinstance(value, list) and isinstance(live, list):
            if (isinstance(before, list) and before != value) or not _list_covered(live, value):
                patch[key] = copy.deepcopy(value)
        elif live != value:
            patch[key] = copy.deepcopy(value)
    return patch


def _union_switch(live: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """Deletions ($retainKeys) for a discriminated union whose `type` the user changes: the live
    member named after the old type (`RollingUpdate` -> `rollingUpdate`) unless the user sets it.
    Only struct members count, so plain fields beside a `type` (a Service's clusterIP) stay."""
    old, new = live.get("type"), wanted.get("type")
    if not isinstance(old, str) or not old or not isinstance(new, str) or old == new:
        return {}
    member = old[0].lower() + old[1:]
    if member in wanted or not isinstance(live.get(member), dict):
        return {}
    return {member: None}


def _list_covered(live: list[Any], wanted: list[Any]) -> bool:
    """A list is unchanged when it has the same length and every wanted item is contained in the
    live one (the server adds defaults inside list items, e.g. a container's imagePullPolicy)."""
    if len(live) != len(wanted):
        return False
    return all(_contains(lv, wv) for lv, wv in zip(live, wanted, strict=True))


def _contains(live: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict) and isinstance(live, dict):
        return all(k in live and _contains(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list) and isinstance(live, list):
        return _list_covered(live, wanted)
    return bool(live == wanted)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def three_way_patch(original: dict[str, Any] | None, modified: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch taking `current` to what the user asked for (empty dict: unchanged)."""
    modified = with_last_applied(modified)
    deletions = _deletions(original or {}, modified)
    changes = _changes(original, current, modified)
    return _merge(deletions, changes)
