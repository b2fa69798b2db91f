"""The kubelet's Node object and its heartbeats.

Two heartbeats, as in Kubernetes since 1.17:

- the **Lease** ``kube-node-lease/<node>`` is renewed every ``lease_renew_interval`` (10 s) — the
  cheap "I am alive" signal the node-lifecycle controller watches;
- the **Node status** (capacity, allocatable, conditions, addresses, images, daemon endpoint) is
  computed every ``status_update_frequency`` (10 s) and written when something changed, or every
  ``status_report_frequency`` (1 min) regardless, refreshing the conditions' lastHeartbeatTime.

Registration creates the Node, or takes over an existing one (a restarted kubelet, or a node
object created by hand) keeping its labels, taints and unschedulable flag as set by users.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from kplane import __version__
from kplane.api import errors as api
from kplane.api.pb import coordination_pb2, core_pb2, meta_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.logs import get_logger
from kubelet.status import timestamp

NODES = resolve("nodes")
LEASES = resolve("leases")
LEASE_NAMESPACE = "kube-node-lease"

log = get_logger(component="kubelet")


@dataclass
class NodeConfig:
    name: str
    ip: str = "127.0.0.1"
    pod_cidr: str = ""
    cpu: str = ""  # quantity; "" = the host's CPUs
    memory: str = ""  # quantity; "" = the host's memory
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[core_pb2.Taint] = field(default_factory=list)
    runtime: str = "process"
    streaming_port: int = 0
    lease_duration: int = 40
    lease_renew_interval: float = 10.0
    status_update_frequency: float = 10.0
    status_report_frequency: float = 60.0


def host_cpu() -> str:
    return str(os.cpu_count() or 1)


def host_memory() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1])}Ki"
    except OSError:
        pass
    return "4Gi"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _machine_id() -> str:
    try:
        with open("/etc/machine-id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _os_image() -> str:
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


class NodeAgent:
    """Registers the node, keeps its status current and renews its lease."""

    def __init__(self, client: Client, config: NodeConfig, *,
                 images: Callable[[], list[core_pb2.ContainerImage]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.config = config
        self.images = images or (lambda: [])
        self.clock = clock
        self.node: core_pb2.Node | None = None
        self.registered = asyncio.Event()
        self._last_report = 0.0
        self._changed = asyncio.Event()
        self._last_lease: coordination_pb2.Lease | None = None  # as last written by renew_lease
        self.log = log.bind(node=config.name)
        arch = platform.machine()
        self.system_info = core_pb2.NodeSystemInfo(
            machineID=_machine_id(), systemUUID=str(uuid.uuid5(uuid.NAMESPACE_DNS, config.name)),
            bootID=_boot_id(), kernelVersion=platform.release(), osImage=_os_image(),
            containerRuntimeVersion=f"{config.runtime}://{__version__}", kubeletVersion=f"v{__version__}-kplane",
            kubeProxyVersion="", operatingSystem="linux",
            architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch))

    def request_update(self) -> None:
        """Something the status reports changed (e.g. a new image): write soon."""
        self._changed.set()

    # -- the desired node ------------------------------------------------------------------------

    def _labels(self) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.config.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": self.system_info.architecture,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": self.system_info.architecture,
        }
        labels.update(self.config.labels)
        return labels

    def desired_status(self, previous: core_pb2.NodeStatus | None) -> core_pb2.NodeStatus:
        cfg = self.config
        now = self.clock()
        status = core_pb2.NodeStatus()
        for key, value in (("cpu", cfg.cpu or host_cpu()), ("memory", cfg.memory or host_memory()),
                           ("pods", str(cfg.max_pods)), ("ephemeral-storage", "100Gi")):
            status.capacity[key].string = value
            status.allocatable[key].string = value
        old = {c.type: c for c in previous.conditions} if previous is not None else {}
        for ctype, cstatus, reason, message in _CONDITIONS:
            cond = status.conditions.add(type=ctype, status=cstatus, reason=reason, message=message)
            cond.lastHeartbeatTime.CopyFrom(timestamp(now))
            prev = old.get(ctype)
            if prev is not None and prev.status == cstatus and prev.HasField("lastTransitionTime"):
                cond.lastTransitionTime.CopyFrom(prev.lastTransitionTime)
            else:
                cond.lastTransitionTime.CopyFrom(timestamp(now))
        status.addresses.add(type="InternalIP", address=cfg.ip)
        status.addresses.add(type="Hostname", address=cfg.name)
        if cfg.streaming_port:
            status.daemonEndpoints.kubeletEndpoint.Port = cfg.streaming_port
        status.nodeInfo.CopyFrom(self.system_info)
        status.images.extend(self.images())
        return status

    @staticmethod
    def _same_ignoring_heartbeat(a: core_pb2.NodeStatus, b: core_pb2.NodeStatus) -> bool:
        a2, b2 = core_pb2.NodeStatus(), core_pb2.NodeStatus()
        a2.CopyFrom(a)
        b2.CopyFrom(b)
        for st in (a2, b2):
            for cond in st.conditions:
                cond.ClearField("lastHeartbeatTime")
        return a2 == b2

    # -- registration ----------------------------------------------------------------------------

    async def register(self) -> core_pb2.Node:
        cfg = self.config
        delay = 0.2
        while True:
            try:
                node = await self._register_once()
                self.node = node
                self.registered.set()
                self.log.info("node registered", ip=cfg.ip, podCIDR=cfg.pod_cidr)
                return node
            except (api.Unavailable, api.Timeout, api.InternalError, api.Conflict, OSError) as exc:
                self.log.warning("node registration failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _register_once(self) -> core_pb2.Node:
        cfg = self.config
        try:
            existing = await self.client.get(NODES, cfg.name)
        except api.NotFound:
            existing = None
        if existing is None:
            node = core_pb2.Node()
            node.metadata.name = cfg.name
            node.metadata.labels.update(self._labels())
            if cfg.pod_cidr:
                node.spec.podCIDR = cfg.pod_cidr
                node.spec.podCIDRs.append(cfg.pod_cidr)
            node.spec.taints.extend(cfg.taints)
            try:
                created = await self.client.create(NODES, node)
            except api.AlreadyExists:
                return await self._register_once()
            assert isinstance(created, core_pb2.Node)
            existing = created
        else:
            assert isinstance(existing, core_pb2.Node)
            changed = False
            for key, value in self._labels().items():
                if existing.metadata.labels.get(key) != value:
                    existing.metadata.labels[key] = value
                    changed = True
            if cfg.pod_cidr and existing.spec.podCIDR != cfg.pod_cidr:
                existing.spec.podCIDR = cfg.pod_cidr
                del existing.spec.podCIDRs[:]
                existing.spec.podCIDRs.append(cfg.pod_cidr)
                changed = True
            if changed:
                updated = await self.client.update(NODES, existing)
                assert isinstance(updated, core_pb2.Node)
                existing = updated
        return await self._write_status(existing, force=True)

    async def _write_status(self, node: core_pb2.Node, *, force: bool = False) -> core_pb2.Node:
        desired = self.desired_status(node.status)
        now = self.clock()
        if not force and self._same_ignoring_heartbeat(node.status, desired) and \
                now - self._last_report < self.config.status_report_frequency:
            return node
        updated_node = core_pb2.Node()
        updated_node.CopyFrom(node)
        updated_node.status.CopyFrom(desired)
        written = await self.client.update_status(NODES, updated_node)
        assert isinstance(written, core_pb2.Node)
        self._last_report = now
        return written

    # -- loops -----------------------------------------------------------------------------------

    async def run(self) -> None:
        if not self.registered.is_set():
            await self.register()
        await asyncio.gather(self._status_loop(), self._lease_loop())

    async def sync_status(self) -> None:
        """Compare the desired status with the server's copy of the node (not with what this agent
        wrote last: the node lifecycle controller may have set the conditions to Unknown meanwhile)
        and write when they differ; a conflict (someone wrote the node since the read, e.g. its
        taints) is retried at once against a fresh read."""
        for attempt in range(3):
            node = await self.client.get(NODES, self.config.name)
            assert isinstance(node, core_pb2.Node)
            try:
                self.node = await self._write_status(node)
                return
            except api.Conflict:
                if attempt == 2:
                    raise

    async def _status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.status_update_frequency):
                    await self._changed.wait()
            self._changed.clear()
            try:
                await self.sync_status()
            except api.NotFound:
                self.log.warning("node object deleted; registering again")
                await self.register()
            except Exception as exc:  # an outage: keep trying, never die
                self.log.warning("node status update failed", error=str(exc))

    def _lease(self, existing: coordination_pb2.Lease | None) -> coordination_pb2.Lease:
        lease = coordination_pb2.Lease()
        if existing is not None:
            lease.CopyFrom(existing)
        else:
            lease.metadata.name = self.config.name
            lease.metadata.namespace = LEASE_NAMESPACE
            if self.node is not None:
                lease.metadata.ownerReferences.append(meta_pb2.OwnerReference(
                    apiVersion="v1", kind="Node", name=self.node.metadata.name, uid=self.node.metadata.uid))
        lease.spec.holderIdentity = self.config.name
        lease.spec.leaseDurationSeconds = self.config.lease_duration
        lease.spec.renewTime.FromNanoseconds(int(self.clock() * 1e9) // 1000 * 1000)  # MicroTime
        return lease

    async def renew_lease(self) -> None:
        """One write per renewal: the lease this agent wrote last is updated directly (as
        client-go's lease controller does); it is read back only when that fails (someone else
        wrote it, or it is gone). With 100 fake nodes in one process that halves the lease calls."""
        if self._last_lease is not None:
            try:
                written = await self.client.update(LEASES, self._lease(self._last_lease), namespace=LEASE_NAMESPACE)
                assert isinstance(written, coordination_pb2.Lease)
                self._last_lease = written
                return
            except (api.Conflict, api.NotFound):
                self._last_lease = None
        try:
            existing = await self.client.get(LEASES, self.config.name, namespace=LEASE_NAMESPACE)
        except api.NotFound:
            created = await self.client.create(LEASES, self._lease(None), namespace=LEASE_NAMESPACE)
            assert isinstance(created, coordination_pb2.Lease)
            self._last_lease = created
            return
        assert isinstance(existing, coordination_pb2.Lease)
        written = await self.client.update(LEASES, self._lease(existing), namespace=LEASE_NAMESPACE)
        assert isinstance(written, coordination_pb2.Lease)
        self._last_lease = written

    async def _lease_loop(self) -> None:
        delay = self.config.lease_renew_interval
        last_renewed = self.clock()
        while True:
            try:
                await self.renew_lease()
                delay = self.config.lease_renew_interval
                now = self.clock()
                if now - last_renewed > 2 * self.config.lease_renew_interval + 1:
                    # a long silence (a frozen process, a cut-off apiserver): the node lifecycle
                    # controller may have marked the node Unknown; report the real status now
                    self.log.info("lease renewed after a silence; refreshing node status",
                                  silent_for=round(now - last_renewed, 1))
                    self.request_update()
                last_renewed = now
            except Exception as exc:  # retry sooner (Kubernetes: 200 ms doubling to 7 s)
                self.log.warning("lease renewal failed", error=str(exc))
                delay = min(max(0.2, delay / 2), 7.0)
            await asyncio.sleep(delay)
