"""Per-kind strategies: what create and update may change, and status vs spec separation.

Objects here are Kubernetes JSON dicts (the shape validation and defaulting work on). Each hook
mirrors the Kubernetes registry strategy of the same kind (pkg/registry/<group>/<kind>/strategy.go).
"""

from __future__ import annotations

import copy
from typing import Any

from kplane.api.resources import ResourceType

Obj = dict[str, Any]

_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})


def spec_part(obj: Obj) -> Obj:
    """Everything the user owns: all top-level fields except metadata and status."""
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class Strategy:
    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt

    @property
    def has_status(self) -> bool:
        return "status" in self.rt.subresources

    def prepare_for_create(self, obj: Obj) -> None:
        """Status is the controllers' to write: a create starts with an empty status."""
        if self.has_status:
            obj.pop("status", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """A main-resource update never changes status (the status subresource does)."""
        if self.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """A status update changes only status (and labels/annotations, as in Kubernetes)."""
        for key in list(new):
            if key not in _NOT_SPEC:
                del new[key]
        for key, value in old.items():
            if key not in _NOT_SPEC:
                new[key] = copy.deepcopy(value)
        meta, old_meta = new.setdefault("metadata", {}), old.get("metadata", {})
        for key in ("ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = copy.deepcopy(old_meta[key])
            else:
                meta.pop(key, None)


class PodStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec", {}))}

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        # qosClass is computed from the spec and never changes.
        old_qos = old.get("status", {}).get("qosClass")
        if old_qos:
            new.setdefault("status", {})["qosClass"] = old_qos


class NodeStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        # The kubelet registers its Node with status filled in.
        pass


class NamespaceStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        if "kubernetes" not in spec.get("finalizers", []):
            spec["finalizers"] = [*spec.get("finalizers", []), "kubernetes"]

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers change only through the finalize subresource.
        if "finalizers" in old.get("spec", {}):
            new.setdefault("spec", {})["finalizers"] = list(old["spec"]["finalizers"])


def qos_class(spec: Obj) -> str:
    """Kubernetes QoS: Guaranteed (limits == requests for cpu and memory in every container),
    BestEffort (no requests or limits at all), Burstable otherwise."""
    from kplane.api.quantity import Quantity

    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    any_set = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources", {}) if isinstance(c, dict) else {}
        requests = resources.get("requests", {}) or {}
        limits = resources.get("limits", {}) or {}
        if requests or limits:
            any_set = True
        for res in ("cpu", "memory"):
            lim = limits.get(res)
            req = requests.get(res, lim)
            if lim is None:
                guaranteed = False
                continue
            try:
                if Quantity.parse(str(req)) != Quantity.parse(str(lim)):
                    guaranteed = False
            except ValueError:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


_STRATEGIES: dict[str, type[Strategy]] = {
    "Pod": PodStrategy,
    "Node": NodeStrategy,
    "Namespace": NamespaceStrategy,
}


def strategy_for(rt: ResourceType) -> Strategy:
    return _STRATEGIES.get(rt.kind, Strategy)(rt)
