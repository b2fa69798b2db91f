"""pods/log, pods/exec, pods/attach: the apiserver proxies each stream to the pod's kubelet.

As in Kubernetes (`LogLocation`, `streamLocation`), the apiserver reads the pod, picks the
container from its spec (the only one, or the one named — else a BadRequest listing them), and
refuses a pod without a node (`pod web does not have a host assigned`). It then reads the Node
and dials its kubelet at the node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`,
and relays messages both ways until either side ends. The kubelet's own errors (a container still
waiting, no previous attempt) travel back unchanged, since they already carry a meta/v1 Status.

Networking rule: the kubelet's address must be a loopback address (127.0.0.0/8 or ::1); anything
else is refused before a connection is attempted, so a Node object cannot make the apiserver send
traffic off the machine. Channels are cached per endpoint (one HTTP/2 connection per kubelet, with
a short reconnect back-off so a restarted kubelet is reachable again within a second or two) for
the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_status import rpc_status

from apiserver.registry import Registry
from kplane.api import errors as api
from kplane.api.pb import core_pb2, stream_pb2, stream_pb2_grpc
from kplane.api.podstream import choose_container, no_host
from kplane.api.resources import for_group_resource
from kplane.logs import get_logger

log = get_logger(component="apiserver")

# How long the kubelet may take to open a stream (its first message: the container was found).
# A kubelet that accepts connections but never answers (SIGSTOPped) fails the call after this.
KUBELET_ANSWER_TIMEOUT = 15.0


@dataclass(frozen=True)
class Target:
    """Where one stream goes: the pod (uid), its resolved container, its node and kubelet endpoint."""

    namespace: str
    pod: str
    uid: str
    container: str
    node: str
    endpoint: str


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _has_status(exc: grpc.aio.AioRpcError) -> bool:
    trailing: Any = exc.trailing_metadata() or ()
    return any(key == api.STATUS_DETAILS_KEY for key, _ in trailing)


class StreamProxy:
    def __init__(self, registry: Registry, *, answer_timeout: float = KUBELET_ANSWER_TIMEOUT) -> None:
        self.registry = registry
        self.answer_timeout = answer_timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, endpoint: str) -> stream_pb2_grpc.KubeletStreamingStub:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = grpc.aio.insecure_channel(endpoint, options=[
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2000),
                ("grpc.keepalive_time_ms", 20_000),
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ])
            self._channels[endpoint] = channel
        return stream_pb2_grpc.KubeletStreamingStub(channel)

    # -- where does the stream go ------------------------------------------------------------

    async def target(self, namespace: str, name: str, container: str) -> Target:
        if not namespace:
            raise api.BadRequest("pods are namespaced: a namespace is required")
        if not name:
            raise api.BadRequest("a pod name is required")
        pod = await self.registry.get(for_group_resource("", "pods"), namespace, name)
        assert isinstance(pod, core_pb2.Pod)
        chosen = choose_container(name, [c.name for c in pod.spec.containers],
                                  [c.name for c in pod.spec.initContainers], container)
        node_name = pod.spec.nodeName
        if not node_name:
            raise no_host(name)
        node = await self.registry.get(for_group_resource("", "nodes"), "", node_name)
        assert isinstance(node, core_pb2.Node)
        addresses = [a for a in node.status.addresses if a.type == "InternalIP" and a.address]
        if not addresses:
            known = " ".join(f"{{{a.type} {a.address}}}" for a in node.status.addresses)
            raise api.BadRequest(f'node "{node_name}" has no InternalIP address: no preferred addresses found; '
                                 f"known addresses: [{known}]")
        endpoint_field = node.status.daemonEndpoints.kubeletEndpoint
        port = endpoint_field.Port if endpoint_field.HasField("Port") else 0
        if port <= 0:
            raise api.Unavailable(f'node "{node_name}" publishes no kubelet endpoint '
                                  f"(status.daemonEndpoints.kubeletEndpoint.Port is not set): is its kubelet running?")
        address = addresses[0].address
        if not _is_loopback(address):
            raise api.Forbidden(f'refusing to connect to the kubelet of node "{node_name}" at {address}: kplane only '
                                f"connects to loopback addresses (127.0.0.0/8, ::1)")
        host = f"[{address}]" if ":" in address else address
        return Target(namespace, name, pod.metadata.uid, chosen, node_name, f"{host}:{port}")

    def _kubelet_error(self, exc: grpc.aio.AioRpcError, target: Target) -> api.APIError:
        if _has_status(exc):
            return api.from_rpc_error(exc)  # the kubelet's own answer (NotFound, BadRequest, ...)
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return api.Unavailable(f'error dialing backend: the kubelet of node "{target.node}" at {target.endpoint} '
                                   f"is unreachable: {exc.details()}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return api.Timeout(f'the kubelet of node "{target.node}" at {target.endpoint} timed out: {exc.details()}')
        return api.InternalError(f'error talking to the kubelet of node "{target.node}" at {target.endpoint}: '
                                 f"{code.name}: {exc.details()}")

    def _no_answer(self, target: Target) -> api.APIError:
        return api.Unavailable(f'error dialing backend: the kubelet of node "{target.node}" at {target.endpoint} did '
                               f"not answer within {self.answer_timeout:g}s")

    # -- pods/log ----------------------------------------------------------------------------

    async def log(self, request: stream_pb2.LogRequest,
                  context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.LogChunk]:
        try:
            target = await self.target(request.namespace, request.name, request.container)
        except api.APIError as exc:
            await _abort(context, exc)
            return
        forwarded = stream_pb2.LogRequest()
        forwarded.CopyFrom(request)
        forwarded.container = target.container
        forwarded.uid = target.uid
        call = self._stub(target.endpoint).Log(forwarded)
        log.info("proxying log", pod=f"{target.namespace}/{target.pod}", container=target.container,
                 node=target.node, follow=request.follow)
        error: api.APIError | None = None
        try:
            try:
                async with asyncio.timeout(self.answer_timeout):
                    first = await call.read()
            except TimeoutError:
                raise self._no_answer(target) from None
            if first is grpc.aio.EOF:
                return
            yield first
            while True:
                chunk = await call.read()
                if chunk is grpc.aio.EOF:
                    return
                yield chunk
        except grpc.aio.AioRpcError as exc:
            error = self._kubelet_error(exc, target)
        except api.APIError as exc:
            error = exc
        finally:
            call.cancel()
        if error is not None:
            await _abort(context, error)

    # -- pods/exec, pods/attach --------------------------------------------------------------

    async def session(self, request_iterator: AsyncIterator[stream_pb2.ExecInput], context: grpc.aio.ServicerContext,
                      *, attach: bool) -> AsyncIterator[stream_pb2.ExecOutput]:
        requests = aiter(request_iterator)
        try:
            first = await anext(requests, None)
            if first is None or first.WhichOneof("input") != "start":
                raise api.BadRequest(f"the first message of an {'attach' if attach else 'exec'} stream must be an "
                                     f"ExecStart (namespace, name, container, command)")
            if not attach and not first.start.command:
                raise api.BadRequest("you must specify at least one command for the container")
            target = await self.target(first.start.namespace, first.start.name, first.start.container)
        except api.APIError as exc:
            await _abort(context, exc)
            return
        start = stream_pb2.ExecInput()
        start.CopyFrom(first)
        start.start.container = target.container
        start.start.uid = target.uid
        stub = self._stub(target.endpoint)
        call = stub.Attach() if attach else stub.Exec()
        log.info("proxying attach" if attach else "proxying exec", pod=f"{target.namespace}/{target.pod}",
                 container=target.container, node=target.node)
        forward: asyncio.Task[None] | None = None
        error: api.APIError | None = None
        try:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await call.write(start)  # a failed call surfaces (with its status) in read() below
            try:
                async with asyncio.timeout(self.answer_timeout):
                    opened = await call.read()
            except TimeoutError:
                raise self._no_answer(target) from None
            if opened is grpc.aio.EOF:
                return
            yield opened
            forward = asyncio.create_task(_forward_input(requests, call))
            while True:
                out = await call.read()
                if out is grpc.aio.EOF:
                    return
                yield out
        except grpc.aio.AioRpcError as exc:
            error = self._kubelet_error(exc, target)
        except api.APIError as exc:
            error = exc
        finally:
            if forward is not None:
                forward.cancel()
            call.cancel()
        if error is not None:
            await _abort(context, error)


async def _forward_input(requests: AsyncIterator[stream_pb2.ExecInput], call: Any) -> None:
    """Client -> kubelet: stdin, stdin close and resizes, then half-close when the client has."""
    try:
        async for msg in requests:
            await call.write(msg)
        await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass  # the call ended; its outcome is read on the output side


async def _abort(context: grpc.aio.ServicerContext, exc: api.APIError) -> None:
    await context.abort_with_status(rpc_status.to_status(exc.to_grpc_status()))
