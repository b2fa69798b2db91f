"""`kplane up`, `kplane status` and `kplane down`, without the click layer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

import kplane
from kplane.cluster.components import ClusterOptions, build_components, port_requests
from kplane.cluster.console import Console
from kplane.cluster.etcd import EtcdBinary, EtcdNotFound, find_etcd
from kplane.cluster.pods import stop_pod_processes
from kplane.cluster.ports import check_ports
from kplane.cluster.probe import check_health
from kplane.cluster.spec import HealthCheck
from kplane.cluster.state import (
    STATE_VERSION,
    ProcessRef,
    StateError,
    live_process,
    process_create_time,
    read_state,
    state_path,
    write_state,
)
from kplane.cluster.supervisor import CONTROL_SOCKET, ComponentFailed, Control, Supervisor, kill_group
from kplane.config import ClientConfig, default_config_path, display_path, save_config

DEFAULT_DATA_DIR = Path.home() / ".kplane" / "data"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _launcher_ref(state: dict[str, Any]) -> ProcessRef | None:
    launcher = state.get("launcher")
    return ProcessRef.from_json(launcher) if isinstance(launcher, dict) else None


def _example_manifest() -> str:
    examples = Path(kplane.__file__).resolve().parent.parent / "deploy" / "examples"
    if (examples / "web.yaml").is_file():
        return "deploy/examples/web.yaml"
    if examples.is_dir():
        found = sorted(examples.glob("*.yaml"))
        if found:
            return f"deploy/examples/{found[0].name}"
    return "deploy/examples/..."


# ------------------------------------------------------------------------------------------- up


@dataclass
class UpSettings:
    """`kplane up` options that are about the launcher rather than the cluster."""

    config_path: Path
    restart_on_failure: bool = False
    startup_timeout: float = 60.0


async def run_up(opts: ClusterOptions, settings: UpSettings, console: Console) -> int:
    """Start the cluster, supervise it until SIGINT/SIGTERM, stop it. Returns the exit code."""
    data_dir = opts.data_dir
    sp = state_path(data_dir)
    try:
        previous = read_state(sp)
    except StateError:
        previous = None
    if previous is not None:
        ref = _launcher_ref(previous)
        if ref is not None and live_process(ref) is not None:
            console.say(
                f"a cluster is already running from {data_dir} (kplane up, pid {ref.pid}); "
                f"stop it with `kplane down --data-dir {data_dir}` or pick another --data-dir",
                level="error",
            )
            return 1

    etcd_bin: EtcdBinary | None = None
    if opts.etcd_servers:
        try:
            opts.etcd_servers = opts.etcd_urls()
        except ValueError as e:
            console.say(str(e), level="error")
            return 1
    else:
        try:
            etcd_bin = await asyncio.to_thread(find_etcd)
        except EtcdNotFound as e:
            console.say(str(e), level="error")
            return 1
        warning = etcd_bin.warning()
        if warning:
            console.say(warning, level="warning")

    notes: list[str] = []
    specs = build_components(opts, etcd_bin, notes)
    errors = check_ports(port_requests(opts, specs))
    if errors:
        for err in errors:
            console.say(err, level="error")
        return 1
    for n in notes:
        console.say(n)

    data_dir.mkdir(parents=True, exist_ok=True)
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    try:
        my_argv = psutil.Process(me).cmdline()
    except psutil.Error:
        my_argv = []
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "data_dir": str(data_dir),
        "log_dir": str(opts.log_dir),
        "config_path": str(settings.config_path),
        "etcd_servers": opts.etcd_urls(),
        "etcd": (
            {"path": etcd_bin.path, "version": etcd_bin.version_str, "source": etcd_bin.source}
            if etcd_bin
            else None
        ),
        "apiserver": opts.apiserver_address,
        "nodes": opts.nodes,
        "profile": opts.profile,
        "control_socket": str(data_dir / CONTROL_SOCKET),
        "started_at": _now(),
        "stopped_at": None,
        "launcher": {"pid": me, "create_time": process_create_time(me), "argv": my_argv},
        "components": [],
    }
    sup: Supervisor | None = None

    def save() -> None:
        if sup is not None:
            state["components"] = sup.snapshot()
        try:
            write_state(sp, state)
        except OSError as e:
            console.say(f"cannot write {sp}: {e}", level="warning")

    sup = Supervisor(
        specs,
        opts.log_dir,
        console,
        restart_on_failure=settings.restart_on_failure,
        startup_timeout=settings.startup_timeout,
        on_change=save,
    )
    save()

    stop = asyncio.Event()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            console.say(f"got {signal.Signals(signum).name}; stopping the cluster (again to kill it now)")
            stop.set()
        else:
            console.say("killing every component now", level="warning")
            assert sup is not None
            sup.kill_now()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    code = 0
    control = Control(sup, data_dir / CONTROL_SOCKET)  # `kplane chaos` faults (supervisor.py)
    try:
        await control.start()
        start = asyncio.create_task(sup.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
        elif start.exception() is not None:
            exc = start.exception()
            if isinstance(exc, ComponentFailed):
                exc.show(console)
            else:
                console.say(f"start-up failed: {exc!r}", level="error")
            code = 1
        else:
            if any(s.name == "apiserver" for s in specs):
                save_config(ClientConfig(servers=[opts.apiserver_address]), settings.config_path)
            _summary(console, opts, settings, specs, etcd_bin)
            await stop.wait()
        stopped.cancel()
    finally:
        await control.close()
        await sup.stop()
        await asyncio.to_thread(stop_pod_processes, opts.data_dir / "kubelet",
                                lambda msg: console.say(msg))
        state["launcher"]["pid"] = None
        state["stopped_at"] = _now()
        save()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    console.say(
        "cluster stopped" if code == 0 else "cluster start-up failed; everything it started is stopped"
    )
    return code


def _summary(
    console: Console,
    opts: ClusterOptions,
    settings: UpSettings,
    specs: list[Any],
    etcd_bin: EtcdBinary | None,
) -> None:
    names = [s.name for s in specs]
    nodes = [n for n in names if n.startswith("node-")]
    etcd_desc = (
        f"etcd {etcd_bin.version_str} ({etcd_bin.source}: {etcd_bin.path})" if etcd_bin else "external etcd"
    )
    env_prefix = ""
    if settings.config_path.expanduser().resolve() != (Path.home() / ".kplane" / "config").resolve():
        env_prefix = f"KPLANE_CONFIG={settings.config_path} "
    dd = "" if opts.data_dir.resolve() == DEFAULT_DATA_DIR.resolve() else f" --data-dir {opts.data_dir}"
    lines = [
        f"  etcd                {','.join(opts.etcd_urls())}   [{etcd_desc}]",
        f"  apiserver           {opts.apiserver_address}   (gRPC)",
    ]
    for n in ("scheduler", "controller-manager"):
        replicas = sum(1 for x in names if x == n or x.startswith(f"{n}-"))
        lines.append(f"  {n:<19} {'running' if replicas == 1 else f'{replicas} running (one leads)'}")
    proxies = sum(1 for n in names if n.startswith("proxy-"))
    lines += [
        f"  nodes               {len(nodes)}" + (f" ({', '.join(nodes)}; a proxy beside each)" if proxies else "")
        + (f" + {opts.fake_nodes} fake" if opts.fake_nodes else ""),
        f"  profile             {opts.profile}",
        f"  config              {display_path(settings.config_path)}",
        f"  data dir            {display_path(opts.data_dir)}",
        f"  logs                {display_path(opts.log_dir)}/<component>.log",
        "next:",
        f"  {env_prefix}kpctl get nodes",
        f"  {env_prefix}kpctl apply -f {_example_manifest()}",
        f"  kplane status{dd}",
        f"Ctrl-C stops the cluster (or `kplane down{dd}` from another terminal).",
    ]
    console.block(lines, title="kplane is up")


# --------------------------------------------------------------------------------------- status


@dataclass
class StatusRow:
    component: str
    pid: str
    address: str
    healthy: bool
    detail: str


async def _probe_row(comp: dict[str, Any]) -> StatusRow:
    name = str(comp.get("name", "?"))
    address = str(comp.get("address", ""))
    health = HealthCheck.from_json(comp.get("health") or {})
    if comp.get("external"):
        ok, detail = await check_health(health, grpc_in_process=True)
        return StatusRow(name, "external", address, ok, detail)
    ref = ProcessRef.from_json(comp)
    if ref is None:
        return StatusRow(name, "-", address, False, f"not running ({comp.get('status', 'stopped')})")
    if await asyncio.to_thread(live_process, ref) is None:
        return StatusRow(name, str(ref.pid), address, False, "process is gone")
    if health.kind == "alive":
        return StatusRow(name, str(ref.pid), address, True, "process alive")
    ok, detail = await check_health(health, grpc_in_process=True, timeout=2.0)
    return StatusRow(name, str(ref.pid), address, ok, detail)


async def cluster_status(data_dir: Path) -> tuple[dict[str, Any], list[StatusRow]]:
    """Read the state file under ``data_dir`` and probe everything in it (raises StateError)."""
    state = read_state(state_path(data_dir))
    rows: list[StatusRow] = []
    ref = _launcher_ref(state)
    if ref is None:
        rows.append(
            StatusRow("kplane up", "-", "", False, f"not running (stopped {state.get('stopped_at')})")
        )
    elif live_process(ref) is None:
        rows.append(
            StatusRow("kplane up", str(ref.pid), "", False, "launcher is gone (`kplane down` cleans up)")
        )
    else:
        rows.append(StatusRow("kplane up", str(ref.pid), "", True, "supervising"))
    comps = [c for c in state.get("components", []) if isinstance(c, dict)]
    rows += await asyncio.gather(*(_probe_row(c) for c in comps))
    return state, rows


# ----------------------------------------------------------------------------------------- down


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE  # exited; its parent has not reaped it yet
    except psutil.NoSuchProcess:
        return True


def _wait_gone(p: psutil.Process, timeout: float) -> bool:
    """Poll until ``p`` has exited (a zombie counts: it is not our child to reap)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not _gone(p):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    return True


def _terminate(ref: ProcessRef, timeout: float, say: Callable[[str], None], what: str) -> bool:
    """SIGTERM, wait up to ``timeout`` s, SIGKILL. False when the pid no longer is our process."""
    p = live_process(ref)
    if p is None:
        return False
    say(f"stopping {what} (pid {ref.pid})")
    try:
        p.terminate()
    except psutil.NoSuchProcess:
        return True
    if not _wait_gone(p, timeout):
        say(f"{what} did not stop within {timeout:.0f}s; sending SIGKILL")
        kill_group(ref.pid)
        _wait_gone(p, 5.0)
    return True


def run_down(data_dir: Path, say: Callable[[str], None], timeout: float = 10.0) -> int:
    """Stop the cluster whose state is under ``data_dir``. Returns the exit code."""
    sp = state_path(data_dir)
    try:
        state = read_state(sp)
    except StateError as e:
        say(f"{e}; nothing to stop")
        return 0
    comps = [c for c in state.get("components", []) if isinstance(c, dict)]
    ref = _launcher_ref(state)
    if ref is not None and live_process(ref) is not None:
        # The launcher stops its components in reverse order itself; give it the time that takes.
        budget = timeout * (len(comps) + 1) + 5.0
        _terminate(ref, budget, say, "kplane up")
        with contextlib.suppress(StateError):
            state = read_state(sp)  # as the launcher left it: the pids it stopped are null
        comps = [c for c in state.get("components", []) if isinstance(c, dict)]
    stopped_any = False
    for comp in reversed(comps):
        cref = ProcessRef.from_json(comp)
        if cref is None or comp.get("external"):
            continue
        name = str(comp.get("name", "?"))
        if _terminate(cref, float(comp.get("stop_timeout", timeout)), say, name):
            stopped_any = True
        else:
            say(f"{name}: pid {cref.pid} is gone or is no longer {name}; leaving it alone")
        comp["pid"] = None
        comp["status"] = "stopped"
    stop_pod_processes(data_dir / "kubelet", say)
    if isinstance(state.get("launcher"), dict):
        state["launcher"]["pid"] = None
    state["stopped_at"] = state.get("stopped_at") or _now()
    write_state(sp, state)
    if not stopped_any and ref is None:
        say(f"no cluster was running from {data_dir}")
    else:
        say(f"cluster in {data_dir} is stopped")
    return 0


def default_settings(config: Path | None) -> UpSettings:
    return UpSettings(config_path=config if config is not None else default_config_path())
