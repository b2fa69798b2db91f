"""kpctl create job / create cronjob / create poddisruptionbudget: kubectl's generators for batch
workloads and disruption budgets.

The objects are the ones ``kubectl create job|cronjob`` builds (its create_job.go and
create_cronjob.go): one container named after the object, the words after ``--`` as its
``command``, restartPolicy ``Never`` for a Job and ``OnFailure`` (or ``--restart``) for a
CronJob; ``--from=cronjob/NAME`` instantiates a CronJob's job template by hand, annotated
``cronjob.kubernetes.io/instantiate: manual`` and owned by the CronJob. ``--dry-run=client -o
yaml`` prints what kubectl prints (``creationTimestamp: null``, ``resources: {}``,
``status: {}``); messages and exit codes are kubectl's.

kplane.cli.kpctl imports this module at its very end; the commands register on its ``create``
group.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import click

from kplane.api.labels import parse_selector
from kplane.api.resources import ResourceType, UnknownResource, resolve
from kplane.cli.kpctl import (
    CLIError,
    Ctx,
    Obj,
    _ns_option,
    check_output,
    create,
    create_and_report,
    pass_ctx,
    run,
    to_obj,
)

JOBS: ResourceType = resolve("jobs")
CRONJOBS: ResourceType = resolve("cronjobs")
PDBS: ResourceType = resolve("poddisruptionbudgets")
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"


class DashCommand(click.Command):
    """Keeps the words after ``--`` apart from NAME (cobra's ArgsLenAtDash): they are the
    container's command, never flags."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta["after_dash"] = args[at + 1:]
            args = args[:at]
        else:
            ctx.meta["after_dash"] = []
        return super().parse_args(ctx, args)


def usage_error(command: str, message: str) -> CLIError:
    return CLIError(f"{message}\nSee 'kpctl create {command} -h' for help and examples")


def name_from_args(command: str, args: tuple[str, ...]) -> str:
    """``NameFromCommandArgs``: exactly one NAME before ``--``."""
    if len(args) != 1:
        raise usage_error(command, f"exactly one NAME is required, got {len(args)}")
    return args[0]


def _container(name: str, image: str, command: list[str]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image, "resources": {}}
    if command:
        container["command"] = list(command)
    return container


def build_job(name: str, image: str, command: list[str], namespace: str | None) -> Obj:
    """``createJob``: the Job kubectl generates for ``--image``."""
    meta: dict[str, Any] = {"name": name, "creationTimestamp": None}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"template": {"metadata": {"creationTimestamp": None},
                                  "spec": {"containers": [_container(name, image, command)],
                                           "restartPolicy": "Never"}}},
            "status": {}}


def build_job_from_cronjob(name: str, cronjob: Obj, namespace: str | None) -> Obj:
    """``createJobFromCronJob``: the CronJob's job template, run by hand now."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    cmeta = cronjob.get("metadata") or {}
    annotations = {INSTANTIATE_ANNOTATION: "manual", **(tmeta.get("annotations") or {})}
    meta: dict[str, Any] = {
        "name": name, "creationTimestamp": None, "annotations": annotations,
        # not NewControllerRef: blockOwnerDeletion would need the cronjobs/finalizers permission
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cmeta.get("name", ""),
                             "uid": cmeta.get("uid", ""), "controller": True}],
    }
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {}), "status": {}}


def build_cronjob(name: str, image: str, schedule: str, restart: str, command: list[str],
                  namespace: str | None) -> Obj:
    """``createCronJob``: the CronJob kubectl generates."""
    meta: dict[str, Any] = {"name": name, "creationTimestamp": None}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": schedule,
                     "jobTemplate": {"metadata": {"name": name, "creationTimestamp": None},
                                     "spec": {"template": {"metadata": {"creationTimestamp": None},
                                                           "spec": {"containers": [_container(name, image, command)],
                                                                    "restartPolicy": restart or "OnFailure"}}}}},
            "status": {}}


def _for_server(obj: Obj) -> Obj:
    """The object as sent: without kubectl's printed placeholders (null times, empty status)."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not (k == "creationTimestamp" and v is None)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    out = strip(obj)
    if out.get("status") == {}:
        del out["status"]
    return dict(out)


async def _create_and_report(ctx: Ctx, rt: ResourceType, obj: Obj, dry_run: str, output: str) -> None:
    await create_and_report(ctx, rt, obj, _for_server(obj), dry_run, output, failure=f"failed to create {rt.singular}")


def _source(source: str) -> tuple[ResourceType, str]:
    """``--from=TYPE/NAME`` -> (resource type, name); kubectl reads the object before it checks
    that it is a CronJob."""
    type_name, slash, name = source.partition("/")
    if not slash or not name or not type_name:
        raise CLIError(f'arguments in resource/name form must have a single resource and name: "{source}"')
    try:
        return resolve(type_name), name
    except UnknownResource:
        raise CLIError(f"the server doesn't have a resource type \"{type_name}\"") from None


@create.command("job", cls=DashCommand)
@click.argument("args", nargs=-1, metavar="NAME [-- COMMAND [args...]]")
@_ns_option
@click.option("--image", default="", help="Image name to run.")
@click.option("--from", "from_", default="", help="The name of the resource to create a Job from (only CronJob is "
                                                  "supported), e.g. cronjob/nightly.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=TEMPLATE")
@pass_ctx
@run
async def create_job(ctx: Ctx, args: tuple[str, ...], image: str, from_: str, dry_run: str, output: str) -> None:
    """Create a job with the specified name.

    \b
    kpctl create job my-job --image=busybox
    kpctl create job my-job --image=busybox -- date
    kpctl create job test-job --from=cronjob/a-cronjob
    """
    check_output(output)
    command: list[str] = click.get_current_context().meta.get("after_dash") or []
    name = name_from_args("job", args)
    if bool(image) == bool(from_):
        raise CLIError("either --image or --from must be specified")
    if command and from_:
        raise CLIError("cannot specify --from and command")
    namespace = ctx.namespace or None
    if image:
        job = build_job(name, image, command, namespace)
    else:
        rt, source = _source(from_)
        found = await ctx.client().get(rt, source, namespace=ctx.ns)
        if rt != CRONJOBS:
            raise CLIError(f"unknown object type *v1.{rt.kind}")
        job = build_job_from_cronjob(name, to_obj(CRONJOBS, found), namespace)
    await _create_and_report(ctx, JOBS, job, dry_run, output)


@create.command("cronjob", cls=DashCommand)
@click.argument("args", nargs=-1, metavar="NAME --image=image --schedule='0/5 * * * ?' [-- COMMAND [args...]]")
@_ns_option
@click.option("--image", default=None, help="Image name to run.")
@click.option("--schedule", default=None, help="A schedule in the Cron format the job should be run with.")
@click.option("--restart", default="", help="job's restart policy. supported values: OnFailure, Never")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=TEMPLATE")
@pass_ctx
@run
async def create_cronjob(ctx: Ctx, args: tuple[str, ...], image: str | None, schedule: str | None, restart: str,
                         dry_run: str, output: str) -> None:
    """Create a cron job with the specified name.

    \b
    kpctl create cronjob my-job --image=busybox --schedule="*/1 * * * *"
    kpctl create cronjob my-job --image=busybox --schedule="*/1 * * * *" -- date
    """
    missing = [f'"{flag}"' for flag, value in (("image", image), ("schedule", schedule)) if value is None]
    if missing:
        raise CLIError(f"required flag(s) {', '.join(missing)} not set")
    check_output(output)
    command: list[str] = click.get_current_context().meta.get("after_dash") or []
    name = name_from_args("cronjob", args)
    cronjob = build_cronjob(name, image or "", schedule or "", restart, command, ctx.namespace or None)
    await _create_and_report(ctx, CRONJOBS, cronjob, dry_run, output)


create.add_command(create_cronjob, "cj")


_PDB_BOUND_RE = re.compile(r"^[0-9]+%?$")
_SELECTOR_OPERATORS = {"in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist"}


def parse_to_label_selector(text: str) -> Obj:
    """``metav1.ParseToLabelSelector``: ``a=b`` terms become matchLabels, set-based terms
    matchExpressions; ``!=``, ``gt`` and ``lt`` cannot be expressed (kubectl's errors)."""
    try:
        selector = parse_selector(text)
    except ValueError as exc:
        raise CLIError(f"couldn't parse the selector string \"{text}\": {exc}") from None
    match_labels: dict[str, str] = {}
    expressions: list[Obj] = []
    for req in selector.requirements:
        if req.operator in ("=", "=="):
            match_labels[req.key] = req.values[0]
            continue
        op = _SELECTOR_OPERATORS.get(req.operator)
        if req.operator in ("gt", "lt"):
            raise CLIError(f'"{req.operator}" isn\'t supported in label selectors')
        if op is None:
            raise CLIError(f'"{req.operator}" is not a valid label selector operator')
        expr: Obj = {"key": req.key, "operator": op}
        if req.values:
            expr["values"] = sorted(req.values)
        expressions.append(expr)
    out: Obj = {}
    if expressions:
        out["matchExpressions"] = expressions
    if match_labels:
        out["matchLabels"] = match_labels
    return out


def _int_or_string(text: str) -> int | str:
    """``intstr.Parse``: a number when it is one."""
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


def build_pdb(name: str, selector: str, min_available: str, max_unavailable: str, namespace: str | None) -> Obj:
    """``createPodDisruptionBudgets``: the budget kubectl builds (its zero status included)."""
    meta: dict[str, Any] = {"name": name, "creationTimestamp": None}
    if namespace:
        meta["namespace"] = namespace
    spec: Obj = {}
    if min_available:
        spec["minAvailable"] = _int_or_string(min_available)
    elif max_unavailable:
        spec["maxUnavailable"] = _int_or_string(max_unavailable)
    spec["selector"] = parse_to_label_selector(selector)
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta, "spec": spec,
            "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}}


@create.command("poddisruptionbudget")
@click.argument("args", nargs=-1, metavar="NAME --selector=SELECTOR --min-available=N")
@_ns_option
@click.option("--selector", default="", help="A label selector to use for this budget. Only equality-based "
                                             "selector requirements are supported.")
@click.option("--min-available", default="", help="The minimum number or percentage of available pods this "
                                                  "budget requires.")
@click.option("--max-unavailable", default="", help="The maximum number or percentage of unavailable pods this "
                                                    "budget requires.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=TEMPLATE")
@pass_ctx
@run
async def create_pdb(ctx: Ctx, args: tuple[str, ...], selector: str, min_available: str, max_unavailable: str,
                     dry_run: str, output: str) -> None:
    """Create a pod disruption budget with the specified name, selector, and desired minimum available pods.

    \b
    kpctl create pdb my-pdb --selector=app=rails --min-available=1
    kpctl create pdb my-pdb --selector=app=nginx --min-available=50%
    """
    check_output(output)
    name = name_from_args("poddisruptionbudget", args)
    if not selector:
        raise CLIError("a selector must be specified")
    if not min_available and not max_unavailable:
        raise CLIError("one of min-available or max-unavailable must be specified")
    if min_available and max_unavailable:
        raise CLIError("min-available and max-unavailable cannot be both specified")
    if min_available and not _PDB_BOUND_RE.match(min_available):
        raise CLIError("invalid format specified for min-available")
    if max_unavailable and not _PDB_BOUND_RE.match(max_unavailable):
        raise CLIError("invalid format specified for max-unavailable")
    pdb = build_pdb(name, selector, min_available, max_unavailable, ctx.namespace or None)
    await _create_and_report(ctx, PDBS, pdb, dry_run, output)


create.add_command(create_pdb, "pdb")
