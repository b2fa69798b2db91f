"""Rate limiters for requeueing work items, with client-go's `workqueue` semantics.

A limiter answers "how long should this item wait before it is retried?" (`when`), and forgets an
item once it has been handled successfully (`forget`). `RateLimitingQueue.add_rate_limited` is
`add_after(key, limiter.when(key))`.

- `ItemExponentialFailureRateLimiter`: per-item exponential back-off, base * 2**failures, capped.
- `ItemFastSlowRateLimiter`: a few quick retries, then slow ones.
- `BucketRateLimiter`: one token bucket shared by all items (overall retry QPS).
- `MaxOfRateLimiter`: the worst (longest) answer of several limiters.

Every limiter takes `clock` (monotonic seconds) so tests drive time with a fake. None of them is
thread-safe: they are used from one asyncio event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Protocol

Clock = Callable[[], float]


class RateLimiter(Protocol):
    """What a `RateLimitingQueue` needs from a limiter."""

    def when(self, item: Hashable) -> float:
        """Seconds the item should wait before being retried; records the retry."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking the item (it succeeded, or we gave up on it)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many times the item has been retried since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-item back-off: the n-th retry (counting from 0) waits base_delay * 2**n, at most max_delay."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must be >= 0")
        self.base_delay = base_delay
        self.max_delay = max_delay
        # failures[item] = number of `when` calls since the item was last forgotten.
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        try:
            backoff = math.ldexp(self.base_delay, exponent)  # base_delay * 2**exponent
        except OverflowError:
            # After ~1000 failures the float overflows; the cap was reached long before.
            return self.max_delay
        return min(backoff, self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class ItemFastSlowRateLimiter:
    """Per-item: the first `max_fast_attempts` retries wait `fast_delay`, later ones `slow_delay`."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        if fast_delay < 0 or slow_delay < 0 or max_fast_attempts < 0:
            raise ValueError("delays and max_fast_attempts must be >= 0")
        self.fast_delay = fast_delay
        self.slow_delay = slow_delay
        self.max_fast_attempts = max_fast_attempts
        self._attempts: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        attempts = self._attempts.get(item, 0) + 1
        self._attempts[item] = attempts
        return self.fast_delay if attempts <= self.max_fast_attempts else self.slow_delay

    def forget(self, item: Hashable) -> None:
        self._attempts.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._attempts.get(item, 0)


class BucketRateLimiter:
    """A token bucket shared by all items: `burst` retries at once, then `qps` per second.

    `when` reserves a token and returns how long until that token exists, so a burst of N calls
    beyond the bucket is spread out at 1/qps intervals. Tokens may go negative: a negative balance
    is a queue of reservations already promised to earlier callers (golang.org/x/time/rate).
    Items are not tracked, so `forget` does nothing and `num_requeues` is always 0.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock = time.monotonic) -> None:
        if not qps > 0:
            raise ValueError("qps must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        # Invariant: _tokens <= burst; it is the balance as of _last (the bucket starts full).
        self._tokens: float = float(burst)
        self._last: float = clock()

    def when(self, item: Hashable) -> float:
        now = self._clock()
        # A clock that steps backwards (it shouldn't: monotonic) refills nothing rather than draining.
        elapsed = max(0.0, now - self._last)
        self._last = max(now, self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of its limiters asks for; every limiter records every call."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: tuple[RateLimiter, ...] = limiters

    def when(self, item: Hashable) -> float:
        # A list, not a generator inside max(): every limiter must see the call (and e.g. reserve
        # its token), not only the ones before a short-circuit.
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(*, clock: Clock = time.monotonic) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: per-item 5ms..1000s back-off, overall 10 qps / 100 burst."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
