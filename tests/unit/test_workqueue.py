"""The workqueue contract (client-go semantics): dedup, exclusive processing, FIFO, shutdown, delays,
rate-limited requeues.

Nothing here asserts how fast anything happens: waits for something to happen use generous
timeouts, and checks that something has *not* happened yet look over a short window (a slow
machine can only make those pass, never flake).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Hashable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import REGISTRY

from kplane.client.ratelimit import ItemExponentialFailureRateLimiter
from kplane.client.workqueue import DelayingQueue, RateLimitingQueue, ShutDown, WorkQueue

WAIT = 10.0  # generous: for things that must happen
QUIET = 0.05  # short: for things that must not have happened yet


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def get(queue: WorkQueue[str]) -> str:
    return await asyncio.wait_for(queue.get(), WAIT)


async def settle() -> None:
    """Let every runnable task take a few steps."""
    for _ in range(10):
        await asyncio.sleep(0)


# --- WorkQueue ---------------------------------------------------------------------------------


async def test_key_added_many_times_while_waiting_is_queued_once() -> None:
    """Repeated adds of a waiting key collapse into one queue entry (the dirty set)."""
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "a", "b", "c"]:
        queue.add(key)
    assert len(queue) == 3
    assert [await get(queue) for _ in range(3)] == ["a", "b", "c"]
    assert len(queue) == 0


async def test_keys_come_out_in_fifo_order() -> None:
    """Distinct keys are handed out in the order they were added."""
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"ns/pod-{i}" for i in range(50)]
    for key in keys:
        queue.add(key)
    assert [await get(queue) for _ in keys] == keys


async def test_get_waits_for_an_add() -> None:
    """A get on an empty queue blocks until a key is added, then returns it."""
    queue: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(get(queue))
    await settle()
    assert not getter.done()
    queue.add("a")
    assert await getter == "a"


async def test_key_readded_while_processing_waits_for_done_then_comes_out_once() -> None:
    """A key added while a worker holds it is not handed out again until done, then exactly once."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await get(queue) == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # held by a worker: not available to anyone else
    second_worker = asyncio.create_task(get(queue))
    await settle()
    assert not second_worker.done()
    queue.done("a")
    assert await second_worker == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_done_without_readd_does_not_requeue() -> None:
    """A key that was not added again while processing is gone after done."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await get(queue)
    queue.done("a")
    assert len(queue) == 0


async def test_done_for_a_key_not_being_processed_is_ignored() -> None:
    """done on a key that was never handed out (or done twice) cannot duplicate a queued key."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.done("a")
    queue.done("never-added")
    assert len(queue) == 1
    assert await get(queue) == "a"
    queue.done("a")
    queue.done("a")
    assert len(queue) == 0


async def test_workers_never_hold_the_same_key_at_once_and_every_add_is_seen() -> None:
    """Under many concurrent workers and adds, no key is in flight twice and the last add of each key is processed."""
    rng = random.Random(42)
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"ns/obj-{i}" for i in range(40)]
    in_flight: set[str] = set()
    version: Counter[str] = Counter()  # bumped on every add
    processed_version: dict[str, int] = {}  # the newest add a processing of the key started after
    processed = 0

    async def worker() -> None:
        nonlocal processed
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            assert key not in in_flight, f"{key} handed to two workers"
            in_flight.add(key)
            processed_version[key] = version[key]
            try:
                await asyncio.sleep(rng.choice([0, 0, 0, 0.0005]))
                processed += 1
            finally:
                in_flight.discard(key)
                queue.done(key)

    async def producer() -> None:
        for _ in range(400):
            key = rng.choice(keys)
            version[key] += 1
            queue.add(key)
            if rng.random() < 0.5:
                await asyncio.sleep(0)

    workers = [asyncio.create_task(worker()) for _ in range(16)]
    await asyncio.wait_for(asyncio.gather(*(producer() for _ in range(8))), WAIT)

    async def all_seen() -> None:
        while len(queue) or in_flight or any(processed_version.get(k, 0) < v for k, v in version.items()):
            await asyncio.sleep(0.001)

    await asyncio.wait_for(all_seen(), WAIT)
    await asyncio.wait_for(queue.shutdown_with_drain(), WAIT)
    await asyncio.wait_for(asyncio.gather(*workers), WAIT)
    assert 0 < processed <= sum(version.values())


async def test_shutdown_wakes_every_waiting_getter_with_shutdown() -> None:
    """Getters blocked on an empty queue all raise ShutDown when the queue shuts down."""
    queue: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(5)]
    await settle()
    queue.shutdown()
    assert queue.shutting_down
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), WAIT)
    assert all(isinstance(result, ShutDown) for result in results)
    with pytest.raises(ShutDown):
        await get(queue)


async def test_shutdown_still_hands_out_the_backlog_then_raises() -> None:
    """Keys queued before shutdown are still handed out; only an empty, shut-down queue raises."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.shutdown()
    assert [await get(queue), await get(queue)] == ["a", "b"]
    with pytest.raises(ShutDown):
        await get(queue)


async def test_add_after_shutdown_is_ignored() -> None:
    """A shut-down queue accepts no new keys."""
    queue: WorkQueue[str] = WorkQueue()
    queue.shutdown()
    queue.add("a")
    assert len(queue) == 0
    with pytest.raises(ShutDown):
        await get(queue)


async def test_shutdown_with_drain_waits_for_in_flight_keys() -> None:
    """shutdown_with_drain returns only after every key handed out has been marked done."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    assert await get(queue) == "a"
    assert await get(queue) == "b"
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await settle()
    assert queue.shutting_down
    assert not drain.done()
    queue.done("a")
    await settle()
    assert not drain.done()
    queue.done("b")
    await asyncio.wait_for(drain, WAIT)


async def test_shutdown_with_drain_returns_at_once_when_nothing_is_in_flight() -> None:
    """With no key held by a worker there is nothing to drain."""
    queue: WorkQueue[str] = WorkQueue()
    await asyncio.wait_for(queue.shutdown_with_drain(), WAIT)
    assert queue.shutting_down


async def test_shutdown_during_drain_stops_waiting() -> None:
    """Calling shutdown while shutdown_with_drain waits forces it to return without the drain."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await get(queue)
    drain = asyncio.create_task(queue.shutdown_with_drain())
    await settle()
    assert not drain.done()
    queue.shutdown()
    await asyncio.wait_for(drain, WAIT)


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    """A getter cancelled after being woken for a key does not strand the key: another getter gets it."""
    queue: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.add("a")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, WAIT) == "a"
    assert first.cancelled()


async def test_named_queue_records_metrics() -> None:
    """A named queue counts adds, reports depth, and observes queue latency and work duration."""
    name = f"test-{uuid.uuid4().hex}"
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(name=name, clock=clock)

    def sample(metric: str) -> float | None:
        return REGISTRY.get_sample_value(metric, {"name": name})

    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert sample("workqueue_adds_total") == 2
    assert sample("workqueue_depth") == 2
    clock.advance(3)
    await get(queue)
    assert sample("workqueue_depth") == 1
    assert sample("workqueue_queue_duration_seconds_sum") == pytest.approx(3)
    clock.advance(2)
    queue.done("a")
    assert sample("workqueue_work_duration_seconds_sum") == pytest.approx(2)
    assert sample("workqueue_work_duration_seconds_count") == 1


class WorkQueueMachine(RuleBasedStateMachine):
    """The queue against a model written straight from the contract.

    Model: `pending` (keys waiting, in order), `held` (handed out, not done), `readded` (held keys
    added again). add: ignored after shutdown or if pending/readded; held → readded; else append.
    get: pops the first pending key. done: a readded key goes to the back of pending.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.queue: WorkQueue[str] = WorkQueue()
        self.pending: list[str] = []
        self.held: set[str] = set()
        self.readded: set[str] = set()
        self.shut = False

    def teardown(self) -> None:
        self.loop.close()

    @rule(key=st.sampled_from("abcde"))
    def add(self, key: str) -> None:
        self.queue.add(key)
        if self.shut or key in self.pending or key in self.readded:
            return
        if key in self.held:
            self.readded.add(key)
        else:
            self.pending.append(key)

    @precondition(lambda self: bool(self.pending))
    @rule()
    def get(self) -> None:
        key = self.loop.run_until_complete(self.queue.get())
        assert key == self.pending.pop(0)
        assert key not in self.held, "a key was handed to two workers"
        self.held.add(key)

    @precondition(lambda self: not self.pending and self.shut)
    @rule()
    def get_when_shut_and_empty(self) -> None:
        with pytest.raises(ShutDown):
            self.loop.run_until_complete(self.queue.get())

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.held)))
        self.queue.done(key)
        self.held.remove(key)
        if key in self.readded:
            self.readded.remove(key)
            self.pending.append(key)

    @rule(key=st.sampled_from("abcde"))
    def done_unheld(self, key: str) -> None:
        if key not in self.held:
            self.queue.done(key)  # must change nothing

    @rule()
    def shutdown(self) -> None:
        self.queue.shutdown()
        self.shut = True

    @invariant()
    def length_matches_model(self) -> None:
        assert len(self.queue) == len(self.pending)
        assert len(set(self.pending)) == len(self.pending)
        assert not set(self.pending) & self.held


TestWorkQueueMachine = WorkQueueMachine.TestCase
TestWorkQueueMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


# --- DelayingQueue -----------------------------------------------------------------------------


async def test_add_after_hands_keys_out_in_ready_time_order() -> None:
    """Delayed keys come out ordered by when they become ready, not by when they were added."""
    queue: DelayingQueue[str] = DelayingQueue()
    queue.add_after("c", 0.15)
    queue.add_after("a", 0.05)
    queue.add_after("b", 0.10)
    assert len(queue) == 0
    assert [await get(queue) for _ in range(3)] == ["a", "b", "c"]
    queue.shutdown()


async def test_add_after_without_positive_delay_adds_now() -> None:
    """A zero or negative delay is a plain add."""
    queue: DelayingQueue[str] = DelayingQueue()
    queue.add_after("a", 0)
    queue.add_after("b", -5)
    assert len(queue) == 2
    queue.shutdown()


async def test_earlier_add_after_moves_a_waiting_key_forward() -> None:
    """A second add_after with a sooner time wins over a far-off one already waiting."""
    queue: DelayingQueue[str] = DelayingQueue()
    queue.add_after("a", 3600)
    queue.add_after("a", 0.01)
    assert await get(queue) == "a"
    queue.shutdown()


async def test_later_add_after_does_not_postpone_a_waiting_key() -> None:
    """A second add_after with a later time keeps the earlier one, and the key comes out once."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock, heartbeat=0.01)
    before = asyncio.all_tasks()
    queue.add_after("a", 1)
    queue.add_after("a", 3600)
    delay_task = asyncio.all_tasks() - before
    clock.advance(1)
    assert await get(queue) == "a"
    # The delay task ends once nothing waits: the later request was absorbed, not kept as a second entry.
    done, _ = await asyncio.wait(delay_task, timeout=WAIT)
    assert done == delay_task
    queue.shutdown()


async def test_delayed_key_is_not_ready_before_its_time_on_the_injected_clock() -> None:
    """Ready times come from the injected clock: nothing comes out until that clock reaches them."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock, heartbeat=0.01)
    queue.add_after("a", 5)
    await asyncio.sleep(QUIET)
    assert len(queue) == 0
    clock.advance(4.75)
    await asyncio.sleep(QUIET)
    assert len(queue) == 0
    clock.advance(0.25)
    assert await get(queue) == "a"
    queue.shutdown()


async def test_delayed_key_already_queued_is_not_duplicated() -> None:
    """A delayed add that fires while the key is still waiting in the queue dedups like any add."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock, heartbeat=0.01)
    before = asyncio.all_tasks()
    queue.add("a")
    queue.add_after("a", 1)
    delay_task = asyncio.all_tasks() - before
    clock.advance(1)
    done, _ = await asyncio.wait(delay_task, timeout=WAIT)  # ends once it has added "a"
    assert done == delay_task
    assert len(queue) == 1
    assert await get(queue) == "a"
    queue.done("a")
    assert len(queue) == 0
    queue.shutdown()


async def test_delayed_key_firing_while_processing_is_requeued_after_done() -> None:
    """A delayed add that fires while a worker holds the key gets it one more pass after done."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock, heartbeat=0.01)
    queue.add("a")
    assert await get(queue) == "a"
    queue.add_after("a", 1)  # e.g. a failed sync asking for a retry before calling done
    clock.advance(1)
    await asyncio.sleep(QUIET)
    assert len(queue) == 0  # still held: never handed to a second worker
    queue.done("a")
    assert await get(queue) == "a"
    queue.shutdown()


async def test_shutdown_stops_the_background_task_and_drops_delayed_keys() -> None:
    """Shutting down ends the delay task and delayed keys never arrive."""
    queue: DelayingQueue[str] = DelayingQueue()
    before = asyncio.all_tasks()
    queue.add_after("a", 3600)
    started = asyncio.all_tasks() - before
    assert len(started) == 1  # one task for the whole queue, however many keys wait
    queue.add_after("b", 3600)
    assert asyncio.all_tasks() - before == started
    queue.shutdown()
    done, _ = await asyncio.wait(started, timeout=WAIT)
    assert done == started
    queue.add_after("c", 0)
    assert len(queue) == 0


async def test_delay_task_exits_when_nothing_waits_and_restarts_on_demand() -> None:
    """The delay task does not linger once every delayed key has been added, and comes back for new ones."""
    queue: DelayingQueue[str] = DelayingQueue()
    before = asyncio.all_tasks()
    queue.add_after("a", 0.01)
    first = asyncio.all_tasks() - before
    assert await get(queue) == "a"
    await asyncio.wait(first, timeout=WAIT)
    assert all(task.done() for task in first)
    queue.add_after("b", 0.01)
    assert await get(queue) == "b"
    queue.shutdown()


async def test_many_delayed_keys_all_arrive_exactly_once_in_ready_order() -> None:
    """Hundreds of delayed keys with repeated, reordered requests each come out once, by earliest ready time."""
    rng = random.Random(7)
    clock = FakeClock()
    queue: DelayingQueue[int] = DelayingQueue(clock=clock, heartbeat=0.01)
    before = asyncio.all_tasks()
    earliest: dict[int, float] = {}
    for _ in range(2000):
        key = rng.randrange(200)
        delay = rng.uniform(1, 100)
        earliest[key] = min(delay, earliest.get(key, delay))
        queue.add_after(key, delay)
    delay_task = asyncio.all_tasks() - before
    clock.advance(100)  # everything is ready at once: the heap decides the order
    got = [await asyncio.wait_for(queue.get(), WAIT) for _ in earliest]
    assert got == sorted(earliest, key=earliest.__getitem__)
    done, _ = await asyncio.wait(delay_task, timeout=WAIT)
    assert done == delay_task
    assert len(queue) == 0
    queue.shutdown()


# --- RateLimitingQueue -------------------------------------------------------------------------


async def test_add_rate_limited_backs_off_exponentially_and_forget_resets() -> None:
    """Each rate-limited requeue of a key waits twice as long; forget resets the back-off."""
    clock = FakeClock()
    limiter = ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=100.0)
    queue: RateLimitingQueue[str] = RateLimitingQueue(limiter, clock=clock, heartbeat=0.01)

    async def fail_and_expect_back_after(delay: float) -> None:
        """Requeue the key rate-limited; it must not be back just before `delay`, and be back at it."""
        queue.add_rate_limited("a")
        clock.advance(delay - 0.25)  # binary fractions: exact float arithmetic on the fake clock
        await asyncio.sleep(QUIET)
        assert len(queue) == 0
        clock.advance(0.25)
        assert await get(queue) == "a"
        queue.done("a")

    for delay in [1.0, 2.0, 4.0, 8.0]:
        await fail_and_expect_back_after(delay)
    assert queue.num_requeues("a") == 4
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    await fail_and_expect_back_after(1.0)
    queue.shutdown()


async def test_rate_limiting_queue_defaults_to_the_controller_limiter() -> None:
    """Without a limiter the queue uses client-go's default: the first requeue is almost immediate."""
    queue: RateLimitingQueue[str] = RateLimitingQueue()
    queue.add_rate_limited("a")
    assert await get(queue) == "a"
    assert queue.num_requeues("a") == 1
    queue.shutdown()


async def test_add_rate_limited_after_shutdown_is_ignored_and_not_counted() -> None:
    """A shut-down queue neither queues a rate-limited key nor charges the limiter for it."""
    queue: RateLimitingQueue[str] = RateLimitingQueue()
    queue.shutdown()
    queue.add_rate_limited("a")
    assert len(queue) == 0
    assert queue.num_requeues("a") == 0


async def test_named_delaying_queue_counts_retries() -> None:
    """Every delayed add on a named queue counts as a retry."""
    name = f"test-{uuid.uuid4().hex}"
    queue: RateLimitingQueue[Hashable] = RateLimitingQueue(name=name)
    queue.add_rate_limited("a")
    queue.add_after("b", 0)
    assert REGISTRY.get_sample_value("workqueue_retries_total", {"name": name}) == 2
    queue.shutdown()
