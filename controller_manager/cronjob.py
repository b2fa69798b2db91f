"""The CronJob controller: Jobs from a template on a cron schedule (Kubernetes' cronjob_controllerv2).

Schedules are parsed and stepped by :mod:`kplane.api.cron` (robfig/cron, as Kubernetes), the
same code API validation uses.

The controller (one ``reconcile(key)`` per CronJob):

- finds the Jobs it controls (controllerRef), prunes finished ones beyond
  ``successfulJobsHistoryLimit`` (3) / ``failedJobsHistoryLimit`` (1), oldest first;
- keeps ``status.active`` equal to its unfinished Jobs and ``status.lastSuccessfulTime``;
- computes the most recent unmet schedule time the way Kubernetes does
  (``most_recent_schedule_time``): only that one time is ever run, however many were missed; more
  than 100 missed is a ``TooManyMissedTimes`` warning; ``startingDeadlineSeconds`` both narrows
  the search window and skips a start that is too late (``MissSchedule``);
- honours ``suspend``, ``timeZone`` (IANA; unset: the controller's local zone) and
  ``concurrencyPolicy`` Allow / Forbid (``JobAlreadyActive``) / Replace (deletes the running Jobs);
- creates ``<cronjob>-<scheduled time in minutes since the epoch>``: the name is the lock that
  stops the same scheduled time from running twice after a crash or a stale cache;
- requeues itself for the next scheduled time plus 100 ms (Kubernetes' ``nextScheduleDelta``).

The clock and the local time zone are injected, so unit and integration tests move time instead
of waiting for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.podcontrol import get_controller_of, new_controller_ref, ts_seconds
from kplane.api import errors as api
from kplane.api.codec import parse_time
from kplane.api.cron import CronParseError, Schedule, load_location, local_zone, parse_standard
from kplane.api.pb import batch_pb2
from kplane.api.resources import ResourceType, object_to_dict, resolve
from kplane.client.controller import Controller, Result
from kplane.client.events import EventRecorder
from kplane.logs import get_logger

CRONJOBS: ResourceType = resolve("cronjobs")
JOBS: ResourceType = resolve("jobs")

COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Requeue a little after the scheduled time, so a slightly fast clock never wakes us too early.
NEXT_SCHEDULE_DELTA = 0.1
TOO_MANY_MISSED = 100

log = get_logger(component=COMPONENT)

# =============================================================================================
# Missed schedules (pkg/controller/cronjob/utils.go)
# =============================================================================================

Missed = Literal["none", "few", "many"]


class UnsatisfiableSchedule(ValueError):
    """A schedule that parses but (almost) never fires, e.g. ``59 23 31 2 *``."""


def _go_round_seconds(seconds: float) -> int:
    """``Duration.Round(time.Second)`` then ``Seconds()``: halves round away from zero."""
    return int(seconds + 0.5) if seconds >= 0 else -int(-seconds + 0.5)


def most_recent_schedule_time(schedule: Schedule, now: datetime, *, creation: datetime,
                              last_schedule: datetime | None, starting_deadline: int | None,
                              include_starting_deadline: bool) -> tuple[datetime, datetime | None, Missed]:
    """(earliest time considered, the most recent scheduled time <= now or None, how many were
    missed). Counting the missed runs is approximate — (now - t1) / (t2 - t1) — as upstream, so
    a controller that was down for a year never walks a year of minutes. Raises
    UnsatisfiableSchedule when two consecutive runs are less than a second apart (never)."""
    earliest = last_schedule if last_schedule is not None else creation
    if include_starting_deadline and starting_deadline is not None:
        deadline = now - timedelta(seconds=starting_deadline)
        if deadline > earliest:
            earliest = deadline
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1) if t1 is not None else None
    if t1 is not None and now < t1:
        return earliest, None, "none"
    if t1 is not None and t2 is not None and now < t2:
        return earliest, t1, "none"
    if t1 is None or t2 is None or _go_round_seconds((t2 - t1).total_seconds()) < 1:
        raise UnsatisfiableSchedule("time difference between two schedules is less than 1 second")
    interval = _go_round_seconds((t2 - t1).total_seconds())
    elapsed = int((now - t1).total_seconds())  # Go truncates toward zero
    missed_count = elapsed // interval + 1
    # Walk from one interval before the estimate: exact for @every and for irregular schedules.
    t: datetime | None = schedule.next(t1 + timedelta(seconds=(missed_count - 2) * interval))
    recent: datetime | None = None
    while t is not None and t <= now:
        recent = t
        t = schedule.next(t)
    missed: Missed = "many" if missed_count > TOO_MANY_MISSED else "few" if missed_count > 0 else "none"
    return earliest, recent, missed


def next_schedule_time(schedule: Schedule, now: datetime, *, creation: datetime, last_schedule: datetime | None,
                       starting_deadline: int | None) -> tuple[datetime | None, Missed]:
    """``nextScheduleTime``: the scheduled time to run now (the most recent unmet one, within
    the starting deadline) or None, and how many were missed (the caller warns about "many")."""
    _, recent, missed = most_recent_schedule_time(schedule, now, creation=creation, last_schedule=last_schedule,
                                                  starting_deadline=starting_deadline,
                                                  include_starting_deadline=True)
    if recent is None or recent > now:
        return None, missed
    return recent, missed


def next_schedule_time_duration(schedule: Schedule, now: datetime, *, creation: datetime,
                                last_schedule: datetime | None) -> float | None:
    """Seconds until the controller should look again: the next run after the most recent
    scheduled time (or after the earliest time when nothing is due), plus 100 ms."""
    try:
        earliest, recent, missed = most_recent_schedule_time(
            schedule, now, creation=creation, last_schedule=last_schedule, starting_deadline=None,
            include_starting_deadline=False)
        base = recent if recent is not None else (earliest if missed == "none" else now)
    except UnsatisfiableSchedule:
        base = now
    nxt = schedule.next(base)
    if nxt is None:
        return None
    return (nxt - now).total_seconds() + NEXT_SCHEDULE_DELTA


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    """``getJobName``: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def rfc3339(dt: datetime) -> str:
    """Go's ``time.RFC3339`` layout: seconds precision, ``Z`` for UTC, ``+02:00`` otherwise."""
    text = dt.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if dt.utcoffset() == timedelta(0) else text


def job_from_template(cronjob: batch_pb2.CronJob, scheduled: datetime) -> dict[str, Any]:
    """``getJobFromTemplate2``: the Job to create for one scheduled time, as Kubernetes JSON."""
    template = object_to_dict(CRONJOBS, cronjob).get("spec", {}).get("jobTemplate", {})
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    zone = load_location(cronjob.spec.timeZone if cronjob.spec.HasField("timeZone") else "")
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = rfc3339(scheduled.astimezone(zone))
    owner = new_controller_ref(cronjob, CRONJOBS)
    meta: dict[str, Any] = {
        "name": job_name(cronjob.metadata.name, scheduled),
        "namespace": cronjob.metadata.namespace,
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": owner.apiVersion, "kind": owner.kind, "name": owner.name,
                             "uid": owner.uid, "controller": True, "blockOwnerDeletion": True}],
    }
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": JOBS.api_version, "kind": JOBS.kind, "metadata": meta,
            "spec": json.loads(json.dumps(template.get("spec") or {}))}


# =============================================================================================
# Jobs as the CronJob controller sees them
# =============================================================================================


def finished_condition(job: Message) -> str:
    """"Complete" or "Failed" when the Job has finished (that condition is True), else ""."""
    for cond in job.status.conditions:  # type: ignore[attr-defined]
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return str(cond.type)
    return ""


def _job_start(job: Message) -> float | None:
    status = job.status  # type: ignore[attr-defined]
    return ts_seconds(status.startTime) if status.HasField("startTime") else None


def oldest_first(jobs: Iterable[Message]) -> list[Message]:
    """``byJobStartTime``: by start time (unstarted last), ties by name."""
    def key(job: Message) -> tuple[int, float, str]:
        start = _job_start(job)
        return (1 if start is None else 0, start or 0.0, job.metadata.name)  # type: ignore[attr-defined]
    return sorted(jobs, key=key)


def jobs_to_prune(jobs: Iterable[Message], successful_limit: int | None, failed_limit: int | None) -> list[Message]:
    """The finished Jobs beyond the history limits, oldest first (``cleanupFinishedJobs``)."""
    succeeded = [j for j in jobs if finished_condition(j) == "Complete"]
    failed = [j for j in jobs if finished_condition(j) == "Failed"]
    out: list[Message] = []
    for group, limit in ((succeeded, successful_limit), (failed, failed_limit)):
        if limit is not None and len(group) > limit:
            out.extend(oldest_first(group)[: len(group) - limit])
    return out


# =============================================================================================
# The controller
# =============================================================================================


@dataclass
class _Sync:
    """What one sync decided: whether status changed, and when to look again."""

    status: dict[str, Any]
    dirty: bool = False
    requeue_after: float | None = None


class CronJobController:
    """Reconciles CronJobs; ``clock`` returns epoch seconds, ``zone`` is the controller's local zone."""

    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time,
                 zone: tzinfo | None = None) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.zone = zone or local_zone()
        self.recorder: EventRecorder = ctx.recorder(COMPONENT)
        self.cronjobs = ctx.factory.informer_for(CRONJOBS)
        self.jobs = ctx.factory.informer_for(JOBS)
        self.controller = Controller("cronjob", self.reconcile, workers=ctx.workers)
        self.controller.watch(self.cronjobs)
        self.controller.watch(self.jobs, self._owner_key)

    @staticmethod
    def _owner_key(job: Message) -> str | None:
        ref = get_controller_of(job)
        if ref is None or ref.kind != "CronJob":
            return None
        return f"{job.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.zone)

    def _time(self, ts: Any) -> datetime:
        # API times are instants; read them in the controller's zone, as Go's metav1.Time does.
        return datetime.fromtimestamp(ts_seconds(ts), self.zone)

    def _event(self, cj: Message, etype: str, reason: str, message: str) -> None:
        self.recorder.event(cj, etype, reason, message)

    def _jobs_of(self, cj: batch_pb2.CronJob) -> list[batch_pb2.Job]:
        out = []
        for job in self.jobs.store.by_index("namespace", cj.metadata.namespace):
            ref = get_controller_of(job)
            if ref is not None and ref.kind == "CronJob" and ref.name == cj.metadata.name and ref.uid == cj.metadata.uid:
                assert isinstance(job, batch_pb2.Job)
                out.append(job)
        return out

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
        cj = self.cronjobs.store.get_by_key(key)
        if cj is None:
            return None
        assert isinstance(cj, batch_pb2.CronJob)
        jobs = self._jobs_of(cj)
        data = object_to_dict(CRONJOBS, cj)
        sync = _Sync(status=dict(data.get("status") or {}))
        await self._cleanup_finished(cj, jobs, sync)
        await self._sync(cj, jobs, sync)
        if sync.dirty:
            data["status"] = sync.status
            await self.client.update_status(CRONJOBS, data)
        if sync.requeue_after is not None:
            return Result(requeue_after=max(sync.requeue_after, 0.0))
        return None

    # -- history ---------------------------------------------------------------------------

    async def _cleanup_finished(self, cj: batch_pb2.CronJob, jobs: list[batch_pb2.Job], sync: _Sync) -> None:
        spec = cj.spec
        if not spec.HasField("successfulJobsHistoryLimit") and not spec.HasField("failedJobsHistoryLimit"):
            return
        doomed = jobs_to_prune(jobs,
                               spec.successfulJobsHistoryLimit if spec.HasField("successfulJobsHistoryLimit") else None,
                               spec.failedJobsHistoryLimit if spec.HasField("failedJobsHistoryLimit") else None)
        for job in doomed:
            assert isinstance(job, batch_pb2.Job)
            if await self._delete_job(cj, job, sync):
                jobs.remove(job)

    async def _delete_job(self, cj: batch_pb2.CronJob, job: batch_pb2.Job, sync: _Sync) -> bool:
        """Delete a Job (its pods follow through the garbage collector) and forget it as active."""
        try:
            await self.client.delete(JOBS, job.metadata.name, namespace=job.metadata.namespace,
                                     propagation_policy="Background", uid=job.metadata.uid)
        except api.NotFound:
            pass
        except api.APIError as exc:
            self._event(cj, "Warning", "FailedDelete", f"Deleted job: {exc}")
            log.warning("deleting a job failed", key=f"{cj.metadata.namespace}/{cj.metadata.name}",
                        job=job.metadata.name, error=str(exc))
            return False
        self._remove_active(sync, job.metadata.uid)
        self._event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job.metadata.name}")
        return True

    @staticmethod
    def _remove_active(sync: _Sync, uid: str) -> None:
        active = sync.status.get("active") or []
        kept = [ref for ref in active if ref.get("uid") != uid]
        if len(kept) != len(active):
            sync.dirty = True
            if kept:
                sync.status["active"] = kept
            else:
                sync.status.pop("active", None)

    # -- one sync ----------------------------------------------------------------------------

    async def _sync(self, cj: batch_pb2.CronJob, jobs: list[batch_pb2.Job], sync: _Sync) -> None:
        now = self.now()
        ns, name = cj.metadata.namespace, cj.metadata.name
        active_uids = {ref.get("uid") for ref in sync.status.get("active") or []}
        children = set()
        for job in jobs:
            children.add(job.metadata.uid)
            finished = finished_condition(job)
            found = job.metadata.uid in active_uids
            if not found and not finished:
                # created by us but not recorded (a crash between create and status write), or by
                # someone else: look at the live CronJob before complaining
                try:
                    fresh = await self.client.get(CRONJOBS, name, namespace=ns)
                except api.NotFound:
                    return
                if any(ref.uid == job.metadata.uid for ref in fresh.status.active):  # type: ignore[attr-defined]
                    continue
                self._event(cj, "Warning", "UnexpectedJob",
                            f"Saw a job that the controller did not create or forgot: {job.metadata.name}")
            elif found and finished:
                self._remove_active(sync, job.metadata.uid)
                self._event(cj, "Normal", "SawCompletedJob",
                            f"Saw completed job: {job.metadata.name}, status: {finished}")
            if finished == "Complete" and job.status.HasField("completionTime"):
                done = job.status.completionTime
                current = sync.status.get("lastSuccessfulTime")
                done_text = _format_ts(ts_seconds(done))
                if current is None or _parse_rfc3339(current) < ts_seconds(done):
                    sync.status["lastSuccessfulTime"] = done_text
                    sync.dirty = True
        for ref in list(sync.status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:  # the cache may just be slow: ask the apiserver before dropping it
                await self.client.get(JOBS, ref.get("name", ""), namespace=ref.get("namespace") or ns)
            except api.NotFound:
                self._event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name', '')}")
                self._remove_active(sync, ref.get("uid", ""))
        if cj.metadata.HasField("deletionTimestamp"):
            return
        if cj.spec.HasField("timeZone"):
            try:
                load_location(cj.spec.timeZone)
            except CronParseError as exc:
                self._event(cj, "Warning", "UnknownTimeZone", f"invalid timeZone: {json.dumps(cj.spec.timeZone)}: "
                                                              f"{exc}")
                return
        if cj.spec.suspend:
            return
        try:
            schedule = parse_standard(self._format_schedule(cj, report=True))
        except CronParseError as exc:
            self._event(cj, "Warning", "UnparseableSchedule",
                        f"unparseable schedule: {json.dumps(cj.spec.schedule)} : {exc}")
            return
        creation = self._time(cj.metadata.creationTimestamp)
        last_text = sync.status.get("lastScheduleTime")
        last = self._time(parse_time(last_text)) if last_text else None
        deadline = cj.spec.startingDeadlineSeconds if cj.spec.HasField("startingDeadlineSeconds") else None

        def requeue() -> None:
            sync.requeue_after = next_schedule_time_duration(schedule, now, creation=creation, last_schedule=last)

        try:
            scheduled, missed = next_schedule_time(schedule, now, creation=creation, last_schedule=last,
                                                   starting_deadline=deadline)
        except UnsatisfiableSchedule as exc:
            self._event(cj, "Warning", "InvalidSchedule", f"invalid schedule: {cj.spec.schedule} : {exc}")
            return
        if scheduled is None:
            requeue()
            return
        if missed == "many":
            self._event(cj, "Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease "
                                                             ".spec.startingDeadlineSeconds or check clock skew")
            log.info("too many missed times", key=f"{ns}/{name}")
        if deadline is not None and scheduled + timedelta(seconds=deadline) < now:
            self._event(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: "
                                                       f"{_rfc1123z(scheduled)}")
            requeue()
            return
        wanted = job_name(name, scheduled)
        already = any(ref.get("name") == wanted for ref in sync.status.get("active") or [])
        if already or (last is not None and last == scheduled):
            requeue()
            return
        if cj.spec.concurrencyPolicy == "Forbid" and sync.status.get("active"):
            self._event(cj, "Normal", "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid")
            requeue()
            return
        if cj.spec.concurrencyPolicy == "Replace":
            for ref in list(sync.status.get("active") or []):
                try:
                    running = await self.client.get(JOBS, ref.get("name", ""), namespace=ref.get("namespace") or ns)
                except api.APIError as exc:
                    self._event(cj, "Warning", "FailedGet", f"Get job: {exc}")
                    raise
                assert isinstance(running, batch_pb2.Job)
                if not await self._delete_job(cj, running, sync):
                    raise RuntimeError(f"could not replace job {ns}/{running.metadata.name}")
        body = job_from_template(cj, scheduled)
        try:
            created = await self.client.create(JOBS, body, namespace=ns)
        except api.AlreadyExists:
            created = await self.client.get(JOBS, wanted, namespace=ns)
            ref = get_controller_of(created)
            if ref is None or ref.uid != cj.metadata.uid:
                return  # someone else's Job under our name: assume they keep the status
            if created.metadata.uid in {r.get("uid") for r in sync.status.get("active") or []}:  # type: ignore[attr-defined]
                return
            log.info("job already exists", key=f"{ns}/{name}", job=wanted)
        except api.APIError as exc:
            if not (isinstance(exc, api.Forbidden) and "being terminated" in str(exc)):
                self._event(cj, "Warning", "FailedCreate", f"Error creating job: {exc}")
            raise
        else:
            self._event(cj, "Normal", "SuccessfulCreate", f"Created job {wanted}")
            log.info("created job", key=f"{ns}/{name}", job=wanted,
                     resourceVersion=created.metadata.resourceVersion)  # type: ignore[attr-defined]
        cmeta = created.metadata  # type: ignore[attr-defined]
        sync.status.setdefault("active", []).append({
            "kind": JOBS.kind, "namespace": cmeta.namespace, "name": cmeta.name, "uid": cmeta.uid,
            "apiVersion": JOBS.api_version, "resourceVersion": cmeta.resourceVersion})
        sync.status["lastScheduleTime"] = _format_ts(scheduled.timestamp())
        sync.dirty = True
        last = scheduled
        requeue()

    def _format_schedule(self, cj: batch_pb2.CronJob, *, report: bool) -> str:
        """``formatSchedule``: a TZ= prefix in the schedule wins (with a warning); else timeZone."""
        schedule = cj.spec.schedule
        if "TZ" in schedule:
            if report:
                self._event(cj, "Warning", "UnsupportedSchedule",
                            f"CRON_TZ or TZ used in schedule {json.dumps(schedule)} is not officially supported, see "
                            "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")
            return schedule
        if cj.spec.HasField("timeZone"):
            return f"TZ={cj.spec.timeZone} {schedule}"
        return schedule


def _format_ts(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _rfc1123z(dt: datetime) -> str:
    """Go's ``time.RFC1123Z`` of the UTC time: ``Mon, 02 Jan 2006 15:04:05 -0700``."""
    return dt.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def new(ctx: ControllerContext) -> Controller:
    """Registry entry: the CronJob controller."""
    return CronJobController(ctx).controller
