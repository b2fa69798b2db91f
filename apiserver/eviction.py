"""The ``pods/eviction`` subresource: create an Eviction (policy/v1) for a pod and the pod is
deleted with the eviction's ``deleteOptions`` (grace period, UID/resourceVersion preconditions,
dry run) — if its PodDisruptionBudget allows it — as Kubernetes' EvictionREST does.

- A missing pod is NotFound. A pod that is Pending, Succeeded, Failed or already terminating is
  deleted without consulting any budget (``canIgnorePDB``).
- The budgets are the PodDisruptionBudgets of the pod's namespace whose selector matches the
  pod. None: the pod is deleted. More than one: a 500 InternalError ("This pod has more than one
  PodDisruptionBudget, which the eviction subresource does not support.").
- A pod that is not Ready is deleted without using the budget when the budget's
  ``unhealthyPodEvictionPolicy`` is AlwaysAllow, or (IfHealthyBudget, the default) while
  ``currentHealthy >= desiredHealthy > 0``; the delete then carries the pod's resourceVersion as
  a precondition, so a pod that became Ready meanwhile is not deleted on that basis.
- Otherwise the budget must allow it: a status older than the spec (``observedGeneration``) or
  ``disruptionsAllowed == 0`` is 429 TooManyRequests (gRPC RESOURCE_EXHAUSTED) "Cannot evict pod
  as it would violate the pod's disruption budget." with a ``DisruptionBudget`` cause; else the
  status is written with ``disruptionsAllowed - 1`` and the pod in ``disruptedPods`` by a
  compare-and-swap on the budget's resourceVersion (a concurrent eviction that won the race makes
  this one re-read the budget and decide again, up to 20 times), and then the pod is deleted. So
  concurrent evictions never take more pods than the budget allows. A dry run decides the same
  way and writes nothing.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from google.protobuf.any_pb2 import Any as AnyPb

from kplane.api import codec
from kplane.api import errors as api
from kplane.api.labels import selector_from_label_selector
from kplane.api.pb import api_pb2, core_pb2, policy_pb2
from kplane.api.resources import for_group_resource, object_to_dict

POLICY_API_VERSIONS = ("policy/v1", "policy/v1beta1")
PODS = for_group_resource("", "pods")
PDBS = for_group_resource("policy", "poddisruptionbudgets")
EVICTION_RETRIES = 20  # Kubernetes' EvictionsRetry steps: CAS attempts on the budget
MAX_DISRUPTED_PODS = 2000  # Kubernetes' MaxDisruptedPodSize
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
VIOLATES_BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."
MORE_THAN_ONE_PDB = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


def decode_eviction(body: api_pb2.Body) -> dict[str, Any]:
    """The Eviction in a request body (a packed policy Eviction or its JSON), as a JSON dict;
    unknown fields are rejected with their path."""
    which = body.WhichOneof("encoding")
    if which == "object":
        obj: AnyPb = body.object
        msg = policy_pb2.Eviction()
        if not obj.Is(msg.DESCRIPTOR) or not obj.Unpack(msg):
            raise api.BadRequest(f"the body must be a policy/v1 Eviction, got {obj.type_url or 'nothing'}")
        return codec.to_dict(msg)
    if which == "json":
        data = codec.json_object(body.json)
        api_version, kind = data.get("apiVersion"), data.get("kind")
        if api_version not in (None, "", *POLICY_API_VERSIONS):
            raise api.BadRequest(f'the body must be a policy/v1 Eviction, got apiVersion "{api_version}"')
        if kind not in (None, "", "Eviction"):
            raise api.BadRequest(f'the body must be a policy/v1 Eviction, got kind "{kind}"')
        try:
            msg = codec.from_dict(data, policy_pb2.Eviction, ignore=frozenset({"apiVersion", "kind"}))
        except codec.DecodeError as exc:
            name = (data.get("metadata") or {}).get("name", "") if isinstance(data.get("metadata"), dict) else ""
            raise api.Invalid.for_object("Eviction", str(name), exc.errors, "policy") from None
        return codec.to_dict(msg)
    raise api.BadRequest("the request has no body")


async def evict(registry: Any, namespace: str, name: str, eviction: dict[str, Any]) -> Any:
    """Delete the pod ``namespace/name`` as ``eviction`` asks, if its disruption budget allows;
    returns the registry's delete Result (the pod, and whether it is gone already)."""
    meta = eviction.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise api.BadRequest("name in URL does not match name in Eviction object")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise api.BadRequest("namespace in URL does not match namespace in Eviction object")
    options = dict(eviction.get("deleteOptions") or {})
    dry_run = "All" in (options.get("dryRun") or [])
    pod = await registry.get(PODS, namespace, name)
    assert isinstance(pod, core_pb2.Pod)
    if not _can_ignore_pdb(pod):
        pdbs = await _budgets_for(registry, pod)
        if len(pdbs) > 1:
            raise api.InternalError(f"Internal error occurred: {MORE_THAN_ONE_PDB}")
        if pdbs:
            pdb = pdbs[0]
            if not _is_ready(pod) and _unhealthy_may_go(pdb):
                # Not counted as healthy, so the budget is not used; but only this very pod
                # version may go (a pod turning Ready meanwhile is guarded again).
                pre = dict(options.get("preconditions") or {})
                pre.setdefault("resourceVersion", pod.metadata.resourceVersion)
                options["preconditions"] = pre
            else:
                await _check_and_decrement(registry, pdb, name, dry_run=dry_run)
    return await registry.delete(PODS, namespace, name, options, dry_run=dry_run)


def _can_ignore_pdb(pod: core_pb2.Pod) -> bool:
    """``canIgnorePDB``: a pod not running (yet or any more), or already terminating."""
    return pod.status.phase in ("Succeeded", "Failed", "Pending") or pod.metadata.HasField("deletionTimestamp")


def _is_ready(pod: core_pb2.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def _unhealthy_may_go(pdb: dict[str, Any]) -> bool:
    policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
    if policy == "AlwaysAllow":
        return True
    status = pdb.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


async def _list_budgets(registry: Any, namespace: str) -> list[dict[str, Any]]:
    """The namespace's budgets, read from etcd (their resourceVersions are what the CAS compares)."""
    kvs, _, _ = await registry.storage.list(PDBS.prefix(namespace))
    out = []
    for kv in kvs:
        obj = registry.decode_stored(PDBS, kv.key, kv.value, kv.mod_revision)
        if obj is not None:
            out.append(obj)
    return out


def _pdb_selects(pdb: dict[str, Any], labels: dict[str, str]) -> bool:
    """policy/v1: an absent selector selects nothing, ``{}`` every pod of the namespace."""
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    try:
        return bool(selector_from_label_selector(selector).matches(labels))
    except ValueError:
        return False


async def _budgets_for(registry: Any, pod: core_pb2.Pod) -> list[dict[str, Any]]:
    labels = dict(pod.metadata.labels)
    return [p for p in await _list_budgets(registry, pod.metadata.namespace) if _pdb_selects(p, labels)]


def _too_many_requests(cause: str) -> api.TooManyRequests:
    return api.TooManyRequests(VIOLATES_BUDGET, raw_causes=[(DISRUPTION_BUDGET_CAUSE, cause, "")])


async def _check_and_decrement(registry: Any, pdb: dict[str, Any], pod_name: str, *, dry_run: bool) -> None:
    """``checkAndDecrement`` under ``RetryOnConflict``: take one disruption from the budget by a
    compare-and-swap of its status; a lost race re-reads the budget and decides again."""
    namespace, name = pdb["metadata"]["namespace"], pdb["metadata"]["name"]
    for attempt in range(EVICTION_RETRIES):
        if attempt:
            await asyncio.sleep(random.uniform(0.005, 0.05))
            try:
                fresh = await registry.get(PDBS, namespace, name)
            except api.NotFound:
                return  # the budget is gone: nothing guards the pod any more
            pdb = object_to_dict(PDBS, fresh)
        status = dict(pdb.get("status") or {})
        generation = int(pdb["metadata"].get("generation") or 0)
        if int(status.get("observedGeneration") or 0) < generation:
            raise _too_many_requests(f"The disruption budget {name} is still being processed by the server.")
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise api.Forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: '
                                "pdb disruptions allowed is negative", kind="poddisruptionbudgets", name=name)
        disrupted = dict(status.get("disruptedPods") or {})
        if len(disrupted) > MAX_DISRUPTED_PODS:
            raise api.Forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods map too big - '
                                "too many evictions not confirmed by PDB controller",
                                kind="poddisruptionbudgets", name=name)
        if allowed == 0:
            raise _too_many_requests(
                f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
                f"and has {int(status.get('currentHealthy') or 0)} currently")
        if dry_run:
            return
        now = codec.format_time(codec.now_timestamp())
        status["disruptionsAllowed"] = allowed - 1
        disrupted[pod_name] = now
        status["disruptedPods"] = disrupted
        if allowed - 1 == 0:
            status["conditions"] = _insufficient(list(status.get("conditions") or []), status, now)
        new = {**pdb, "status": status}
        try:
            await registry.update(PDBS, namespace, name, new, subresource="status")
            return
        except api.Conflict:
            continue  # another eviction or the controller wrote first
    raise api.Conflict.for_object(PDBS.group_resource, name, "too many concurrent evictions; try again")


def _insufficient(conditions: list[dict[str, Any]], status: dict[str, Any], now: str) -> list[dict[str, Any]]:
    """``UpdateDisruptionAllowedCondition`` for a budget just used up: False/InsufficientPods."""
    out = [dict(c) for c in conditions if isinstance(c, dict)]
    for cond in out:
        if cond.get("type") == "DisruptionAllowed":
            break
    else:
        cond = {"type": "DisruptionAllowed"}
        out.append(cond)
    if cond.get("status") != "False" or not cond.get("lastTransitionTime"):
        cond["lastTransitionTime"] = now
    cond.update(status="False", reason="InsufficientPods", observedGeneration=int(status.get("observedGeneration") or 0))
    cond["message"] = ""
    return out
