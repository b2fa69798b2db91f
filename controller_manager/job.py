"""The Job controller (Kubernetes' pkg/controller/job) and the TTL-after-finished controller.

A Job runs pods until ``completions`` of them succeed, at most ``parallelism`` at once, and
fails after more than ``backoffLimit`` pod failures or after ``activeDeadlineSeconds``.

**Counting with a finalizer (Kubernetes >= 1.26).** Every pod is created with the
``batch.kubernetes.io/job-tracking`` finalizer, so a finished or deleted pod cannot vanish before
the controller has counted it. Counting is crash-safe in three steps, each a write the next sync
can resume from: (1) the UIDs of newly finished pods go into ``status.uncountedTerminatedPods``;
(2) their finalizers are removed; (3) UIDs whose pods no longer carry the finalizer (or are gone)
move from ``uncountedTerminatedPods`` into ``status.succeeded`` / ``status.failed``. A pod deleted
before it finished counts as failed (``podReplacementPolicy: TerminatingOrFailed``, the default),
and its replacement is created at once.

**Finishing, as Kubernetes >= 1.31 does.** Success first adds ``SuccessCriteriaMet``, failure
``FailureTarget`` (reason ``BackoffLimitExceeded`` or ``DeadlineExceeded``); the active pods are
deleted; only when no pod is left terminating and nothing is uncounted does the terminal
``Complete`` (with ``completionTime``) or ``Failed`` condition follow. Consumers such as the
CronJob controller look only at the terminal conditions.

**Other rules kept from Kubernetes.** restartPolicy ``OnFailure`` also fails the Job when the
container restarts of its running pods reach ``backoffLimit``; replacement pods for failed ones
are delayed by an exponential back-off (10 s doubling, at most 10 min; in memory, per Job);
``completionMode: Indexed`` gives each pod an index (annotation and label
``batch.kubernetes.io/job-completion-index``, env ``JOB_COMPLETION_INDEX``, hostname
``<job>-<index>``) and tracks ``status.completedIndexes``; ``suspend`` deletes the active pods
(not counted as failures) and toggles the ``Suspended`` condition; ``status.ready`` and
``status.terminating`` count ready active pods and pods being deleted.

Not implemented: ``podFailurePolicy``, ``backoffLimitPerIndex``/``maxFailedIndexes``,
``successPolicy``, ``podReplacementPolicy: Failed``, ``managedBy``; the pod failure back-off is
forgotten when the controller restarts.

The TTL-after-finished controller (also built by ``new``) deletes a finished Job
``ttlSecondsAfterFinished`` seconds after its Complete/Failed condition, re-reading the Job live
first and deleting with a UID precondition and background propagation (Kubernetes uses
foreground; background does not depend on the garbage collector handling the
``foregroundDeletion`` finalizer, and the pods still go once it runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.expectations import ControllerExpectations
from controller_manager.podcontrol import (
    CONTROLLER_UID_INDEX,
    ClaimError,
    ControllerRefManager,
    PodControl,
    controller_uid_index_func,
    get_controller_of,
    is_pod_active,
    is_pod_ready,
    is_pod_terminating,
    new_controller_ref,
    objects_for_owner,
    pod_from_template,
    rank_pods_for_deletion,
    slow_start_batch,
    ts_seconds,
)
from kplane.api import errors as api
from kplane.api.labels import selector_from_label_selector
from kplane.api.pb import batch_pb2, core_pb2
from kplane.api.resources import ResourceType, object_to_dict, resolve
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, ResourceEventHandlerFuncs, last_known_state
from kplane.client.store import split_key
from kplane.logs import get_logger

JOBS: ResourceType = resolve("jobs")
PODS: ResourceType = resolve("pods")

COMPONENT = "job-controller"
TTL_COMPONENT = "ttl-after-finished-controller"
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
# Kubernetes' DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff / MaxPodCreateDeletePerSync.
POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0
MAX_POD_CREATE_DELETE_PER_SYNC = 500

log = get_logger(component=COMPONENT)


# =============================================================================================
# Pure rules
# =============================================================================================


def has_tracking_finalizer(pod: core_pb2.Pod) -> bool:
    return JOB_TRACKING_FINALIZER in pod.metadata.finalizers


def is_pod_failed(pod: core_pb2.Pod, *, suspended: bool = False) -> bool:
    """``isPodFailed`` for podReplacementPolicy TerminatingOrFailed: phase Failed, or deleted
    before it succeeded (an orphan that never reaches Failed must still count) — except pods the
    controller deletes because the Job is suspended."""
    if pod.status.phase == "Failed":
        return True
    return not suspended and pod.metadata.HasField("deletionTimestamp") and pod.status.phase != "Succeeded"


def completion_index(pod: core_pb2.Pod) -> int | None:
    """The pod's completion index (annotation), None when absent or malformed."""
    raw = pod.metadata.annotations.get(COMPLETION_INDEX_KEY, "")
    return int(raw) if raw.isdigit() else None


def parse_indexes(text: str) -> set[int]:
    """``completedIndexes`` ("1,3-5,7") as a set."""
    out: set[int] = set()
    for part in (p for p in text.split(",") if p):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """A set of indexes as Kubernetes writes it: sorted ranges, "1,3-5,7"."""
    out: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def want_active(*, parallelism: int, completions: int | None, succeeded: int, active: int) -> int:
    """How many pods should be active (NonIndexed ``manageJob``): without completions, none new
    once any succeeded; with completions, what is left to succeed, at most ``parallelism``."""
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(completions - succeeded, parallelism))


def past_backoff_limit_on_failure(restart_policy: str, backoff_limit: int, active_pods: Iterable[core_pb2.Pod]) -> bool:
    """``pastBackoffLimitOnFailure``: with restartPolicy OnFailure the kubelet restarts failed
    containers in place, so their restarts count against backoffLimit too."""
    if restart_policy != "OnFailure":
        return False
    restarts = 0
    for pod in active_pods:
        if pod.status.phase in ("Running", "Pending"):
            restarts += sum(int(s.restartCount) for s in pod.status.initContainerStatuses)
            restarts += sum(int(s.restartCount) for s in pod.status.containerStatuses)
    if backoff_limit == 0:
        return restarts > 0
    return restarts >= backoff_limit


def pod_failure_backoff(failures: int, *, base: float = POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF) -> float:
    """The delay before replacing pods after ``failures`` failures in a row (0 for none)."""
    if failures <= 0:
        return 0.0
    return min(base * 2 ** (failures - 1), cap)


def job_outcome(*, failed: int, backoff_limit: int, restart_policy: str, active: list[core_pb2.Pod],
                start_time: float | None, active_deadline: int | None, now: float, completions: int | None,
                succeeded: int, indexed: bool) -> tuple[tuple[str, str, str] | None, float | None]:
    """Whether the Job is decided: ((interim condition type, reason, message) or None, seconds
    until the active deadline or None). Failure wins over success; ``succeeded`` counts
    completed indexes for an Indexed Job."""
    if failed > backoff_limit or past_backoff_limit_on_failure(restart_policy, backoff_limit, active):
        return ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"), None
    wait = None
    if active_deadline is not None and start_time is not None:
        wait = start_time + active_deadline - now
        if wait <= 0:
            return ("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"), None
    if indexed:
        complete = completions is not None and succeeded >= completions
    elif completions is None:
        complete = succeeded > 0 and not active
    else:
        complete = succeeded >= completions and not active
    if complete:
        return ("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"), wait
    return None, wait


def plan_pods(active: list[core_pb2.Pod], *, succeeded: int, completions: int | None, parallelism: int,
              indexed: bool, completed: set[int], now: float) -> tuple[list[core_pb2.Pod], list[int | None]]:
    """``manageJob``: (active pods to delete, pods to create — their completion indexes, None for
    NonIndexed). Deletions come first; nothing is created in a sync that deletes."""
    if not indexed:
        want = want_active(parallelism=parallelism, completions=completions, succeeded=succeeded, active=len(active))
        if len(active) > want:
            return rank_pods_for_deletion(active, now=now)[: len(active) - want], []
        return [], [None] * min(want - len(active), MAX_POD_CREATE_DELETE_PER_SYNC)
    total = completions or 0
    by_index: dict[int, list[core_pb2.Pod]] = {}
    extra: list[core_pb2.Pod] = []
    for pod in active:
        ix = completion_index(pod)
        if ix is None or ix >= total or ix in completed:
            extra.append(pod)  # no valid index, or an index already done
        else:
            by_index.setdefault(ix, []).append(pod)
    for pods in by_index.values():
        if len(pods) > 1:  # duplicates: keep the most established one
            extra.extend(rank_pods_for_deletion(pods, now=now)[:-1])
    want = max(0, min(parallelism, total - len(completed)))
    if len(by_index) > want:
        for ix in sorted(by_index, reverse=True)[: len(by_index) - want]:
            extra.extend(by_index[ix])
    if extra:
        return extra, []
    pending = [ix for ix in range(total) if ix not in completed and ix not in by_index]
    return [], list(pending[: min(want - len(by_index), MAX_POD_CREATE_DELETE_PER_SYNC)])


def finished_type(job: Message) -> str:
    """"Complete" or "Failed" when the Job has finished, else ""."""
    for cond in job.status.conditions:  # type: ignore[attr-defined]
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return str(cond.type)
    return ""


def finish_time(job: Message) -> float | None:
    """When the Job finished: its terminal condition's lastTransitionTime."""
    for cond in job.status.conditions:  # type: ignore[attr-defined]
        if cond.type in ("Complete", "Failed") and cond.status == "True" and cond.HasField("lastTransitionTime"):
            return ts_seconds(cond.lastTransitionTime)
    return None


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def set_condition(conditions: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str,
                  now: float) -> bool:
    """``ensureJobConditionStatus``: add or update a condition; the transition time moves only
    when the status changes. True when something changed."""
    for cond in conditions:
        if cond.get("type") != ctype:
            continue
        if cond.get("status") == status and cond.get("reason", "") == reason and cond.get("message", "") == message:
            return False
        if cond.get("status") != status:
            cond["lastTransitionTime"] = rfc3339(now)
        cond.update({"status": status, "reason": reason, "message": message, "lastProbeTime": rfc3339(now)})
        return True
    conditions.append({"type": ctype, "status": status, "lastProbeTime": rfc3339(now),
                       "lastTransitionTime": rfc3339(now), "reason": reason, "message": message})
    return True


def condition_true(conditions: Iterable[dict[str, Any]], ctype: str) -> dict[str, Any] | None:
    for cond in conditions:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


# =============================================================================================
# The Job controller
# =============================================================================================


@dataclass
class _Backoff:
    failures: int = 0  # failed pods counted since the last success
    last_failure: float = 0.0


@dataclass
class _JobSync:
    """The state one sync works on; ``status`` is the Job's status as Kubernetes JSON."""

    job: batch_pb2.Job
    data: dict[str, Any]
    status: dict[str, Any]
    pods: list[core_pb2.Pod]
    now: float
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def requeue(self, seconds: float) -> None:
        if self.requeue_after is None or seconds < self.requeue_after:
            self.requeue_after = max(seconds, 0.0)


class JobController:
    """Reconciles Jobs. ``clock`` gives epoch seconds; ``backoff_base``/``backoff_max`` tune the
    delay before replacing failed pods (tests shorten it)."""

    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time,
                 backoff_base: float = POD_FAILURE_BACKOFF, backoff_max: float = MAX_POD_FAILURE_BACKOFF) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.recorder = ctx.recorder(COMPONENT)
        self.pod_control = PodControl(ctx.client, self.recorder)
        self.expectations = ControllerExpectations()
        self._backoff: dict[str, _Backoff] = {}
        self.jobs = ctx.factory.informer_for(JOBS)
        self.pods = ctx.factory.informer_for(PODS, indexers={CONTROLLER_UID_INDEX: controller_uid_index_func})
        self.controller = Controller("job", self.reconcile, workers=ctx.workers)
        self.controller.watch(self.jobs)
        self.pods.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted))
        self.controller.informers.append(self.pods)

    # -- pod events: expectations, then the owning Job's key ------------------------------------

    def _job_keys(self, pod: Message) -> list[str]:
        ref = get_controller_of(pod)
        ns = pod.metadata.namespace  # type: ignore[attr-defined]
        if ref is not None:
            return [f"{ns}/{ref.name}"] if ref.kind == "Job" else []
        # an orphan: every Job whose selector matches may want to adopt it
        keys = []
        for job in self.jobs.store.by_index("namespace", ns):
            try:
                selector = selector_from_label_selector(object_to_dict(JOBS, job).get("spec", {}).get("selector"))
            except ValueError:
                continue
            if not selector.empty() and selector.matches(pod.metadata.labels):  # type: ignore[attr-defined]
                keys.append(f"{ns}/{job.metadata.name}")  # type: ignore[attr-defined]
        return keys

    def _pod_added(self, pod: Message) -> None:
        for key in self._job_keys(pod):
            if pod.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
                self.expectations.deletion_observed(key, pod.metadata.uid)  # type: ignore[attr-defined]
            else:
                self.expectations.creation_observed(key)
            self.controller.queue.add(key)

    def _pod_updated(self, old: Message, new: Message) -> None:
        keys = self._job_keys(new)
        if new.metadata.HasField("deletionTimestamp") and not old.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            for key in keys:
                self.expectations.deletion_observed(key, new.metadata.uid)  # type: ignore[attr-defined]
        for key in {*keys, *self._job_keys(old)}:
            self.controller.queue.add(key)

    def _pod_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        pod = last_known_state(obj)
        for key in self._job_keys(pod):
            self.expectations.deletion_observed(key, pod.metadata.uid)  # type: ignore[attr-defined]
            self.controller.queue.add(key)

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        if self.may_write is not None and not self.may_write():
            return None  # leadership lost: the next leader reconciles
        try:
            return await self._reconcile(key)
        except api.Conflict as exc:
            # a write raced one we made moments ago (our cache was behind): not a failure, look
            # again once the informer has caught up
            log.debug("write conflict; requeueing", key=key, error=str(exc))
            return Result(requeue=True)

    async def _reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        job = self.jobs.store.get_by_key(key)
        if job is None or job.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            # gone (or going): its pods must not stay pinned by our finalizer
            self.expectations.delete(key)
            self._backoff.pop(key, None)
            await self._release_orphans(ns, name, None if job is None else job.metadata.uid)  # type: ignore[attr-defined]
            return None
        assert isinstance(job, batch_pb2.Job)
        if finished_type(job):
            await self._remove_finalizers([p for p in self._owned(job) if has_tracking_finalizer(p)])
            return None
        satisfied = self.expectations.satisfied(key)
        pods = await self._claim(job)
        data = object_to_dict(JOBS, job)
        sync = _JobSync(job, data, dict(data.get("status") or {}), pods, self.clock())
        await self._sync(key, sync, satisfied)
        for etype, reason, message in sync.events:
            self.recorder.event(job, etype, reason, message)
        if sync.requeue_after is not None:
            return Result(requeue_after=sync.requeue_after)
        return None

    def _owned(self, job: batch_pb2.Job) -> list[core_pb2.Pod]:
        return [p for p in objects_for_owner(self.pods.store, job, include_orphans=False)
                if isinstance(p, core_pb2.Pod)]

    async def _claim(self, job: batch_pb2.Job) -> list[core_pb2.Pod]:
        try:
            selector = selector_from_label_selector(object_to_dict(JOBS, job).get("spec", {}).get("selector"))
        except ValueError:
            return self._owned(job)
        manager = ControllerRefManager(self.client, job, selector, controller_rt=JOBS)
        candidates = [p for p in objects_for_owner(self.pods.store, job) if isinstance(p, core_pb2.Pod)]
        try:
            return await manager.claim_pods(candidates)
        except ClaimError as exc:
            log.warning("claiming pods failed", key=f"{job.metadata.namespace}/{job.metadata.name}", error=str(exc))
            return [p for p in exc.claimed if isinstance(p, core_pb2.Pod)]

    async def _release_orphans(self, ns: str, name: str, uid: str | None) -> None:
        """Remove the tracking finalizer from the pods of a Job (this name; this ``uid`` when
        given) that is gone or being deleted: nothing will count them any more."""
        doomed = []
        for pod in self.pods.store.by_index("namespace", ns):
            assert isinstance(pod, core_pb2.Pod)
            ref = get_controller_of(pod)
            if ref is None or ref.kind != "Job" or ref.name != name or not has_tracking_finalizer(pod):
                continue
            if uid is None or ref.uid == uid:
                doomed.append(pod)
        await self._remove_finalizers(doomed)

    async def _remove_finalizers(self, pods: Iterable[core_pb2.Pod]) -> list[str]:
        """Remove the tracking finalizer (a JSON patch with a test: only that entry, only if
        it is still where we saw it). Returns the UIDs whose finalizer is gone."""
        done = []
        for pod in pods:
            finalizers = list(pod.metadata.finalizers)
            if JOB_TRACKING_FINALIZER not in finalizers:
                done.append(pod.metadata.uid)
                continue
            i = finalizers.index(JOB_TRACKING_FINALIZER)
            patch = [{"op": "test", "path": "/metadata/uid", "value": pod.metadata.uid},
                     {"op": "test", "path": f"/metadata/finalizers/{i}", "value": JOB_TRACKING_FINALIZER},
                     {"op": "remove", "path": f"/metadata/finalizers/{i}"}]
            try:
                await self.client.patch(PODS, pod.metadata.name, patch, namespace=pod.metadata.namespace,
                                        patch_type="json")
            except api.NotFound:
                pass
            except api.APIError as exc:
                # the pod changed under us (a test op failed: another finalizer moved, or a new
                # pod of the same name), or the write failed: the next sync looks again
                log.info("finalizer removal skipped", pod=f"{pod.metadata.namespace}/{pod.metadata.name}",
                         error=str(exc))
                continue
            done.append(pod.metadata.uid)
        return done

    # -- one sync ------------------------------------------------------------------------------

    async def _sync(self, key: str, s: _JobSync, satisfied: bool) -> None:
        job, spec, status = s.job, s.job.spec, s.status
        conditions: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or []]
        status["conditions"] = conditions
        indexed = spec.completionMode == "Indexed"
        completions = spec.completions if spec.HasField("completions") else None
        parallelism = spec.parallelism if spec.HasField("parallelism") else 1
        backoff_limit = spec.backoffLimit if spec.HasField("backoffLimit") else 6
        suspended = spec.suspend
        active = [p for p in s.pods if is_pod_active(p)]
        terminating = [p for p in s.pods if is_pod_terminating(p)]

        # --- count finished pods (step 1: into uncountedTerminatedPods) ---
        uncounted = status.get("uncountedTerminatedPods") or {}
        unc_s: list[str] = list(uncounted.get("succeeded") or [])
        unc_f: list[str] = list(uncounted.get("failed") or [])
        completed = parse_indexes(status.get("completedIndexes", "")) if indexed else set()
        new_succeeded = new_failed = 0
        dropped: list[core_pb2.Pod] = []  # deleted while suspended: released without being counted
        for pod in s.pods:
            if not has_tracking_finalizer(pod):
                continue
            uid = pod.metadata.uid
            if pod.status.phase == "Succeeded":
                if uid not in unc_s:
                    unc_s.append(uid)
                    new_succeeded += 1
                if indexed:
                    ix = completion_index(pod)
                    if ix is not None and completions is not None and ix < completions:
                        completed.add(ix)
            elif is_pod_failed(pod, suspended=suspended):
                if uid not in unc_f:
                    unc_f.append(uid)
                    new_failed += 1
            elif pod.metadata.HasField("deletionTimestamp"):
                dropped.append(pod)
        self._note_backoff(key, new_succeeded, new_failed, s.now)
        succeeded = int(status.get("succeeded") or 0) + len(unc_s)
        if indexed:
            succeeded = len(completed)
        failed = int(status.get("failed") or 0) + len(unc_f)

        # --- decide where the Job stands ---
        if not suspended and not status.get("startTime"):
            status["startTime"] = rfc3339(s.now)
        target = condition_true(conditions, "FailureTarget") or condition_true(conditions, "SuccessCriteriaMet")
        if target is None and not suspended:
            outcome, wait = job_outcome(
                failed=failed, backoff_limit=backoff_limit, restart_policy=spec.template.spec.restartPolicy,
                active=active, start_time=_parse_time(status["startTime"]) if status.get("startTime") else None,
                active_deadline=spec.activeDeadlineSeconds if spec.HasField("activeDeadlineSeconds") else None,
                now=s.now, completions=completions, succeeded=succeeded, indexed=indexed)
            if wait is not None:
                s.requeue(wait)
            if outcome is not None:
                ctype, reason, message = outcome
                set_condition(conditions, ctype, "True", reason, message, s.now)
                target = condition_true(conditions, ctype)
                log.info("job outcome decided", key=key, condition=ctype, reason=reason,
                         resourceVersion=job.metadata.resourceVersion)

        # --- act: delete what must go, create what is missing ---
        to_delete = active if target is not None or suspended else []
        created: list[core_pb2.Pod] = []
        deleted_uids: list[str] = []
        if satisfied:
            if to_delete:
                deleted_uids = await self._delete_pods(key, job, to_delete)
            elif target is None and not suspended:
                extra, wanted_new = plan_pods(active, succeeded=succeeded, completions=completions,
                                              parallelism=parallelism, indexed=indexed, completed=completed, now=s.now)
                if extra:
                    deleted_uids = await self._delete_pods(key, job, extra)
                elif wanted_new:
                    created = await self._create_pods(key, s, wanted_new)
        self._suspend_condition(s, conditions, suspended)

        # --- status (step 1 write), then finalizers (step 2), then counters (step 3) ---
        still_active = [p for p in active if p.metadata.uid not in deleted_uids]
        status["active"] = len(still_active) + len(created)
        status["ready"] = sum(1 for p in still_active if is_pod_ready(p))
        status["terminating"] = len(terminating) + len(deleted_uids)
        if indexed:
            status["completedIndexes"] = format_indexes(completed)
        status["uncountedTerminatedPods"] = _uncounted(unc_s, unc_f)
        await self._write_status(s)
        counted = set(unc_s) | set(unc_f)
        finished_pods = [p for p in s.pods if p.metadata.uid in counted]
        released = set(await self._remove_finalizers([*finished_pods, *dropped]))
        present = {p.metadata.uid for p in s.pods}
        movable = {uid for uid in counted if uid in released or uid not in present}
        status["succeeded"] = int(status.get("succeeded") or 0) + sum(1 for u in unc_s if u in movable)
        status["failed"] = int(status.get("failed") or 0) + sum(1 for u in unc_f if u in movable)
        unc_s = [u for u in unc_s if u not in movable]
        unc_f = [u for u in unc_f if u not in movable]
        status["uncountedTerminatedPods"] = _uncounted(unc_s, unc_f)
        if indexed:
            status["succeeded"] = len(completed)

        # --- the terminal condition, once nothing is running, terminating or uncounted ---
        if target is not None and not unc_s and not unc_f and status["terminating"] == 0 and status["active"] == 0:
            if target["type"] == "SuccessCriteriaMet":
                set_condition(conditions, "Complete", "True", target.get("reason", ""), target.get("message", ""),
                              s.now)
                status["completionTime"] = rfc3339(s.now)
                s.events.append(("Normal", "Completed", "Job completed"))
            else:
                set_condition(conditions, "Failed", "True", target.get("reason", ""), target.get("message", ""),
                              s.now)
                s.events.append(("Warning", target.get("reason", "Failed"), target.get("message", "")))
            log.info("job finished", key=key, condition=target["type"], reason=target.get("reason", ""))
        await self._write_status(s)

    def _note_backoff(self, key: str, new_succeeded: int, new_failed: int, now: float) -> None:
        record = self._backoff.setdefault(key, _Backoff())
        if new_succeeded and not new_failed:
            record.failures = 0
        if new_failed:
            record.failures += new_failed
            record.last_failure = now

    def _suspend_condition(self, s: _JobSync, conditions: list[dict[str, Any]], suspended: bool) -> None:
        if suspended:
            if set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", s.now):
                s.events.append(("Normal", "Suspended", "Job suspended"))
        elif condition_true(conditions, "Suspended") is not None:
            set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", s.now)
            s.status["startTime"] = rfc3339(s.now)  # the deadline counts from the resumption
            s.events.append(("Normal", "Resumed", "Job resumed"))

    async def _write_status(self, s: _JobSync) -> None:
        """Write the status when it differs from the stored one (compared in the stored form:
        no empty condition list); keep the response's resourceVersion for the next write."""
        want = {k: v for k, v in s.status.items() if not (k == "conditions" and not v)}
        if want == (s.data.get("status") or {}):
            return
        body = dict(s.data)
        body["status"] = want
        written = await self.client.update_status(JOBS, body)
        s.data = object_to_dict(JOBS, written)

    # -- pods ------------------------------------------------------------------------------------

    def _new_pod(self, job: batch_pb2.Job, index: int | None) -> core_pb2.Pod:
        ref = new_controller_ref(job, JOBS)
        generate = f"{job.metadata.name}-{index}-" if index is not None else ""
        pod = pod_from_template(job.spec.template, job, ref, generate_name=generate)
        pod.metadata.finalizers.append(JOB_TRACKING_FINALIZER)
        if index is not None:
            pod.metadata.annotations[COMPLETION_INDEX_KEY] = str(index)
            pod.metadata.labels[COMPLETION_INDEX_KEY] = str(index)
            if not pod.spec.hostname:
                pod.spec.hostname = f"{job.metadata.name}-{index}"
            for container in [*pod.spec.initContainers, *pod.spec.containers]:
                if any(e.name == COMPLETION_INDEX_ENV for e in container.env):
                    continue
                env = container.env.add()
                env.name = COMPLETION_INDEX_ENV
                env.valueFrom.fieldRef.fieldPath = f"metadata.annotations['{COMPLETION_INDEX_KEY}']"
        return pod

    async def _create_pods(self, key: str, s: _JobSync, indexes: list[int | None]) -> list[core_pb2.Pod]:
        record = self._backoff.get(key)
        if record is not None and record.failures:
            remaining = record.last_failure + pod_failure_backoff(
                record.failures, base=self.backoff_base, cap=self.backoff_max) - s.now
            if remaining > 0:
                s.requeue(remaining)
                return []
        job = s.job
        self.expectations.expect_creations(key, len(indexes))
        created: list[core_pb2.Pod] = []
        queue = list(indexes)

        async def create_one() -> None:
            index = queue.pop(0)  # before any await: concurrent calls take distinct indexes
            try:
                pod = await self.pod_control.create_pod(job.metadata.namespace, self._new_pod(job, index), job)
            except api.APIError:
                self.expectations.lower(key, adds=1)
                raise
            created.append(pod)

        _, error = await slow_start_batch(len(indexes), create_one)
        if queue:  # never attempted after a failed batch: we will not see them either
            self.expectations.lower(key, adds=len(queue))
        if error is not None and not (isinstance(error, api.Forbidden) and "being terminated" in str(error)):
            log.warning("creating pods failed", key=key, error=str(error))
            s.requeue(1.0)
        return created

    async def _delete_pods(self, key: str, job: batch_pb2.Job, pods: list[core_pb2.Pod]) -> list[str]:
        pods = pods[:MAX_POD_CREATE_DELETE_PER_SYNC]
        self.expectations.expect_deletions(key, [p.metadata.uid for p in pods])
        deleted = []
        for pod in pods:
            try:
                await self.pod_control.delete_pod(pod.metadata.namespace, pod.metadata.name, job, uid=pod.metadata.uid)
            except api.NotFound:
                self.expectations.deletion_observed(key, pod.metadata.uid)
                continue
            except api.APIError as exc:
                self.expectations.deletion_observed(key, pod.metadata.uid)
                log.warning("deleting a pod failed", key=key, pod=pod.metadata.name, error=str(exc))
                continue
            deleted.append(pod.metadata.uid)
        return deleted


def _uncounted(succeeded: list[str], failed: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if succeeded:
        out["succeeded"] = succeeded
    if failed:
        out["failed"] = failed
    return out


# =============================================================================================
# TTL after finished
# =============================================================================================


class TTLAfterFinishedController:
    """Deletes finished Jobs ``ttlSecondsAfterFinished`` after they finished."""

    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.jobs = ctx.factory.informer_for(JOBS)
        self.controller = Controller("ttl-after-finished", self.reconcile, workers=ctx.workers)
        self.controller.watch(self.jobs)

    def _expired_in(self, job: Message) -> float | None:
        """Seconds until the Job may be deleted (<= 0: now); None if it never will be."""
        spec = job.spec  # type: ignore[attr-defined]
        if job.metadata.HasField("deletionTimestamp") or not spec.HasField("ttlSecondsAfterFinished"):  # type: ignore[attr-defined]
            return None
        finished = finish_time(job)
        if finished is None:
            return None
        return finished + spec.ttlSecondsAfterFinished - self.clock()

    async def reconcile(self, key: str) -> Result | None:
        if self.may_write is not None and not self.may_write():
            return None
        job = self.jobs.store.get_by_key(key)
        if job is None:
            return None
        left = self._expired_in(job)
        if left is None:
            return None
        if left > 0:
            return Result(requeue_after=left)
        ns, name = split_key(key)
        try:  # the cache may be stale (TTL changed, Job re-created): decide on the live object
            fresh = await self.client.get(JOBS, name, namespace=ns)
        except api.NotFound:
            return None
        left = self._expired_in(fresh)
        if left is None:
            return None
        if left > 0:
            return Result(requeue_after=left)
        try:
            await self.client.delete(JOBS, name, namespace=ns, propagation_policy="Background",
                                     uid=fresh.metadata.uid)  # type: ignore[attr-defined]
        except api.NotFound:
            return None
        log.info("deleted finished job after its TTL", key=key, resourceVersion=fresh.metadata.resourceVersion)  # type: ignore[attr-defined]
        return None


def new(ctx: ControllerContext) -> list[Controller]:
    """Registry entry: the Job controller and the TTL-after-finished controller."""
    return [JobController(ctx).controller, TTLAfterFinishedController(ctx).controller]
