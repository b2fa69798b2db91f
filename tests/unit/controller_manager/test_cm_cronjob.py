"""CronJob: the robfig/cron-compatible schedule engine and the missed-schedule arithmetic, checked
against the upstream conformance tables, plus job naming, templates and history pruning."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from controller_manager.cronjob import (
    SCHEDULED_TIMESTAMP_ANNOTATION,
    UnsatisfiableSchedule,
    job_from_template,
    job_name,
    jobs_to_prune,
    most_recent_schedule_time,
    next_schedule_time,
    next_schedule_time_duration,
    rfc3339,
)
from kplane.api.codec import from_dict
from kplane.api.cron import (
    DOW,
    HOURS,
    MINUTES,
    MONTHS,
    SECONDS,
    STAR_BIT,
    ConstantDelaySchedule,
    CronParseError,
    SpecSchedule,
    _Bounds,
    bit_values,
    get_field,
    get_range,
    go_date,
    parse_go_duration,
    parse_standard,
)
from kplane.api.pb import batch_pb2

DOM_BOUNDS = _Bounds(1, 31, {})


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def must(text: str) -> datetime:
    value = at(text)
    assert value is not None
    return value


def same_instant(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.timestamp() == b.timestamp()


# -- robfig/cron: parsing and Next -------------------------------------------------------------


@pytest.mark.conformance("cron_schedule.json", "activation")
def test_activation(case: dict[str, Any]) -> None:
    """A schedule is active at t exactly when Next(t - 1s) == t."""
    t = must(case["time"])
    assert same_instant(parse_standard(case["spec"]).next(t - timedelta(seconds=1)), t) is case["expected_active"]


def _input_time(case: dict[str, Any]) -> datetime:
    t = must(case["time"])
    if case.get("time_location"):
        t = t.astimezone(zoneinfo.ZoneInfo(case["time_location"]))
    return t


@pytest.mark.conformance("cron_schedule.json", "next_standard_parser_derived")
def test_next_standard(case: dict[str, Any]) -> None:
    """Next(t) for 5-field schedules, TZ= prefixes, DST gaps and overlaps, impossible dates."""
    got = parse_standard(case["spec"]).next(_input_time(case))
    assert same_instant(got, at(case["expected_next"])), got


@pytest.mark.conformance("cron_schedule.json", "next_with_fixed_offset")
def test_next_in_the_input_times_offset(case: dict[str, Any]) -> None:
    """Without TZ= a schedule runs in the zone of the time it is asked about, fixed offsets too."""
    got = parse_standard(case["spec"]).next(_input_time(case))
    want = at(case["expected_next"])
    assert same_instant(got, want) and got is not None and want is not None
    assert got.utcoffset() == want.utcoffset()


@pytest.mark.conformance("cron_schedule.json", "parse_errors")
def test_parse_errors(case: dict[str, Any]) -> None:
    """Bad standard schedules are refused with robfig's words."""
    if case["parser"] != "standard":
        pytest.skip("kplane parses only the standard (5-field) format, as Kubernetes does")
    with pytest.raises(CronParseError) as err:
        parse_standard(case["spec"])
    if case.get("error_contains"):
        assert case["error_contains"] in str(err.value)
    if case.get("oracle_error"):
        assert str(err.value) == case["oracle_error"]


def _field(bits: int, bounds: _Bounds) -> Any:
    if bits & STAR_BIT and bit_values(bits, bounds) == list(range(bounds.min, bounds.max + 1)):
        return "*"
    return bit_values(bits, bounds)


@pytest.mark.conformance("cron_schedule.json", "parse_valid")
def test_parse_valid(case: dict[str, Any]) -> None:
    """Fields become the expected value sets (and star bits); @every a constant delay."""
    if case["parser"] != "standard":
        pytest.skip("kplane parses only the standard (5-field) format, as Kubernetes does")
    sched = parse_standard(case["spec"])
    expected = case["expected"]
    if "constant_delay" in expected:
        assert isinstance(sched, ConstantDelaySchedule)
        assert sched.delay == parse_go_duration(expected["constant_delay"])
        return
    assert isinstance(sched, SpecSchedule)
    got = {"second": _field(sched.second, SECONDS), "minute": _field(sched.minute, MINUTES),
           "hour": _field(sched.hour, HOURS), "dom": _field(sched.dom, DOM_BOUNDS),
           "month": _field(sched.month, MONTHS), "dow": _field(sched.dow, DOW),
           "location": "Local" if sched.location is None else str(sched.location)}
    assert got == expected


@pytest.mark.conformance("cron_schedule.json", "field_range")
def test_field_range(case: dict[str, Any]) -> None:
    """One range expression: its values, its star bit, or its error."""
    bounds = _Bounds(case["min"], case["max"], {})
    if case["error_contains"]:
        with pytest.raises(CronParseError, match=case["error_contains"]):
            get_range(case["expr"], bounds)
        return
    bits = get_range(case["expr"], bounds)
    assert bit_values(bits, bounds) == case["expected_values"]
    assert bool(bits & STAR_BIT) is case["star"]


@pytest.mark.conformance("cron_schedule.json", "field_list")
def test_field_list(case: dict[str, Any]) -> None:
    """Comma lists OR their ranges."""
    bounds = _Bounds(case["min"], case["max"], {})
    assert bit_values(get_field(case["expr"], bounds), bounds) == case["expected_values"]


def test_descriptors_and_every() -> None:
    """@hourly/@daily/... are their 5-field equivalents; @every is a delay from the previous run."""
    t = must("2024-02-29T10:17:30Z")
    assert parse_standard("@hourly").next(t) == must("2024-02-29T11:00:00Z")
    assert parse_standard("@daily").next(t) == must("2024-03-01T00:00:00Z")
    assert parse_standard("@midnight").next(t) == must("2024-03-01T00:00:00Z")
    assert parse_standard("@weekly").next(t) == must("2024-03-03T00:00:00Z")  # a Sunday
    assert parse_standard("@monthly").next(t) == must("2024-03-01T00:00:00Z")
    assert parse_standard("@yearly").next(t) == parse_standard("@annually").next(t) == must("2025-01-01T00:00:00Z")
    assert parse_standard("@every 1h30m").next(t.replace(microsecond=500)) == must("2024-02-29T11:47:30Z")
    assert parse_standard("@every 10ms") == ConstantDelaySchedule(1)
    with pytest.raises(CronParseError, match="unrecognized descriptor: @fortnightly"):
        parse_standard("@fortnightly")


def test_robfig_rejects_what_croniter_accepts() -> None:
    """Reversed ranges and day-of-week 7 are errors for Kubernetes' parser."""
    with pytest.raises(CronParseError, match=r"beginning of range \(5\) beyond end of range \(3\): 5-3"):
        parse_standard("5-3 * * * *")
    with pytest.raises(CronParseError, match=r"end of range \(7\) above maximum \(6\): 7"):
        parse_standard("* * * * 7")
    with pytest.raises(CronParseError, match="provided bad location Mars/Olympus"):
        parse_standard("TZ=Mars/Olympus * * * * *")


def test_day_of_month_or_day_of_week() -> None:
    """Both restricted: either matches; a starred one (even */1) makes both required."""
    t = must("2012-07-09T00:00:00Z")  # a Monday
    assert parse_standard("0 0 10 * Sun").next(t) == must("2012-07-10T00:00:00Z")  # OR: the 10th comes first
    assert parse_standard("0 0 * * Sun").next(t) == must("2012-07-15T00:00:00Z")  # AND with *: Sunday
    assert parse_standard("0 0 */1 * Sun").next(t) == must("2012-07-15T00:00:00Z")  # */1 keeps the star bit
    assert parse_standard("0 0 */2 * Sun").next(t) == must("2012-07-11T00:00:00Z")  # */2 clears it: OR


def test_go_date_normalises_like_go() -> None:
    """Month and day overflow carry; a wall time in a DST gap lands where Go puts it."""
    assert go_date(2023, 13, 1, 0, 0, 0, UTC) == int(must("2024-01-01T00:00:00Z").timestamp())
    assert go_date(2023, 2, 29, 0, 0, 0, UTC) == int(must("2023-03-01T00:00:00Z").timestamp())
    ny = zoneinfo.ZoneInfo("America/New_York")
    # 02:30 does not exist on 2012-03-11 in New York; Go resolves it to 01:30 EST (06:30Z)
    assert go_date(2012, 3, 11, 2, 30, 0, ny) == int(must("2012-03-11T06:30:00Z").timestamp())


def test_impossible_schedule_gives_up() -> None:
    """February 30th never comes: Next is None (robfig's zero time) after five years."""
    assert parse_standard("0 0 30 2 *").next(must("2020-01-01T00:00:00Z")) is None


# -- the CronJob controller's arithmetic ---------------------------------------------------------


@pytest.mark.conformance("cronjob_controller.json", "most_recent_schedule_time")
def test_most_recent_schedule_time(case: dict[str, Any]) -> None:
    """The earliest time considered, the most recent unmet time and how many were missed."""
    sched = parse_standard(case["schedule"])
    kwargs = dict(creation=must(case["creation"]), last_schedule=at(case["last"]), starting_deadline=case["sds"],
                  include_starting_deadline=case["include_sds"])
    if case.get("expect_error"):
        with pytest.raises(UnsatisfiableSchedule):
            most_recent_schedule_time(sched, must(case["now"]), **kwargs)  # type: ignore[arg-type]
        return
    earliest, recent, missed = most_recent_schedule_time(sched, must(case["now"]), **kwargs)  # type: ignore[arg-type]
    assert earliest == at(case["expected_earliest"])
    assert recent == at(case["expected_recent"])
    assert missed == case["expected_missed"]


@pytest.mark.conformance("cronjob_controller.json", "next_schedule_time")
def test_next_schedule_time(case: dict[str, Any]) -> None:
    """Only the most recent missed time is run; a deadline narrows the window."""
    sched = parse_standard(case["schedule"])
    kwargs = dict(creation=must(case["creation"]), last_schedule=at(case["last"]), starting_deadline=case["sds"])
    if case.get("expect_error"):
        with pytest.raises(UnsatisfiableSchedule):
            next_schedule_time(sched, must(case["now"]), **kwargs)  # type: ignore[arg-type]
        return
    got, missed = next_schedule_time(sched, must(case["now"]), **kwargs)  # type: ignore[arg-type]
    if case["expected"] == "non-nil":
        assert got is not None
        assert got == at(case["oracle_value"])
        assert missed == case["oracle_missed"]
    else:
        assert got == at(case["expected"])


@pytest.mark.conformance("cronjob_controller.json", "next_schedule_time_duration")
def test_next_schedule_time_duration(case: dict[str, Any]) -> None:
    """The requeue delay: the next run after the most recent one, plus 100 ms."""
    got = next_schedule_time_duration(parse_standard(case["schedule"]), must(case["now"]),
                                      creation=must(case["creation"]), last_schedule=at(case["last"]))
    assert got is not None
    assert round(got * 1000) == case["expected_duration_ms"]


def cronjob(name: str = "mycronjob", *, time_zone: str | None = None,
            annotations: dict[str, str] | None = None) -> batch_pb2.CronJob:
    spec: dict[str, Any] = {"schedule": "0 * * * *", "jobTemplate": {
        "metadata": {"labels": {"team": "a"}, "annotations": annotations or {}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                       "restartPolicy": "OnFailure"}}}}}
    if time_zone is not None:
        spec["timeZone"] = time_zone
    return from_dict({"metadata": {"name": name, "namespace": "ns", "uid": "cj-uid"}, "spec": spec}, batch_pb2.CronJob)


@pytest.mark.conformance("cronjob_controller.json", "job_from_template")
def test_job_from_template(case: dict[str, Any]) -> None:
    """The Job carries the template's labels and annotations plus the scheduled-time annotation
    in the CronJob's time zone, a controller reference, and a per-minute name."""
    scheduled = must(case["scheduled_time"])
    job = job_from_template(cronjob(time_zone=case["time_zone"], annotations=case["input_annotations"]), scheduled)
    meta = job["metadata"]
    assert meta["name"].startswith("mycronjob-")
    assert meta["name"] == f"mycronjob-{int(scheduled.timestamp()) // 60}"
    assert meta["labels"] == {"team": "a"}
    assert meta["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == case["expected_scheduled_annotation"]
    assert len(meta["annotations"]) == case["expected_number_of_annotations"]
    assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "mycronjob",
                                        "uid": "cj-uid", "controller": True, "blockOwnerDeletion": True}]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_job_name_is_minutes_since_the_epoch() -> None:
    """getTimeHashInMinutes: the same scheduled minute always names the same Job."""
    t = must("2016-05-19T10:00:00Z")
    assert job_name("hello", t) == "hello-24394200"
    assert job_name("hello", t + timedelta(seconds=59)) == "hello-24394200"


def test_rfc3339_like_go() -> None:
    assert rfc3339(must("2016-05-19T10:00:00Z")) == "2016-05-19T10:00:00Z"
    assert rfc3339(must("2016-05-19T10:00:00Z").astimezone(timezone(timedelta(hours=2)))) == "2016-05-19T12:00:00+02:00"


def finished_job(name: str, kind: str, start: int | None) -> batch_pb2.Job:
    job = batch_pb2.Job()
    job.metadata.name = name
    if start is not None:
        job.status.startTime.seconds = start
    if kind:
        job.status.conditions.add(type=kind, status="True")
    return job


def test_history_limits_prune_the_oldest_finished_jobs() -> None:
    """Beyond the limits, finished Jobs go oldest first (unstarted last); running ones stay."""
    jobs = [finished_job("s1", "Complete", 100), finished_job("s2", "Complete", 300),
            finished_job("s3", "Complete", 200), finished_job("s4", "Complete", None),
            finished_job("f1", "Failed", 50), finished_job("f2", "Failed", 60), finished_job("run", "", 10)]
    assert [j.metadata.name for j in jobs_to_prune(jobs, 2, 1)] == ["s1", "s3", "f1"]
    assert [j.metadata.name for j in jobs_to_prune(jobs, None, 0)] == ["f1", "f2"]
    assert jobs_to_prune(jobs, 10, 10) == []


def test_go_durations() -> None:
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5h") == 5400
    assert parse_go_duration("90s") == 90
    with pytest.raises(ValueError, match='time: invalid duration "Xm"'):
        parse_go_duration("Xm")
    with pytest.raises(ValueError, match="missing unit"):
        parse_go_duration("10")
