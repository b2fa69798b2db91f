"""Pod processes a stopped cluster leaves behind.

Containers deliberately outlive their kubelet (a restarted kubelet re-adopts them, as in
Kubernetes), so stopping the kubelets stops no pod. When the whole cluster goes down
(`kplane up` ends, `kplane down`), the launcher ends them too: every process whose command line
writes its standard output into a log file under ``DATA/kubelet/`` (the process runtime points
every container's stdout at its log file there) gets SIGTERM, and SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def pod_processes(kubelet_dir: Path) -> list[int]:
    prefix = str(kubelet_dir.absolute()).rstrip("/") + "/"
    me = os.getpid()
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        for fd in ("1", "3"):
            try:
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                pids.append(int(entry))
                break
    return pids


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def stop_pod_processes(kubelet_dir: Path, say: Callable[[str], None], grace: float = 3.0) -> int:
    """SIGTERM every pod process under ``kubelet_dir``, SIGKILL what is left after ``grace``.
    Returns how many were found."""
    pids = pod_processes(kubelet_dir)
    if not pids:
        return 0
    say(f"stopping {len(pids)} pod process(es) the kubelets left running")
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pod_processes(kubelet_dir):
        time.sleep(0.1)
    for pid in pod_processes(kubelet_dir):
        _signal(pid, signal.SIGKILL)
    return len(pids)


def kill_pod_processes(kubelet_dir: Path) -> list[int]:
    """SIGKILL every pod process under ``kubelet_dir`` at once (a node crash: no grace).
    Returns their pids."""
    pids = pod_processes(kubelet_dir)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    return pids
