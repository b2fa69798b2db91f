"""Per-kind validation with Kubernetes semantics, over Kubernetes JSON dicts.

The apiserver calls, after `kplane.api.defaults.apply_defaults`:

* `validate_create(kind, obj)` on create;
* `validate_update(kind, new, old)` on update: the create rules for `new` (except the name
  format, which cannot change) plus immutability: metadata name/namespace/uid/creationTimestamp,
  workload selectors, a Job's selector and template, Pod spec (only images,
  activeDeadlineSeconds, added tolerations ... may change), Service clusterIP,
  `immutable` ConfigMaps and Secrets, ...;
* `validate_status_update(kind, new, old)` on writes to the `status` subresource.

Each returns *every* error found (never only the first), as `kplane.api.field.FieldError`s with
Kubernetes JSON paths and messages. Input of the wrong JSON type is reported, never raised.
Kinds without specific rules get metadata validation only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kplane.api import field as fe
from kplane.api.field import FieldError
from kplane.api.validation import apps, batch, coordination, core, policy
from kplane.api.validation.meta import (
    CLUSTER_SCOPED_KINDS,
    validate_generic,
    validate_object_meta_update,
)

Validator = Callable[[dict[str, Any]], list[FieldError]]
UpdateValidator = Callable[[dict[str, Any], dict[str, Any]], list[FieldError]]

_CREATE: dict[str, Validator] = {
    "Pod": core.validate_pod,
    "Node": core.validate_node,
    "Namespace": core.validate_namespace,
    "Service": core.validate_service,
    "Endpoints": core.validate_endpoints,
    "ConfigMap": core.validate_config_map,
    "Secret": core.validate_secret,
    "Event": core.validate_event,
    "Binding": core.validate_binding,
    "ReplicationController": core.validate_replication_controller,
    "PersistentVolumeClaim": core.validate_persistent_volume_claim,
    "ReplicaSet": apps.validate_replica_set,
    "Deployment": apps.validate_deployment,
    "DaemonSet": apps.validate_daemon_set,
    "StatefulSet": apps.validate_stateful_set,
    "ControllerRevision": apps.validate_controller_revision,
    "Scale": apps.validate_scale,
    "Job": batch.validate_job,
    "CronJob": batch.validate_cron_job,
    "Lease": coordination.validate_lease,
    "PodDisruptionBudget": policy.validate_pod_disruption_budget,
}

_UPDATE: dict[str, UpdateValidator] = {
    "Pod": core.validate_pod_update,
    "Node": core.validate_node_update,
    "Namespace": core.validate_namespace_update,
    "Service": core.validate_service_update,
    "Endpoints": core.validate_endpoints_update,
    "ConfigMap": core.validate_config_map_update,
    "Secret": core.validate_secret_update,
    "Event": core.validate_event_update,
    "ReplicationController": core.validate_replication_controller_update,
    "PersistentVolumeClaim": core.validate_persistent_volume_claim_update,
    "ReplicaSet": apps.validate_replica_set_update,
    "Deployment": apps.validate_deployment_update,
    "DaemonSet": apps.validate_daemon_set_update,
    "StatefulSet": apps.validate_stateful_set_update,
    "ControllerRevision": apps.validate_controller_revision_update,
    "Job": batch.validate_job_update,
    "CronJob": batch.validate_cron_job_update,
    "Lease": coordination.validate_lease_update,
    "PodDisruptionBudget": policy.validate_pod_disruption_budget_update,
    "Binding": lambda new, _old: core.validate_binding(new),
    "Scale": lambda new, _old: apps.validate_scale(new),
}

_STATUS: dict[str, UpdateValidator] = {
    "Pod": core.validate_pod_status_update,
    "Node": core.validate_node_update,
    "Namespace": core.validate_namespace_status_update,
    "Service": core.validate_service_status_update,
    "ReplicationController": core.validate_replication_controller_status_update,
    "ReplicaSet": apps.validate_replica_set_status_update,
    "Deployment": apps.validate_deployment_status_update,
    "DaemonSet": apps.validate_daemon_set_status_update,
    "StatefulSet": apps.validate_stateful_set_status_update,
    "Job": batch.validate_job_status_update,
    "CronJob": batch.validate_cron_job_status_update,
    "PodDisruptionBudget": policy.validate_pod_disruption_budget_status_update,
}


def _finish(errs: list[FieldError]) -> list[FieldError]:
    """Drop exact repeats, and follow-on errors at a path whose value had the wrong JSON type
    (a `spec.replicas: "three"` is reported once as a type error, not also as "Required")."""
    bad_type = {e.field for e in errs if e.reason == fe.TYPE_INVALID}
    out: list[FieldError] = []
    seen: set[tuple[str, str, str]] = set()
    for e in errs:
        if e.reason != fe.TYPE_INVALID and e.field in bad_type:
            continue
        ident = (e.reason, e.field, e.message())
        if ident in seen:
            continue
        seen.add(ident)
        out.append(e)
    return out


def _not_an_object(value: Any) -> list[FieldError]:
    return [fe.type_invalid("", value, "expected an object")]


def _scoped(kind: str) -> bool | None:
    return False if kind in CLUSTER_SCOPED_KINDS else None


def validate_create(kind: str, obj: dict[str, Any]) -> list[FieldError]:
    """Every problem with a new object of `kind` (an empty list when it is valid)."""
    if not isinstance(obj, dict):
        return _not_an_object(obj)
    fn = _CREATE.get(kind)
    if fn is None:
        return _finish(validate_generic(obj, namespaced=_scoped(kind)))
    return _finish(fn(obj))


def validate_update(kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Every problem with replacing `old` by `new` (create rules for `new` plus immutability)."""
    if not isinstance(new, dict):
        return _not_an_object(new)
    if not isinstance(old, dict):
        old = {}
    fn = _UPDATE.get(kind)
    if fn is None:
        return _finish(validate_object_meta_update(new, old))
    return _finish(fn(new, old))


def validate_status_update(kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Every problem with a write to the status subresource (metadata rules plus status fields)."""
    if not isinstance(new, dict):
        return _not_an_object(new)
    if not isinstance(old, dict):
        old = {}
    fn = _STATUS.get(kind)
    if fn is None:
        return _finish(validate_object_meta_update(new, old))
    return _finish(fn(new, old))


__all__ = ["FieldError", "validate_create", "validate_status_update", "validate_update"]
