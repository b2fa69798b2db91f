"""The supervisor's control channel with real child processes: faults are expected deaths (never
restarted by --restart-on-failure), frozen processes stay alive, a component started again is the
supervisor's child and is stopped with the rest."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import psutil
import pytest

from kplane.cluster.console import Console
from kplane.cluster.spec import ComponentSpec
from kplane.cluster.supervisor import Control, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


async def ask(path: Path, **req: object) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(json.dumps(req).encode() + b"\n")
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    return answer  # type: ignore[no-any-return]


@pytest.fixture
async def supervised(tmp_path: Path):  # type: ignore[no-untyped-def]
    specs = [ComponentSpec("base", SLEEPER),
             ComponentSpec("node-1", SLEEPER, depends_on=("base",), extra={"node": "node-1"})]
    sup = Supervisor(specs, tmp_path / "logs", Console(stream=io.StringIO(), fmt="json"), restart_on_failure=True,
                     startup_timeout=10)
    control = Control(sup, tmp_path / "control.sock")
    await control.start()
    await sup.start()
    yield sup, control.path
    await control.close()
    await sup.stop()


async def test_freeze_thaw_kill_start_restart(supervised) -> None:  # type: ignore[no-untyped-def]
    """SIGSTOP/SIGCONT keep the process; SIGKILL is reported as asked and not restarted; start and
    restart bring it back with the original command line; stop() ends the new process too."""
    sup, sock = supervised
    pid = sup.components["node-1"].pid
    frozen = await ask(sock, op="signal", component="node-1", signal="SIGSTOP")
    assert frozen == {"ok": True, "component": "node-1", "pid": pid, "signal": "SIGSTOP", "status": "frozen"}
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    again = await ask(sock, op="signal", component="node-1", signal="SIGSTOP")
    assert again == {"ok": False, "error": "node-1 is already frozen"}
    assert (await ask(sock, op="signal", component="node-1", signal="SIGCONT"))["status"] == "running"

    killed = await ask(sock, op="signal", component="node-1", signal="SIGKILL")
    assert killed["ok"] and not psutil.pid_exists(pid)  # reaped by the supervisor before it answered
    await asyncio.sleep(2.5)  # longer than the first --restart-on-failure back-off (1-2 s)
    r = sup.components["node-1"]
    assert r.status == "killed" and r.pid is None and r.restarter is None

    started = await ask(sock, op="start", component="node-1")
    assert started["ok"] and started["pid"] != pid and started["previous_pid"] is None
    new = psutil.Process(int(started["pid"]))  # type: ignore[call-overload]
    assert new.cmdline()[1:] == SLEEPER[1:]
    busy = await ask(sock, op="start", component="node-1")
    assert busy == {"ok": False, "error": f"node-1 is running (pid {started['pid']}); kill it first or use restart"}
    restarted = await ask(sock, op="restart", component="node-1")
    assert restarted["ok"] and restarted["previous_pid"] == started["pid"]
    snapshot = {c["name"]: c for c in sup.snapshot()}
    assert snapshot["node-1"]["pid"] == restarted["pid"] and snapshot["node-1"]["extra"] == {"node": "node-1"}

    await sup.stop()
    assert not psutil.pid_exists(int(restarted["pid"]))  # type: ignore[call-overload]


async def test_bad_requests_are_answered(supervised) -> None:  # type: ignore[no-untyped-def]
    """Unknown components, ops and signals get an error answer; the channel keeps serving."""
    _, sock = supervised
    assert (await ask(sock, op="signal", component="nope", signal="SIGKILL"))["error"] == (
        "no component 'nope' (this cluster has: base, node-1)")
    assert (await ask(sock, op="dance", component="base"))["error"] == (
        "unknown op 'dance' (ping, signal, start, restart)")
    assert (await ask(sock, op="signal", component="base", signal="SIGHUP"))["error"] == (
        "signal must be one of SIGKILL, SIGSTOP, SIGCONT")
    ping = await ask(sock, op="ping")
    assert ping["ok"] and [c["name"] for c in ping["components"]] == ["base", "node-1"]  # type: ignore[union-attr]
