"""Pod phase, conditions and container states as the kubelet reports them; crash-loop back-off."""

from __future__ import annotations

import pytest

from kplane.api.pb import core_pb2
from kubelet.backoff import Backoff, format_delay
from kubelet.status import (
    ContainerView,
    Terminated,
    container_status,
    init_progress,
    merge_conditions,
    pod_conditions,
    pod_phase,
)


def running(name: str, *, ready: bool = True) -> ContainerView:
    return ContainerView(name=name, image="busybox", running_since=100.0, ready=ready, started=True)


def exited(name: str, code: int, *, restarting: bool = False) -> ContainerView:
    view = ContainerView(name=name, image="busybox", terminated=Terminated(code, "Completed" if code == 0 else "Error"))
    if restarting:
        view.waiting_reason = "CrashLoopBackOff"
    return view


def waiting(name: str, reason: str = "ContainerCreating") -> ContainerView:
    return ContainerView(name=name, image="busybox", waiting_reason=reason)


@pytest.mark.parametrize(("policy", "init", "containers", "phase"), [
    ("Always", [], [waiting("a")], "Pending"),
    ("Always", [], [running("a"), waiting("b")], "Pending"),
    ("Always", [], [running("a"), running("b")], "Running"),
    ("Always", [], [exited("a", 0)], "Running"),  # about to be restarted
    ("Always", [], [exited("a", 1, restarting=True)], "Running"),
    ("OnFailure", [], [exited("a", 0)], "Succeeded"),
    ("OnFailure", [], [exited("a", 1, restarting=True)], "Running"),
    ("Never", [], [exited("a", 0), exited("b", 0)], "Succeeded"),
    ("Never", [], [exited("a", 0), exited("b", 2)], "Failed"),
    ("Never", [], [running("a"), exited("b", 2)], "Running"),
    ("Always", [running("i")], [waiting("a", "PodInitializing")], "Pending"),
    ("Always", [exited("i", 1, restarting=True)], [waiting("a", "PodInitializing")], "Pending"),
    ("Never", [exited("i", 1)], [waiting("a", "PodInitializing")], "Failed"),
    ("Always", [exited("i", 0)], [running("a")], "Running"),
])
def test_phase(policy: str, init: list[ContainerView], containers: list[ContainerView], phase: str) -> None:
    assert pod_phase(policy, init, containers) == phase


def test_init_progress_names_incomplete_containers() -> None:
    done, failed, pending = init_progress([exited("i1", 0), exited("i2", 1, restarting=True), waiting("i3")])
    assert (done, failed, pending) == (False, True, ["i2", "i3"])


def conds(pod: core_pb2.Pod, **kw: object) -> dict[str, tuple[str, str, str]]:
    out = pod_conditions(pod, **kw)  # type: ignore[arg-type]
    return {c.type: (c.status, c.reason, c.message) for c in out}


def test_conditions_running_not_ready() -> None:
    got = conds(core_pb2.Pod(), sandbox_ready=True, init=[], containers=[running("a"), running("b", ready=False)],
                phase="Running")
    assert got["PodReadyToStartContainers"] == ("True", "", "")
    assert got["Initialized"] == ("True", "", "")
    assert got["Ready"] == ("False", "ContainersNotReady", "containers with unready status: [b]")
    assert got["ContainersReady"] == ("False", "ContainersNotReady", "containers with unready status: [b]")


def test_conditions_initialising_and_completed() -> None:
    got = conds(core_pb2.Pod(), sandbox_ready=True, init=[exited("i1", 0), running("i2")],
                containers=[waiting("a", "PodInitializing")], phase="Pending")
    assert got["Initialized"] == ("False", "ContainersNotInitialized", "containers with incomplete status: [i2]")
    got = conds(core_pb2.Pod(), sandbox_ready=True, init=[], containers=[exited("a", 0)], phase="Succeeded")
    assert got["Ready"] == ("False", "PodCompleted", "")
    assert got["Initialized"] == ("True", "PodCompleted", "")


def test_readiness_gates_hold_ready_back() -> None:
    pod = core_pb2.Pod()
    pod.spec.readinessGates.add(conditionType="example.com/lb")
    got = conds(pod, sandbox_ready=True, init=[], containers=[running("a")], phase="Running")
    assert got["ContainersReady"][0] == "True"
    assert got["Ready"][:2] == ("False", "ReadinessGatesNotReady")
    pod.status.conditions.add(type="example.com/lb", status="True")
    assert conds(pod, sandbox_ready=True, init=[], containers=[running("a")], phase="Running")["Ready"][0] == "True"


def test_merge_keeps_transition_time_and_foreign_conditions() -> None:
    old = [core_pb2.PodCondition(type="Ready", status="False"), core_pb2.PodCondition(type="PodScheduled", status="True")]
    old[0].lastTransitionTime.seconds = 50
    same = merge_conditions(old, [core_pb2.PodCondition(type="Ready", status="False")], now=100.0)
    assert same[0].lastTransitionTime.seconds == 50
    assert [c.type for c in same] == ["Ready", "PodScheduled"]
    flipped = merge_conditions(old, [core_pb2.PodCondition(type="Ready", status="True")], now=100.0)
    assert flipped[0].lastTransitionTime.seconds == 100


def test_container_status_crash_loop_shows_last_state() -> None:
    view = exited("a", 1, restarting=True)
    view.waiting_message = "back-off 10s restarting failed container=a pod=p_default(u)"
    view.restart_count = 1
    st = container_status(view)
    assert st.state.waiting.reason == "CrashLoopBackOff"
    assert st.lastState.terminated.exitCode == 1
    assert st.lastState.terminated.reason == "Error"
    assert st.restartCount == 1


def test_container_status_terminated_and_running() -> None:
    st = container_status(exited("a", 0))
    assert st.state.terminated.reason == "Completed" and st.state.terminated.exitCode == 0
    st = container_status(running("b"))
    assert st.state.running.startedAt.seconds == 100 and st.ready


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_crash_backoff_doubles_caps_and_resets() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock=clock)
    assert not b.in_backoff_since("k", clock.now)  # first exit: restart at once
    b.next("k", clock.now)
    clock.now += 1
    assert b.in_backoff_since("k", clock.now)  # second exit right after: wait 10 s
    assert b.retry_at("k", clock.now) == clock.now + 10
    clock.now += 10
    assert not b.in_backoff_since("k", clock.now - 10)
    b.next("k", clock.now - 10)
    assert b.get("k") == 20
    for _ in range(10):
        b.next("k", clock.now)
    assert b.get("k") == 300
    clock.now += 601  # ran for more than 10 minutes: forgotten
    assert not b.in_backoff_since("k", clock.now)
    b.next("k", clock.now)
    assert b.get("k") == 10


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (0.5, "500ms"),
                                               (2.5, "2.5s")])
def test_format_delay(seconds: float, text: str) -> None:
    assert format_delay(seconds) == text
