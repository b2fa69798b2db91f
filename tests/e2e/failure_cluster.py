"""A small real cluster for the node-failure e2e tests (test_node_lifecycle.py, test_drain.py):
its own etcd and apiserver (short default toleration seconds), a scheduler, a controller-manager
with short node-monitor timings, and process-runtime kubelets with fast heartbeats — every one a
separate OS process. Kubelets can be frozen (SIGSTOP) and thawed (SIGCONT) like a hung node.

Each module gets its own cluster, so the node lifecycle controller sees only these nodes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import (
    Components,
    controller_manager_argv,
    kill_leftovers,
    kpctl,
    kubelet_argv,
    scheduler_argv,
    start_logged,
    worker_index,
)
from procs import eventually as poll

from kplane.api import errors as api
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, EtcdServer, start_apiserver, start_etcd, stop_process

PODS, NODES, DEPLOYMENTS = resolve("pods"), resolve("nodes"), resolve("deployments")


@dataclass
class Cluster(Components):
    etcd: EtcdServer = field(kw_only=True)
    api: APIServer = field(kw_only=True)
    tag: str = field(kw_only=True)
    pod_octet: int = field(kw_only=True)  # pod CIDRs 127.<pod_octet>.<x>.0/24
    nodes: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.api.address

    def kubelet(self, index: int, *, ip_base: int) -> str:
        """Start kubelet ``index`` (node IP 127.0.250.<ip_base+index>); returns the node name."""
        name = f"n{index}-{self.tag}"
        w = worker_index()
        self.start(name, kubelet_argv(
            self.address, name, self.tmp / "data" / name, node_ip=f"127.0.250.{ip_base + index + 8 * w}",
            pod_cidr=f"127.{self.pod_octet}.{index + 8 * w}.0/24", cpu="4", memory="4Gi",
            flags=("--node-lease-renew-interval", "1s", "--node-status-update-frequency", "1s")))
        self.nodes.append(name)
        return name

    def restart(self, name: str) -> None:
        """SIGKILL a component (a crash) and start it again with the same command line."""
        proc = self.procs[name]
        proc.kill()
        proc.wait(timeout=30)
        argv = [str(a) for a in proc.args]  # type: ignore[union-attr]
        self.procs[name] = start_logged(argv, self.logs[name], append=True)

    def freeze(self, node: str) -> None:
        os.kill(self.procs[node].pid, signal.SIGSTOP)

    def thaw(self, node: str) -> None:
        os.kill(self.procs[node].pid, signal.SIGCONT)

    def kpctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return kpctl(self.address, *args, timeout=timeout)

    async def akpctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.kpctl, *args, timeout=timeout)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGCONT)
        self.stop_procs("controller-manager", "scheduler")
        self.stop_all()
        kill_leftovers(self.tmp / "data")
        stop_process(self.api.proc)
        stop_process(self.etcd.proc)
        self.print_logs(2500)


def start_cluster(tmp: Path, *, pod_octet: int, ip_base: int, kubelets: int = 2,
                  controllers: str = "replicaset,deployment,daemonset,garbagecollector,nodelifecycle") -> Cluster:
    etcd = start_etcd(tmp)
    try:
        apiserver = start_apiserver(etcd, tmp, "--default-not-ready-toleration-seconds", "5",
                                    "--default-unreachable-toleration-seconds", "5")
    except BaseException:
        stop_process(etcd.proc)
        raise
    c = Cluster(tmp, etcd=etcd, api=apiserver, tag=uuid.uuid4().hex[:5], pod_octet=pod_octet)
    try:
        c.start("scheduler", scheduler_argv(c.address))
        c.start("controller-manager", controller_manager_argv(
            c.address, controllers, "--node-monitor-grace-period", "5s", "--node-monitor-period", "1s",
            "--node-startup-grace-period", "10s"))
        for i in range(1, kubelets + 1):
            c.kubelet(i, ip_base=ip_base)
    except BaseException:
        c.stop()
        raise
    return c


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 90.0) -> Any:
    """Poll ``check`` until it returns something truthy (AssertionError/NotFound count as not yet)."""
    return await poll(check, what, timeout=timeout, interval=0.5, retry_on=(AssertionError, KeyError, api.NotFound))


def condition(obj: Any, ctype: str) -> Any:
    return next((c for c in obj.status.conditions if c.type == ctype), None)


async def nodes_ready(client: Client, names: list[str]) -> bool:
    for name in names:
        node = await client.get(NODES, name)
        cond = condition(node, "Ready")
        if cond is None or cond.status != "True":
            return False
    return True


def deployment(name: str, replicas: int, *, tolerations: list[dict[str, Any]] | None = None,
               node_selector: dict[str, str] | None = None, volumes: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    if volumes:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        spec["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


async def running_pods(client: Client, namespace: str, app: str) -> list[Any]:
    """The app's pods that are Running and Ready and not being deleted."""
    items, _ = await client.list_all(PODS, namespace=namespace, label_selector=f"app={app}")
    out = []
    for pod in items:
        ready = condition(pod, "Ready")
        if pod.status.phase == "Running" and ready is not None and ready.status == "True" \
                and not pod.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            out.append(pod)
    return out
