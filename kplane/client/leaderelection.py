"""Leader election through a Lease object, with client-go's `tools/leaderelection` semantics.

Candidates race to hold `leases/<lock_name>`; the holder renews it every `retry_period`, and the
others take it over once it has not changed for `leaseDurationSeconds`. Two rules keep this safe
without trusting anyone's wall clock:

- **Only local time is compared.** A candidate remembers the last record it observed and *when it
  observed it* by its own clock; a record held by someone else is expired when
  `observed_time + leaseDurationSeconds < now`. Timestamps written in the Lease (acquireTime,
  renewTime) are informational and never compared.
- **The leader stops trusting itself first.** A renewal counts from the moment its request was
  *sent* (never later than when others can observe it), and `is_leader()` turns False once
  `renew_deadline` (< lease_duration) has passed since then. Others cannot take over before
  `lease_duration` has passed since they observed that renewal, so a leader that guards each write
  with `is_leader()` / `check_leading()` stops acting before anyone else can start — even when it
  was frozen (SIGSTOP) for a long time: its first check after waking reads the clock and fails.
  (What the guard cannot cover is a write already past the guard when the process froze: that
  needs fencing on the server side, as in client-go.)

Every write is a compare-and-swap on `metadata.resourceVersion`: a Conflict means another
candidate won this round. Deadlines use `asyncio.timeout`, never `asyncio.wait_for`, which on
Python 3.11 can swallow a cancellation that arrives as the awaited call completes (gh-86296) —
and a lost cancel here means a candidate that never steps down. Usage::

    elector = LeaderElector(client, LeaderElectionConfig("kube-scheduler"),
                            on_started_leading=scheduler.run, on_stopped_leading=exit_process)
    await elector.run()   # returns after leadership is lost; raises CancelledError when cancelled
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import Message

from kplane.api import errors as api
from kplane.api.codec import copy_message, now_timestamp
from kplane.api.pb.coordination_pb2 import Lease
from kplane.api.resources import ResourceType, resolve
from kplane.logs import get_logger

# client-go's JitterFactor: acquire retries wait retry_period * [1, 1 + JITTER_FACTOR).
JITTER_FACTOR = 1.2

LEASES: ResourceType = resolve("leases")


def _boot_clock() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


# CLOCK_BOOTTIME keeps counting while the host is suspended (CLOCK_MONOTONIC does not), so a leader
# on a laptop that slept does not wake up believing its lease is fresh. Both count while the process
# is stopped (SIGSTOP). Only differences between readings of one clock are ever used.
default_clock: Callable[[], float] = _boot_clock if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic


def default_identity() -> str:
    """`<hostname>_<pid>_<8 hex>`: unique per process, readable in `kpctl get lease -o yaml`."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}"


class NotLeader(Exception):
    """Raised by `LeaderElector.check_leading()` when this process must not act as the leader."""


class LeaseClient(Protocol):
    """The part of `kplane.client.client.Client` leader election uses (a seam for fakes)."""

    async def get(self, rt: ResourceType, name: str, *, namespace: str = "") -> Message: ...

    async def create(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message: ...

    async def update(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message: ...


@dataclass
class LeaderElectionConfig:
    """Timings in seconds, as client-go's (defaults 15/10/2). Invariant checked on construction:
    lease_duration > renew_deadline > retry_period * JITTER_FACTOR > 0."""

    lock_name: str
    lock_namespace: str = "kube-system"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # Release the lease when run() is cancelled (or leadership is lost), so a successor need not
    # wait lease_duration. Safe because the leading task has finished before we release.
    release_on_cancel: bool = True
    clock: Callable[[], float] = default_clock

    def __post_init__(self) -> None:
        if not self.lock_name:
            raise ValueError("lock_name must not be empty")
        if not self.identity:
            raise ValueError("identity must not be empty")
        if self.retry_period <= 0:
            raise ValueError("retry_period must be greater than zero")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError("renew_deadline must be greater than retry_period*JitterFactor")

    @property
    def lease_duration_seconds(self) -> int:
        """The whole seconds written to the Lease, rounded up so others never wait too little."""
        return max(1, math.ceil(self.lease_duration))


def _as_lease(obj: Message) -> Lease:
    if not isinstance(obj, Lease):
        raise TypeError(f"expected a Lease, got {type(obj).__name__}")
    return obj


class LeaderElector:
    """One candidate for one lock. `run()` campaigns, leads, and returns when leadership is lost."""

    def __init__(
        self,
        client: LeaseClient,
        config: LeaderElectionConfig,
        *,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None]] | None = None,
        on_new_leader: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self._on_started_leading = on_started_leading
        self._on_stopped_leading = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._clock = config.clock
        self._log = get_logger(lock=f"{config.lock_namespace}/{config.lock_name}", identity=config.identity)
        # The last Lease we read or wrote, and when (local clock) it last changed.
        self._observed: Lease | None = None
        self._observed_time = 0.0
        # When the request of our last successful acquire/renew was sent (local clock).
        self._last_renew = -math.inf
        self._leading = False
        self._running = False
        self._reported_leader = ""
        self._callback_tasks: set[asyncio.Task[None]] = set()

    # -- state -----------------------------------------------------------------------------------

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def leader_identity(self) -> str:
        """The holder in the last observed Lease ("" if none has been seen or it was released)."""
        return self._observed.spec.holderIdentity if self._observed is not None else ""

    @property
    def observed_lease(self) -> Lease | None:
        """A copy of the last Lease read or written."""
        return copy_message(self._observed) if self._observed is not None else None

    def _holds_lease(self) -> bool:
        return self.leader_identity == self.identity

    def is_leader(self) -> bool:
        """True only while we lead, hold the lease, and renewed it less than renew_deadline ago.

        Reads the clock on every call, so a process that was frozen past its deadline gets False
        from its first call after waking, before the renew loop has had a chance to run."""
        if not (self._leading and self._holds_lease()):
            return False
        return self._clock() - self._last_renew < self.config.renew_deadline

    def check_leading(self) -> None:
        """Guard before a write that only the leader may make: raises NotLeader otherwise."""
        if not self.is_leader():
            raise NotLeader(f"{self.identity} is not the leader of "
                            f"{self.config.lock_namespace}/{self.config.lock_name}")

    # -- one round -------------------------------------------------------------------------------

    def _lease_valid(self, now: float) -> bool:
        """Whether the observed record is still within its leaseDurationSeconds by our clock."""
        if self._observed is None:
            return False
        return self._observed_time + self._observed.spec.leaseDurationSeconds > now

    def _observe(self, lease: Lease) -> None:
        """Remember `lease`; restart the expiry timer only when the record actually changed."""
        if self._observed is None or self._observed.spec != lease.spec:
            self._observed_time = self._clock()
        self._observed = lease

    def _record_write(self, lease: Lease, sent_at: float) -> None:
        self._observed = lease
        self._observed_time = self._clock()
        self._last_renew = sent_at

    async def try_acquire_or_renew(self) -> bool:
        """One client-go `tryAcquireOrRenew` round: create, take over, or renew the lease.

        Returns True when we hold the lease afterwards. Errors are logged and return False; a
        Conflict means someone else wrote the Lease first (our CAS lost this round)."""
        cfg = self.config
        sent_at = self._clock()
        now = now_timestamp()

        # Fast path: we hold an unexpired lease, so renew from our copy without reading first.
        if self._observed is not None and self._holds_lease() and self._lease_valid(sent_at):
            lease = copy_message(self._observed)
            lease.spec.renewTime.CopyFrom(now)
            lease.spec.leaseDurationSeconds = cfg.lease_duration_seconds
            try:
                written = _as_lease(await self.client.update(LEASES, lease, namespace=cfg.lock_namespace))
            except api.APIError as exc:
                self._log.info("optimistic lease renewal failed; re-reading", error=str(exc),
                               reason=exc.reason, resourceVersion=lease.metadata.resourceVersion)
            else:
                self._record_write(written, sent_at)
                return True
            sent_at = self._clock()

        # 1. Read the lease, or create it.
        try:
            current = _as_lease(await self.client.get(LEASES, cfg.lock_name, namespace=cfg.lock_namespace))
        except api.NotFound:
            lease = Lease()
            lease.metadata.name = cfg.lock_name
            lease.metadata.namespace = cfg.lock_namespace
            lease.spec.holderIdentity = self.identity
            lease.spec.leaseDurationSeconds = cfg.lease_duration_seconds
            lease.spec.acquireTime.CopyFrom(now)
            lease.spec.renewTime.CopyFrom(now)
            lease.spec.leaseTransitions = 0
            try:
                written = _as_lease(await self.client.create(LEASES, lease, namespace=cfg.lock_namespace))
            except api.APIError as exc:
                # AlreadyExists: another candidate created it between our read and our create.
                self._log.info("could not create the lease", error=str(exc), reason=exc.reason)
                return False
            self._record_write(written, sent_at)
            self._log.info("created the lease", resourceVersion=written.metadata.resourceVersion)
            return True
        except api.APIError as exc:
            self._log.warning("could not read the lease", error=str(exc), reason=exc.reason)
            return False

        # 2. Someone else holds an unexpired lease: wait (judged by when *we* saw it change).
        self._observe(current)
        holder = current.spec.holderIdentity
        if holder and holder != self.identity and self._lease_valid(self._clock()):
            return False

        # 3. Renew our own lease, or take over a released or expired one.
        lease = copy_message(current)
        lease.spec.leaseDurationSeconds = cfg.lease_duration_seconds
        lease.spec.renewTime.CopyFrom(now)
        if holder != self.identity:
            lease.spec.holderIdentity = self.identity
            lease.spec.acquireTime.CopyFrom(now)
            lease.spec.leaseTransitions = current.spec.leaseTransitions + 1
        try:
            written = _as_lease(await self.client.update(LEASES, lease, namespace=cfg.lock_namespace))
        except api.Conflict:
            self._log.info("lost the race for the lease", resourceVersion=current.metadata.resourceVersion)
            return False
        except api.APIError as exc:
            self._log.warning("could not update the lease", error=str(exc), reason=exc.reason,
                              resourceVersion=current.metadata.resourceVersion)
            return False
        if holder != self.identity:
            self._log.info("took over the lease", previous_holder=holder,
                           leaseTransitions=written.spec.leaseTransitions,
                           resourceVersion=written.metadata.resourceVersion)
        self._record_write(written, sent_at)
        return True

    async def _release(self, attempts: int = 3) -> bool:
        """Give the lease up (holder "", 1 s duration) if we still hold it; True when it is no
        longer ours. A compare-and-swap on the Lease we last saw, so one someone else has taken
        since is left alone."""
        for _ in range(attempts):
            observed = self._observed
            if observed is None or observed.spec.holderIdentity != self.identity:
                return True
            lease = copy_message(observed)
            now = now_timestamp()
            lease.spec.holderIdentity = ""
            lease.spec.leaseDurationSeconds = 1
            lease.spec.acquireTime.CopyFrom(now)
            lease.spec.renewTime.CopyFrom(now)
            try:
                written = _as_lease(await self.client.update(LEASES, lease, namespace=self.config.lock_namespace))
            except api.Conflict:
                # Often our own renewal, committed but cancelled before we saw the answer: re-read,
                # and release again only if the Lease still names us.
                try:
                    current = await self.client.get(LEASES, self.config.lock_name,
                                                    namespace=self.config.lock_namespace)
                except api.APIError as exc:
                    self._log.info("did not release the lease", error=str(exc), reason=exc.reason)
                    return False
                self._observe(_as_lease(current))
                continue
            except api.APIError as exc:
                self._log.info("did not release the lease", error=str(exc), reason=exc.reason,
                               resourceVersion=observed.metadata.resourceVersion)
                return False
            self._observed = written
            self._observed_time = self._clock()
            self._log.info("released the lease", resourceVersion=written.metadata.resourceVersion)
            return True
        return not self._holds_lease()

    def _maybe_report_transition(self) -> None:
        holder = self.leader_identity
        if not holder or holder == self._reported_leader:
            return
        self._reported_leader = holder
        self._log.info("new leader observed", leader=holder)
        if self._on_new_leader is not None:
            task = asyncio.create_task(self._guarded(self._on_new_leader(holder), "on_new_leader"))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)

    async def _guarded(self, callback: Awaitable[None], name: str) -> None:
        try:
            await callback
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception(f"{name} callback failed")

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign until we hold the lease, lead until we lose it, then return.

        While leading, `on_started_leading()` runs as a task and the lease is renewed every
        retry_period. If no renewal succeeds within renew_deadline of the last one (or someone
        else takes the lease), we step down at once: `is_leader()` turns False, the leading task is
        cancelled and awaited, the lease is released (release_on_cancel; only if still ours),
        `on_stopped_leading()` is called and run() returns. Cancelling run() steps down the same
        way and re-raises CancelledError. If `on_started_leading()` raises, we step down and
        run() re-raises its exception; if it returns, we keep the lease (as client-go does).
        Cancelled before it ever led, run() just re-raises (no on_stopped_leading call)."""
        if self._running:
            raise RuntimeError("LeaderElector.run() is already running")
        self._running = True
        try:
            await self._acquire()
            await self._lead()
        finally:
            self._running = False

    async def _acquire(self) -> None:
        cfg = self.config
        self._log.info("attempting to acquire the leader lease")
        while True:
            try:
                async with asyncio.timeout(cfg.renew_deadline):
                    acquired = await self.try_acquire_or_renew()
            except TimeoutError:
                self._log.warning("lease request timed out", timeout=cfg.renew_deadline)
                acquired = False
            self._maybe_report_transition()
            # An acquire whose request is already renew_deadline old does not count: the next round
            # sees our name in the Lease and renews it.
            if acquired and self._clock() - self._last_renew < cfg.renew_deadline:
                return
            await asyncio.sleep(cfg.retry_period * (1 + random.random() * JITTER_FACTOR))

    async def _lead(self) -> None:
        lease = self._observed
        self._leading = True
        self._log.info("started leading",
                       leaseTransitions=lease.spec.leaseTransitions if lease is not None else 0,
                       resourceVersion=lease.metadata.resourceVersion if lease is not None else "")
        leading = asyncio.create_task(self._call_started_leading(), name=f"leading:{self.config.lock_name}")
        try:
            reason = await self._renew_loop(leading)
        except asyncio.CancelledError:
            await self._step_down("run() was cancelled", leading)
            raise
        await self._step_down(reason, leading)
        failure = leading.exception() if leading.done() and not leading.cancelled() else None
        if failure is not None:
            raise failure

    async def _call_started_leading(self) -> None:
        await self._on_started_leading()

    async def _renew_loop(self, leading: asyncio.Task[None]) -> str:
        """Renew every retry_period; returns why we must step down."""
        cfg = self.config
        while True:
            if leading.done():
                if leading.cancelled() or leading.exception() is not None:
                    return "on_started_leading failed"
                await asyncio.sleep(cfg.retry_period)
            else:
                await asyncio.wait({leading}, timeout=cfg.retry_period)
                if leading.done() and (leading.cancelled() or leading.exception() is not None):
                    return "on_started_leading failed"
            remaining = self._last_renew + cfg.renew_deadline - self._clock()
            if remaining <= 0:
                return f"no successful renewal within renew_deadline ({cfg.renew_deadline}s)"
            try:
                async with asyncio.timeout(remaining):
                    renewed = await self.try_acquire_or_renew()
            except TimeoutError:
                return f"no successful renewal within renew_deadline ({cfg.renew_deadline}s)"
            self._maybe_report_transition()
            if not renewed and not self._holds_lease():
                return f"the lease is held by {self.leader_identity or 'nobody'}"

    async def _step_down(self, reason: str, leading: asyncio.Task[None]) -> None:
        # First, so every guard fails from here on, whatever happens below.
        self._leading = False
        self._log.info("stopped leading", reason=reason)
        leading.cancel()
        done, _ = await asyncio.wait({leading}, timeout=self.config.renew_deadline)
        failure = leading.exception() if leading in done and not leading.cancelled() else None
        if failure is not None:
            self._log.error("on_started_leading failed", exc_info=failure)
        if leading not in done:
            # Releasing now could let a successor act while our task still runs: let the lease expire.
            self._log.error("the leading task ignored cancellation; not releasing the lease")
        elif self.config.release_on_cancel:
            try:
                async with asyncio.timeout(self.config.renew_deadline):
                    await self._release()
            except TimeoutError:
                self._log.warning("releasing the lease timed out")
        if self._on_stopped_leading is not None:
            await self._guarded(self._on_stopped_leading(), "on_stopped_leading")


async def run_or_die(
    client: LeaseClient,
    config: LeaderElectionConfig,
    *,
    on_started_leading: Callable[[], Awaitable[None]],
    on_stopped_leading: Callable[[], Awaitable[None]] | None = None,
    on_new_leader: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Run one election: returns when leadership is lost (callers usually exit the process then)."""
    elector = LeaderElector(client, config, on_started_leading=on_started_leading,
                            on_stopped_leading=on_stopped_leading, on_new_leader=on_new_leader)
    await elector.run()
