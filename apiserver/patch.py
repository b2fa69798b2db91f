"""Strategic merge patch for the lists Kubernetes merges by key.

A JSON merge patch replaces lists whole; Kubernetes' strategic merge merges the lists that carry a
`patchMergeKey` in the API (containers by `name`, ports by `containerPort`, ...) and honours the
`$patch: delete` / `$patch: replace` directives. This covers the merge keys of the kinds kplane
serves; every other list is replaced, as in a merge patch.
"""

from __future__ import annotations

import copy
from typing import Any

# list field name -> merge key (from the patchMergeKey tags of k8s.io/api).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "readinessGates": "conditionType",
    "topologySpreadConstraints": "topologyKey",
    "addresses": "type",
}
# (node taints and pod tolerations have no patch strategy in Kubernetes: they are replaced whole)
# lists of ports merge by port number (containers) or port (services)
PORT_KEYS = ("containerPort", "port")
# lists of scalars merged as sets
SET_LISTS = frozenset({"finalizers"})


def strategic_merge(original: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list) and isinstance(value, list):
                result[name] = [v for v in result[name] if v not in value]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder/* (ordering only) and $retainKeys (applied below)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        # union types (e.g. a strategy): keys not listed are cleared, as kubectl apply relies on
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_key(name: str, items: list[Any]) -> str | None:
    if name in MERGE_KEYS:
        return MERGE_KEYS[name]
    if name == "ports" and items and all(isinstance(i, dict) for i in items):
        for key in PORT_KEYS:
            if all(key in i for i in items):
                return key
    return None


def _merge_list(name: str, original: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(original, list):
        original = []
    if name in SET_LISTS:
        out = list(original)
        out.extend(v for v in patch if v not in out)
        return out
    key = _merge_key(name, [*original, *patch])
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [copy.deepcopy(v) for v in patch]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [{k: copy.deepcopy(v) for k, v in i.items() if k != "$patch"}
                for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    out = [copy.deepcopy(i) for i in original]
    for item in patch:
        directive = item.get("$patch")
        match = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item.get(key)), None)
        if directive == "delete":
            if match is not None:
                out.pop(match)
            continue
        if match is None:
            out.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            merged = strategic_merge(out[match], item)
            out[match] = merged
    return out
