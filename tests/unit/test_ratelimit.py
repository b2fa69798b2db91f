"""Rate limiters for workqueue requeues: exponential, fast/slow, token bucket, max-of, the default."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kplane.client.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FixedLimiter:
    """Always answers the same delay; counts calls, to check MaxOf consults every limiter."""

    def __init__(self, delay: float, requeues: int = 0) -> None:
        self.delay = delay
        self.requeues = requeues
        self.calls = 0
        self.forgotten: list[object] = []

    def when(self, item: object) -> float:
        self.calls += 1
        return self.delay

    def forget(self, item: object) -> None:
        self.forgotten.append(item)

    def num_requeues(self, item: object) -> int:
        return self.requeues


def test_limiters_satisfy_the_protocol() -> None:
    """Every limiter type can be used where a RateLimiter is expected."""
    limiters: list[RateLimiter] = [
        ItemExponentialFailureRateLimiter(),
        ItemFastSlowRateLimiter(0.1, 1.0, 3),
        BucketRateLimiter(),
        MaxOfRateLimiter(BucketRateLimiter()),
        default_controller_rate_limiter(),
        FixedLimiter(0.0),
    ]
    assert all(limiter.when("k") >= 0 for limiter in limiters)


def test_exponential_backoff_doubles_per_failure_and_forget_resets_it() -> None:
    """Each retry of an item waits twice as long as the last, counted per item, until forgotten."""
    limiter = ItemExponentialFailureRateLimiter(base_delay=0.001, max_delay=1000.0)
    assert [limiter.when("a") for _ in range(5)] == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.016])
    assert limiter.num_requeues("a") == 5
    assert limiter.when("b") == pytest.approx(0.001)  # other items have their own count
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.001)


def test_exponential_backoff_is_capped_and_never_overflows() -> None:
    """The delay stops growing at max_delay, even after thousands of failures."""
    limiter = ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1000.0)
    delays = [limiter.when("a") for _ in range(3000)]
    assert max(delays) == 1000.0
    assert delays[-1] == 1000.0
    assert delays == sorted(delays)
    assert limiter.num_requeues("a") == 3000


@given(base=st.floats(1e-6, 10.0), cap=st.floats(0.0, 1e5), failures=st.integers(1, 200))
def test_exponential_backoff_formula(base: float, cap: float, failures: int) -> None:
    """The n-th delay is min(base * 2**n, max_delay) and the sequence never decreases."""
    limiter = ItemExponentialFailureRateLimiter(base_delay=base, max_delay=cap)
    delays = [limiter.when("k") for _ in range(failures)]
    assert delays == [min(base * 2.0**n, cap) for n in range(failures)]
    assert delays == sorted(delays)


def test_fast_slow_limiter_switches_after_max_fast_attempts() -> None:
    """The first attempts retry fast, later ones slowly, and forget starts over."""
    limiter = ItemFastSlowRateLimiter(fast_delay=0.1, slow_delay=5.0, max_fast_attempts=2)
    assert [limiter.when("a") for _ in range(4)] == [0.1, 0.1, 5.0, 5.0]
    assert limiter.num_requeues("a") == 4
    limiter.forget("a")
    assert limiter.when("a") == 0.1


def test_bucket_allows_a_burst_then_spreads_calls_at_qps() -> None:
    """A full bucket lets `burst` calls through at once; each further call is reserved 1/qps later."""
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=3, clock=clock)
    delays = [limiter.when(f"item-{i}") for i in range(6)]
    assert delays == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])
    assert limiter.num_requeues("item-0") == 0


def test_bucket_refills_over_time_but_never_beyond_burst() -> None:
    """Idle time refills tokens at qps, up to the burst size and no further."""
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10.0, burst=2, clock=clock)
    assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])
    clock.advance(0.1)  # pays back the reservation: the bucket is empty, not negative
    assert limiter.when("x") == pytest.approx(0.1)
    clock.advance(3600)
    assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


@pytest.mark.parametrize(("qps", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bucket_rejects_nonsense_settings(qps: float, burst: int) -> None:
    """A bucket needs a positive rate and room for at least one token."""
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=qps, burst=burst)


@given(
    qps=st.floats(0.5, 100.0),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=100),
)
def test_bucket_never_grants_more_than_burst_plus_rate(qps: float, burst: int, gaps: list[float]) -> None:
    """However calls arrive, reservations ready by time t never exceed burst + qps * elapsed."""
    clock = FakeClock(0.0)
    limiter = BucketRateLimiter(qps=qps, burst=burst, clock=clock)
    ready_times = []
    for gap in gaps:
        clock.advance(gap)
        ready_times.append(clock() + limiter.when("k"))
    assert ready_times == sorted(ready_times)
    for count, ready in enumerate(ready_times, start=1):
        assert count <= burst + qps * ready + 1e-6


def test_max_of_picks_the_longest_delay_and_consults_every_limiter() -> None:
    """MaxOf answers the largest delay and requeue count, and forwards forget to all limiters."""
    short, long, middle = FixedLimiter(0.5, requeues=1), FixedLimiter(7.0, requeues=4), FixedLimiter(2.0)
    limiter = MaxOfRateLimiter(short, long, middle)
    assert limiter.when("a") == 7.0
    assert (short.calls, long.calls, middle.calls) == (1, 1, 1)
    assert limiter.num_requeues("a") == 4
    limiter.forget("a")
    assert short.forgotten == long.forgotten == middle.forgotten == ["a"]


def test_max_of_needs_a_limiter() -> None:
    """An empty MaxOf has no answer to give, so it is refused at construction."""
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


def test_default_controller_limiter_combines_item_backoff_and_overall_bucket() -> None:
    """The default backs one item off exponentially from 5ms and caps all items at 10 qps after 100."""
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert [limiter.when("a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    assert limiter.num_requeues("a") == 3
    for i in range(97):  # uses up the rest of the 100-token burst
        assert limiter.when(f"other-{i}") == pytest.approx(0.005)
    assert limiter.when("fresh") == pytest.approx(0.1)  # bucket delay beats the 5ms item delay
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
