"""The kubelet's streaming server: container logs, exec and attach (the one data-plane path).

Control never flows through here: the apiserver proxies `pods/log`, `pods/exec` and `pods/attach`
to this gRPC server (service `KubeletStreaming`, stream.proto) on the port the kubelet publishes in
its Node's `status.daemonEndpoints.kubeletEndpoint.Port`, as Kubernetes does with the kubelet's
`/containerLogs` and `/exec` endpoints.

Which container a request means is the kubelet's knowledge, not the runtime's: the kubelet
implements :class:`ContainerLocator` (pod by namespace/name, container by name, the current or
the previous attempt) and raises :class:`LocateError` or the errors built by the helpers below,
which carry Kubernetes' reasons and wording. Every "the request cannot be served as asked" error is a **BadRequest**
(gRPC INVALID_ARGUMENT), as the kubelet and apiserver answer with HTTP 400; a missing pod is
NotFound.

Logs are read from the container's log FILE (``Runtime.log_path``), never from the process, so
they survive restarts of the kubelet and of the container (``previous``). Two file formats are
understood, detected from the file's first line: the CRI format the kubelet's runtimes write in
Kubernetes (``<RFC3339Nano time> <stdout|stderr> <F|P> <text>`` per line; ``timestamps`` come from
it, ``P`` marks a partial line), and raw output (the bytes the process wrote; ``timestamps`` are
then unavailable and ignored). Use :func:`format_cri_line` to write the CRI format.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import grpc
from grpc_status import rpc_status

from kplane.api import errors as api
from kplane.api.pb import meta_pb2, stream_pb2, stream_pb2_grpc  # noqa: F401  (meta_pb2: Status details)
from kplane.api.podstream import (
    choose_container,
    not_running,
    pod_not_found,
    previous_not_found,
    waiting_to_start,
)
from kplane.logs import get_logger
from kubelet.runtime import ContainerInfo, ExecProcess, NotFound, Runtime, RuntimeFailure

log = get_logger(component="kubelet")

READ_CHUNK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.1  # how often a followed log checks for new bytes and for the container's exit
CRI_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\S+) (stdout|stderr) ([FP]) ")


POD_UID_LABEL = "kplane.io/pod-uid"  # on the kubelet's containers: which pod (UID) an attempt belongs to


class LocateError(Exception):
    """Why a locator cannot name a container: `reason` is the Kubernetes Status reason
    ("NotFound" for a pod this kubelet does not run, "BadRequest" for everything else), `message`
    Kubernetes' wording (see the helpers re-exported below, which build ready-made errors)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def to_api_error(self) -> api.APIError:
        return api.NotFound(self.message) if self.reason == "NotFound" else api.BadRequest(self.message)


class ContainerLocator(Protocol):
    """Implemented by the kubelet: which container attempt a streaming request addresses.

    ``container`` is "" when the caller named none (then: the pod's
    `kubectl.kubernetes.io/default-container`, or its only container — :func:`choose_container`
    words the error otherwise). ``previous`` asks for the attempt before the current one
    (``kubectl logs --previous``).

    Returns the ContainerInfo whose log / process to use (synchronously, or as an awaitable), or
    raises :class:`LocateError` or an :class:`api.APIError` — e.g. :func:`pod_not_found`,
    :func:`choose_container`'s errors, :func:`previous_not_found`, :func:`waiting_to_start`. A
    returned container labelled with :data:`POD_UID_LABEL` is also checked against the pod UID the
    apiserver saw, so a re-created pod of the same name is never mistaken for the old one.
    """

    def locate(self, namespace: str, name: str, container: str,
               previous: bool) -> ContainerInfo | Awaitable[ContainerInfo]: ...


# The errors a locator raises, with Kubernetes' wording (shared with the apiserver's proxy).
__all__ = ["POD_UID_LABEL", "ContainerLocator", "LocateError", "StreamingServer", "choose_container", "format_cri_line", "not_running",
           "pod_not_found", "previous_not_found", "waiting_to_start"]


# -- the log file ---------------------------------------------------------------------------------


def format_cri_line(stream: str, data: bytes, when: datetime | None = None, *, partial: bool = False) -> bytes:
    """One line of a CRI log file: `2026-11-21T22:01:40.123456789Z stdout F hello\\n`.

    `data` is one line of output without its newline; `partial` (P) marks a piece of a line that
    continues in the next entry (a long line split, or output not ending in a newline yet)."""
    t = (when or datetime.now(UTC)).astimezone(UTC)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"
    return b"%s %s %s %s\n" % (stamp.encode(), stream.encode(), b"P" if partial else b"F", data)


def tail_offset(path: Path, lines: int) -> int:
    """The byte offset where the last `lines` lines of the file begin (reading backwards in blocks,
    so a large log is not read whole). A final line without its newline counts as a line."""
    size = path.stat().st_size
    if lines <= 0:
        return size
    with path.open("rb") as f:
        pos = size
        found = 0
        # a trailing newline ends the last line; it does not start another one
        f.seek(max(size - 1, 0))
        skip_last = size > 0 and f.read(1) == b"\n"
        end = size - 1 if skip_last else size
        pos = end
        while pos > 0:
            step = min(READ_CHUNK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            idx = len(block)
            while True:
                idx = block.rfind(b"\n", 0, idx)
                if idx < 0:
                    break
                found += 1
                if found == lines:
                    return pos + idx + 1
        return 0


class _LogDecoder:
    """Turns log-file bytes into what the user sees: CRI lines decoded (timestamps kept only when
    asked for), raw files passed through. The format is decided by the first line (or 64 bytes)."""

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps
        self.cri: bool | None = None
        self.pending = b""

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        self.pending += data
        if self.cri is None:
            if b"\n" not in self.pending and len(self.pending) < 64 and not final:
                return b""
            self.cri = bool(CRI_LINE.match(self.pending)) if self.pending else None
            if self.cri is None:
                return b""
        if not self.cri:
            raw, self.pending = self.pending, b""
            return raw
        out = bytearray()
        *lines, self.pending = self.pending.split(b"\n")
        if final and self.pending:
            lines.append(self.pending)
            self.pending = b""
        for line in lines:
            m = CRI_LINE.match(line)
            if m is None:  # not a CRI entry after all (a hand-edited file?): show it as it is
                out += line + b"\n"
                continue
            text = line[m.end():]
            if self.timestamps:
                out += m.group(1) + b" "
            out += text
            if m.group(3) == b"F":
                out += b"\n"
        return bytes(out)


# -- the gRPC service -----------------------------------------------------------------------------


async def _abort(context: grpc.aio.ServicerContext, exc: api.APIError) -> None:
    await context.abort_with_status(rpc_status.to_status(exc.to_grpc_status()))


class _Servicer(stream_pb2_grpc.KubeletStreamingServicer):
    def __init__(self, runtime: Runtime, locator: ContainerLocator) -> None:
        self.runtime = runtime
        self.locator = locator

    async def _locate(self, namespace: str, name: str, container: str, previous: bool,
                      uid: str) -> ContainerInfo:
        if not namespace or not name:
            raise api.BadRequest("a pod namespace and name are required")
        try:
            located = self.locator.locate(namespace, name, container, previous)
            info = await located if inspect.isawaitable(located) else located
        except LocateError as exc:
            raise exc.to_api_error() from None
        assert isinstance(info, ContainerInfo)
        if uid and info.labels.get(POD_UID_LABEL, uid) != uid:
            raise pod_not_found(name)
        return info

    # -- logs ----------------------------------------------------------------------------------

    async def Log(self, request: stream_pb2.LogRequest,
                  context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.LogChunk]:
        try:
            info = await self._locate(request.namespace, request.name, request.container, request.previous,
                                      request.uid)
            if request.HasField("tail_lines") and request.tail_lines < 0:
                raise api.BadRequest("tailLines must be greater than or equal to 0")
            if request.HasField("limit_bytes") and request.limit_bytes < 1:
                raise api.BadRequest("limitBytes must be greater than 0")
        except api.APIError as exc:
            await _abort(context, exc)
            return
        yield stream_pb2.LogChunk()  # the container was found: the stream is open
        path = info.log_path or self.runtime.log_path(info.id)
        limit = request.limit_bytes if request.HasField("limit_bytes") else None
        tail = request.tail_lines if request.HasField("tail_lines") else None
        sent = 0
        async for data in self._read_log(info, path, follow=request.follow and not request.previous,
                                         tail=tail, timestamps=request.timestamps):
            if limit is not None and sent + len(data) >= limit:
                yield stream_pb2.LogChunk(data=data[: limit - sent])
                return
            sent += len(data)
            yield stream_pb2.LogChunk(data=data)

    async def _read_log(self, info: ContainerInfo, path: Path | None, *, follow: bool, tail: int | None,
                        timestamps: bool) -> AsyncIterator[bytes]:
        decoder = _LogDecoder(timestamps)
        f = None
        try:
            while True:
                if f is None and path is not None and path.exists():
                    f = path.open("rb")
                    if tail is not None:
                        f.seek(tail_offset(path, tail))
                if f is not None:
                    data = f.read(READ_CHUNK)
                    if data:
                        out = decoder.feed(data)
                        if out:
                            yield out
                        continue
                # at the end of what has been written so far
                if not follow or await self._exited(info):
                    if f is not None:  # a last read: the container may have written as it exited
                        while data := f.read(READ_CHUNK):
                            out = decoder.feed(data)
                            if out:
                                yield out
                    out = decoder.feed(b"", final=True)
                    if out:
                        yield out
                    return
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        finally:
            if f is not None:
                f.close()

    async def _exited(self, info: ContainerInfo) -> bool:
        try:
            status = await self.runtime.container_status(info.id)
        except NotFound:
            return True
        return status.state in ("exited", "unknown")

    # -- exec / attach -------------------------------------------------------------------------

    async def Exec(self, request_iterator: AsyncIterator[stream_pb2.ExecInput],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.ExecOutput]:
        async for out in self._session(request_iterator, context, attach=False):
            yield out

    async def Attach(self, request_iterator: AsyncIterator[stream_pb2.ExecInput],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[stream_pb2.ExecOutput]:
        async for out in self._session(request_iterator, context, attach=True):
            yield out

    async def _session(self, request_iterator: AsyncIterator[stream_pb2.ExecInput],
                       context: grpc.aio.ServicerContext, *, attach: bool) -> AsyncIterator[stream_pb2.ExecOutput]:
        verb = "attach" if attach else "exec"
        try:
            requests = aiter(request_iterator)
            first = await anext(requests, None)
            if first is None or first.WhichOneof("input") != "start":
                raise api.BadRequest(f"the first message of an {verb} stream must be an ExecStart")
            start = first.start
            if not attach and not start.command:
                raise api.BadRequest("you must specify at least one command for the container")
            info = await self._locate(start.namespace, start.name, start.container, False, start.uid)
            if info.state != "running":
                raise not_running(info.name, start.name)
            try:
                if attach:
                    proc = await self.runtime.attach(info.id)
                else:
                    proc = await self.runtime.exec(info.id, list(start.command), stdin=start.stdin, tty=start.tty)
            except NotFound:
                raise api.NotFound(f'container not found ("{info.name}")') from None
            except RuntimeFailure as exc:
                raise api.InternalError(f"Internal error occurred: error {'attaching to' if attach else 'executing'} "
                                        f"command in container: {exc.message}") from None
        except api.APIError as exc:
            await _abort(context, exc)
            return
        log.info(f"{verb} started", pod=f"{start.namespace}/{start.name}", container=info.name,
                 command=list(start.command) if not attach else None)
        pump = asyncio.create_task(self._pump_stdin(requests, proc, start.stdin))
        finished = False
        try:
            yield stream_pb2.ExecOutput(started=True)
            async for stream, data in proc.output():
                yield (stream_pb2.ExecOutput(stderr=data) if stream == "stderr" else stream_pb2.ExecOutput(stdout=data))
            code = await proc.wait()
            finished = True
            yield stream_pb2.ExecOutput(exit=stream_pb2.ExecExit(exit_code=code))
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            if not finished and not attach:
                # the caller went away: an exec'd command does not outlive its session (as with
                # Kubernetes, whose exec ends when the stream does); an attached container does
                with contextlib.suppress(Exception):
                    await asyncio.shield(proc.kill())

    @staticmethod
    async def _pump_stdin(request_iterator: AsyncIterator[stream_pb2.ExecInput], proc: ExecProcess,
                          stdin: bool) -> None:
        """Client input -> the process's stdin, until stdin_close or the end of the client's stream."""
        closed = False
        try:
            async for msg in request_iterator:
                which = msg.WhichOneof("input")
                if which == "stdin" and stdin and not closed:
                    await proc.write_stdin(msg.stdin)
                elif which == "stdin_close" and stdin and not closed:
                    closed = True
                    await proc.close_stdin()
                # resize: the runtimes have no pseudo-terminals to resize; a second start is ignored
        except (grpc.aio.AioRpcError, OSError, RuntimeFailure):
            pass
        if stdin and not closed:
            with contextlib.suppress(Exception):
                await proc.close_stdin()


class StreamingServer:
    """The kubelet's gRPC streaming endpoint. `start()` binds (port 0: any free port, see
    `.port`), `stop()` ends every open stream. Binds to loopback by default: kplane never serves
    off loopback."""

    def __init__(self, runtime: Runtime, locator: ContainerLocator, bind_host: str = "127.0.0.1", port: int = 0) -> None:
        self.runtime = runtime
        self.locator = locator
        self.bind_host = bind_host
        self.port = port
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.bind_host}:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0),
                                          ("grpc.keepalive_permit_without_calls", 1),
                                          ("grpc.http2.min_ping_interval_without_data_ms", 5000)])
        stream_pb2_grpc.add_KubeletStreamingServicer_to_server(_Servicer(self.runtime, self.locator), server)
        address = f"{self.bind_host}:{self.port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"kubelet streaming server: cannot listen on {address}: {exc}") from None
        if bound == 0:
            raise OSError(f"kubelet streaming server: cannot listen on {address} (is the port in use?)")
        self.port = bound
        await server.start()
        self._server = server
        log.info("streaming server listening", address=self.address)

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await server.stop(grace)

    async def __aenter__(self) -> StreamingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

