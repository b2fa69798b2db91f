"""Revision history, the change stream and write attribution — etcd's history, made readable.

etcd keeps every revision of every key until compaction; `metadata.resourceVersion` is the
etcd mod_revision. What etcd does not keep is *who* made a change, so every write through the
API also puts a small JSON record at one key, `WRITER_KEY`, **in the same transaction** (same
revision):

    /kplane/writer = {"m": "kube-scheduler", "u": "", "v": "create", "s": "binding", "t": <unix ms>}

The value of `WRITER_KEY` at revision N, if its mod_revision is N, says who wrote revision N —
for updates and deletes alike, retained and compacted exactly like the objects themselves, and
cheap: one key (no per-object bookkeeping), one extra put in a transaction etcd makes anyway.
Revisions without a record (an Event's lease expiring, a raw etcd write) are unattributed.

A delete also puts `TOMBSTONE_PREFIX + key` (on a lease living as long as history is retained),
so the history of an object that no longer exists can be found without scanning: the
tombstone's mod_revision is the deletion revision, and its own history chains earlier deletions.

Reading history (`History`): the current incarnation is found by walking the key's revisions
backwards with keys-only Ranges (`revision = mod_revision - 1`, cheap: no values), giving a list
of revision numbers; the entries are then read oldest first in batched read-only transactions
(the object and the writer record at each revision), so memory holds one batch of objects,
never the whole history. The change stream (`Changes`) is one etcd watch over the whole
keyspace from a revision, with previous values: the writer record of each revision arrives in
the same watch response as the change itself, and — every revision has at least one event in a
whole-keyspace watch — a stream that does not follow stops exactly at the revision current when
it started, with no reliance on progress notifications (unreliable before etcd 3.4.24/3.5.8).

Also here: `WriteRecorder`, the storage hooks that add the records, tombstones and the Event TTL
leases (apiserver/leases.py) to every write.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from aetcd import rpc
from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.timestamp_pb2 import Timestamp

from apiserver import audit
from apiserver.leases import LeaseManager
from apiserver.storage import (
    KV,
    TOMBSTONE_PREFIX,
    EtcdUnavailable,
    FutureRevision,
    RevisionCompacted,
    Storage,
)
from apiserver.watchcache import rv_suffix
from kplane.api import errors as api
from kplane.api.pb import api_pb2
from kplane.api.resources import RESOURCES, ResourceType, for_group_resource
from kplane.logs import get_logger

log = get_logger(component="apiserver")

WRITER_KEY = "/kplane/writer"
REGISTRY_PREFIX = "/registry/"
EVENTS_PREFIX = "/registry/events/"
# Revisions read per transaction (etcd's default --max-txn-ops is 128) and per message.
BATCH = 64
# Replay a key's history with a watch when its writes are at least 1/DENSE_FACTOR of the
# revisions in its lifetime (etcd then reads little else); walk back with Ranges otherwise.
DENSE_FACTOR = 100
# Changes per ChangeBatch message: big enough to amortise gRPC's per-message cost, small enough
# to keep messages (object + previous state each) to a few megabytes.
CHANGES_PER_MESSAGE = 256

AnyT = TypeVar("AnyT")

_BY_PLURAL: dict[str, ResourceType] = {rt.plural: rt for rt in RESOURCES}


# -- write records -------------------------------------------------------------------------------


def encode_record(info: audit.RequestInfo | None, op: str, now: float | None = None) -> bytes:
    """The JSON stored at WRITER_KEY for one write (short keys: it is written on every write)."""
    t = int((time.time() if now is None else now) * 1000)
    if info is None:
        doc = {"m": audit.SYSTEM_MANAGER, "v": op, "t": t}
    else:
        doc = {"m": info.manager, "v": info.verb or op, "t": t}
        if info.user:
            doc["u"] = info.user
        if info.subresource:
            doc["s"] = info.subresource
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_record(value: bytes) -> api_pb2.WriteRecord | None:
    try:
        doc = json.loads(value)
        millis = int(doc.get("t") or 0)
    except (ValueError, TypeError, AttributeError):
        return None
    ts = Timestamp(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)
    return api_pb2.WriteRecord(manager=str(doc.get("m") or ""), user=str(doc.get("u") or ""),
                               verb=str(doc.get("v") or ""), subresource=str(doc.get("s") or ""), time=ts)


class WriteRecorder:
    """The storage write hooks (apiserver/storage.py `WriteHooks`): the writer record with every
    write, a tombstone with every delete, an Event TTL lease on every Event put."""

    def __init__(self, leases: LeaseManager, *, event_ttl: float = 3600.0, tombstone_ttl: float = 3600.0) -> None:
        self.leases = leases
        self.event_ttl = event_ttl
        self.tombstone_ttl = tombstone_ttl

    async def write_ops(self, key: str, op: str) -> tuple[int, list[tuple[str, bytes, int]]]:
        extra = [(WRITER_KEY, encode_record(audit.current(), op), 0)]
        lease = 0
        if op == "delete":
            if key.startswith(REGISTRY_PREFIX):
                extra.append((TOMBSTONE_PREFIX + key, b"", await self.leases.lease(self.tombstone_ttl)))
        elif self.event_ttl > 0 and key.startswith(EVENTS_PREFIX):
            # re-attached on every put: a put without a lease would detach it (etcd semantics)
            lease = await self.leases.lease(self.event_ttl)
        return lease, extra

    def lease_lost(self) -> None:
        self.leases.forget()


# -- keys ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectKey:
    rt: ResourceType
    namespace: str
    name: str


def parse_key(key: str) -> ObjectKey | None:
    """`/registry/pods/ns/name` -> (pods, ns, name); None for anything that is not an object."""
    if not key.startswith(REGISTRY_PREFIX):
        return None
    parts = key[len(REGISTRY_PREFIX):].split("/")
    rt = _BY_PLURAL.get(parts[0])
    if rt is None:
        return None
    if rt.namespaced and len(parts) == 3:
        return ObjectKey(rt, parts[1], parts[2])
    if not rt.namespaced and len(parts) == 2:
        return ObjectKey(rt, "", parts[1])
    return None


def _ref(ok: ObjectKey) -> api_pb2.ResourceRef:
    return api_pb2.ResourceRef(group=ok.rt.group, version=ok.rt.version, resource=ok.rt.plural,
                               namespace=ok.namespace, name=ok.name)


def _any(rt: ResourceType, value: bytes, revision: int) -> AnyPb:
    return AnyPb(type_url=rt.type_url, value=value + rv_suffix(revision))


# -- history ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Generation:
    """One incarnation of a name: created at create_revision, last written at last_revision after
    `version` writes (etcd's count, compacted ones included), deleted at deleted_at (0: alive)."""

    create_revision: int
    last_revision: int
    version: int
    deleted_at: int = 0


class History:
    """The History, Changes and Retention RPCs."""

    def __init__(self, storage: Storage, *, retention: float = 3600.0, interval: float = 300.0,
                 event_ttl: float = 3600.0) -> None:
        self.storage = storage
        self.retention = retention
        self.interval = interval
        self.event_ttl = event_ttl

    # -- etcd reads --------------------------------------------------------------------------

    async def _range(self, key: str, revision: int = 0, *, keys_only: bool = False) -> Any:
        """etcd's KeyValue for `key` at `revision` (with version and lease), or None."""
        resp = await self.storage._call("Range", rpc.RangeRequest(key=key.encode(), revision=revision,
                                                                  keys_only=keys_only))
        kvs = resp.kvs  # type: ignore[attr-defined]
        return kvs[0] if kvs else None

    async def generations(self, key: str, include_deleted: bool) -> list[Generation]:
        """The incarnations of `key`, oldest first: the live one and, with include_deleted, every
        deleted one the tombstone's retained history still names. A few Ranges, no values."""
        gens: list[Generation] = []
        live = await self._range(key, keys_only=True)
        if live is not None:
            gens.append(Generation(live.create_revision, live.mod_revision, live.version))
        if include_deleted:
            tomb_key = TOMBSTONE_PREFIX + key
            try:
                tomb = await self._range(tomb_key, keys_only=True)
                while tomb is not None:
                    deleted_at = tomb.mod_revision
                    last = await self._range(key, deleted_at - 1, keys_only=True)
                    if last is None:
                        break
                    gens.append(Generation(last.create_revision, last.mod_revision, last.version, deleted_at))
                    tomb = await self._range(tomb_key, deleted_at - 1, keys_only=True)
            except RevisionCompacted:
                pass  # older deletions are beyond retained history
        gens.sort(key=lambda g: g.create_revision)
        return gens

    async def _states(self, key: str, gen: Generation) -> AsyncIterator[list[KV]]:
        """The retained states of one incarnation, oldest first, in batches.

        Dense histories (the key's writes are a good share of all revisions in its lifetime) are
        replayed by one watch on the key from its create revision: one stream, no round trip per
        revision. Sparse ones (a rarely changed object in a busy cluster, where that watch would
        make etcd read every revision of every key since) walk back with keys-only Ranges and read
        the values in batched transactions."""
        if gen.last_revision - gen.create_revision <= DENSE_FACTOR * gen.version:
            async for batch in self._states_by_watch(key, gen):
                yield batch
            return
        revisions = [gen.last_revision]
        rev = gen.last_revision
        while rev > gen.create_revision:
            try:
                prev = await self._range(key, rev - 1, keys_only=True)
            except RevisionCompacted:
                break
            if prev is None or prev.create_revision != gen.create_revision:
                break  # cannot happen for a consistent store; never loop on garbage
            rev = prev.mod_revision
            revisions.append(rev)
        revisions.reverse()
        for start in range(0, len(revisions), BATCH):
            ops = [rpc.RequestOp(request_range=rpc.RangeRequest(key=key.encode(), revision=r))
                   for r in revisions[start:start + BATCH]]
            resp = await self.storage._call("Txn", rpc.TxnRequest(success=ops))
            yield [KV(key, r.response_range.kvs[0].value, r.response_range.kvs[0].mod_revision,
                      r.response_range.kvs[0].create_revision)
                   for r in resp.responses if r.response_range.kvs]  # type: ignore[attr-defined]

    async def _states_by_watch(self, key: str, gen: Generation) -> AsyncIterator[list[KV]]:
        start = gen.create_revision
        while True:
            watch = self.storage.open_watch(key, start, range_end=b"")
            try:
                async for batch in watch:
                    states = [kv for kind, kv, _ in batch.events if kind == "PUT" and kv.mod_revision <= gen.last_revision]
                    for i in range(0, len(states), BATCH):
                        yield states[i:i + BATCH]
                    if any(kv.mod_revision >= gen.last_revision for _, kv, _ in batch.events):
                        return
            except RevisionCompacted as exc:
                # the creation is compacted: the first retained state is the value at the floor
                floor = exc.compact_revision
                first = await self._range(key, floor)
                if first is None or first.create_revision != gen.create_revision:
                    return
                yield [KV(key, first.value, first.mod_revision, first.create_revision)]
                if first.mod_revision >= gen.last_revision:
                    return
                start = floor + 1
                continue
            finally:
                watch.close()
            return

    async def _writers(self, revisions: Sequence[int]) -> list[api_pb2.WriteRecord | None]:
        """The writer record made at exactly each revision: one read-only transaction."""
        if not revisions:
            return []
        ops = [rpc.RequestOp(request_range=rpc.RangeRequest(key=WRITER_KEY.encode(), revision=rev))
               for rev in revisions]
        resp = await self.storage._call("Txn", rpc.TxnRequest(success=ops))
        out: list[api_pb2.WriteRecord | None] = []
        for rev, r in zip(revisions, resp.responses, strict=True):  # type: ignore[attr-defined]
            kvs = r.response_range.kvs
            out.append(decode_record(kvs[0].value) if kvs and kvs[0].mod_revision == rev else None)
        return out

    async def batches(self, rt: ResourceType, namespace: str, name: str, *, include_deleted: bool = False,
                      at_revision: int = 0) -> AsyncIterator[list[api_pb2.HistoryEntry]]:
        """History entries oldest first, in batches (raises api errors before the first one)."""
        key = rt.key(namespace, name)
        if at_revision:
            yield [await self._at(rt, key, name, at_revision)]
            return
        gens = await self.generations(key, include_deleted)
        if not gens:
            gone = " (nor any deletion of it in retained history)" if include_deleted else ""
            raise api.NotFound(f'{rt.group_resource} "{name}" not found{gone}', kind=rt.plural, name=name)
        oldest = 0
        try:
            for gen in gens:
                last: KV | None = None
                async for states in self._states(key, gen):
                    if not states:
                        continue
                    if last is None and states[0].mod_revision != gen.create_revision and not oldest:
                        oldest = await self.storage.compact_revision_floor()
                    writers = await self._writers([kv.mod_revision for kv in states])
                    yield [api_pb2.HistoryEntry(
                        revision=kv.mod_revision, type="ADDED" if kv.mod_revision == gen.create_revision else "MODIFIED",
                        object=_any(rt, kv.value, kv.mod_revision), writer=writer, oldest_retained_revision=oldest)
                        for kv, writer in zip(states, writers, strict=True)]
                    last = states[-1]
                if gen.deleted_at and last is not None:
                    [writer] = await self._writers([gen.deleted_at])
                    yield [api_pb2.HistoryEntry(revision=gen.deleted_at, type="DELETED",
                                                object=_any(rt, last.value, gen.deleted_at), writer=writer,
                                                oldest_retained_revision=oldest)]
        except RevisionCompacted as exc:
            raise api.Expired(f'history of {rt.group_resource} "{name}" was compacted while being read: {exc}') \
                from None

    async def entries(self, rt: ResourceType, namespace: str, name: str, *, include_deleted: bool = False,
                      at_revision: int = 0) -> AsyncIterator[api_pb2.HistoryEntry]:
        async for batch in self.batches(rt, namespace, name, include_deleted=include_deleted,
                                        at_revision=at_revision):
            for entry in batch:
                yield entry

    async def _at(self, rt: ResourceType, key: str, name: str, revision: int) -> api_pb2.HistoryEntry:
        if revision < 0:
            raise api.BadRequest(f"invalid revision {revision}: must not be negative")
        current = await self.storage.current_revision()
        if revision > current:
            raise api.BadRequest(f"revision {revision} is in the future: the current revision is {current}")
        try:
            kv = await self._range(key, revision)
        except RevisionCompacted:
            floor = await self.storage.compact_revision_floor()
            raise api.Expired(f"revision {revision} has been compacted: the oldest retained revision is "
                              f"{floor}") from None
        except FutureRevision:
            raise api.BadRequest(f"revision {revision} is in the future: the current revision is "
                                 f"{await self.storage.current_revision()}") from None
        if kv is None:
            raise api.NotFound(f'{rt.group_resource} "{name}" did not exist at revision {revision}',
                               kind=rt.plural, name=name)
        [writer] = await self._writers([kv.mod_revision])
        return api_pb2.HistoryEntry(revision=kv.mod_revision,
                                    type="ADDED" if kv.mod_revision == kv.create_revision else "MODIFIED",
                                    object=_any(rt, kv.value, kv.mod_revision), writer=writer)

    # -- the change stream ---------------------------------------------------------------------

    async def change_batches(self, since: int, *, follow: bool = False, resources: Sequence[ResourceType] = (),
                             namespace: str = "", selector: object = None) -> AsyncIterator[list[api_pb2.Change]]:
        """Every change after `since` in revision order, a batch per etcd watch response (raises
        api errors)."""
        if since < 0:
            raise api.BadRequest(f"invalid revision {since}: must not be negative")
        current = await self.storage.current_revision()
        if since > current:
            raise api.BadRequest(f"revision {since} is in the future: the current revision is {current}")
        if since == 0:
            since = await self.storage.compact_revision_floor() - 1
        if not follow and since >= current:
            return
        plurals = {rt.plural for rt in resources}
        # every key: the writer records ride along, and every revision shows up (see the module doc)
        watch = self.storage.open_watch("\0", since + 1, prev_kv=True, range_end=b"\0")
        try:
            async for batch in watch:
                writers: dict[int, api_pb2.WriteRecord | None] = {}
                for _, kv, _ in batch.events:
                    if kv.key == WRITER_KEY:
                        writers[kv.mod_revision] = decode_record(kv.value)
                done = False
                out: list[api_pb2.Change] = []
                for kind, kv, prev in batch.events:
                    rev = kv.mod_revision
                    if not follow and rev >= current:
                        done = True
                        if rev > current:
                            break
                    ok = parse_key(kv.key)
                    if ok is None or (plurals and ok.rt.plural not in plurals) or \
                            (namespace and ok.namespace != namespace):
                        continue
                    if selector is not None and not _labels_match(ok.rt, selector, kv, prev, kind):
                        continue
                    change = _change(ok, kind, kv, prev, writers.get(rev))
                    if change is not None:
                        out.append(change)
                    if len(out) >= CHANGES_PER_MESSAGE:
                        yield out
                        out = []
                if out:
                    yield out
                if done:
                    return
        except RevisionCompacted as exc:
            raise api.Expired(f"too old revision: {since} (the oldest retained revision is "
                              f"{exc.compact_revision})") from None
        finally:
            watch.close()

    async def changes(self, since: int, **kwargs: Any) -> AsyncIterator[api_pb2.Change]:
        async for batch in self.change_batches(since, **kwargs):
            for change in batch:
                yield change

    # -- retention -----------------------------------------------------------------------------

    async def retention_info(self) -> api_pb2.RetentionInfo:
        return api_pb2.RetentionInfo(oldest_revision=await self.storage.compact_revision_floor(),
                                     current_revision=await self.storage.current_revision(),
                                     retention_seconds=self.retention, interval_seconds=self.interval,
                                     event_ttl_seconds=self.event_ttl)

    # -- the RPCs (called by apiserver/service.py) ----------------------------------------------

    async def serve_history(self, request: api_pb2.HistoryRequest,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.HistoryBatch]:
        async def produce() -> AsyncIterator[api_pb2.HistoryBatch]:
            ref = request.ref
            if not ref.resource:
                raise api.BadRequest('ref.resource is required (e.g. "pods")')
            if not ref.name:
                raise api.BadRequest("a resource name is required")
            rt = for_group_resource(ref.group, ref.resource)
            if rt.namespaced and not ref.namespace:
                raise api.BadRequest(f"{rt.group_resource} are namespaced: a namespace is required")
            async for batch in self.batches(rt, ref.namespace if rt.namespaced else "", ref.name,
                                            include_deleted=request.include_deleted,
                                            at_revision=request.at_revision):
                yield api_pb2.HistoryBatch(entries=batch)

        async for message in _guarded(produce(), context):
            yield message

    async def serve_changes(self, request: api_pb2.ChangesRequest,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.ChangeBatch]:
        async def produce() -> AsyncIterator[api_pb2.ChangeBatch]:
            resources = [for_group_resource(r.group, r.resource) for r in request.resources]
            selector = None
            if request.label_selector.strip():
                from kplane.api.labels import parse_selector

                try:
                    selector = parse_selector(request.label_selector)
                except ValueError as exc:
                    raise api.BadRequest(f"invalid label selector: {exc}") from None
            async for batch in self.change_batches(request.since_revision, follow=request.follow,
                                                   resources=resources, namespace=request.namespace,
                                                   selector=selector):
                yield api_pb2.ChangeBatch(changes=batch)

        async for message in _guarded(produce(), context):
            yield message


def _change(ok: ObjectKey, kind: str, kv: KV, prev: KV | None,
            writer: api_pb2.WriteRecord | None) -> api_pb2.Change | None:
    rev = kv.mod_revision
    type_url = ok.rt.type_url
    previous = AnyPb(type_url=type_url, value=prev.value + rv_suffix(prev.mod_revision)) if prev is not None else None
    if kind == "DELETE":
        if prev is None:
            return None  # a delete of something we never saw (the watch started after it)
        return api_pb2.Change(revision=rev, type="DELETED", ref=_ref(ok), writer=writer,
                              object=AnyPb(type_url=type_url, value=prev.value + rv_suffix(rev)), previous=previous)
    return api_pb2.Change(revision=rev, type="ADDED" if kv.create_revision == rev else "MODIFIED", ref=_ref(ok),
                          writer=writer, object=AnyPb(type_url=type_url, value=kv.value + rv_suffix(rev)),
                          previous=previous)


def _labels_match(rt: ResourceType, selector: object, kv: KV, prev: KV | None, kind: str) -> bool:
    """Whether the object before or after the change matches the label selector."""
    for candidate in ((prev,) if kind == "DELETE" else (kv, prev)):
        if candidate is None:
            continue
        msg = rt.new()
        try:
            msg.ParseFromString(candidate.value)
        except Exception:
            continue
        if selector.matches(msg.metadata.labels):  # type: ignore[attr-defined]
            return True
    return False


async def _guarded(stream: AsyncIterator[AnyT], context: grpc.aio.ServicerContext) -> AsyncIterator[AnyT]:
    """Run a streaming handler body, turning errors into a gRPC status with a meta/v1 Status."""
    from apiserver.service import _abort
    from kplane.api.resources import UnknownResource

    try:
        async for item in stream:
            yield item
    except api.APIError as exc:
        await _abort(context, exc)
    except UnknownResource as exc:
        await _abort(context, api.NotFound(str(exc)))
    except (TimeoutError, EtcdUnavailable) as exc:
        await _abort(context, api.Unavailable(f"storage unavailable: {exc}"))

