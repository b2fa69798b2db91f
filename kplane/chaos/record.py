"""What a chaos run records: a timeline of watch events (each object reduced to the few fields the
invariants read, with its resourceVersion), faults and steps; and the cluster state replayed from it.

Entries are plain JSON (``timeline.jsonl`` in the report directory), so a report can be rebuilt
and invariants re-checked from a recorded run without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from kplane.api.quantity import parse_quantity

NO_EXECUTE_KEYS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")


@dataclass
class Entry:
    """One line of the timeline.

    kind ``watch``: ``type`` ADDED/MODIFIED/DELETED of ``resource`` ns/name at ``rv`` with ``obj``
    (a summary, see :func:`summarize`); kind ``fault``: ``obj`` is the FaultRecord; kind ``step``:
    a scenario step started (``name``) or ended (``type`` "done"/"failed", ``obj.error``)."""

    t: float
    kind: str
    type: str = ""
    resource: str = ""
    namespace: str = ""
    name: str = ""
    rv: int = 0
    obj: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        return cls(**{k: d[k] for k in ("t", "kind", "type", "resource", "namespace", "name", "rv", "obj") if k in d})

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.resource, self.namespace, self.name)


def _millicores(q: str) -> int:
    return int(parse_quantity(q).milli_value())


def _bytes(q: str) -> int:
    return int(parse_quantity(q).value())


def _quantities(m: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for res, fn in (("cpu", _millicores), ("memory", _bytes), ("pods", _bytes)):
        q = m.get(res) if hasattr(m, "get") else None
        text = getattr(q, "string", q) if q is not None else None
        if text:
            try:
                out[res] = fn(str(text))
            except (ValueError, ArithmeticError):
                pass
    return out


def summarize(resource: str, d: dict[str, Any]) -> dict[str, Any]:
    """The fields the invariants and the report read, from an object as JSON (to_dict)."""
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    s: dict[str, Any] = {"uid": meta.get("uid", ""), "labels": meta.get("labels") or {}}
    if meta.get("deletionTimestamp"):
        s["deleting"] = True
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    if owners:
        s["owner"] = f"{owners[0].get('kind', '').lower()}s/{owners[0].get('name', '')}"
        s["owner_uid"] = owners[0].get("uid", "")
    if resource == "pods":
        s["node"] = spec.get("nodeName", "")
        s["phase"] = status.get("phase", "Pending")
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        s["ready"] = conds.get("Ready") == "True"
        req = {"cpu": 0, "memory": 0}
        for c in spec.get("containers") or []:
            r = _quantities((c.get("resources") or {}).get("requests") or {})
            req["cpu"] += r.get("cpu", 0)
            req["memory"] += r.get("memory", 0)
        s["requests"] = req
    elif resource == "nodes":
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        s["ready"] = conds.get("Ready", "Unknown")
        s["taints"] = [f"{t.get('key')}:{t.get('effect')}" for t in spec.get("taints") or []]
        s["unschedulable"] = bool(spec.get("unschedulable"))
        s["allocatable"] = _quantities(status.get("allocatable") or {})
    elif resource in ("deployments", "replicasets"):
        s["replicas"] = int(spec.get("replicas", 1))
        s["generation"] = int(meta.get("generation", 0))
        for k in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "observedGeneration"):
            s[f"status.{k}"] = int(status.get(k, 0))
        s["selector"] = (spec.get("selector") or {}).get("matchLabels") or {}
        if resource == "deployments":
            ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
            s["maxSurge"] = ru.get("maxSurge", "25%")
    elif resource == "daemonsets":
        tmpl = (spec.get("template") or {}).get("spec") or {}
        s["nodeSelector"] = tmpl.get("nodeSelector") or {}
        s["tolerations"] = [f"{t.get('key', '')}:{t.get('operator', 'Equal')}:{t.get('effect', '')}"
                            for t in tmpl.get("tolerations") or []]
        s["generation"] = int(meta.get("generation", 0))
        for k in ("desiredNumberScheduled", "numberReady", "currentNumberScheduled", "observedGeneration"):
            s[f"status.{k}"] = int(status.get(k, 0))
    return s


@dataclass
class Timeline:
    entries: list[Entry] = field(default_factory=list)

    def add(self, e: Entry) -> None:
        self.entries.append(e)

    def faults(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "fault"]

    @property
    def start(self) -> float:
        return self.entries[0].t if self.entries else 0.0

    @property
    def end(self) -> float:
        return self.entries[-1].t if self.entries else 0.0

    @classmethod
    def from_lines(cls, docs: Iterable[dict[str, Any]]) -> Timeline:
        return cls([Entry.from_json(d) for d in docs])


class State:
    """The cluster as the timeline says it is at some moment (objects' summaries by key), plus
    which nodes are down by a fault (killed and not restarted; frozen and not thawed)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.down: set[str] = set()  # nodes killed by a fault and not restarted: their pods are gone
        self.frozen: set[str] = set()  # nodes frozen and not thawed: their pods still run
        self.t = 0.0

    def apply(self, e: Entry) -> None:
        self.t = e.t
        if e.kind == "watch":
            if e.type == "DELETED":
                self.objects.pop(e.key, None)
            else:
                self.objects[e.key] = e.obj
        elif e.kind == "fault":
            f, target = e.obj.get("fault"), str(e.obj.get("target", ""))
            if f == "kill-node":
                self.down.add(target)
            elif f == "freeze-node":
                self.frozen.add(target)
            elif f == "thaw-node":
                self.frozen.discard(target)
            elif f == "restart-node":
                self.down.discard(target)
                self.frozen.discard(target)

    def of(self, resource: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for (r, ns, name), obj in self.objects.items():
            if r == resource:
                yield ns, name, obj

    def pods(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        return self.of("pods")

    def node(self, name: str) -> dict[str, Any] | None:
        return self.objects.get(("nodes", "", name))


def replay(timeline: Timeline) -> Iterator[tuple[Entry, State]]:
    """Each entry with the state right after it (one State object, updated in place)."""
    state = State()
    for e in timeline.entries:
        state.apply(e)
        yield e, state


def active(pod: dict[str, Any]) -> bool:
    """Not terminated and not being deleted: a pod the controllers count."""
    return not pod.get("deleting") and pod.get("phase") not in ("Succeeded", "Failed")


def serving(pod: dict[str, Any], state: State) -> bool:
    """Running and Ready, and really running: not on a node a fault killed (a frozen node's pods
    keep running, whatever its Ready condition says)."""
    node = pod.get("node", "")
    if not active(pod) or pod.get("phase") != "Running" or not pod.get("ready") or not node:
        return False
    return node not in state.down


def owned_by(state: State, namespace: str, target: str, pod: dict[str, Any]) -> bool:
    """Whether ``pod`` belongs to ``target`` (``deployments/web``: through one of its ReplicaSets)."""
    owner = pod.get("owner", "")
    if not owner:
        return False
    if owner == target:
        return True
    if target.startswith("deployments/") and owner.startswith("replicasets/"):
        rs = state.objects.get(("replicasets", namespace, owner.split("/", 1)[1]))
        return rs is not None and rs.get("owner") == target
    return False


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
