"""What the e2e and process-level integration tests share: component command lines, a set of
logged component processes, the kpctl runner, the clean-up safety net and the poll-until loop.

Importable from every test directory the way tests/streaming_double.py is (pytest puts this
directory, where conftest.py lives, on sys.path). Each test keeps its own ports, node IPs, pod
CIDRs and timings; the helpers take them as arguments."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplane.devcluster import stop_process

KPCTL = [sys.executable, "-m", "kplane.cli.kpctl"]


def worker_index() -> int:
    """This xdist worker's number (gw3 -> 3; 0 without xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name[2:].isdigit() else 0


def component_argv(module: str, server: str, *flags: str) -> list[str]:
    """`python -m <module> --server <server> <flags> --log-format json`."""
    return [sys.executable, "-m", module, "--server", server, *flags, "--log-format", "json"]


def scheduler_argv(server: str) -> list[str]:
    return component_argv("scheduler", server, "--leader-elect=false")


def controller_manager_argv(server: str, controllers: str, *flags: str) -> list[str]:
    return component_argv("controller_manager", server, "--leader-elect=false", "--controllers", controllers,
                          *flags)


def kubelet_argv(server: str, node: str, data_dir: Path, *, node_ip: str, pod_cidr: str, cpu: str,
                 memory: str, flags: tuple[str, ...] = ("--node-lease-renew-interval", "1s")) -> list[str]:
    """A process-runtime kubelet for ``node``; ``flags`` default to a 1s lease renewal."""
    return component_argv("kubelet", server, "--node-name", node, "--data-dir", str(data_dir),
                          "--node-ip", node_ip, "--pod-cidr", pod_cidr, "--cpu", cpu, "--memory", memory, *flags)


def start_logged(argv: list[str], log: Path, *, append: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr going to ``log`` (truncated unless ``append``)."""
    return subprocess.Popen(argv, stdout=open(log, "ab" if append else "wb"), stderr=subprocess.STDOUT)


@dataclass
class Components:
    """Named component processes, each logging to ``<tmp>/<name>.log``, in start order."""

    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> None:
        self.logs[name] = self.tmp / f"{name}.log"
        self.procs[name] = start_logged(argv, self.logs[name])

    def stop_procs(self, *names: str) -> None:
        """Stop the named processes that were started, in the order given."""
        for name in names:
            if name in self.procs:
                stop_process(self.procs[name])

    def stop_all(self) -> None:
        """Stop every process, in start order (stopping one already stopped is a no-op)."""
        self.stop_procs(*self.procs)

    def print_logs(self, tail: int) -> None:
        for name, path in self.logs.items():
            print(f"--- {name} (tail)\n{path.read_text(errors='replace')[-tail:]}")


def kpctl(server: str, *args: str, namespace: str | None = None, stdin: str | None = None,
          timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `kpctl --server <server> [-n <namespace>] <args>` and capture its text output."""
    ns = ["-n", namespace] if namespace is not None else []
    return subprocess.run([*KPCTL, "--server", server, *ns, *args], input=stdin, text=True, capture_output=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def new_namespace(server: str, *, timeout: float = 60) -> str:
    """Create a fresh `e2e-<random>` namespace with kpctl; return its name."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    result = kpctl(server, "create", "namespace", name, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return name


def kill_leftovers(marker_dir: Path, *, process_groups: bool = False) -> None:
    """Safety net: no process whose command line names ``marker_dir`` (our kubelets' containers)
    outlives the module. Stopped (SIGSTOPped) ones are continued first; with ``process_groups``
    a whole group is killed where the process leads one."""
    marker = str(marker_dir).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker not in cmdline:
            continue
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGCONT)
        if process_groups:
            with contextlib.suppress(OSError):
                os.killpg(int(pid), signal.SIGKILL)
                continue
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGKILL)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, *, timeout: float, interval: float,
                     retry_on: tuple[type[BaseException], ...], show: Callable[[Any], str] = repr) -> Any:
    """Poll ``check`` every ``interval`` seconds until it returns something truthy (``retry_on``
    exceptions count as not yet); return that, or fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
            if last:
                return last
        except retry_on as exc:
            last = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {show(last)}")
