"""A small in-test container runtime and pod locator for the streaming tests (there is no kubelet yet).

Nothing is simulated that the streaming path reads: containers are real `sh -c` subprocesses,
their output is written to real log files in the CRI format by a pump task (as a runtime does),
exec runs real subprocesses, attach taps a container's real stdin/stdout. Only the bookkeeping a
kubelet would do (which pod has which container attempts) is a dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplane.api.resources import resolve
from kubelet.runtime import ContainerInfo, NotFound
from kubelet.streaming import (
    POD_UID_LABEL,
    LocateError,
    StreamingServer,
    choose_container,
    format_cri_line,
    previous_not_found,
    waiting_to_start,
)

_ids = itertools.count(1)


class ProcessSession:
    """An ExecProcess over a subprocess: stdout and stderr read concurrently into one queue."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._readers = [asyncio.create_task(self._read("stdout", proc.stdout)),
                         asyncio.create_task(self._read("stderr", proc.stderr))]
        self._open = 2

    async def _read(self, name: str, stream: asyncio.StreamReader | None) -> None:
        if stream is not None:
            while data := await stream.read(65536):
                await self.queue.put((name, data))
        self._open -= 1
        if self._open == 0:
            await self.queue.put(None)

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def wait(self) -> int:
        return await self.proc.wait()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Container:
    info: ContainerInfo
    proc: asyncio.subprocess.Process | None = None
    subscribers: list[asyncio.Queue[tuple[str, bytes] | None]] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None


class AttachSession:
    """attach: the container's stdin, and its output from now on (a detach never stops it)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        container.subscribers.append(self.queue)
        if container.info.state != "running":
            self.queue.put_nowait(None)

    async def write_stdin(self, data: bytes) -> None:
        proc = self.container.proc
        if proc is not None and proc.stdin is not None:
            proc.stdin.write(data)
            await proc.stdin.drain()

    async def close_stdin(self) -> None:
        proc = self.container.proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def wait(self) -> int:
        assert self.container.proc is not None
        return await self.container.proc.wait()

    async def kill(self) -> None:
        with contextlib.suppress(ValueError):
            self.container.subscribers.remove(self.queue)


class ProcessRuntimeDouble:
    """The part of kubelet.runtime.Runtime the streaming server uses, over real subprocesses."""

    name = "test-double"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.containers: dict[str, Container] = {}

    async def run(self, name: str, script: str, *, stdin: bool = False, attempt: int = 0) -> ContainerInfo:
        """Start a container: `sh -c script`, output to a CRI log file (and to attached sessions)."""
        cid = f"c{next(_ids)}"
        log_path = self.root / f"{cid}.log"
        log_path.touch()
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", script, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        info = ContainerInfo(id=cid, sandbox_id="s", name=name, attempt=attempt, state="running", image="busybox",
                             image_id="sha256:test", created_at=time.time(), started_at=time.time(), pid=proc.pid,
                             log_path=log_path)
        container = Container(info, proc)
        container.pump = asyncio.create_task(self._pump(container))
        self.containers[cid] = container
        return info

    def exited(self, name: str, log_text: bytes, exit_code: int, *, attempt: int = 0, raw: bool = False) -> ContainerInfo:
        """A container attempt that already ran: its log file as given (CRI lines, or raw bytes)."""
        cid = f"c{next(_ids)}"
        log_path = self.root / f"{cid}.log"
        if raw:
            log_path.write_bytes(log_text)
        else:
            log_path.write_bytes(b"".join(format_cri_line("stdout", line) for line in log_text.splitlines()))
        info = ContainerInfo(id=cid, sandbox_id="s", name=name, attempt=attempt, state="exited", image="busybox",
                             image_id="sha256:test", created_at=time.time(), finished_at=time.time(),
                             exit_code=exit_code, reason="Completed" if exit_code == 0 else "Error", log_path=log_path)
        self.containers[cid] = Container(info)
        return info

    async def _pump(self, container: Container) -> None:
        proc = container.proc
        assert proc is not None and container.info.log_path is not None
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

        async def read(name: str, stream: asyncio.StreamReader | None) -> None:
            assert stream is not None
            while line := await stream.readline():
                await queue.put((name, line))

        readers = asyncio.gather(read("stdout", proc.stdout), read("stderr", proc.stderr))
        readers.add_done_callback(lambda _: queue.put_nowait(None))
        with container.info.log_path.open("ab") as f:
            while (item := await queue.get()) is not None:
                name, line = item
                text = line.removesuffix(b"\n")
                f.write(format_cri_line(name, text, partial=not line.endswith(b"\n")))
                f.flush()
                for sub in container.subscribers:
                    sub.put_nowait(item)
        code = await proc.wait()
        container.info.state = "exited"
        container.info.exit_code = code
        container.info.finished_at = time.time()
        for sub in container.subscribers:
            sub.put_nowait(None)

    # -- the Runtime methods the streaming server calls ------------------------------------------

    async def container_status(self, container_id: str) -> ContainerInfo:
        if container_id not in self.containers:
            raise NotFound(f"container {container_id}")
        return self.containers[container_id].info

    def log_path(self, container_id: str) -> Path | None:
        container = self.containers.get(container_id)
        return container.info.log_path if container else None

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> ProcessSession:
        await self.container_status(container_id)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return ProcessSession(proc)

    async def attach(self, container_id: str) -> AttachSession:
        await self.container_status(container_id)
        return AttachSession(self.containers[container_id])

    async def close(self) -> None:
        for container in self.containers.values():
            if container.proc is not None and container.proc.returncode is None:
                container.proc.kill()
                await container.proc.wait()
            if container.pump is not None:
                with contextlib.suppress(Exception):
                    await container.pump


@dataclass
class PodRecord:
    uid: str
    containers: list[str]
    init_containers: list[str] = field(default_factory=list)
    attempts: dict[str, list[ContainerInfo]] = field(default_factory=dict)  # oldest first
    waiting: dict[str, str] = field(default_factory=dict)  # container -> reason, while it has no attempt


class Locator:
    """What a kubelet knows: its pods and each container's attempts (implements ContainerLocator)."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], PodRecord] = {}

    def locate(self, namespace: str, name: str, container: str, previous: bool) -> ContainerInfo:
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise LocateError("NotFound", f'pods "{name}" not found')
        chosen = choose_container(name, pod.containers, pod.init_containers, container)
        attempts = [dataclasses.replace(info, labels={**info.labels, POD_UID_LABEL: pod.uid})
                    for info in pod.attempts.get(chosen, [])]
        if previous:
            if len(attempts) < 2:
                raise previous_not_found(chosen, name)
            return attempts[-2]
        if not attempts:
            raise waiting_to_start(chosen, name, pod.waiting.get(chosen, "ContainerCreating"))
        return attempts[-1]


@dataclass
class Kubelet:
    """A StreamingServer over the double, registered as a Node whose status points at it."""

    node: str
    runtime: ProcessRuntimeDouble
    locator: Locator
    server: StreamingServer

    async def add_pod(self, client: Any, namespace: str, name: str, containers: Sequence[str],
                      init_containers: Sequence[str] = (), *, stdin: bool = False,
                      extra_spec: dict[str, Any] | None = None) -> PodRecord:
        """Create the Pod object (bound to this node) and the kubelet's record of it."""
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
               "spec": {"nodeName": self.node,
                        "containers": [{"name": c, "image": "busybox", "stdin": stdin} for c in containers],
                        **({"initContainers": [{"name": c, "image": "busybox"} for c in init_containers]}
                           if init_containers else {}),
                        **(extra_spec or {})}}
        created = await client.create(resolve("pods"), pod)
        record = PodRecord(uid=created.metadata.uid, containers=list(containers),
                           init_containers=list(init_containers))
        self.locator.pods[(namespace, name)] = record
        return record


async def create_node(client: Any, name: str, *, address: str | None = "127.0.0.1", port: int | None) -> None:
    """A Node whose status publishes a kubelet endpoint (as the kubelet does when it registers)."""
    nodes = resolve("nodes")
    await client.create(nodes, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    status: dict[str, Any] = {}
    if address is not None:
        status["addresses"] = [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    node = await client.get(nodes, name)
    body = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "resourceVersion": node.metadata.resourceVersion}, "status": status}
    await client.update_status(nodes, body)


@contextlib.asynccontextmanager
async def kubelet(client: Any, root: Path) -> AsyncIterator[Kubelet]:
    runtime = ProcessRuntimeDouble(root)
    locator = Locator()
    server = StreamingServer(runtime, locator)  # type: ignore[arg-type]  # only what streaming uses
    await server.start()
    node = f"node-{uuid.uuid4().hex[:8]}"
    await create_node(client, node, port=server.port)
    try:
        yield Kubelet(node, runtime, locator, server)
    finally:
        await server.stop(0)
        await runtime.close()
        with contextlib.suppress(Exception):
            await client.delete(resolve("nodes"), node)
