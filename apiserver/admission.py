"""Mutating admission: changes the apiserver makes to an object on its way into the store.

Runs on create after defaulting and before validation (Kubernetes runs mutating admission
before validation too, so what a plugin adds is validated like what the user sent).

**DefaultTolerationSeconds** (Kubernetes' plugin of that name): a pod that does not already
tolerate the ``node.kubernetes.io/not-ready`` / ``node.kubernetes.io/unreachable`` NoExecute
taints gets ``{key, operator: Exists, effect: NoExecute, tolerationSeconds: N}`` for each, N from
``--default-not-ready-toleration-seconds`` / ``--default-unreachable-toleration-seconds`` (300).
A toleration counts when its key is the taint's key or empty, and its effect is NoExecute or
empty — as Kubernetes checks, the operator and tolerationSeconds are not looked at. So a pod on a
node that dies is evicted after five minutes unless it says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kplane.api.resources import ResourceType

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
NO_EXECUTE = "NoExecute"

Obj = dict[str, Any]


@dataclass(frozen=True)
class AdmissionOptions:
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300


def tolerates_no_execute(tolerations: list[Obj], key: str) -> bool:
    """Whether some toleration covers the NoExecute taint ``key`` (by key and effect only)."""
    return any(t.get("key", "") in ("", key) and t.get("effect", "") in ("", NO_EXECUTE)
               for t in tolerations if isinstance(t, dict))


def default_toleration_seconds(pod: Obj, opts: AdmissionOptions) -> list[Obj]:
    """Add the default not-ready/unreachable tolerations to ``pod`` (a Pod as a JSON dict) unless
    it already tolerates them; returns what was added."""
    spec = pod.setdefault("spec", {})
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    added: list[Obj] = []
    for key, seconds in ((NOT_READY, opts.default_not_ready_toleration_seconds),
                         (UNREACHABLE, opts.default_unreachable_toleration_seconds)):
        if not tolerates_no_execute(tolerations, key):
            added.append({"key": key, "operator": "Exists", "effect": NO_EXECUTE, "tolerationSeconds": seconds})
    if added:
        spec["tolerations"] = [*tolerations, *added]
    return added


class Admission:
    """The mutating admission chain the registry runs on create."""

    def __init__(self, options: AdmissionOptions | None = None) -> None:
        self.options = options or AdmissionOptions()

    def admit_create(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind == "Pod" and rt.group == "":
            default_toleration_seconds(obj, self.options)
