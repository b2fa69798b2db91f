"""Validation for batch/v1 Job and CronJob, after pkg/apis/batch/validation/validation.go.

A Job is validated *after* `kplane.api.defaults.job_prepare_for_create` has generated its
selector and template labels (as Kubernetes' job strategy does before validation), so a Job
without `manualSelector: true` must carry the controller-uid / job-name labels for its own
`metadata.uid`. Cron schedules are parsed by `kplane.api.cron` (robfig/cron `ParseStandard`, as
Kubernetes does — the CronJob controller runs the same parser): exactly five fields or a
descriptor (`@hourly`, `@every 1h30m`, ...), no `L`/`W`/`#`/`H` extensions; a `TZ=`/`CRON_TZ=`
prefix is refused in favour of `spec.timeZone`.
"""

from __future__ import annotations

import re
import zoneinfo

from kplane.api import field as fe
from kplane.api.cron import CronParseError, parse_standard
from kplane.api.validation import names
from kplane.api.validation.core import template_labels, template_spec, validate_pod_template_spec
from kplane.api.validation.meta import (
    Errs,
    JSONDict,
    as_dict,
    as_int,
    child,
    dict_items,
    get_dict,
    get_list,
    get_str,
    get_str_list,
    nonnegative,
    opt_bool,
    opt_dict,
    opt_int,
    opt_str,
    quiet,
    selector_matches,
    validate_annotations,
    validate_immutable,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_MODES = ("NonIndexed", "Indexed")
POD_REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
POD_FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
MAX_PARALLELISM_FOR_INDEXED_JOB = 100_000
MAX_CRONJOB_NAME_LENGTH = names.DNS1035_LABEL_MAX_LENGTH - 11

_TZ_CHARS_RE = re.compile(r"^[A-Za-z\.\-_0-9+]{1,14}$")


# --------------------------------------------------------------------------------------------
# Cron schedules


def cron_schedule_errors(schedule: str) -> list[str]:
    """Problems with a CronJob schedule, in robfig/cron's words (Kubernetes validates with
    ``cron.ParseStandard`` and reports its error): the same parser the CronJob controller runs."""
    try:
        parse_standard(schedule)
    except CronParseError as exc:
        return [str(exc)]
    return []


def _validate_schedule(schedule: str, allow_tz: bool, time_zone: str | None, path: str, errs: Errs) -> None:
    for msg in cron_schedule_errors(schedule):
        errs.append(fe.invalid(path, schedule, msg))
    if "TZ" in schedule:
        if allow_tz and time_zone is not None:
            errs.append(
                fe.invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
            )
        elif not allow_tz:
            errs.append(
                fe.invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
            )


def _validate_time_zone(time_zone: str | None, path: str, errs: Errs) -> None:
    if time_zone is None:
        return
    if not time_zone:
        errs.append(fe.invalid(path, time_zone, "timeZone must be nil or non-empty string"))
        return
    for part in time_zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_CHARS_RE.match(part):
            errs.append(fe.invalid(path, time_zone, f"unknown time zone {time_zone}"))
            return
    if time_zone.lower() == "local":
        errs.append(
            fe.invalid(
                path,
                time_zone,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        )
        return
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        errs.append(fe.invalid(path, time_zone, f"unknown time zone {time_zone}"))


# --------------------------------------------------------------------------------------------
# Job


def _validate_pod_failure_policy(policy: JSONDict, path: str, restart_policy: str, errs: Errs) -> None:
    rules = dict_items(policy, "rules", path, errs)
    if len(rules) > 20:
        errs.append(
            fe.FieldError(fe.TOO_MANY, child(path, "rules"), "must have at most 20 items", len(rules))
        )
    for _, rpath, rule in rules:
        action = get_str(rule, "action", rpath, errs)
        if action not in POD_FAILURE_ACTIONS:
            errs.append(fe.not_supported(child(rpath, "action"), action, POD_FAILURE_ACTIONS))
        exit_codes = opt_dict(rule, "onExitCodes", rpath, errs)
        conditions = get_list(rule, "onPodConditions", rpath, errs)
        if exit_codes is not None and conditions:
            errs.append(
                fe.invalid(rpath, "", "specifying both OnExitCodes and OnPodConditions is not supported")
            )
        elif exit_codes is None and not conditions:
            errs.append(
                fe.invalid(rpath, "", "specifying one of OnExitCodes and OnPodConditions is required")
            )
        if exit_codes is not None:
            epath = child(rpath, "onExitCodes")
            op = get_str(exit_codes, "operator", epath, errs)
            if op not in ("In", "NotIn"):
                errs.append(fe.not_supported(child(epath, "operator"), op, ("In", "NotIn")))
            values = get_list(exit_codes, "values", epath, errs)
            if not values:
                errs.append(fe.invalid(child(epath, "values"), values, "at least one value is required"))
            seen: set[int] = set()
            previous: int | None = None
            for i, raw in enumerate(values):
                v = as_int(raw)
                vpath = f"{child(epath, 'values')}[{i}]"
                if v is None:
                    errs.append(fe.type_invalid(vpath, raw, "expected an integer"))
                    continue
                if op == "In" and v == 0:
                    errs.append(fe.invalid(vpath, v, "must not be 0 for the In operator"))
                if v in seen:
                    errs.append(fe.duplicate(vpath, v))
                seen.add(v)
                if previous is not None and previous > v:
                    errs.append(fe.invalid(vpath, v, "must be ordered"))
                previous = v
        for _, cpath, cond in dict_items(rule, "onPodConditions", rpath, errs):
            status = get_str(cond, "status", cpath, errs)
            if status not in ("True", "False", "Unknown"):
                errs.append(fe.not_supported(child(cpath, "status"), status, ("False", "True", "Unknown")))
            for msg in names.is_qualified_name(get_str(cond, "type", cpath, errs)):
                errs.append(fe.invalid(child(cpath, "type"), cond.get("type"), msg))
    if restart_policy and restart_policy != "Never":
        errs.append(
            fe.invalid(
                "spec.template.spec.restartPolicy",
                restart_policy,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )


def _validate_job_spec_body(spec: JSONDict, path: str, errs: Errs) -> None:
    """`validateJobSpec` (shared by Job and CronJob's jobTemplate)."""
    parallelism = opt_int(spec, "parallelism", path, errs)
    completions = opt_int(spec, "completions", path, errs)
    nonnegative(parallelism, child(path, "parallelism"), errs)
    nonnegative(completions, child(path, "completions"), errs)
    for name in ("activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        nonnegative(opt_int(spec, name, path, errs), child(path, name), errs)
    mode = opt_str(spec, "completionMode", path, errs)
    if mode is not None:
        if mode not in COMPLETION_MODES:
            errs.append(fe.not_supported(child(path, "completionMode"), mode, COMPLETION_MODES))
        if mode == "Indexed":
            if completions is None:
                errs.append(fe.required(child(path, "completions"), "when completion mode is Indexed"))
            if parallelism is not None and parallelism > MAX_PARALLELISM_FOR_INDEXED_JOB:
                errs.append(
                    fe.invalid(
                        child(path, "parallelism"),
                        parallelism,
                        f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed",
                    )
                )
    per_index = opt_int(spec, "backoffLimitPerIndex", path, errs)
    if per_index is not None:
        nonnegative(per_index, child(path, "backoffLimitPerIndex"), errs)
        if mode != "Indexed":
            errs.append(
                fe.invalid(child(path, "backoffLimitPerIndex"), per_index, "requires indexed completion mode")
            )
    max_failed = opt_int(spec, "maxFailedIndexes", path, errs)
    if max_failed is not None:
        if per_index is None:
            errs.append(
                fe.required(child(path, "backoffLimitPerIndex"), "when maxFailedIndexes is specified")
            )
        nonnegative(max_failed, child(path, "maxFailedIndexes"), errs)
        if completions is not None and max_failed > completions:
            errs.append(
                fe.invalid(
                    child(path, "maxFailedIndexes"), max_failed, "must be less than or equal to completions"
                )
            )
    restart = get_str(template_spec(spec.get("template")), "restartPolicy", child(path, "template.spec"), [])
    failure_policy = opt_dict(spec, "podFailurePolicy", path, errs)
    replacement = opt_str(spec, "podReplacementPolicy", path, errs)
    if replacement is not None:
        if failure_policy is not None:
            if replacement != "Failed":
                errs.append(fe.not_supported(child(path, "podReplacementPolicy"), replacement, ["Failed"]))
        elif replacement not in POD_REPLACEMENT_POLICIES:
            errs.append(
                fe.not_supported(child(path, "podReplacementPolicy"), replacement, POD_REPLACEMENT_POLICIES)
            )
    validate_pod_template_spec(spec.get("template"), child(path, "template"), errs)
    rpath = child(path, "template.spec.restartPolicy")
    if restart in ("Always", ""):
        errs.append(fe.required(rpath, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        errs.append(fe.not_supported(rpath, restart, ("OnFailure", "Never")))
    elif failure_policy is not None:
        _validate_pod_failure_policy(failure_policy, child(path, "podFailurePolicy"), restart, errs)
    opt_bool(spec, "suspend", path, errs)
    opt_bool(spec, "manualSelector", path, errs)


def _validate_job_spec(spec: JSONDict, errs: Errs) -> None:
    _validate_job_spec_body(spec, "spec", errs)
    selector = spec.get("selector")
    if selector is None:
        errs.append(fe.required("spec.selector"))
    else:
        validate_label_selector(selector, "spec.selector", errs)
    labels = template_labels(spec.get("template"))
    if selector_matches(selector, labels) is False:
        errs.append(
            fe.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )


def _has_label(labels: dict[str, str], label: str, expected: str, errs: Errs) -> None:
    path = f"spec.template.metadata.labels[{label}]"
    if label not in labels:
        errs.append(fe.required(path, f"must be '{expected}'"))
    elif labels[label] != expected:
        errs.append(fe.invalid(path, labels, f"must be '{expected}'"))


def _validate_generated_selector(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", [])
    if spec.get("manualSelector") is True:
        return
    meta = get_dict(obj, "metadata", "", [])
    uid, name = meta.get("uid"), meta.get("name")
    if not isinstance(uid, str) or not uid or not isinstance(name, str):
        return  # job_prepare_for_create has not run; the selector checks below report what is missing
    tmpl = as_dict(spec.get("template"), "spec.template", []) or {}
    tmeta = as_dict(tmpl.get("metadata"), "spec.template.metadata", []) or {}
    if tmeta.get("labels") is None:
        errs.append(fe.required("spec.template.metadata.labels"))
        return
    labels = template_labels(tmpl)
    for label, expected in (
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ):
        _has_label(labels, label, expected, errs)
    expected_labels = {
        CONTROLLER_UID_LABEL: uid,
        JOB_NAME_LABEL: name,
        LEGACY_CONTROLLER_UID_LABEL: uid,
        LEGACY_JOB_NAME_LABEL: name,
    }
    if selector_matches(spec.get("selector"), expected_labels) is False and spec.get("selector") is not None:
        errs.append(fe.invalid("spec.selector", spec.get("selector"), "`selector` not auto-generated"))


def _job_body(obj: JSONDict, errs: Errs) -> JSONDict:
    _validate_generated_selector(obj, errs)
    spec = get_dict(obj, "spec", "", errs)
    _validate_job_spec(spec, errs)
    return spec


def validate_job(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    spec = _job_body(obj, errs)
    completions = as_int(spec.get("completions"))
    name = get_dict(obj, "metadata", "", []).get("name")
    if spec.get("completionMode") == "Indexed" and completions and isinstance(name, str) and name:
        hostname = f"{name}-{completions - 1}"
        if names.is_dns1123_label(hostname):
            errs.append(
                fe.invalid(
                    "metadata.name", name, f"will not able to create pod with invalid DNS label: {hostname}"
                )
            )
    return errs


_SCHEDULING_DIRECTIVES = ("nodeSelector", "tolerations", "schedulingGates")


def _mutable_scheduling(old: JSONDict) -> bool:
    """A suspended Job that never started may change its pods' scheduling directives."""
    spec = get_dict(old, "spec", "", [])
    status = get_dict(old, "status", "", [])
    return spec.get("suspend") is True and status.get("startTime") is None


def validate_job_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    spec = _job_body(new, errs)
    old_spec = get_dict(old, "spec", "", [])
    new_completions, old_completions = spec.get("completions"), old_spec.get("completions")
    if spec.get("completionMode") == "Indexed" and old_spec.get("completionMode") == "Indexed":
        if (
            new_completions != old_completions
            and new_completions is not None
            and new_completions != spec.get("parallelism")
        ):
            errs.append(
                fe.invalid(
                    "spec.completions",
                    new_completions,
                    "can only be modified in tandem with spec.parallelism",
                )
            )
    else:
        validate_immutable(new_completions, old_completions, "spec.completions", errs)
    validate_immutable(spec.get("selector"), old_spec.get("selector"), "spec.selector", errs)
    new_tmpl, old_tmpl = quiet(spec.get("template")) or {}, quiet(old_spec.get("template")) or {}
    if _mutable_scheduling(old) and isinstance(new_tmpl, dict) and isinstance(old_tmpl, dict):
        old_tmpl = dict(old_tmpl)
        old_meta = dict(old_tmpl.get("metadata") or {})
        new_meta = new_tmpl.get("metadata") or {}
        for f in ("labels", "annotations"):
            old_meta[f] = new_meta.get(f) if isinstance(new_meta, dict) else None
        old_tmpl["metadata"] = old_meta
        old_pod = dict(old_tmpl.get("spec") or {})
        new_pod = new_tmpl.get("spec") or {}
        if isinstance(new_pod, dict):
            for f in _SCHEDULING_DIRECTIVES:
                old_pod[f] = new_pod.get(f)
            new_aff = new_pod.get("affinity") or {}
            old_aff = dict(old_pod.get("affinity") or {})
            old_aff["nodeAffinity"] = new_aff.get("nodeAffinity") if isinstance(new_aff, dict) else None
            old_pod["affinity"] = old_aff
        old_tmpl["spec"] = old_pod
    validate_immutable(new_tmpl, old_tmpl, "spec.template", errs)
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
        validate_immutable(spec.get(f), old_spec.get(f), child("spec", f), errs)
    return errs


def validate_job_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_dict(new, "status", "", errs)
    for name in ("active", "succeeded", "failed", "ready", "terminating"):
        nonnegative(opt_int(status, name, "status", errs), child("status", name), errs)
    uncounted = opt_dict(status, "uncountedTerminatedPods", "status", errs)
    if uncounted is not None:
        upath = "status.uncountedTerminatedPods"
        seen: set[str] = set()
        for list_name in ("succeeded", "failed"):
            for i, uid in enumerate(get_str_list(uncounted, list_name, upath, errs)):
                ipath = f"{child(upath, list_name)}[{i}]"
                if not uid:
                    errs.append(fe.invalid(ipath, uid, "must not be empty"))
                elif uid in seen:
                    errs.append(fe.duplicate(ipath, uid))
                seen.add(uid)
    return errs


# --------------------------------------------------------------------------------------------
# CronJob


def _cron_job_spec(obj: JSONDict, old: JSONDict | None, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    old_spec = get_dict(old, "spec", "", []) if old is not None else None
    schedule = get_str(spec, "schedule", "spec", errs)
    time_zone = opt_str(spec, "timeZone", "spec", errs)
    if not schedule:
        errs.append(fe.required("spec.schedule"))
    else:
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule", ""))
        _validate_schedule(schedule, allow_tz, time_zone, "spec.schedule", errs)
    nonnegative(opt_int(spec, "startingDeadlineSeconds", "spec", errs), "spec.startingDeadlineSeconds", errs)
    if old_spec is None or old_spec.get("timeZone") != time_zone:
        _validate_time_zone(time_zone, "spec.timeZone", errs)
    policy = get_str(spec, "concurrencyPolicy", "spec", errs)
    if not policy:
        errs.append(fe.required("spec.concurrencyPolicy"))
    elif policy not in CONCURRENCY_POLICIES:
        errs.append(fe.not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    job_template = get_dict(spec, "jobTemplate", "spec", errs)
    jpath = "spec.jobTemplate"
    jmeta = opt_dict(job_template, "metadata", jpath, errs)
    if jmeta is not None:
        validate_labels(jmeta.get("labels"), child(jpath, "metadata.labels"), errs)
        validate_annotations(jmeta.get("annotations"), child(jpath, "metadata.annotations"), errs)
    job_spec = get_dict(job_template, "spec", jpath, errs)
    _validate_job_spec_body(job_spec, child(jpath, "spec"), errs)
    if job_spec.get("selector") is not None:
        errs.append(
            fe.invalid(
                child(jpath, "spec.selector"), job_spec.get("selector"), "`selector` will be auto-generated"
            )
        )
    if job_spec.get("manualSelector") is True:
        errs.append(fe.not_supported(child(jpath, "spec.manualSelector"), True, ["nil", "false"]))
    for name in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        nonnegative(opt_int(spec, name, "spec", errs), child("spec", name), errs)
    opt_bool(spec, "suspend", "spec", errs)


def validate_cron_job(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _cron_job_spec(obj, None, errs)
    name = get_dict(obj, "metadata", "", []).get("name")
    if isinstance(name, str) and len(name) > MAX_CRONJOB_NAME_LENGTH:
        errs.append(
            fe.invalid("metadata.name", name, f"must be no more than {MAX_CRONJOB_NAME_LENGTH} characters")
        )
    return errs


def validate_cron_job_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _cron_job_spec(new, old, errs)
    return errs


def validate_cron_job_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_dict(new, "status", "", errs)
    for _, apath, ref in dict_items(status, "active", "status", errs):
        if not get_str(ref, "name", apath, errs):
            errs.append(fe.required(child(apath, "name")))
    return errs
