"""The launcher against a real etcd: start, probe, notice deaths, stop; and `kplane up/status/down`.

The apiserver's place is taken by a stand-in that only serves gRPC health, so these tests do not
depend on the apiserver; the real end-to-end test lives in tests/e2e.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from kplane.cluster.components import ClusterOptions, build_components
from kplane.cluster.console import Console
from kplane.cluster.etcd import etcd_health, find_etcd
from kplane.cluster.ports import free_ports
from kplane.cluster.spec import ComponentSpec, HealthCheck
from kplane.cluster.supervisor import ComponentFailed, Supervisor
from kplane.config import load_config

STANDIN = textwrap.dedent(
    """
    import signal, sys
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    print('{"event": "serving", "level": "info", "port": %s}' % sys.argv[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()
    """
)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def etcd_spec(tmp_path: Path) -> tuple[ComponentSpec, str]:
    """The etcd spec `kplane up` would build, on free ports under ``tmp_path``."""
    client, peer = free_ports(2)
    opts = ClusterOptions(data_dir=tmp_path, etcd_port=client, etcd_peer_port=peer, nodes=0)
    spec = build_components(opts, find_etcd())[0]
    assert spec.name == "etcd"
    return spec, f"http://127.0.0.1:{client}"


def standin_spec(tmp_path: Path, port: int) -> ComponentSpec:
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    return ComponentSpec(
        name="apiserver",
        argv=[sys.executable, str(script), str(port)],
        health=HealthCheck(kind="grpc", port=port),
        depends_on=("etcd",),
        address=f"127.0.0.1:{port}",
    )


async def test_supervisor_starts_probes_and_stops_real_etcd(tmp_path: Path) -> None:
    """etcd started through the launcher answers /health, logs to its file, and stops on SIGTERM."""
    spec, url = etcd_spec(tmp_path)
    out = io.StringIO()
    sup = Supervisor([spec], tmp_path / "logs", Console(out, fmt="console"), startup_timeout=60)
    try:
        await sup.start()
        ok, detail = await etcd_health(url)
        assert ok, detail
        (snap,) = sup.snapshot()
        assert snap["status"] == "running" and snap["address"] == url
        pid = snap["pid"]
        assert psutil.Process(pid).cmdline() == spec.argv
    finally:
        await sup.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    (snap,) = sup.snapshot()
    assert snap["pid"] is None and snap["status"] == "stopped"
    assert snap["exit_code"] in (0, -signal.SIGTERM)  # etcd re-raises SIGTERM after a clean shutdown
    assert (tmp_path / "etcd" / "member").is_dir()
    log = (tmp_path / "logs" / "etcd.log").read_text()
    assert "became leader" in log and '"msg":"closed etcd server"' in log  # a clean shutdown
    assert "etcd is ready at" in out.getvalue()


async def test_external_etcd_is_probed_not_started(tmp_path: Path) -> None:
    """With --etcd-servers the launcher only probes the given etcd, and fails clearly when it is down."""
    spec, url = etcd_spec(tmp_path / "own")
    own = Supervisor([spec], tmp_path / "own" / "logs", Console(io.StringIO(), fmt="console"))
    try:
        await own.start()
        opts = ClusterOptions(data_dir=tmp_path / "ext", etcd_servers=[url], nodes=0)
        external = build_components(opts, None)[0]
        out = io.StringIO()
        sup = Supervisor([external], tmp_path / "ext" / "logs", Console(out, fmt="console"))
        await sup.start()
        (snap,) = sup.snapshot()
        assert snap["external"] and snap["pid"] is None and snap["status"] == "external"
        await sup.stop()
    finally:
        await own.stop()
    (dead,) = free_ports(1)
    opts = ClusterOptions(data_dir=tmp_path / "ext2", etcd_servers=[f"http://127.0.0.1:{dead}"], nodes=0)
    sup = Supervisor(
        [build_components(opts, None)[0]],
        tmp_path / "ext2" / "logs",
        Console(io.StringIO()),
        startup_timeout=1,
    )
    with pytest.raises(
        ComponentFailed, match=f"etcd at http://127.0.0.1:{dead} is not healthy: cannot connect"
    ):
        await sup.start()


async def test_death_is_reported_and_the_rest_keeps_running(tmp_path: Path) -> None:
    """A component killed after start-up is reported loudly, not restarted, and etcd stays healthy."""
    spec, url = etcd_spec(tmp_path)
    (port,) = free_ports(1)
    out = io.StringIO()
    sup = Supervisor([standin_spec(tmp_path, port), spec], tmp_path / "logs", Console(out, fmt="console"))
    try:
        await sup.start()
        assert [r.spec.name for r in sup.order_running()] == ["etcd", "apiserver"]
        api = sup.components["apiserver"]
        assert api.pid is not None
        os.kill(api.pid, signal.SIGKILL)
        await eventually(
            lambda: "apiserver exited unexpectedly (killed by SIGKILL)" in out.getvalue(), 30, "report"
        )
        assert "apiserver is not restarted" in out.getvalue()
        assert api.status == "exited" and api.restarts == 0
        ok, detail = await etcd_health(url)
        assert ok, detail
    finally:
        await sup.stop()


async def test_restart_on_failure(tmp_path: Path) -> None:
    """With restart_on_failure a killed component comes back with a new pid."""
    spec = ComponentSpec(
        name="sleeper",
        argv=[sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
        health=HealthCheck(kind="alive", settle=0.2),
    )
    out = io.StringIO()
    sup = Supervisor([spec], tmp_path / "logs", Console(out, fmt="console"), restart_on_failure=True)
    try:
        await sup.start()
        r = sup.components["sleeper"]
        first = r.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: r.restarts == 1 and r.healthy.is_set() and r.pid is not None, 30, "restart")
        assert r.pid != first
        # healthy = alive for 0.2 s; on a loaded machine the new interpreter may print later than that
        await eventually(lambda: (tmp_path / "logs" / "sleeper.log").read_text().count("up") == 2, 30,
                         "the restarted process's output appended to the same log")
    finally:
        await sup.stop()


async def test_startup_failure_carries_the_last_lines(tmp_path: Path) -> None:
    """A component that dies while starting fails start-up with its exit code and last output."""
    spec = ComponentSpec(
        name="broken",
        argv=[
            sys.executable,
            "-c",
            "import sys; print('cannot open /nonexistent', file=sys.stderr); sys.exit(3)",
        ],
        health=HealthCheck(kind="grpc", port=free_ports(1)[0]),
    )
    sup = Supervisor([spec], tmp_path / "logs", Console(io.StringIO(), fmt="console"))
    with pytest.raises(ComponentFailed) as e:
        await sup.start()
    await sup.stop()
    report = e.value.report()
    assert report.startswith("broken exited during start-up (exit code 3)")
    assert "cannot open /nonexistent" in report


WRAPPER = """
import sys
from kplane.cluster import components
from kplane.cluster.spec import ComponentSpec, HealthCheck

def standin(opts, etcd_urls):
    return ComponentSpec(
        name="apiserver",
        argv=[sys.executable, {standin!r}, str(opts.port)],
        health=HealthCheck(kind="grpc", port=opts.port),
        depends_on=("etcd",),
        address=opts.apiserver_address,
    )

components.apiserver_spec = standin
components.module_has_main = lambda name: False
from kplane.cli.kplane import main
main()
"""


def kplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kplane.cli.kplane", *args], capture_output=True, text=True, timeout=120
    )


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


async def test_kplane_up_status_down(tmp_path: Path) -> None:
    """`kplane up` (stand-in apiserver) writes config and state, `status` is healthy, `down` stops it all."""
    (tmp_path / "standin.py").write_text(STANDIN)
    wrapper = tmp_path / "kplane_standin.py"
    wrapper.write_text(WRAPPER.format(standin=str(tmp_path / "standin.py")))
    etcd_port, peer_port, api_port = free_ports(3)
    data, config = tmp_path / "data", tmp_path / "config"
    up_log = open(tmp_path / "up.out", "wb")
    up = subprocess.Popen(
        [sys.executable, str(wrapper), "up", "--data-dir", str(data), "--config", str(config),
         "--etcd-port", str(etcd_port), "--etcd-peer-port", str(peer_port), "--port", str(api_port),
         "--nodes", "0", "--log-format", "json"],
        stdout=up_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def running() -> bool:
            if up.poll() is not None:
                pytest.fail(f"kplane up exited {up.returncode}: {(tmp_path / 'up.out').read_text()[-3000:]}")
            comps = read_json(data / "cluster.json").get("components", [])
            return config.exists() and bool(comps) and all(c["status"] == "running" for c in comps)

        await eventually(running, 90, "kplane up to report every component running")
        assert load_config(config).servers == [f"127.0.0.1:{api_port}"]
        state = read_json(data / "cluster.json")
        assert state["launcher"]["pid"] == up.pid
        pids = {c["name"]: c["pid"] for c in state["components"]}
        assert set(pids) == {"etcd", "apiserver"}
        assert all(psutil.pid_exists(p) for p in pids.values())
        assert (data / "logs" / "etcd.log").stat().st_size > 0
        lines = [json.loads(line) for line in (tmp_path / "up.out").read_text().splitlines()]
        assert any(d.get("component") == "apiserver" and d.get("event") == "serving" for d in lines)

        status = kplane("status", "--data-dir", str(data))
        assert status.returncode == 0, status.stdout + status.stderr
        assert (
            "apiserver" in status.stdout
            and f"127.0.0.1:{api_port}" in status.stdout
            and "SERVING" in status.stdout
        )

        down = kplane("down", "--data-dir", str(data))
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.wait(30) == 0
        assert not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids.values()
        )
        after = read_json(data / "cluster.json")
        assert after["launcher"]["pid"] is None and all(c["pid"] is None for c in after["components"])

        status = kplane("status", "--data-dir", str(data))
        assert status.returncode == 1
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(30)
        up_log.close()
