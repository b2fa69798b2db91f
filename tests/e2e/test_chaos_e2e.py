"""`kplane chaos` against a real `kplane up --profile fast --nodes 3 --control-plane-replicas 2
--fake-nodes 20`: the faults from the command line (freeze/thaw, kill-node/restart-node, kill
--leader, clear errors) and all four shipped scenarios end to end (invariants hold, report written)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from procs import worker_index

from kplane.devcluster import wait_until

# one cluster for the whole module: keep its tests on one xdist worker (`make test` runs with
# --dist loadscope; the group serves --dist loadgroup); the ports and ranges still differ per
# worker, in case a run splits them
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chaos-cluster")]

ROOT = Path(__file__).resolve().parents[2]
KPLANE = [sys.executable, "-m", "kplane.cli.kplane"]
KPCTL = [sys.executable, "-m", "kplane.cli.kpctl"]
W = worker_index() % 2
# this file's ports (24000-24999 are chaos's), pod and service ranges of its own
PORT, ETCD_PORT, ETCD_PEER_PORT = 24100 + 10 * W, 24101 + 10 * W, 24102 + 10 * W
CLUSTER_CIDR, SERVICE_CIDR = f"127.{254 + W}.0.0/16", f"127.{92 + W}.0.0/16"


@dataclass
class Cluster:
    data: Path
    env: dict[str, str]
    proc: subprocess.Popen[str]

    def chaos(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*KPLANE, "chaos", *args, "--data-dir", str(self.data)], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def kpctl(self, *args: str) -> str:
        return subprocess.run([*KPCTL, *args], env=self.env, capture_output=True, text=True, timeout=30).stdout

    def node_ready(self, node: str) -> str:
        return self.kpctl("get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")

    def state(self) -> dict[str, Any]:
        return {c["name"]: c for c in json.loads((self.data / "cluster.json").read_text())["components"]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("chaos")
    data = tmp / "data"
    env = {**os.environ, "KPLANE_CONFIG": str(tmp / "config")}
    proc = subprocess.Popen(
        [*KPLANE, "up", "--data-dir", str(data), "--port", str(PORT), "--etcd-port", str(ETCD_PORT),
         "--etcd-peer-port", str(ETCD_PEER_PORT), "--nodes", "3", "--profile", "fast",
         "--control-plane-replicas", "2", "--fake-nodes", "20", "--cluster-cidr", CLUSTER_CIDR,
         "--service-cluster-ip-range", SERVICE_CIDR,
         "--log-format", "json"],
        stdout=open(tmp / "up.log", "w"), stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    c = Cluster(data, env, proc)
    try:
        wait_until(lambda: (tmp / "config").exists(), 120, "kplane up to come up")

        def three_ready() -> bool:
            lines = c.kpctl("get", "nodes", "--no-headers").splitlines()
            real = [line for line in lines if line.startswith("node-")]
            return len(real) == 3 and len(lines) == 23 and all(line.split()[1] == "Ready" for line in lines)

        wait_until(three_ready, 90, "three Ready nodes", interval=0.5)
        yield c
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print((tmp / "up.log").read_text()[-3000:])


def test_node_faults_from_the_cli(cluster: Cluster) -> None:
    """freeze-node stops heartbeats (NotReady/Unknown within the fast grace period), thaw-node brings
    it back; kill-node kills the kubelet and its proxy, restart-node starts them again as the
    supervisor's children; bad names and a missing cluster exit 1 with a clear message."""
    frozen = cluster.chaos("freeze-node", "node-3")
    assert frozen.returncode == 0, frozen.stderr
    assert frozen.stdout.startswith("freeze-node node-3: SIGSTOP kubelet (pid ") and "[revision " in frozen.stdout
    wait_until(lambda: cluster.node_ready("node-3") not in ("True", ""), 40, "node-3 to be declared lost", 0.5)
    assert cluster.chaos("thaw-node", "node-3").returncode == 0
    wait_until(lambda: cluster.node_ready("node-3") == "True", 40, "node-3 Ready again", 0.5)

    old = cluster.state()
    killed = cluster.chaos("kill-node", "node-3")
    assert killed.returncode == 0, killed.stderr
    assert f"kubelet (pid {old['node-3']['pid']})" in killed.stdout and "proxy-3" in killed.stdout
    state = cluster.state()
    assert state["node-3"]["status"] == "killed" and state["node-3"]["pid"] is None
    assert state["proxy-3"]["pid"] is None
    wait_until(lambda: cluster.node_ready("node-3") not in ("True", ""), 40, "node-3 to be declared lost", 0.5)
    restarted = cluster.chaos("restart-node", "node-3")
    assert restarted.returncode == 0, restarted.stderr
    state = cluster.state()
    assert state["node-3"]["status"] == "running" and state["proxy-3"]["status"] == "running"
    wait_until(lambda: cluster.node_ready("node-3") == "True", 40, "node-3 Ready after restart-node", 0.5)
    records = [json.loads(line) for line in (cluster.data / "chaos" / "faults.jsonl").read_text().splitlines()]
    assert [r["fault"] for r in records][-4:] == ["freeze-node", "thaw-node", "kill-node", "restart-node"]
    assert all(isinstance(r["revision"], int) for r in records)

    unknown = cluster.chaos("kill-node", "node-9")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "kplane chaos: no node 'node-9' in this cluster; nodes: node-1, node-2, node-3"
    bad = cluster.chaos("kill", "kubelet")
    assert bad.returncode == 1 and "no component 'kubelet'" in bad.stderr
    nowhere = subprocess.run([*KPLANE, "chaos", "freeze-node", "node-1", "--data-dir", str(cluster.data / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert nowhere.returncode == 1 and "no running cluster" in nowhere.stderr


def test_kill_the_controller_manager_leader(cluster: Cluster) -> None:
    """--leader picks the replica holding kube-system/kube-controller-manager; the standby takes over."""
    def holder() -> str:
        return cluster.kpctl("get", "lease", "kube-controller-manager", "-n", "kube-system", "-o",
                             "jsonpath={.spec.holderIdentity}")

    wait_until(lambda: bool(holder()), 30, "a controller-manager leader", 0.5)
    before = holder()
    killed = cluster.chaos("kill", "controller-manager", "--leader")
    assert killed.returncode == 0, killed.stderr
    name = killed.stdout.split()[1].rstrip(":")
    pid = killed.stdout.split("(pid ")[1].split(",")[0]
    assert name in ("controller-manager", "controller-manager-2") and pid in before.split("_")
    wait_until(lambda: holder() not in ("", before), 40, "the standby to take the lease", 0.5)
    assert cluster.chaos("restart", name).returncode == 0
    assert cluster.state()[name]["status"] == "running"


@pytest.mark.parametrize("scenario", ["node-loss-deployment", "flapping-node", "leader-kill-rollout",
                                      "apiserver-restart-scaleup"])
def test_shipped_scenario_passes(cluster: Cluster, scenario: str, tmp_path: Path) -> None:
    """The shipped scenario runs to PASSED: every invariant held, report.html/result.json written."""
    out = cluster.chaos("run", str(ROOT / "deploy" / "chaos" / f"{scenario}.yaml"), "--report", str(tmp_path),
                        timeout=240)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert f"scenario {scenario}: PASSED" in out.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["ok"] and result["profile"] == "fast"
    assert all(r["held"] is not False for r in result["invariants"] + result["expectations"])
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page and "PASSED" in page
    if scenario in ("leader-kill-rollout", "apiserver-restart-scaleup"):
        assert result["recoveries"] == []  # no node fault in these
        return
    [rec] = result["recoveries"]
    assert rec["detection"] is not None
    if scenario == "node-loss-deployment":
        assert rec["evicted"] == rec["pods"] >= 1 and rec["replacement_running"] is not None
    else:
        assert rec["evicted"] == 0
