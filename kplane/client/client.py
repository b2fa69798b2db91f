"""Async client for the kplane API (the one thing every component and kpctl talk through).

Objects go out as protobuf (`Message`) or as Kubernetes JSON (`dict`, decoded strictly by the
server, which reports every unknown field with its path). Errors come back as the typed
exceptions of `kplane.api.errors`. Reads and watches are retried on another server when one is
unavailable; writes are never re-sent blindly (a create retried after a lost response would
get AlreadyExists, never a duplicate — so we surface the error instead).

Failover is safe under concurrency: every channel carries a generation, and a failed call moves
the client to the next server only if the channel it used is still the current one (otherwise
another call already failed over, and it simply retries on the current channel). A channel left
behind is retired, not closed: it is closed once the last call still running on it has finished
(or by `close()`), so a failover never cancels another call — a write least of all.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.message import Message

from kplane.api import errors as api
from kplane.api.pb import api_pb2, api_pb2_grpc, autoscaling_pb2, meta_pb2
from kplane.api.resources import ResourceType, for_type_url, pack, unpack

Body = Message | dict[str, Any]

_IDEMPOTENT = {"Get", "List", "Discover", "Version", "GetScale", "Retention"}


def ref(rt: ResourceType, namespace: str = "", name: str = "", subresource: str = "") -> api_pb2.ResourceRef:
    return api_pb2.ResourceRef(group=rt.group, version=rt.version, resource=rt.plural,
                               namespace=namespace if rt.namespaced else "", name=name, subresource=subresource)


def _body(rt: ResourceType | None, obj: Body) -> api_pb2.Body:
    if isinstance(obj, dict):
        return api_pb2.Body(json=json.dumps(obj))
    if rt is not None:
        return api_pb2.Body(object=pack(rt, obj))
    any_msg = AnyPb()
    any_msg.Pack(obj)
    return api_pb2.Body(object=any_msg)


def _meta_of(obj: Body) -> tuple[str, str]:
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace") or ""), str(meta.get("name") or "")
    meta = obj.metadata  # type: ignore[attr-defined]
    return meta.namespace, meta.name


def _connection_lost(exc: grpc.aio.AioRpcError) -> bool:
    """UNAVAILABLE from the connection itself, not a Status the server chose to send: a server that
    aborts a call (a watch it closes, storage it cannot reach) puts a meta/v1 Status in the
    trailing metadata, and is alive — there is nothing to fail over from."""
    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    trailing: Any = exc.trailing_metadata() or ()
    return not any(key == api.STATUS_DETAILS_KEY for key, _ in trailing)


class _Connection:
    """One channel to one apiserver, the generation it was opened in, and the calls running on it."""

    __slots__ = ("channel", "generation", "in_flight", "retired", "server", "stub")

    def __init__(self, generation: int, server: str, channel: grpc.aio.Channel) -> None:
        self.generation = generation
        self.server = server
        self.channel = channel
        self.stub = api_pb2_grpc.APIStub(channel)
        self.in_flight = 0
        self.retired = False


class Client:
    def __init__(self, servers: Sequence[str] | str, *, identity: str = "kplane-client", timeout: float = 30.0,
                 user: str = "") -> None:
        self.servers = [s.strip() for s in (servers.split(",") if isinstance(servers, str) else servers) if s.strip()]
        if not self.servers:
            raise ValueError("no apiserver address given")
        # Who writes (the field manager recorded on objects and in history) and, for command-line
        # clients, the person behind it.
        self.identity = identity
        self.user = user
        self.timeout = timeout
        self._index = 0
        self._generation = 0
        self._conn: _Connection | None = None
        # Channels left behind by a failover, closed when their last call finishes (or by close()).
        self._retired: set[_Connection] = set()

    # -- connection --------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return self.servers[self._index]

    def _acquire(self) -> _Connection:
        """The current connection (dialled on first use), counted as used until `_release`."""
        if self._conn is None:
            channel = grpc.aio.insecure_channel(self.server, options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.keepalive_time_ms", 20_000),
                ("grpc.primary_user_agent", self.identity),
                # A private subchannel pool: gRPC otherwise shares connections (and their reconnect
                # back-off, up to 120 s) across channels, so a dropped channel would not dial afresh.
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 5000),
            ])
            self._conn = _Connection(self._generation, self.server, channel)
        self._conn.in_flight += 1
        return self._conn

    async def _release(self, conn: _Connection) -> None:
        conn.in_flight -= 1
        if conn.retired and conn.in_flight == 0 and conn in self._retired:
            self._retired.discard(conn)
            await asyncio.shield(conn.channel.close())  # closed even if the caller is being cancelled

    def _failover(self, conn: _Connection) -> None:
        """Move to the next server after `conn` proved unreachable — unless another call already
        moved on from it (then the current channel is newer, and the caller just retries there).
        Synchronous, so no other call can interleave between the check and the move."""
        if len(self.servers) < 2 or conn.generation != self._generation:
            return
        self._generation += 1
        self._index = (self._index + 1) % len(self.servers)
        if self._conn is conn:
            self._conn = None
            conn.retired = True
            # The caller still holds `conn`, so its release closes the channel if nothing else uses it.
            self._retired.add(conn)

    async def close(self) -> None:
        """Close every channel, cancelling the calls still running; the client dials again on next use."""
        conns = [*self._retired, *([self._conn] if self._conn is not None else [])]
        self._retired.clear()
        self._conn = None
        self._generation += 1  # a call failing because of this close must not fail over
        for conn in conns:
            conn.retired = True
            await conn.channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.user:
            return (("x-kplane-identity", self.identity), ("x-kplane-user", self.user))
        return (("x-kplane-identity", self.identity),)

    async def _call(self, method: str, request: Message, timeout: float | None = None) -> Any:
        """One unary call. A read gets up to one attempt per server, each on a newer channel than
        the last (another call's failover counts as a move); a write is sent exactly once."""
        attempts = len(self.servers) if method in _IDEMPOTENT else 1
        for attempt in range(attempts):
            conn = self._acquire()
            try:
                return await getattr(conn.stub, method)(request, timeout=timeout or self.timeout,
                                                        metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise api.from_rpc_error(exc) from None
                self._failover(conn)
                if attempt + 1 == attempts:
                    raise api.from_rpc_error(exc) from None
            finally:
                await self._release(conn)
        raise AssertionError("unreachable")

    # -- verbs -------------------------------------------------------------------------------

    async def create(self, rt: ResourceType, obj: Body, *, namespace: str = "", dry_run: bool = False,
                     timeout: float | None = None) -> Message:
        ns = namespace or _meta_of(obj)[0]
        resp = await self._call("Create", api_pb2.CreateRequest(ref=ref(rt, ns), body=_body(rt, obj), dry_run=dry_run),
                                timeout)
        return unpack(resp.object)[1]

    async def get(self, rt: ResourceType, name: str, *, namespace: str = "", resource_version: str = "",
                  timeout: float | None = None) -> Message:
        resp = await self._call("Get", api_pb2.GetRequest(ref=ref(rt, namespace, name),
                                                          resource_version=resource_version), timeout)
        return unpack(resp.object)[1]

    async def list(self, rt: ResourceType, *, namespace: str = "", label_selector: str = "", field_selector: str = "",
                   resource_version: str = "", limit: int = 0, continue_token: str = "") -> tuple[builtins.list[Message], str, str]:
        """Returns (items, the resourceVersion the list was read at, continue token)."""
        req = api_pb2.ListRequest(ref=ref(rt, namespace), label_selector=label_selector, field_selector=field_selector,
                                  resource_version=resource_version, limit=limit)
        setattr(req, "continue", continue_token)
        resp = await self._call("List", req)
        items = []
        for item in resp.items:
            msg = rt.new()
            msg.ParseFromString(item.value)
            items.append(msg)
        return items, resp.resource_version, getattr(resp, "continue")

    async def list_all(self, rt: ResourceType, **kwargs: Any) -> tuple[builtins.list[Message], str]:
        items, rv, token = await self.list(rt, **kwargs)
        while token:
            more, rv, token = await self.list(rt, **{**kwargs, "continue_token": token})
            items.extend(more)
        return items, rv

    async def update(self, rt: ResourceType, obj: Body, *, namespace: str = "", dry_run: bool = False,
                     subresource: str = "", timeout: float | None = None) -> Message:
        """Replace ``obj`` (or, with ``subresource``, e.g. ``finalize`` of a namespace, that part of it)."""
        ns, name = _meta_of(obj)
        resp = await self._call("Update", api_pb2.UpdateRequest(ref=ref(rt, namespace or ns, name, subresource),
                                                                body=_body(rt, obj), dry_run=dry_run), timeout)
        return unpack(resp.object)[1]

    async def update_status(self, rt: ResourceType, obj: Body, *, namespace: str = "",
                            timeout: float | None = None) -> Message:
        ns, name = _meta_of(obj)
        resp = await self._call("UpdateStatus", api_pb2.UpdateRequest(ref=ref(rt, namespace or ns, name, "status"),
                                                                      body=_body(rt, obj)), timeout)
        return unpack(resp.object)[1]

    async def patch(self, rt: ResourceType, name: str, patch: str | dict[str, Any] | builtins.list[Any], *,
                    namespace: str = "", patch_type: str = "merge", subresource: str = "",
                    dry_run: bool = False) -> Message:
        text = patch if isinstance(patch, str) else json.dumps(patch)
        resp = await self._call("Patch", api_pb2.PatchRequest(ref=ref(rt, namespace, name, subresource),
                                                              patch_type=patch_type, patch=text, dry_run=dry_run))
        return unpack(resp.object)[1]

    async def delete(self, rt: ResourceType, name: str, *, namespace: str = "", grace_period: int | None = None,
                     propagation_policy: str = "", uid: str = "", resource_version: str = "",
                     dry_run: bool = False) -> tuple[Message, bool]:
        """Returns (the object, deleted): deleted is False while graceful deletion or finalizers are pending."""
        options = meta_pb2.DeleteOptions()
        if grace_period is not None:
            options.gracePeriodSeconds = grace_period
        if propagation_policy:
            options.propagationPolicy = propagation_policy
        if uid:
            options.preconditions.uid = uid
        if resource_version:
            options.preconditions.resourceVersion = resource_version
        if dry_run:
            options.dryRun.append("All")
        resp = await self._call("Delete", api_pb2.DeleteRequest(ref=ref(rt, namespace, name), options=options))
        return unpack(resp.object)[1], resp.deleted

    async def bind(self, namespace: str, name: str, node: str, *, uid: str = "") -> Message:
        from kplane.api.pb import core_pb2
        from kplane.api.resources import for_group_resource

        binding = core_pb2.Binding()
        binding.metadata.name = name
        binding.metadata.namespace = namespace
        if uid:
            binding.metadata.uid = uid
        binding.target.kind = "Node"
        binding.target.name = node
        pods = for_group_resource("", "pods")
        resp = await self._call("Bind", api_pb2.CreateRequest(ref=ref(pods, namespace, name, "binding"),
                                                              body=_body(None, binding)))
        return unpack(resp.object)[1]

    async def evict(self, namespace: str, name: str, *, grace_period: int | None = None, uid: str = "",
                    dry_run: bool = False) -> tuple[Message, bool]:
        """Evict a pod (the pods/eviction subresource): it is deleted with these delete options.
        Returns (the pod, deleted) as ``delete`` does; NotFound when there is no such pod."""
        from kplane.api.pb import policy_pb2
        from kplane.api.resources import for_group_resource

        eviction = policy_pb2.Eviction()
        eviction.metadata.name = name
        eviction.metadata.namespace = namespace
        if grace_period is not None:
            eviction.deleteOptions.gracePeriodSeconds = grace_period
        if uid:
            eviction.deleteOptions.preconditions.uid = uid
        if dry_run:
            eviction.deleteOptions.dryRun.append("All")
        pods = for_group_resource("", "pods")
        resp = await self._call("Create", api_pb2.CreateRequest(ref=ref(pods, namespace, name, "eviction"),
                                                                body=_body(None, eviction), dry_run=dry_run))
        return unpack(resp.object)[1], resp.deleted

    async def get_scale(self, rt: ResourceType, name: str, *, namespace: str = "") -> autoscaling_pb2.Scale:
        resp = await self._call("GetScale", api_pb2.GetRequest(ref=ref(rt, namespace, name, "scale")))
        scale = autoscaling_pb2.Scale()
        resp.object.Unpack(scale)
        return scale

    async def update_scale(self, rt: ResourceType, name: str, replicas: int, *, namespace: str = "",
                           resource_version: str = "") -> autoscaling_pb2.Scale:
        scale = autoscaling_pb2.Scale()
        scale.metadata.name = name
        scale.metadata.namespace = namespace
        if resource_version:
            scale.metadata.resourceVersion = resource_version
        scale.spec.replicas = replicas
        resp = await self._call("UpdateScale", api_pb2.UpdateRequest(ref=ref(rt, namespace, name, "scale"),
                                                                     body=_body(None, scale)))
        out = autoscaling_pb2.Scale()
        resp.object.Unpack(out)
        return out

    async def discover(self) -> builtins.list[api_pb2.APIResource]:
        resp = await self._call("Discover", api_pb2.DiscoverRequest())
        return list(resp.resources)

    async def version(self) -> api_pb2.VersionInfo:
        return await self._call("Version", api_pb2.VersionRequest())  # type: ignore[no-any-return]

    async def watch(self, rt: ResourceType, *, namespace: str = "", label_selector: str = "", field_selector: str = "",
                    resource_version: str = "", allow_bookmarks: bool = False) -> AsyncIterator[tuple[str, Message]]:
        """Yields (type, object) in revision order: ADDED/MODIFIED/DELETED/BOOKMARK. A failed
        stream raises the typed error (Expired: relist; Unavailable: re-watch from the last RV)."""
        req = api_pb2.WatchRequest(ref=ref(rt, namespace), label_selector=label_selector,
                                   field_selector=field_selector, resource_version=resource_version,
                                   allow_bookmarks=allow_bookmarks)
        conn = self._acquire()
        call = conn.stub.Watch(req, metadata=self.metadata)
        try:
            async for event in call:
                yield event.type, unpack(event.object)[1] if event.type != "BOOKMARK" else _bookmark(event.object)
        except grpc.aio.AioRpcError as exc:
            if _connection_lost(exc):
                # The next watch (the caller re-watches) goes to another apiserver. A stream the
                # server closed on purpose (a Status in the trailers) says nothing about the server.
                self._failover(conn)
            raise api.from_rpc_error(exc) from None
        finally:
            call.cancel()
            await self._release(conn)

    # -- history, the change stream, retention -----------------------------------------------

    def history(self, rt: ResourceType, name: str, *, namespace: str = "", include_deleted: bool = False,
                at_revision: int = 0) -> AsyncIterator[api_pb2.HistoryEntry]:
        """Every retained revision of one object, oldest first, each with its writer (or, with
        `at_revision`, the object as it was then). Compacted history raises Expired."""
        req = api_pb2.HistoryRequest(ref=ref(rt, namespace, name), include_deleted=include_deleted,
                                     at_revision=at_revision)
        return _server_stream(self, "History", req, "entries")

    def changes(self, *, since_revision: int = 0, follow: bool = False, resources: Sequence[ResourceType] = (),
                namespace: str = "", label_selector: str = "") -> AsyncIterator[api_pb2.Change]:
        """The cluster's changes after `since_revision` (0: the oldest retained) in revision order,
        with previous states and writers; with `follow`, live until the iterator is closed."""
        req = api_pb2.ChangesRequest(since_revision=since_revision, follow=follow, namespace=namespace,
                                     label_selector=label_selector,
                                     resources=[ref(rt) for rt in resources])
        return _server_stream(self, "Changes", req, "changes")

    async def retention(self) -> api_pb2.RetentionInfo:
        """The oldest retained revision, the current one and the compaction policy."""
        return await self._call("Retention", api_pb2.RetentionRequest())  # type: ignore[no-any-return]

    # -- pods/log, pods/exec, pods/attach (proxied by the apiserver to the pod's kubelet) --------

    def logs(self, namespace: str, name: str, *, container: str = "", follow: bool = False, previous: bool = False,
             tail_lines: int | None = None, timestamps: bool = False,
             limit_bytes: int | None = None) -> AsyncIterator[bytes]:
        """pods/log: the container's log as byte chunks (kubectl logs). With `follow`, until the
        container exits or the iterator is closed."""
        return _logs(self, namespace, name, container=container, follow=follow, previous=previous,
                     tail_lines=tail_lines, timestamps=timestamps, limit_bytes=limit_bytes)

    async def exec(self, namespace: str, name: str, command: Sequence[str], *, container: str = "",
                   stdin: bool = False, tty: bool = False) -> ExecSession:
        """pods/exec: run `command` (argv, no shell) in the container; returns once it has started."""
        return await _session(self, namespace, name, command, container=container, stdin=stdin, tty=tty,
                              attach=False)

    async def attach(self, namespace: str, name: str, *, container: str = "", stdin: bool = False,
                     tty: bool = False) -> ExecSession:
        """pods/attach: the container's own stdin (when its spec has `stdin: true`) and live output."""
        return await _session(self, namespace, name, (), container=container, stdin=stdin, tty=tty, attach=True)


def _bookmark(obj: AnyPb) -> Message:
    rt = for_type_url(obj.type_url)
    msg = rt.new()
    msg.ParseFromString(obj.value)
    return msg


T = TypeVar("T")


async def retry_on_conflict(fn: Callable[[], Awaitable[T]], *, attempts: int = 5, base_delay: float = 0.01,
                            max_delay: float = 1.0) -> T:
    """Run `fn` (which must re-read what it changes) again after a Conflict, with jittered
    back-off — client-go's RetryOnConflict. Any other error, or the last Conflict, propagates."""
    delay = base_delay
    for attempt in range(attempts):
        try:
            return await fn()
        except api.Conflict:
            if attempt + 1 == attempts:
                raise
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


# -- streaming subresources: pods/log, pods/exec, pods/attach ----------------------------------------
# The apiserver proxies these to the pod's kubelet. A stream is never retried on another apiserver
# (a half-consumed log or a command that already ran cannot be replayed); errors are the typed
# exceptions, with the server's Status (e.g. BadRequest `... is waiting to start: ContainerCreating`).


class ExecSession:
    """One exec or attach: write stdin, read ("stdout"|"stderr", bytes) output, then the exit code.

    `output()` ends when the remote process has exited (`exit_code` is then set) and raises the
    typed error when the stream fails. `close()` (or leaving `async with`) ends the session; for
    exec that also ends the remote command."""

    def __init__(self, client: Client, conn: _Connection, call: Any) -> None:
        self._client = client
        self._conn = conn
        self._call = call
        self.exit_code: int | None = None
        self._closed = False
        self._stdin_closed = False

    async def _open(self, start: Any) -> None:
        from kplane.api.pb import stream_pb2

        try:
            await self._call.write(stream_pb2.ExecInput(start=start))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the failed call's status is read below
        try:
            first = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            await self.close()
            raise api.from_rpc_error(exc) from None
        if first is grpc.aio.EOF or first.WhichOneof("output") != "started":
            await self.close()
            raise api.InternalError("the server ended the stream before the session started")

    async def write_stdin(self, data: bytes) -> None:
        from kplane.api.pb import stream_pb2

        if data and not self._stdin_closed:
            await self._call.write(stream_pb2.ExecInput(stdin=data))

    async def close_stdin(self) -> None:
        from kplane.api.pb import stream_pb2

        if not self._stdin_closed:
            self._stdin_closed = True
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.write(stream_pb2.ExecInput(stdin_close=True))

    async def resize(self, width: int, height: int) -> None:
        from kplane.api.pb import stream_pb2

        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self._call.write(stream_pb2.ExecInput(resize=stream_pb2.TerminalSize(width=width, height=height)))

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        while self.exit_code is None:
            try:
                msg = await self._call.read()
            except grpc.aio.AioRpcError as exc:
                raise api.from_rpc_error(exc) from None
            if msg is grpc.aio.EOF:
                raise api.InternalError("the stream ended without the command's exit code")
            which = msg.WhichOneof("output")
            if which == "stdout":
                yield "stdout", msg.stdout
            elif which == "stderr":
                yield "stderr", msg.stderr
            elif which == "exit":
                self.exit_code = msg.exit.exit_code

    async def wait(self) -> int:
        """Discard the remaining output; the exit code."""
        async for _ in self.output():
            pass
        assert self.exit_code is not None
        return self.exit_code

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._call.cancel()
        await self._client._release(self._conn)

    async def __aenter__(self) -> ExecSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _logs(client: Client, namespace: str, name: str, *, container: str = "", follow: bool = False,
                previous: bool = False, tail_lines: int | None = None, timestamps: bool = False,
                limit_bytes: int | None = None) -> AsyncIterator[bytes]:
    from kplane.api.pb import stream_pb2

    req = stream_pb2.LogRequest(namespace=namespace, name=name, container=container, follow=follow,
                                previous=previous, timestamps=timestamps)
    if tail_lines is not None:
        req.tail_lines = tail_lines
    if limit_bytes is not None:
        req.limit_bytes = limit_bytes
    conn = client._acquire()
    call = conn.stub.Log(req, metadata=client.metadata)
    try:
        async for chunk in call:
            if chunk.data:
                yield chunk.data
    except grpc.aio.AioRpcError as exc:
        if _connection_lost(exc):
            client._failover(conn)
        raise api.from_rpc_error(exc) from None
    finally:
        call.cancel()
        await client._release(conn)


async def _server_stream(client: Client, method: str, request: Message, field: str) -> AsyncIterator[Any]:
    """A server-streaming call of batches (History, Changes), flattened; never retried on another
    server mid-stream."""
    conn = client._acquire()
    call = getattr(conn.stub, method)(request, metadata=client.metadata)
    try:
        async for batch in call:
            for item in getattr(batch, field):
                yield item
    except grpc.aio.AioRpcError as exc:
        if _connection_lost(exc):
            client._failover(conn)
        raise api.from_rpc_error(exc) from None
    finally:
        call.cancel()
        await client._release(conn)


async def _session(client: Client, namespace: str, name: str, command: Sequence[str], *, container: str,
                   stdin: bool, tty: bool, attach: bool) -> ExecSession:
    from kplane.api.pb import stream_pb2

    conn = client._acquire()
    call = conn.stub.Attach(metadata=client.metadata) if attach else conn.stub.Exec(metadata=client.metadata)
    session = ExecSession(client, conn, call)
    await session._open(stream_pb2.ExecStart(namespace=namespace, name=name, container=container,
                                             command=list(command), stdin=stdin, tty=tty))
    return session

