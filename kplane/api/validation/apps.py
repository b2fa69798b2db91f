"""Validation for apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision
(and the autoscaling/v1 Scale subresource), after pkg/apis/apps/validation/validation.go.

Upstream messages are kept verbatim, quirks included (a ReplicaSet's empty selector is "invalid
for deployment"; a Deployment template's activeDeadlineSeconds is "not Supported" in
"ReplicaSet"). Two paths are more precise than upstream: an unknown `spec.strategy.type` and
`spec.updateStrategy.type` are reported at the `type` field.
"""

from __future__ import annotations

from typing import Any

from kplane.api import field as fe
from kplane.api import intstr
from kplane.api.validation import names
from kplane.api.validation.core import (
    template_labels,
    template_spec,
    validate_pod_template_spec,
    validate_pvc_spec,
    validate_replica_counts,
)
from kplane.api.validation.meta import (
    FIELD_IMMUTABLE,
    Errs,
    JSONDict,
    as_int,
    child,
    dict_items,
    get_dict,
    get_str,
    name_errors,
    nonnegative,
    opt_dict,
    opt_int,
    opt_str,
    selector_is_empty,
    selector_matches,
    semantic_equal,
    validate_immutable,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

STRATEGY_TYPES = ("Recreate", "RollingUpdate")
DAEMONSET_STRATEGY_TYPES = ("RollingUpdate", "OnDelete")
POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
PVC_RETENTION_POLICIES = ("Delete", "Retain")


# --------------------------------------------------------------------------------------------
# IntOrString percentages


def _int_or_percent(value: Any) -> int | str | None:
    if isinstance(value, str):
        return value
    return as_int(value)


def validate_positive_int_or_percent(value: Any, path: str, errs: Errs) -> None:
    """`ValidatePositiveIntOrPercent`: a non-negative integer or a `N%` string."""
    if value is None:
        return
    v = _int_or_percent(value)
    if isinstance(v, str):
        for msg in names.is_valid_percent(v):
            errs.append(fe.invalid(path, v, msg))
    elif isinstance(v, int):
        nonnegative(v, path, errs)
    else:
        errs.append(fe.invalid(path, value, "must be an integer or percentage (e.g '5%')"))


def _percent_value(value: Any) -> int | None:
    if isinstance(value, str) and intstr.is_valid_percent(value):
        return int(value[:-1])
    return None


def int_or_percent_value(value: Any) -> int:
    """The number in `5` or `"5%"` (Go's `getIntOrPercentValue`; unparsable strings count as 0)."""
    pct = _percent_value(value)
    if pct is not None:
        return pct
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return as_int(value) or 0


def not_more_than_100_percent(value: Any, path: str, errs: Errs) -> None:
    pct = _percent_value(value)
    if pct is not None and pct > 100:
        errs.append(fe.invalid(path, value, "must not be greater than 100%"))


def _shown(value: Any) -> Any:
    return 0 if value is None else value


# --------------------------------------------------------------------------------------------
# Selector + template, shared by the workload kinds


def _validate_selector(spec: JSONDict, errs: Errs, *, empty_word: str) -> Any:
    selector = spec.get("selector")
    if selector is None:
        errs.append(fe.required("spec.selector"))
        return None
    validate_label_selector(selector, "spec.selector", errs)
    if isinstance(selector, dict) and selector_is_empty(selector):
        errs.append(fe.invalid("spec.selector", selector, f"empty selector is invalid for {empty_word}"))
    return selector


def _validate_template(
    spec: JSONDict,
    selector: Any,
    errs: Errs,
    *,
    kind: str,
    deadline_forbidden: bool = True,
    extra_volumes: dict[str, JSONDict] | None = None,
) -> None:
    template = spec.get("template")
    labels = template_labels(template)
    empty = isinstance(selector, dict) and selector_is_empty(selector)
    matches = selector_matches(selector, labels)
    if matches is None and isinstance(selector, dict):
        errs.append(fe.invalid("spec.selector", selector, "invalid label selector"))
    elif template is not None and not empty and matches is False:
        errs.append(
            fe.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    validate_pod_template_spec(template, "spec.template", errs, extra_volumes=extra_volumes)
    tspec = template_spec(template)
    restart = tspec.get("restartPolicy")
    if isinstance(restart, str) and restart and restart != "Always":
        errs.append(fe.not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
    deadline = tspec.get("activeDeadlineSeconds")
    if deadline is not None:
        if deadline_forbidden:
            errs.append(
                fe.forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    f"activeDeadlineSeconds in {kind} is not Supported",
                )
            )
        else:
            errs.append(
                fe.invalid(
                    "spec.template.spec.activeDeadlineSeconds",
                    deadline,
                    f"activeDeadlineSeconds in {kind} is not Supported",
                )
            )


def _status_base(new: JSONDict, old: JSONDict) -> tuple[Errs, JSONDict, JSONDict]:
    errs = validate_object_meta_update(new, old)
    status = get_dict(new, "status", "", errs)
    old_status = get_dict(old, "status", "", [])
    return errs, status, old_status


def _collision_count_not_decremented(status: JSONDict, old_status: JSONDict, errs: Errs) -> None:
    new_c = as_int(status.get("collisionCount"))
    old_c = as_int(old_status.get("collisionCount"))
    if old_c is not None and (new_c is None or new_c < old_c):
        errs.append(fe.invalid("status.collisionCount", new_c or 0, "cannot be decremented"))


# --------------------------------------------------------------------------------------------
# ReplicaSet


def _replica_set_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    nonnegative(opt_int(spec, "replicas", "spec", errs), "spec.replicas", errs)
    nonnegative(opt_int(spec, "minReadySeconds", "spec", errs), "spec.minReadySeconds", errs)
    selector = _validate_selector(spec, errs, empty_word="deployment")
    _validate_template(spec, selector, errs, kind="ReplicaSet")


def validate_replica_set(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _replica_set_spec(obj, errs)
    return errs


def _selector_immutable(new: JSONDict, old: JSONDict, errs: Errs) -> None:
    new_spec = get_dict(new, "spec", "", [])
    old_spec = get_dict(old, "spec", "", [])
    validate_immutable(new_spec.get("selector"), old_spec.get("selector"), "spec.selector", errs)


def validate_replica_set_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _replica_set_spec(new, errs)
    _selector_immutable(new, old, errs)
    return errs


def validate_replica_set_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs, status, _ = _status_base(new, old)
    validate_replica_counts(
        status,
        errs,
        counts=(
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ),
        bounded=("fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
    )
    nonnegative(opt_int(status, "terminatingReplicas", "status", errs), "status.terminatingReplicas", errs)
    return errs


# --------------------------------------------------------------------------------------------
# Deployment


def _validate_deployment_strategy(spec: JSONDict, errs: Errs) -> None:
    strategy = get_dict(spec, "strategy", "spec", errs)
    stype = get_str(strategy, "type", "spec.strategy", errs)
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if rolling is not None:
            errs.append(
                fe.forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif stype == "RollingUpdate":
        ru = opt_dict(strategy, "rollingUpdate", "spec.strategy", errs)
        if rolling is None:
            errs.append(
                fe.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
            )
        elif ru is not None:
            path = "spec.strategy.rollingUpdate"
            max_unavailable, max_surge = ru.get("maxUnavailable"), ru.get("maxSurge")
            validate_positive_int_or_percent(max_unavailable, child(path, "maxUnavailable"), errs)
            validate_positive_int_or_percent(max_surge, child(path, "maxSurge"), errs)
            if int_or_percent_value(max_unavailable) == 0 and int_or_percent_value(max_surge) == 0:
                errs.append(
                    fe.invalid(
                        child(path, "maxUnavailable"),
                        _shown(max_unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    )
                )
            not_more_than_100_percent(max_unavailable, child(path, "maxUnavailable"), errs)
    else:
        errs.append(fe.not_supported("spec.strategy.type", stype, STRATEGY_TYPES))


def _deployment_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    nonnegative(opt_int(spec, "replicas", "spec", errs), "spec.replicas", errs)
    selector = _validate_selector(spec, errs, empty_word="deployment")
    _validate_template(spec, selector, errs, kind="ReplicaSet")
    _validate_deployment_strategy(spec, errs)
    min_ready = opt_int(spec, "minReadySeconds", "spec", errs)
    nonnegative(min_ready, "spec.minReadySeconds", errs)
    nonnegative(opt_int(spec, "revisionHistoryLimit", "spec", errs), "spec.revisionHistoryLimit", errs)
    deadline = opt_int(spec, "progressDeadlineSeconds", "spec", errs)
    if deadline is not None:
        nonnegative(deadline, "spec.progressDeadlineSeconds", errs)
        if deadline <= (min_ready or 0):
            errs.append(
                fe.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    rollback = opt_dict(spec, "rollbackTo", "spec", errs)
    if rollback is not None:
        nonnegative(opt_int(rollback, "revision", "spec.rollbackTo", errs), "spec.rollback.revision", errs)


def validate_deployment(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _deployment_spec(obj, errs)
    return errs


def validate_deployment_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _deployment_spec(new, errs)
    _selector_immutable(new, old, errs)
    return errs


def validate_deployment_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs, status, old_status = _status_base(new, old)
    validate_replica_counts(
        status,
        errs,
        counts=(
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ),
        bounded=("updatedReplicas", "readyReplicas", "availableReplicas"),
    )
    nonnegative(opt_int(status, "terminatingReplicas", "status", errs), "status.terminatingReplicas", errs)
    nonnegative(opt_int(status, "collisionCount", "status", errs), "status.collisionCount", errs)
    _collision_count_not_decremented(status, old_status, errs)
    return errs


# --------------------------------------------------------------------------------------------
# DaemonSet


def _validate_daemon_set_strategy(spec: JSONDict, errs: Errs) -> None:
    strategy = get_dict(spec, "updateStrategy", "spec", errs)
    path = "spec.updateStrategy"
    stype = get_str(strategy, "type", path, errs)
    if stype == "OnDelete":
        return
    if stype != "RollingUpdate":
        errs.append(fe.not_supported(child(path, "type"), stype, DAEMONSET_STRATEGY_TYPES))
        return
    ru = opt_dict(strategy, "rollingUpdate", path, errs)
    if ru is None:
        errs.append(fe.required(child(path, "rollingUpdate")))
        return
    rpath = child(path, "rollingUpdate")
    max_unavailable, max_surge = ru.get("maxUnavailable"), ru.get("maxSurge")
    validate_positive_int_or_percent(max_unavailable, child(rpath, "maxUnavailable"), errs)
    validate_positive_int_or_percent(max_surge, child(rpath, "maxSurge"), errs)
    not_more_than_100_percent(max_unavailable, child(rpath, "maxUnavailable"), errs)
    not_more_than_100_percent(max_surge, child(rpath, "maxSurge"), errs)
    has_unavailable = int_or_percent_value(max_unavailable) != 0
    has_surge = int_or_percent_value(max_surge) != 0
    if has_unavailable and has_surge:
        errs.append(
            fe.invalid(child(rpath, "maxSurge"), max_surge, "may not be set when maxUnavailable is non-zero")
        )
    elif not has_unavailable and not has_surge:
        errs.append(fe.required(child(rpath, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))


def _daemon_set_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    selector = _validate_selector(spec, errs, empty_word="daemonset")
    _validate_template(spec, selector, errs, kind="DaemonSet", deadline_forbidden=False)
    nonnegative(opt_int(spec, "minReadySeconds", "spec", errs), "spec.minReadySeconds", errs)
    nonnegative(opt_int(spec, "templateGeneration", "spec", errs), "spec.templateGeneration", errs)
    _validate_daemon_set_strategy(spec, errs)
    nonnegative(opt_int(spec, "revisionHistoryLimit", "spec", errs), "spec.revisionHistoryLimit", errs)


def validate_daemon_set(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _daemon_set_spec(obj, errs)
    return errs


def validate_daemon_set_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _daemon_set_spec(new, errs)
    _selector_immutable(new, old, errs)
    return errs


def validate_daemon_set_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs, status, old_status = _status_base(new, old)
    for name in (
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
        "observedGeneration",
        "updatedNumberScheduled",
        "numberAvailable",
        "numberUnavailable",
        "collisionCount",
    ):
        nonnegative(opt_int(status, name, "status", errs), child("status", name), errs)
    _collision_count_not_decremented(status, old_status, errs)
    return errs


# --------------------------------------------------------------------------------------------
# StatefulSet


def _claim_template_volumes(spec: JSONDict, errs: Errs) -> dict[str, JSONDict]:
    volumes: dict[str, JSONDict] = {}
    for _, cpath, claim in dict_items(spec, "volumeClaimTemplates", "spec", errs):
        meta = get_dict(claim, "metadata", cpath, errs)
        name = get_str(meta, "name", child(cpath, "metadata"), errs)
        npath = child(child(cpath, "metadata"), "name")
        if not name:
            errs.append(fe.required(npath, "name or generateName is required"))
        else:
            name_errors(name, npath, names.name_is_dns_subdomain, errs)
            volumes[name] = {"name": name, "persistentVolumeClaim": {"claimName": name}}
        validate_pvc_spec(get_dict(claim, "spec", cpath, errs), child(cpath, "spec"), errs)
    return volumes


def _stateful_set_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    policy = get_str(spec, "podManagementPolicy", "spec", errs)
    if not policy:
        errs.append(fe.required("spec.podManagementPolicy"))
    elif policy not in POD_MANAGEMENT_POLICIES:
        errs.append(fe.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = get_dict(spec, "updateStrategy", "spec", errs)
    spath = "spec.updateStrategy"
    stype = get_str(strategy, "type", spath, errs)
    rolling = opt_dict(strategy, "rollingUpdate", spath, errs)
    if not stype:
        errs.append(fe.required(spath))
    elif stype == "OnDelete":
        if rolling is not None:
            errs.append(
                fe.invalid(
                    child(spath, "rollingUpdate"), rolling, "only allowed for updateStrategy 'RollingUpdate'"
                )
            )
    elif stype == "RollingUpdate":
        if rolling is not None:
            rpath = child(spath, "rollingUpdate")
            nonnegative(opt_int(rolling, "partition", rpath, errs), child(rpath, "partition"), errs)
            max_unavailable = rolling.get("maxUnavailable")
            if max_unavailable is not None:
                mpath = child(rpath, "maxUnavailable")
                validate_positive_int_or_percent(max_unavailable, mpath, errs)
                if int_or_percent_value(max_unavailable) == 0:
                    errs.append(fe.invalid(mpath, max_unavailable, "cannot be 0"))
                not_more_than_100_percent(max_unavailable, mpath, errs)
    else:
        errs.append(fe.invalid(child(spath, "type"), stype, "must be 'RollingUpdate' or 'OnDelete'"))
    retention = opt_dict(spec, "persistentVolumeClaimRetentionPolicy", "spec", errs)
    if retention is not None:
        rpath = "spec.persistentVolumeClaimRetentionPolicy"
        for f in ("whenDeleted", "whenScaled"):
            value = get_str(retention, f, rpath, errs)
            if value not in PVC_RETENTION_POLICIES:
                errs.append(fe.not_supported(child(rpath, f), value, PVC_RETENTION_POLICIES))
    nonnegative(opt_int(spec, "replicas", "spec", errs), "spec.replicas", errs)
    nonnegative(opt_int(spec, "minReadySeconds", "spec", errs), "spec.minReadySeconds", errs)
    nonnegative(opt_int(spec, "revisionHistoryLimit", "spec", errs), "spec.revisionHistoryLimit", errs)
    ordinals = opt_dict(spec, "ordinals", "spec", errs)
    if ordinals is not None:
        nonnegative(opt_int(ordinals, "start", "spec.ordinals", errs), "spec.ordinals.start", errs)
    service_name = opt_str(spec, "serviceName", "spec", errs)
    if service_name:
        for msg in names.is_dns1123_label(service_name):
            errs.append(fe.invalid("spec.serviceName", service_name, msg))
    selector = _validate_selector(spec, errs, empty_word="statefulset")
    claims = _claim_template_volumes(spec, errs)
    _validate_template(spec, selector, errs, kind="StatefulSet", extra_volumes=claims)


def validate_stateful_set(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _stateful_set_spec(obj, errs)
    return errs


STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def validate_stateful_set_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _stateful_set_spec(new, errs)
    new_spec = {k: v for k, v in get_dict(new, "spec", "", []).items() if k not in STATEFULSET_MUTABLE}
    old_spec = {k: v for k, v in get_dict(old, "spec", "", []).items() if k not in STATEFULSET_MUTABLE}
    if not semantic_equal(new_spec, old_spec):
        errs.append(
            fe.forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )
        )
    return errs


def validate_stateful_set_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs, status, old_status = _status_base(new, old)
    validate_replica_counts(
        status,
        errs,
        counts=("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
        bounded=("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
    )
    for name in ("observedGeneration", "collisionCount"):
        nonnegative(opt_int(status, name, "status", errs), child("status", name), errs)
    _collision_count_not_decremented(status, old_status, errs)
    return errs


# --------------------------------------------------------------------------------------------
# ControllerRevision and Scale


def validate_controller_revision(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    if obj.get("data") is None:
        errs.append(fe.required("data", "data is mandatory"))
    nonnegative(opt_int(obj, "revision", "", errs), "revision", errs)
    return errs


def validate_controller_revision_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    errs.extend(e for e in validate_controller_revision(new) if not e.field.startswith("metadata."))
    if not semantic_equal(new.get("data"), old.get("data")):
        errs.append(fe.invalid("data", new.get("data"), FIELD_IMMUTABLE))
    return errs


def validate_scale(obj: JSONDict) -> Errs:
    errs: Errs = []
    spec = get_dict(obj, "spec", "", errs)
    nonnegative(opt_int(spec, "replicas", "spec", errs), "spec.replicas", errs)
    return errs
