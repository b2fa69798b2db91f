"""Cron schedules as Kubernetes reads them: robfig/cron v3 ``ParseStandard`` and ``Next``.

Why a cron engine of our own rather than croniter: Kubernetes parses ``spec.schedule`` with
robfig/cron, and the details are observable — a day-of-month/day-of-week pair is ORed only when
neither field carries the "star bit" (``*/10`` clears it, ``*`` keeps it), ``@every 1h`` is a
constant delay from the previous run, a wall time skipped by a DST change is skipped (croniter
moves it to 03:00), a schedule that never fires (``0 0 30 Feb *``) gives up after five years, and
``5-3`` or a day-of-week ``7`` are errors. ``parse_standard`` and ``SpecSchedule.next`` follow
robfig/cron (including Go's ``time.Date`` normalisation of non-existent local times), checked
against ``../shared/conformance/cron_schedule.json``. It lives in ``kplane.api`` because API
validation (``kplane.api.validation.batch``) and the CronJob controller must agree on what a
schedule means.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

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


