"""kpctl: kubectl-shaped command line for a kplane cluster.

Each command resolves resource names like kubectl (`po`, `deploy`, `deployments.apps`), talks to
the apiserver over gRPC, prints what kubectl prints, and exits non-zero with a message a person
understands when anything goes wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from google.protobuf.message import Message

import kplane
from kplane.api import errors as api
from kplane.api.resources import ResourceType, UnknownResource, for_kind, object_to_dict, resolve
from kplane.cli import apply as apply_mod
from kplane.cli import manifests
from kplane.client.client import Client

T = TypeVar("T")
Obj = dict[str, Any]

ALL_CATEGORY = ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets",
                "replicationcontrollers", "jobs", "cronjobs")


class CLIError(Exception):
    """A user-facing error: printed as `error: <message>` with exit code 1."""


@dataclass
class Ctx:
    server: str | None
    config_path: str | None
    namespace: str | None
    timeout: float
    _client: Client | None = field(default=None, repr=False)
    _default_ns: str = "default"

    def client(self) -> Client:
        if self._client is None:
            servers: list[str]
            if self.server:
                servers = [self.server]
            else:
                from pathlib import Path

                from kplane.config import ConfigError, load_config

                try:
                    cfg = load_config(Path(self.config_path) if self.config_path else None)
                except ConfigError as exc:
                    raise CLIError(str(exc)) from None
                servers = cfg.servers
                self._default_ns = cfg.namespace or "default"
            self._client = Client(servers, identity="kpctl", user=_events.os_user(), timeout=self.timeout)
        return self._client

    @property
    def ns(self) -> str:
        if self.namespace:
            return self.namespace
        self.client()
        return self._default_ns


def run(coro_fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command, mapping every error to a kubectl-like message and exit code."""

    @wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx = click.get_current_context().find_object(Ctx)

        async def main() -> T:
            try:
                return await coro_fn(*args, **kwargs)
            finally:
                if ctx is not None and ctx._client is not None:
                    await ctx._client.close()

        try:
            return asyncio.run(main())
        except KeyboardInterrupt:
            sys.exit(130)
        except api.APIError as exc:
            _fail(format_api_error(exc, ctx))
        except (CLIError, manifests.ManifestError, UnknownResource) as exc:
            _fail(f"error: {_strip_quotes(exc)}")

    return wrapper


def _strip_quotes(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, KeyError) and text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    return text


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def format_api_error(exc: api.APIError, ctx: Ctx | None = None, action: str = "") -> str:
    if isinstance(exc, api.Unavailable):
        server = ctx._client.server if ctx is not None and ctx._client is not None else "the apiserver"
        return (f"The connection to the server {server} was refused - did you specify the right host or port? "
                f"({exc.message})")
    if isinstance(exc, api.Invalid) and exc.causes:
        head = exc.message.split(" is invalid:")[0] if " is invalid:" in exc.message else exc.message
        if exc.kind and exc.name:
            head = f'{exc.kind} "{exc.name}"'
        lines = [cause_message for _, cause_message, _ in exc.causes]
        if len(lines) == 1:
            return f"The {head} is invalid: {lines[0]}"
        return f"The {head} is invalid: \n" + "\n".join(f"* {line}" for line in lines)
    prefix = f"Error from server ({exc.reason})"
    return f"{prefix}: {action}{exc.message}"


# --------------------------------------------------------------------------------------------
# helpers


def to_obj(rt: ResourceType, msg: Message) -> Obj:
    return _events.hide_managed_fields(object_to_dict(rt, msg))


def kind_name(rt: ResourceType, name: str) -> str:
    """`deployment.apps/web`, `pod/web-1` (what kubectl prints after an action)."""
    return f"{rt.singular}.{rt.group}/{name}" if rt.group else f"{rt.singular}/{name}"


def parse_targets(args: tuple[str, ...]) -> list[tuple[ResourceType, list[str]]]:
    """`pods`, `pods a b`, `po,svc`, `pod/a deploy/b`, `all` -> [(type, [names])]."""
    if not args:
        raise CLIError("You must specify the type of resource to get. Use \"kpctl api-resources\" for a complete "
                       "list of supported resources.")
    if all("/" in a for a in args):
        out: list[tuple[ResourceType, list[str]]] = []
        for a in args:
            type_name, _, name = a.partition("/")
            if not name:
                raise CLIError(f'arguments in resource/name form must have a single resource and name: "{a}"')
            rt = resolve(type_name)
            for existing in out:
                if existing[0] == rt:
                    existing[1].append(name)
                    break
            else:
                out.append((rt, [name]))
        return out
    if any("/" in a for a in args):
        raise CLIError("there is no need to specify a resource type as a separate argument when passing arguments "
                       "in resource/name form (e.g. 'kpctl get resource/<resource_name>' instead of 'kpctl get "
                       "resource resource/<resource_name>')")
    types: list[ResourceType] = []
    for type_name in args[0].split(","):
        if type_name == "all":
            types.extend(resolve(t) for t in ALL_CATEGORY)
        elif type_name:
            types.append(resolve(type_name))
    names = list(args[1:])
    if names and len(types) > 1:
        raise CLIError("you must specify only one resource type when passing names (or use TYPE/NAME form)")
    return [(rt, names) for rt in types]


def now() -> datetime:
    return datetime.now(UTC)


def resolve_manifest(m: manifests.Manifest) -> ResourceType:
    obj = m.obj
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    name = (obj.get("metadata") or {}).get("name", "") if isinstance(obj.get("metadata"), dict) else ""
    if not isinstance(kind, str) or not kind:
        raise CLIError(f'error validating "{m.source}": error validating data: kind not set')
    if not isinstance(api_version, str) or not api_version:
        raise CLIError(f'error validating "{m.source}": error validating data: apiVersion not set')
    try:
        return for_kind(api_version, kind)
    except UnknownResource as exc:
        raise CLIError(f'resource mapping not found for name: "{name}" namespace: "" from "{m.source}": {exc}\n'
                       f"ensure CRDs are installed first") from None


def manifest_namespace(rt: ResourceType, obj: Obj, ctx: Ctx, explicit: bool) -> str:
    if not rt.namespaced:
        return ""
    meta_ns = (obj.get("metadata") or {}).get("namespace") or ""
    if explicit and meta_ns and meta_ns != ctx.ns:
        raise CLIError(f"the namespace from the provided object \"{meta_ns}\" does not match the namespace "
                       f"\"{ctx.ns}\". You must pass '--namespace={meta_ns}' to perform this operation.")
    return meta_ns or ctx.ns


def echo_obj(objs: list[Obj], output: str) -> None:
    from kplane.cli import printers

    if output == "yaml":
        click.echo(printers.render_yaml(objs[0] if len(objs) == 1 else objs), nl=False)
    elif output == "json":
        click.echo(printers.render_json(objs[0] if len(objs) == 1 else objs), nl=False)
    elif output == "name":
        for o in objs:
            click.echo(printers.render_name(o))
    elif output.startswith(("jsonpath=", "jsonpath-as-json=")):
        from kplane.cli.jsonpath import render_jsonpath

        template = output.split("=", 1)[1]
        data = objs[0] if len(objs) == 1 else {"apiVersion": "v1", "items": objs, "kind": "List",
                                               "metadata": {"resourceVersion": ""}}
        click.echo(render_jsonpath(template, data, as_json=output.startswith("jsonpath-as-json=")), nl=False)
    else:
        raise CLIError(f'unable to match a printer suitable for the output format "{output}", allowed formats are: '
                       f"json,jsonpath,name,wide,yaml")


# What kubectl appends to "<kind>/<name> created" for each --dry-run mode.
DRY_RUN_SUFFIX = {"none": "", "client": " (dry run)", "server": " (server dry run)"}


async def create_and_report(ctx: Ctx, rt: ResourceType, obj: Obj, sent: Obj, dry_run: str, output: str, *,
                            failure: str, verb: str = "created", passthrough: tuple[type[api.APIError], ...] = (
                                api.Unavailable,), json_as_built: bool = False) -> None:
    """A generator command's end (`kpctl create job|service|...`, `expose`): create ``sent`` (``obj``
    without kubectl's printed placeholders) unless --dry-run=client, then print the object or
    kubectl's `<kind>/<name> <verb>` line. An API error becomes `<failure>: <message>` (kubectl's
    wording), except the ``passthrough`` kinds, printed as the server said them; with
    ``json_as_built`` a client-side `-o json` keeps the generated key order (kubectl's Go field order)."""
    name = obj["metadata"]["name"]
    if dry_run != "client":
        try:
            created = await ctx.client().create(rt, sent, namespace=ctx.ns, dry_run=dry_run == "server")
        except api.APIError as exc:
            if isinstance(exc, passthrough) or not failure:
                raise
            raise CLIError(f"{failure}: {exc.message}") from None
        obj = to_obj(rt, created)
    if output == "json" and json_as_built and dry_run == "client":
        from kplane.cli import printers

        click.echo(printers.render_json(obj, sort_keys=False), nl=False)
    elif output:
        echo_obj([obj], output)
    else:
        click.echo(f"{kind_name(rt, name)} {verb}{DRY_RUN_SUFFIX[dry_run]}")


OUTPUTS = ("", "wide", "yaml", "json", "name")


def check_output(output: str) -> None:
    if output in OUTPUTS or output.startswith(("jsonpath=", "jsonpath-as-json=")):
        return
    raise CLIError(f'unable to match a printer suitable for the output format "{output}", allowed formats are: '
                   f"json,jsonpath,name,wide,yaml")


# --------------------------------------------------------------------------------------------
# the command group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--server", "-s", envvar="KPLANE_SERVER", help="apiserver address HOST:PORT (overrides the config)")
@click.option("--kplane-config", "config_path", envvar="KPLANE_CONFIG",
              help="client config file (default ~/.kplane/config)")
@click.option("-n", "--namespace", help="namespace for this request")
@click.option("--request-timeout", default=30.0, type=float, help="seconds to wait for each request")
@click.pass_context
def cli(ctx: click.Context, server: str | None, config_path: str | None, namespace: str | None,
        request_timeout: float) -> None:
    """kpctl controls a kplane cluster, with kubectl's command lines.

    \b
    Basic commands:   get, describe, create, apply, replace, delete, edit, patch, label, annotate
    Discovery:        api-resources, explain, version
    """
    ctx.obj = Ctx(server, config_path, namespace, request_timeout)


def _ns_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`-n` is accepted after the subcommand too (kubectl allows it anywhere)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.find_object(Ctx).namespace = value  # type: ignore[union-attr]

    return click.option("-n", "--namespace", expose_value=False, callback=callback,
                        help="namespace for this request")(f)


pass_ctx = click.make_pass_decorator(Ctx)


# -- get ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("args", nargs=-1)
@_ns_option
@click.option("-A", "--all-namespaces", is_flag=True, help="list across all namespaces")
@click.option("-o", "--output", default="", help="wide|yaml|json|name|jsonpath=TEMPLATE")
@click.option("-l", "--selector", default="", help="label selector, e.g. app=web,tier!=db")
@click.option("--field-selector", default="", help="field selector, e.g. spec.nodeName=node-1")
@click.option("-w", "--watch", is_flag=True, help="after listing, watch for changes")
@click.option("--watch-only", is_flag=True, help="watch for changes without listing first")
@click.option("--show-labels", is_flag=True, help="show labels as the last column")
@click.option("--no-headers", is_flag=True, help="omit table headers")
@click.option("--ignore-not-found", is_flag=True, help="don't fail when a named object does not exist")
@click.option("--at-revision", default=None, type=int, help="read the cluster as it was at this etcd revision")
@click.option("--show-managed-fields", is_flag=True, expose_value=False,
              callback=lambda c, p, v: _events.show_managed_fields(v), help="keep metadata.managedFields in -o yaml/json")
@click.option("-f", "--filename", multiple=True, help="get the objects named in these manifests")
@pass_ctx
@run
async def get(ctx: Ctx, args: tuple[str, ...], all_namespaces: bool, output: str, selector: str, field_selector: str,
              watch: bool, watch_only: bool, show_labels: bool, no_headers: bool, ignore_not_found: bool,
              at_revision: int | None, filename: tuple[str, ...]) -> None:
    """Display one or many resources.

    \b
    kpctl get pods
    kpctl get pods -o wide -l app=web
    kpctl get deploy,rs,po -A
    kpctl get pod/web-1 -o yaml
    kpctl get pods -w
    """
    from kplane.cli import printers

    check_output(output)
    client = ctx.client()
    if filename:
        targets = []
        for m in manifests.load(filename):
            rt = resolve_manifest(m)
            targets.append((rt, [m.obj.get("metadata", {}).get("name", "")],
                            manifest_namespace(rt, m.obj, ctx, False)))
    else:
        targets = [(rt, names, ctx.ns) for rt, names in parse_targets(args)]
    rv = str(at_revision) if at_revision is not None else ""
    multi_kind = len({rt for rt, _, _ in targets}) > 1 or (args and args[0] == "all")
    collected: list[tuple[ResourceType, list[Obj], str]] = []
    failures: list[str] = []
    for rt, names, ns in targets:
        namespace = "" if (all_namespaces and not names) else ns
        if names:
            objs = []
            for name in names:
                try:
                    objs.append(to_obj(rt, await client.get(rt, name, namespace=namespace, resource_version=rv)))
                except api.NotFound as exc:
                    if not ignore_not_found:
                        failures.append(format_api_error(exc))
            collected.append((rt, objs, ""))
        elif not (watch or watch_only):
            items, list_rv = await client.list_all(rt, namespace=namespace, label_selector=selector,
                                                   field_selector=field_selector, resource_version=rv)
            collected.append((rt, _events.by_time(rt, [to_obj(rt, m) for m in items]), list_rv))
        else:
            collected.append((rt, [], ""))
    all_objs = [o for _, objs, _ in collected for o in objs]
    wide = output == "wide"
    t = now()
    if watch or watch_only:
        if len(collected) != 1:
            raise CLIError("watch is only supported on individual resources and resource collections, but "
                           f"{len(collected)} resources were found")
        for failure in failures:
            click.echo(failure, err=True)
        rt, _, _ = collected[0]
        names = targets[0][1]
        namespace = "" if all_namespaces else targets[0][2]
        field_sel = field_selector
        if names:
            field_sel = ",".join(x for x in (field_selector, f"metadata.name={names[0]}") if x)
        printer = printers.WatchPrinter(wide=wide, show_labels=show_labels,
                                        show_namespace=all_namespaces and rt.namespaced,
                                        no_headers=no_headers) if output in ("", "wide") else None
        await _watch_print(client, rt, namespace, selector, field_sel, output, printer, skip_initial=watch_only)
        return
    if output in ("", "wide"):
        blocks = []
        for rt, objs, _ in collected:
            if not objs:
                continue
            blocks.append(printers.render_table(objs, now=t, wide=wide, show_labels=show_labels,
                                                show_namespace=all_namespaces and rt.namespaced,
                                                show_kind=bool(multi_kind), no_headers=no_headers))
        if blocks:
            sep = "" if no_headers else "\n"
            click.echo(sep.join(b.rstrip("\n") + "\n" for b in blocks), nl=False)
        elif not failures and not any(names for _, names, _ in targets):
            ns_for_msg = None if (all_namespaces or not targets[0][0].namespaced) else targets[0][2]
            click.echo(printers.no_resources_message(ns_for_msg), err=True)
    elif all_objs or output.startswith("json") or output == "yaml":
        if len(all_objs) == 1 and any(names for _, names, _ in targets):
            echo_obj(all_objs, output)
        elif all_objs or output in ("yaml", "json") or output.startswith("jsonpath"):
            listing = {"apiVersion": "v1", "kind": "List", "items": all_objs, "metadata": {"resourceVersion": ""}}
            if output == "yaml":
                click.echo(printers.render_yaml(listing), nl=False)
            elif output == "json":
                click.echo(printers.render_json(listing), nl=False)
            elif output == "name":
                echo_obj(all_objs, "name")
            else:
                from kplane.cli.jsonpath import render_jsonpath

                click.echo(render_jsonpath(output.split("=", 1)[1], listing,
                                           as_json=output.startswith("jsonpath-as-json=")), nl=False)
    for failure in failures:
        click.echo(failure, err=True)
    if failures:
        sys.exit(1)


class _PrintingStore:
    """A reflector store that prints instead of storing: the initial list as a table (unless
    --watch-only), then one row per change. After a relist (the watch position was compacted)
    only objects that changed or vanished meanwhile are printed, so nothing shows twice."""

    def __init__(self, rt: ResourceType, output: str, printer: Any, skip_initial: bool) -> None:
        self.rt, self.output, self.printer = rt, output, printer
        self.skip_initial = skip_initial
        self.seen: dict[str, str] = {}
        self.listed = False

    def _emit(self, msgs: list[Message]) -> None:
        if not msgs:
            return
        objs = [to_obj(self.rt, m) for m in msgs]
        if self.printer is not None:
            click.echo(self.printer.render(objs, now()), nl=False)
            return
        for obj in objs:
            echo_obj([obj], self.output)
            if self.output == "yaml":
                click.echo("---")

    @staticmethod
    def _key(msg: Message) -> str:
        meta = msg.metadata  # type: ignore[attr-defined]
        return f"{meta.namespace}/{meta.name}"

    def add(self, msg: Message) -> None:
        self.seen[self._key(msg)] = msg.metadata.resourceVersion  # type: ignore[attr-defined]
        self._emit([msg])

    update = add

    def delete(self, msg: Message) -> None:
        self.seen.pop(self._key(msg), None)
        self._emit([msg])

    def replace(self, msgs: Any, resource_version: str) -> None:
        msgs = list(msgs)
        if not self.listed:
            self.listed = True
            self.seen = {self._key(m): m.metadata.resourceVersion for m in msgs}  # type: ignore[attr-defined]
            if not self.skip_initial:
                self._emit(msgs)
            return
        changed = [m for m in msgs if self.seen.get(self._key(m)) != m.metadata.resourceVersion]  # type: ignore[attr-defined]
        self._emit(changed)
        self.seen = {self._key(m): m.metadata.resourceVersion for m in msgs}  # type: ignore[attr-defined]


async def _watch_print(client: Client, rt: ResourceType, namespace: str, selector: str, field_selector: str,
                       output: str, printer: Any, *, skip_initial: bool) -> None:
    """`get -w` through the informer machinery: a Reflector lists, then watches from the list's
    revision, re-watches from the last revision when the apiserver restarts and relists when that
    revision was compacted."""
    from kplane.client.informer import Reflector

    store = _PrintingStore(rt, output, printer, skip_initial)
    await Reflector(client, rt, store, namespace=namespace, label_selector=selector,
                    field_selector=field_selector).run()


def _row(cells: list[str], widths: list[int]) -> str:
    parts = []
    for i, cell in enumerate(cells):
        width = widths[i] if i < len(widths) else len(cell)
        parts.append(cell if i == len(cells) - 1 else cell.ljust(width + 3))
    return "".join(parts).rstrip()


# -- describe ----------------------------------------------------------------------------------


@cli.command()
@click.argument("args", nargs=-1, required=True)
@_ns_option
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-l", "--selector", default="")
@pass_ctx
@run
async def describe(ctx: Ctx, args: tuple[str, ...], all_namespaces: bool, selector: str) -> None:
    """Show details of a resource or group of resources, with their events."""
    from kplane.cli.describe import describe as render

    client = ctx.client()
    events_rt = resolve("events")
    first = True
    for rt, names in parse_targets(args):
        namespace = "" if all_namespaces else ctx.ns
        if names:
            objs = [to_obj(rt, await client.get(rt, n, namespace=namespace)) for n in names]
        else:
            items, _ = await client.list_all(rt, namespace=namespace, label_selector=selector)
            objs = [to_obj(rt, m) for m in items]
            if not objs:
                click.echo(f"No resources found in {namespace} namespace." if rt.namespaced and namespace
                           else "No resources found", err=True)
        for obj in objs:
            meta = obj["metadata"]
            fs = f"involvedObject.name={meta['name']},involvedObject.kind={rt.kind}"
            try:
                evs, _ = await client.list_all(events_rt, namespace=meta.get("namespace", "") or "default",
                                               field_selector=fs)
                events = [to_obj(events_rt, e) for e in evs]
            except api.APIError:
                events = []
            related = await _related(client, rt, obj)
            if not first:
                click.echo("\n\n", nl=False)
            first = False
            click.echo(render(obj, events, datetime.now().astimezone(), related=related), nl=False)


async def _related(client: Client, rt: ResourceType, obj: Obj) -> Any:
    """What kubectl describe looks up besides the object itself (pods of a node, a deployment's
    replica sets, a service's endpoints, ...)."""
    from kplane.cli.describe import Related

    meta = obj["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]

    async def listed(kind: str, **kw: str) -> list[Obj]:
        try:
            krt = resolve(kind)
            items, _ = await client.list_all(krt, **kw)
            return [to_obj(krt, m) for m in items]
        except api.APIError:
            return []

    if rt.kind == "Node":
        lease = None
        try:
            lease = to_obj(resolve("leases"), await client.get(resolve("leases"), name, namespace="kube-node-lease"))
        except api.APIError:
            pass
        return Related(pods=await listed("pods", field_selector=f"spec.nodeName={name}"), lease=lease)
    if rt.kind == "Deployment":
        return Related(replica_sets=await listed("replicasets", namespace=ns))
    if rt.kind in ("ReplicaSet", "ReplicationController", "DaemonSet", "StatefulSet", "Job"):
        return Related(pods=await listed("pods", namespace=ns))
    if rt.kind == "Service":
        try:
            return Related(endpoints=to_obj(resolve("endpoints"), await client.get(resolve("endpoints"), name,
                                                                                      namespace=ns)))
        except api.APIError:
            return Related()
    return None


# -- create / apply / replace ------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("-f", "--filename", multiple=True, help="files, directories or - (stdin)")
@click.option("-R", "--recursive", is_flag=True, help="process directories recursively")
@click.option("-o", "--output", default="", help="yaml|json|name")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@_ns_option
@click.pass_context
def create(cctx: click.Context, filename: tuple[str, ...], recursive: bool, output: str, dry_run: str) -> None:
    """Create resources from files or stdin (`kpctl create -f FILE`), or `kpctl create namespace NAME`."""
    if cctx.invoked_subcommand is not None:
        return
    if not filename:
        _fail("error: must specify one of -f and -k\n\nSee 'kpctl create -h' for help and examples")
    _create_files(cctx.find_object(Ctx), filename, recursive, output, dry_run)


@run
async def _create_files(ctx: Ctx, filename: tuple[str, ...], recursive: bool, output: str, dry_run: str) -> None:
    items = manifests.load(filename, recursive=recursive)
    client = ctx.client()
    failed = False
    explicit_ns = ctx.namespace is not None
    for m in items:
        try:
            rt = resolve_manifest(m)
            ns = manifest_namespace(rt, m.obj, ctx, explicit_ns)
            if dry_run == "client":
                created = m.obj
            else:
                created = to_obj(rt, await client.create(rt, m.obj, namespace=ns, dry_run=dry_run == "server"))
            name = created.get("metadata", {}).get("name", "")
            if output:
                echo_obj([created], output)
            else:
                suffix = f" ({dry_run} dry run)" if dry_run != "none" else ""
                click.echo(f"{kind_name(rt, name)} created{suffix}")
        except api.APIError as exc:
            failed = True
            click.echo(format_api_error(exc, ctx, f'error when creating "{m.source}": ' if not isinstance(
                exc, api.Invalid) else ""), err=True)
        except CLIError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


@create.command("namespace")
@click.argument("name")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="")
@pass_ctx
@run
async def create_namespace(ctx: Ctx, name: str, dry_run: str, output: str) -> None:
    """Create a namespace with the given name."""
    rt = resolve("namespaces")
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if dry_run != "client":
        obj = to_obj(rt, await ctx.client().create(rt, obj, dry_run=dry_run == "server"))
    if output:
        echo_obj([obj], output)
    else:
        click.echo(f"namespace/{name} created" + (f" ({dry_run} dry run)" if dry_run != "none" else ""))


@cli.command()
@click.option("-f", "--filename", multiple=True, required=True, help="files, directories or - (stdin)")
@click.option("-R", "--recursive", is_flag=True)
@click.option("-o", "--output", default="")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@_ns_option
@pass_ctx
@run
async def apply(ctx: Ctx, filename: tuple[str, ...], recursive: bool, output: str, dry_run: str) -> None:
    """Apply a configuration: create what is missing, three-way-merge what exists.

    The manifest is recorded in the kubectl.kubernetes.io/last-applied-configuration annotation,
    so a later apply can remove the fields you removed.
    """
    client = ctx.client()
    failed = False
    explicit_ns = ctx.namespace is not None
    for m in manifests.load(filename, recursive=recursive):
        action = "applying patch from"  # what failed, for the error message (kubectl's wording)
        try:
            rt = resolve_manifest(m)
            ns = manifest_namespace(rt, m.obj, ctx, explicit_ns)
            name = (m.obj.get("metadata") or {}).get("name", "")
            if not name:
                raise CLIError(f'error when retrieving current configuration of "{m.source}": resource name may not '
                               f"be empty")
            suffix = f" ({dry_run} dry run)" if dry_run != "none" else ""
            try:
                live = to_obj(rt, await client.get(rt, name, namespace=ns))
            except api.NotFound:
                action = "creating"
                body = apply_mod.with_last_applied(m.obj)
                result = body if dry_run == "client" else to_obj(
                    rt, await client.create(rt, body, namespace=ns, dry_run=dry_run == "server"))
                _report(rt, name, "created" + suffix, result, output)
                continue
            original_text = (live.get("metadata", {}).get("annotations") or {}).get(apply_mod.LAST_APPLIED)
            original = None
            if original_text:
                try:
                    original = json.loads(original_text)
                except json.JSONDecodeError:
                    original = None
            patch = apply_mod.three_way_patch(original, m.obj, live)
            if not patch:
                _report(rt, name, "unchanged", live, output)
                continue
            if dry_run == "client":
                _report(rt, name, "configured" + suffix, live, output)
                continue
            result = to_obj(rt, await client.patch(rt, name, patch, namespace=ns, patch_type="merge",
                                                   dry_run=dry_run == "server"))
            _report(rt, name, "configured" + suffix, result, output)
        except api.APIError as exc:
            failed = True
            click.echo(format_api_error(exc, ctx, f'error when {action} "{m.source}": '
                                        if not isinstance(exc, api.Invalid) else ""), err=True)
        except CLIError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


def _report(rt: ResourceType, name: str, what: str, obj: Obj, output: str) -> None:
    if output:
        echo_obj([obj], output)
    else:
        click.echo(f"{kind_name(rt, name)} {what}")


@cli.command()
@click.option("-f", "--filename", multiple=True, required=True)
@click.option("-R", "--recursive", is_flag=True)
@click.option("--force", is_flag=True, help="delete and re-create the object")
@click.option("-o", "--output", default="")
@_ns_option
@pass_ctx
@run
async def replace(ctx: Ctx, filename: tuple[str, ...], recursive: bool, force: bool, output: str) -> None:
    """Replace a resource by file name or stdin (the object must exist)."""
    client = ctx.client()
    failed = False
    for m in manifests.load(filename, recursive=recursive):
        try:
            rt = resolve_manifest(m)
            ns = manifest_namespace(rt, m.obj, ctx, ctx.namespace is not None)
            name = (m.obj.get("metadata") or {}).get("name", "")
            if force:
                try:
                    await client.delete(rt, name, namespace=ns, grace_period=0)
                    await _wait_deleted(client, rt, ns, name, 60)
                except api.NotFound:
                    pass
                result = to_obj(rt, await client.create(rt, m.obj, namespace=ns))
            else:
                result = to_obj(rt, await client.update(rt, m.obj, namespace=ns))
            _report(rt, name, "replaced", result, output)
        except api.APIError as exc:
            failed = True
            click.echo(format_api_error(exc, ctx, f'error when replacing "{m.source}": '
                                        if not isinstance(exc, api.Invalid) else ""), err=True)
        except CLIError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


# -- delete ------------------------------------------------------------------------------------


@cli.command()
@click.argument("args", nargs=-1)
@_ns_option
@click.option("-f", "--filename", multiple=True)
@click.option("-R", "--recursive", is_flag=True)
@click.option("-l", "--selector", default="")
@click.option("--field-selector", default="")
@click.option("--all", "delete_all", is_flag=True, help="delete every object of the type in the namespace")
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("--grace-period", type=int, default=-1, help="seconds for graceful termination (-1: the default)")
@click.option("--now", "now_", is_flag=True, help="same as --grace-period=1")
@click.option("--force", is_flag=True, help="with --grace-period=0: remove immediately without waiting")
@click.option("--wait/--no-wait", default=True, help="wait for the objects to be gone")
@click.option("--timeout", default="0", help="how long to wait (0: a week, like kubectl)")
@click.option("--ignore-not-found", is_flag=True)
@click.option("--cascade", type=click.Choice(["background", "orphan", "foreground"]), default="background")
@click.option("-o", "--output", default="")
@pass_ctx
@run
async def delete(ctx: Ctx, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool, selector: str,
                 field_selector: str, delete_all: bool, all_namespaces: bool, grace_period: int, now_: bool,
                 force: bool, wait: bool, timeout: str, ignore_not_found: bool, cascade: str, output: str) -> None:
    """Delete resources by name, file, label selector, or --all."""
    client = ctx.client()
    if now_:
        grace_period = 1
    if force and grace_period < 0:
        grace_period = 0
    if grace_period == 0 and not force:
        # kubectl: --grace-period=0 without --force means 1 (immediate but graceful)
        grace_period = 1
    targets: list[tuple[ResourceType, str, str]] = []
    if filename:
        for m in manifests.load(filename, recursive=recursive):
            rt = resolve_manifest(m)
            targets.append((rt, manifest_namespace(rt, m.obj, ctx, False), (m.obj.get("metadata") or {}).get("name", "")))
    else:
        parsed = parse_targets(args)
        for rt, names in parsed:
            if names:
                targets.extend((rt, ctx.ns if rt.namespaced else "", n) for n in names)
            elif selector or field_selector or delete_all:
                ns = "" if all_namespaces else ctx.ns
                items, _ = await client.list_all(rt, namespace=ns, label_selector=selector,
                                                 field_selector=field_selector)
                targets.extend((rt, m.metadata.namespace, m.metadata.name) for m in items)  # type: ignore[attr-defined]
            else:
                raise CLIError("resource(s) were provided, but no name was specified")
    if not targets:
        click.echo(f"No resources found in {ctx.ns} namespace." if not all_namespaces else "No resources found",
                   err=True)
        return
    policy = {"background": "Background", "orphan": "Orphan", "foreground": "Foreground"}[cascade]
    failed = False
    pending: list[tuple[ResourceType, str, str, str]] = []
    if force and grace_period == 0:
        click.echo("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
                   "terminated. The resource may continue to run on the cluster indefinitely.", err=True)
    for rt, ns, name in targets:
        try:
            obj, _ = await client.delete(rt, name, namespace=ns, grace_period=None if grace_period < 0 else grace_period,
                                         propagation_policy=policy)
            if output == "name":
                click.echo(kind_name(rt, name))
            else:
                click.echo(f'{rt.singular}{"." + rt.group if rt.group else ""} "{name}" '
                           f'{"force " if force and grace_period == 0 else ""}deleted'
                           + (f" from {ns} namespace" if ns and rt.namespaced else ""))
            pending.append((rt, ns, name, obj.metadata.uid))  # type: ignore[attr-defined]
        except api.NotFound as exc:
            if not ignore_not_found:
                failed = True
                click.echo(format_api_error(exc, ctx), err=True)
        except api.APIError as exc:
            failed = True
            click.echo(format_api_error(exc, ctx), err=True)
    if wait and pending:
        from kplane.durations import parse_duration

        limit = parse_duration(timeout) if timeout not in ("0", "") else 7 * 24 * 3600.0
        for rt, ns, name, uid in pending:
            if not await _wait_deleted(client, rt, ns, name, limit, uid):
                failed = True
                click.echo(f'error: timed out waiting for the condition on {rt.plural}/{name}', err=True)
    if failed:
        sys.exit(1)


async def _wait_deleted(client: Client, rt: ResourceType, ns: str, name: str, timeout: float, uid: str = "") -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            obj = await client.get(rt, name, namespace=ns)
            if uid and obj.metadata.uid != uid:  # type: ignore[attr-defined]
                return True  # gone, and something new took the name
        except api.NotFound:
            return True
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
    return False


# -- label / annotate / patch / edit -----------------------------------------------------------


def _parse_kv_changes(pairs: list[str], what: str) -> tuple[dict[str, str], list[str]]:
    sets: dict[str, str] = {}
    removes: list[str] = []
    for pair in pairs:
        if pair.endswith("-") and "=" not in pair:
            removes.append(pair[:-1])
        elif "=" in pair:
            k, _, v = pair.partition("=")
            if not k:
                raise CLIError(f"invalid {what} spec: {pair}")
            sets[k] = v
        else:
            raise CLIError(f"invalid {what} spec: {pair}; use KEY=VALUE to set or KEY- to remove")
    return sets, removes


async def _meta_map_command(ctx: Ctx, args: tuple[str, ...], field_name: str, verb: str, overwrite: bool,
                            selector: str, all_: bool, resource_version: str, dry_run: str) -> None:
    client = ctx.client()
    positional = list(args)
    if not positional:
        raise CLIError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    if "/" in positional[0]:
        type_names = [p for p in positional if "/" in p]
        changes = [p for p in positional if "/" not in p]
        targets = [(rt, n) for rt, names in parse_targets(tuple(type_names)) for n in names]
    else:
        rt = resolve(positional[0])
        rest = positional[1:]
        names = [p for p in rest if "=" not in p and not p.endswith("-")]
        changes = [p for p in rest if p not in names]
        if selector or all_:
            items, _ = await client.list_all(rt, namespace=ctx.ns, label_selector=selector)
            names = [m.metadata.name for m in items]  # type: ignore[attr-defined]
        targets = [(rt, n) for n in names]
    if not changes:
        raise CLIError(f"at least one {field_name[:-1]} update is required")
    sets, removes = _parse_kv_changes(changes, field_name[:-1])
    if field_name == "labels":
        from kplane.api.labels import validate_label_key, validate_label_value

        for k, v in sets.items():
            problems = validate_label_key(k) + validate_label_value(v)
            if problems:
                raise CLIError(f"invalid label value: \"{k}={v}\": {'; '.join(problems)}")
    failed = False
    for rt, name in targets:
        ns = ctx.ns if rt.namespaced else ""
        try:
            live = to_obj(rt, await client.get(rt, name, namespace=ns))
            current = dict(live.get("metadata", {}).get(field_name) or {})
            if not overwrite:
                for k, v in sets.items():
                    if k in current and current[k] != v:
                        raise CLIError(f"'{k}' already has a value ({current[k]}), and --overwrite is false")
            patch_map: dict[str, Any] = {k: v for k, v in sets.items()}
            patch_map.update({k: None for k in removes})
            patch: Obj = {"metadata": {field_name: patch_map}}
            if resource_version:
                patch["metadata"]["resourceVersion"] = resource_version
            after = dict(current)
            after.update(sets)
            for k in removes:
                after.pop(k, None)
            if after == current:
                click.echo(f"{kind_name(rt, name)} not {verb}")
                continue
            await client.patch(rt, name, patch, namespace=ns, patch_type="merge", dry_run=dry_run == "server")
            done_verb = "unlabeled" if field_name == "labels" and removes and not sets else verb
            click.echo(f"{kind_name(rt, name)} {done_verb}")
        except api.APIError as exc:
            failed = True
            click.echo(format_api_error(exc, ctx), err=True)
        except CLIError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("args", nargs=-1, required=True)
@_ns_option
@click.option("--overwrite", is_flag=True, help="allow changing existing labels")
@click.option("-l", "--selector", default="")
@click.option("--all", "all_", is_flag=True)
@click.option("--resource-version", default="")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none")
@pass_ctx
@run
async def label(ctx: Ctx, args: tuple[str, ...], overwrite: bool, selector: str, all_: bool,
                resource_version: str, dry_run: str) -> None:
    """Update the labels on a resource: `kpctl label pod web-1 tier=front env-`."""
    await _meta_map_command(ctx, args, "labels", "labeled", overwrite, selector, all_, resource_version, dry_run)


@cli.command()
@click.argument("args", nargs=-1, required=True)
@_ns_option
@click.option("--overwrite", is_flag=True, help="allow changing existing annotations")
@click.option("-l", "--selector", default="")
@click.option("--all", "all_", is_flag=True)
@click.option("--resource-version", default="")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none")
@pass_ctx
@run
async def annotate(ctx: Ctx, args: tuple[str, ...], overwrite: bool, selector: str, all_: bool,
                   resource_version: str, dry_run: str) -> None:
    """Update the annotations on a resource: `kpctl annotate deploy web note='hi'`."""
    await _meta_map_command(ctx, args, "annotations", "annotated", overwrite, selector, all_, resource_version,
                            dry_run)


@cli.command()
@click.argument("args", nargs=-1, required=True)
@_ns_option
@click.option("-p", "--patch", "patch_text", required=False, help="the patch (JSON or YAML)")
@click.option("--patch-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--type", "patch_type", type=click.Choice(["strategic", "merge", "json"]), default="strategic")
@click.option("--subresource", type=click.Choice(["", "status"]), default="")
@click.option("-o", "--output", default="")
@click.option("--dry-run", type=click.Choice(["none", "server"]), default="none")
@pass_ctx
@run
async def patch(ctx: Ctx, args: tuple[str, ...], patch_text: str | None, patch_file: str | None, patch_type: str,
                subresource: str, output: str, dry_run: str) -> None:
    """Update fields of a resource with a strategic merge, JSON merge or JSON patch."""
    import yaml

    if patch_file:
        with open(patch_file) as fh:
            patch_text = fh.read()
    if not patch_text:
        raise CLIError("must specify -p to patch")
    try:
        doc = json.loads(patch_text)
    except json.JSONDecodeError:
        try:
            doc = yaml.safe_load(patch_text)
        except yaml.YAMLError as exc:
            raise CLIError(f"unable to parse \"{patch_text}\": {exc}") from None
    client = ctx.client()
    targets = [(rt, n) for rt, names in parse_targets(args) for n in names]
    if not targets:
        raise CLIError("resource name may not be empty")
    for rt, name in targets:
        ns = ctx.ns if rt.namespaced else ""
        before = await client.get(rt, name, namespace=ns)
        after = await client.patch(rt, name, doc, namespace=ns, patch_type=patch_type, subresource=subresource,
                                   dry_run=dry_run == "server")
        if output:
            echo_obj([to_obj(rt, after)], output)
        elif before.metadata.resourceVersion == after.metadata.resourceVersion:  # type: ignore[attr-defined]
            click.echo(f"{kind_name(rt, name)} patched (no change)")
        else:
            click.echo(f"{kind_name(rt, name)} patched")


@cli.command()
@click.argument("args", nargs=-1, required=True)
@_ns_option
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
@pass_ctx
@run
async def edit(ctx: Ctx, args: tuple[str, ...], output: str) -> None:
    """Edit a resource in $KUBE_EDITOR / $EDITOR and update it (optimistically, by resourceVersion)."""
    import yaml

    from kplane.cli import printers

    client = ctx.client()
    targets = [(rt, n) for rt, names in parse_targets(args) for n in names]
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    for rt, name in targets:
        ns = ctx.ns if rt.namespaced else ""
        obj = to_obj(rt, await client.get(rt, name, namespace=ns))
        header = ("# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
                  "# and an empty file will abort the edit. If an error occurs while saving this file will be\n"
                  "# reopened with the relevant failures.\n#\n")
        text = printers.render_yaml(obj) if output == "yaml" else printers.render_json(obj)
        error_note = ""
        while True:
            with tempfile.NamedTemporaryFile("w", suffix=f".{output}", prefix=f"kpctl-edit-{name}-",
                                             delete=False) as fh:
                fh.write(header + error_note + text)
                path = fh.name
            rc = subprocess.call([*shlex.split(editor), path])
            with open(path) as fh:
                edited_text = fh.read()
            if rc != 0:
                raise CLIError(f"editor {editor!r} exited with status {rc}; your changes are in {path}")
            body = "\n".join(line for line in edited_text.splitlines() if not line.lstrip().startswith("#"))
            if not body.strip():
                click.echo("Edit cancelled, no changes made.")
                os.unlink(path)
                return
            try:
                edited = yaml.safe_load(body)
            except yaml.YAMLError as exc:
                raise CLIError(f"the edited file is not valid YAML: {exc}; your changes are in {path}") from None
            if edited == obj:
                click.echo("Edit cancelled, no changes made.")
                os.unlink(path)
                return
            try:
                await client.update(rt, edited, namespace=ns)
            except (api.Invalid, api.Conflict, api.BadRequest) as exc:
                click.echo(format_api_error(exc, ctx), err=True)
                if not sys.stdin.isatty():
                    raise CLIError(f"edit failed; your changes are in {path}") from None
                error_note = "".join(f"# {line}\n" for line in format_api_error(exc, ctx).splitlines()) + "#\n"
                text = body + "\n"
                os.unlink(path)
                continue
            os.unlink(path)
            click.echo(f"{kind_name(rt, name)} edited")
            break


# -- discovery ---------------------------------------------------------------------------------


@cli.command("api-resources")
@click.option("-o", "--output", type=click.Choice(["", "wide", "name"]), default="")
@click.option("--namespaced", type=click.BOOL, default=None)
@click.option("--api-group", default=None)
@click.option("--no-headers", is_flag=True)
@pass_ctx
@run
async def api_resources(ctx: Ctx, output: str, namespaced: bool | None, api_group: str | None,
                        no_headers: bool) -> None:
    """Print the supported API resources on the server."""
    resources = await ctx.client().discover()
    rows: list[list[str]] = []
    for res in sorted(resources, key=lambda x: (x.group, x.name)):
        if namespaced is not None and res.namespaced != namespaced:
            continue
        if api_group is not None and res.group != api_group:
            continue
        api_version = f"{res.group}/{res.version}" if res.group else res.version
        if output == "name":
            click.echo(f"{res.name}.{res.group}" if res.group else res.name)
            continue
        row = [res.name, ",".join(res.short_names), api_version, str(res.namespaced).lower(), res.kind]
        if output == "wide":
            row += [",".join(sorted(res.verbs)), ",".join(res.categories)]
        rows.append(row)
    if output == "name":
        return
    header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if output == "wide":
        header += ["VERBS", "CATEGORIES"]
    table = rows if no_headers else [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        click.echo(_row(r, widths))


@cli.command()
@click.argument("path")
@click.option("--recursive", is_flag=True, help="print the fields of fields")
@click.option("--api-version", default="")
def explain(path: str, recursive: bool, api_version: str) -> None:
    """Describe the fields of a resource: `kpctl explain deployment.spec.strategy`."""
    from kplane.cli.explain import ExplainError
    from kplane.cli.explain import explain as render

    try:
        click.echo(render(path, recursive=recursive, api_version=api_version), nl=False)
    except (ExplainError, UnknownResource) as exc:
        _fail(f"error: {exc}")


@cli.command()
@click.option("--client", "client_only", is_flag=True, help="client version only")
@click.option("-o", "--output", type=click.Choice(["", "yaml", "json"]), default="")
@pass_ctx
@run
async def version(ctx: Ctx, client_only: bool, output: str) -> None:
    """Print the client and server version information."""
    import platform

    client_info = {"gitVersion": f"v{kplane.__version__}", "platform": f"{platform.system().lower()}/"
                   f"{platform.machine()}", "pythonVersion": platform.python_version()}
    server_info: dict[str, str] | None = None
    err: api.APIError | None = None
    if not client_only:
        try:
            v = await ctx.client().version()
            server_info = {"gitVersion": v.git_version, "platform": v.platform, "pythonVersion": v.python_version,
                           "etcdVersion": v.etcd_version}
        except api.APIError as exc:
            err = exc
    if output:
        doc: dict[str, Any] = {"clientVersion": client_info}
        if server_info:
            doc["serverVersion"] = server_info
        from kplane.cli import printers

        click.echo(printers.render_json(doc) if output == "json" else printers.render_yaml(doc), nl=False)
    else:
        click.echo(f"Client Version: {client_info['gitVersion']}")
        if server_info:
            click.echo(f"Server Version: {server_info['gitVersion']} (etcd {server_info['etcdVersion']})")
    if err is not None:
        _fail(format_api_error(err, ctx))


# kubectl accepts `--flag=true|false` for every boolean flag; click flags take no value.
BOOL_FLAGS = frozenset({"wait", "overwrite", "all", "all-namespaces", "show-labels", "no-headers", "ignore-not-found",
                        "watch", "watch-only", "force", "now", "recursive", "namespaced", "client",
                        # logs / exec / attach / run (kplane/cli/streams.py)
                        "follow", "previous", "timestamps", "stdin", "tty", "quiet", "rm", "command", "attach",
                        # set image (kplane/cli/rollout.py)
                        "record"})
NEGATABLE = frozenset({"wait", "attach"})
# flags negatable only after a given command word: `rollout status --watch=false` (kplane/cli/rollout.py)
NEGATABLE_AFTER = {"rollout": frozenset({"watch"})}


def normalize_argv(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":  # what follows is a command line for a container (kpctl exec/run): passed as is
            out.extend(argv[i:])
            break
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if eq and name in BOOL_FLAGS and name != "namespaced" and value.lower() in ("true", "false"):
            if value.lower() == "true":
                out.append(f"--{name}")
            elif name in NEGATABLE or any(word in out and name in names for word, names in NEGATABLE_AFTER.items()):
                out.append(f"--no-{name}")
            continue
        out.append(arg)
    return out


# `python -m kplane.cli.kpctl` runs this file as `__main__`. The command modules below import
# `kplane.cli.kpctl` by name, which would load a second copy whose `cli` group and `Ctx` class are
# not the ones running; make the name refer to this running module so their commands register on
# the group that is actually invoked.
if __name__ == "__main__" and __spec__ is not None and __spec__.name == "kplane.cli.kpctl":
    sys.modules["kplane.cli.kpctl"] = sys.modules[__name__]

from kplane.cli import drain as _drain  # noqa: E402,F401  (registers drain)
from kplane.cli import nodes as _nodes  # noqa: E402,F401  (registers taint/cordon/uncordon)
from kplane.cli import rollout as _rollout  # noqa: E402,F401  (rollout/scale/set image/create deployment)
from kplane.cli import services as _services  # noqa: E402,F401  (registers expose, create service ...)
from kplane.cli import streams as _streams  # noqa: E402,F401  (registers logs/exec/attach/run)
from kplane.cli import workloads as _workloads  # noqa: E402,F401  (registers create job/cronjob)


def main() -> None:
    from kplane.logs import configure_logging

    # kpctl's own output is for people; library logs (reconnects, relists) only when they are errors
    configure_logging("kpctl", "console", os.environ.get("KPCTL_LOG_LEVEL", "error"))
    cli(args=normalize_argv(sys.argv[1:]), prog_name="kpctl")


from kplane.cli import events as _events  # noqa: E402  (registers `events`; sorts events, hides managedFields)

if __name__ == "__main__":
    main()
