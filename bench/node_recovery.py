"""node_recovery: how fast the control plane answers a lost node, against the floor it is configured to.

A real cluster: ``kplane up --profile fast --nodes 3`` (etcd, apiserver, scheduler,
controller-manager, three kubelets and their proxies, each an OS process). Each round runs the
shipped scenario ``deploy/chaos/node-loss-deployment.yaml`` through the chaos runner: a 3-replica
Deployment, then ``kill-node`` on the node with the most of its pods (SIGKILL of the kubelet, its
proxy and its pods' processes), until the Deployment is whole again and the node restarted.
Each round yields, in seconds after the kill (read from the recorded watch events):

- ``detection``: the node's Ready condition leaves True (the node lifecycle controller);
- ``taint``: ``node.kubernetes.io/unreachable:NoExecute`` appears on the node;
- ``eviction_first`` / ``eviction_last``: the node's pods get a deletionTimestamp (taint eviction);
- ``replacement_running``: the last replacement pod is Running on another node.

The floor, from the profile: a node cannot be declared lost before ``grace`` (5 s) has passed
since its last heartbeat, which came at most one heartbeat interval (1 s) before the kill, so
detection >= grace - heartbeat (4 s); its pods cannot be evicted before their toleration (5 s) has
run out after that, so eviction >= grace + toleration - heartbeat (9 s). ``ratio`` is the p50 of
eviction_last over that floor; ``over_floor_s`` what the pipeline adds on top of the configured waits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, percentile
from kplane.cluster.spec import PROFILES
from kplane.devcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "deploy" / "chaos" / "node-loss-deployment.yaml"
STAGES = ("detection", "taint", "eviction_first", "eviction_last", "replacement_running")


def _start(tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KPLANE_CONFIG": str(tmp / "config")}
    return subprocess.Popen(
        [sys.executable, "-m", "kplane.cli.kplane", "up", "--data-dir", str(tmp / "data"), "--port", str(free_port()),
         "--etcd-port", str(free_port()), "--etcd-peer-port", str(free_port()), "--nodes", "3", "--profile", "fast",
         "--cluster-cidr", "127.255.0.0/16", "--log-format", "json"],
        stdout=open(tmp / "up.log", "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


async def _round(data: Path) -> dict[str, Any]:
    from kplane.chaos.faults import Cluster
    from kplane.chaos.runner import Runner
    from kplane.chaos.scenario import load_scenario

    result = await Runner(load_scenario(SCENARIO), Cluster(data), say=lambda _m: None).run()
    rec = result.recoveries[0] if result.recoveries else None
    out: dict[str, Any] = {"ok": result.ok}
    for stage in STAGES:
        out[stage] = getattr(rec, stage) if rec else None
    out["pods"] = rec.pods if rec else 0
    return out


async def run(quick: bool = False) -> list[dict[str, Any]]:
    rounds = 1 if quick else 3
    prof = PROFILES["fast"]
    with tempfile.TemporaryDirectory(prefix="kplane-bench-recovery-") as d:
        tmp = Path(d)
        up = _start(tmp)
        try:
            deadline = time.monotonic() + 120
            while not (tmp / "config").exists():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"kplane up failed: {(tmp / 'up.log').read_text()[-2000:]}")
                await asyncio.sleep(0.5)
            samples = []
            for _ in range(rounds):
                samples.append(await _round(tmp / "data"))
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    figures: dict[str, Any] = {}
    for stage in STAGES:
        values = [s[stage] for s in samples if s[stage] is not None]
        if values:
            figures[f"{stage}_p50_s"] = round(percentile(values, 50), 2)
            figures[f"{stage}_max_s"] = round(max(values), 2)
    floor = prof.node_monitor_grace + prof.toleration - prof.heartbeat
    p50 = figures.get("eviction_last_p50_s")
    return [{
        "benchmark": "node_recovery", "profile": "fast", "rounds": rounds, "all_passed": all(s["ok"] for s in samples),
        "grace_s": prof.node_monitor_grace, "toleration_s": prof.toleration, "heartbeat_s": prof.heartbeat,
        "floor_detection_s": prof.node_monitor_grace - prof.heartbeat, "floor_eviction_s": floor,
        **figures, "ratio": round(p50 / floor, 2) if p50 else None,
        "over_floor_s": round(p50 - floor, 2) if p50 else None,
        "samples": samples, "load_avg_1m": round(os.getloadavg()[0], 2), **machine(),
    }]
