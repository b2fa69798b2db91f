"""The CronJob controller: Jobs from a template on a cron schedule (Kubernetes' cronjob_controllerv2).

Why a cron engine of our own rather than croniter: Kubernetes parses ``spec.schedule`` with
robfig/cron v3 ``ParseStandard`` and steps through it with that library's ``Next``, and the
details are observable — a day-of-month/day-of-week pair is ORed only when neither field carries
the "star bit" (``*/10`` clears it, ``*`` keeps it), ``@every 1h`` is a constant delay from the
previous run, a wall time skipped by a DST change is skipped (croniter moves it to 03:00), and a
schedule that never fires (``0 0 30 Feb *``) gives up after five years. ``parse_standard`` and
``SpecSchedule.next`` follow robfig/cron (including Go's ``time.Date`` normalisation of
non-existent local times), checked against the conformance tables in
``../shared/conformance/cron_schedule.json``. API validation still uses croniter
(``kplane.api.validation.batch``) and accepts a few specs robfig rejects (``5-3``, day-of-week
``7``): the controller reports those with an ``UnparseableSchedule`` event, as Kubernetes does for
any schedule its parser refuses.

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
import os
import re
import time
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.podcontrol import get_controller_of, new_controller_ref, ts_seconds
from kplane.api import errors as api
from kplane.api.codec import parse_time
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
# Cron schedules (robfig/cron v3, ParseStandard)
# =============================================================================================

STAR_BIT = 1 << 63


class CronParseError(ValueError):
    """A schedule robfig/cron's standard parser rejects; the message is the library's."""


@dataclass(frozen=True)
class _Bounds:
    min: int
    max: int
    names: dict[str, int]


_MONTH_NAMES = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DOW_NAMES = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
SECONDS = _Bounds(0, 59, {})
MINUTES = _Bounds(0, 59, {})
HOURS = _Bounds(0, 23, {})
DOM = _Bounds(1, 31, {})
MONTHS = _Bounds(1, 12, _MONTH_NAMES)
DOW = _Bounds(0, 6, _DOW_NAMES)


def _bits(lo: int, hi: int, step: int) -> int:
    if step == 1:
        return ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)
    out = 0
    for i in range(lo, hi + 1, step):
        out |= 1 << i
    return out


def _all(b: _Bounds) -> int:
    return _bits(b.min, b.max, 1) | STAR_BIT


def _atoi(expr: str) -> int:
    """strconv.Atoi, with Go's error wording."""
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise CronParseError(f"failed to parse int from {expr}: strconv.Atoi: parsing {json.dumps(expr)}: "
                             f"invalid syntax")
    num = int(expr)
    if not -(2 ** 63) <= num < 2 ** 63:
        raise CronParseError(f"failed to parse int from {expr}: strconv.Atoi: parsing {json.dumps(expr)}: "
                             f"value out of range")
    if num < 0:
        raise CronParseError(f"negative number ({num}) not allowed: {expr}")
    return num


def _int_or_name(expr: str, names: dict[str, int]) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _atoi(expr)


def get_range(expr: str, b: _Bounds) -> int:
    """One range of a field (``*``, ``N``, ``N-M``, each optionally ``/step``) as a bitset;
    the star bit marks a bare ``*``/``?`` (or ``*/1``), which matters for the day-of-week rule."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end, extra = b.min, b.max, STAR_BIT
    else:
        start = _int_or_name(low_and_high[0], b.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], b.names)
        else:
            raise CronParseError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if single:  # "N/step" means "N-max/step"
            end = b.max
        if step > 1:
            extra = 0
    else:
        raise CronParseError(f"too many slashes: {expr}")
    if start < b.min:
        raise CronParseError(f"beginning of range ({start}) below minimum ({b.min}): {expr}")
    if end > b.max:
        raise CronParseError(f"end of range ({end}) above maximum ({b.max}): {expr}")
    if start > end:
        raise CronParseError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronParseError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def get_field(field: str, b: _Bounds) -> int:
    """A comma-separated list of ranges, ORed."""
    out = 0
    for expr in (e for e in field.split(",") if e):
        out |= get_range(expr, b)
    return out


def bit_values(bits: int, b: _Bounds) -> list[int]:
    """The values a field's bitset selects (for tests and for people)."""
    return [i for i in range(b.min, b.max + 1) if bits >> i & 1]


# -- times, the way Go's time package computes them -------------------------------------------

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _offset_at(instant: int, loc: tzinfo) -> int:
    off = datetime.fromtimestamp(instant, loc).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def go_date(year: int, month: int, day: int, hour: int, minute: int, second: int, loc: tzinfo) -> int:
    """``time.Date(...).Unix()``: out-of-range fields carry over (month 13, day 32, ...), and a
    wall time that does not exist or exists twice in ``loc`` gets Go's offset: the one in effect
    at the wall time read as UTC, re-checked once at the resulting instant."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    days = date(year, month, 1).toordinal() + day - 1 - _EPOCH_ORDINAL
    wall = days * 86400 + hour * 3600 + minute * 60 + second
    return wall - _offset_at(wall - _offset_at(wall, loc), loc)


def _wall(instant: int, loc: tzinfo) -> datetime:
    return datetime.fromtimestamp(instant, loc)


def _weekday(dt: datetime) -> int:
    return (dt.weekday() + 1) % 7  # Go: Sunday is 0


@dataclass(frozen=True)
class SpecSchedule:
    """A parsed 5-field schedule (seconds fixed at 0); ``location`` None means "the zone of the
    time asked about" (robfig's time.Local without a TZ= prefix)."""

    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    location: tzinfo | None = None

    def _day_matches(self, t: datetime) -> bool:
        dom_match = bool(1 << t.day & self.dom)
        dow_match = bool(1 << _weekday(t) & self.dow)
        if self.dom & STAR_BIT or self.dow & STAR_BIT:
            return dom_match and dow_match
        return dom_match or dow_match

    def next(self, t: datetime) -> datetime | None:
        """The first activation strictly after ``t`` (an aware datetime), in ``t``'s zone;
        None when there is none within five years."""
        if t.tzinfo is None:
            raise ValueError("cron: next() needs an aware datetime")
        orig = t.tzinfo
        loc = self.location or orig
        # the upcoming whole second
        u = int(t.timestamp() // 1) + 1
        added = False
        year_limit = _wall(u, loc).year + 5
        while True:  # WRAP
            w = _wall(u, loc)
            if w.year > year_limit:
                return None
            wrapped = False
            while not 1 << w.month & self.month:
                if not added:
                    added = True
                    u = go_date(w.year, w.month, 1, 0, 0, 0, loc)
                    w = _wall(u, loc)
                u = go_date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second, loc)
                w = _wall(u, loc)
                if w.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_matches(w):
                if not added:
                    added = True
                    u = go_date(w.year, w.month, w.day, 0, 0, 0, loc)
                    w = _wall(u, loc)
                u = go_date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second, loc)
                w = _wall(u, loc)
                # DST may have moved midnight: snap back to it
                if w.hour != 0:
                    u += (24 - w.hour) * 3600 if w.hour > 12 else -w.hour * 3600
                    w = _wall(u, loc)
                if w.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not 1 << w.hour & self.hour:
                if not added:
                    added = True
                    u = go_date(w.year, w.month, w.day, w.hour, 0, 0, loc)
                u += 3600
                w = _wall(u, loc)
                if w.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not 1 << w.minute & self.minute:
                if not added:
                    added = True
                    u -= u % 60
                u += 60
                w = _wall(u, loc)
                if w.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not 1 << w.second & self.second:
                if not added:
                    added = True
                u += 1
                w = _wall(u, loc)
                if w.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return _wall(u, orig)


@dataclass(frozen=True)
class ConstantDelaySchedule:
    """``@every <duration>``: the run after ``t`` is ``t`` (to the second) plus the delay."""

    delay: int  # whole seconds, at least 1

    def next(self, t: datetime) -> datetime | None:
        if t.tzinfo is None:
            raise ValueError("cron: next() needs an aware datetime")
        return t.replace(microsecond=0) + timedelta(seconds=self.delay)


Schedule = SpecSchedule | ConstantDelaySchedule

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds), with its error wording."""
    quoted = json.dumps(text, ensure_ascii=False)
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            if re.match(r"[0-9.]+$", s[pos:]):
                raise ValueError(f"time: missing unit in duration {quoted}")
            raise ValueError(f"time: invalid duration {quoted}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def _descriptor(spec: str, loc: tzinfo | None) -> Schedule:
    if spec in ("@yearly", "@annually"):
        return SpecSchedule(1, 1, 1, 1 << 1, 1 << 1, _all(DOW), loc)
    if spec == "@monthly":
        return SpecSchedule(1, 1, 1, 1 << 1, _all(MONTHS), _all(DOW), loc)
    if spec == "@weekly":
        return SpecSchedule(1, 1, 1, _all(DOM), _all(MONTHS), 1, loc)
    if spec in ("@daily", "@midnight"):
        return SpecSchedule(1, 1, 1, _all(DOM), _all(MONTHS), _all(DOW), loc)
    if spec == "@hourly":
        return SpecSchedule(1, 1, _all(HOURS), _all(DOM), _all(MONTHS), _all(DOW), loc)
    every = "@every "
    if spec.startswith(every):
        try:
            seconds = parse_go_duration(spec[len(every):])
        except ValueError as exc:
            raise CronParseError(f"failed to parse duration {spec}: {exc}") from None
        whole = max(int(seconds), 1)  # robfig: under a second becomes a second; sub-seconds dropped
        return ConstantDelaySchedule(whole)
    raise CronParseError(f"unrecognized descriptor: {spec}")


def load_location(name: str) -> tzinfo:
    """Go's ``time.LoadLocation``: "" and "UTC" are UTC, "Local" the controller's zone."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local_zone()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CronParseError(f"unknown time zone {name}") from None


def parse_standard(spec: str) -> Schedule:
    """robfig/cron ``ParseStandard``: five fields or a descriptor, optionally ``TZ=``/``CRON_TZ=``."""
    if not spec:
        raise CronParseError("empty spec string")
    loc: tzinfo | None = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, eq = spec.find(" "), spec.find("=")
        name = spec[eq + 1: space] if space > eq else spec[eq + 1:]
        try:
            loc = load_location(name)
        except CronParseError as exc:
            raise CronParseError(f"provided bad location {name}: {exc}") from None
        spec = spec[space:].strip() if space > 0 else ""
    if spec.startswith("@"):
        return _descriptor(spec, loc)
    fields = spec.split()
    if len(fields) != 5:
        raise CronParseError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    minute, hour, dom, month, dow = (get_field(f, b) for f, b in zip(fields, (MINUTES, HOURS, DOM, MONTHS, DOW),
                                                                     strict=True))
    return SpecSchedule(get_field("0", SECONDS), minute, hour, dom, month, dow, loc)


def local_zone() -> tzinfo:
    """The controller's own zone (Kubernetes evaluates a schedule without timeZone in the
    kube-controller-manager's local time): $TZ, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


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
