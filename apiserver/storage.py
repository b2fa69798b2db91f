"""etcd storage: every write a compare-and-swap transaction, resourceVersion = mod_revision.

Only the apiserver talks to etcd. We use aetcd for the connection and its generated etcd
protobufs for the calls themselves, because we need the response headers (revisions), watch
progress notifications and compaction errors that aetcd's convenience layer hides.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

import aetcd
import grpc
from aetcd import rpc

from kplane.logs import get_logger

log = get_logger(component="apiserver")


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


# Every delete through the API puts TOMBSTONE_PREFIX + key in the same transaction (see
# apiserver/history.py): the deletion's revision stays findable after the key is gone.
TOMBSTONE_PREFIX = "/kplane/deleted"


class StorageError(Exception):
    pass


class KeyExists(StorageError):
    pass


class KeyNotFound(StorageError):
    pass


class RevisionMismatch(StorageError):
    """The compare-and-swap failed: the key changed (or vanished) since it was read."""

    def __init__(self, current: KV | None) -> None:
        super().__init__("revision mismatch")
        self.current = current


class RevisionCompacted(StorageError):
    def __init__(self, compact_revision: int, message: str = "") -> None:
        super().__init__(message or f"required revision has been compacted (oldest retained: {compact_revision})")
        self.compact_revision = compact_revision


class FutureRevision(StorageError):
    pass


class EtcdUnavailable(StorageError):
    pass


class LeaseNotFound(StorageError):
    """A put named a lease etcd no longer has (revoked, or expired while cached)."""


class WriteHooks(Protocol):
    """What the server adds to every compare-and-swap write (apiserver/history.py): an etcd lease
    for keys that expire (Events), and extra puts in the same transaction (who wrote it)."""

    async def write_ops(self, key: str, op: str) -> tuple[int, list[tuple[str, bytes, int]]]:
        """(lease for the key's own put or 0, extra puts as (key, value, lease)); op is
        "create", "update" or "delete"."""
        ...

    def lease_lost(self) -> None:
        """A put failed with LeaseNotFound: forget cached leases (the write is retried once)."""
        ...


@dataclass(frozen=True, slots=True)
class Companions:
    """Keys written in the same transaction as an object (the Service allocator's keys,
    apiserver/allocator.py): each `claim` key must not exist yet — else nothing is written and
    the write raises ClaimTaken — and is put; each `release` key is deleted if it still holds
    the given value (a nested transaction: a key someone else now holds is left alone)."""

    claim: tuple[tuple[str, bytes], ...] = ()
    release: tuple[tuple[str, bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.claim or self.release)


class ClaimTaken(StorageError):
    """A companion key to claim already exists: the object write was not applied."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(f"already claimed: {', '.join(keys)}")
        self.keys = list(keys)


class WriteOutcomeUnknown(StorageError):
    """A transaction timed out after it was sent: it may or may not have been applied."""


def _range_end(prefix: bytes) -> bytes:
    return aetcd.utils.prefix_range_end(prefix)  # type: ignore[no-any-return]


def parse_endpoints(servers: str | Sequence[str]) -> list[tuple[str, int]]:
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        url = urlparse(item if "://" in item else f"http://{item}")
        out.append((url.hostname or "127.0.0.1", url.port or 2379))
    if not out:
        raise ValueError("no etcd servers given")
    return out


class Storage:
    """A thin async etcd KV layer with Kubernetes' storage contract."""

    def __init__(self, servers: str | Sequence[str], *, timeout: float = 10.0) -> None:
        self.endpoints = parse_endpoints(servers)
        self.timeout = timeout
        self._client: aetcd.Client | None = None
        self._kv: rpc.KVStub | None = None
        self._lock = asyncio.Lock()
        self.hooks: WriteHooks | None = None

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> None:
        async with self._lock:
            if self._client is not None:
                return
            last: Exception | None = None
            for host, port in self.endpoints:
                client = aetcd.Client(host=host, port=port, timeout=None, options={
                    "grpc.max_receive_message_length": 256 * 1024 * 1024,
                    "grpc.keepalive_time_ms": 10_000,
                })
                try:
                    await client.connect()
                    kv = rpc.KVStub(client.channel)
                    await kv.Range(rpc.RangeRequest(key=b"\0", limit=1, keys_only=True), timeout=self.timeout)
                except Exception as exc:
                    last = exc
                    await client.close()
                    continue
                self._client, self._kv = client, kv
                return
            raise EtcdUnavailable(f"cannot reach etcd at {self.endpoints}: {last}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._kv = None

    @property
    def channel(self) -> grpc.aio.Channel:
        assert self._client is not None, "storage not connected"
        return self._client.channel

    @property
    def kv(self) -> rpc.KVStub:
        assert self._kv is not None, "storage not connected"
        return self._kv

    async def _call(self, method: str, request: object) -> object:
        """One KV call, translating etcd's gRPC errors into storage errors."""
        try:
            return await getattr(self.kv, method)(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if "compacted" in details:
                raise RevisionCompacted(0, details) from None
            if "future revision" in details:
                raise FutureRevision(details) from None
            if "lease not found" in details:
                raise LeaseNotFound(details) from None
            if method == "Txn" and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise WriteOutcomeUnknown(f"etcd did not answer in time: {details}") from None
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise EtcdUnavailable(f"etcd unavailable: {details}") from None
            raise

    # -- reads -----------------------------------------------------------------------------

    async def get(self, key: str, revision: int = 0) -> KV | None:
        resp = await self._call("Range", rpc.RangeRequest(key=key.encode(), revision=revision))
        kvs = resp.kvs  # type: ignore[attr-defined]
        if not kvs:
            return None
        kv = kvs[0]
        return KV(key, kv.value, kv.mod_revision, kv.create_revision)

    async def list(self, prefix: str, revision: int = 0, limit: int = 0,
                   start: str | None = None) -> tuple[list[KV], int, bool]:
        """Every key under prefix at revision (0 = latest); returns (kvs, revision read at, more)."""
        key = (start or prefix).encode()
        resp = await self._call(
            "Range",
            rpc.RangeRequest(key=key, range_end=_range_end(prefix.encode()), revision=revision, limit=limit),
        )
        kvs = [KV(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision) for kv in resp.kvs]  # type: ignore[attr-defined]
        read_rev = revision or resp.header.revision  # type: ignore[attr-defined]
        return kvs, read_rev, bool(resp.more)  # type: ignore[attr-defined]

    async def current_revision(self) -> int:
        resp = await self._call("Range", rpc.RangeRequest(key=b"\0", limit=1, keys_only=True, count_only=True))
        return int(resp.header.revision)  # type: ignore[attr-defined]

    async def prefix_state(self, prefix: str, after_revision: int) -> tuple[int, int, int]:
        """(keys under prefix or its tombstones modified after `after_revision`, keys under prefix,
        revision), read atomically in one transaction: lets the watch cache prove it is up to date.

        A key created and deleted again after `after_revision` leaves nothing under the prefix,
        so counting the prefix alone cannot see it; every delete through the API also puts a
        tombstone (`TOMBSTONE_PREFIX + key`, in the delete's own transaction), and a tombstone
        newer than `after_revision` counts as a change."""
        k = prefix.encode()
        end = _range_end(k)
        tk = (TOMBSTONE_PREFIX + prefix).encode()

        def newer_than(key: bytes) -> rpc.RequestOp:
            # keys_only + limit, not count_only: etcd's count ignores the min_mod_revision filter
            return rpc.RequestOp(request_range=rpc.RangeRequest(key=key, range_end=_range_end(key), keys_only=True,
                                                                limit=1, min_mod_revision=after_revision + 1))

        resp = await self._call("Txn", rpc.TxnRequest(success=[
            newer_than(k),
            rpc.RequestOp(request_range=rpc.RangeRequest(key=k, range_end=end, count_only=True)),
            newer_than(tk),
        ]))
        newer = len(resp.responses[0].response_range.kvs) + len(resp.responses[2].response_range.kvs)  # type: ignore[attr-defined]
        total = int(resp.responses[1].response_range.count)  # type: ignore[attr-defined]
        return newer, total, int(resp.header.revision)  # type: ignore[attr-defined]

    async def compact_revision_floor(self) -> int:
        """Oldest revision still readable (found by probing: etcd does not report it directly)."""
        resp = await self._call("Range", rpc.RangeRequest(key=b"\0", limit=1, keys_only=True, count_only=True))
        current = int(resp.header.revision)  # type: ignore[attr-defined]
        lo, hi = 1, current
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                await self._call("Range", rpc.RangeRequest(key=b"\0", revision=mid, count_only=True))
                hi = mid
            except RevisionCompacted:
                lo = mid + 1
        return lo

    # -- writes (all compare-and-swap) -----------------------------------------------------

    async def _write(self, key: str, op: str, compare: object, value: bytes | None,
                     companions: Companions | None = None) -> object:
        """One compare-and-swap transaction: `value` put (or the key deleted when None) plus the
        hooks' extra puts and the companion keys if `compare` holds (and every claimed key is
        absent), else the key's current state (and the claimed keys) read back."""
        k = key.encode()
        claim = companions.claim if companions else ()
        release = companions.release if companions else ()
        compares = [compare, *(rpc.Compare(key=ck.encode(), result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE,
                                           create_revision=0) for ck, _ in claim)]
        own = [*(rpc.RequestOp(request_put=rpc.PutRequest(key=ck.encode(), value=cv)) for ck, cv in claim),
               *(rpc.RequestOp(request_txn=rpc.TxnRequest(
                   compare=[rpc.Compare(key=rk.encode(), result=rpc.Compare.EQUAL, target=rpc.Compare.VALUE, value=rv)],
                   success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=rk.encode()))]))
                 for rk, rv in release)]
        for attempt in (0, 1):
            lease, extra = await self.hooks.write_ops(key, op) if self.hooks is not None else (0, [])
            main = (rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k)) if value is None
                    else rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, lease=lease)))
            success = [main, *(rpc.RequestOp(request_put=rpc.PutRequest(key=ek.encode(), value=ev, lease=el))
                               for ek, ev, el in extra), *own]
            failure = [] if op == "create" and not claim else [rpc.RequestOp(request_range=rpc.RangeRequest(key=k))]
            failure += [rpc.RequestOp(request_range=rpc.RangeRequest(key=ck.encode(), keys_only=True)) for ck, _ in claim]
            try:
                return await self._call("Txn", rpc.TxnRequest(compare=compares, success=success, failure=failure))
            except LeaseNotFound:
                # nothing was applied: a transaction fails as a whole; retry with fresh leases
                if attempt or self.hooks is None:
                    raise
                self.hooks.lease_lost()
        raise AssertionError("unreachable")

    async def create(self, key: str, value: bytes, companions: Companions | None = None) -> int:
        """Put key only if it does not exist (create_revision == 0). Returns the new revision.
        KeyExists if it does; ClaimTaken if a companion key to claim exists."""
        cmp = rpc.Compare(key=key.encode(), result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, create_revision=0)
        resp = await self._write(key, "create", cmp, value, companions)
        if not resp.succeeded:  # type: ignore[attr-defined]
            if companions and companions.claim and self._current_from_failure(key, resp) is None:
                raise ClaimTaken(self._claimed_from_failure(resp))
            raise KeyExists(key)
        return int(resp.header.revision)  # type: ignore[attr-defined]

    async def update(self, key: str, value: bytes, expected_revision: int,
                     companions: Companions | None = None) -> int:
        """Put key only if its mod_revision is still expected_revision; else RevisionMismatch
        (or ClaimTaken when the key matched but a companion key to claim exists)."""
        cmp = rpc.Compare(key=key.encode(), result=rpc.Compare.EQUAL, target=rpc.Compare.MOD,
                          mod_revision=expected_revision)
        resp = await self._write(key, "update", cmp, value, companions)
        if not resp.succeeded:  # type: ignore[attr-defined]
            self._raise_write_failure(key, resp, expected_revision)
        return int(resp.header.revision)  # type: ignore[attr-defined]

    async def delete(self, key: str, expected_revision: int, companions: Companions | None = None) -> int:
        """Delete key only if its mod_revision is still expected_revision; else RevisionMismatch."""
        cmp = rpc.Compare(key=key.encode(), result=rpc.Compare.EQUAL, target=rpc.Compare.MOD,
                          mod_revision=expected_revision)
        resp = await self._write(key, "delete", cmp, None, companions)
        if not resp.succeeded:  # type: ignore[attr-defined]
            self._raise_write_failure(key, resp, expected_revision)
        return int(resp.header.revision)  # type: ignore[attr-defined]

    def _raise_write_failure(self, key: str, resp: object, expected_revision: int) -> None:
        current = self._current_from_failure(key, resp)
        if current is not None and current.mod_revision == expected_revision:
            taken = self._claimed_from_failure(resp)
            if taken:
                raise ClaimTaken(taken)
        raise RevisionMismatch(current)

    @staticmethod
    def _current_from_failure(key: str, resp: object) -> KV | None:
        """The object key's state, read by the failure branch's first operation."""
        ops = resp.responses  # type: ignore[attr-defined]
        if ops:
            kvs = ops[0].response_range.kvs
            if kvs:
                return KV(key, kvs[0].value, kvs[0].mod_revision, kvs[0].create_revision)
        return None

    @staticmethod
    def _claimed_from_failure(resp: object) -> Sequence[str]:
        """Companion keys (read after the object key) that already exist."""
        return [op.response_range.kvs[0].key.decode() for op in list(resp.responses)[1:]  # type: ignore[attr-defined]
                if op.response_range.kvs]

    async def put_raw(self, key: str, value: bytes) -> int:
        resp = await self._call("Put", rpc.PutRequest(key=key.encode(), value=value))
        return int(resp.header.revision)  # type: ignore[attr-defined]

    async def compact(self, revision: int) -> None:
        await self._call("Compact", rpc.CompactionRequest(revision=revision, physical=False))

    async def compact_with_key(self, revision: int, key: str = "compact_rev_key") -> bool:
        """Compact once per cluster: several apiservers agree through a CAS on compact_rev_key."""
        k = key.encode()
        current = await self.get(key)
        if current is not None and int(current.value or b"0") >= revision:
            return False
        version_cmp = (
            rpc.Compare(key=k, result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, mod_revision=current.mod_revision)
            if current is not None
            else rpc.Compare(key=k, result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, create_revision=0)
        )
        resp = await self._call("Txn", rpc.TxnRequest(
            compare=[version_cmp],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=str(revision).encode()))],
        ))
        if not resp.succeeded:  # type: ignore[attr-defined]
            return False
        try:
            await self.compact(revision)
        except RevisionCompacted:
            pass
        return True

    # -- watch -----------------------------------------------------------------------------

    def open_watch(self, prefix: str, start_revision: int, *, prev_kv: bool = False,
                   range_end: bytes | None = None) -> EtcdWatch:
        """A watch on every key under `prefix` (or on [prefix, range_end) when range_end is given:
        b"" watches the one key, b"\\0" every key from it on)."""
        return EtcdWatch(rpc.WatchStub(self.channel), prefix, start_revision, prev_kv=prev_kv, range_end=range_end)


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Events of one etcd watch response, or a progress notification (events empty)."""

    revision: int
    events: list[tuple[str, KV, KV | None]]  # ("PUT"|"DELETE", kv, prev_kv)


class EtcdWatch:
    """One etcd watch on its own stream: events in revision order, progress notifications,
    compaction surfaced as RevisionCompacted. `request_progress()` asks etcd to confirm how far
    it has delivered (used to serve consistent reads from the watch cache)."""

    def __init__(self, stub: rpc.WatchStub, prefix: str, start_revision: int, *, prev_kv: bool,
                 range_end: bytes | None = None) -> None:
        self._stub = stub
        self._requests: asyncio.Queue[object] = asyncio.Queue()
        key = prefix.encode()
        self._requests.put_nowait(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=key, range_end=_range_end(key) if range_end is None else range_end, start_revision=start_revision, progress_notify=True,
            prev_kv=prev_kv, watch_id=random.randint(1, 2**62),
        )))
        self._call: object | None = None
        self._closed = False

    def request_progress(self) -> None:
        if not self._closed:
            self._requests.put_nowait(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    async def _request_iter(self) -> AsyncIterator[object]:
        while True:
            item = await self._requests.get()
            if item is None:
                return
            yield item

    async def __aiter__(self) -> AsyncIterator[WatchBatch]:
        call = self._stub.Watch(self._request_iter())
        self._call = call
        try:
            async for resp in call:
                if resp.compact_revision:
                    raise RevisionCompacted(resp.compact_revision)
                if resp.canceled:
                    raise EtcdUnavailable(f"etcd cancelled the watch: {resp.cancel_reason}")
                if resp.created and not resp.events:
                    continue
                events = []
                for ev in resp.events:
                    kv = ev.kv
                    prev = ev.prev_kv if ev.HasField("prev_kv") else None
                    events.append((
                        "DELETE" if ev.type == 1 else "PUT",
                        KV(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision),
                        KV(prev.key.decode(), prev.value, prev.mod_revision, prev.create_revision) if prev else None,
                    ))
                yield WatchBatch(resp.header.revision, events)
        except grpc.aio.AioRpcError as exc:
            raise EtcdUnavailable(f"etcd watch failed: {exc.code().name} {exc.details()}") from None
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._requests.put_nowait(None)
            if self._call is not None:
                self._call.cancel()  # type: ignore[attr-defined]
