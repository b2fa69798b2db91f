"""kubelet.probes with real sockets on 127.0.0.1 and real subprocesses.

The runtime double implements only `exec_sync`, by running the command as a local subprocess
(a container runtime would run it inside the container). Worker tests scale every period by
`time_scale` and poll for outcomes with generous deadlines; the only timing assertions are lower
bounds ("not before the initial delay").
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from kplane.api.codec import from_dict
from kplane.api.pb import core_pb2
from kubelet.probes import ProbeResult, ProbeWorker, run_probe
from kubelet.runtime import ExecResult, Runtime, RuntimeFailure

DEADLINE = 20.0


class ExecRuntime:
    """Only exec_sync, with real processes. ``fail`` makes it raise as a runtime would for a
    container that is gone."""

    name = "exec-only"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        self.calls += 1
        if self.fail:
            raise RuntimeFailure("NotFound", f"container {container_id} not found")
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return ExecResult(exit_code=-1, output=b"", timed_out=True)
        assert proc.returncode is not None
        return ExecResult(exit_code=proc.returncode, output=out)


def runtime(fail: bool = False) -> Runtime:
    return cast(Runtime, ExecRuntime(fail))


@dataclass
class HTTPServer:
    port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=lambda: {"/toggle": 200})


@pytest.fixture
async def http() -> AsyncIterator[HTTPServer]:
    state = HTTPServer(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                k, _, v = line.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
            target = request_line.split()[1]
            state.requests.append((target, headers))
            path = target.split("?")[0]
            extra = ""
            body = b"ok"
            if path == "/slow":
                await asyncio.sleep(30)
            if path == "/close":
                return
            if path in ("/ok", "/healthz"):
                status = 200
            elif path == "/fail":
                status, body = 500, b"secret internals"
            elif path == "/toggle":
                status = state.status["/toggle"]
            elif path == "/redirect-local":
                status, extra = 302, "Location: /ok\r\n"
            elif path == "/redirect-away":
                status, extra, body = 302, "Location: http://elsewhere.invalid/x\r\n", b"moved"
            elif path == "/loop":
                status, extra = 302, "Location: /loop\r\n"
            elif path == "/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
                await writer.drain()
                return
            else:
                status = 404
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            if task.get_coro().__qualname__.startswith("http.<locals>.handle"):  # type: ignore[union-attr]
                task.cancel()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(spec: dict[str, Any]) -> core_pb2.Probe:
    return from_dict(spec, core_pb2.Probe)


async def check(spec: dict[str, Any], *, rt: Runtime | None = None, timeout: float = 5.0,
                container: dict[str, Any] | None = None) -> ProbeResult:
    ctr = from_dict(container or {"name": "c"}, core_pb2.Container)
    return await run_probe(probe(spec), pod_ip="127.0.0.1", container_id="cid", runtime=rt or runtime(),
                           timeout=timeout, container=ctr)


async def eventually(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# -- httpGet ---------------------------------------------------------------------------------------

async def test_http_success_and_status_failure(http: HTTPServer) -> None:
    ok = await check({"httpGet": {"path": "/ok", "port": http.port}})
    assert ok.success and not ok.warning
    bad = await check({"httpGet": {"path": "/fail", "port": http.port}})
    assert bad == ProbeResult(False, "HTTP probe failed with statuscode: 500")  # never the body


async def test_http_request_shape(http: HTTPServer) -> None:
    await check({"httpGet": {"path": "/ok?x=1", "port": "web", "httpHeaders": [
        {"name": "X-Probe", "value": "yes"}, {"name": "Host", "value": "example.test"}]}},
        container={"name": "c", "ports": [{"name": "web", "containerPort": http.port}]})
    target, headers = http.requests[-1]
    assert target == "/ok?x=1"
    assert headers["host"] == "example.test"
    assert headers["x-probe"] == "yes"
    assert headers["user-agent"].startswith("kube-probe/")
    assert headers["accept"] == "*/*"
    await check({"httpGet": {"port": http.port}})  # no path: "/"
    assert http.requests[-1][0] == "/"
    assert http.requests[-1][1]["host"] == f"127.0.0.1:{http.port}"


async def test_http_connection_refused_wording() -> None:
    port = closed_port()
    res = await check({"httpGet": {"path": "/healthz", "port": port}})
    assert res == ProbeResult(False, f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: '
                                     "connect: connection refused")


async def test_http_timeout_wording(http: HTTPServer) -> None:
    res = await check({"httpGet": {"path": "/slow", "port": http.port}}, timeout=0.2)
    assert res == ProbeResult(False, f'Get "http://127.0.0.1:{http.port}/slow": context deadline exceeded '
                                     "(Client.Timeout exceeded while awaiting headers)")


async def test_http_closed_without_response(http: HTTPServer) -> None:
    res = await check({"httpGet": {"path": "/close", "port": http.port}})
    assert res == ProbeResult(False, f'Get "http://127.0.0.1:{http.port}/close": EOF')


async def test_http_redirects(http: HTTPServer) -> None:
    local = await check({"httpGet": {"path": "/redirect-local", "port": http.port}})
    assert local.success and not local.warning
    assert [t for t, _ in http.requests[-2:]] == ["/redirect-local", "/ok"]
    away = await check({"httpGet": {"path": "/redirect-away", "port": http.port}})
    assert away == ProbeResult(True, "Probe terminated redirects, Response body: moved", warning=True)
    loop = await check({"httpGet": {"path": "/loop", "port": http.port}})
    assert loop == ProbeResult(False, f'Get "http://127.0.0.1:{http.port}/loop": stopped after 10 redirects')


async def test_http_chunked_body(http: HTTPServer) -> None:
    assert await check({"httpGet": {"path": "/chunked", "port": http.port}}) == ProbeResult(True, "hi")


async def test_named_port_errors() -> None:
    res = await check({"httpGet": {"path": "/", "port": "nope"}})
    assert res == ProbeResult(False, 'strconv.Atoi: parsing "nope": invalid syntax', errored=True)
    res = await check({"tcpSocket": {"port": 70000}})
    assert res == ProbeResult(False, "invalid port number: 70000", errored=True)


# -- tcpSocket -------------------------------------------------------------------------------------

async def test_tcp(http: HTTPServer) -> None:
    assert (await check({"tcpSocket": {"port": http.port}})).success
    port = closed_port()
    res = await check({"tcpSocket": {"port": port}})
    assert res == ProbeResult(False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


# -- exec ------------------------------------------------------------------------------------------

async def test_exec() -> None:
    ok = await check({"exec": {"command": ["sh", "-c", "echo fine"]}})
    assert ok == ProbeResult(True, "fine\n")
    bad = await check({"exec": {"command": ["sh", "-c", "echo broken >&2; exit 3"]}})
    assert bad == ProbeResult(False, "broken\n")
    slow = await check({"exec": {"command": ["sleep", "5"]}}, timeout=0.2)
    assert slow == ProbeResult(False, 'command "sleep 5" timed out')
    gone = await check({"exec": {"command": ["true"]}}, rt=runtime(fail=True))
    assert gone == ProbeResult(False, "container cid not found", errored=True)


# -- grpc ------------------------------------------------------------------------------------------

async def test_grpc() -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await check({"grpc": {"port": port}}) == ProbeResult(True, "service is healthy")
        res = await check({"grpc": {"port": port, "service": "db"}})
        assert res == ProbeResult(False, 'service unhealthy (responded with "NOT_SERVING")')
        res = await check({"grpc": {"port": port, "service": "unknown"}})
        assert not res.success and res.message.startswith("error: health rpc probe failed: rpc error: code = NotFound")
    finally:
        await server.stop(None)
    closed = closed_port()
    res = await check({"grpc": {"port": closed}}, timeout=0.3)
    assert res == ProbeResult(False, f'timeout: failed to connect service "127.0.0.1:{closed}" within 300ms: '
                                     "context deadline exceeded")


# -- ProbeWorker -----------------------------------------------------------------------------------

SCALE = 0.01  # periodSeconds 10 -> 0.1 s; probes set timeoutSeconds 100 -> 1 s


@dataclass
class Recorder:
    events: list[tuple[str, ...]] = field(default_factory=list)

    def on_result(self, kind: str, container: str, success: bool, message: str) -> None:
        self.events.append(("result", kind, container, str(success)))

    async def on_failure(self, kind: str, container: str, message: str) -> None:  # async callbacks work too
        self.events.append(("failed", kind, container, message))

    def on_warning(self, kind: str, container: str, message: str) -> None:
        self.events.append(("warning", kind, container, message))

    def on_error(self, kind: str, container: str, message: str) -> None:
        self.events.append(("errored", kind, container, message))

    def of(self, *kinds: str) -> list[tuple[str, ...]]:
        return [e for e in self.events if e[0] in kinds]


def worker(kind: str, spec: dict[str, Any], rec: Recorder, *, rt: Runtime | None = None, **kwargs: Any) -> ProbeWorker:
    spec = {"timeoutSeconds": 100, **spec}
    return ProbeWorker(kind=kind, probe=probe(spec), container=from_dict({"name": "app"}, core_pb2.Container),
                       container_id="cid", pod_ip="127.0.0.1", runtime=rt or runtime(), on_result=rec.on_result,
                       on_failure=rec.on_failure, on_warning=rec.on_warning, on_error=rec.on_error,
                       time_scale=SCALE, **kwargs)


async def test_readiness_thresholds(http: HTTPServer) -> None:
    rec = Recorder()
    w = worker("readiness", {"httpGet": {"path": "/toggle", "port": http.port},
                             "successThreshold": 2, "failureThreshold": 3}, rec)
    assert w.result is False and not w.success  # readiness starts as failure
    w.start()
    try:
        await eventually(lambda: bool(rec.of("result")), "ready")
        assert rec.events == [("result", "readiness", "app", "True")]
        assert w.checks == 2  # two consecutive successes needed
        http.status["/toggle"] = 500
        await eventually(lambda: len(rec.of("result")) == 2, "unready")
        failures_before_flip = rec.events[1:].index(("result", "readiness", "app", "False"))
        assert failures_before_flip == 3
        assert rec.events[1] == ("failed", "readiness", "app", "HTTP probe failed with statuscode: 500")
        # readiness keeps probing after a failure and recovers after successThreshold successes
        http.status["/toggle"] = 200
        await eventually(lambda: len(rec.of("result")) == 3, "ready again")
        assert rec.of("result")[-1] == ("result", "readiness", "app", "True")
    finally:
        await w.stop()


async def test_liveness_reports_failure_once_and_holds() -> None:
    rec = Recorder()
    w = worker("liveness", {"tcpSocket": {"port": closed_port()}, "failureThreshold": 2}, rec)
    assert w.result is True  # liveness starts as success
    w.start()
    try:
        await eventually(lambda: bool(rec.of("result")), "liveness failure")
        assert [e[0] for e in rec.events] == ["failed", "failed", "result"]
        assert rec.events[-1] == ("result", "liveness", "app", "False")
        await eventually(lambda: w.on_hold, "on hold")
        checks = w.checks
        await asyncio.sleep(0.3)  # three periods: no further checks
        assert w.checks == checks
    finally:
        await w.stop()


async def test_liveness_success_is_not_a_change(http: HTTPServer) -> None:
    rec = Recorder()
    w = worker("liveness", {"httpGet": {"path": "/ok", "port": http.port}}, rec)
    w.start()
    try:
        await eventually(lambda: w.checks >= 3, "three checks")
        assert rec.events == []
    finally:
        await w.stop()


async def test_initial_delay(http: HTTPServer) -> None:
    rec = Recorder()
    started = time.time()
    w = worker("readiness", {"httpGet": {"path": "/ok", "port": http.port}, "initialDelaySeconds": 50}, rec,
               started_at=started)
    w.start()
    w.trigger()  # an early trigger does not shorten the initial delay
    try:
        await eventually(lambda: bool(rec.of("result")), "first result")
        assert time.time() - started >= 50 * SCALE
    finally:
        await w.stop()
    # a container that started long ago is probed right away
    rec2 = Recorder()
    w2 = worker("readiness", {"httpGet": {"path": "/ok", "port": http.port}, "initialDelaySeconds": 100_000}, rec2,
                started_at=time.time() - 100_000 * SCALE)
    w2.start()
    try:
        await eventually(lambda: bool(rec2.of("result")), "result without delay")
    finally:
        await w2.stop()


async def test_startup_gates_liveness_and_readiness(tmp_path: Path, http: HTTPServer) -> None:
    rec = Recorder()
    marker = tmp_path / "started"
    workers: dict[str, ProbeWorker] = {}

    def on_result(kind: str, container: str, success: bool, message: str) -> None:
        rec.on_result(kind, container, success, message)
        if kind == "startup":
            for k in ("liveness", "readiness"):
                workers[k].startup_succeeded(success)

    rt = runtime()
    workers["startup"] = worker("startup", {"exec": {"command": ["test", "-f", str(marker)]},
                                            "failureThreshold": 1000}, rec, rt=rt, has_startup_probe=True)
    for kind in ("liveness", "readiness"):
        workers[kind] = worker(kind, {"httpGet": {"path": "/ok", "port": http.port}}, rec, has_startup_probe=True)
    for w in workers.values():
        w.on_result = on_result
        w.start()
    try:
        assert workers["startup"].result is None and not workers["startup"].success  # unknown
        await eventually(lambda: workers["startup"].checks >= 3, "startup probing")
        assert workers["liveness"].checks == 0 and workers["readiness"].checks == 0
        marker.touch()
        await eventually(lambda: ("result", "readiness", "app", "True") in rec.events, "ready after startup")
        assert rec.of("result")[0] == ("result", "startup", "app", "True")
        await eventually(lambda: workers["liveness"].checks >= 2, "liveness probing")
        startup_checks = workers["startup"].checks
        await asyncio.sleep(0.3)
        assert workers["startup"].checks == startup_checks  # startup stops after its success
        assert ("result", "liveness", "app", "True") not in rec.events  # liveness was already "success"
    finally:
        for w in workers.values():
            await w.stop()


async def test_startup_failure_is_reported() -> None:
    rec = Recorder()
    w = worker("startup", {"exec": {"command": ["false"]}, "failureThreshold": 2}, rec)
    w.start()
    try:
        await eventually(lambda: bool(rec.of("result")), "startup failure")
        assert rec.events == [("failed", "startup", "app", ""), ("failed", "startup", "app", ""),
                              ("result", "startup", "app", "False")]
        await eventually(lambda: w.on_hold, "on hold")
    finally:
        await w.stop()


async def test_errored_checks_are_not_counted(http: HTTPServer) -> None:
    rec = Recorder()
    w = worker("liveness", {"exec": {"command": ["true"]}, "failureThreshold": 1}, rec, rt=runtime(fail=True))
    w.start()
    try:
        await eventually(lambda: len(rec.of("errored")) >= 3, "errored checks")
        assert rec.of("result", "failed") == []
        assert w.result is True
    finally:
        await w.stop()


async def test_warning_is_a_success(http: HTTPServer) -> None:
    rec = Recorder()
    w = worker("readiness", {"httpGet": {"path": "/redirect-away", "port": http.port}}, rec)
    w.start()
    try:
        await eventually(lambda: bool(rec.of("result")), "ready")
        assert rec.events[0] == ("warning", "readiness", "app", "Probe terminated redirects, Response body: moved")
        assert rec.of("result") == [("result", "readiness", "app", "True")]
    finally:
        await w.stop()


async def test_stop_ends_probing(http: HTTPServer) -> None:
    rec = Recorder()
    w = worker("readiness", {"httpGet": {"path": "/ok", "port": http.port}}, rec)
    w.start()
    await eventually(lambda: w.checks >= 1, "a check")
    await w.stop()
    checks = w.checks
    await asyncio.sleep(0.3)
    assert w.checks == checks
    await w.stop()  # idempotent


async def test_callback_errors_do_not_kill_the_worker(http: HTTPServer) -> None:
    calls: list[bool] = []

    def boom(kind: str, container: str, success: bool, message: str) -> Awaitable[None] | None:
        calls.append(success)
        raise RuntimeError("callback bug")

    w = ProbeWorker(kind="readiness", probe=probe({"httpGet": {"path": "/toggle", "port": http.port},
                                                   "timeoutSeconds": 100}),
                    container=from_dict({"name": "app"}, core_pb2.Container), container_id="cid",
                    pod_ip="127.0.0.1", runtime=runtime(), on_result=boom, time_scale=SCALE)
    w.start()
    try:
        await eventually(lambda: calls == [True], "first result")
        http.status["/toggle"] = 500
        await eventually(lambda: calls == [True, False], "second result")
    finally:
        await w.stop()
