"""Work queues with client-go's `workqueue` contract, for asyncio.

Three layers, each adding one idea (as in client-go):

- `WorkQueue`: dedup + exclusive processing. Handlers `add(key)`; workers loop
  `key = await q.get()` → `sync(key)` → `q.done(key)`.
- `DelayingQueue`: `add_after(key, seconds)`, via one background task and a heap.
- `RateLimitingQueue`: `add_rate_limited(key)` backs off per a `RateLimiter`; `forget(key)` on
  success resets the back-off.

The worker loop of a controller::

    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
        except Exception:
            queue.add_rate_limited(key)   # retry later, backing off
        else:
            queue.forget(key)             # success: reset the back-off
        finally:
            queue.done(key)               # always: releases the key to other workers

Everything runs on one event loop; nothing here is thread-safe (and nothing needs locks: no
method awaits while the queue's state is inconsistent).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from kplane.client.ratelimit import RateLimiter, default_controller_rate_limiter

__all__ = ["DelayingQueue", "RateLimitingQueue", "ShutDown", "WorkQueue"]

K = TypeVar("K", bound=Hashable)
Clock = Callable[[], float]

# Created once per process (prometheus-client refuses a second registration of a name); each
# named queue uses its own `name` label. Unnamed queues record nothing.
_LATENCY_BUCKETS = (1e-5, 1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)
_DEPTH = Gauge("workqueue_depth", "Keys waiting to be processed (queued or re-added while processing)",
               ["name"])
_ADDS = Counter("workqueue_adds_total", "Keys added (not counting adds deduplicated away)", ["name"])
_QUEUE_LATENCY = Histogram("workqueue_queue_duration_seconds",
                           "Seconds a key waits in the queue before a worker gets it", ["name"],
                           buckets=_LATENCY_BUCKETS)
_WORK_DURATION = Histogram("workqueue_work_duration_seconds",
                           "Seconds between a worker getting a key and calling done", ["name"],
                           buckets=_LATENCY_BUCKETS)
_RETRIES = Counter("workqueue_retries_total", "Delayed (add_after / rate-limited) adds", ["name"])


class ShutDown(Exception):
    """Raised by `WorkQueue.get` once the queue is shut down and has nothing left to hand out."""


class _QueueMetrics(Generic[K]):
    """The prometheus series of one named queue, plus the per-key timestamps latencies need."""

    def __init__(self, name: str, clock: Clock) -> None:
        self._clock = clock
        self._depth = _DEPTH.labels(name)
        self._adds = _ADDS.labels(name)
        self._queue_latency = _QUEUE_LATENCY.labels(name)
        self._work_duration = _WORK_DURATION.labels(name)
        self._retries = _RETRIES.labels(name)
        # Keys in these dicts are exactly the dirty / processing keys of the queue.
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}

    def added(self, key: K, depth: int) -> None:
        self._adds.inc()
        self._depth.set(depth)
        self._added_at[key] = self._clock()

    def got(self, key: K, depth: int) -> None:
        now = self._clock()
        self._depth.set(depth)
        added_at = self._added_at.pop(key, None)
        if added_at is not None:
            self._queue_latency.observe(max(0.0, now - added_at))
        self._started_at[key] = now

    def done(self, key: K) -> None:
        started_at = self._started_at.pop(key, None)
        if started_at is not None:
            self._work_duration.observe(max(0.0, self._clock() - started_at))

    def retried(self) -> None:
        self._retries.inc()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WorkQueue(Generic[K]):
    """A FIFO of keys that hands each key to at most one worker at a time and queues it at most once.

    Invariants (state only changes inside non-awaiting methods, so they hold at every await):
    - every key in `_queue` is in `_dirty` and not in `_processing`; `_queue` has no duplicates;
    - a key in `_dirty` but not in `_queue` is in `_processing`: `done` re-queues it;
    - a key in `_processing` was returned by `get` and `done` has not been called for it yet,
      so two workers never hold the same key;
    - otherwise keys come out in the order they were first added (FIFO).
    """

    def __init__(self, *, name: str | None = None, clock: Clock = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        # Futures of `get` calls waiting for a key, oldest first; `_drainers` for shutdown_with_drain.
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drainers: list[asyncio.Future[None]] = []
        self._shutting_down = False
        self._drain = False
        self._metrics: _QueueMetrics[K] | None = _QueueMetrics(name, clock) if name else None

    def __len__(self) -> int:
        """Keys ready to be handed out (not counting keys being processed); informational only."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        """Mark `key` as needing processing; a no-op if it is already waiting or the queue is shut down."""
        if self._shutting_down:
            return  # a stopping controller takes no new work
        if key in self._dirty:
            return  # already waiting: one processing will see the latest state (level-based)
        self._dirty.add(key)
        if self._metrics is not None:
            self._metrics.added(key, len(self._dirty))
        if key in self._processing:
            return  # a worker holds it; `done` re-queues it so it is never processed twice at once
        self._queue.append(key)
        self._wake_one_getter()

    async def get(self) -> K:
        """Wait for a key and take it; the caller must call `done(key)` when finished with it.

        Raises `ShutDown` once the queue is shut down and empty. Keys queued before `shutdown`
        are still handed out (client-go semantics), so workers finish the backlog.
        """
        while not self._queue:
            if self._shutting_down:
                raise ShutDown
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                try:
                    self._getters.remove(waiter)
                except ValueError:
                    pass  # already popped by the waker
                # We may have been woken for a key and then cancelled: pass the wake-up on so the
                # key is not left sitting while other getters sleep.
                if self._queue:
                    self._wake_one_getter()
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        if self._metrics is not None:
            self._metrics.got(key, len(self._dirty))
        return key

    def done(self, key: K) -> None:
        """Release `key`; if it was added again while being processed, queue it again now.

        A key that is not being processed (never handed out, or `done` twice) is ignored: re-queueing
        it would put a duplicate in the queue.
        """
        if key not in self._processing:
            return
        self._processing.remove(key)
        if self._metrics is not None:
            self._metrics.done(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one_getter()
        if not self._processing:
            self._wake_drainers()

    def shutdown(self) -> None:
        """Accept no more adds and wake every waiting `get`; also ends a pending `shutdown_with_drain`."""
        self._drain = False
        self._shut_down()

    async def shutdown_with_drain(self) -> None:
        """Like `shutdown`, then wait until every key handed out by `get` is `done`.

        Workers must keep calling `done`, or this waits forever; calling `shutdown` meanwhile stops
        the wait. Keys still queued are not waited for (client-go semantics).
        """
        self._drain = True
        self._shut_down()
        while self._processing and self._drain:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drainers.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._drainers:
                    self._drainers.remove(waiter)

    def _shut_down(self) -> None:
        self._shutting_down = True
        while self._getters:
            _resolve(self._getters.popleft())
        self._wake_drainers()

    def _wake_one_getter(self) -> None:
        # One key appended → one getter woken; a woken getter that finds the queue empty (another
        # worker took the key without waiting) simply waits again.
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            _resolve(waiter)


class DelayingQueue(WorkQueue[K]):
    """A `WorkQueue` that can add a key later: `add_after(key, seconds)`.

    One background task (started lazily on the running loop, gone when nothing is waiting or the
    queue shuts down) sleeps until the earliest ready time, then `add`s every ready key. Ready times
    come from the injected `clock`; the task re-reads the clock at least every `heartbeat` seconds
    (client-go's maxWait insurance, and what lets a fake clock drive it in tests).
    """

    def __init__(self, *, name: str | None = None, clock: Clock = time.monotonic,
                 heartbeat: float = 10.0) -> None:
        super().__init__(name=name, clock=clock)
        if not heartbeat > 0:
            raise ValueError("heartbeat must be > 0")
        self._heartbeat = heartbeat
        # `_waiting[key] = (ready_at, seq)` is the earliest time asked for `key`. The heap holds that
        # entry as (ready_at, seq, key), plus stale entries (seq no longer in `_waiting`) left behind
        # when a key's time moved earlier; they are skipped when popped. `seq` is unique, so keys
        # are never compared.
        self._waiting: dict[K, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._waiting_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None

    def add_after(self, key: K, delay_seconds: float) -> None:
        """Add `key` once `delay_seconds` have passed (now if <= 0); the earliest pending time wins."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.retried()
        if delay_seconds <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()  # before touching state: a delay needs a loop to fire on
        ready_at = self._clock() + delay_seconds
        current = self._waiting.get(key)
        if current is not None and current[0] <= ready_at:
            return  # already due sooner: a later request never postpones it (client-go)
        seq = next(self._seq)
        self._waiting[key] = (ready_at, seq)
        heapq.heappush(self._heap, (ready_at, seq, key))
        if len(self._heap) > 2 * len(self._waiting) + 64:
            self._compact()
        if self._waiting_task is None or self._waiting_task.done():
            self._waiting_task = loop.create_task(
                self._waiting_loop(), name=f"workqueue-delay:{self.name or ''}")
        elif self._heap[0][1] == seq and self._wake is not None:
            _resolve(self._wake)  # the new key is due before the task's current timer fires

    def _compact(self) -> None:
        self._heap = [(ready_at, seq, key) for key, (ready_at, seq) in self._waiting.items()]
        heapq.heapify(self._heap)

    def _add_ready(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            ready_at, seq, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == (ready_at, seq):
                del self._waiting[key]
                self.add(key)

    async def _waiting_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._shutting_down:
            now = self._clock()
            self._add_ready(now)
            if not self._heap:
                return  # nothing waiting; the next add_after starts a new task
            wake: asyncio.Future[None] = loop.create_future()
            timer = loop.call_later(max(0.0, min(self._heap[0][0] - now, self._heartbeat)), _resolve, wake)
            self._wake = wake
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None

    def _shut_down(self) -> None:
        super()._shut_down()
        # Delayed keys would be refused by `add` anyway; drop them and let the task end.
        self._waiting.clear()
        self._heap.clear()
        if self._wake is not None and not self._wake.get_loop().is_closed():
            _resolve(self._wake)


class RateLimitingQueue(DelayingQueue[K]):
    """A `DelayingQueue` whose `add_rate_limited` waits as long as its `RateLimiter` says.

    Call `forget(key)` when a key is handled successfully (or given up on), or the limiter keeps
    backing it off. `forget` only resets the limiter; the worker still calls `done`.
    """

    def __init__(self, rate_limiter: RateLimiter | None = None, *, name: str | None = None,
                 clock: Clock = time.monotonic, heartbeat: float = 10.0) -> None:
        super().__init__(name=name, clock=clock, heartbeat=heartbeat)
        self.rate_limiter: RateLimiter = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock=clock))

    def add_rate_limited(self, key: K) -> None:
        """Add `key` after the limiter's delay for it (which records one more requeue)."""
        if self._shutting_down:
            return  # don't charge the limiter (tokens, failures) for an add that would be dropped
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)
