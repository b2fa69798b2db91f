"""`kplane history` and `kplane events`: an object's revisions, and the cluster's change stream.

Both read through the apiserver (the History and Changes RPCs, apiserver/history.py) and print
as they receive, so an object with thousands of revisions or a stream of a hundred thousand
changes is never held in memory: `history` keeps the previous revision (to diff against),
`events` nothing.

    kplane history pod/web -n prod            every retained revision, oldest first, with diffs
    kplane history pod/web --at 1234          the object as it was at revision 1234
    kplane history pod/web --show-deleted     also earlier incarnations / an object now deleted
    kplane events --since-revision 1200 -f    every change since 1200, then live
    kplane events --kind pods -l app=web      one kind, one label selector

`kplane status` also asks the apiserver for the retention (`retention_line`).

This module is imported by `kplane` at start-up, which must not import gRPC (it forks its
components later): everything touching the client is imported inside the commands.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from kplane.cli import changes as render

if TYPE_CHECKING:
    from kplane.api.resources import ResourceType
    from kplane.client.client import Client

T = TypeVar("T")


class CLIError(Exception):
    """Printed as `error: <message>`, exit code 1."""


@dataclass
class Conn:
    server: str | None
    config_path: str | None
    namespace: str | None
    timeout: float
    _default_ns: str = "default"

    def client(self) -> Client:
        from pathlib import Path

        from kplane.cli.events import os_user
        from kplane.client.client import Client
        from kplane.config import ConfigError, load_config

        if self.server:
            servers = [self.server]
        else:
            try:
                cfg = load_config(Path(self.config_path) if self.config_path else None)
            except ConfigError as exc:
                raise CLIError(str(exc)) from None
            servers = cfg.servers
            self._default_ns = cfg.namespace or "default"
        return Client(servers, identity="kplane", user=os_user(), timeout=self.timeout)

    @property
    def ns(self) -> str:
        return self.namespace or self._default_ns


def connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--server/-s, --kplane-config, -n, --request-timeout: how kpctl finds the cluster."""
    f = click.option("--request-timeout", default=30.0, type=float, show_default=True,
                     help="seconds to wait for each request")(f)
    f = click.option("-n", "--namespace", default=None,
                     help="history: the object's namespace (default: the config's); events: only this one")(f)
    f = click.option("--kplane-config", "config_path", envvar="KPLANE_CONFIG",
                     help="client config file (default ~/.kplane/config)")(f)
    f = click.option("--server", "-s", envvar="KPLANE_SERVER", help="apiserver address HOST:PORT")(f)
    return f


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def run(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T | None]:
    """Run an async command; API errors, unknown kinds and bad config become `error: ...`, exit 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T | None:
        from kplane.api import errors as api
        from kplane.api.resources import UnknownResource

        try:
            return asyncio.run(fn(*args, **kwargs))
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:  # `kplane events | head`
            sys.stderr.close()
            sys.exit(0)
        except api.Unavailable as exc:
            _fail(f"error: cannot reach the apiserver: {exc.message}")
        except api.APIError as exc:
            _fail(f"error: {exc.message}")
        except (CLIError, UnknownResource) as exc:
            _fail(f"error: {str(exc).strip(chr(39))}")
        return None

    return wrapper


def parse_target(target: tuple[str, ...]) -> tuple[ResourceType, str]:
    """`pod/web` or `pod web` -> (pods, "web")."""
    from kplane.api.resources import resolve

    if len(target) == 1 and "/" in target[0]:
        kind, _, name = target[0].partition("/")
    elif len(target) == 2 and "/" not in target[0]:
        kind, name = target
    else:
        raise CLIError(f"expected KIND/NAME (or KIND NAME), e.g. pod/web; got {' '.join(target)!r}")
    if not kind or not name:
        raise CLIError(f"expected KIND/NAME, e.g. pod/web; got {'/'.join(target)!r}")
    return resolve(kind), name


def _use_color(choice: str) -> bool:
    return choice == "always" or (choice == "auto" and sys.stdout.isatty())


def _writer_json(writer: Any) -> dict[str, Any] | None:
    if not writer.manager:
        return None
    out = {"manager": writer.manager, "verb": writer.verb}
    if writer.user:
        out["user"] = writer.user
    if writer.subresource:
        out["subresource"] = writer.subresource
    return out


def _object(any_msg: Any) -> dict[str, Any]:
    from kplane.api.resources import object_to_dict, unpack

    rt, msg = unpack(any_msg)
    return object_to_dict(rt, msg)


class ChangeDecoder:
    """Decodes a Change's object and previous state, reusing the last decoded state of each
    object: a change's previous state is byte for byte the object of the change before it, so a
    stream of changes decodes each state once, not twice. Bounded: `size` objects remembered."""

    def __init__(self, size: int = 4096) -> None:
        from collections import OrderedDict

        self.size = size
        self._last: OrderedDict[tuple[str, str, str], tuple[bytes, dict[str, Any]]] = OrderedDict()

    def pair(self, change: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(object, previous or None); the dicts are shared: read them, never change them."""
        ref = change.ref
        key = (ref.resource, ref.namespace, ref.name)
        cached = self._last.get(key)
        prev: dict[str, Any] | None = None
        if change.previous.type_url:
            value = change.previous.value
            prev = cached[1] if cached is not None and cached[0] == value else _object(change.previous)
        if change.type == "DELETED" and prev is not None:
            self._last.pop(key, None)
            return prev, prev
        obj = _object(change.object)
        self._last[key] = (change.object.value, obj)
        self._last.move_to_end(key)
        if len(self._last) > self.size:
            self._last.popitem(last=False)
        return obj, prev


# -- kplane history -------------------------------------------------------------------------------


@click.command("history")
@click.argument("target", nargs=-1, required=True)
@connection_options
@click.option("-o", "--output", type=click.Choice(["", "json", "yaml"]), default="",
              help="json: one JSON object per revision (per line); yaml: with --at, the object")
@click.option("--show-deleted", is_flag=True,
              help="also earlier incarnations of the name, and an object that no longer exists")
@click.option("--at", "at_revision", type=click.IntRange(min=1), default=None, metavar="REVISION",
              help="show the object as it was at this revision")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
@click.option("--show-managed-fields", is_flag=True, help="keep metadata.managedFields in objects and diffs")
@run
async def history(target: tuple[str, ...], server: str | None, config_path: str | None, namespace: str | None,
                  request_timeout: float, output: str, show_deleted: bool, at_revision: int | None, color: str,
                  show_managed_fields: bool) -> None:
    """Every retained revision of one object, oldest first: revision, time, writer, verb and a diff.

    \b
    kplane history pod/web
    kplane history deploy/web -n prod -o json
    kplane history pod/web --show-deleted
    kplane history pod/web --at 1234
    """
    from kplane.api import errors as api

    rt, name = parse_target(target)
    conn = Conn(server, config_path, namespace, request_timeout)
    async with conn.client() as client:
        ns = conn.ns if rt.namespaced else ""
        stream = client.history(rt, name, namespace=ns, include_deleted=show_deleted, at_revision=at_revision or 0)
        try:
            if at_revision:
                await _print_at(stream, output, show_managed_fields, at_revision)
            else:
                await _print_history(stream, rt, ns, name, output, _use_color(color), show_managed_fields)
        except api.NotFound as exc:
            if show_deleted or at_revision:
                raise
            raise CLIError(f"{exc.message}; if it has been deleted, add --show-deleted") from None


async def _print_at(stream: Any, output: str, keep_managed: bool, at: int) -> None:
    from kplane.cli.printers import render_json

    async for entry in stream:
        obj = render.clean(_object(entry.object), keep_managed_fields=keep_managed)
        obj["metadata"]["resourceVersion"] = str(entry.revision)
        if output == "json":
            click.echo(render_json(obj), nl=False)
            continue
        writer = entry.writer
        moment = render.time_of(writer.time.seconds, writer.time.nanos)
        by = f" by {render.writer_name(writer.manager, writer.user)} ({render.verb_text(writer.verb, writer.subresource)}" \
             f", {render.iso_millis(moment)})" if writer.manager else ""
        click.echo(f"# at revision {at}: last changed at revision {entry.revision}{by}")
        click.echo(render.to_yaml(obj), nl=False)


async def _print_history(stream: Any, rt: ResourceType, ns: str, name: str, output: str, color: bool,
                         keep_managed: bool) -> None:
    previous: list[str] | None = None  # the previous revision's YAML lines (each is rendered once)
    first = True
    count = 0
    async for entry in stream:
        count += 1
        obj = _object(entry.object)
        writer = entry.writer
        moment = render.time_of(writer.time.seconds, writer.time.nanos)
        if output == "json":
            click.echo(json.dumps({"revision": entry.revision, "type": entry.type, "time": render.iso_millis(moment),
                                   "writer": _writer_json(writer), "object": obj}, separators=(",", ":")))
            continue
        if output == "yaml":
            click.echo("---")
            click.echo(render.to_yaml({"revision": entry.revision, "type": entry.type,
                                       "time": render.iso_millis(moment), "writer": _writer_json(writer),
                                       "object": obj}), nl=False)
            continue
        if first:
            what = f"{rt.kind} {ns + '/' if ns else ''}{name}"
            click.echo(f"{render.BOLD if color else ''}{what}{render.RESET if color else ''}")
            if entry.oldest_retained_revision:
                click.echo(f"(history before revision {entry.oldest_retained_revision} has been compacted)")
            first = False
        who = render.writer_name(writer.manager, writer.user)
        verb = render.verb_text(writer.verb, writer.subresource)
        head = f"revision {entry.revision}  {render.iso_millis(moment) or '-'}  {entry.type}  {who}" + \
            (f"  {verb}" if verb else "")
        click.echo(("\n" + render.YELLOW + head + render.RESET) if color else "\n" + head)
        if entry.type == "DELETED":
            previous = None
            continue
        lines = render.yaml_lines(obj, keep_managed_fields=keep_managed)
        if previous is None:
            note = "" if entry.type == "ADDED" else "(the earliest retained revision)\n"
            click.echo(note + "\n".join(lines) + "\n", nl=False)
        else:
            diff = render.diff_lines(previous, lines, color=color)
            click.echo(diff or "(only bookkeeping changed: metadata.managedFields)\n", nl=False)
        previous = lines
    if count == 0 and output == "":
        click.echo("no revisions", err=True)


# -- kplane events ----------------------------------------------------------------------------------


@click.command("events")
@click.option("--since-revision", type=click.IntRange(min=0), default=None, metavar="N",
              help="changes after revision N (default: from the oldest retained revision; with -f, from now)")
@click.option("-f", "--follow", is_flag=True, help="keep printing changes as they happen")
@click.option("--kind", "kinds", multiple=True, help="only this kind (repeatable): pods, deploy, Lease, ...")
@click.option("-l", "--selector", default="", help="only objects whose labels match (before or after)")
@connection_options
@click.option("-o", "--output", type=click.Choice(["", "json"]), default="", help="json: one object per line")
@click.option("--no-headers", is_flag=True)
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
@run
async def events(since_revision: int | None, follow: bool, kinds: tuple[str, ...], selector: str,
                 server: str | None, config_path: str | None, namespace: str | None, request_timeout: float,
                 output: str, no_headers: bool, color: str) -> None:
    """The cluster's change stream in revision order: who changed what, one line per change.

    \b
    kplane events                          everything still retained
    kplane events --since-revision 1200 -f from revision 1200, then live
    kplane events --kind pods -n default -l app=web
    """
    from kplane.api import errors as api
    from kplane.api.resources import resolve

    resources = [resolve(k) for k in kinds]
    conn = Conn(server, config_path, namespace, request_timeout)
    printer = ChangePrinter(output=output, color=_use_color(color), headers=not no_headers)
    async with conn.client() as client:
        since = since_revision
        if since is None:
            since = (await client.retention()).current_revision if follow else 0
        backoff = 0.5
        while True:
            try:
                async for change in client.changes(since_revision=since, follow=follow, resources=resources,
                                                   namespace=namespace or "", label_selector=selector):
                    printer.print(change)
                    since = change.revision
                    backoff = 0.5
                return
            except api.Unavailable as exc:
                if not follow:
                    raise
                click.echo(f"kplane: lost the apiserver ({exc.message}); resuming after revision {since}", err=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


class ChangePrinter:
    """One line per change; the OBJECT column widens as wider names arrive (never narrows)."""

    def __init__(self, *, output: str = "", color: bool = False, headers: bool = True) -> None:
        self.output = output
        self.color = color
        self.headers = headers
        self.width = 24
        self.rev_width = 8
        self.printed = 0
        self.decoder = ChangeDecoder()

    def line(self, change: Any) -> str:
        obj, prev = self.decoder.pair(change)
        writer = change.writer
        moment = render.time_of(writer.time.seconds, writer.time.nanos)
        kind = obj.get("kind", change.ref.resource)
        ref = change.ref
        where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
        diffs = render.changes(prev, obj) if change.type == "MODIFIED" else []
        summary = render.summarize(change.type, prev, obj, diffs=diffs)
        if change.type == "DELETED" and not writer.manager:
            summary = "expired" if kind == "Event" else "deleted (not through the API: a lease expired?)"
        if self.output == "json":
            return json.dumps({"revision": change.revision, "type": change.type, "time": render.iso_millis(moment),
                               "writer": _writer_json(writer), "kind": kind, "namespace": ref.namespace,
                               "name": ref.name, "summary": summary,
                               "changes": [{"path": p, "before": a, "after": b} for p, a, b in diffs]},
                              separators=(",", ":"), default=str)
        label = f"{kind} {where}"
        self.width = max(self.width, len(label))
        self.rev_width = max(self.rev_width, len(str(change.revision)))
        who = render.writer_name(writer.manager, writer.user)
        verb = render.verb_text(writer.verb, writer.subresource)
        tail = f"({who}{': ' + verb if verb else ''})"
        type_text = f"{change.type:<8}"
        if self.color:
            paint = {"ADDED": render.GREEN, "DELETED": render.RED}.get(change.type, render.YELLOW)
            type_text = f"{paint}{type_text}{render.RESET}"
            tail = f"{render.DIM}{tail}{render.RESET}"
        return (f"{change.revision:>{self.rev_width}}  {render.clock_millis(moment):<12}  {type_text}  "
                f"{label:<{self.width}}  {summary}  {tail}")

    def print(self, change: Any) -> None:
        if self.printed == 0 and self.headers and self.output != "json":
            click.echo(f"{'REVISION':>{self.rev_width}}  {'TIME':<12}  {'TYPE':<8}  {'OBJECT':<{self.width}}  "
                       f"CHANGE  (WRITER: VERB)")
        click.echo(self.line(change))
        self.printed += 1


# -- kplane status: retention -----------------------------------------------------------------------


def retention_line(address: str, timeout: float = 3.0) -> str | None:
    """`history: revisions 120-4567 retained; compaction keeps 1h ...`, or None if unreachable."""

    async def ask() -> Any:
        from kplane.client.client import Client

        async with Client([address], identity="kplane", timeout=timeout) as client:
            return await client.retention()

    try:
        info = asyncio.run(ask())
    except Exception:
        return None
    ttl = f"events expire {dur(info.event_ttl_seconds)} after their last update" if info.event_ttl_seconds \
        else "events never expire"
    return (f"history: revisions {info.oldest_revision}–{info.current_revision} retained (oldest retained revision "
            f"{info.oldest_revision}); compaction keeps at least {dur(info.retention_seconds)} of history, "
            f"checked every {dur(info.interval_seconds)}; {ttl}")


def dur(seconds: float) -> str:
    """3600 -> 1h, 5400 -> 1h30m, 300 -> 5m, 90 -> 90s: how the flags were written."""
    whole = int(seconds)
    if whole % 60:
        return f"{whole}s"
    hours, minutes = divmod(whole // 60, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") or "0s"


def register(cli: click.Group) -> None:
    from kplane.cli.timeline import timeline

    cli.add_command(history)
    cli.add_command(events)
    cli.add_command(timeline)
