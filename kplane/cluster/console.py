"""The launcher's console: component lines prefixed with a coloured, padded name.

Components write structlog JSON lines (etcd writes zap JSON); in console mode each line is
re-rendered as ``apiserver  | 22:01:40.123 info  serving address=127.0.0.1:6443``; in JSON mode the
line is passed through with ``component`` added. Lines that are not JSON (tracebacks, panics) are
shown as they are.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from kplane.logs import use_json

_LEVELS = {
    "trace": 5,
    "debug": 10,
    "info": 20,
    "notice": 25,
    "warn": 30,
    "warning": 30,
    "error": 40,
    "err": 40,
    "critical": 50,
    "dpanic": 50,
    "panic": 50,
    "fatal": 50,
}

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_PALETTE = ["\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[33m", "\x1b[34m", "\x1b[96m", "\x1b[92m", "\x1b[95m"]
_FIXED = {"kplane": "\x1b[1;37m", "etcd": "\x1b[36m", "apiserver": "\x1b[32m", "scheduler": "\x1b[35m"}
_LEVEL_COLOURS = {30: "\x1b[33m", 40: "\x1b[31m", 50: "\x1b[1;31m"}

# Keys rendered specially (or dropped) in console mode.
_SKIP_KEYS = {"event", "msg", "level", "timestamp", "ts", "time", "component", "caller", "logger"}


def level_number(name: Any) -> int | None:
    """The numeric level of a level name from structlog or zap (``warn``, ``error``...), or None."""
    if not isinstance(name, str):
        return None
    return _LEVELS.get(name.strip().lower())


def parse_json_line(line: str) -> dict[str, Any] | None:
    """The JSON object on ``line``, or None when it is not one."""
    s = line.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return None
    try:
        doc = json.loads(s)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _short_time(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).astimezone().strftime("%H:%M:%S.%f")[:-3]
    if isinstance(value, str) and len(value) >= 19 and value[10] in "T ":
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value[11:23]
        if dt.tzinfo is not None:
            dt = dt.astimezone()
        return dt.strftime("%H:%M:%S.%f")[:-3]
    return ""


def _value(v: Any) -> str:
    if isinstance(v, str):
        return v if v and not any(c.isspace() for c in v) and '"' not in v else json.dumps(v)
    return json.dumps(v, separators=(",", ":"), default=str)


def render_fields(doc: dict[str, Any]) -> tuple[int | None, str]:
    """(level, text) for a structlog/zap JSON line in console form, without the name prefix."""
    level_name = doc.get("level")
    level = level_number(level_name)
    when = _short_time(doc.get("timestamp", doc.get("ts", doc.get("time"))))
    event = doc.get("event", doc.get("msg", ""))
    rest = " ".join(f"{k}={_value(v)}" for k, v in doc.items() if k not in _SKIP_KEYS)
    lvl = str(level_name).lower() if level_name is not None else ""
    parts = [p for p in (when, f"{lvl:<5}" if lvl else "", str(event), rest) if p]
    return level, " ".join(parts)


class Console:
    """Thread-safe line writer shared by the launcher and the log pumps of its components."""

    def __init__(self, stream: TextIO | None = None, fmt: str = "auto", names: Iterable[str] = ()) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.json = use_json(fmt, self.stream)
        isatty = getattr(self.stream, "isatty", None)
        self.color = not self.json and bool(callable(isatty) and isatty()) and "NO_COLOR" not in os.environ
        self.width = 10
        self._colours: dict[str, str] = {}
        self._lock = threading.Lock()
        self.set_names(names)

    def set_names(self, names: Iterable[str]) -> None:
        """Pad prefixes to the longest of ``names`` (at least 10 wide) and give each a colour."""
        for n in names:
            self.width = max(self.width, len(n) + 1)
            self._colour(n)

    def _colour(self, name: str) -> str:
        c = self._colours.get(name)
        if c is None:
            c = _FIXED.get(name) or _PALETTE[len(self._colours) % len(_PALETTE)]
            self._colours[name] = c
        return c

    def prefix(self, name: str) -> str:
        padded = f"{name:<{self.width}}| "
        if not self.color:
            return padded
        return f"{self._colour(name)}{padded}{_RESET}"

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text if text.endswith("\n") else text + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # console gone (closed pipe): the log files still have everything

    def component_line(self, name: str, line: str, min_level: str = "info") -> None:
        """Show one line a component wrote, unless its level is below ``min_level``."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        doc = parse_json_line(line)
        threshold = level_number(min_level) or 0
        if doc is not None:
            level = level_number(doc.get("level"))
            if level is not None and level < threshold:
                return
            if self.json:
                doc.setdefault("component", name)
                self._write(json.dumps(doc, separators=(",", ":"), default=str))
                return
            level, text = render_fields(doc)
            if self.color and level is not None and level in _LEVEL_COLOURS:
                text = f"{_LEVEL_COLOURS[level]}{text}{_RESET}"
            self._write(self.prefix(name) + text)
            return
        if self.json:
            self._write(json.dumps({"component": name, "event": line}))
        else:
            self._write(self.prefix(name) + line)

    def say(self, event: str, level: str = "info", **fields: Any) -> None:
        """A message from the launcher itself (component ``kplane``)."""
        if self.json:
            doc: dict[str, Any] = {
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "level": level,
                "component": "kplane",
                "event": event,
                **fields,
            }
            self._write(json.dumps(doc, default=str))
            return
        rest = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        text = f"{event} {rest}" if rest else event
        lvl = level_number(level) or 20
        if self.color and lvl in _LEVEL_COLOURS:
            text = f"{_LEVEL_COLOURS[lvl]}{text}{_RESET}"
        self._write(self.prefix("kplane") + f"{time.strftime('%H:%M:%S')} {text}")

    def report(self, event: str, lines: Iterable[str], level: str = "error", **fields: Any) -> None:
        """A launcher message with detail lines: one JSON object, or the event then indented lines."""
        items = list(lines)
        if self.json:
            self.say(event, level, **fields, lines=items)
            return
        self.say(event, level, **fields)
        for line in items:
            self.say(f"    {line}", "info")

    def block(self, lines: Iterable[str], title: str | None = None) -> None:
        """Unprefixed lines (the summary after start-up); one JSON object in JSON mode."""
        items = list(lines)
        if self.json:
            self._write(json.dumps({"component": "kplane", "event": title or "", "lines": items}))
            return
        out: list[str] = []
        if title:
            out.append(f"{_BOLD}{title}{_RESET}" if self.color else title)
        out.extend(items)
        self._write("\n".join(out))

    def dim(self, text: str) -> str:
        return f"{_DIM}{text}{_RESET}" if self.color else text
