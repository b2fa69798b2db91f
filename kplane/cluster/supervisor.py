"""Run cluster components as separate OS processes: start in dependency order, wait until each is
healthy, stream their output, notice deaths, and stop them in reverse order.

The supervisor also serves the **control channel** `kplane chaos` uses (see :class:`Control`): a
unix socket under the data dir taking one JSON request per connection — signal a component
(SIGKILL/SIGSTOP/SIGCONT, as an expected fault, never restarted behind the user's back), start it
again with its original command line, or restart it — so a component a chaos command brought back
is still this supervisor's child, and `kplane down`/Ctrl-C stop it like every other.

The supervisor never imports gRPC (gRPC health checks run in a probe subprocess, see
:mod:`kplane.cluster.probe`), so it may spawn and respawn children at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from kplane.cluster.console import Console, parse_json_line, render_fields
from kplane.cluster.probe import check_health, grpc_probe_subprocess
from kplane.cluster.spec import ComponentSpec, order_components
from kplane.cluster.state import process_create_time

LINE_LIMIT = 1 << 20  # longest line a component may write before it is cut
TAIL_LINES = 40  # lines kept per component for error reports
SHOWN_TAIL = 20  # of which an error report shows this many


def describe_exit(code: int | None) -> str:
    """``exit code 1`` / ``killed by SIGKILL`` / ``still running``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def readable(line: str) -> str:
    """A log line for humans: JSON lines rendered as ``level event key=value``."""
    doc = parse_json_line(line)
    if doc is None:
        return line
    return render_fields(doc)[1]


class ComponentFailed(Exception):
    """A component died or never became healthy; carries its last log lines."""

    def __init__(
        self, name: str, reason: str, tail: Iterable[str] = (), log_path: Path | None = None
    ) -> None:
        self.name = name
        self.reason = reason
        self.tail = list(tail)[-SHOWN_TAIL:]
        self.log_path = log_path
        super().__init__(f"{name} {reason}")

    def detail_lines(self) -> list[str]:
        """Where the log is and the last lines the component wrote, rendered for humans."""
        if self.tail:
            where = f" (full log: {self.log_path})" if self.log_path else ""
            return [
                f"last {len(self.tail)} lines from {self.name}{where}:",
                *(readable(t) for t in self.tail),
            ]
        if self.log_path:
            return [f"it wrote nothing; see {self.log_path}"]
        return []

    def report(self) -> str:
        """The full message: what happened plus the last lines the component wrote."""
        detail = self.detail_lines()
        return "\n".join([str(self), *detail[:1], *("    " + d for d in detail[1:])])

    def show(self, console: Console) -> None:
        """Write the report to ``console`` (one JSON object in JSON mode)."""
        console.report(str(self), self.detail_lines(), level="error")


@dataclass
class Running:
    """The live state of one component."""

    spec: ComponentSpec
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    create_time: float | None = None
    status: str = "pending"
    exit_code: int | None = None
    restarts: int = 0
    stopping: bool = False
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    healthy: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    log_file: BinaryIO | None = None
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    watcher: asyncio.Task[None] | None = None
    restarter: asyncio.Task[None] | None = None
    # Set by the control channel before it signals or stops the process: its exit is a fault
    # someone asked for (reported as "killed", never restarted by --restart-on-failure).
    expected_exit: bool = False
    frozen: bool = False  # SIGSTOPped through the control channel
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def pid(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        return self.proc.pid

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "name": s.name,
            "pid": self.pid,
            "create_time": self.create_time if self.pid else None,
            "address": s.address,
            "argv": s.argv,
            "log": str(self.log_path),
            "health": s.health.to_json(),
            "external": s.external,
            "depends_on": list(s.depends_on),
            "status": self.status,
            "exit_code": self.exit_code,
            "restarts": self.restarts,
            "stop_timeout": s.stop_timeout,
            "frozen": self.frozen,
            "extra": dict(s.extra),
        }


class Supervisor:
    """Starts, watches and stops a list of components."""

    def __init__(
        self,
        specs: Iterable[ComponentSpec],
        log_dir: Path,
        console: Console,
        *,
        restart_on_failure: bool = False,
        startup_timeout: float = 60.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.order = order_components(specs)
        self.log_dir = Path(log_dir)
        self.console = console
        self.restart_on_failure = restart_on_failure
        self.startup_timeout = startup_timeout
        self.on_change = on_change
        self.components: dict[str, Running] = {
            s.name: Running(s, self.log_dir / f"{s.name}.log") for s in self.order
        }
        console.set_names(s.name for s in self.order)

    # ----------------------------------------------------------------------------------- start

    async def start(self) -> None:
        """Start every component once its dependencies are healthy; return when all are healthy.

        Raises :class:`ComponentFailed` for the first component that dies or times out (the ones
        already started keep running: call :meth:`stop`).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        tasks = [
            asyncio.create_task(self._bring_up(r), name=f"start-{n}") for n, r in self.components.items()
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                exc = t.exception()
                if exc is not None:
                    raise exc
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _bring_up(self, r: Running) -> None:
        for dep in r.spec.depends_on:
            await self.components[dep].healthy.wait()
        if r.spec.external:
            await self._wait_external(r)
        else:
            await self._spawn(r)
            await self._wait_healthy(r)
        r.status = "external" if r.spec.external else "running"
        r.healthy.set()
        self._changed()
        where = f" at {r.spec.address}" if r.spec.address else ""
        self.console.say(f"{r.spec.name} is ready{where}")

    async def _spawn(self, r: Running) -> None:
        s = r.spec
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if r.log_file is None:
            r.log_file = open(r.log_path, "ab")
        env = dict(os.environ) if s.env is None else dict(s.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        r.exited.clear()
        r.healthy.clear()
        r.exit_code = None
        r.expected_exit = False
        r.frozen = False
        r.status = "starting"
        try:
            proc = await asyncio.create_subprocess_exec(
                *s.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the launcher only; it stops children in order
                limit=LINE_LIMIT,
            )
        except OSError as e:
            r.status = "exited"
            r.exited.set()
            raise ComponentFailed(s.name, f"could not be started ({s.argv[0]}: {e.strerror or e})") from None
        r.proc = proc
        r.create_time = process_create_time(proc.pid)
        assert proc.stdout is not None and proc.stderr is not None
        r.pumps = [
            asyncio.create_task(self._pump(r, proc.stdout), name=f"{s.name}-stdout"),
            asyncio.create_task(self._pump(r, proc.stderr), name=f"{s.name}-stderr"),
        ]
        r.watcher = asyncio.create_task(self._watch(r, proc), name=f"{s.name}-watch")
        self.console.say(f"started {s.name}", pid=proc.pid)
        self._changed()

    async def _pump(self, r: Running, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                raw = (
                    f"[kplane: {r.spec.name} wrote a line longer than {LINE_LIMIT} bytes; dropped]\n".encode()
                )
            if not raw:
                return
            if r.log_file is not None:
                with contextlib.suppress(OSError, ValueError):
                    r.log_file.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    r.log_file.flush()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            r.tail.append(line)
            self.console.component_line(r.spec.name, line, r.spec.console_level)

    async def _watch(self, r: Running, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        # Grandchildren may still hold the pipes; don't wait for them forever.
        _, pending = await asyncio.wait(r.pumps, timeout=2.0) if r.pumps else (set(), set())
        for t in pending:
            t.cancel()
        r.exit_code = code
        r.status = "stopped" if r.stopping else "killed" if r.expected_exit else "exited"
        r.frozen = False
        r.exited.set()
        self._changed()
        if r.stopping:
            return
        if r.expected_exit:
            r.healthy.clear()
            self.console.say(f"{r.spec.name} is down ({describe_exit(code)}, as asked)", level="warning")
            return
        if r.healthy.is_set():
            # During start-up _wait_healthy reports the death with the log tail.
            failure = ComponentFailed(
                r.spec.name, f"exited unexpectedly ({describe_exit(code)})", r.tail, r.log_path
            )
            failure.show(self.console)
            r.healthy.clear()
            if self.restart_on_failure:
                r.restarter = asyncio.create_task(self._restart(r), name=f"{r.spec.name}-restart")
            else:
                self.console.say(
                    f"{r.spec.name} is not restarted (use --restart-on-failure); the rest keeps running",
                    level="warning",
                )

    async def _restart(self, r: Running) -> None:
        while not r.stopping:
            delay = min(30.0, 2.0 ** min(r.restarts, 5))
            self.console.say(f"restarting {r.spec.name} in {delay:.0f}s", level="warning")
            await asyncio.sleep(delay)
            if r.stopping:
                return
            r.restarts += 1
            try:
                await self._spawn(r)
                await self._wait_healthy(r)
            except ComponentFailed as e:
                e.show(self.console)
                continue
            r.status = "running"
            r.healthy.set()
            self._changed()
            self.console.say(f"{r.spec.name} is ready again (restart {r.restarts})")
            return

    async def _wait_healthy(self, r: Running) -> None:
        h = r.spec.health
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        detail = "not checked yet"

        def died() -> ComponentFailed:
            return ComponentFailed(
                r.spec.name, f"exited during start-up ({describe_exit(r.exit_code)})", r.tail, r.log_path
            )

        if h.kind == "alive":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(r.exited.wait(), h.settle)
            if r.exited.is_set():
                raise died()
            return
        if h.kind == "grpc":
            probe = asyncio.create_task(grpc_probe_subprocess(h, wait=self.startup_timeout))
            exited = asyncio.create_task(r.exited.wait())
            try:
                await asyncio.wait({probe, exited}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                exited.cancel()
                if not probe.done():
                    probe.cancel()
                    await asyncio.gather(probe, return_exceptions=True)
            if r.exited.is_set():
                raise died()
            ok, detail = probe.result()
            if ok:
                return
            raise ComponentFailed(
                r.spec.name,
                f"did not become healthy within {self.startup_timeout:.0f}s (gRPC health at {h.address}: {detail})",
                r.tail,
                r.log_path,
            )
        delay = 0.05
        while True:
            if r.exited.is_set():
                raise died()
            ok, detail = await check_health(h, grpc_in_process=False)
            if ok:
                return
            if loop.time() >= deadline:
                raise ComponentFailed(
                    r.spec.name,
                    f"did not become healthy within {self.startup_timeout:.0f}s ({h.kind} {h.address}: {detail})",
                    r.tail,
                    r.log_path,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(r.exited.wait(), delay)
            delay = min(delay * 2, 0.5)

    async def _wait_external(self, r: Running) -> None:
        h = r.spec.health
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self.startup_timeout, 15.0)
        delay = 0.1
        while True:
            ok, detail = await check_health(h, grpc_in_process=False)
            if ok:
                return
            if loop.time() >= deadline:
                raise ComponentFailed(r.spec.name, f"at {r.spec.address} is not healthy: {detail}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------------------------------ stop

    async def stop(self) -> None:
        """Stop every component in reverse dependency order (SIGTERM, then SIGKILL)."""
        for r in reversed(self.order_running()):
            await self._stop_one(r)

    async def _stop_one(self, r: Running) -> None:
        r.stopping = True
        if r.restarter is not None:
            r.restarter.cancel()
            await asyncio.gather(r.restarter, return_exceptions=True)
        proc = r.proc
        if proc is not None and proc.returncode is None:
            self.console.say(f"stopping {r.spec.name}", pid=proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
                if r.frozen:  # a stopped process acts on SIGTERM only once it runs again
                    proc.send_signal(signal.SIGCONT)
            try:
                await asyncio.wait_for(proc.wait(), r.spec.stop_timeout)
            except TimeoutError:
                self.console.say(
                    f"{r.spec.name} did not stop within {r.spec.stop_timeout:.0f}s; sending SIGKILL",
                    level="warning",
                )
                kill_group(proc.pid)
                await proc.wait()
        if r.watcher is not None:
            await asyncio.gather(r.watcher, return_exceptions=True)
        self._close_log(r)
        self._changed()

    # --------------------------------------------------------------------- faults (control channel)

    def component(self, name: str) -> Running:
        r = self.components.get(name)
        if r is None:
            raise ControlError(f"no component {name!r} (this cluster has: {', '.join(self.components)})")
        if r.spec.external:
            raise ControlError(f"{name} is external (--etcd-servers): kplane did not start it and will not signal it")
        return r

    async def send_fault_signal(self, name: str, sig: signal.Signals) -> dict[str, Any]:
        """SIGKILL, SIGSTOP or SIGCONT ``name`` as a fault: its death is expected, not restarted."""
        r = self.component(name)
        async with r.lock:
            proc = r.proc
            if proc is None or proc.returncode is not None:
                raise ControlError(f"{name} is not running ({r.status}); `kplane chaos restart {name}` starts it")
            if sig == signal.SIGSTOP and r.frozen:
                raise ControlError(f"{name} is already frozen")
            if sig == signal.SIGCONT and not r.frozen:
                raise ControlError(f"{name} is not frozen")
            pid = proc.pid
            if sig == signal.SIGKILL:
                r.expected_exit = True
                kill_group(pid)
                await r.exited.wait()
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                r.frozen = sig == signal.SIGSTOP
                r.status = "frozen" if r.frozen else "running"
                self._changed()
            return {"component": name, "pid": pid, "signal": sig.name, "status": r.status}

    async def start_component(self, name: str, *, restart: bool = False) -> dict[str, Any]:
        """Start ``name`` again with its original command line (``restart``: stop it first, SIGTERM
        then SIGKILL after its stop timeout); returns once it is healthy."""
        r = self.component(name)
        async with r.lock:
            old_pid = r.pid
            if old_pid is not None:
                if not restart:
                    raise ControlError(f"{name} is running (pid {old_pid}); kill it first or use restart")
                r.expected_exit = True
                proc = r.proc
                assert proc is not None
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                    if r.frozen:
                        proc.send_signal(signal.SIGCONT)
                try:
                    await asyncio.wait_for(r.exited.wait(), r.spec.stop_timeout)
                except TimeoutError:
                    kill_group(proc.pid)
                    await r.exited.wait()
            for dep in r.spec.depends_on:
                if not self.components[dep].healthy.is_set():
                    raise ControlError(f"{name} needs {dep}, which is not running; start {dep} first")
            r.restarts += 1
            await self._spawn(r)
            await self._wait_healthy(r)
            r.status = "running"
            r.healthy.set()
            self._changed()
            self.console.say(f"{name} is ready again (started through the control channel)")
            assert r.proc is not None
            return {"component": name, "pid": r.proc.pid, "previous_pid": old_pid, "status": r.status}

    def kill_now(self) -> None:
        """SIGKILL every running component at once (a second Ctrl-C)."""
        for r in reversed(self.order_running()):
            r.stopping = True
            if r.proc is not None and r.proc.returncode is None:
                kill_group(r.proc.pid)

    def _close_log(self, r: Running) -> None:
        if r.log_file is not None:
            with contextlib.suppress(OSError):
                r.log_file.close()
            r.log_file = None

    # ---------------------------------------------------------------------------------- report

    def snapshot(self) -> list[dict[str, Any]]:
        """Each component as it goes into the state file."""
        return [r.to_json() for r in self.order_running()]

    def order_running(self) -> list[Running]:
        return [self.components[s.name] for s in self.order]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def kill_group(pid: int) -> None:
    """SIGKILL ``pid`` and, when it leads its own process group, the whole group."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------- control channel

CONTROL_SOCKET = "control.sock"
_SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP, "SIGCONT": signal.SIGCONT}


class ControlError(Exception):
    """A control request that cannot be done (unknown component, not running, ...)."""


class Control:
    """The supervisor's control channel: ``DATA/control.sock``, one JSON request per connection.

    Requests (a JSON object on one line) and their answers (one line)::

        {"op": "ping"}                                  -> {"ok": true, "components": [...], "pid": N}
        {"op": "signal", "component": C, "signal": S}   -> {"ok": true, "pid": N, ...}  S: SIGKILL|SIGSTOP|SIGCONT
        {"op": "start", "component": C}                 -> {"ok": true, "pid": N, ...}  once healthy
        {"op": "restart", "component": C}               -> {"ok": true, "pid": N, "previous_pid": M}
        anything wrong                                  -> {"ok": false, "error": "..."}

    Only the user who started `kplane up` can connect (the socket is mode 0600).
    """

    def __init__(self, supervisor: Supervisor, path: Path) -> None:
        self.supervisor = supervisor
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        except OSError as e:  # e.g. a path longer than a unix socket allows (~107 bytes)
            self.supervisor.console.say(
                f"no chaos control channel at {self.path}: {e.strerror or e}", level="warning")
        finally:
            os.umask(old)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10.0)
            try:
                answer = await self.serve(json.loads(line or b"null"))
            except ControlError as e:
                answer = {"ok": False, "error": str(e)}
            except ComponentFailed as e:
                answer = {"ok": False, "error": e.report()}
            except ValueError as e:
                answer = {"ok": False, "error": f"bad request: {e}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def serve(self, req: Any) -> dict[str, Any]:
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            raise ControlError('a request is a JSON object with an "op"')
        op = req["op"]
        sup = self.supervisor
        if op == "ping":
            return {"ok": True, "pid": os.getpid(), "time": time.time(), "components": sup.snapshot()}
        name = req.get("component")
        if not isinstance(name, str) or not name:
            raise ControlError(f'op {op!r} needs a "component"')
        if op == "signal":
            sig = _SIGNALS.get(str(req.get("signal")))
            if sig is None:
                raise ControlError(f"signal must be one of {', '.join(_SIGNALS)}")
            sup.console.say(f"chaos: {sig.name} {name}", level="warning")
            return {"ok": True, **await sup.send_fault_signal(name, sig)}
        if op in ("start", "restart"):
            sup.console.say(f"chaos: {op} {name}", level="warning")
            return {"ok": True, **await sup.start_component(name, restart=op == "restart")}
        raise ControlError(f"unknown op {op!r} (ping, signal, start, restart)")
