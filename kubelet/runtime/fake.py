"""The fake runtime: kwok-style simulated containers, for scale work with many nodes per process.

Nothing runs. A sandbox gets a pod IP from the node's pod CIDR (the same allocator as the process
runtime, so addresses look real), a container is ``running`` the moment it starts, and it stays
running until it is stopped. Semantics, kept deliberately simple:

- an init container (label ``kplane.io/init-container: "true"``, set by the pod worker) exits 0
  the moment it starts, as in kwok: otherwise a pod with init containers would never run;
- ``stop_container`` makes a running container ``exited`` with exit code 0, reason ``Completed``
  (a well-behaved program that handles SIGTERM), whatever the grace period;
- ``exec_sync`` succeeds at once with empty output (so exec probes pass);
- ``exec``/``attach`` raise ``RuntimeFailure("NotSupported", ...)``; ``log_path`` is None;
- :meth:`FakeRuntime.exit_container` lets a test (or a scenario driver) make a container exit with
  any code, to exercise restart policies and back-off without processes.

State is in memory only: a fake node forgets its pods when its kubelet restarts (the kubelet then
recreates them, which is what a real node would do after losing its containers).

Cheap on purpose: a few dicts per node, no files, no tasks, no timers.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kubelet.runtime import (
    ContainerConfig,
    ContainerInfo,
    ExecProcess,
    ExecResult,
    NotFound,
    RuntimeFailure,
    SandboxConfig,
    SandboxInfo,
    StartError,
)
from kubelet.runtime.ipam import PodIPAllocator

if TYPE_CHECKING:
    from kubelet.runtime import Runtime

_ids = itertools.count(1)
INIT_LABEL = "kplane.io/init-container"  # "true" on init containers (the pod worker sets it)


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):012x}"


class FakeRuntime:
    name = "fake"

    def __init__(self, pod_cidr: str = "127.245.0.0/24", directory: Path | None = None) -> None:
        """``pod_cidr``: any IPv4 CIDR (nothing listens on fake pod IPs; the default stays on
        loopback so a stray client never sends traffic off the machine). ``directory``: what :attr:`SandboxInfo.directory` points under (nothing is written there
        by this runtime; volumes code may). Defaults to a path that is never created."""
        self.ipam = PodIPAllocator(pod_cidr)
        self._directory = directory or Path("/nonexistent/kplane-fake")
        self._sandboxes: dict[str, SandboxInfo] = {}
        self._containers: dict[str, ContainerInfo] = {}
        self._by_sandbox: dict[str, list[str]] = {}

    # -- sandboxes --------------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxInfo:
        sid = _new_id("fakesb")
        info = SandboxInfo(
            id=sid,
            pod_uid=config.pod_uid,
            namespace=config.namespace,
            name=config.name,
            attempt=config.attempt,
            state="ready",
            ip=self.ipam.allocate(),
            created_at=time.time(),
            directory=self._directory / sid,
            labels=dict(config.labels),
        )
        self._sandboxes[sid] = info
        self._by_sandbox[sid] = []
        return _copy_sandbox(info)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for cid in self._by_sandbox.get(sandbox_id, []):
            await self.stop_container(cid, 0)
        sb.state = "notready"

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.pop(sandbox_id, None)
        if sb is None:
            return
        for cid in self._by_sandbox.pop(sandbox_id, []):
            self._containers.pop(cid, None)
        self.ipam.release(sb.ip)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        return [_copy_sandbox(sb) for sb in self._sandboxes.values()]

    # -- containers -------------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            raise NotFound(f"sandbox {sandbox_id}")
        if sb.state != "ready":
            raise RuntimeFailure("SandboxNotReady", f"sandbox {sandbox_id} is not ready")
        cid = _new_id("fakec")
        info = ContainerInfo(
            id=cid,
            sandbox_id=sandbox_id,
            name=config.name,
            attempt=config.attempt,
            state="created",
            image=config.image,
            image_id=config.image_id,
            created_at=time.time(),
            labels=dict(config.labels),
        )
        self._containers[cid] = info
        self._by_sandbox[sandbox_id].append(cid)
        return _copy_container(info)

    def _get(self, container_id: str) -> ContainerInfo:
        info = self._containers.get(container_id)
        if info is None:
            raise NotFound(f"container {container_id}")
        return info

    async def start_container(self, container_id: str) -> ContainerInfo:
        info = self._get(container_id)
        if info.state != "created":
            raise RuntimeFailure("AlreadyStarted", f"container {container_id} was already started")
        info.state = "running"
        info.started_at = time.time()
        if info.labels.get(INIT_LABEL) == "true":
            self._finish(info, 0, "Completed")
        return _copy_container(info)

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        info = self._containers.get(container_id)
        if info is not None and info.state == "running":
            self._finish(info, 0, "Completed")

    def _finish(self, info: ContainerInfo, exit_code: int, reason: str, message: str = "") -> None:
        info.state = "exited"
        info.finished_at = time.time()
        info.exit_code = exit_code
        info.reason = reason
        info.message = message

    def exit_container(self, container_id: str, exit_code: int, reason: str = "", message: str = "") -> None:
        """Simulate the container's program ending with ``exit_code`` (reason defaults to
        Completed/Error). Does nothing unless it is running."""
        info = self._get(container_id)
        if info.state == "running":
            self._finish(info, exit_code, reason or ("Completed" if exit_code == 0 else "Error"), message)

    def fail_start(self, container_id: str, message: str) -> StartError:
        """Record a start error for a created container, as the process runtime would."""
        info = self._get(container_id)
        self._finish(info, 128, "StartError", message)
        return StartError(message)

    async def remove_container(self, container_id: str) -> None:
        info = self._containers.pop(container_id, None)
        if info is not None:
            ids = self._by_sandbox.get(info.sandbox_id)
            if ids is not None and container_id in ids:
                ids.remove(container_id)

    async def container_status(self, container_id: str) -> ContainerInfo:
        return _copy_container(self._get(container_id))

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]:
        if sandbox_id is None:
            return [_copy_container(c) for c in self._containers.values()]
        return [_copy_container(self._containers[cid]) for cid in self._by_sandbox.get(sandbox_id, [])]

    # -- exec / attach / logs ---------------------------------------------------------------------

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        info = self._get(container_id)
        if info.state != "running":
            raise RuntimeFailure("ContainerNotRunning", f"container {container_id} is not running")
        return ExecResult(exit_code=0, output=b"")

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> ExecProcess:
        self._get(container_id)
        raise RuntimeFailure("NotSupported", "the fake runtime cannot exec into containers")

    async def attach(self, container_id: str) -> ExecProcess:
        self._get(container_id)
        raise RuntimeFailure("NotSupported", "the fake runtime cannot attach to containers")

    def log_path(self, container_id: str) -> Path | None:
        self._get(container_id)
        return None

    async def close(self) -> None:
        return None


def _copy_sandbox(sb: SandboxInfo) -> SandboxInfo:
    return SandboxInfo(
        id=sb.id,
        pod_uid=sb.pod_uid,
        namespace=sb.namespace,
        name=sb.name,
        attempt=sb.attempt,
        state=sb.state,
        ip=sb.ip,
        created_at=sb.created_at,
        directory=sb.directory,
        labels=sb.labels,
    )


def _copy_container(c: ContainerInfo) -> ContainerInfo:
    # Callers get snapshots: mutating one must not change the runtime's record.
    return ContainerInfo(
        id=c.id,
        sandbox_id=c.sandbox_id,
        name=c.name,
        attempt=c.attempt,
        state=c.state,
        image=c.image,
        image_id=c.image_id,
        created_at=c.created_at,
        started_at=c.started_at,
        finished_at=c.finished_at,
        exit_code=c.exit_code,
        reason=c.reason,
        message=c.message,
        labels=c.labels,
    )


if TYPE_CHECKING:
    _runtime: Runtime = FakeRuntime()
