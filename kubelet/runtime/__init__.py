"""The container runtime interface the kubelet drives (shaped after Kubernetes' CRI).

The kubelet decides *what* should run (pod workers, restart policy, probes); a runtime only does
what it is told and reports what is: sandboxes (one per pod: its IP and directories) and
containers (one per attempt of a pod's container). Two implementations:

- :mod:`kubelet.runtime.process` — every container is a real OS process (bubblewrap: its own
  mount and PID namespace, image files and volumes at their paths), each pod its own loopback IP;
- :mod:`kubelet.runtime.fake` — kwok-style: nothing runs, containers are "running" at once.

State that must survive a kubelet restart (which containers exist, their pids, exit codes) lives
on disk under the runtime's root directory, so a restarted kubelet re-adopts running pods
through :meth:`Runtime.list_sandboxes` / :meth:`Runtime.list_containers`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

ContainerStateName = Literal["created", "running", "exited", "unknown"]
SandboxStateName = Literal["ready", "notready"]


class RuntimeFailure(Exception):
    """A runtime operation failed; ``reason`` is the Kubernetes-style reason for the status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class StartError(RuntimeFailure):
    """The container could not be started (e.g. its command does not exist): Kubernetes reports it
    as terminated with reason ``StartError`` and exit code 128."""

    def __init__(self, message: str) -> None:
        super().__init__("StartError", message)


class NotFound(RuntimeFailure):
    def __init__(self, what: str) -> None:
        super().__init__("NotFound", f"{what} not found")


@dataclass
class SandboxConfig:
    """One pod's sandbox. ``pod_uid`` is the identity; names are for humans and listing."""

    pod_uid: str
    namespace: str
    name: str
    attempt: int = 0
    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # kplane.io/pod-uid etc. for re-adoption


@dataclass
class SandboxInfo:
    id: str
    pod_uid: str
    namespace: str
    name: str
    attempt: int
    state: SandboxStateName
    ip: str  # the pod IP (process runtime: from the node's loopback pod CIDR)
    created_at: float  # unix seconds
    directory: Path  # per-pod directory (volumes live under it)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Mount:
    host_path: Path
    container_path: str  # absolute path inside the container
    read_only: bool = False


@dataclass
class ContainerConfig:
    """Everything needed to start one attempt of one container. The kubelet has already resolved
    the image (pulled into ``image_root``), the argv (command/args over entrypoint/cmd, ``$(VAR)``
    expanded), the environment and the volume mounts."""

    name: str
    attempt: int  # restart count of this container in its pod (0 for the first run)
    image: str  # as the pod spec names it, e.g. "busybox" or "myapp:v1"
    image_id: str  # the pulled image's digest, e.g. "sha256:..."
    image_root: Path | None  # the image's files; each appears at its absolute path inside
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerInfo:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: ContainerStateName
    image: str
    image_id: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None  # 128 + signal when killed by a signal, as Kubernetes reports it
    reason: str = ""  # when exited: "Completed" (0), "Error", "StartError", "OOMKilled"
    message: str = ""
    pid: int | None = None  # host pid of the container's first process (process runtime)
    log_path: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ExecResult:
    exit_code: int
    output: bytes  # stdout and stderr interleaved (what a probe reports)
    timed_out: bool = False


class ExecProcess(Protocol):
    """A streaming exec/attach session (``kpctl exec``): write stdin, read output, wait."""

    async def write_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    def output(self) -> AsyncIterator[tuple[str, bytes]]:
        """("stdout"|"stderr", chunk) until the process closes its output."""
        ...
    async def wait(self) -> int: ...
    async def kill(self) -> None: ...


class Runtime(Protocol):
    """CRI-shaped. Every method is safe to call for ids that no longer exist (they raise
    :class:`NotFound`, or do nothing for stop/remove)."""

    name: str  # "process" or "fake"

    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxInfo: ...
    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def list_sandboxes(self) -> list[SandboxInfo]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerInfo: ...
    async def start_container(self, container_id: str) -> ContainerInfo:
        """Raises :class:`StartError` when the process cannot be started (the container is then
        recorded as exited with reason StartError, exit code 128)."""
        ...
    async def stop_container(self, container_id: str, grace_period: float) -> None:
        """SIGTERM to the container's process group, SIGKILL after ``grace_period`` seconds."""
        ...
    async def remove_container(self, container_id: str) -> None: ...
    async def container_status(self, container_id: str) -> ContainerInfo: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerInfo]: ...

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        """Run a command inside the container (exec probes): its env, namespaces and files."""
        ...
    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> ExecProcess: ...
    async def attach(self, container_id: str) -> ExecProcess:
        """The container's own stdin (when it was created with ``stdin``) and its live output."""
        ...
    def log_path(self, container_id: str) -> Path | None: ...

    async def close(self) -> None:
        """Release the runtime's own resources; running containers keep running."""
        ...
