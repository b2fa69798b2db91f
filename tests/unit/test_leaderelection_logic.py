"""Leader election rules with a fake clock and an in-memory compare-and-swap Lease store."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf.message import Message

from kplane.api import errors as api
from kplane.api.pb.coordination_pb2 import Lease
from kplane.api.resources import ResourceType
from kplane.client.leaderelection import LeaderElectionConfig, LeaderElector, NotLeader


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLeases:
    """Leases by (namespace, name) with etcd-like resourceVersions: every write is a CAS."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Lease] = {}
        self.revision = 0
        self.fail_with: api.APIError | None = None

    def _stored(self, lease: Lease) -> Lease:
        self.revision += 1
        out = Lease()
        out.CopyFrom(lease)
        out.metadata.resourceVersion = str(self.revision)
        self.items[(out.metadata.namespace, out.metadata.name)] = out
        result = Lease()
        result.CopyFrom(out)
        return result

    async def get(self, rt: ResourceType, name: str, *, namespace: str = "") -> Message:
        if self.fail_with is not None:
            raise self.fail_with
        try:
            stored = self.items[(namespace, name)]
        except KeyError:
            raise api.NotFound(f'leases "{name}" not found') from None
        out = Lease()
        out.CopyFrom(stored)
        return out

    async def create(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message:
        assert isinstance(obj, Lease)
        if self.fail_with is not None:
            raise self.fail_with
        if (namespace, obj.metadata.name) in self.items:
            raise api.AlreadyExists(f'leases "{obj.metadata.name}" already exists')
        return self._stored(obj)

    async def update(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message:
        assert isinstance(obj, Lease)
        if self.fail_with is not None:
            raise self.fail_with
        current = self.items.get((namespace, obj.metadata.name))
        if current is None:
            raise api.NotFound(f'leases "{obj.metadata.name}" not found')
        if current.metadata.resourceVersion != obj.metadata.resourceVersion:
            raise api.Conflict("the object has been modified")
        return self._stored(obj)

    def lease(self, name: str = "lock", namespace: str = "ns") -> Lease:
        return self.items[(namespace, name)]

    def overwrite(self, holder: str, name: str = "lock", namespace: str = "ns") -> None:
        """Another candidate writes the lease (as if it renewed or took it over)."""
        lease = Lease()
        lease.CopyFrom(self.lease(name, namespace))
        lease.spec.holderIdentity = holder
        lease.spec.renewTime.seconds += 1
        self._stored(lease)


async def _idle() -> None:
    await asyncio.sleep(3600)


def elector(store: FakeLeases, clock: FakeClock, identity: str) -> LeaderElector:
    """A candidate with client-go's default timings (15/10/2 s) on the fake clock."""
    config = LeaderElectionConfig("lock", "ns", identity=identity, clock=clock)
    return LeaderElector(store, config, on_started_leading=_idle)


@pytest.mark.parametrize(("lease", "renew", "retry", "message"), [
    (10.0, 10.0, 2.0, "lease_duration must be greater than renew_deadline"),
    (15.0, 10.0, 9.0, "renew_deadline must be greater than retry_period"),
    (15.0, 10.0, 0.0, "retry_period must be greater than zero"),
])
def test_config_validates_timings_like_client_go(lease: float, renew: float, retry: float, message: str) -> None:
    """lease_duration > renew_deadline > retry_period * 1.2 > 0 is enforced on construction."""
    with pytest.raises(ValueError, match=message):
        LeaderElectionConfig("lock", lease_duration=lease, renew_deadline=renew, retry_period=retry)


def test_default_identity_is_unique_per_config() -> None:
    """Two configs get different default identities."""
    assert LeaderElectionConfig("a").identity != LeaderElectionConfig("a").identity


def test_lease_duration_seconds_rounds_up() -> None:
    """A fractional lease duration is written rounded up, so others never wait less than configured."""
    assert LeaderElectionConfig("a", lease_duration=2.5, renew_deadline=2, retry_period=1).lease_duration_seconds == 3


async def test_first_candidate_creates_the_lease() -> None:
    """With no Lease, a candidate creates it holding it, with zero transitions and both times set."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    lease = store.lease()
    assert lease.spec.holderIdentity == "a" and lease.spec.leaseTransitions == 0
    assert lease.spec.leaseDurationSeconds == 15 and lease.spec.acquireTime == lease.spec.renewTime
    assert a.leader_identity == "a"


async def test_unexpired_lease_of_another_is_not_taken() -> None:
    """A lease held by someone else is left alone until leaseDurationSeconds pass on our clock."""
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.advance(14.9)
    assert not await b.try_acquire_or_renew()
    assert store.lease().spec.holderIdentity == "a"


async def test_expired_lease_is_taken_over_with_one_more_transition() -> None:
    """After leaseDurationSeconds without a change, another candidate takes over: new acquireTime, transitions+1."""
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # b observes the record now
    clock.advance(15.1)
    assert await b.try_acquire_or_renew()
    lease = store.lease()
    assert lease.spec.holderIdentity == "b" and lease.spec.leaseTransitions == 1
    assert b.leader_identity == "b"


async def test_expiry_counts_from_when_the_change_was_observed() -> None:
    """A renewal seen late restarts the wait from the moment we saw it, not from its (remote) renewTime."""
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.advance(10)
    store.overwrite("a")  # a renews; b sees the change only at its next read
    clock.advance(10)
    assert not await b.try_acquire_or_renew()  # 20 s since b first looked, but the record changed
    clock.advance(14)
    assert not await b.try_acquire_or_renew()
    clock.advance(1.1)
    assert await b.try_acquire_or_renew()


async def test_remote_timestamps_are_never_compared() -> None:
    """A renewTime far in the past does not make a freshly observed lease look expired."""
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    store.lease().spec.renewTime.seconds = 1
    store.lease().spec.acquireTime.seconds = 1
    assert not await b.try_acquire_or_renew()


async def test_renewal_keeps_acquire_time_and_transitions() -> None:
    """The holder renewing changes renewTime only: acquireTime and leaseTransitions stay."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    before = Lease()
    before.CopyFrom(store.lease())
    clock.advance(2)
    store.lease().spec.renewTime.seconds -= 5  # make the renewTime change visible even within a second
    assert await a.try_acquire_or_renew()
    after = store.lease()
    assert after.spec.acquireTime == before.spec.acquireTime
    assert after.spec.leaseTransitions == before.spec.leaseTransitions
    assert after.metadata.resourceVersion != before.metadata.resourceVersion


async def test_renewal_after_someone_else_wrote_falls_back_and_loses() -> None:
    """If another candidate wrote the Lease, our optimistic renewal conflicts, we re-read and see it is theirs."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    store.overwrite("intruder")
    assert not await a.try_acquire_or_renew()
    assert a.leader_identity == "intruder"
    assert store.lease().spec.holderIdentity == "intruder"


async def test_api_errors_fail_the_round_without_raising() -> None:
    """An unavailable apiserver makes a round return False."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    store.fail_with = api.Unavailable("down")
    assert not await a.try_acquire_or_renew()


async def test_is_leader_expires_renew_deadline_after_the_last_renewal() -> None:
    """is_leader() is True just after a renewal and False once renew_deadline has passed without one."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert not a.is_leader()
    assert await a.try_acquire_or_renew()
    a._leading = True  # as run() does after acquiring
    assert a.is_leader()
    clock.advance(9.9)
    assert a.is_leader()
    a.check_leading()
    clock.advance(0.2)  # e.g. the process was frozen: nothing else ran, the clock moved on
    assert not a.is_leader()
    with pytest.raises(NotLeader):
        a.check_leading()
    assert await a.try_acquire_or_renew()
    assert a.is_leader()


async def test_is_leader_is_false_when_the_lease_is_someone_elses() -> None:
    """Observing another holder makes is_leader() False at once, whatever the deadline says."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    a._leading = True
    store.overwrite("b")
    await a.try_acquire_or_renew()
    assert not a.is_leader()


async def test_release_only_if_still_held() -> None:
    """Release clears the holder with a 1 s duration, keeps transitions, and leaves a lease taken since alone."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    assert await a._release()
    lease = store.lease()
    assert lease.spec.holderIdentity == "" and lease.spec.leaseDurationSeconds == 1
    assert lease.spec.leaseTransitions == 0
    b = elector(store, clock, "b")
    assert await b.try_acquire_or_renew()  # a released lease is taken at once
    assert store.lease().spec.leaseTransitions == 1
    rv = store.lease().metadata.resourceVersion
    assert await a._release()  # a no longer holds it: nothing written
    assert store.lease().metadata.resourceVersion == rv and store.lease().spec.holderIdentity == "b"


async def test_release_after_a_takeover_we_did_not_see_leaves_it_alone() -> None:
    """A release is a CAS on the Lease we last saw, so it cannot clobber a successor we have not observed."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    store.overwrite("b")
    rv = store.lease().metadata.resourceVersion
    assert await a._release()  # not ours any more
    assert store.lease().spec.holderIdentity == "b" and store.lease().metadata.resourceVersion == rv
    assert a.leader_identity == "b"


async def test_release_after_an_unseen_renewal_of_our_own_succeeds() -> None:
    """If our last renewal committed but its answer was lost (cancelled in flight), release re-reads and still releases."""
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    store.overwrite("a")  # a newer resourceVersion still naming us
    assert await a._release()
    assert store.lease().spec.holderIdentity == "" and store.lease().spec.leaseDurationSeconds == 1


async def test_run_steps_down_when_the_lease_is_taken() -> None:
    """While leading, a lost lease cancels the leading task, calls on_stopped_leading and returns from run()."""
    store = FakeLeases()
    calls: list[str] = []
    cancelled = asyncio.Event()

    async def lead() -> None:
        calls.append("started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def stopped() -> None:
        calls.append("stopped")

    config = LeaderElectionConfig("lock", "ns", identity="a", lease_duration=1.0, renew_deadline=0.5,
                                  retry_period=0.05)
    a = LeaderElector(store, config, on_started_leading=lead, on_stopped_leading=stopped)
    run = asyncio.create_task(a.run())
    while "started" not in calls:
        await asyncio.sleep(0.01)
    assert a.is_leader()
    store.overwrite("intruder")
    await asyncio.wait_for(run, timeout=30)
    assert calls == ["started", "stopped"] and cancelled.is_set()
    assert not a.is_leader()
    assert store.lease().spec.holderIdentity == "intruder"  # our release lost its CAS


async def test_run_steps_down_when_renewals_keep_failing() -> None:
    """If no renewal succeeds within renew_deadline, run() steps down on its own."""
    store = FakeLeases()
    started = asyncio.Event()

    async def lead() -> None:
        started.set()
        await asyncio.sleep(3600)

    config = LeaderElectionConfig("lock", "ns", identity="a", lease_duration=1.0, renew_deadline=0.3,
                                  retry_period=0.05)
    a = LeaderElector(store, config, on_started_leading=lead)
    run = asyncio.create_task(a.run())
    await asyncio.wait_for(started.wait(), timeout=30)
    store.fail_with = api.Unavailable("down")
    await asyncio.wait_for(run, timeout=30)
    assert not a.is_leader()


async def test_on_started_leading_failure_steps_down_and_reraises() -> None:
    """An exception from on_started_leading steps down, releases the lease and propagates from run()."""
    store = FakeLeases()

    async def lead() -> None:
        raise RuntimeError("controller crashed")

    config = LeaderElectionConfig("lock", "ns", identity="a", lease_duration=1.0, renew_deadline=0.5,
                                  retry_period=0.05)
    a = LeaderElector(store, config, on_started_leading=lead)
    with pytest.raises(RuntimeError, match="controller crashed"):
        await asyncio.wait_for(a.run(), timeout=30)
    assert store.lease().spec.holderIdentity == ""


async def test_on_new_leader_reports_each_new_holder() -> None:
    """on_new_leader is called with each newly observed holder, once."""
    store, clock = FakeLeases(), FakeClock()
    seen: list[str] = []

    async def new_leader(identity: str) -> None:
        seen.append(identity)

    config = LeaderElectionConfig("lock", "ns", identity="b", clock=clock)
    b = LeaderElector(store, config, on_started_leading=_idle, on_new_leader=new_leader)
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    for _ in range(2):
        await b.try_acquire_or_renew()
        b._maybe_report_transition()
    await asyncio.sleep(0)
    assert seen == ["a"]
