"""A pod's status as the kubelet reports it, computed from what the runtime says is running.

Pure functions, so the arithmetic Kubernetes users read every day — the phase, the four
conditions, each container's waiting/running/terminated state with reasons and exit codes — is
table-tested without processes. The rules follow the kubelet's ``getPhase`` and
``generateAPIPodStatus``:

- phase: Pending while initialisation is incomplete or any container is still waiting for its
  first start; Running while a container runs (or, with restartPolicy Always/OnFailure, is
  being restarted); Succeeded when every container exited 0 and none will restart; Failed when
  they all stopped, one failed and none will restart (restartPolicy Never, or an init container
  that failed under Never).
- conditions: PodReadyToStartContainers (sandbox exists), Initialized (every init container
  exited 0), ContainersReady (every container ready), Ready (ContainersReady and readiness
  gates), PodScheduled (kept as the scheduler wrote it; True for static pods). A condition's
  lastTransitionTime changes only when its status does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from kplane.api.pb import core_pb2

PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN = "Pending", "Running", "Succeeded", "Failed", "Unknown"
TERMINAL_PHASES = (SUCCEEDED, FAILED)

# Conditions the kubelet owns; any other condition type on the pod (PodScheduled, readiness
# gates, DisruptionTarget ...) is kept as others wrote it.
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


@dataclass
class Terminated:
    exit_code: int
    reason: str
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    container_id: str = ""
    signal: int = 0


@dataclass
class ContainerView:
    """What the kubelet knows of one container of the pod (init or app)."""

    name: str
    image: str
    image_id: str = ""
    container_id: str = ""  # "<runtime>://<id>" of the current attempt, "" before the first
    running_since: float | None = None  # the current attempt runs
    terminated: Terminated | None = None  # the current attempt exited
    waiting_reason: str = ""  # when neither running nor terminated (or terminated and restarting)
    waiting_message: str = ""
    last_terminated: Terminated | None = None  # the attempt before
    restart_count: int = 0
    ready: bool = False
    started: bool | None = None


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds) * 1_000_000_000)  # Kubernetes times have whole seconds
    return ts


def _terminated_pb(t: Terminated) -> core_pb2.ContainerStateTerminated:
    out = core_pb2.ContainerStateTerminated(exitCode=t.exit_code, reason=t.reason)
    if t.signal:
        out.signal = t.signal
    if t.message:
        out.message = t.message
    if t.started_at is not None:
        out.startedAt.CopyFrom(timestamp(t.started_at))
    if t.finished_at is not None:
        out.finishedAt.CopyFrom(timestamp(t.finished_at))
    if t.container_id:
        out.containerID = t.container_id
    return out


def container_status(view: ContainerView) -> core_pb2.ContainerStatus:
    st = core_pb2.ContainerStatus(name=view.name, image=view.image, imageID=view.image_id,
                                  restartCount=view.restart_count, ready=view.ready)
    if view.container_id:
        st.containerID = view.container_id
    if view.started is not None:
        st.started = view.started
    if view.running_since is not None:
        st.state.running.startedAt.CopyFrom(timestamp(view.running_since))
    elif view.terminated is not None and not view.waiting_reason:
        st.state.terminated.CopyFrom(_terminated_pb(view.terminated))
    else:
        st.state.waiting.reason = view.waiting_reason or "ContainerCreating"
        if view.waiting_message:
            st.state.waiting.message = view.waiting_message
    last = view.last_terminated
    if view.terminated is not None and view.waiting_reason:
        last = view.terminated  # waiting to restart: the exit that is being restarted is "last"
    if last is not None:
        st.lastState.terminated.CopyFrom(_terminated_pb(last))
    else:
        st.lastState.SetInParent()
    return st


def init_progress(init: Sequence[ContainerView]) -> tuple[bool, bool, list[str]]:
    """(all done, any failed, names not done). Done means exited 0."""
    pending: list[str] = []
    failed = False
    for view in init:
        done = view.terminated is not None and view.terminated.exit_code == 0 and not view.waiting_reason
        if not done:
            pending.append(view.name)
            t = view.terminated or view.last_terminated
            if t is not None and t.exit_code != 0:
                failed = True
    return not pending, failed, pending


def pod_phase(restart_policy: str, init: Sequence[ContainerView], containers: Sequence[ContainerView]) -> str:
    init_done, init_failed, _ = init_progress(init)
    if init_failed and restart_policy == "Never":
        return FAILED
    if not init_done:
        return PENDING
    waiting = running = stopped = succeeded = 0
    for view in containers:
        if view.running_since is not None:
            running += 1
        elif view.terminated is not None and not view.waiting_reason:
            stopped += 1
            if view.terminated.exit_code == 0:
                succeeded += 1
        elif view.terminated is not None or view.last_terminated is not None:
            stopped += 1  # waiting to restart after an exit
        else:
            waiting += 1
    if waiting:
        return PENDING
    if running:
        return RUNNING
    if stopped:
        if restart_policy == "Always":
            return RUNNING
        if stopped == succeeded and all(v.terminated is not None and not v.waiting_reason for v in containers):
            return SUCCEEDED
        if restart_policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


def _condition(ctype: str, ok: bool, reason: str = "", message: str = "") -> core_pb2.PodCondition:
    cond = core_pb2.PodCondition(type=ctype, status="True" if ok else "False")
    if not ok and reason:
        cond.reason = reason
    if not ok and message:
        cond.message = message
    return cond


def pod_conditions(pod: core_pb2.Pod, *, sandbox_ready: bool, init: Sequence[ContainerView],
                   containers: Sequence[ContainerView], phase: str) -> list[core_pb2.PodCondition]:
    init_done, _, init_pending = init_progress(init)
    conditions = [_condition("PodReadyToStartContainers", sandbox_ready)]
    if phase == SUCCEEDED:
        conditions.append(core_pb2.PodCondition(type="Initialized", status="True", reason="PodCompleted"))
        conditions.append(core_pb2.PodCondition(type="Ready", status="False", reason="PodCompleted"))
        conditions.append(core_pb2.PodCondition(type="ContainersReady", status="False", reason="PodCompleted"))
        return conditions
    conditions.append(_condition("Initialized", init_done, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(init_pending)}]"))
    unready = [v.name for v in containers if not v.ready]
    message = f"containers with unready status: [{' '.join(unready)}]"
    containers_ready = not unready
    gates = [g.conditionType for g in pod.spec.readinessGates]
    gates_missing = [g for g in gates if not any(c.type == g and c.status == "True" for c in pod.status.conditions)]
    if not containers_ready:
        conditions.append(_condition("Ready", False, "ContainersNotReady", message))
    elif gates_missing:
        conditions.append(_condition("Ready", False, "ReadinessGatesNotReady",
                                     f'corresponding condition of pod readiness gate "{gates_missing[0]}" '
                                     "does not exist."))
    else:
        conditions.append(_condition("Ready", True))
    conditions.append(_condition("ContainersReady", containers_ready, "ContainersNotReady", message))
    return conditions


def merge_conditions(old: Iterable[core_pb2.PodCondition], new: Sequence[core_pb2.PodCondition],
                     now: float) -> list[core_pb2.PodCondition]:
    """The kubelet's conditions replace its own previous ones (keeping lastTransitionTime when the
    status did not change); conditions other components own are kept in place."""
    old_list = list(old)
    by_type = {c.type: c for c in old_list}
    out: list[core_pb2.PodCondition] = []
    for cond in new:
        merged = core_pb2.PodCondition()
        merged.CopyFrom(cond)
        prev = by_type.get(cond.type)
        if prev is not None and prev.status == cond.status and prev.HasField("lastTransitionTime"):
            merged.lastTransitionTime.CopyFrom(prev.lastTransitionTime)
        else:
            merged.lastTransitionTime.CopyFrom(timestamp(now))
        out.append(merged)
    owned = {c.type for c in new}
    for cond in old_list:
        if cond.type not in owned and cond.type not in KUBELET_CONDITIONS:
            out.append(cond)
    return out


def with_server_conditions(server: core_pb2.PodStatus, status: core_pb2.PodStatus) -> core_pb2.PodStatus:
    """``status`` plus the conditions other components own that the server's copy has and
    ``status`` lacks (a DisruptionTarget the taint eviction controller added after the kubelet
    read the pod): a status write must never wipe them (the kubelet's mergePodStatus)."""
    have = {c.type for c in status.conditions}
    extra = [c for c in server.conditions if c.type not in have and c.type not in KUBELET_CONDITIONS]
    if not extra:
        return status
    out = core_pb2.PodStatus()
    out.CopyFrom(status)
    out.conditions.extend(extra)
    return out


def kubelet_conditions(status: core_pb2.PodStatus) -> list[core_pb2.PodCondition]:
    """The conditions the kubelet owns, as they stand in ``status``."""
    return [c for c in status.conditions if c.type in KUBELET_CONDITIONS]
