"""Job: the pure rules of the state machine — how many pods to run, when a Job is decided
(backoff limit, OnFailure restarts, active deadline, completions), which pods count as failed,
completed-index bookkeeping, the pod failure back-off and condition transitions."""

from __future__ import annotations

import pytest

from controller_manager.job import (
    COMPLETION_INDEX_KEY,
    JOB_TRACKING_FINALIZER,
    condition_true,
    finish_time,
    finished_type,
    format_indexes,
    has_tracking_finalizer,
    is_pod_failed,
    job_outcome,
    parse_indexes,
    past_backoff_limit_on_failure,
    plan_pods,
    pod_failure_backoff,
    set_condition,
    want_active,
)
from kplane.api.pb import batch_pb2, core_pb2

NOW = 1_800_000_000.0


def pod(name: str, *, phase: str = "Running", restarts: int = 0, deleting: bool = False, index: int | None = None,
        ready: bool = False, created: float = NOW - 100) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.uid = f"uid-{name}"
    p.metadata.creationTimestamp.seconds = int(created)
    p.metadata.finalizers.append(JOB_TRACKING_FINALIZER)
    if deleting:
        p.metadata.deletionTimestamp.seconds = int(NOW)
    if index is not None:
        p.metadata.annotations[COMPLETION_INDEX_KEY] = str(index)
    p.status.phase = phase
    if restarts:
        p.status.containerStatuses.add(name="c", restartCount=restarts)
    if ready:
        p.status.conditions.add(type="Ready", status="True")
    return p


@pytest.mark.parametrize(("parallelism", "completions", "succeeded", "active", "want"), [
    (2, 3, 0, 0, 2),   # start parallelism pods
    (2, 3, 2, 1, 1),   # one completion left: one pod
    (2, 3, 3, 1, 0),   # done: none (the extra goes)
    (5, 3, 0, 0, 3),   # never more than what is left to succeed
    (3, None, 0, 1, 3),  # no completions: parallelism until one succeeds ...
    (3, None, 1, 2, 2),  # ... then no new pods, the running ones finish
    (0, 4, 0, 2, 0),   # parallelism 0 pauses the Job
])
def test_want_active(parallelism: int, completions: int | None, succeeded: int, active: int, want: int) -> None:
    assert want_active(parallelism=parallelism, completions=completions, succeeded=succeeded, active=active) == want


def test_plan_non_indexed_creates_up_to_parallelism_and_deletes_extras() -> None:
    """NonIndexed: create the missing pods; when too many run, delete the least established."""
    delete, create = plan_pods([], succeeded=0, completions=3, parallelism=2, indexed=False, completed=set(), now=NOW)
    assert (delete, create) == ([], [None, None])
    running = [pod("a", ready=True), pod("b", phase="Pending")]
    delete, create = plan_pods(running, succeeded=2, completions=3, parallelism=2, indexed=False, completed=set(),
                               now=NOW)
    assert [p.metadata.name for p in delete] == ["b"] and create == []


def test_plan_indexed_fills_the_lowest_pending_indexes() -> None:
    """Indexed: one pod per index, lowest missing indexes first, duplicates and done indexes go."""
    delete, create = plan_pods([pod("p1", index=1)], succeeded=1, completions=5, parallelism=3, indexed=True,
                               completed={0}, now=NOW)
    assert delete == [] and create == [2, 3]
    dup = [pod("x", index=2, ready=True, created=NOW - 500), pod("y", index=2), pod("z", index=0)]
    delete, create = plan_pods(dup, succeeded=1, completions=3, parallelism=3, indexed=True, completed={0}, now=NOW)
    assert sorted(p.metadata.name for p in delete) == ["y", "z"] and create == []
    delete, create = plan_pods([pod("bad")], succeeded=0, completions=2, parallelism=2, indexed=True,
                               completed=set(), now=NOW)
    assert [p.metadata.name for p in delete] == ["bad"]


def outcome(**kw: object) -> tuple[object, object]:
    args: dict[str, object] = dict(failed=0, backoff_limit=6, restart_policy="Never", active=[], start_time=NOW - 10,
                                   active_deadline=None, now=NOW, completions=3, succeeded=0, indexed=False)
    args.update(kw)
    return job_outcome(**args)  # type: ignore[arg-type]


def test_outcomes() -> None:
    """Failure (backoff limit, restarts, deadline) is decided before success; success needs the
    completions and no pod still running."""
    assert outcome() == (None, None)
    assert outcome(failed=7)[0] == ("FailureTarget", "BackoffLimitExceeded",
                                    "Job has reached the specified backoff limit")
    assert outcome(failed=6)[0] is None  # more than backoffLimit failures fail it, not as many
    assert outcome(failed=1, backoff_limit=0)[0] is not None
    assert outcome(active_deadline=10)[0] == ("FailureTarget", "DeadlineExceeded",
                                              "Job was active longer than specified deadline")
    none, wait = outcome(active_deadline=30)
    assert none is None and wait == pytest.approx(20)
    assert outcome(succeeded=3)[0] == ("SuccessCriteriaMet", "CompletionsReached",
                                       "Reached expected number of succeeded pods")
    assert outcome(succeeded=3, active=[pod("a")])[0] is None
    assert outcome(succeeded=1, completions=None)[0] is not None
    assert outcome(succeeded=1, completions=None, active=[pod("a")])[0] is None
    assert outcome(succeeded=3, indexed=True, active=[pod("a")])[0] is not None
    assert outcome(failed=9, succeeded=3)[0][0] == "FailureTarget"  # type: ignore[index]


def test_on_failure_restarts_count_against_the_backoff_limit() -> None:
    """restartPolicy OnFailure: restarts of running/pending pods reach backoffLimit -> failed."""
    pods = [pod("a", restarts=2), pod("b", restarts=1, phase="Pending"), pod("c", restarts=9, phase="Succeeded")]
    assert past_backoff_limit_on_failure("OnFailure", 3, pods)
    assert not past_backoff_limit_on_failure("OnFailure", 4, pods)
    assert not past_backoff_limit_on_failure("Never", 1, pods)
    assert past_backoff_limit_on_failure("OnFailure", 0, [pod("a", restarts=1)])
    assert not past_backoff_limit_on_failure("OnFailure", 0, [pod("a")])
    assert outcome(restart_policy="OnFailure", backoff_limit=3, active=pods)[0] is not None


def test_which_pods_count_as_failed() -> None:
    """Failed pods fail; so do pods deleted before they succeeded, unless the Job is suspended."""
    assert is_pod_failed(pod("a", phase="Failed"))
    assert is_pod_failed(pod("a", deleting=True))
    assert not is_pod_failed(pod("a", deleting=True), suspended=True)
    assert not is_pod_failed(pod("a", phase="Succeeded", deleting=True))
    assert not is_pod_failed(pod("a"))
    assert has_tracking_finalizer(pod("a"))


@pytest.mark.parametrize(("text", "indexes"), [("", set()), ("0", {0}), ("1,3-5,7", {1, 3, 4, 5, 7}),
                                               ("0-2", {0, 1, 2})])
def test_completed_indexes_round_trip(text: str, indexes: set[int]) -> None:
    assert parse_indexes(text) == indexes
    assert format_indexes(indexes) == text


def test_pod_failure_backoff_doubles_up_to_the_cap() -> None:
    assert [pod_failure_backoff(n) for n in range(5)] == [0, 10, 20, 40, 80]
    assert pod_failure_backoff(20) == 600
    assert pod_failure_backoff(3, base=0.1, cap=1) == pytest.approx(0.4)


def test_conditions_keep_their_transition_time() -> None:
    """A condition moves its lastTransitionTime only when its status changes."""
    conds: list[dict[str, str]] = []
    assert set_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    assert not set_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", NOW + 5)
    first = conds[0]["lastTransitionTime"]
    assert set_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", NOW + 60)
    assert conds[0]["lastTransitionTime"] != first and conds[0]["reason"] == "JobResumed"
    assert condition_true(conds, "Suspended") is None


def test_finished_jobs() -> None:
    job = batch_pb2.Job()
    assert finished_type(job) == "" and finish_time(job) is None
    cond = job.status.conditions.add(type="FailureTarget", status="True")
    assert finished_type(job) == ""
    cond = job.status.conditions.add(type="Failed", status="True")
    cond.lastTransitionTime.seconds = 1234
    assert finished_type(job) == "Failed" and finish_time(job) == 1234
