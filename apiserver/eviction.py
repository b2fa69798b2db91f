"""The ``pods/eviction`` subresource: create an Eviction (policy/v1) for a pod and the pod is
deleted with the eviction's ``deleteOptions`` (grace period, UID/resourceVersion preconditions,
dry run), as Kubernetes' EvictionREST does.

A pod that is not there is NotFound; a pod already terminating is deleted again (which at most
shortens its grace period) and the eviction succeeds. PodDisruptionBudgets are not consulted:
kplane has no PodDisruptionBudget kind yet, so every eviction is allowed (Kubernetes would answer
429 TooManyRequests while a budget forbids it).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.any_pb2 import Any as AnyPb

from kplane.api import codec
from kplane.api import errors as api
from kplane.api.pb import api_pb2, policy_pb2
from kplane.api.resources import for_group_resource

POLICY_API_VERSIONS = ("policy/v1", "policy/v1beta1")


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
        import json

        try:
            data = json.loads(body.json)
        except json.JSONDecodeError as exc:
            raise api.BadRequest(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise api.BadRequest("the request body must be a JSON object")
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
    """Delete the pod ``namespace/name`` as ``eviction`` asks; returns the registry's delete
    Result (the pod, and whether it is gone already)."""
    meta = eviction.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise api.BadRequest("name in URL does not match name in Eviction object")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise api.BadRequest("namespace in URL does not match namespace in Eviction object")
    options = dict(eviction.get("deleteOptions") or {})
    dry_run = "All" in (options.get("dryRun") or [])
    return await registry.delete(for_group_resource("", "pods"), namespace, name, options, dry_run=dry_run)
