"""The gRPC API service: decodes requests, dispatches to the registry, maps errors to codes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import grpc
from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

import kplane
from apiserver.audit import AuditLog
from apiserver.history import History as HistoryAPI
from apiserver.proxy import StreamProxy
from apiserver.registry import Registry
from apiserver.storage import EtcdUnavailable, RevisionCompacted, Storage, WriteOutcomeUnknown
from apiserver.watchcache import ADDED, BOOKMARK, DELETED, MODIFIED, Entry, Filter, rv_suffix
from kplane.api import codec
from kplane.api import errors as api
from kplane.api.pb import api_pb2, api_pb2_grpc, meta_pb2, stream_pb2
from kplane.api.resources import (
    RESOURCES,
    ResourceType,
    UnknownResource,
    for_group_resource,
    object_to_dict,
    pack,
)
from kplane.logs import get_logger

log = get_logger(component="apiserver")

REQUESTS = Counter("apiserver_requests_total", "API requests", ["verb", "resource", "code"])
LATENCY = Histogram("apiserver_request_duration_seconds", "API request latency", ["verb", "resource"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
WATCHERS = Counter("apiserver_watch_events_total", "Watch events sent", ["resource", "type"])

R = TypeVar("R")
Handler = Callable[..., Awaitable[R]]


def rpc_method(verb: str) -> Callable[[Handler[R]], Handler[R]]:
    """Wrap a unary handler: metrics, and every error turned into a gRPC status with a Status."""

    def decorate(fn: Handler[R]) -> Handler[R]:
        @wraps(fn)
        async def wrapper(self: APIService, request: Any, context: grpc.aio.ServicerContext) -> R:
            resource = request.ref.resource if hasattr(request, "ref") else ""
            start = time.perf_counter()
            code = "OK"
            response = None
            scope = self.audit.begin(verb, request, context)  # who is asking (apiserver/audit.py)
            try:
                response = await fn(self, request, context)
                return response
            except api.APIError as exc:
                code = exc.grpc_code.name
                await _abort(context, exc)
            except UnknownResource as exc:
                code = "NOT_FOUND"
                await _abort(context, api.NotFound(str(exc)))
            except WriteOutcomeUnknown as exc:
                code = "DEADLINE_EXCEEDED"
                await _abort(context, api.Timeout(f"the write may or may not have been applied: {exc}"))
            except RecursionError:
                code = "INVALID_ARGUMENT"
                await _abort(context, api.BadRequest("the request body is nested too deeply"))
            except (TimeoutError, EtcdUnavailable) as exc:
                code = "UNAVAILABLE"
                await _abort(context, api.Unavailable(f"storage unavailable: {exc}"))
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                code = "INTERNAL"
                log.exception("internal error", verb=verb, resource=resource)
                await _abort(context, api.InternalError(f"internal error: {exc}"))
            finally:
                REQUESTS.labels(verb, resource, code).inc()
                LATENCY.labels(verb, resource).observe(time.perf_counter() - start)
                self.audit.end(scope, code, response)
            raise AssertionError("unreachable")

        return wrapper

    return decorate


async def _abort(context: grpc.aio.ServicerContext, exc: api.APIError) -> None:
    status: status_pb2.Status = exc.to_grpc_status()
    await context.abort_with_status(rpc_status.to_status(status))


class APIService(api_pb2_grpc.APIServicer):
    def __init__(self, registry: Registry, storage: Storage, *, bookmark_interval: float = 5.0,
                 audit: AuditLog | None = None, history: HistoryAPI | None = None) -> None:
        self.registry = registry
        self.storage = storage
        self.bookmark_interval = bookmark_interval
        self.streams = StreamProxy(registry)
        self.audit = audit or AuditLog()
        self.history = history or HistoryAPI(storage)

    # -- request decoding --------------------------------------------------------------------

    @staticmethod
    def _resource(ref: api_pb2.ResourceRef) -> ResourceType:
        if not ref.resource:
            raise api.BadRequest("ref.resource is required (e.g. \"pods\")")
        rt = for_group_resource(ref.group, ref.resource)
        if ref.version and ref.version != rt.version:
            raise api.NotFound(f'the server could not find the requested resource ({ref.resource} in version '
                               f'"{ref.version}")')
        return rt

    @staticmethod
    def _name(ref: api_pb2.ResourceRef) -> str:
        if not ref.name:
            raise api.BadRequest("a resource name is required")
        return ref.name

    @staticmethod
    def _namespace(rt: ResourceType, ref: api_pb2.ResourceRef, *, required: bool) -> str:
        if not rt.namespaced:
            return ""
        if required and not ref.namespace:
            raise api.BadRequest(f"{rt.group_resource} are namespaced: a namespace is required")
        return ref.namespace

    @staticmethod
    def _body(rt: ResourceType | None, body: api_pb2.Body) -> dict[str, Any]:
        """The request object as a JSON dict, whichever encoding it came in."""
        which = body.WhichOneof("encoding")
        if which == "json":
            return codec.json_object(body.json)
        if which == "object":
            obj: AnyPb = body.object
            if rt is not None and obj.type_url != rt.type_url:
                raise api.BadRequest(f"expected a {rt.kind} ({rt.type_url}), got {obj.type_url}")
            target = rt if rt is not None else None
            if target is None:
                raise api.BadRequest("an object body needs a resource")
            msg = target.new()
            try:
                msg.ParseFromString(obj.value)
            except ProtoDecodeError as exc:
                raise api.BadRequest(f"the object could not be decoded: {exc}") from None
            return object_to_dict(target, msg)
        raise api.BadRequest("the request has no body")

    def _filter(self, rt: ResourceType, namespace: str, label_selector: str, field_selector: str) -> Filter:
        from kplane.api.fields import parse_field_selector, supported_fields
        from kplane.api.labels import parse_selector

        labels = fields = None
        if label_selector.strip():
            try:
                labels = parse_selector(label_selector)
            except ValueError as exc:
                raise api.BadRequest(str(exc)) from None
        if field_selector.strip():
            try:
                fields = parse_field_selector(field_selector)
            except ValueError as exc:
                raise api.BadRequest(f"invalid field selector: {exc}") from None
            allowed = supported_fields(rt.kind)
            for req in fields.requirements:
                if req.field not in allowed:
                    raise api.BadRequest(
                        f'field label not supported: {req.field} (supported for {rt.group_resource}: '
                        f'{", ".join(sorted(allowed))})')
        return Filter(namespace=namespace, labels=labels, fields=fields)

    @staticmethod
    def _response(rt: ResourceType, msg: Message, deleted: bool = False) -> api_pb2.ObjectResponse:
        return api_pb2.ObjectResponse(object=pack(rt, msg), deleted=deleted)

    # -- verbs -------------------------------------------------------------------------------

    @rpc_method("create")
    async def Create(self, request: api_pb2.CreateRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        if request.ref.subresource == "binding":
            return await self.Bind(request, context)
        if request.ref.subresource == "eviction":
            return await self.Evict(request, context)
        if request.ref.subresource:
            raise api.MethodNotAllowed(f"create is not supported on {rt.group_resource}/{request.ref.subresource}")
        namespace = self._namespace(rt, request.ref, required=False)
        data = self._body(rt, request.body)
        if rt.namespaced and not namespace:
            meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            namespace = str((meta or {}).get("namespace") or "")
            if not namespace:
                raise api.BadRequest(f"{rt.group_resource} are namespaced: a namespace is required")
        result = await self.registry.create(rt, namespace, data, dry_run=request.dry_run)
        return self._response(rt, result.obj)

    @rpc_method("get")
    async def Get(self, request: api_pb2.GetRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        if request.ref.subresource == "scale":
            return await self.GetScale(request, context)
        msg = await self.registry.get(rt, self._namespace(rt, request.ref, required=True), self._name(request.ref),
                                      request.resource_version)
        return self._response(rt, msg)

    @rpc_method("list")
    async def List(self, request: api_pb2.ListRequest, context: grpc.aio.ServicerContext) -> api_pb2.ListResponse:
        rt = self._resource(request.ref)
        namespace = self._namespace(rt, request.ref, required=False)
        flt = self._filter(rt, namespace, request.label_selector, request.field_selector)
        if request.limit < 0:
            raise api.BadRequest("limit must not be negative")
        wires, rev, token = await self.registry.list(rt, namespace, flt, resource_version=request.resource_version,
                                                     limit=request.limit, continue_token=getattr(request, "continue"))
        resp = api_pb2.ListResponse(resource_version=str(rev))
        setattr(resp, "continue", token)
        resp.items.extend(AnyPb(type_url=rt.type_url, value=w) for w in wires)
        return resp

    @rpc_method("update")
    async def Update(self, request: api_pb2.UpdateRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        sub = request.ref.subresource
        if sub == "scale":
            return await self.UpdateScale(request, context)
        if sub == "finalize" and rt.kind != "Namespace":
            raise api.MethodNotAllowed(f"update is not supported on {rt.group_resource}/{sub}")
        if sub not in ("", "status", "finalize"):
            raise api.MethodNotAllowed(f"update is not supported on {rt.group_resource}/{sub}")
        if sub == "status" and "status" not in rt.subresources:
            raise api.NotFound(f"the server could not find the requested resource ({rt.group_resource}/status)")
        result = await self.registry.update(rt, self._namespace(rt, request.ref, required=True), self._name(request.ref),
                                            self._body(rt, request.body), subresource=sub, dry_run=request.dry_run)
        return self._response(rt, result.obj, result.deleted)

    @rpc_method("update")
    async def UpdateStatus(self, request: api_pb2.UpdateRequest,
                           context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        if "status" not in rt.subresources:
            raise api.NotFound(f"the server could not find the requested resource ({rt.group_resource}/status)")
        result = await self.registry.update(rt, self._namespace(rt, request.ref, required=True), self._name(request.ref),
                                            self._body(rt, request.body), subresource="status",
                                            dry_run=request.dry_run)
        return self._response(rt, result.obj, result.deleted)

    @rpc_method("patch")
    async def Patch(self, request: api_pb2.PatchRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        sub = request.ref.subresource
        if sub not in ("", "status"):
            raise api.MethodNotAllowed(f"patch is not supported on {rt.group_resource}/{sub}")
        if sub == "status" and "status" not in rt.subresources:
            raise api.NotFound(f"the server could not find the requested resource ({rt.group_resource}/status)")
        result = await self.registry.patch(rt, self._namespace(rt, request.ref, required=True), self._name(request.ref),
                                           request.patch_type, request.patch, subresource=sub,
                                           dry_run=request.dry_run)
        return self._response(rt, result.obj, result.deleted)

    @rpc_method("delete")
    async def Delete(self, request: api_pb2.DeleteRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        options = codec.to_dict(request.options) if request.HasField("options") else {}
        dry_run = "All" in options.get("dryRun", [])
        result = await self.registry.delete(rt, self._namespace(rt, request.ref, required=True),
                                            self._name(request.ref), options, dry_run=dry_run)
        return self._response(rt, result.obj, result.deleted)

    @rpc_method("create")
    async def Bind(self, request: api_pb2.CreateRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        pods = for_group_resource("", "pods")
        if request.ref.resource not in ("", "pods"):
            raise api.MethodNotAllowed("binding is a subresource of pods only")
        binding_rt = None
        which = request.body.WhichOneof("encoding")
        if which == "object":
            from kplane.api.pb import core_pb2

            binding = core_pb2.Binding()
            try:
                request.body.object.Unpack(binding)
            except Exception:
                raise api.BadRequest("the body must be a core/v1 Binding") from None
            data = codec.to_dict(binding)
        else:
            data = self._body(binding_rt, request.body)
        namespace = request.ref.namespace or str((data.get("metadata") or {}).get("namespace") or "")
        if not namespace:
            raise api.BadRequest("pods are namespaced: a namespace is required")
        name = request.ref.name or str((data.get("metadata") or {}).get("name") or "")
        if not name:
            raise api.BadRequest("a pod name is required")
        result = await self.registry.bind(namespace, name, data)
        return self._response(pods, result.obj)

    @rpc_method("create")
    async def Evict(self, request: api_pb2.CreateRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        """pods/eviction (apiserver/eviction.py): the pod is deleted with the Eviction's options."""
        from apiserver.eviction import decode_eviction, evict

        pods = for_group_resource("", "pods")
        if request.ref.resource not in ("", "pods"):
            raise api.MethodNotAllowed("eviction is a subresource of pods only")
        data = decode_eviction(request.body)
        meta = data.get("metadata") or {}
        namespace = request.ref.namespace or str(meta.get("namespace") or "")
        if not namespace:
            raise api.BadRequest("pods are namespaced: a namespace is required")
        name = request.ref.name or str(meta.get("name") or "")
        if not name:
            raise api.BadRequest("a pod name is required")
        result = await evict(self.registry, namespace, name, data)
        return self._response(pods, result.obj, result.deleted)

    @rpc_method("get")
    async def GetScale(self, request: api_pb2.GetRequest, context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        scale = await self.registry.get_scale(rt, self._namespace(rt, request.ref, required=True),
                                              self._name(request.ref))
        return self._scale_response(scale)

    @rpc_method("update")
    async def UpdateScale(self, request: api_pb2.UpdateRequest,
                          context: grpc.aio.ServicerContext) -> api_pb2.ObjectResponse:
        rt = self._resource(request.ref)
        which = request.body.WhichOneof("encoding")
        if which == "object":
            from kplane.api.pb import autoscaling_pb2

            scale_msg = autoscaling_pb2.Scale()
            if not request.body.object.Unpack(scale_msg):
                raise api.BadRequest("the body must be an autoscaling/v1 Scale")
            data = codec.to_dict(scale_msg)
        elif which == "json":
            data = codec.json_object(request.body.json)
        else:
            raise api.BadRequest("the request has no body")
        scale = await self.registry.update_scale(rt, self._namespace(rt, request.ref, required=True),
                                                 self._name(request.ref), data)
        return self._scale_response(scale)

    @staticmethod
    def _scale_response(scale: dict[str, Any]) -> api_pb2.ObjectResponse:
        from kplane.api.pb import autoscaling_pb2

        msg = codec.from_dict(scale, autoscaling_pb2.Scale, ignore=frozenset({"apiVersion", "kind"}))
        out = AnyPb()
        out.Pack(msg)
        return api_pb2.ObjectResponse(object=out)

    async def Discover(self, request: api_pb2.DiscoverRequest,
                       context: grpc.aio.ServicerContext) -> api_pb2.DiscoverResponse:
        resp = api_pb2.DiscoverResponse()
        for rt in RESOURCES:
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            resp.resources.add(name=rt.plural, singular_name=rt.singular, namespaced=rt.namespaced, group=rt.group,
                               version=rt.version, kind=rt.kind, verbs=verbs, short_names=list(rt.short_names),
                               categories=list(rt.categories), subresources=list(rt.subresources))
        return resp

    async def Version(self, request: api_pb2.VersionRequest, context: grpc.aio.ServicerContext) -> api_pb2.VersionInfo:
        etcd_version = ""
        try:
            assert self.storage._client is not None
            async with asyncio.timeout(2):
                status = await self.storage._client.status()
            etcd_version = str(status.version)
        except Exception:
            etcd_version = "unknown"
        return api_pb2.VersionInfo(git_version=f"v{kplane.__version__}", platform=f"{platform.system().lower()}/"
                                   f"{platform.machine()}", python_version=platform.python_version(),
                                   etcd_version=etcd_version)

    # -- pods/log, pods/exec, pods/attach: proxied to the pod's kubelet (apiserver/proxy.py) ---

    async def Log(self, request: stream_pb2.LogRequest,
                  context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.LogChunk]:
        async for chunk in self.streams.log(request, context):
            yield chunk

    async def Exec(self, request_iterator: AsyncIterator[stream_pb2.ExecInput],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.ExecOutput]:
        async for out in self.streams.session(request_iterator, context, attach=False):
            yield out

    async def Attach(self, request_iterator: AsyncIterator[stream_pb2.ExecInput],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.ExecOutput]:
        async for out in self.streams.session(request_iterator, context, attach=True):
            yield out

    # -- history, the change stream, retention (apiserver/history.py) -------------------------

    async def History(self, request: api_pb2.HistoryRequest,
                      context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.HistoryBatch]:
        self.audit.end(self.audit.begin("get", request, context), "OK")
        async for batch in self.history.serve_history(request, context):
            yield batch

    async def Changes(self, request: api_pb2.ChangesRequest,
                      context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.ChangeBatch]:
        self.audit.end(self.audit.begin("watch", request, context), "OK")
        async for batch in self.history.serve_changes(request, context):
            yield batch

    @rpc_method("get")
    async def Retention(self, request: api_pb2.RetentionRequest,
                        context: grpc.aio.ServicerContext) -> api_pb2.RetentionInfo:
        return await self.history.retention_info()

    # -- watch -------------------------------------------------------------------------------

    async def Watch(self, request: api_pb2.WatchRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.WatchEvent]:
        self.audit.end(self.audit.begin("watch", request, context), "OK")
        try:
            rt = self._resource(request.ref)
            namespace = self._namespace(rt, request.ref, required=False)
            flt = self._filter(rt, namespace, request.label_selector, request.field_selector)
            rv_text = request.resource_version
            from_rev: int | None = None
            if rv_text not in ("", "0"):
                try:
                    from_rev = int(rv_text)
                except ValueError:
                    raise api.BadRequest(f'invalid resourceVersion "{rv_text}"') from None
                if from_rev < 0:
                    raise api.BadRequest(f'invalid resourceVersion "{rv_text}": must not be negative')
            cache = self.registry.cache(rt)
            async with asyncio.timeout(30):
                await cache.ready.wait()
            if rv_text == "":
                # start from a consistent snapshot, like a consistent list
                if await cache.consistent_revision() is None:
                    raise api.Timeout("the watch cache could not catch up with etcd; retry")
            elif from_rev is not None and from_rev > cache.rev and not await cache.wait_for_revision(from_rev):
                raise api.Timeout(f"Too large resource version: {from_rev}, current: {cache.rev}")
        except api.APIError as exc:
            await _abort(context, exc)
            return
        except (TimeoutError, EtcdUnavailable) as exc:
            await _abort(context, api.Unavailable(f"storage unavailable: {exc}"))
            return
        registered = cache.watch(flt, from_rev)
        if registered is None:
            # Older than the cache's window: follow etcd until caught up with the window, then
            # hand over to the cache (so watches resumed after an apiserver restart do not each
            # keep an etcd watch of their own).
            assert from_rev is not None
            position = [from_rev]
            async for event in self._watch_etcd(rt, flt, from_rev, context, position):
                yield event
            from_rev = position[0]
            registered = cache.watch(flt, from_rev)
            if registered is None:
                return
        watcher, initial = registered
        last_rev = from_rev or cache.rev
        try:
            for etype, entry in initial:
                yield self._event(rt, etype, entry)
            if initial and request.allow_bookmarks and watcher.queue.empty():
                last_rev = max(last_rev, cache.rev)
                yield self._bookmark(rt, last_rev)
            while True:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can drop a result that
                # arrives as the timeout fires (a lost watch event); a cancelled Queue.get keeps it.
                try:
                    async with asyncio.timeout(self.bookmark_interval):
                        item = await watcher.queue.get()
                except TimeoutError:
                    # Every event up to cache.rev has been offered to this watcher synchronously, so
                    # with an empty queue nothing at or below cache.rev is still owed to it. A quiet
                    # resource's cache.rev is advanced by proving it current against etcd.
                    if request.allow_bookmarks and watcher.queue.empty():
                        with contextlib.suppress(Exception):
                            await cache.consistent_revision(timeout=0.2)
                        if watcher.queue.empty() and cache.rev >= last_rev:
                            last_rev = cache.rev
                            yield self._bookmark(rt, cache.rev)
                    continue
                if item is None:
                    await _abort(context, api.Unavailable(f"watch closed: {watcher.closed_reason}; re-watch from the "
                                                          f"last resourceVersion"))
                    return
                etype, payload = item
                if etype == BOOKMARK:
                    continue
                assert isinstance(payload, Entry)
                last_rev = payload.rev
                WATCHERS.labels(rt.plural, etype).inc()
                yield self._event(rt, etype, payload)
        finally:
            cache.unwatch(watcher)

    async def _watch_etcd(self, rt: ResourceType, flt: Filter, from_rev: int,
                          context: grpc.aio.ServicerContext, position: list[int]) -> AsyncIterator[api_pb2.WatchEvent]:
        """A watch from before the cache's window: follow etcd directly from from_rev + 1, and
        return (with `position[0]` = the last revision delivered) once the cache's window covers
        everything after it. Ends the call with Expired/Unavailable on failure."""
        cache = self.registry.cache(rt)
        watch = self.storage.open_watch(rt.prefix(flt.namespace), from_rev + 1, prev_kv=True)
        try:
            async for batch in watch:
                if batch.events:
                    position[0] = max(position[0], max(kv.mod_revision for _, kv, _ in batch.events))
                for kind, kv, prev_kv in batch.events:
                    prev = cache._decode(prev_kv) if prev_kv is not None else None
                    if kind == "DELETE":
                        if prev is not None and flt.matches(prev):
                            gone = cache._decode(prev_kv, kv.mod_revision) if prev_kv is not None else None
                            if gone is not None:
                                yield self._event(rt, DELETED, gone)
                        continue
                    entry = cache._decode(kv)
                    if entry is None:
                        continue
                    now, before = flt.matches(entry), prev is not None and flt.matches(prev)
                    if now:
                        yield self._event(rt, MODIFIED if before else ADDED, entry)
                    elif before:
                        yield self._event(rt, DELETED, dataclasses.replace(prev, rev=kv.mod_revision)
                                          if prev is not None else entry)
                if position[0] >= cache.window_start and position[0] <= cache.rev:
                    return  # the cache holds every event after position[0]: hand over
        except RevisionCompacted as exc:
            floor = exc.compact_revision
            position[0] = -1
            await _abort(context, api.Expired(
                f"too old resource version: {from_rev} (the oldest retained revision is {floor})"))
        except EtcdUnavailable as exc:
            position[0] = -1
            await _abort(context, api.Unavailable(f"storage unavailable: {exc}"))
        finally:
            watch.close()

    @staticmethod
    def _event(rt: ResourceType, etype: str, entry: Entry) -> api_pb2.WatchEvent:
        return api_pb2.WatchEvent(type=etype, object=AnyPb(type_url=rt.type_url, value=entry.wire))

    @staticmethod
    def _bookmark(rt: ResourceType, rev: int) -> api_pb2.WatchEvent:
        return api_pb2.WatchEvent(type=BOOKMARK, object=AnyPb(type_url=rt.type_url, value=rv_suffix(rev)))


_ = meta_pb2  # the Status detail type must be registered for clients decoding our errors
