"""kpctl rollout (status, history, undo, pause, resume, restart), scale, set image and create
deployment: the commands that drive Deployments, with kubectl's behaviour, output and exit codes.

Why these live together: each is a thin client-side step around the Deployment controller
(controller_manager/deployment.py) and reads the same things it writes — the ReplicaSets a
Deployment controls and their ``deployment.kubernetes.io/revision`` annotations.

- ``rollout status`` prints kubectl's progress lines from a watch on the one Deployment
  (``Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...``)
  until ``successfully rolled out``; ``--timeout`` ends with ``error: timed out waiting for the
  condition`` (exit 1), a Deployment past its progress deadline with ``exceeded its progress
  deadline`` (exit 1).
- ``rollout undo`` is done by the client, as kubectl does for apps/v1: find the ReplicaSet of the
  revision, put its template (without the pod-template-hash label) back into the Deployment with
  one JSON patch that also restores its annotations (change-cause...). The controller then
  treats that ReplicaSet as new and gives it the next revision number, so revision 3 restored at
  revision 5 becomes revision 6 and 3 leaves the history.
- ``rollout pause|resume|restart`` patch ``spec.paused`` or the template's
  ``kubectl.kubernetes.io/restartedAt`` annotation; ``set image`` patches containers by name.

kplane.cli.kpctl imports this module at its very end; the commands register on ``kpctl.cli`` (and
``create deployment`` on its ``create`` group).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from google.protobuf.message import Message

from kplane.api import errors as api
from kplane.api import rollout as ro
from kplane.api.pb import apps_pb2
from kplane.api.resources import ResourceType, resolve
from kplane.cli.kpctl import (
    CLIError,
    Ctx,
    Obj,
    _ns_option,
    check_output,
    cli,
    create,
    echo_obj,
    format_api_error,
    kind_name,
    parse_targets,
    pass_ctx,
    run,
    to_obj,
)
from kplane.cli.streams import IMAGE_REFERENCE, DashCommand, _after_dash
from kplane.client.client import Client

DEPLOYMENTS, REPLICASETS = resolve("deployments"), resolve("replicasets")
SCALABLE = ("deployments", "replicasets", "replicationcontrollers", "statefulsets")
ROLLBACK_SUCCESS = "rolled back"
ROLLBACK_SKIPPED = "skipped rollback"
# rand.String's alphabet (kubectl's suffix for container names made DNS-safe)
_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class RolloutError(CLIError):
    """A rollout step that cannot be done (printed as ``error: <message>``, exit code 1)."""


class RevisionNotFound(RolloutError, LookupError):
    pass


# -- reading a Deployment's history --------------------------------------------------------------


async def get_deployment(client: Client, namespace: str, name: str) -> apps_pb2.Deployment:
    d = await client.get(DEPLOYMENTS, name, namespace=namespace)
    assert isinstance(d, apps_pb2.Deployment)
    return d


async def owned_replica_sets(client: Client, d: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
    """The ReplicaSets the Deployment controls (kubectl's ``rsListFromClient`` + controllerRef check),
    oldest first."""
    items, _ = await client.list_all(REPLICASETS, namespace=d.metadata.namespace)
    owned = [rs for rs in items if isinstance(rs, apps_pb2.ReplicaSet)
             and any(ref.controller and ref.uid == d.metadata.uid for ref in rs.metadata.ownerReferences)]
    return ro.by_creation(owned)


def _revision_or_none(rs: apps_pb2.ReplicaSet) -> int | None:
    raw = rs.metadata.annotations.get(ro.REVISION_ANNOTATION, "")
    try:
        return int(raw)
    except ValueError:
        return None


async def revisions(client: Client, d: apps_pb2.Deployment) -> dict[int, apps_pb2.ReplicaSet]:
    """revision -> its ReplicaSet (ReplicaSets without a readable revision are skipped)."""
    out: dict[int, apps_pb2.ReplicaSet] = {}
    for rs in await owned_replica_sets(client, d):
        rev = _revision_or_none(rs)
        if rev is not None:
            out[rev] = rs
    return out


async def rollout_history(client: Client, namespace: str, name: str) -> list[tuple[int, str]]:
    """(revision, change-cause or "") in revision order (kubectl's ``ViewHistory``)."""
    d = await get_deployment(client, namespace, name)
    history = await revisions(client, d)
    return [(rev, history[rev].metadata.annotations.get(ro.CHANGE_CAUSE_ANNOTATION, "")) for rev in sorted(history)]


def history_table(history: Sequence[tuple[int, str]]) -> str:
    """kubectl's tabwriter table (padding 2): ``REVISION  CHANGE-CAUSE``."""
    if not history:
        return "No rollout history found."
    rows = [("REVISION", "CHANGE-CAUSE"), *((str(rev), cause or "<none>") for rev, cause in history)]
    width = max(len(r[0]) for r in rows) + 2
    return "".join(f"{rev.ljust(width)}{cause}\n" for rev, cause in rows)


async def rollback(client: Client, namespace: str, name: str, to_revision: int = 0, *,
                   dry_run: str = "none") -> str:
    """Undo a rollout (kubectl's ``DeploymentRollbacker``): put the template of ``to_revision``
    (0: the revision before the current one) back into the Deployment. Returns kubectl's result
    word: "rolled back", or "skipped rollback (...)" when the template is already that revision's."""
    if to_revision < 0:
        raise RevisionNotFound(f"unable to find specified revision {to_revision} in history")
    d = await get_deployment(client, namespace, name)
    history = await revisions(client, d)
    if to_revision > 0:
        target = history.get(to_revision)
        if target is None:
            raise RevisionNotFound(f"unable to find specified revision {to_revision} in history")
    else:
        ordered = sorted(history)
        if len(ordered) < 2:
            raise RolloutError(f'no rollout history found for deployment "{name}"')
        target = history[ordered[-2]]
    if dry_run == "client":
        from kplane.cli.describe import describe_pod_template

        return describe_pod_template(to_obj(REPLICASETS, target)["spec"]["template"], datetime.now(UTC),
                                     aligned=False)
    if d.spec.paused:
        raise RolloutError("you cannot rollback a paused deployment; resume it first with "
                           "'kpctl rollout resume' and try again")
    if ro.equal_ignore_hash(target.spec.template, d.spec.template):
        return f"{ROLLBACK_SKIPPED} (current template already matches revision {to_revision})"
    template = to_obj(REPLICASETS, target)["spec"]["template"]
    labels = template.get("metadata", {}).get("labels", {})
    labels.pop(ro.DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY, None)
    annotations = {k: v for k, v in d.metadata.annotations.items() if k in ro.ANNOTATIONS_TO_SKIP}
    annotations.update({k: v for k, v in target.metadata.annotations.items() if k not in ro.ANNOTATIONS_TO_SKIP})
    patch = [{"op": "replace", "path": "/spec/template", "value": template},
             {"op": "replace", "path": "/metadata/annotations", "value": annotations}]
    try:
        await client.patch(DEPLOYMENTS, name, patch, namespace=namespace, patch_type="json",
                           dry_run=dry_run == "server")
    except api.APIError as exc:
        raise RolloutError(f"failed restoring revision {to_revision}: {exc}") from None
    return ROLLBACK_SUCCESS


def status_message(d: apps_pb2.Deployment, revision: int = 0) -> tuple[str, bool]:
    """kubectl's ``DeploymentStatusViewer``: (the line to print, done). Raises RolloutError for a
    rollout past its progress deadline or at another revision than ``revision``."""
    name = d.metadata.name
    if revision > 0:
        current = ro.revision(d)
        if revision != current:
            raise RolloutError(f"desired revision ({revision}) is different from the running revision ({current})")
    st = d.status
    if d.metadata.generation <= st.observedGeneration:
        cond = ro.get_condition(st, ro.PROGRESSING)
        if cond is not None and cond.reason == ro.TIMED_OUT_REASON:
            raise RolloutError(f'deployment "{name}" exceeded its progress deadline')
        want = d.spec.replicas if d.spec.HasField("replicas") else None
        if want is not None and st.updatedReplicas < want:
            return (f'Waiting for deployment "{name}" rollout to finish: {st.updatedReplicas} out of {want} '
                    f"new replicas have been updated...", False)
        if st.replicas > st.updatedReplicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {st.replicas - st.updatedReplicas} '
                    f"old replicas are pending termination...", False)
        if st.availableReplicas < st.updatedReplicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {st.availableReplicas} of '
                    f"{st.updatedReplicas} updated replicas are available...", False)
        return f'deployment "{name}" successfully rolled out', True
    return "Waiting for deployment spec update to be observed...", False


def rfc3339_now() -> str:
    """Go's ``time.Now().Format(time.RFC3339)``: local time with its offset, ``Z`` for UTC."""
    text = datetime.now().astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# -- argument handling -------------------------------------------------------------------------------


def _rollout_targets(args: tuple[str, ...], command: str) -> list[tuple[ResourceType, str]]:
    """`deployment web`, `deployment/web`, `deploy a b` -> [(type, name)]; deployments only."""
    if not args:
        raise CLIError("required resource not specified")
    out: list[tuple[ResourceType, str]] = []
    for rt, names in parse_targets(args):
        if not names:
            raise CLIError("required resource not specified")
        kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
        if rt.plural in ("daemonsets", "statefulsets"):  # kubectl can; kpctl cannot yet
            raise CLIError(f"kpctl has no {command} for {kind} yet (deployments only)")
        if rt.plural != "deployments":
            raise CLIError(f"no {command} has been implemented for {kind}")
        out.extend((rt, n) for n in names)
    return out


def _printed_name(rt: ResourceType, name: str) -> str:
    return kind_name(rt, name)


def _resource_error(rt: ResourceType, name: str, message: str) -> str:
    """kubectl's ``error: deployments.apps "web" is already paused``."""
    return f'error: {rt.group_resource} "{name}" {message}'


# -- rollout -------------------------------------------------------------------------------------------


@cli.group("rollout")
def rollout() -> None:
    """Manage the rollout of a deployment: status, history, undo, pause, resume, restart.

    \b
    kpctl rollout status deployment/web
    kpctl rollout history deployment/web [--revision=2]
    kpctl rollout undo deployment/web [--to-revision=2]
    kpctl rollout pause|resume|restart deployment/web
    """


@rollout.command("status")
@click.argument("args", nargs=-1)
@_ns_option
@click.option("-w", "--watch/--no-watch", "watch", default=True, help="watch the rollout until it is done")
@click.option("--revision", type=int, default=0, help="pin to a revision (0: the latest)")
@click.option("--timeout", default="0s", help="how long to watch (0: forever), e.g. 30s, 5m")
@pass_ctx
@run
async def rollout_status(ctx: Ctx, args: tuple[str, ...], watch: bool, revision: int, timeout: str) -> None:
    """Show the status of the rollout, following it until it is done."""
    from kplane.durations import parse_duration

    if revision < 0:
        raise CLIError(f"revision must be a positive integer: {revision}")
    try:
        seconds = parse_duration(timeout)
    except ValueError as exc:
        raise CLIError(f'invalid argument "{timeout}" for "--timeout" flag: {exc}') from None
    targets = _rollout_targets(args, "status viewer")
    if len(targets) != 1:
        raise CLIError("rollout status is only supported on individual resources and resource collections - "
                       f"{len(targets)} resources were found")
    _, name = targets[0]
    client = ctx.client()
    ns = ctx.ns
    try:
        async with asyncio.timeout(seconds or None):
            await _follow_status(client, ns, name, revision, watch)
    except TimeoutError:
        raise CLIError("timed out waiting for the condition") from None


async def _follow_status(client: Client, ns: str, name: str, revision: int, watch: bool) -> None:
    d = await get_deployment(client, ns, name)
    while True:
        message, done = status_message(d, revision)
        click.echo(message)
        if done or not watch:
            return
        resume_from = d.metadata.resourceVersion
        try:
            async for etype, obj in client.watch(DEPLOYMENTS, namespace=ns, field_selector=f"metadata.name={name}",
                                                 resource_version=resume_from):
                if etype == "DELETED":
                    raise CLIError("object has been deleted")
                if etype not in ("ADDED", "MODIFIED"):
                    continue
                assert isinstance(obj, apps_pb2.Deployment)
                d = obj
                message, done = status_message(d, revision)
                click.echo(message)
                if done:
                    return
        except (api.Expired, api.Unavailable):
            pass
        d = await get_deployment(client, ns, name)  # the watch ended: read afresh and go on


@rollout.command("history")
@click.argument("args", nargs=-1)
@_ns_option
@click.option("--revision", type=int, default=0, help="show the pod template of this revision")
@pass_ctx
@run
async def rollout_history_cmd(ctx: Ctx, args: tuple[str, ...], revision: int) -> None:
    """View the rollout history: revisions and their change-cause."""
    from kplane.cli.describe import describe_pod_template

    client = ctx.client()
    for rt, name in _rollout_targets(args, "history viewer"):
        d = await get_deployment(client, ctx.ns, name)
        history = await revisions(client, d)
        if revision > 0:
            rs = history.get(revision)
            if rs is None:
                raise CLIError("unable to find the specified revision")
            template = to_obj(REPLICASETS, rs)["spec"].get("template", {})
            text = describe_pod_template(template, datetime.now(UTC), aligned=False)
            click.echo(f"{_printed_name(rt, name)} with revision #{revision}\n{text}")
            continue
        rows = [(rev, rs.metadata.annotations.get(ro.CHANGE_CAUSE_ANNOTATION, "")) for rev, rs in sorted(history.items())]
        click.echo(f"{_printed_name(rt, name)} \n{history_table(rows)}")


@rollout.command("undo")
@click.argument("args", nargs=-1)
@_ns_option
@click.option("--to-revision", type=int, default=0, help="the revision to roll back to (0: the previous one)")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@pass_ctx
@run
async def rollout_undo(ctx: Ctx, args: tuple[str, ...], to_revision: int, dry_run: str) -> None:
    """Roll back to a previous revision."""
    client = ctx.client()
    for rt, name in _rollout_targets(args, "rollbacker"):
        result = await rollback(client, ctx.ns, name, to_revision, dry_run=dry_run)
        suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
        click.echo(f"{_printed_name(rt, name)} {result}{suffix}")


async def _patch_each(ctx: Ctx, args: tuple[str, ...], command: str, verb: str, make_patch: Any) -> None:
    """Apply ``make_patch(deployment) -> patch | error text`` to each target, kubectl-style: every
    target is tried, errors are printed as they come and make the exit code 1."""
    client = ctx.client()
    failed = False
    for rt, name in _rollout_targets(args, command):
        try:
            d = await get_deployment(client, ctx.ns, name)
        except api.APIError as exc:
            click.echo(format_api_error(exc, ctx), err=True)
            failed = True
            continue
        patch = make_patch(d)
        if isinstance(patch, str):
            click.echo(_resource_error(rt, name, patch), err=True)
            failed = True
            continue
        try:
            await client.patch(DEPLOYMENTS, name, patch, namespace=ctx.ns, patch_type="strategic")
        except api.APIError as exc:
            click.echo(f"error: failed to patch: {exc}", err=True)
            failed = True
            continue
        click.echo(f"{_printed_name(rt, name)} {verb}")
    if failed:
        sys.exit(1)


@rollout.command("pause")
@click.argument("args", nargs=-1)
@_ns_option
@pass_ctx
@run
async def rollout_pause(ctx: Ctx, args: tuple[str, ...]) -> None:
    """Mark the deployment paused: template changes wait until it is resumed."""
    await _patch_each(ctx, args, "pauser", "paused",
                      lambda d: "is already paused" if d.spec.paused else {"spec": {"paused": True}})


@rollout.command("resume")
@click.argument("args", nargs=-1)
@_ns_option
@pass_ctx
@run
async def rollout_resume(ctx: Ctx, args: tuple[str, ...]) -> None:
    """Resume a paused deployment."""
    await _patch_each(ctx, args, "resumer", "resumed",
                      lambda d: {"spec": {"paused": None}} if d.spec.paused else "is not paused")


@rollout.command("restart")
@click.argument("args", nargs=-1)
@_ns_option
@pass_ctx
@run
async def rollout_restart(ctx: Ctx, args: tuple[str, ...]) -> None:
    """Restart the pods of a deployment (a rollout of the same template with a new
    kubectl.kubernetes.io/restartedAt annotation)."""
    def patch(d: apps_pb2.Deployment) -> dict[str, Any] | str:
        if d.spec.paused:
            return "can't restart paused deployment (run rollout resume first)"
        return {"spec": {"template": {"metadata": {"annotations": {ro.RESTARTED_AT_ANNOTATION: rfc3339_now()}}}}}

    await _patch_each(ctx, args, "restarter", "restarted", patch)


# -- scale ---------------------------------------------------------------------------------------------


@cli.command("scale")
@click.argument("args", nargs=-1)
@_ns_option
@click.option("--replicas", type=int, default=None, help="the new number of replicas")
@click.option("--current-replicas", type=int, default=-1, help="precondition: the current size must be this")
@click.option("--resource-version", default="", help="precondition: the object's resourceVersion")
@pass_ctx
@run
async def scale(ctx: Ctx, args: tuple[str, ...], replicas: int | None, current_replicas: int,
                resource_version: str) -> None:
    """Set a new size for a deployment, replica set, replication controller or stateful set.

    \b
    kpctl scale deployment web --replicas=3
    kpctl scale --current-replicas=2 --replicas=3 deployment/web
    """
    if replicas is None:
        raise CLIError('required flag(s) "replicas" not set')
    if replicas < 0:
        raise CLIError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    targets = [(rt, n) for rt, names in parse_targets(args) for n in names]
    if not targets:
        raise CLIError("resource(s) were provided, but no name was specified")
    client = ctx.client()
    failed = False
    for rt, name in targets:
        if rt.plural not in SCALABLE:
            click.echo(f'error: cannot scale {rt.group_resource} "{name}": it has no scale subresource', err=True)
            failed = True
            continue
        try:
            current = await client.get_scale(rt, name, namespace=ctx.ns)
            if current_replicas != -1 and current.spec.replicas != current_replicas:
                click.echo(f"error: Expected replicas to be {current_replicas}, was {current.spec.replicas}", err=True)
                failed = True
                continue
            if resource_version and current.metadata.resourceVersion != resource_version:
                click.echo(f"error: Expected resource version to be {resource_version}, was "
                           f"{current.metadata.resourceVersion}", err=True)
                failed = True
                continue
            await client.update_scale(rt, name, replicas, namespace=ctx.ns,
                                      resource_version=current.metadata.resourceVersion
                                      if current_replicas != -1 or resource_version else "")
        except api.APIError as exc:
            click.echo(format_api_error(exc, ctx), err=True)
            failed = True
            continue
        click.echo(f"{kind_name(rt, name)} scaled")
    if failed:
        sys.exit(1)


# -- set image -----------------------------------------------------------------------------------------


@cli.group("set")
def set_() -> None:
    """Set specific features on objects (image)."""


def _pod_spec_path(rt: ResourceType) -> tuple[str, ...] | None:
    if rt.plural == "pods":
        return ("spec",)
    if rt.plural == "cronjobs":
        return ("spec", "jobTemplate", "spec", "template", "spec")
    if rt.plural in ("deployments", "daemonsets", "replicasets", "statefulsets", "replicationcontrollers", "jobs"):
        return ("spec", "template", "spec")
    return None


def _split_pairs(args: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """kubectl's ``GetResourcesAndPairs``: resources first, then NAME=IMAGE pairs."""
    resources: list[str] = []
    pairs: dict[str, str] = {}
    for arg in args:
        if "=" in arg:
            name, _, image = arg.partition("=")
            if not name or not image:
                raise CLIError(f"invalid image update: {arg}")
            pairs[name] = image
        elif pairs:
            raise CLIError(f"all resources must be specified before image changes: {arg}")
        else:
            resources.append(arg)
    return tuple(resources), pairs


def _nested(obj: Obj, path: Sequence[str]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


def _wrap(path: Sequence[str], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def image_patch(obj: Obj, path: Sequence[str], images: dict[str, str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The strategic merge patch that sets ``images`` (container name or ``*`` -> image) in the pod
    spec at ``path``; None when nothing changes. Also the names no container has."""
    spec = _nested(obj, path) or {}
    changes: dict[str, list[dict[str, str]]] = {}
    missing = []
    for name, image in images.items():
        found = False
        for field_name in ("initContainers", "containers"):
            for c in spec.get(field_name) or []:
                if c.get("name") == name or name == "*":
                    found = True
                    if c.get("image") != image:
                        changes.setdefault(field_name, []).append({"name": c["name"], "image": image})
        if not found:
            missing.append(name)
    return (_wrap(path, changes) if changes else None), missing


@set_.command("image")
@click.argument("args", nargs=-1)
@_ns_option
@click.option("--all", "all_", is_flag=True, help="every object of the given types in the namespace")
@click.option("-l", "--selector", default="", help="objects with these labels")
@click.option("--record", is_flag=True, help="record the command in kubernetes.io/change-cause (deprecated)")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name")
@pass_ctx
@run
async def set_image(ctx: Ctx, args: tuple[str, ...], all_: bool, selector: str, record: bool, dry_run: str,
                    output: str) -> None:
    """Update the image of containers in pod templates (or pods): NAME=IMAGE (`*` for every container).

    \b
    kpctl set image deployment/web app=myapp:v2
    kpctl set image deployment web *=myapp:v2 --record
    """
    if output:
        check_output(output)
    resources, images = _split_pairs(args)
    errors: list[str] = []
    if all_ and selector:
        errors.append("cannot set --all and --selector at the same time")
    if not resources:
        errors.append("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    if not images:
        errors.append("at least one image update is required")
    elif len(images) > 1 and "*" in images:
        errors.append("all containers are already specified by *, but saw more than one "
                      "container_name=container_image pairs")
    if errors:
        raise CLIError("\n".join(errors) if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    for image in images.values():
        if not IMAGE_REFERENCE.match(image):
            raise CLIError(f'Invalid image name "{image}": invalid reference format')
    client = ctx.client()
    objects: list[tuple[ResourceType, Message]] = []
    for rt, names in parse_targets(resources):
        if _pod_spec_path(rt) is None:
            raise CLIError(f"{rt.kind} has no pod template (use pod, deployment, daemonset, replicaset, "
                           "statefulset, replicationcontroller, job or cronjob)")
        if names:
            for n in names:
                objects.append((rt, await client.get(rt, n, namespace=ctx.ns)))
        elif all_ or selector:
            items, _ = await client.list_all(rt, namespace=ctx.ns, label_selector=selector)
            objects.extend((rt, item) for item in items)
        else:
            raise CLIError("resource(s) were provided, but no name was specified")
    failed = False
    for rt, msg in objects:
        obj = to_obj(rt, msg)
        name = obj["metadata"]["name"]
        path = _pod_spec_path(rt)
        assert path is not None
        patch, missing = image_patch(obj, path, images)
        for container in missing:
            click.echo(f'error: unable to find container named "{container}"', err=True)
            failed = True
        if patch is None:
            continue
        if record:
            cause = " ".join(["kpctl", "set", "image", *args, "--record=true"])
            patch.setdefault("metadata", {})["annotations"] = {ro.CHANGE_CAUSE_ANNOTATION: cause}
        if dry_run == "client":
            if output:
                echo_obj([obj], output)
            else:
                click.echo(f"{kind_name(rt, name)} image updated (dry run)")
            continue
        try:
            updated = await client.patch(rt, name, patch, namespace=ctx.ns, patch_type="strategic",
                                         dry_run=dry_run == "server")
        except api.APIError as exc:
            click.echo(f"error: failed to patch image update to pod template: {exc}", err=True)
            failed = True
            continue
        if output:
            echo_obj([to_obj(rt, updated)], output)
        else:
            click.echo(f"{kind_name(rt, name)} image updated" + (" (server dry run)" if dry_run == "server" else ""))
    if failed:
        sys.exit(1)


# -- create deployment ---------------------------------------------------------------------------------


def container_name(image: str) -> str:
    """kubectl create deployment's container name: the image's last path part without tag or
    digest; names with "_" or "." are made DNS-safe and get a random 5-character suffix."""
    name = image.split("/")[-1]
    name = name.split(":")[0] if ":" in name else name
    name = name.split("@")[0] if "@" in name else name
    if re.search(r"[_.]", name):
        name = name.replace("_", "-").replace(".", "-")
        name = f"{name}-{''.join(random.choice(_RAND_ALPHABET) for _ in range(5))}"
    return name


def build_deployment(name: str, images: Sequence[str], *, replicas: int, port: int,
                     command: Sequence[str] = ()) -> Obj:
    """The Deployment ``kubectl create deployment`` builds, in kubectl's field order (what
    ``--dry-run=client -o json`` prints)."""
    labels = {"app": name}
    containers: list[Obj] = []
    for image in images:
        c: Obj = {"name": container_name(image), "image": image}
        if command:
            c["command"] = list(command)
        containers.append(c)
    if port >= 0 and containers:
        containers[0]["ports"] = [{"containerPort": port}]
    for c in containers:
        c["resources"] = {}
    return {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "creationTimestamp": None, "labels": dict(labels)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"creationTimestamp": None, "labels": dict(labels)},
                              "spec": {"containers": containers}},
                 "strategy": {}},
        "status": {},
    }


@create.command("deployment", cls=DashCommand)
@click.argument("args", nargs=-1, metavar="NAME [-- COMMAND [ARGS...]]")
@click.option("--image", "images", multiple=True, help="image(s) to run (one container each)")
@click.option("-r", "--replicas", type=int, default=1, help="number of replicas")
@click.option("--port", type=int, default=-1, help="the port the (first) container exposes")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name")
@_ns_option
@pass_ctx
@run
async def create_deployment(ctx: Ctx, args: tuple[str, ...], images: tuple[str, ...], replicas: int, port: int,
                            dry_run: str, output: str) -> None:
    """Create a deployment with the given name.

    \b
    kpctl create deployment web --image=myapp:v1 --replicas=3 --port=80
    kpctl create deployment web --image=myapp:v1 --dry-run=client -o yaml
    """
    if output:
        check_output(output)
    if len(args) != 1:
        raise CLIError(f"exactly one NAME is required, got {len(args)}\n"
                       "See 'kpctl create deployment -h' for help and examples")
    if not images:
        raise CLIError('required flag(s) "image" not set')
    if replicas < 0:
        raise CLIError(f"The Deployment \"{args[0]}\" is invalid: spec.replicas: Invalid value: {replicas}: "
                       "must be greater than or equal to 0")
    for image in images:
        if not IMAGE_REFERENCE.match(image):
            raise CLIError(f'Invalid image name "{image}": invalid reference format')
    name = args[0]
    obj = build_deployment(name, images, replicas=replicas, port=port, command=_after_dash() or ())
    if dry_run == "client":
        if output == "json":
            from kplane.cli.printers import render_json

            click.echo(render_json(obj, sort_keys=False), nl=False)
        elif output:
            echo_obj([obj], output)
        else:
            click.echo(f"{kind_name(DEPLOYMENTS, name)} created (dry run)")
        return
    body = json.loads(json.dumps(obj))
    body.pop("status")
    body["metadata"].pop("creationTimestamp")
    body["spec"]["template"]["metadata"].pop("creationTimestamp")
    created = to_obj(DEPLOYMENTS, await ctx.client().create(DEPLOYMENTS, body, namespace=ctx.ns,
                                                            dry_run=dry_run == "server"))
    if output:
        echo_obj([created], output)
    else:
        suffix = " (server dry run)" if dry_run == "server" else ""
        click.echo(f"{kind_name(DEPLOYMENTS, name)} created{suffix}")
