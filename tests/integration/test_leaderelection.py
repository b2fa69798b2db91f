"""Leader election against a real apiserver: candidate processes killed, frozen and stopped, plus
in-process release and compare-and-swap races.

Timings are short (lease 3 s, renew 2 s, retry 0.5 s). Waits poll with generous deadlines; the only
time bounds asserted are multiples of the lease duration that tell "took over after expiry" from
"took over after a release". Candidates log `<unix time> <identity> <what>` lines to one shared file.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.message import Message

from kplane.api import errors as api
from kplane.api.codec import copy_message
from kplane.api.pb.coordination_pb2 import Lease
from kplane.api.resources import ResourceType, resolve
from kplane.client.client import Client
from kplane.client.leaderelection import LeaderElectionConfig, LeaderElector
from kplane.devcluster import APIServer

LEASES = resolve("leases")
SCRIPT = Path(__file__).with_name("leader_candidate.py")
LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
DEADLINE = 60.0  # polling deadline for anything that should happen "soon"


@dataclass(frozen=True)
class Line:
    at: float
    identity: str
    what: str


def read_lines(path: Path) -> list[Line]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        at, identity, what = raw.split(" ", 2)
        lines.append(Line(float(at), identity, what))
    return lines


def first(lines: list[Line], identity: str, what: str) -> Line | None:
    return next((ln for ln in lines if ln.identity == identity and ln.what == what), None)


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def assert_no_overlap(lines: list[Line]) -> None:
    """Each leader's writes all precede the next leader's start: never two leaders acting at once."""
    starts = [ln for ln in lines if ln.what == "started leading"]
    for prev, nxt in itertools.pairwise(starts):
        late = [ln for ln in lines if ln.identity == prev.identity and ln.what == "write" and ln.at >= nxt.at]
        assert not late, f"{prev.identity} wrote after {nxt.identity} started leading: {late[:3]}"


class Candidates:
    """Candidate processes for one lock, all logging to one file; killed at teardown."""

    def __init__(self, apiserver: APIServer, namespace: str, tmp: Path) -> None:
        self.apiserver = apiserver
        self.namespace = namespace
        self.tmp = tmp
        self.lock = f"lock-{uuid.uuid4().hex[:8]}"
        self.log = tmp / "leaders.log"
        self.log.touch()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, identity: str, lease: float = LEASE, renew: float = RENEW, retry: float = RETRY) -> None:
        cmd = [sys.executable, str(SCRIPT), "--server", self.apiserver.address, "--lock", self.lock,
               "--namespace", self.namespace, "--identity", identity, "--lease", str(lease),
               "--renew", str(renew), "--retry", str(retry), "--log", str(self.log)]
        with open(self.tmp / f"{identity}.stderr", "wb") as err:
            self.procs[identity] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)

    def lines(self) -> list[Line]:
        return read_lines(self.log)

    def signal(self, identity: str, sig: signal.Signals) -> float:
        """Send `sig`; returns the wall time just before it was sent."""
        at = time.time()
        os.kill(self.procs[identity].pid, sig)
        return at

    async def wait_exit(self, identity: str) -> int:
        proc = self.procs[identity]
        try:
            await eventually(lambda: proc.poll() is not None, f"{identity} to exit")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log.read_text()[-2000:]}\n{self.stderr()}") from None
        return proc.returncode

    async def leader(self) -> str:
        """The identity that started leading first (waits for one)."""
        await eventually(lambda: any(ln.what == "started leading" for ln in self.lines()), "a leader")
        return next(ln.identity for ln in self.lines() if ln.what == "started leading")

    async def started_leading(self, identity: str) -> Line:
        await eventually(lambda: first(self.lines(), identity, "started leading") is not None,
                         f"{identity} to start leading")
        line = first(self.lines(), identity, "started leading")
        assert line is not None
        return line

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=30)

    def stderr(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp.glob("*.stderr")))


@pytest.fixture
def candidates(apiserver: APIServer, namespace: str, tmp_path: Path) -> Iterator[Candidates]:
    group = Candidates(apiserver, namespace, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


async def lease_of(client: Client, group: Candidates) -> Lease:
    lease = await client.get(LEASES, group.lock, namespace=group.namespace)
    assert isinstance(lease, Lease)
    return lease


async def test_one_leader_then_failover_after_sigkill(client: Client, candidates: Candidates) -> None:
    """Of two candidates exactly one leads; after SIGKILL the other takes over within 3x the lease, transitions+1."""
    candidates.start("a")
    candidates.start("b")
    leader = await candidates.leader()
    follower = "b" if leader == "a" else "a"
    await asyncio.sleep(LEASE + 1)  # a stable period longer than the lease: the follower must stay out
    assert {ln.identity for ln in candidates.lines() if ln.what == "started leading"} == {leader}
    lease = await lease_of(client, candidates)
    assert lease.spec.holderIdentity == leader and lease.spec.leaseTransitions == 0
    assert lease.spec.leaseDurationSeconds == 3

    killed_at = candidates.signal(leader, signal.SIGKILL)
    took_over = await candidates.started_leading(follower)
    assert took_over.at - killed_at < 3 * LEASE, candidates.stderr()
    lease = await lease_of(client, candidates)
    assert lease.spec.holderIdentity == follower and lease.spec.leaseTransitions == 1
    assert lease.spec.acquireTime.ToNanoseconds() > 0
    assert_no_overlap(candidates.lines())


async def test_frozen_leader_stops_acting_before_writing(client: Client, candidates: Candidates) -> None:
    """A leader frozen with SIGSTOP loses the lease; after SIGCONT it steps down without writing anything more."""
    candidates.start("a")
    candidates.start("b")
    leader = await candidates.leader()
    follower = "b" if leader == "a" else "a"
    await eventually(lambda: first(candidates.lines(), leader, "write") is not None, f"{leader} to write")

    frozen_at = candidates.signal(leader, signal.SIGSTOP)
    took_over = await candidates.started_leading(follower)
    await eventually(lambda: sum(ln.identity == follower and ln.what == "write" for ln in candidates.lines()) >= 3,
                     f"{follower} to write")
    lease = await lease_of(client, candidates)
    assert lease.spec.holderIdentity == follower and lease.spec.leaseTransitions == 1

    woken_at = candidates.signal(leader, signal.SIGCONT)
    assert await candidates.wait_exit(leader) == 1, candidates.stderr()  # run() returned: leadership lost
    lines = candidates.lines()
    stopped = first(lines, leader, "stopped leading")
    assert stopped is not None and stopped.at >= woken_at
    late = [ln for ln in lines if ln.identity == leader and ln.what == "write" and ln.at >= frozen_at]
    assert not late, f"the frozen leader wrote after it was frozen: {late}"
    assert all(ln.at < took_over.at for ln in lines if ln.identity == leader and ln.what == "write")
    assert_no_overlap(lines)
    # Its renewal and release lost their compare-and-swap: the follower still holds the lease.
    lease = await lease_of(client, candidates)
    assert lease.spec.holderIdentity == follower and lease.spec.leaseTransitions == 1
    await eventually(lambda: any(ln.identity == follower and ln.what == "write" and ln.at > woken_at + 1
                                 for ln in candidates.lines()), f"{follower} to keep writing")


async def test_sigterm_releases_the_lease_for_a_fast_handover(client: Client, candidates: Candidates) -> None:
    """A leader stopped with SIGTERM releases the lease, so the other takes over well before the lease would expire."""
    long_lease = 10.0  # without a release the takeover would take about this long
    candidates.start("a", lease=long_lease)
    candidates.start("b", lease=long_lease)
    leader = await candidates.leader()
    follower = "b" if leader == "a" else "a"
    await asyncio.sleep(1)
    terminated_at = candidates.signal(leader, signal.SIGTERM)
    assert await candidates.wait_exit(leader) == 0, candidates.stderr()
    took_over = await candidates.started_leading(follower)
    assert took_over.at - terminated_at < long_lease / 2
    lines = candidates.lines()
    assert first(lines, leader, "stopped leading") is not None
    assert_no_overlap(lines)
    lease = await lease_of(client, candidates)
    assert lease.spec.holderIdentity == follower and lease.spec.leaseTransitions == 1


# -- in process ------------------------------------------------------------------------------------


def config(namespace: str, lock: str, identity: str) -> LeaderElectionConfig:
    return LeaderElectionConfig(lock, namespace, identity=identity, lease_duration=LEASE, renew_deadline=RENEW,
                                retry_period=RETRY)


@pytest.fixture
def lock() -> str:
    return f"lock-{uuid.uuid4().hex[:8]}"


async def _forever() -> None:
    await asyncio.sleep(3600)


async def test_cancel_releases_the_lease(client: Client, namespace: str, lock: str) -> None:
    """Cancelling run() stops the leading task, releases the lease (holder "", 1 s) and calls on_stopped_leading."""
    events: list[str] = []

    async def lead() -> None:
        events.append("started")
        try:
            await asyncio.sleep(3600)
        finally:
            events.append("leading task ended")

    async def stopped() -> None:
        events.append("stopped")

    a = LeaderElector(client, config(namespace, lock, "a"), on_started_leading=lead, on_stopped_leading=stopped)
    run = asyncio.create_task(a.run())
    await eventually(a.is_leader, "a to lead")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert events == ["started", "leading task ended", "stopped"]
    assert not a.is_leader()
    lease = await client.get(LEASES, lock, namespace=namespace)
    assert isinstance(lease, Lease)
    assert lease.spec.holderIdentity == "" and lease.spec.leaseDurationSeconds == 1
    assert lease.spec.leaseTransitions == 0

    b = LeaderElector(client, config(namespace, lock, "b"), on_started_leading=_forever)
    assert await b.try_acquire_or_renew()  # no waiting for expiry after a release
    lease = await client.get(LEASES, lock, namespace=namespace)
    assert lease.spec.holderIdentity == "b" and lease.spec.leaseTransitions == 1  # type: ignore[attr-defined]


async def test_lost_lease_stops_leading(client: Client, namespace: str, lock: str) -> None:
    """When another writer takes the Lease, the leader notices on its next renewal, steps down and run() returns."""
    stopped = asyncio.Event()

    async def on_stopped() -> None:
        stopped.set()

    a = LeaderElector(client, config(namespace, lock, "a"), on_started_leading=_forever, on_stopped_leading=on_stopped)
    run = asyncio.create_task(a.run())
    await eventually(a.is_leader, "a to lead")
    lease = await client.get(LEASES, lock, namespace=namespace)
    assert isinstance(lease, Lease)
    lease.spec.holderIdentity = "intruder"
    await client.update(LEASES, lease, namespace=namespace)
    await asyncio.wait_for(run, timeout=DEADLINE)
    assert stopped.is_set() and not a.is_leader() and a.leader_identity == "intruder"
    lease = await client.get(LEASES, lock, namespace=namespace)
    assert lease.spec.holderIdentity == "intruder"  # type: ignore[attr-defined]


class LockstepClient:
    """Passes reads through but holds each update until `parties` updates are waiting, so
    concurrent candidates all write against the same resourceVersion."""

    def __init__(self, client: Client, barrier: asyncio.Barrier) -> None:
        self.client = client
        self.barrier = barrier

    async def get(self, rt: ResourceType, name: str, *, namespace: str = "") -> Message:
        return await self.client.get(rt, name, namespace=namespace)

    async def create(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message:
        return await self.client.create(rt, obj, namespace=namespace)

    async def update(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message:
        await self.barrier.wait()
        return await self.client.update(rt, obj, namespace=namespace)


async def test_concurrent_takeover_has_exactly_one_winner(client: Client, namespace: str, lock: str) -> None:
    """Two candidates writing a released lease at the same resourceVersion: one wins, the other gets a Conflict."""
    seed = LeaderElector(client, config(namespace, lock, "seed"), on_started_leading=_forever)
    assert await seed.try_acquire_or_renew()
    assert await seed._release()

    barrier = asyncio.Barrier(2)
    racers = [LeaderElector(LockstepClient(client, barrier), config(namespace, lock, name),
                            on_started_leading=_forever) for name in ("x", "y")]
    results = await asyncio.wait_for(asyncio.gather(*(r.try_acquire_or_renew() for r in racers)), DEADLINE)
    assert sorted(results) == [False, True]
    winner = racers[results.index(True)].identity
    lease = await client.get(LEASES, lock, namespace=namespace)
    assert isinstance(lease, Lease)
    assert lease.spec.holderIdentity == winner and lease.spec.leaseTransitions == 1

    # The stale write really is refused by the server: a CAS on the pre-race version conflicts.
    stale = copy_message(lease)
    stale.metadata.resourceVersion = str(int(lease.metadata.resourceVersion) - 1)
    with pytest.raises(api.Conflict):
        await client.update(LEASES, stale, namespace=namespace)
