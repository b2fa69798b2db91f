"""Per-container back-off, with the semantics of Kubernetes' ``flowcontrol.Backoff`` as the
kubelet uses it for crash loops and image pulls.

Timeline of a container that keeps failing (base 10 s, cap 5 min): the first exit restarts at
once and arms 10 s; the next exit waits until 10 s after *that exit* (``CrashLoopBackOff``),
restarts, and arms 20 s; then 40 s, 80 s, 160 s, 300 s, 300 s... An entry that has not been
touched for twice the cap (10 minutes: the container ran that long) is forgotten, so the next
failure restarts at once again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, base: float = 10.0, cap: float = 300.0, *, clock: Callable[[], float] = time.time) -> None:
        self.base = base
        self.cap = cap
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, at: float) -> bool:
        return at - entry.last_update > 2 * self.cap

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        """Whether a restart for an event (an exit) at ``event_time`` must still wait."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return False
        return self._clock() - event_time < entry.delay

    def next(self, key: str, event_time: float) -> None:
        """Record that we act on the event at ``event_time`` now: arm (or double) the delay."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            self._entries[key] = _Entry(self.base, event_time)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last_update = event_time

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def retry_at(self, key: str, event_time: float) -> float:
        """When a restart for the event at ``event_time`` may happen (unix seconds)."""
        entry = self._entries.get(key)
        return event_time + entry.delay if entry else event_time

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def format_delay(seconds: float) -> str:
    """Go's time.Duration.String() for whole and fractional seconds: 10s, 1m20s, 5m0s, 500ms."""
    if seconds < 1:
        ms = round(seconds * 1000)
        return f"{ms}ms"
    whole = int(seconds)
    frac = seconds - whole
    minutes, secs = divmod(whole, 60)
    sec_text = f"{secs}" if frac < 1e-9 else f"{secs + frac:g}"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"{hours}h{minutes}m{sec_text}s"
        return f"{minutes}m{sec_text}s"
    return f"{sec_text}s"
