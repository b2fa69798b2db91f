"""Container probes: one check (:func:`run_probe`) and the periodic worker (:class:`ProbeWorker`).

:func:`run_probe` runs one exec/httpGet/tcpSocket/grpc check and words its outcome as
Kubernetes' prober does, because that text is what users read in ``Unhealthy`` events
(``Liveness probe failed: HTTP probe failed with statuscode: 500``)::

    HTTP probe failed with statuscode: 500
    Get "http://127.244.0.5:8080/healthz": dial tcp 127.244.0.5:8080: connect: connection refused
    Get "http://127.244.0.5:8080/healthz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)
    dial tcp 127.244.0.5:81: connect: connection refused
    command "sleep 10" timed out

The HTTP client is a small asyncio HTTP/1.1 GET (no new dependency): ``Connection: close``,
``User-Agent: kube-probe/<version>``, ``Accept: */*``, the probe's ``httpHeaders`` (a ``Host``
header sets the request's host), at most 10 KiB of body read, redirects followed only to the
same host name (up to 10) and a redirect elsewhere reported as a success with a ``ProbeWarning``
— Kubernetes' ``followNonLocalRedirects=false``. HTTPS does not verify certificates. gRPC probes
use the standard ``grpc.health.v1.Health/Check`` through grpcio (already a dependency).

:class:`ProbeWorker` is Kubernetes' prober worker (``pkg/kubelet/prober/worker.go``) for one
probe of one container *attempt*: the first check ``initialDelaySeconds`` after the container
started, then every ``periodSeconds``; the result flips only after ``successThreshold``
consecutive successes / ``failureThreshold`` consecutive failures; initial results are
readiness=failure, liveness=success, startup=unknown (reported as failure); liveness and
readiness do not run until the startup probe (if the container has one) has succeeded, which the
owner signals with :meth:`ProbeWorker.startup_succeeded`; a startup probe stops after its first
success, and a liveness/startup worker stops probing once it has reported a failure (the
container is going to be killed; a new attempt gets new workers).

Differences from Kubernetes, all deliberate: the first check happens exactly at
``initialDelaySeconds`` (Kubernetes checks on its period ticker, so up to one period later), there
is no random start jitter after a kubelet restart, and :meth:`ProbeWorker.trigger` (an immediate
check, which Kubernetes uses for readiness) is called by the worker itself on startup success.
``time_scale`` multiplies every delay, period and timeout (tests use small scales).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import kplane
from kplane.api.pb import core_pb2
from kplane.logs import get_logger
from kubelet.env import go_quote
from kubelet.runtime import Runtime, RuntimeFailure

__all__ = [
    "ProbeKind",
    "ProbeResult",
    "ProbeWorker",
    "resolve_port",
    "run_probe",
]

log = get_logger(component="kubelet")

ProbeKind = Literal["liveness", "readiness", "startup"]

MAX_OUTPUT = 10 * 1024  # Kubernetes reads at most 10 KiB of exec output / HTTP body
MAX_REDIRECTS = 10
USER_AGENT = "kube-probe/" + ".".join(kplane.__version__.split(".")[:2])

DEFAULT_TIMEOUT_SECONDS = 1
DEFAULT_PERIOD_SECONDS = 10
DEFAULT_SUCCESS_THRESHOLD = 1
DEFAULT_FAILURE_THRESHOLD = 3


@dataclass(frozen=True)
class ProbeResult:
    """One check's outcome. ``warning``: a success Kubernetes reports with a ``ProbeWarning``
    event (a redirect it did not follow). ``errored``: the check could not be run at all (an
    unknown named port, the runtime failing the exec): Kubernetes throws such a result away
    (``probe errored`` event) instead of counting it as a failure."""

    success: bool
    message: str
    warning: bool = False
    errored: bool = False


# --------------------------------------------------------------------------------------------
# Helpers


def _go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` (enough of it for probe timeouts)."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        for unit, scale in (("ms", 1e3), ("µs", 1e6), ("ns", 1e9)):
            value = seconds * scale
            if value >= 1 or unit == "ns":
                return f"{round(value, 6):g}{unit}"
    whole_minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(whole_minutes), 60)
    sec_text = f"{round(secs, 9):g}s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _errno_text(exc: OSError) -> str:
    """Go's syscall error text: strerror, lower case ("connection refused")."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc).lower() or type(exc).__name__


def _dial_error(exc: OSError, host: str, hostport: str) -> str:
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    return f"dial tcp {hostport}: connect: {_errno_text(exc)}"


def resolve_port(port: Any, container: core_pb2.Container | None) -> int:
    """``probe.ResolveContainerPort``: an int, a named container port, or a number in a string.
    Raises ValueError with Kubernetes' wording."""
    if port is None or not port.ListFields():
        raise ValueError("intOrString had no kind")
    if port.type == 1:
        name = port.strVal
        found = next((p.containerPort for p in (container.ports if container else ()) if p.name == name), None)
        if found is None:
            try:
                found = int(name, 10)
            except ValueError:
                raise ValueError(f'strconv.Atoi: parsing {go_quote(name)}: invalid syntax') from None
        value = found
    else:
        value = port.intVal
    if 0 < value < 65536:
        return value
    raise ValueError(f"invalid port number: {value}")


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


# --------------------------------------------------------------------------------------------
# exec


async def _exec_probe(action: core_pb2.ExecAction, container_id: str, runtime: Runtime, timeout: float) -> ProbeResult:
    argv = list(action.command)
    timed_out_msg = f"command {go_quote(' '.join(argv))} timed out"
    try:
        # The runtime enforces the timeout; the outer bound only guards against a runtime that hangs.
        result = await asyncio.wait_for(runtime.exec_sync(container_id, argv, timeout), timeout * 2 + 5)
    except TimeoutError:
        return ProbeResult(False, timed_out_msg)
    except RuntimeFailure as exc:
        return ProbeResult(False, exc.message, errored=True)
    if result.timed_out:
        return ProbeResult(False, timed_out_msg)
    output = result.output[:MAX_OUTPUT].decode("utf-8", "replace")
    return ProbeResult(result.exit_code == 0, output)


# --------------------------------------------------------------------------------------------
# tcpSocket


async def _tcp_probe(host: str, port: int, timeout: float) -> ProbeResult:
    hostport = _join_host_port(host, port)
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {hostport}: i/o timeout")
    except OSError as exc:
        return ProbeResult(False, _dial_error(exc, host, hostport))
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return ProbeResult(True, "")


# --------------------------------------------------------------------------------------------
# httpGet


class _HTTPError(Exception):
    """A transport failure; the message is the Go error text after ``Get "<url>": ``."""


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _format_url(scheme: str, host: str, port: int, path: str) -> str:
    if path and not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{_join_host_port(host, port)}{path}"


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while len(body) < MAX_OUTPUT:
            size_line = await reader.readline()
            if not size_line:
                break
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            body += await reader.readexactly(size)
            await reader.readline()
        return bytes(body[:MAX_OUTPUT])
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return await reader.readexactly(min(int(length), MAX_OUTPUT))
    return await reader.read(MAX_OUTPUT)


async def _http_once(url: str, headers: list[tuple[str, str]], host_header: str | None) -> _Response:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    hostport = _join_host_port(host, port)
    ctx: ssl.SSLContext | None = None
    if parts.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                       server_hostname=host if ctx else None)
    except ssl.SSLError as exc:
        raise _HTTPError(f"tls: {exc.reason or exc}".lower()) from exc
    except OSError as exc:
        raise _HTTPError(_dial_error(exc, host, hostport)) from exc
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header or parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise _HTTPError("EOF")
        fields = status_line.decode("latin-1").split(None, 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            raise _HTTPError(f"net/http: HTTP/1.x transport connection broken: malformed HTTP response "
                             f"{go_quote(status_line.decode('latin-1').rstrip())}")
        status = int(fields[1])
        resp_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            resp_headers[name.strip().lower()] = value.strip()
        try:
            body = await _read_body(reader, resp_headers)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            body = b""  # Kubernetes logs a short body and carries on
        return _Response(status, resp_headers, body)
    except ConnectionResetError as exc:
        raise _HTTPError(f"read tcp {hostport}: read: connection reset by peer") from exc
    except OSError as exc:
        raise _HTTPError(f"read tcp {hostport}: {_errno_text(exc)}") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _http_probe(action: core_pb2.HTTPGetAction, host: str, port: int, timeout: float) -> ProbeResult:
    scheme = (action.scheme or "HTTP").lower()
    url = _format_url(scheme, host, port, action.path)
    headers: list[tuple[str, str]] = []
    host_header: str | None = None
    for h in action.httpHeaders:
        if h.name.lower() == "host":
            host_header = h.value
        else:
            headers.append((h.name, h.value))
    names = {name.lower() for name, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", USER_AGENT))
    if "accept" not in names:
        headers.append(("Accept", "*/*"))
    first_host = urlsplit(url).hostname
    current = url
    try:
        async with asyncio.timeout(timeout):
            for redirects in range(MAX_REDIRECTS + 1):
                resp = await _http_once(current, headers, host_header)
                location = resp.headers.get("location")
                if resp.status in (301, 302, 303, 307, 308) and location:
                    nxt = urljoin(current, location)
                    if urlsplit(nxt).hostname != first_host:
                        break  # http.ErrUseLastResponse: the 3xx is the result
                    if redirects + 1 >= MAX_REDIRECTS:  # Go: len(via) >= 10
                        return ProbeResult(False, f"Get {go_quote(nxt)}: stopped after {MAX_REDIRECTS} redirects")
                    current = nxt
                    host_header = None
                    continue
                break
    except TimeoutError:
        return ProbeResult(False, f"Get {go_quote(current)}: context deadline exceeded "
                                  "(Client.Timeout exceeded while awaiting headers)")
    except _HTTPError as exc:
        return ProbeResult(False, f"Get {go_quote(current)}: {exc}")
    body = resp.body.decode("utf-8", "replace")
    if 200 <= resp.status < 400:
        if resp.status >= 300:
            return ProbeResult(True, f"Probe terminated redirects, Response body: {body}", warning=True)
        return ProbeResult(True, body)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {resp.status}")


# --------------------------------------------------------------------------------------------
# grpc


async def _grpc_probe(action: core_pb2.GRPCAction, host: str, timeout: float) -> ProbeResult:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = action.port
    if not 0 < port < 65536:
        return ProbeResult(False, f"invalid port number: {port}", errored=True)
    addr = _join_host_port(host, port)
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(addr) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except TimeoutError:
            return ProbeResult(False, f"timeout: failed to connect service {go_quote(addr)} within "
                                      f"{_go_duration(timeout)}: context deadline exceeded")
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=action.service),
                                    timeout=max(deadline - time.monotonic(), 0.001))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return ProbeResult(False, "timeout: this server doesn't implement the grpc health protocol "
                                          f"(grpc.health.v1.Health): {addr}\n")
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return ProbeResult(False, f"timeout: health rpc did not complete within {_go_duration(timeout)}")
            return ProbeResult(False, f"error: health rpc probe failed: rpc error: code = "
                                      f"{_grpc_code_name(exc.code())} desc = {exc.details()}")
    if resp.status != health_pb2.HealthCheckResponse.SERVING:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        return ProbeResult(False, f"service unhealthy (responded with {go_quote(name)})")
    return ProbeResult(True, "service is healthy")


def _grpc_code_name(code: Any) -> str:
    """Go's codes.Code String(): CamelCase (``Unavailable``, ``NotFound``)."""
    return "".join(part.capitalize() for part in code.name.split("_"))


# --------------------------------------------------------------------------------------------
# run_probe


async def run_probe(probe: core_pb2.Probe, *, pod_ip: str, container_id: str, runtime: Runtime,
                    timeout: float | None = None, container: core_pb2.Container | None = None) -> ProbeResult:
    """Run one check of ``probe`` against the container. ``timeout`` defaults to the probe's
    ``timeoutSeconds`` (1); ``container`` resolves named ports. Never raises for a failing
    target: every outcome is a :class:`ProbeResult`."""
    if timeout is None:
        timeout = float(probe.timeoutSeconds or DEFAULT_TIMEOUT_SECONDS)
    try:
        if probe.HasField("exec"):
            return await _exec_probe(probe.exec, container_id, runtime, timeout)
        if probe.HasField("httpGet"):
            action = probe.httpGet
            port = resolve_port(action.port if action.HasField("port") else None, container)
            return await _http_probe(action, action.host or pod_ip, port, timeout)
        if probe.HasField("tcpSocket"):
            tcp = probe.tcpSocket
            port = resolve_port(tcp.port if tcp.HasField("port") else None, container)
            return await _tcp_probe(tcp.host or pod_ip, port, timeout)
        if probe.HasField("grpc"):
            return await _grpc_probe(probe.grpc, pod_ip, timeout)
    except ValueError as exc:
        return ProbeResult(False, str(exc), errored=True)
    return ProbeResult(False, "missing probe handler", errored=True)


# --------------------------------------------------------------------------------------------
# ProbeWorker

OnResult = Callable[[str, str, bool, str], Awaitable[None] | None]
OnMessage = Callable[[str, str, str], Awaitable[None] | None]


class ProbeWorker:
    """Probes one container attempt periodically and reports through callbacks (each may be a
    plain function or a coroutine function):

    - ``on_result(kind, container_name, success, message)`` — the result *changed* (after the
      thresholds), relative to the initial value; ``message`` is the last check's message;
    - ``on_failure(kind, container_name, message)`` — every failed check (the owner records
      ``Unhealthy``: ``f"{kind.capitalize()} probe failed: {message}"``);
    - ``on_warning(kind, container_name, message)`` — a success with a warning (``ProbeWarning``);
    - ``on_error(kind, container_name, message)`` — a check that could not run (``probe errored``);
      not counted towards thresholds; reported through ``on_failure`` when no ``on_error`` is given.

    ``started_at`` is the container's start time (unix seconds; default: now).
    """

    def __init__(self, *, kind: str, probe: core_pb2.Probe, container: core_pb2.Container, container_id: str,
                 pod_ip: str, runtime: Runtime, on_result: OnResult, on_failure: OnMessage | None = None,
                 on_warning: OnMessage | None = None, on_error: OnMessage | None = None,
                 has_startup_probe: bool = False, started_at: float | None = None,
                 time_scale: float = 1.0) -> None:
        if kind not in ("liveness", "readiness", "startup"):
            raise ValueError(f"unknown probe kind {kind!r}")
        self.kind = kind
        self.probe = probe
        self.container = container
        self.container_id = container_id
        self.pod_ip = pod_ip
        self.runtime = runtime
        self.on_result = on_result
        self.on_failure = on_failure
        self.on_warning = on_warning
        self.on_error = on_error
        self.time_scale = time_scale
        self.started_at = time.time() if started_at is None else started_at
        self.initial_delay = max(probe.initialDelaySeconds, 0) * time_scale
        self.period = (probe.periodSeconds or DEFAULT_PERIOD_SECONDS) * time_scale
        self.timeout = (probe.timeoutSeconds or DEFAULT_TIMEOUT_SECONDS) * time_scale
        self.success_threshold = probe.successThreshold or DEFAULT_SUCCESS_THRESHOLD
        self.failure_threshold = probe.failureThreshold or DEFAULT_FAILURE_THRESHOLD
        # The reported result: readiness starts failed, liveness healthy, startup unknown (None).
        self.result: bool | None = {"readiness": False, "liveness": True, "startup": None}[kind]
        self._last: bool | None = None
        self._run_length = 0
        self._startup_done = not has_startup_probe or kind == "startup"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.on_hold = False  # a liveness/startup failure was reported: no more checks
        self.checks = 0  # checks run (for tests and logs)

    @property
    def container_name(self) -> str:
        return self.container.name

    @property
    def success(self) -> bool:
        """The current result with "unknown" as failure (a startup probe before its verdict)."""
        return bool(self.result)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"probe-{self.kind}-{self.container.name}-{self.container_id[:12]}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def trigger(self) -> None:
        """Check now instead of at the next period (ignored before the initial delay)."""
        self._wake.set()

    def startup_succeeded(self, success: bool) -> None:
        """The container's startup probe reported (liveness/readiness only run after a success)."""
        was = self._startup_done
        self._startup_done = success or self.kind == "startup"
        if self._startup_done and not was:
            self.trigger()

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            delay = self.started_at + self.initial_delay - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._wake.clear()
            next_at = time.monotonic()
            while True:
                if self._startup_done and not await self._check():
                    return
                next_at += self.period
                now = time.monotonic()
                if next_at <= now:  # a check overran its period: skip the missed ticks, as a ticker does
                    next_at += max(math.ceil((now - next_at) / self.period), 1) * self.period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(next_at - time.monotonic(), 0))
                self._wake.clear()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("probe worker crashed", probe=self.kind, container=self.container.name)

    async def _notify(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            await _maybe_await(callback(self.kind, self.container.name, *args))
        except Exception:
            log.exception("probe callback failed", probe=self.kind, container=self.container.name)

    async def _check(self) -> bool:
        """One check and its bookkeeping; False when this worker is done probing."""
        res = await run_probe(self.probe, pod_ip=self.pod_ip, container_id=self.container_id,
                              runtime=self.runtime, timeout=self.timeout, container=self.container)
        self.checks += 1
        if res.errored:
            await self._notify(self.on_error or self.on_failure, res.message)
            return True
        if not res.success:
            await self._notify(self.on_failure, res.message)
        elif res.warning:
            await self._notify(self.on_warning, res.message)
        outcome = res.success
        if self._last == outcome:
            self._run_length += 1
        else:
            self._last = outcome
            self._run_length = 1
        if (not outcome and self._run_length < self.failure_threshold) or (
                outcome and self._run_length < self.success_threshold):
            return True
        if self.result != outcome:
            self.result = outcome
            await self._notify(self.on_result, outcome, res.message)
        if not outcome and self.kind in ("liveness", "startup"):
            self.on_hold = True  # the container will be restarted; its next attempt gets new workers
            self._run_length = 0
            return False
        return not (outcome and self.kind == "startup")  # a started container is not probed for startup again
