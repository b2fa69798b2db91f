"""Validation for policy/v1 PodDisruptionBudget (pkg/apis/policy/validation).

* spec: ``minAvailable`` and ``maxUnavailable`` are exclusive; each is a non-negative integer or
  a percentage of at most 100%; ``selector`` is a valid label selector (absent selects nothing,
  ``{}`` every pod of the namespace); ``unhealthyPodEvictionPolicy`` is IfHealthyBudget or
  AlwaysAllow. Spec updates are allowed (policy/v1 made the spec mutable).
* status: the four counters are non-negative and the conditions are valid ``metav1.Condition``s
  (``ValidateConditions``).
"""

from __future__ import annotations

import re

from kplane.api import field as fe
from kplane.api.validation import names
from kplane.api.validation.apps import not_more_than_100_percent, validate_positive_int_or_percent
from kplane.api.validation.meta import (
    Errs,
    JSONDict,
    as_int,
    child,
    dict_items,
    get_dict,
    get_str,
    nonnegative,
    opt_int,
    opt_str,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

IF_HEALTHY_BUDGET = "IfHealthyBudget"
ALWAYS_ALLOW = "AlwaysAllow"
UNHEALTHY_POD_EVICTION_POLICIES = (ALWAYS_ALLOW, IF_HEALTHY_BUDGET)

CONDITION_STATUSES = ("False", "True", "Unknown")
_REASON_FMT = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?"
_REASON_RE = re.compile(f"^{_REASON_FMT}$")
_REASON_ERR = (
    "a condition reason must start with alphabetic character, optionally followed by a string of "
    "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'"
)
MAX_REASON_LEN = 1024
MAX_MESSAGE_LEN = 32 * 1024


def _pdb_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(fe.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for name, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is None:
            continue
        path = child("spec", name)
        validate_positive_int_or_percent(value, path, errs)
        not_more_than_100_percent(value, path, errs)
    if spec.get("selector") is not None:
        validate_label_selector(spec.get("selector"), "spec.selector", errs)
    policy = opt_str(spec, "unhealthyPodEvictionPolicy", "spec", errs)
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errs.append(fe.not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES))


def validate_pod_disruption_budget(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _pdb_spec(obj, errs)
    return errs


def validate_pod_disruption_budget_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _pdb_spec(new, errs)
    return errs


def validate_conditions(status: JSONDict, path: str, errs: Errs) -> None:
    """``metav1validation.ValidateConditions``: each condition valid, no type twice."""
    seen: set[str] = set()
    for _, cpath, cond in dict_items(status, "conditions", path, errs):
        ctype = get_str(cond, "type", cpath, errs)
        tpath = child(cpath, "type")
        for msg in names.is_qualified_name(ctype):
            errs.append(fe.invalid(tpath, ctype, msg))
        if ctype in seen:
            errs.append(fe.duplicate(tpath, ctype))
        seen.add(ctype)
        cstatus = get_str(cond, "status", cpath, errs)
        if cstatus not in CONDITION_STATUSES:
            errs.append(fe.not_supported(child(cpath, "status"), cstatus, CONDITION_STATUSES))
        generation = opt_int(cond, "observedGeneration", cpath, errs)
        if generation is not None and generation < 0:
            errs.append(fe.invalid(child(cpath, "observedGeneration"), generation,
                                   "must be greater than or equal to zero"))
        if not cond.get("lastTransitionTime"):
            errs.append(fe.required(child(cpath, "lastTransitionTime"), "must be set"))
        reason = get_str(cond, "reason", cpath, errs)
        rpath = child(cpath, "reason")
        if not reason:
            errs.append(fe.required(rpath, "must be set"))
        else:
            if not _REASON_RE.match(reason):
                errs.append(fe.invalid(rpath, reason, names.regex_error(
                    _REASON_ERR, _REASON_FMT, "my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB")))
            if len(reason) > MAX_REASON_LEN:
                errs.append(fe.too_long(rpath, reason, MAX_REASON_LEN))
        message = get_str(cond, "message", cpath, errs)
        if len(message) > MAX_MESSAGE_LEN:
            errs.append(fe.too_long(child(cpath, "message"), message, MAX_MESSAGE_LEN))


def validate_pod_disruption_budget_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_dict(new, "status", "", errs)
    validate_conditions(status, "status", errs)
    for name in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        nonnegative(opt_int(status, name, "status", errs), child("status", name), errs)
    generation = as_int(status.get("observedGeneration"))
    nonnegative(generation, "status.observedGeneration", errs)
    return errs
