"""kpctl taint, cordon and uncordon: the node commands, with kubectl's behaviour and messages.

kplane.cli.kpctl imports this module at its very end (after everything it defines), and the
commands register themselves on `kpctl.cli` with `cli.add_command(...)`.
"""

from __future__ import annotations

import sys

import click

from kplane.api import errors as api
from kplane.api.resources import ResourceType, resolve
from kplane.cli.kpctl import (
    DRY_RUN_SUFFIX,
    CLIError,
    Ctx,
    Obj,
    _ns_option,
    cli,
    echo_obj,
    format_api_error,
    kind_name,
    now,
    parse_targets,
    pass_ctx,
    run,
    to_obj,
)
from kplane.client.client import retry_on_conflict


class NodeErrors(Exception):
    """Why one node could not be changed: one or more `error: ...` lines (kubectl aggregates them)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def usage_error(command: str, message: str) -> CLIError:
    """kubectl's UsageErrorf: the message, then a pointer to the command's help."""
    return CLIError(f"{message}\nSee 'kpctl {command} -h' for help and examples")


# -- taint -------------------------------------------------------------------------------------


def split_taint_args(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Split `TYPE NAME... SPEC...` into (resources, taint specs): a spec has '=' or ':' or ends in '-',
    and every resource must come before the first spec."""
    resources: list[str] = []
    specs: list[str] = []
    for arg in args:
        is_taint = "=" in arg or ":" in arg or arg.endswith("-")
        if is_taint:
            specs.append(arg)
        elif specs:
            raise CLIError(f"all resources must be specified before taint changes: {arg}")
        else:
            resources.append(arg)
    return resources, specs


def _go_taint(taint: Obj) -> str:
    """A Taint as Go's `%v` prints the struct, which is what kubectl's duplicate error shows."""
    return f"{{{taint.get('key', '')} {taint.get('value', '')} {taint.get('effect', '')} <nil>}}"


def parse_taint_specs(specs: list[str]) -> tuple[list[Obj], list[Obj]]:
    """(taints to add, taints to remove) from `key=value:Effect`, `key:Effect`, `key:Effect-`, `key-`;
    the same key and effect may be added only once per command."""
    from kplane.api.scheduling import parse_taint

    adds: list[Obj] = []
    removes: list[Obj] = []
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        try:
            taint, remove = parse_taint(spec)
        except ValueError as exc:
            raise usage_error("taint", str(exc)) from None
        if remove:
            removes.append(taint)
            continue
        key_effect = (taint["key"], taint["effect"])
        if key_effect in seen:
            raise usage_error("taint", f"duplicated taints with the same key and effect: {_go_taint(taint)}")
        seen.add(key_effect)
        adds.append(taint)
    return adds, removes


def check_add_remove_conflicts(adds: list[Obj], removes: list[Obj]) -> None:
    """A taint may not be both added and removed by one command (removing `key-` covers every effect)."""
    conflicts = [
        f"{rm['key']}={rm.get('effect', '')}"
        for add in adds
        for rm in removes
        if add["key"] == rm["key"] and (not rm.get("effect") or add["effect"] == rm["effect"])
    ]
    if conflicts:
        raise CLIError("can not both modify and remove the following taint(s) in the same command: "
                       + ", ".join(conflicts))


def reorganize_taints(node_name: str, old: list[Obj], adds: list[Obj], removes: list[Obj], overwrite: bool,
                      time_added: str) -> tuple[str, list[Obj]]:
    """kubectl's updateTaints: the node's new taint list and what happened to it (tainted, untainted or
    modified). Added taints come first, then the old ones they do not replace. NoExecute taints get
    `timeAdded` (kept when the very same taint was already there). Raises NodeErrors."""
    from kplane.api.scheduling import TAINT_EFFECT_NO_EXECUTE, match_taint, taint_to_string

    if not overwrite:
        existing = [add["key"] for add in adds for taint in old if match_taint(add, taint)]
        if existing:
            raise NodeErrors([f"node {node_name} already has {','.join(existing)} taint(s) with same effect(s) "
                              f"and --overwrite is false"])
    new: list[Obj] = []
    for add in adds:
        taint = dict(add)
        if taint["effect"] == TAINT_EFFECT_NO_EXECUTE:
            same = next((t for t in old if match_taint(t, taint) and t.get("value", "") == taint.get("value", "")
                         and t.get("timeAdded")), None)
            taint["timeAdded"] = same["timeAdded"] if same is not None else time_added
        new.append(taint)
    for taint in old:
        if not any(match_taint(t, taint) for t in new):
            new.append(taint)
    added = len(old) != len(new)
    errors: list[str] = []
    deleted = False
    for rm in removes:
        if rm.get("effect"):
            kept = [t for t in new if not match_taint(t, rm)]
        else:
            kept = [t for t in new if t.get("key", "") != rm["key"]]
        deleted = len(kept) != len(new)
        new = kept
        if not deleted:
            errors.append(f'taint "{taint_to_string(rm)}" not found')
    if errors:
        raise NodeErrors(errors)
    if (added and deleted) or overwrite:
        return "modified", new
    return ("tainted" if added else "untainted"), new


def _taint_targets(resources: list[str]) -> list[tuple[ResourceType, list[str]]]:
    """`nodes a b`, `no a`, `node/a node/b` or just `nodes` (with -l/--all); only nodes can be tainted."""
    targets = parse_targets(tuple(resources))
    for rt, _ in targets:
        if rt.kind != "Node":
            typed = resources[0].partition("/")[0].lower() if rt == targets[0][0] else rt.plural
            raise CLIError(f"invalid resource type {typed}, only node types are supported")
    return targets


@click.command()
@click.argument("args", nargs=-1, metavar="NODE NAME KEY_1=VAL_1:TAINT_EFFECT_1 ... KEY_N=VAL_N:TAINT_EFFECT_N")
@_ns_option
@click.option("--overwrite", is_flag=True,
              help="allow taints to be overwritten, otherwise reject taint updates that overwrite existing taints")
@click.option("-l", "--selector", default="", help="label selector of the nodes to taint, e.g. -l key1=value1")
@click.option("--all", "all_", is_flag=True, help="select all nodes in the cluster")
@click.option("--dry-run", type=click.Choice(["none", "server", "client"]), default="none",
              help="server: validate and show the result without persisting it; client: don't send anything")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=TEMPLATE")
@pass_ctx
@run
async def taint(ctx: Ctx, args: tuple[str, ...], overwrite: bool, selector: str, all_: bool, dry_run: str,
                output: str) -> None:
    """Update the taints on one or more nodes.

    \b
    A taint is key=value:Effect (the value is optional: key:Effect); the effect is NoSchedule,
    PreferNoSchedule or NoExecute. `key:Effect-` removes the taint with that key and effect,
    `key-` every taint with that key.

    \b
    kpctl taint nodes foo dedicated=special-user:NoSchedule
    kpctl taint nodes foo dedicated:NoSchedule-
    kpctl taint nodes foo dedicated-
    kpctl taint node -l myLabel=X dedicated=foo:PreferNoSchedule
    kpctl taint nodes foo bar:NoSchedule
    """
    resources, specs = split_taint_args(args)
    if not resources:
        raise CLIError("one or more resources must be specified as <resource> <name>")
    if not specs:
        raise CLIError("at least one taint update is required")
    adds, removes = parse_taint_specs(specs)
    targets = _taint_targets(resources)
    check_add_remove_conflicts(adds, removes)
    names = [name for _, target_names in targets for name in target_names]
    if all_ and selector:
        raise CLIError("setting 'all' parameter with a non empty selector is prohibited")
    if not all_ and not selector and not names:
        raise CLIError("at least one resource name must be specified since 'all' parameter is not set")
    if names and (all_ or selector):
        raise CLIError("node names cannot be given together with --selector or --all")
    if output and output not in ("yaml", "json", "name") and not output.startswith(("jsonpath=",
                                                                                   "jsonpath-as-json=")):
        raise CLIError(f'unable to match a printer suitable for the output format "{output}", allowed formats '
                       f"are: json,jsonpath,name,yaml")

    client = ctx.client()
    rt = targets[0][0]
    if not names:
        items, _ = await client.list_all(rt, label_selector=selector)
        names = [item.metadata.name for item in items]  # type: ignore[attr-defined]
    errors: list[str] = []
    for name in names:

        async def attempt(name: str = name) -> tuple[str, Obj]:
            # Read, compute, write with the read resourceVersion as precondition: a concurrent
            # change makes the patch a Conflict and retry_on_conflict starts over from a fresh read.
            node = to_obj(rt, await client.get(rt, name))
            spec = node.get("spec") or {}
            operation, new_taints = reorganize_taints(name, list(spec.get("taints") or []), adds, removes,
                                                      overwrite, now().strftime("%Y-%m-%dT%H:%M:%SZ"))
            if dry_run == "client":
                node.setdefault("spec", {})["taints"] = new_taints
                return operation, node
            patch: Obj = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                          "spec": {"taints": new_taints or None}}
            patched = await client.patch(rt, name, patch, patch_type="merge", dry_run=dry_run == "server")
            return operation, to_obj(rt, patched)

        try:
            operation, result = await retry_on_conflict(attempt)
        except NodeErrors as exc:
            errors.extend(f"error: {message}" for message in exc.messages)
            continue
        except api.APIError as exc:
            errors.append(format_api_error(exc, ctx))
            continue
        if output:
            echo_obj([result], output)
        else:
            click.echo(f"{kind_name(rt, name)} {operation}{DRY_RUN_SUFFIX[dry_run]}")
    for line in errors:
        click.echo(line, err=True)
    if errors:
        sys.exit(1)


# -- cordon / uncordon -------------------------------------------------------------------------


async def _set_schedulable(ctx: Ctx, args: tuple[str, ...], selector: str, dry_run: str, cordon: bool) -> None:
    """Set (cordon) or clear (uncordon) spec.unschedulable on the named or selected nodes."""
    verb = "cordon" if cordon else "uncordon"
    if not args and not selector:
        raise usage_error(verb, f"USAGE: {verb} NODE [flags]")
    if args and selector:
        raise usage_error(verb, "cannot specify both a node name and a --selector option")
    client = ctx.client()
    node_rt = resolve("nodes")
    # Everything is read first, so a missing node fails the command before any node changes.
    objs: list[tuple[ResourceType, Obj]] = []
    if selector:
        items, _ = await client.list_all(node_rt, label_selector=selector)
        objs = [(node_rt, to_obj(node_rt, item)) for item in items]
    for arg in args:
        rt, name = node_rt, arg
        if "/" in arg:
            type_name, _, name = arg.partition("/")
            rt = resolve(type_name)
            if not name:
                raise CLIError(f'arguments in resource/name form must have a single resource and name: "{arg}"')
        namespace = ctx.ns if rt.namespaced else ""
        objs.append((rt, to_obj(rt, await client.get(rt, name, namespace=namespace))))
    suffix = DRY_RUN_SUFFIX[dry_run]
    failed = False
    for rt, obj in objs:
        name = obj["metadata"]["name"]
        if rt.kind != "Node":
            click.echo(f"{kind_name(rt, name)} skipped{suffix}")
            continue
        if ((obj.get("spec") or {}).get("unschedulable") is True) == cordon:
            click.echo(f"{kind_name(rt, name)} already {verb}ed{suffix}")
            continue
        if dry_run != "client":
            patch: Obj = {"spec": {"unschedulable": True if cordon else None}}
            try:
                await client.patch(rt, name, patch, patch_type="merge", dry_run=dry_run == "server")
            except api.APIError as exc:
                failed = True
                click.echo(f'error: unable to {verb} node "{name}": {exc.message}', err=True)
                continue
        click.echo(f"{kind_name(rt, name)} {verb}ed{suffix}")
    if failed:
        sys.exit(1)


def _schedulable_command(cordon: bool) -> click.Command:
    verb = "cordon" if cordon else "uncordon"
    help_text = (f"Mark node as {'unschedulable' if cordon else 'schedulable'}.\n\n"
                 f"\b\nkpctl {verb} foo\nkpctl {verb} -l pool=spot")

    @click.command(verb, help=help_text)
    @click.argument("nodes", nargs=-1, metavar="NODE")
    @_ns_option
    @click.option("-l", "--selector", default="", help="label selector of the nodes, e.g. -l key1=value1")
    @click.option("--dry-run", type=click.Choice(["none", "server", "client"]), default="none",
                  help="server: validate without persisting; client: don't send anything")
    @pass_ctx
    @run
    async def command(ctx: Ctx, nodes: tuple[str, ...], selector: str, dry_run: str) -> None:
        await _set_schedulable(ctx, nodes, selector, dry_run, cordon)

    return command


cordon = _schedulable_command(cordon=True)
uncordon = _schedulable_command(cordon=False)

for _command in (taint, cordon, uncordon):
    cli.add_command(_command)
