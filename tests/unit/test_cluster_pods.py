"""`kplane down` ends the pod processes its kubelets left running (found by their log files)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kplane.cluster.pods import pod_processes, stop_pod_processes


def test_stops_processes_writing_under_the_kubelet_dir(tmp_path: Path) -> None:
    logs = tmp_path / "kubelet" / "node-1" / "runtime"
    logs.mkdir(parents=True)
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60"], stdout=open(logs / "0.log", "w"),
                                start_new_session=True)
    polite = subprocess.Popen(["sleep", "60"], stdout=open(logs / "1.log", "w"), start_new_session=True)
    elsewhere = subprocess.Popen(["sleep", "60"], stdout=open(tmp_path / "other.log", "w"), start_new_session=True)
    try:
        found = pod_processes(tmp_path / "kubelet")
        assert stubborn.pid in found and polite.pid in found and elsewhere.pid not in found
        messages: list[str] = []
        assert stop_pod_processes(tmp_path / "kubelet", messages.append, grace=0.5) >= 2
        assert stubborn.wait(10) == -9  # ignored SIGTERM: killed after the grace period
        assert polite.wait(10) == -15
        assert elsewhere.poll() is None
        assert messages and "pod process" in messages[0]
    finally:
        for p in (stubborn, polite, elsewhere):
            p.kill()
            p.wait()
