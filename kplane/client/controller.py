"""The controller runtime: informers -> handlers that enqueue keys -> workers -> `reconcile(key)`.

A controller is always the same shape (client-go's sample-controller, controller-runtime's
Reconciler):

    handlers only *enqueue keys*; a worker does  get -> reconcile(key) -> forget | requeue -> done

`reconcile(key)` re-reads desired and observed state from informer caches and writes through the
API, so it converges after restarts and missed events: it is level-triggered, never driven by the
event that woke it. Workers start only after every watched informer has synced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from prometheus_client import Counter, Gauge, Histogram

from kplane.client.informer import (
    DeletedFinalStateUnknown,
    Informer,
    ResourceEventHandlerFuncs,
    last_known_state,
)
from kplane.client.ratelimit import RateLimiter
from kplane.client.store import meta_namespace_key
from kplane.client.workqueue import RateLimitingQueue, ShutDown
from kplane.logs import get_logger

RECONCILES = Counter("controller_reconcile_total", "reconcile calls by result", ["controller", "result"])
RECONCILE_ERRORS = Counter("controller_reconcile_errors_total", "reconcile calls that raised", ["controller"])
RECONCILE_TIME = Histogram("controller_reconcile_duration_seconds", "reconcile latency", ["controller"],
                           buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10))
ACTIVE_WORKERS = Gauge("controller_active_workers", "workers currently reconciling", ["controller"])


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next. `Result()` (or None): done until something changes.
    `requeue_after=s`: look again in s seconds (resets the failure back-off).
    `requeue=True`: look again soon, with rate-limited back-off (like a failure, without the log)."""

    requeue: bool = False
    requeue_after: float | None = None


Reconciler = Callable[[str], Awaitable["Result | None"]]
KeyFunc = Callable[[Message], "Iterable[str] | str | None"]


class Controller:
    """One named controller: a rate-limited work queue, N workers and the informers it watches."""

    def __init__(self, name: str, reconcile: Reconciler, *, workers: int = 1,
                 rate_limiter: RateLimiter | None = None) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(rate_limiter, name=name)
        self.informers: list[Informer] = []
        self.log = get_logger(component="controller", controller=name)

    # -- wiring ------------------------------------------------------------------------------

    def watch(self, informer: Informer, key_fn: KeyFunc = meta_namespace_key) -> None:
        """Enqueue the key(s) `key_fn` maps each added, updated or deleted object to.
        The default enqueues the object's own `namespace/name`; an owner mapping enqueues the
        owning object's key instead (e.g. a ReplicaSet for each of its pods)."""

        def enqueue(obj: Message | DeletedFinalStateUnknown) -> None:
            try:
                keys = key_fn(last_known_state(obj) if isinstance(obj, DeletedFinalStateUnknown) else obj)
            except Exception:  # a bad mapping must not kill the informer: log and drop the event
                self.log.exception("key function failed")
                return
            if keys is None:
                return
            for key in [keys] if isinstance(keys, str) else keys:
                self.queue.add(key)

        informer.add_event_handler(ResourceEventHandlerFuncs(
            on_add=enqueue,
            on_update=lambda old, new: enqueue(new),
            on_delete=enqueue,
        ))
        self.informers.append(informer)

    # -- running -----------------------------------------------------------------------------

    async def start(self, *, sync_timeout: float | None = None) -> None:
        """Runnable: wait for caches, run workers until cancelled, then drain in-flight keys."""
        for informer in self.informers:
            if not await informer.wait_for_sync(sync_timeout):
                raise TimeoutError(f"controller {self.name}: caches did not sync")
        self.log.info("caches synced; starting workers", workers=self.workers)
        tasks = [asyncio.create_task(self._worker(i), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await asyncio.gather(*tasks, return_exceptions=True)
            self.log.info("workers stopped")

    async def _worker(self, index: int) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        start = time.perf_counter()
        ACTIVE_WORKERS.labels(self.name).inc()
        try:
            result = await self.reconcile(key)
        except asyncio.CancelledError:
            self.queue.add_rate_limited(key)  # not finished: whoever runs next must look again
            raise
        except Exception as exc:
            RECONCILE_ERRORS.labels(self.name).inc()
            RECONCILES.labels(self.name, "error").inc()
            retries = self.queue.num_requeues(key)
            self.log.warning("reconcile failed; requeueing with back-off", key=key, error=str(exc), retries=retries,
                             exc_info=retries == 0)
            self.queue.add_rate_limited(key)
            return
        finally:
            ACTIVE_WORKERS.labels(self.name).dec()
            RECONCILE_TIME.labels(self.name).observe(time.perf_counter() - start)
        if result is not None and result.requeue_after is not None:
            RECONCILES.labels(self.name, "requeue_after").inc()
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result is not None and result.requeue:
            RECONCILES.labels(self.name, "requeue").inc()
            self.queue.add_rate_limited(key)
        else:
            RECONCILES.labels(self.name, "success").inc()
            self.queue.forget(key)


class Manager:
    """Runs a set of controllers over shared informers: caches first, then the controllers —
    only while this process is the leader when leader election is configured."""

    def __init__(self, factory: Any, controllers: Iterable[Controller] = (), *,
                 elector_factory: Callable[[Callable[[], Awaitable[None]]], Any] | None = None) -> None:
        self.factory = factory
        self.controllers = list(controllers)
        self.elector_factory = elector_factory
        self.log = get_logger(component="controller-manager")

    def add(self, controller: Controller) -> None:
        self.controllers.append(controller)

    async def _run_controllers(self) -> None:
        await asyncio.gather(*(c.start() for c in self.controllers))

    async def run(self) -> None:
        """Runnable: returns when cancelled (or, with leader election, when leadership is lost)."""
        self.factory.start()
        try:
            if self.elector_factory is None:
                await self._run_controllers()
            else:
                elector = self.elector_factory(self._run_controllers)
                await elector.run()
        finally:
            await self.factory.shutdown()
