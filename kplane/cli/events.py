"""`kpctl events`: kubectl's `events` command — the cluster's Events, oldest first — plus the two
small things `kpctl get` asks of this module: Events sorted by time, managedFields hidden.

`kubectl events` differs from `kubectl get events` in order (by when the event last happened:
`series.lastObservedTime`, else `lastTimestamp`, else `eventTime`), columns (LAST SEEN, TYPE,
REASON, OBJECT as `Kind/name`, MESSAGE; NAMESPACE first with -A) and LAST SEEN ("2m (x3 over
10m)" for repeated events). `--for KIND/NAME` narrows to one object (a field selector on
involvedObject), `--types Warning` to a type, `-w` keeps printing new ones.

Like kubectl ≥ 1.21, kpctl hides `metadata.managedFields` from what it prints unless
`--show-managed-fields` is given (kplane.cli.kpctl imports this module at its end and calls
`hide_managed_fields` from `to_obj`).
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from kplane.api.resources import ResourceType, resolve

Obj = dict[str, Any]
EVENT_TYPES = ("Normal", "Warning")

_show_managed_fields = False


def show_managed_fields(value: bool) -> None:
    global _show_managed_fields
    _show_managed_fields = bool(value)


def hide_managed_fields(obj: Obj) -> Obj:
    """`obj` without metadata.managedFields (unless --show-managed-fields was given)."""
    if not _show_managed_fields:
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
    return obj


def os_user() -> str:
    """The person running kpctl (sent to the apiserver, which records it with every write)."""
    try:
        return getpass.getuser()
    except Exception:
        return ""


def event_time(event: Obj) -> datetime:
    """When an Event last happened (kubectl's eventTime()): the series' last observation, else
    lastTimestamp, else eventTime, else firstTimestamp / creationTimestamp."""
    from kplane.cli.printers import parse_time

    series = event.get("series") if isinstance(event.get("series"), dict) else None
    for value in ((series or {}).get("lastObservedTime"), event.get("lastTimestamp"), event.get("eventTime"),
                  event.get("firstTimestamp"), (event.get("metadata") or {}).get("creationTimestamp")):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return datetime.min.replace(tzinfo=UTC)


def by_time(rt: ResourceType, objs: list[Obj]) -> list[Obj]:
    """Events oldest first (what `kpctl get events` prints); other kinds unchanged."""
    if rt.kind != "Event":
        return objs
    return sorted(objs, key=lambda e: (event_time(e), (e.get("metadata") or {}).get("name", "")))


def last_seen(event: Obj, now: datetime) -> str:
    """kubectl events' LAST SEEN: "45s", or "2m (x3 over 10m)" for a repeated event."""
    from kplane.cli.printers import format_age, parse_time

    first = format_age(parse_time(event.get("eventTime")) or parse_time(event.get("firstTimestamp")), now)
    series = event.get("series")
    if isinstance(series, dict) and series:
        return f"{format_age(parse_time(series.get('lastObservedTime')), now)} (x{series.get('count', 0)} over {first})"
    count = event.get("count") or 0
    if isinstance(count, int) and count > 1:
        return f"{format_age(parse_time(event.get('lastTimestamp')), now)} (x{count} over {first})"
    return first


def event_row(event: Obj, now: datetime, all_namespaces: bool) -> list[str]:
    involved = event.get("involvedObject") or {}
    row = [last_seen(event, now), str(event.get("type") or ""), str(event.get("reason") or ""),
           f"{involved.get('kind', '')}/{involved.get('name', '')}", str(event.get("message") or "").strip()]
    if all_namespaces:
        row.insert(0, str((event.get("metadata") or {}).get("namespace") or ""))
    return row


HEADER = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def _types_filter(types: Sequence[str]) -> set[str]:
    wanted: set[str] = set()
    for item in types:
        for t in item.split(","):
            t = t.strip()
            if not t:
                continue
            match = [e for e in EVENT_TYPES if e.lower() == t.lower()]
            if not match:
                from kplane.cli.kpctl import CLIError

                raise CLIError("valid --types are Normal or Warning")
            wanted.add(match[0])
    return wanted


def for_selector(target: str) -> str:
    """`--for pod/web` -> the involvedObject field selector (kubectl resolves the kind the same way)."""
    from kplane.cli.kpctl import CLIError

    type_name, _, name = target.partition("/")
    if not type_name or not name:
        raise CLIError(f"--for must be in resource/name form: {target!r}")
    rt = resolve(type_name)
    return f"involvedObject.kind={rt.kind},involvedObject.name={name}"


def _register() -> None:
    from kplane.cli.kpctl import Ctx, _ns_option, cli, echo_obj, pass_ctx, run, to_obj

    @cli.command("events")
    @_ns_option
    @click.option("-A", "--all-namespaces", is_flag=True, help="events of every namespace")
    @click.option("--for", "for_object", default="", metavar="KIND/NAME", help="only events about this object")
    @click.option("--types", multiple=True, help="only these types: Normal, Warning (comma-separated)")
    @click.option("-w", "--watch", is_flag=True, help="after listing, keep printing new events")
    @click.option("-o", "--output", default="", type=click.Choice(["", "json", "yaml"]), help="json|yaml")
    @click.option("--no-headers", is_flag=True, help="omit the header line")
    @pass_ctx
    @run
    async def events(ctx: Ctx, all_namespaces: bool, for_object: str, types: tuple[str, ...], watch: bool,
                     output: str, no_headers: bool) -> None:
        """List events, oldest first (kubectl events).

        \b
        kpctl events
        kpctl events --for pod/web-1
        kpctl events -A --types Warning
        kpctl events -w
        """
        from kplane.cli import printers

        rt = resolve("events")
        wanted = _types_filter(types)
        field_selector = for_selector(for_object) if for_object else ""
        namespace = "" if all_namespaces else ctx.ns
        client = ctx.client()
        items, rv = await client.list_all(rt, namespace=namespace, field_selector=field_selector)
        objs = by_time(rt, [to_obj(rt, m) for m in items])
        if wanted:
            objs = [e for e in objs if e.get("type") in wanted]
        if output and watch:
            for event in objs:
                echo_obj([event], output)
        elif output:
            echo_obj([{"apiVersion": "v1", "kind": "EventList", "items": objs, "metadata": {"resourceVersion": rv}}],
                     output)
        else:
            writer = printers.TabWriter()
            now = datetime.now(UTC)
            lines = [event_row(e, now, all_namespaces) for e in objs]
            header = (["NAMESPACE", *HEADER] if all_namespaces else HEADER)
            if lines or watch:
                click.echo(writer.format(lines if no_headers else [header, *lines]), nl=False)
            elif all_namespaces:
                click.echo("No events found.", err=True)
            else:
                click.echo(f"No events found in {namespace} namespace.", err=True)
        if not watch:
            return
        async for etype, msg in client.watch(rt, namespace=namespace, field_selector=field_selector,
                                             resource_version=rv):
            if etype not in ("ADDED", "MODIFIED"):
                continue
            event = to_obj(rt, msg)
            if wanted and event.get("type") not in wanted:
                continue
            if output:
                echo_obj([event], output)
            else:
                click.echo(writer.format([event_row(event, datetime.now(UTC), all_namespaces)]), nl=False)

    _ = events


_register()
