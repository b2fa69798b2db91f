"""One pod worker per pod: drives the runtime until what runs matches the pod spec.

A worker is a level-triggered loop (the kubelet's ``syncPod``): it wakes on a pod update, a
container state change seen by the PLEG relist, a probe result change or a back-off timer, then
compares the spec with what the runtime reports and takes the next step:

1. pod being deleted (or gone from the API): stop probes, SIGTERM every container, SIGKILL after
   the grace period, report the final status, finish the delete (grace 0, UID precondition),
   remove containers, sandbox and volumes;
2. pod already Succeeded/Failed: nothing runs again; the sandbox is torn down;
3. otherwise: ensure the sandbox (pod IP, volume directories); run init containers one at a
   time, each must exit 0 before the next (a failure restarts it per restartPolicy, with the
   crash back-off); then start app containers, restart exited ones per restartPolicy with
   back-off (``CrashLoopBackOff``), kill containers whose liveness probe failed.

Every step ends in a status computed by :mod:`kubelet.status` and handed to the status manager,
which writes it only when it changed. Errors in one pod (a missing image, a configMap key that
does not exist, a command that cannot start) end in that pod's status and an Event — never in
the worker dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kplane.api.pb import core_pb2
from kplane.logs import get_logger
from kubelet import status as podstatus
from kubelet.backoff import Backoff, format_delay
from kubelet.runtime import ContainerConfig, ContainerInfo, Runtime, SandboxConfig, SandboxInfo, StartError
from kubelet.runtime.fake import INIT_LABEL  # on init containers (the fake runtime completes them at once)

if TYPE_CHECKING:
    from kplane.client.client import Client
    from kplane.client.events import EventRecorder
    from kubelet.images import ImageStore

log = get_logger(component="kubelet")

DEFAULT_GRACE = 30
MIN_FORCE_GRACE = 2  # Kubernetes kills force-deleted pods with at least this grace


@dataclass
class NodeContext:
    """What every pod worker of one node shares."""

    client: Client
    runtime: Runtime
    recorder: EventRecorder
    node_name: str
    node_ip: str
    publish_status: Callable[[core_pb2.Pod, core_pb2.PodStatus], None]
    finish_delete: Callable[[core_pb2.Pod], Any]  # async: delete the API object (grace 0, UID precondition)
    images: ImageStore | None = None  # None: the fake runtime, nothing to pull
    crash_backoff: Backoff = field(default_factory=Backoff)
    pull_backoff: Backoff = field(default_factory=lambda: Backoff(10.0, 300.0))
    probe_time_scale: float = 1.0
    runtime_scheme: str = "kplane"  # containerID prefix: "<scheme>://<id>"
    # async: the service environment variables for a pod (kubelet/env.py); None: none
    service_env: Callable[[core_pb2.Pod], Any] | None = None


def pod_label(pod: core_pb2.Pod) -> str:
    """Kubernetes' format.Pod: name_namespace(uid)."""
    return f"{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})"


def _should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _terminated(info: ContainerInfo, scheme: str) -> podstatus.Terminated:
    code = info.exit_code if info.exit_code is not None else 0
    return podstatus.Terminated(
        exit_code=code, reason=info.reason or ("Completed" if code == 0 else "Error"), message=info.message,
        started_at=info.started_at, finished_at=info.finished_at or time.time(),
        container_id=f"{scheme}://{info.id}")


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: core_pb2.Pod, *, static: bool = False) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = pod.metadata.uid
        self.static = static
        self.wake = asyncio.Event()
        self.gone = False  # deleted from the API (or the static file went away)
        self.done = asyncio.Event()  # torn down; the kubelet may forget this worker
        self.sandbox: SandboxInfo | None = None
        self.volumes: dict[str, Path] = {}
        self.volume_error = ""
        self.containers: dict[str, list[ContainerInfo]] = {}  # name -> attempts, newest last
        self.waiting: dict[str, tuple[str, str]] = {}  # name -> (reason, message) while not started
        self.ready: dict[str, bool] = {}
        self.started: dict[str, bool] = {}
        self.liveness_failed: set[str] = set()
        self.probes: dict[tuple[str, str], Any] = {}  # (container id, kind) -> ProbeWorker
        self.pull_failed_at: dict[str, float] = {}
        self.start_time = time.time()
        self.terminal = pod.status.phase in podstatus.TERMINAL_PHASES
        self._next_wake: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.log = log.bind(pod=f"{pod.metadata.namespace}/{pod.metadata.name}", uid=self.uid)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.wake.set()  # the first sync runs at once
        self._task = asyncio.create_task(self._run(), name=f"pod-worker-{self.uid}")

    def update(self, pod: core_pb2.Pod) -> None:
        self.pod = pod
        self.wake.set()

    def mark_gone(self) -> None:
        self.gone = True
        self.wake.set()

    def poke(self) -> None:
        self.wake.set()

    async def stop(self) -> None:
        """Stop the worker (kubelet shutdown): containers keep running, probes stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._stop_probes(None)

    async def _run(self) -> None:
        failures = 0
        while True:
            timeout = None if self._next_wake is None else max(0.0, self._next_wake - time.time())
            if timeout is None or timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self.wake.wait()
            self.wake.clear()
            self._next_wake = None
            try:
                finished = await self.sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an outage: log, retry with back-off, never die
                failures += 1
                self.log.exception("pod sync failed", error=str(exc))
                self._schedule(time.time() + min(0.5 * 2 ** failures, 10.0))
                continue
            if finished:
                self.done.set()
                return

    def _schedule(self, at: float) -> None:
        if self._next_wake is None or at < self._next_wake:
            self._next_wake = at

    # -- sync ------------------------------------------------------------------------------------

    def _deleting(self) -> bool:
        return self.gone or self.pod.metadata.HasField("deletionTimestamp")

    async def sync(self) -> bool:
        """One pass; True when the pod is finished with (terminated and deleted)."""
        await self._refresh()
        if self._deleting():
            await self._terminate()
            return True
        pod = self.pod
        if self.terminal:
            await self._kill_all(grace=0, reason="")
            await self._teardown_sandbox(remove=False)
            self._publish()
            return False
        if not await self._ensure_sandbox():
            self._publish()
            return False
        policy = pod.spec.restartPolicy or "Always"
        init_done = True
        for spec in pod.spec.initContainers:
            attempts = self.containers.get(spec.name, [])
            current = attempts[-1] if attempts else None
            if current is None:
                await self._start(spec, attempt=0, init=True)
                init_done = False
                break
            if current.state in ("created", "running", "unknown"):
                init_done = False
                break
            code = current.exit_code or 0
            if code == 0:
                continue
            init_done = False
            if policy != "Never":
                await self._restart(spec, current, init=True)
            break
        if init_done:
            for spec in pod.spec.containers:
                attempts = self.containers.get(spec.name, [])
                current = attempts[-1] if attempts else None
                if current is None:
                    await self._start(spec, attempt=0)
                elif current.state == "running" and spec.name in self.liveness_failed:
                    self.liveness_failed.discard(spec.name)
                    self.ctx.recorder.event(pod, "Normal", "Killing",
                                            f"Container {spec.name} failed liveness probe, will be restarted")
                    await self._stop_container(spec.name, current, self._grace())
                    await self._refresh()
                    self._schedule(time.time())
                elif current.state == "exited" and _should_restart(policy, current.exit_code or 0):
                    await self._restart(spec, current)
        await self._refresh()
        phase = self._publish()
        if phase in podstatus.TERMINAL_PHASES:
            self.terminal = True
            self.log.info("pod finished", phase=phase)
            self._schedule(time.time())
        return False

    async def _refresh(self) -> None:
        """Re-read this pod's sandbox and containers from the runtime (cheap: its own state)."""
        if self.sandbox is None:
            for sandbox in await self.ctx.runtime.list_sandboxes():
                if sandbox.pod_uid == self.uid and sandbox.state == "ready":
                    self.sandbox = sandbox  # re-adopted after a kubelet restart
                    break
        if self.sandbox is None:
            self.containers = {}
            return
        grouped: dict[str, list[ContainerInfo]] = {}
        for info in await self.ctx.runtime.list_containers(self.sandbox.id):
            grouped.setdefault(info.name, []).append(info)
        for attempts in grouped.values():
            attempts.sort(key=lambda c: c.attempt)
        self.containers = grouped
        live_ids = {c.id for attempts in grouped.values() for c in attempts if c.state == "running"}
        for cid, kind in list(self.probes):
            if cid not in live_ids:
                worker = self.probes.pop((cid, kind))
                await worker.stop()

    # -- sandbox and volumes ---------------------------------------------------------------------

    async def _ensure_sandbox(self) -> bool:
        pod = self.pod
        if self.sandbox is None:
            self.sandbox = await self.ctx.runtime.run_pod_sandbox(SandboxConfig(
                pod_uid=self.uid, namespace=pod.metadata.namespace, name=pod.metadata.name,
                hostname=pod.spec.hostname or pod.metadata.name,
                labels={"kplane.io/pod-uid": self.uid, "kplane.io/pod-name": pod.metadata.name,
                        "kplane.io/pod-namespace": pod.metadata.namespace}))
            self.log.info("sandbox ready", ip=self.sandbox.ip)
        if self.ctx.images is None:
            return True  # fake runtime: no volumes to prepare
        from kubelet.volumes import VolumeSetupError, prepare_volumes

        try:
            self.volumes = await prepare_volumes(self.ctx.client, pod, self.sandbox.directory)
        except VolumeSetupError as exc:
            if str(exc) != self.volume_error:
                self.ctx.recorder.event(pod, "Warning", "FailedMount", str(exc))
            self.volume_error = str(exc)
            self._schedule(time.time() + 2.0)
            return False
        self.volume_error = ""
        return True

    async def _teardown_sandbox(self, *, remove: bool) -> None:
        if self.sandbox is None:
            return
        await self.ctx.runtime.stop_pod_sandbox(self.sandbox.id)
        if remove:
            for attempts in self.containers.values():
                for info in attempts:
                    await self.ctx.runtime.remove_container(info.id)
            directory = self.sandbox.directory
            await self.ctx.runtime.remove_pod_sandbox(self.sandbox.id)
            if self.ctx.images is not None:
                from kubelet.volumes import cleanup_volumes

                await asyncio.to_thread(cleanup_volumes, directory)
            self.sandbox = None

    # -- starting containers ---------------------------------------------------------------------

    def _backoff_key(self, name: str) -> str:
        return f"{self.uid}/{name}"

    async def _restart(self, spec: core_pb2.Container, exited: ContainerInfo, *, init: bool = False) -> None:
        key = self._backoff_key(spec.name)
        backoff = self.ctx.crash_backoff
        finished = exited.finished_at or time.time()
        if backoff.in_backoff_since(key, finished):
            delay = backoff.get(key)
            label = pod_label(self.pod)
            reason = ("CrashLoopBackOff", f"back-off {format_delay(delay)} restarting failed "
                                          f"container={spec.name} pod={label}")
            if self.waiting.get(spec.name) != reason:
                self.ctx.recorder.event(self.pod, "Warning", "BackOff",
                                        f"Back-off restarting failed container {spec.name} in pod {label}")
            self.waiting[spec.name] = reason
            self._schedule(backoff.retry_at(key, finished))
            return
        backoff.next(key, finished)
        await self._start(spec, attempt=exited.attempt + 1, init=init)

    async def _start(self, spec: core_pb2.Container, *, attempt: int, init: bool = False) -> None:
        assert self.sandbox is not None
        pod, ctx = self.pod, self.ctx
        from kubelet.env import CreateContainerConfigError, expand

        pulled: Any = None
        if ctx.images is not None:
            pulled = await self._ensure_image(spec)
            if pulled is None:
                return
        try:
            env = await self._env(spec)
            from kubelet.volumes import container_mounts

            mounts = container_mounts(spec, self.volumes, env=env) if ctx.images is not None else []
        except CreateContainerConfigError as exc:
            self._wait(spec.name, "CreateContainerConfigError", str(exc), event=f"Error: {exc}")
            self._schedule(time.time() + 2.0)
            return
        # $(VAR) in command and args expands with the container's own environment (not the image's)
        command = [expand(a, env) for a in spec.command]
        args = [expand(a, env) for a in spec.args]
        if pulled is not None:
            from kubelet.images import container_argv

            argv = container_argv(pulled, command, args)
            env = {**pulled.env, **env}
            working_dir = spec.workingDir or pulled.working_dir
        else:
            argv, working_dir = command + args, spec.workingDir
        if not argv and ctx.images is not None:  # the fake runtime runs nothing: any image will do
            self._wait(spec.name, "CreateContainerError", "no command specified", event="Error: no command specified")
            self._schedule(time.time() + 5.0)
            return
        config = ContainerConfig(
            name=spec.name, attempt=attempt, image=spec.image, image_id=pulled.id if pulled is not None else "",
            image_root=pulled.root if pulled is not None else None,
            argv=argv, env=env, working_dir=working_dir, mounts=mounts, stdin=spec.stdin,
            stdin_once=spec.stdinOnce, tty=spec.tty,
            labels={"kplane.io/pod-uid": self.uid, "kplane.io/container-name": spec.name,
                    **({INIT_LABEL: "true"} if init else {})})
        info = await ctx.runtime.create_container(self.sandbox.id, config)
        ctx.recorder.event(pod, "Normal", "Created", f"Created container: {spec.name}")
        self.waiting.pop(spec.name, None)
        try:
            info = await ctx.runtime.start_container(info.id)
        except StartError as exc:
            ctx.recorder.event(pod, "Warning", "Failed", f"Error: {exc.message}")
            self.log.info("container failed to start", container=spec.name, error=exc.message)
            self._schedule(time.time())
            return
        ctx.recorder.event(pod, "Normal", "Started", f"Started container {spec.name}")
        self.log.info("container started", container=spec.name, attempt=attempt)
        self.ready[spec.name] = False
        self.started[spec.name] = False
        self._start_probes(spec, info)

    def _wait(self, name: str, reason: str, message: str, *, event: str = "") -> None:
        if self.waiting.get(name) != (reason, message) and event:
            self.ctx.recorder.event(self.pod, "Warning", "Failed", event)
        self.waiting[name] = (reason, message)

    async def _ensure_image(self, spec: core_pb2.Container) -> Any:
        from kubelet import images as imagelib

        store = self.ctx.images
        assert store is not None
        image = spec.image
        try:
            policy = imagelib.pull_policy_default(image, spec.imagePullPolicy)
            present = store.present(image)
            pull = imagelib.should_pull(image, policy, present)
        except imagelib.ImageError as exc:
            self._wait(spec.name, exc.reason, str(exc), event=str(exc))
            self._schedule(time.time() + 5.0)
            return None
        if not pull:
            self.ctx.recorder.event(self.pod, "Normal", "Pulled",
                                    f'Container image "{image}" already present on machine')
            return store.get(image)
        key = f"{self._backoff_key(spec.name)}/pull"
        failed_at = self.pull_failed_at.get(spec.name)
        backoff = self.ctx.pull_backoff
        if failed_at is not None and backoff.in_backoff_since(key, failed_at):
            message = f'Back-off pulling image "{image}"'
            if self.waiting.get(spec.name, ("",))[0] != "ImagePullBackOff":
                self.ctx.recorder.event(self.pod, "Normal", "BackOff", message)
                self.ctx.recorder.event(self.pod, "Warning", "Failed", "Error: ImagePullBackOff")
            self.waiting[spec.name] = ("ImagePullBackOff", message)
            self._schedule(backoff.retry_at(key, failed_at))
            return None
        self.ctx.recorder.event(self.pod, "Normal", "Pulling", f'Pulling image "{image}"')
        began = time.monotonic()
        try:
            pulled = await asyncio.to_thread(store.pull, image)
        except imagelib.ImageError as exc:
            now = time.time()
            backoff.next(key, now)
            self.pull_failed_at[spec.name] = now
            self.ctx.recorder.event(self.pod, "Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            self.ctx.recorder.event(self.pod, "Warning", "Failed", "Error: ErrImagePull")
            self.waiting[spec.name] = ("ErrImagePull", str(exc))
            self._schedule(backoff.retry_at(key, now))
            return None
        took = format_delay(round(time.monotonic() - began, 3))
        self.pull_failed_at.pop(spec.name, None)
        self.ctx.recorder.event(self.pod, "Normal", "Pulled",
                                f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                                f"Image size: {pulled.size_bytes} bytes.")
        return pulled

    async def _env(self, spec: core_pb2.Container) -> dict[str, str]:
        from kubelet.env import container_env

        assert self.sandbox is not None
        services = await self.ctx.service_env(self.pod) if self.ctx.service_env is not None else None
        return await container_env(self.ctx.client, self.pod, spec, pod_ip=self.sandbox.ip,
                                   host_ip=self.ctx.node_ip, node_name=self.ctx.node_name, service_env=services)

    # -- probes ----------------------------------------------------------------------------------

    def _start_probes(self, spec: core_pb2.Container, info: ContainerInfo) -> None:
        probes = {"liveness": spec.livenessProbe if spec.HasField("livenessProbe") else None,
                  "readiness": spec.readinessProbe if spec.HasField("readinessProbe") else None,
                  "startup": spec.startupProbe if spec.HasField("startupProbe") else None}
        if not any(probes.values()) or self.sandbox is None:
            return
        from kubelet.probes import ProbeWorker

        has_startup = probes["startup"] is not None
        for kind, probe in probes.items():
            if probe is None:
                continue
            worker = ProbeWorker(
                kind=kind, probe=probe, container=spec, container_id=info.id, pod_ip=self.sandbox.ip,
                runtime=self.ctx.runtime, on_result=self._on_probe_result, on_failure=self._on_probe_failure,
                on_error=self._on_probe_error, has_startup_probe=has_startup, started_at=info.started_at,
                time_scale=self.ctx.probe_time_scale)
            self.probes[(info.id, kind)] = worker
            worker.start()

    def _on_probe_result(self, kind: str, container: str, success: bool, message: str) -> None:
        if kind == "readiness":
            self.ready[container] = success
        elif kind == "startup":
            self.started[container] = success
            for (_, k), worker in self.probes.items():
                if k in ("liveness", "readiness") and worker.container_name == container:
                    worker.startup_succeeded(success)
        elif kind == "liveness" and not success:
            self.liveness_failed.add(container)
        self.wake.set()

    def _on_probe_failure(self, kind: str, container: str, message: str) -> None:
        self.ctx.recorder.event(self.pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}")

    def _on_probe_error(self, kind: str, container: str, message: str) -> None:
        self.ctx.recorder.event(self.pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe errored: {message}")

    async def _stop_probes(self, container_id: str | None) -> None:
        for key in [k for k in self.probes if container_id is None or k[0] == container_id]:
            worker = self.probes.pop(key)
            await worker.stop()

    # -- termination -----------------------------------------------------------------------------

    def _grace(self) -> float:
        meta, spec = self.pod.metadata, self.pod.spec
        if meta.HasField("deletionGracePeriodSeconds"):
            grace = meta.deletionGracePeriodSeconds
            return float(max(grace, MIN_FORCE_GRACE) if grace == 0 and self.gone else grace)
        if spec.HasField("terminationGracePeriodSeconds"):
            return float(spec.terminationGracePeriodSeconds)
        return float(DEFAULT_GRACE)

    async def _stop_container(self, name: str, info: ContainerInfo, grace: float) -> None:
        await self._stop_probes(info.id)
        await self.ctx.runtime.stop_container(info.id, grace)

    async def _kill_all(self, *, grace: float, reason: str) -> None:
        running = [(name, attempts[-1]) for name, attempts in self.containers.items()
                   if attempts and attempts[-1].state in ("running", "created")]
        if not running:
            return
        for name, _ in running:
            if reason:
                self.ctx.recorder.event(self.pod, "Normal", "Killing", f"Stopping container {name}")
        await asyncio.gather(*(self._stop_container(name, info, grace) for name, info in running))
        await self._refresh()

    async def _terminate(self) -> None:
        grace = self._grace()
        self.log.info("terminating pod", grace=grace, gone=self.gone)
        await self._stop_probes(None)
        await self._kill_all(grace=grace, reason="Killing")
        if not self.gone:
            self._publish()
            await self.ctx.finish_delete(self.pod)
        await self._teardown_sandbox(remove=True)
        self.ctx.crash_backoff.forget(f"{self.uid}/")
        self.ctx.pull_backoff.forget(f"{self.uid}/")

    # -- status ----------------------------------------------------------------------------------

    def _views(self, specs: Any, *, init: bool) -> list[podstatus.ContainerView]:
        views: list[podstatus.ContainerView] = []
        scheme = self.ctx.runtime_scheme
        for spec in specs:
            attempts = self.containers.get(spec.name, [])
            view = podstatus.ContainerView(name=spec.name, image=spec.image)
            if attempts:
                current = attempts[-1]
                view.image_id = current.image_id
                view.container_id = f"{scheme}://{current.id}"
                view.restart_count = current.attempt
                if current.state == "running":
                    view.running_since = current.started_at or current.created_at
                    has_readiness = spec.HasField("readinessProbe")
                    has_startup = spec.HasField("startupProbe")
                    view.started = self.started.get(spec.name, False) if has_startup else True
                    view.ready = (self.ready.get(spec.name, False) if has_readiness else True) and bool(view.started)
                    if init:
                        view.ready = False
                elif current.state == "exited":
                    view.terminated = _terminated(current, scheme)
                    view.started = False
                    view.ready = init and (current.exit_code or 0) == 0
                    waiting = self.waiting.get(spec.name)
                    if waiting and waiting[0] == "CrashLoopBackOff":
                        view.waiting_reason, view.waiting_message = waiting
                else:
                    view.waiting_reason = "ContainerCreating"
                    view.started = False
                if len(attempts) > 1 and view.last_terminated is None:
                    view.last_terminated = _terminated(attempts[-2], scheme)
            else:
                view.started = False
                reason, message = self.waiting.get(spec.name, ("", ""))
                if not reason:
                    blocked = init or not self.pod.spec.initContainers
                    reason = "ContainerCreating" if blocked else "PodInitializing"
                view.waiting_reason, view.waiting_message = reason, message
            views.append(view)
        return views

    def _publish(self) -> str:
        pod = self.pod
        init = self._views(pod.spec.initContainers, init=True)
        containers = self._views(pod.spec.containers, init=False)
        if init and not podstatus.init_progress(init)[0]:
            for view in containers:  # app containers wait for initialisation
                if view.running_since is None and view.terminated is None and \
                        view.waiting_reason == "ContainerCreating":
                    view.waiting_reason = "PodInitializing"
        if self.terminal and pod.status.phase in podstatus.TERMINAL_PHASES:
            phase = pod.status.phase
        else:
            phase = podstatus.pod_phase(pod.spec.restartPolicy or "Always", init, containers)
        status = core_pb2.PodStatus(phase=phase, hostIP=self.ctx.node_ip)
        status.hostIPs.add(ip=self.ctx.node_ip)
        if self.sandbox is not None:
            status.podIP = self.sandbox.ip
            status.podIPs.add(ip=self.sandbox.ip)
        elif pod.status.podIP:
            status.podIP = pod.status.podIP
            status.podIPs.extend(pod.status.podIPs)
        if pod.status.HasField("startTime"):
            status.startTime.CopyFrom(pod.status.startTime)
        else:
            status.startTime.CopyFrom(podstatus.timestamp(self.start_time))
        if pod.status.qosClass:
            status.qosClass = pod.status.qosClass
        conditions = podstatus.pod_conditions(pod, sandbox_ready=self.sandbox is not None, init=init,
                                              containers=containers, phase=phase)
        status.conditions.extend(podstatus.merge_conditions(pod.status.conditions, conditions, time.time()))
        if not any(c.type == "PodScheduled" for c in status.conditions):
            # a static pod, or one created with spec.nodeName (no binding): the kubelet reports it
            # scheduled, as Kubernetes' does
            status.conditions.add(type="PodScheduled", status="True").lastTransitionTime.CopyFrom(
                podstatus.timestamp(self.start_time))
        status.initContainerStatuses.extend(podstatus.container_status(v) for v in init)
        status.containerStatuses.extend(podstatus.container_status(v) for v in containers)
        self.ctx.publish_status(pod, status)
        return phase
