"""kpctl drain: cordon a node, then evict its pods, with kubectl's filters, messages and exit codes.

The pod filters are kubectl's (k8s.io/kubectl/pkg/drain), run in its order and stopping at the
first that keeps a pod: pods already being deleted are skipped; DaemonSet pods are refused
(``--ignore-daemonsets``: skipped with a warning; one whose DaemonSet is gone is evicted with
``--force``); mirror pods are skipped; pods with emptyDir volumes are refused
(``--delete-emptydir-data``); pods without a controller are refused (``--force``). Finished pods
are always evicted. As in kubectl, a pod's result is the *last* filter it went through, so the
emptyDir warning of a pod that has a controller is not shown (kubectl's own TODO).

Refusals print what kubectl prints — including its doubled "cannot delete cannot delete Pods
that declare no controller" — and exit 1. Evictions go through the pods/eviction subresource
concurrently; each evicted pod is waited for until it is gone (``pod/x evicted``), then
``node/x drained``. ``--timeout`` (0: forever) bounds the whole drain.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click

from kplane.api import errors as api
from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.cli.kpctl import DRY_RUN_SUFFIX, CLIError, Ctx, cli, pass_ctx, run
from kplane.cli.nodes import _set_schedulable, usage_error
from kplane.client.client import Client
from kplane.durations import parse_duration

PODS, NODES, DAEMONSETS = resolve("pods"), resolve("nodes"), resolve("daemonsets")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"

OKAY, SKIP, WARNING, ERROR = "Okay", "Skip", "Warning", "Error"


@dataclass(frozen=True)
class DeleteStatus:
    delete: bool
    reason: str = OKAY
    message: str = ""


@dataclass(frozen=True)
class DrainFlags:
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    force: bool = False


def _finished(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def _controller_ref(pod: core_pb2.Pod) -> object | None:
    return next((ref for ref in pod.metadata.ownerReferences if ref.controller), None)


def pod_delete_status(pod: core_pb2.Pod, flags: DrainFlags, *,
                      daemonset_exists: Callable[[str, str], str | None]) -> DeleteStatus:
    """kubectl's filters in order, stopping at the first that keeps the pod. ``daemonset_exists``
    (namespace, name) returns None when the DaemonSet exists, else the error reading it."""
    status = DeleteStatus(True)
    filters: list[Callable[[], DeleteStatus]] = [
        lambda: DeleteStatus(False, SKIP) if pod.metadata.HasField("deletionTimestamp") else DeleteStatus(True),
        lambda: _daemonset_filter(pod, flags, daemonset_exists),
        lambda: DeleteStatus(False, SKIP) if MIRROR_ANNOTATION in pod.metadata.annotations else DeleteStatus(True),
        lambda: _local_storage_filter(pod, flags),
        lambda: _unreplicated_filter(pod, flags),
    ]
    for check in filters:
        status = check()
        if not status.delete:
            break
    return status


def _daemonset_filter(pod: core_pb2.Pod, flags: DrainFlags,
                      daemonset_exists: Callable[[str, str], str | None]) -> DeleteStatus:
    ref = next((r for r in pod.metadata.ownerReferences if r.controller), None)
    if ref is None or ref.kind != "DaemonSet" or _finished(pod):
        return DeleteStatus(True)
    error = daemonset_exists(pod.metadata.namespace, ref.name)
    if error is not None:
        if error.endswith("not found") and flags.force:
            return DeleteStatus(True, WARNING, error)  # an orphan: --force removes it
        return DeleteStatus(False, ERROR, error)
    if not flags.ignore_daemonsets:
        return DeleteStatus(False, ERROR, DAEMONSET_FATAL)
    return DeleteStatus(False, WARNING, DAEMONSET_WARNING)


def _local_storage_filter(pod: core_pb2.Pod, flags: DrainFlags) -> DeleteStatus:
    if not any(v.HasField("emptyDir") for v in pod.spec.volumes) or _finished(pod):
        return DeleteStatus(True)
    if not flags.delete_emptydir_data:
        return DeleteStatus(False, ERROR, LOCAL_STORAGE_FATAL)
    return DeleteStatus(True, WARNING, LOCAL_STORAGE_WARNING)


def _unreplicated_filter(pod: core_pb2.Pod, flags: DrainFlags) -> DeleteStatus:
    if _finished(pod) or _controller_ref(pod) is not None:
        return DeleteStatus(True)
    if flags.force:
        return DeleteStatus(True, WARNING, UNMANAGED_WARNING)
    return DeleteStatus(False, ERROR, UNMANAGED_FATAL)


def _grouped(items: Sequence[tuple[core_pb2.Pod, DeleteStatus]], reason: str) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for pod, status in items:
        if status.reason == reason:
            groups.setdefault(status.message or "unexpected error", []).append(
                f"{pod.metadata.namespace}/{pod.metadata.name}")
    return sorted(groups.items())  # kubectl ranges over a map (random order); sorted here


def deletion_errors(items: Sequence[tuple[core_pb2.Pod, DeleteStatus]]) -> list[str]:
    """PodDeleteList.errors: one "cannot delete <why>: ns/a, ns/b" per reason."""
    return [f"cannot delete {why}: {', '.join(pods)}" for why, pods in _grouped(items, ERROR)]


def deletion_warnings(items: Sequence[tuple[core_pb2.Pod, DeleteStatus]]) -> str:
    """PodDeleteList.Warnings: "<why>: ns/a, ns/b; <why>: ..." ("" when none)."""
    return "; ".join(f"{why}: {', '.join(pods)}" for why, pods in _grouped(items, WARNING))


def aggregate_message(errors: Sequence[str]) -> str:
    """utilerrors.Aggregate.Error(): one message as is, several as "[a, b]"."""
    return errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"


def go_duration(seconds: float) -> str:
    """time.Duration.String for whole and fractional seconds: 90 -> "1m30s", 5 -> "5s"."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


class DrainError(Exception):
    """The node could not be drained: ``message`` is the error kubectl reports; ``lines`` what
    its final CheckErr prints (one line per aggregated error)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(aggregate_message(errors))
        self.errors = errors


async def _pods_for_deletion(client: Client, node: str, pod_selector: str, flags: DrainFlags
                             ) -> list[tuple[core_pb2.Pod, DeleteStatus]]:
    items, _ = await client.list_all(PODS, field_selector=f"spec.nodeName={node}", label_selector=pod_selector)
    daemonsets: dict[tuple[str, str], str | None] = {}
    for pod in items:
        assert isinstance(pod, core_pb2.Pod)
        ref = _controller_ref(pod)
        if ref is not None and getattr(ref, "kind", "") == "DaemonSet":
            key = (pod.metadata.namespace, str(getattr(ref, "name", "")))
            if key not in daemonsets:
                try:
                    await client.get(DAEMONSETS, key[1], namespace=key[0])
                    daemonsets[key] = None
                except api.NotFound:
                    daemonsets[key] = f'daemonsets.apps "{key[1]}" not found'
                except api.APIError as exc:
                    daemonsets[key] = exc.message
    out = []
    for pod in items:
        assert isinstance(pod, core_pb2.Pod)
        status = pod_delete_status(pod, flags, daemonset_exists=lambda ns, name: daemonsets.get((ns, name)))
        out.append((pod, status))
    return out


async def _evict_and_wait(client: Client, pod: core_pb2.Pod, *, grace: int | None, dry_run: str,
                          deadline: float | None, timeout_text: str) -> str | None:
    """Evict one pod and wait until it is gone; returns kubectl's error text, or None."""
    ns, name = pod.metadata.namespace, pod.metadata.name
    while True:
        click.echo(f"evicting pod {ns}/{name}" + (" (server dry run)" if dry_run == "server" else ""))
        if deadline is not None and time.monotonic() > deadline:
            return f'error when evicting pods/"{name}" -n "{ns}": global timeout reached: {timeout_text}'
        try:
            await client.evict(ns, name, grace_period=grace, dry_run=dry_run == "server")
            break
        except api.NotFound:
            return None
        except api.APIError as exc:
            if isinstance(exc, api.TooManyRequests):  # 429: a PodDisruptionBudget forbids it for now
                click.echo(f'error when evicting pods/"{name}" -n "{ns}" (will retry after 5s): {exc.message}',
                           err=True)
                await asyncio.sleep(5)
                continue
            return f'error when evicting pods/"{name}" -n "{ns}": {exc.message}'
    if dry_run == "server":
        return None
    while True:
        try:
            current = await client.get(PODS, name, namespace=ns)
            gone = current.metadata.uid != pod.metadata.uid  # type: ignore[attr-defined]
        except api.NotFound:
            gone = True
        if gone:
            click.echo(f"pod/{name} evicted")
            return None
        if deadline is not None and time.monotonic() > deadline:
            return (f'error when waiting for pod "{name}" in namespace "{ns}" to terminate: '
                    f"global timeout reached: {timeout_text}")
        await asyncio.sleep(1.0)


async def drain_node(client: Client, node: str, *, flags: DrainFlags, pod_selector: str, grace: int | None,
                     timeout: float, dry_run: str) -> None:
    """deleteOrEvictPodsSimple: refuse, warn, evict, wait. Raises DrainError."""
    items = await _pods_for_deletion(client, node, pod_selector, flags)
    errors = deletion_errors(items)
    if errors:
        raise DrainError(errors)
    warnings = deletion_warnings(items)
    if warnings:
        click.echo(f"Warning: {warnings}", err=True)
    pods = [pod for pod, status in items if status.delete]
    if dry_run == "client":
        for pod in pods:
            click.echo(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name} (dry run)")
        return
    deadline = time.monotonic() + timeout if timeout > 0 else None
    timeout_text = go_duration(timeout)
    results = await asyncio.gather(*(_evict_and_wait(client, pod, grace=grace, dry_run=dry_run, deadline=deadline,
                                                     timeout_text=timeout_text) for pod in pods))
    failures = [r for r in results if r is not None]
    if failures:
        pending, _ = await client.list_all(PODS, field_selector=f"spec.nodeName={node}", label_selector=pod_selector)
        left = [p for p in pending if isinstance(p, core_pb2.Pod) and MIRROR_ANNOTATION not in p.metadata.annotations]
        if left:
            click.echo(f'There are pending pods in node "{node}" when an error occurred: '
                       f"{aggregate_message(failures)}", err=True)
            for pod in left:
                click.echo(f"pod/{pod.metadata.name}", err=True)
        raise DrainError(failures)


@click.command(help="Drain node in preparation for maintenance.\n\nThe node is cordoned, then every pod "
               "on it is evicted (the pods/eviction subresource) and waited for, except mirror pods; "
               "DaemonSet pods, pods with emptyDir volumes and pods without a controller stop the drain "
               "unless --ignore-daemonsets, --delete-emptydir-data or --force says otherwise.\n\n"
               "\b\nkpctl drain node-1 --ignore-daemonsets\nkpctl drain node-1 --force --grace-period=5 --timeout=60s")
@click.argument("nodes", nargs=-1, metavar="NODE")
@click.option("--ignore-daemonsets", is_flag=True, help="ignore DaemonSet-managed pods")
@click.option("--delete-emptydir-data", is_flag=True,
              help="continue even if there are pods using emptyDir (local data that will be deleted)")
@click.option("--force", is_flag=True,
              help="continue even if there are pods that do not declare a controller")
@click.option("--grace-period", type=int, default=-1,
              help="seconds each pod gets to terminate; negative: the pod's own terminationGracePeriodSeconds")
@click.option("--timeout", "timeout_text", default="0s", help="give up after this long (0: wait forever)")
@click.option("--pod-selector", default="", help="label selector to filter pods on the node")
@click.option("-l", "--selector", default="", help="label selector of the nodes to drain")
@click.option("--dry-run", type=click.Choice(["none", "server", "client"]), default="none",
              help="server: evict with dry run; client: only print what would be evicted")
@pass_ctx
@run
async def drain(ctx: Ctx, nodes: tuple[str, ...], ignore_daemonsets: bool, delete_emptydir_data: bool, force: bool,
                grace_period: int, timeout_text: str, pod_selector: str, selector: str, dry_run: str) -> None:
    if not nodes and not selector:
        raise usage_error("drain", "USAGE: drain NODE [flags]")
    if len(nodes) > 1:
        raise usage_error("drain", f"USAGE: drain NODE [flags]: only one node name may be given, got {len(nodes)}")
    try:
        timeout = parse_duration(timeout_text)
    except ValueError as exc:
        raise CLIError(f'invalid argument "{timeout_text}" for "--timeout" flag: {exc}') from None
    if pod_selector:
        from kplane.api.labels import parse_selector

        try:
            parse_selector(pod_selector)
        except ValueError as exc:
            raise CLIError(f"invalid label selector for --pod-selector: {exc}") from None
    client = ctx.client()
    names = list(nodes)
    if selector:
        found, _ = await client.list_all(NODES, label_selector=selector)
        names = [n.metadata.name for n in found]  # type: ignore[attr-defined]
        if not names:
            raise CLIError(f"no nodes found matching the selector {selector!r}")
    await _set_schedulable(ctx, tuple(names), "", dry_run, cordon=True)
    flags = DrainFlags(ignore_daemonsets=ignore_daemonsets, delete_emptydir_data=delete_emptydir_data, force=force)
    grace = grace_period if grace_period >= 0 else None
    suffix = DRY_RUN_SUFFIX[dry_run]
    for i, name in enumerate(names):
        try:
            await drain_node(client, name, flags=flags, pod_selector=pod_selector, grace=grace, timeout=timeout,
                             dry_run=dry_run)
        except DrainError as exc:
            click.echo(f'error: unable to drain node "{name}" due to error: {exc}, continuing command...', err=True)
            click.echo("There are pending nodes to be drained:", err=True)
            for pending in names[i:]:
                click.echo(f" {pending}", err=True)
            for line in exc.errors:
                click.echo(line, err=True)
            sys.exit(1)
        click.echo(f"node/{name} drained{suffix}")


cli.add_command(drain)
