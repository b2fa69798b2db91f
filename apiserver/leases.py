"""etcd leases shared by time bucket, for keys that expire on their own (Events, tombstones).

Kubernetes expires Events (`--event-ttl`, 1 h) by attaching an etcd lease to every Event write,
not with a sweeper: etcd deletes the key when its lease runs out, as one revision like any other
delete, and no process has to be running to make it happen. One lease per key would mean
thousands of leases for etcd to track, so — like the apiserver's LeaseManager upstream — a lease
is granted for `ttl + window` and reused for every key written during the next `window`
seconds: a key then lives between `ttl` and `ttl + window` after its last write, and the cluster
holds about `ttl / window` leases however many keys there are.

Invariant: a cached lease is handed out only while `now - granted_at < window`, so it always has
at least `ttl` seconds left. A lease etcd no longer knows (revoked by hand) surfaces as
`LeaseNotFound` on the write; `forget()` drops the cache and the write is retried once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from aetcd import rpc

from apiserver.storage import EtcdUnavailable, Storage
from kplane.logs import get_logger

log = get_logger(component="apiserver")

# Upstream reuses a lease for min(5 % of the TTL, 60 s).
MAX_REUSE_SECONDS = 60.0
REUSE_FRACTION = 0.05


@dataclass(frozen=True, slots=True)
class _Granted:
    lease_id: int
    granted_at: float


def reuse_window(ttl: float) -> float:
    """How long one lease is handed out for keys of this TTL (at least 1 s)."""
    return max(1.0, min(MAX_REUSE_SECONDS, ttl * REUSE_FRACTION))


class LeaseManager:
    def __init__(self, storage: Storage, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.storage = storage
        self.clock = clock
        self._granted: dict[int, _Granted] = {}  # by TTL in whole seconds
        self._locks: dict[int, asyncio.Lock] = {}
        self.grants = 0  # leases granted by this manager (a test and bench figure)

    async def lease(self, ttl: float) -> int:
        """A lease id under which a key lives at least `ttl` seconds (at most ttl + window)."""
        seconds = max(1, int(ttl))
        window = reuse_window(seconds)
        current = self._granted.get(seconds)
        if current is not None and self.clock() - current.granted_at < window:
            return current.lease_id
        lock = self._locks.setdefault(seconds, asyncio.Lock())
        async with lock:  # one grant per bucket, however many writers arrive at once
            current = self._granted.get(seconds)
            now = self.clock()
            if current is not None and now - current.granted_at < window:
                return current.lease_id
            stub = rpc.LeaseStub(self.storage.channel)
            try:
                resp = await stub.LeaseGrant(rpc.LeaseGrantRequest(TTL=int(seconds + window), ID=0),
                                             timeout=self.storage.timeout)
            except grpc.aio.AioRpcError as exc:
                raise EtcdUnavailable(f"etcd could not grant a lease: {exc.code().name} {exc.details()}") from None
            self._granted[seconds] = _Granted(int(resp.ID), now)
            self.grants += 1
            log.debug("granted lease", lease=int(resp.ID), ttl=int(seconds + window))
            return int(resp.ID)

    def forget(self) -> None:
        self._granted.clear()
