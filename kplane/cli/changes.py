"""Rendering changes for people: YAML diffs between revisions, one-line summaries, writers.

Pure functions over JSON dicts (no client, no gRPC), shared by `kplane history`, `kplane events`
and `kplane timeline`, and tested on their own.

* `yaml_diff`: a unified diff of two revisions' YAML (keys sorted like `kpctl get -o yaml`),
  coloured like git on a terminal. Bookkeeping that changes on every write
  (`metadata.resourceVersion`, `metadata.managedFields`) is left out unless asked for, so a diff
  shows what the writer changed.
* `summarize`: what changed in one line — `spec.nodeName: "" → node-2`. Objects are flattened to
  leaf paths, list items keyed by their `name`/`type` where they have one
  (`status.conditions[Ready].status: False → True`, `spec.containers[web].image: ...`), so a
  reordered or grown list reads as the item that changed; timestamps go last (they change with
  everything else and say the least). Events summarise as `Reason: message`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

# Metadata that changes on (nearly) every write: noise in a diff or a summary.
NOISE = frozenset({"metadata.resourceVersion", "metadata.managedFields"})
LOW_PRIORITY = ("metadata.generation",)
_ITEM_KEYS = ("name", "type", "key", "mountPath", "containerPort", "ip", "address", "devicePath")

RED, GREEN, CYAN, YELLOW, BOLD, DIM, RESET = ("\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[33m", "\x1b[1m", "\x1b[2m",
                                              "\x1b[0m")


def clean(obj: Mapping[str, Any], *, keep_managed_fields: bool = False) -> Obj:
    """A copy of `obj` without the per-write bookkeeping (resourceVersion, managedFields)."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if not keep_managed_fields:
        meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def to_yaml(obj: Mapping[str, Any]) -> str:
    from kplane.cli.printers import render_yaml

    return render_yaml(dict(obj))


def yaml_lines(obj: Mapping[str, Any] | None, *, keep_managed_fields: bool = False) -> list[str]:
    """The object's YAML (bookkeeping left out) as lines, ready for `diff_lines`."""
    return to_yaml(clean(obj, keep_managed_fields=keep_managed_fields)).splitlines() if obj else []


def yaml_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *, color: bool = False,
              context: int = 2, keep_managed_fields: bool = False) -> str:
    """A unified diff (hunks only, no file header) from `old` to `new`; "" when equal."""
    return diff_lines(yaml_lines(old, keep_managed_fields=keep_managed_fields),
                      yaml_lines(new, keep_managed_fields=keep_managed_fields), color=color, context=context)


def diff_lines(a: list[str], b: list[str], *, color: bool = False, context: int = 2) -> str:
    lines = []
    for line in difflib.unified_diff(a, b, lineterm="", n=context):
        if line.startswith(("---", "+++")):
            continue
        lines.append(_paint(line) if color else line)
    return "\n".join(lines) + ("\n" if lines else "")


def _paint(line: str) -> str:
    if line.startswith("@@"):
        return f"{CYAN}{line}{RESET}"
    if line.startswith("+"):
        return f"{GREEN}{line}{RESET}"
    if line.startswith("-"):
        return f"{RED}{line}{RESET}"
    return line


# -- flattening and summaries ---------------------------------------------------------------------


def _item_key(items: list[Any]) -> str | None:
    """The field that identifies the items of a list of objects, if every item has a distinct one."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _ITEM_KEYS:
        values = [i.get(key) for i in items]
        if all(isinstance(v, (str, int)) and v != "" for v in values) and len(set(values)) == len(values):
            return key
    return None


def _shared_key(a: list[Any], b: list[Any]) -> str | None:
    """The item key both lists are identified by (either may be empty)."""
    ka, kb = _item_key(a), _item_key(b)
    if not a:
        return kb
    if not b:
        return ka
    return ka if ka == kb else None


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf value) pairs; lists of scalars are one leaf, lists of objects are keyed."""
    if isinstance(value, dict):
        if not value and path:
            yield path, {}
        for k, v in value.items():
            yield from flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        key = _item_key(value)
        if key is not None:
            for item in value:
                yield from flatten(item, f"{path}[{item[key]}]")
        elif value and any(isinstance(i, (dict, list)) for i in value):
            for i, item in enumerate(value):
                yield from flatten(item, f"{path}[{i}]")
        else:
            yield path, value
    else:
        yield path, value


_MISSING = object()


def _low(path: str) -> bool:
    leaf = path.rsplit(".", 1)[-1]
    return path in LOW_PRIORITY or leaf.endswith(("Time", "Timestamp"))


def _leaves(value: Any, path: str, before: bool, out: list[tuple[str, Any, Any]]) -> None:
    for p, v in flatten(value, path):
        out.append((p, v, None) if before else (p, None, v))


def _diff(a: Any, b: Any, path: str, out: list[tuple[str, Any, Any]]) -> None:
    """Differing leaves of a and b, skipping equal subtrees whole (a write changes little)."""
    if a is b or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict) and (a or b):
        for k, v in b.items():
            child = f"{path}.{k}" if path else str(k)
            if child in NOISE:
                continue
            _diff(a.get(k, _MISSING), v, child, out)
        for k, v in a.items():
            if k not in b:
                child = f"{path}.{k}" if path else str(k)
                if child not in NOISE:
                    _diff(v, _MISSING, child, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        key = _shared_key(a, b)
        if key is not None:
            old = {i[key]: i for i in a}
            for item in b:
                _diff(old.pop(item[key], _MISSING), item, f"{path}[{item[key]}]", out)
            for k, item in old.items():
                _diff(item, _MISSING, f"{path}[{k}]", out)
            return
        if any(isinstance(i, (dict, list)) for i in a + b):
            for i in range(max(len(a), len(b))):
                _diff(a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING, f"{path}[{i}]", out)
            return
    if a is _MISSING:
        if isinstance(b, (dict, list)) and b:
            _leaves(b, path, False, out)
        else:
            out.append((path, None, b))
    elif b is _MISSING:
        if isinstance(a, (dict, list)) and a:
            _leaves(a, path, True, out)
        else:
            out.append((path, a, None))
    elif isinstance(a, dict) or isinstance(b, dict):
        _diff(a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}, path, out)
    else:
        out.append((path, a, b))


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """(path, before, after) for every leaf that differs (None = absent), interesting ones first."""
    out: list[tuple[str, Any, Any]] = []
    _diff(dict(old or {}), dict(new or {}), "", out)
    return sorted(out, key=lambda c: _low(c[0]))  # stable: keeps document order within each group


def format_value(value: Any, limit: int = 48) -> str:
    if value is None or value == "":
        return '""'
    if isinstance(value, str):
        text = value if value.strip() == value and "\n" not in value else json.dumps(value)
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize(change_type: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *,
              limit: int = 3, diffs: list[tuple[str, Any, Any]] | None = None) -> str:
    """One line saying what a change did."""
    obj = new or old or {}
    if obj.get("kind") == "Event":
        reason, message = obj.get("reason", ""), str(obj.get("message", "")).strip()
        count = obj.get("count") or 1
        text = f"{obj.get('type', '')} {reason}: {message}".strip()
        return text + (f" (x{count})" if isinstance(count, int) and count > 1 else "")
    if change_type == "ADDED":
        return "created"
    if change_type == "DELETED":
        return "deleted"
    old_meta, new_meta = (old or {}).get("metadata") or {}, (new or {}).get("metadata") or {}
    if new_meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp"):
        grace = new_meta.get("deletionGracePeriodSeconds")
        finalizers = new_meta.get("finalizers") or []
        return "deletion requested" + (f" (grace {grace}s)" if grace else "") + \
            (f", waiting for finalizers {', '.join(finalizers)}" if finalizers else "")
    if diffs is None:
        diffs = changes(old, new)
    if not diffs:
        return "no change"
    parts = [f"{path}: {format_value(a)} → {format_value(b)}" for path, a, b in diffs[:limit]]
    if len(diffs) > limit:
        parts.append(f"+{len(diffs) - limit} more")
    return "; ".join(parts)


# -- writers and times ----------------------------------------------------------------------------


def writer_name(manager: str, user: str = "") -> str:
    """`kube-scheduler`, `kpctl (alice)`; `-` when the change was not made through the API."""
    if not manager:
        return "-"
    return f"{manager} ({user})" if user else manager


def verb_text(verb: str, subresource: str = "") -> str:
    return f"{verb} {subresource}".strip() if verb else ""


def time_of(seconds: int, nanos: int) -> datetime | None:
    if not seconds and not nanos:
        return None
    return datetime.fromtimestamp(seconds + nanos / 1e9, UTC)


def iso_millis(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def clock_millis(moment: datetime | None) -> str:
    """`13:04:05.123` in local time (a change stream is read by someone on this machine)."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
