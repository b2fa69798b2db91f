"""Validation for coordination.k8s.io/v1 Lease (pkg/apis/coordination/validation)."""

from __future__ import annotations

from kplane.api import field as fe
from kplane.api.validation import names
from kplane.api.validation.meta import (
    IS_NEGATIVE,
    Errs,
    JSONDict,
    get_dict,
    opt_int,
    opt_str,
    validate_object_meta,
    validate_object_meta_update,
)

COORDINATED_LEASE_STRATEGIES = ("OldestEmulationVersion",)


def _lease_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    duration = opt_int(spec, "leaseDurationSeconds", "spec", errs)
    if duration is not None and duration <= 0:
        errs.append(fe.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = opt_int(spec, "leaseTransitions", "spec", errs)
    if transitions is not None and transitions < 0:
        errs.append(fe.invalid("spec.leaseTransitions", transitions, IS_NEGATIVE))
    opt_str(spec, "holderIdentity", "spec", errs)
    strategy = opt_str(spec, "strategy", "spec", errs)
    if strategy is not None and strategy not in COORDINATED_LEASE_STRATEGIES:
        errs.append(fe.not_supported("spec.strategy", strategy, COORDINATED_LEASE_STRATEGIES))
    preferred = opt_str(spec, "preferredHolder", "spec", errs)
    if preferred and not strategy:
        errs.append(fe.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))


def validate_lease(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _lease_spec(obj, errs)
    return errs


def validate_lease_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _lease_spec(new, errs)
    return errs
