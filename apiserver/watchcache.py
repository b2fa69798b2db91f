"""The watch cache: one etcd watch per resource type, fanned out to every client watcher.

Per resource type the cache lists once, then follows a single etcd watch. It keeps

* `objects`: every live object (decoded once, read-only afterwards), serving lists;
* `events`: a window of recent events, so a watcher that reconnects from a recent
  resourceVersion is replayed from memory;
* `watchers`: each with its namespace/label/field filter applied here, in memory — a thousand
  kubelets watching `spec.nodeName=<node>` cost etcd one watch.

Invariants: `rev` is the revision up to which every event has been applied; every event with a
revision greater than `window_start` is in `events`; events reach watchers in revision order.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from apiserver.storage import KV, EtcdUnavailable, RevisionCompacted, Storage, StorageError
from kplane.api import codec
from kplane.api.resources import ResourceType
from kplane.logs import get_logger

log = get_logger(component="apiserver")

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def rv_suffix(revision: int) -> bytes:
    """Protobuf bytes for `{metadata: {resourceVersion: "<rev>"}}`.

    Every kind has `metadata = 1` and ObjectMeta has `resourceVersion = 6`; appending these bytes
    to a stored encoding sets the resourceVersion without decoding or re-encoding the object.
    """
    rv = str(revision).encode()
    meta = b"\x32" + _varint(len(rv)) + rv
    return b"\x0a" + _varint(len(meta)) + meta


@dataclass(slots=True)
class Entry:
    """One object as the cache holds it. `obj` is shared: never mutate it, copy first."""

    key: str
    namespace: str
    name: str
    rev: int
    raw: bytes
    obj: Message
    labels: Mapping[str, str]
    kind: str
    _fields: dict[str, str] | None = None

    @property
    def wire(self) -> bytes:
        """The object's protobuf encoding with metadata.resourceVersion set."""
        return self.raw + rv_suffix(self.rev)

    def fields(self) -> dict[str, str]:
        if self._fields is None:
            from kplane.api.fields import object_fields

            self._fields = object_fields(codec.to_dict(self.obj), self.kind)
        return self._fields


@dataclass(slots=True)
class CacheEvent:
    rev: int
    type: str  # ADDED | MODIFIED | DELETED
    entry: Entry  # the new state (for DELETED: the last state, at the deletion revision)
    prev: Entry | None


@dataclass(slots=True)
class Filter:
    namespace: str = ""
    labels: Any = None  # kplane.api.labels.Selector | None
    fields: Any = None  # kplane.api.fields.FieldSelector | None

    def matches(self, entry: Entry) -> bool:
        if self.namespace and entry.namespace != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(entry.labels):
            return False
        return not (self.fields is not None and not self.fields.matches(entry.fields()))


class WatcherClosed(Exception):
    """The watcher fell too far behind or the cache was reinitialised; the client re-watches."""


@dataclass(eq=False)
class CacheWatcher:
    filter: Filter
    max_queue: int = 50_000
    queue: asyncio.Queue[tuple[str, Entry] | tuple[str, int] | None] = field(default_factory=asyncio.Queue)
    closed_reason: str = ""
    # Events at or below this revision were already delivered (the watch's starting point).
    min_rev: int = 0
    # A pod watcher whose field selector demands spec.nodeName=<node> (a kubelet's): events of
    # pods on no such node skip it without evaluating the filter (Kubernetes' indexed trigger).
    node: str | None = None

    def offer(self, event: CacheEvent) -> None:
        """Translate a cache event for this watcher's filter (K8s semantics: an object that stops
        matching is DELETED for this watcher, one that starts matching is ADDED)."""
        if self.closed_reason or event.rev <= self.min_rev:
            return
        now = self.filter.matches(event.entry) if event.type != DELETED else False
        before = event.prev is not None and self.filter.matches(event.prev)
        if event.type == DELETED:
            if before:
                self._put((DELETED, event.entry))
        elif now and before:
            self._put((MODIFIED, event.entry))
        elif now:
            self._put((ADDED, event.entry))
        elif before:
            # stopped matching: Kubernetes sends the last state the watcher knew, at this revision
            assert event.prev is not None
            self._put((DELETED, dataclasses.replace(event.prev, rev=event.rev)))

    def bookmark(self, revision: int) -> None:
        if not self.closed_reason:
            self.queue.put_nowait((BOOKMARK, revision))

    def _put(self, item: tuple[str, Entry]) -> None:
        if self.queue.qsize() >= self.max_queue:
            self.close("watcher fell too far behind")
            return
        self.queue.put_nowait(item)

    def close(self, reason: str) -> None:
        if not self.closed_reason:
            self.closed_reason = reason
            self.queue.put_nowait(None)


class WatchCache:
    def __init__(self, rt: ResourceType, storage: Storage, *, window: int = 10_000) -> None:
        self.rt = rt
        self.storage = storage
        self.objects: dict[str, Entry] = {}
        self.events: deque[CacheEvent] = deque()
        self.window = window
        self.window_start = 0
        self.rev = 0
        self.watchers: set[CacheWatcher] = set()
        self.ready = asyncio.Event()
        self._progress = asyncio.Condition()
        self._etcd_watch: Any = None
        self._task: asyncio.Task[None] | None = None
        # etcd before 3.4.24 / 3.5.8 can send a requested progress notification ahead of events
        # (etcd issue 15220), so the revision it reports is trusted only on fixed versions.
        self.trust_progress = False
        self.undecodable: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watchcache-{self.rt.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for w in list(self.watchers):
            w.close("apiserver shutting down")

    async def _run(self) -> None:
        backoff = 0.1
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                watch = self.storage.open_watch(self.rt.prefix(), self.rev + 1)
                self._etcd_watch = watch
                async for batch in watch:
                    backoff = 0.1
                    self._apply(batch.revision, batch.events)
            except asyncio.CancelledError:
                raise
            except RevisionCompacted:
                log.warning("watch cache fell behind compaction; relisting", resource=self.rt.plural, rev=self.rev)
                need_list = True
            except (EtcdUnavailable, StorageError, OSError) as exc:
                log.warning("etcd watch interrupted; resuming", resource=self.rt.plural, rev=self.rev, error=str(exc))
            except Exception:
                log.exception("watch cache error; relisting", resource=self.rt.plural)
                need_list = True
            finally:
                self._etcd_watch = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _relist(self) -> None:
        kvs, rev, _ = await self.storage.list(self.rt.prefix())
        objects: dict[str, Entry] = {}
        for kv in kvs:
            entry = self._decode(kv)
            if entry is not None:
                objects[kv.key] = entry
        if self.ready.is_set():
            # A relist after a gap: history between the old and new state is unknown to us, so
            # every watcher must start over (it re-watches and relists if needed).
            for w in list(self.watchers):
                w.close("watch cache reinitialised")
            self.watchers.clear()
        self.objects = objects
        self.undecodable = {kv.key for kv in kvs if kv.key not in objects}
        self.events.clear()
        self.rev = rev
        self.window_start = rev
        self.ready.set()
        await self._notify_progress()
        log.info("watch cache synced", resource=self.rt.plural, objects=len(objects), rev=rev)

    def _decode(self, kv: KV, revision: int | None = None) -> Entry | None:
        msg = self.rt.new()
        try:
            msg.ParseFromString(kv.value + rv_suffix(revision or kv.mod_revision))
        except Exception as exc:  # garbage in etcd: log it, keep serving everything else
            log.error("undecodable object in etcd; skipping", key=kv.key, rev=kv.mod_revision, error=str(exc))
            self.undecodable.add(kv.key)
            return None
        self.undecodable.discard(kv.key)
        meta = msg.metadata  # type: ignore[attr-defined]
        if kv.key != self.rt.key(meta.namespace, meta.name):
            # decodable, but not what its key says (an impostor written to etcd directly): never serve it
            log.error("stored object does not match its key; skipping", key=kv.key, rev=kv.mod_revision,
                      name=meta.name, namespace=meta.namespace)
            self.undecodable.add(kv.key)
            return None
        return Entry(kv.key, meta.namespace, meta.name, revision or kv.mod_revision, kv.value, msg,
                     meta.labels, self.rt.kind)

    def _apply(self, revision: int, events: list[tuple[str, KV, KV | None]]) -> None:
        for kind, kv, _prev in events:
            prev = self.objects.get(kv.key)
            if kind == "DELETE":
                self.undecodable.discard(kv.key)
                if prev is None:
                    continue
                del self.objects[kv.key]
                last = Entry(prev.key, prev.namespace, prev.name, kv.mod_revision, prev.raw,
                             self._with_rv(prev.obj, kv.mod_revision), prev.labels, prev.kind, prev._fields)
                self._record(CacheEvent(kv.mod_revision, DELETED, last, prev))
            else:
                entry = self._decode(kv)
                if entry is None:
                    if prev is not None:  # a valid object overwritten with garbage: stop serving the old one
                        del self.objects[kv.key]
                        self._record(CacheEvent(kv.mod_revision, DELETED, prev, prev))
                    self.rev = max(self.rev, kv.mod_revision)
                    continue
                self.objects[kv.key] = entry
                self._record(CacheEvent(kv.mod_revision, MODIFIED if prev else ADDED, entry, prev))
            self.rev = max(self.rev, kv.mod_revision)
        if not events and self.trust_progress:
            # A progress notification: etcd has sent everything up to `revision`. (The header of a
            # batch *with* events carries etcd's current revision, not how far this watcher got:
            # a catching-up watcher receives its history in chunks, so never take it from there.)
            self.rev = max(self.rev, revision)
        asyncio.get_running_loop().create_task(self._notify_progress())

    @staticmethod
    def _with_rv(obj: Message, rev: int) -> Message:
        copy = type(obj)()
        copy.CopyFrom(obj)
        copy.metadata.resourceVersion = str(rev)  # type: ignore[attr-defined]
        return copy

    def _record(self, event: CacheEvent) -> None:
        self.events.append(event)
        while len(self.events) > self.window:
            evicted = self.events.popleft()
            self.window_start = evicted.rev
        nodes: tuple[str, str] | None = None
        if self.rt.kind == "Pod":
            nodes = (event.entry.obj.spec.nodeName,  # type: ignore[attr-defined]
                     event.prev.obj.spec.nodeName if event.prev is not None else event.entry.obj.spec.nodeName)  # type: ignore[attr-defined]
        for w in list(self.watchers):
            if w.node is not None and nodes is not None and w.node not in nodes:
                continue  # neither the pod's new nor its old state is on this watcher's node
            w.offer(event)
            if w.closed_reason:
                self.watchers.discard(w)

    async def _notify_progress(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    # -- reads -----------------------------------------------------------------------------

    async def wait_for_revision(self, revision: int, timeout: float = 3.0) -> bool:
        """Wait until the cache has applied everything up to `revision`."""
        async with asyncio.timeout(timeout):
            await self.ready.wait()
        deadline = time.monotonic() + timeout
        while self.rev < revision:
            if time.monotonic() >= deadline:
                return False
            if await self.consistent_revision(timeout=min(0.5, max(deadline - time.monotonic(), 0.01))) is not None \
                    and self.rev >= revision:
                return True
        return True

    async def consistent_revision(self, timeout: float = 3.0) -> int | None:
        """A revision at which the cache provably equals etcd for this resource, or None.

        One etcd transaction counts the keys under the prefix and those (or their deletion
        tombstones) modified after the cache's revision: none newer and the same count means no
        put or delete happened since — a key created and deleted again shows by its tombstone —
        so the cache is exact at the transaction's revision (and `rev` may advance to it).
        (A delete that writes no tombstone — an Event's TTL lease expiring, a raw etcd delete —
        paired with a create in the same short window is the one change this cannot see.)"""
        async with asyncio.timeout(timeout):
            await self.ready.wait()
        deadline = time.monotonic() + timeout
        while True:
            applied = self.rev
            newer, total, header = await self.storage.prefix_state(self.rt.prefix(), applied)
            if newer == 0 and total == len(self.objects) + len(self.undecodable) and self.rev == applied:
                self.rev = max(self.rev, header)
                return self.rev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self.trust_progress and self._etcd_watch is not None:
                self._etcd_watch.request_progress()
            try:  # events are on their way: wait for the cache to apply some
                async with asyncio.timeout(min(remaining, 0.05)), self._progress:
                    await self._progress.wait()
            except TimeoutError:
                pass

    def list(self, flt: Filter, *, limit: int = 0, start_after: str = "") -> tuple[builtins.list[Entry], int, str]:
        """Matching objects in key order at `self.rev`; returns (entries, rev, last key if truncated)."""
        keys = sorted(self.objects)
        if flt.namespace:
            prefix = self.rt.prefix(flt.namespace)
            keys = [k for k in keys if k.startswith(prefix)]
        out: builtins.list[Entry] = []
        for key in keys:
            if start_after and key <= start_after:
                continue
            entry = self.objects[key]
            if flt.matches(entry):
                if limit and len(out) >= limit:
                    return out, self.rev, out[-1].key
                out.append(entry)
        return out, self.rev, ""

    def watch(self, flt: Filter, from_revision: int | None) -> tuple[CacheWatcher, builtins.list[tuple[str, Entry]]] | None:
        """Register a watcher. `from_revision` None: the current state as ADDED events first.
        Returns None when the window does not reach back to from_revision (the caller falls back
        to an etcd watch). Registration and replay happen without awaiting, so nothing is missed."""
        if from_revision is not None and from_revision < self.window_start:
            return None
        watcher = CacheWatcher(flt, min_rev=self.rev if from_revision is None else from_revision)
        if self.rt.kind == "Pod" and flt.fields is not None:
            watcher.node = flt.fields.requires_exact_match("spec.nodeName")
        initial: builtins.list[tuple[str, Entry]] = []
        if from_revision is None:
            for key in sorted(self.objects):
                entry = self.objects[key]
                if flt.matches(entry):
                    initial.append((ADDED, entry))
        else:
            for event in self.events:
                if event.rev > from_revision:
                    watcher.offer(event)
        self.watchers.add(watcher)
        return watcher, initial

    def unwatch(self, watcher: CacheWatcher) -> None:
        self.watchers.discard(watcher)

    def get_entry(self, key: str) -> Entry | None:
        return self.objects.get(key)
