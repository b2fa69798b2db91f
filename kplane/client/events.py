"""The event recorder: components explain their decisions as Events (what `kpctl describe` shows).

`recorder.event(obj, "Normal", "Scheduled", "assigned default/web-1 to node-2")` never blocks
and never raises for API trouble: it stamps the time, checks a per-object rate limit and
enqueues; one background task writes, so writes happen in call order. Like client-go's
`EventCorrelator`, simplified:

- **Aggregation.** An event identical to one this recorder wrote less than `aggregation_window`
  (10 min) ago — same involvedObject (kind, namespace, name, uid, apiVersion, fieldPath), type,
  reason, message and source — patches that Event's `count` and `lastTimestamp` instead of
  creating another (describe then shows `x3 over 2m`).
- **Rate limit.** A token bucket per involved object: `burst` events (25), refilled at one per
  `refill_seconds` (5 s). Events over the limit are dropped (logged at debug). It protects the
  apiserver from a hot loop; client-go uses 25 and one per 5 minutes.
- **Errors.** Transient write errors (unavailable, timeout, internal) are retried `max_retries`
  times with back-off, then the event is logged and dropped; permanent ones (invalid, forbidden,
  a missing namespace) are dropped at once. A full queue drops new events.

Events are core/v1 Events as `kubectl` (client-go `record`) writes them: named
`<object name>.<16 hex digits>`, in the object's namespace (`default` for cluster-scoped
objects), with `involvedObject.kind/name` set so `kpctl describe` finds them by field selector.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kplane.api import errors as api
from kplane.api.codec import format_time, now_timestamp
from kplane.api.pb import core_pb2
from kplane.api.resources import TYPE_URL_PREFIX, ResourceType, UnknownResource, for_type_url, resolve
from kplane.logs import get_logger

EVENTS: ResourceType = resolve("events")

EventType = Literal["Normal", "Warning"]
EVENT_TYPES: tuple[str, ...] = ("Normal", "Warning")

# An object (a protobuf message or a Kubernetes JSON dict with metadata), an ObjectReference
# message, or an ObjectReference-shaped dict ({kind, namespace, name, uid, apiVersion, ...}).
ObjectLike = Message | Mapping[str, Any]

MAX_MESSAGE_LENGTH = 1024
MAX_NAME_LENGTH = 253
CACHE_SIZE = 4096  # objects / event keys remembered, least recently used evicted (client-go's 4096)
_TRANSIENT = (api.Unavailable, api.Timeout, api.InternalError)


class EventSink(Protocol):
    """The part of `kplane.client.client.Client` the recorder uses (a seam for fakes)."""

    async def create(self, rt: ResourceType, obj: Message, *, namespace: str = "") -> Message: ...

    async def patch(self, rt: ResourceType, name: str, patch: dict[str, Any], *, namespace: str = "",
                    patch_type: str = "merge") -> Message: ...


def object_reference(obj: ObjectLike) -> core_pb2.ObjectReference:
    """The ObjectReference of an object message, a JSON object, or a reference (message or dict).

    Raises ValueError for something that names no kind or no name."""
    ref = core_pb2.ObjectReference()
    if isinstance(obj, core_pb2.ObjectReference):
        ref.CopyFrom(obj)
    elif isinstance(obj, Message):
        try:
            rt = for_type_url(TYPE_URL_PREFIX + obj.DESCRIPTOR.full_name)
        except UnknownResource as exc:
            raise ValueError(str(exc)) from None
        meta = obj.metadata  # type: ignore[attr-defined]
        ref.kind, ref.apiVersion = rt.kind, rt.api_version
        ref.name, ref.uid, ref.resourceVersion = meta.name, meta.uid, meta.resourceVersion
        ref.namespace = meta.namespace if rt.namespaced else ""
    elif isinstance(obj.get("metadata"), Mapping):
        meta = obj["metadata"]
        ref.kind = str(obj.get("kind") or "")
        ref.apiVersion = str(obj.get("apiVersion") or "")
        for name in ("name", "namespace", "uid", "resourceVersion"):
            setattr(ref, name, str(meta.get(name) or ""))
    else:
        for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
            setattr(ref, name, str(obj.get(name) or ""))
    if not ref.kind or not ref.name:
        raise ValueError("an event's object needs a kind and a name")
    return ref


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class _Written:
    """An Event this recorder wrote: where it is and how often it has been seen."""

    name: str
    namespace: str
    count: int
    last_seen: float


@dataclass(frozen=True)
class _Pending:
    ref: core_pb2.ObjectReference
    type: str
    reason: str
    message: str
    timestamp: Timestamp

    @property
    def key(self) -> tuple[str, ...]:
        r = self.ref
        return (r.kind, r.namespace, r.name, r.uid, r.apiVersion, r.fieldPath, self.type, self.reason, self.message)


class EventRecorder:
    """Records Events for one component. Lifecycle: UNSTARTED (events queue up) → RUNNING (a
    background task writes them) → STOPPED (new events are dropped). Use from the event loop's
    thread; `async with EventRecorder(...)` starts and drains it."""

    def __init__(
        self,
        client: EventSink,
        *,
        component: str,
        host: str = "",
        burst: int = 25,
        refill_seconds: float = 5.0,
        aggregation_window: float = 600.0,
        max_queue: int = 1000,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not component:
            raise ValueError("component must not be empty")
        self.client = client
        self.component = component
        self.host = host
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.aggregation_window = aggregation_window
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._clock = clock
        self._log = get_logger(recorder=component)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self._written: OrderedDict[tuple[str, ...], _Written] = OrderedDict()
        self._writer: asyncio.Task[None] | None = None
        self._state = "UNSTARTED"
        self._last_name_ns = 0

    # -- producer side (synchronous, never blocks) -----------------------------------------------

    def event(self, obj: ObjectLike, type: EventType | str, reason: str, message: str) -> None:
        """Record that `reason`/`message` happened to `obj`. Returns at once; drops (and logs) an
        event that is malformed, over the rate limit, or that finds the queue full."""
        if self._state == "STOPPED":
            self._log.debug("event dropped: the recorder is stopped", reason=reason)
            return
        if type not in EVENT_TYPES:
            self._log.error("event dropped: unsupported type", type=type, reason=reason)
            return
        try:
            ref = object_reference(obj)
        except ValueError as exc:
            self._log.error("event dropped: no object reference", error=str(exc), reason=reason)
            return
        if not self._allow((ref.kind, ref.namespace, ref.name, ref.uid)):
            self._log.debug("event dropped: rate limited", object=f"{ref.kind}/{ref.namespace}/{ref.name}",
                            reason=reason)
            return
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
        try:
            self._queue.put_nowait(_Pending(ref, type, reason, message, now_timestamp()))
        except asyncio.QueueFull:
            self._log.warning("event dropped: queue full", object=f"{ref.kind}/{ref.namespace}/{ref.name}",
                              reason=reason)

    def _allow(self, key: tuple[str, ...]) -> bool:
        """Token bucket per object: `burst` tokens, one more every `refill_seconds`."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            refill = (now - bucket.updated) / self.refill_seconds if self.refill_seconds > 0 else float(self.burst)
            bucket.tokens = min(float(self.burst), bucket.tokens + refill)
            bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > CACHE_SIZE:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "UNSTARTED":
            raise RuntimeError(f"the event recorder is {self._state.lower()}")
        self._state = "RUNNING"
        self._writer = asyncio.create_task(self._write_loop(), name=f"events:{self.component}")

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event queued so far is written or dropped (raises TimeoutError)."""
        if self._state != "RUNNING":
            raise RuntimeError("flush() needs a started recorder")
        await self._drain(timeout)

    async def _drain(self, timeout: float | None) -> None:
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
            await self._queue.join()

    async def stop(self, *, drain: bool = True, timeout: float = 10.0) -> None:
        """Stop writing. With `drain`, first wait up to `timeout` for queued events to be written."""
        if self._state == "STOPPED":
            return
        was_running = self._state == "RUNNING"
        self._state = "STOPPED"
        if drain and was_running:
            try:
                await self._drain(timeout)
            except TimeoutError:
                self._log.warning("stopped with events unwritten", pending=self._queue.qsize())
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    async def __aenter__(self) -> EventRecorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- writer side -----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad event stop the recorder
                self._log.exception("event dropped: unexpected error", reason=pending.reason)
            finally:
                self._queue.task_done()

    async def _write(self, pending: _Pending) -> None:
        key = pending.key
        seen = self._written.get(key)
        # Within the window: count one more on the existing Event (unless it has been deleted).
        if (seen is not None and self._clock() - seen.last_seen <= self.aggregation_window
                and await self._patch(pending, seen)):
            self._written.move_to_end(key)
            return
        self._written.pop(key, None)
        written = await self._create(pending)
        if written is not None:
            self._written[key] = written
            while len(self._written) > CACHE_SIZE:
                self._written.popitem(last=False)

    async def _patch(self, pending: _Pending, seen: _Written) -> bool:
        """Count one more occurrence on the existing Event; False if it must be created anew."""
        body = {"count": seen.count + 1, "lastTimestamp": format_time(pending.timestamp)}
        for attempt in range(self.max_retries + 1):
            try:
                result = await self.client.patch(EVENTS, seen.name, body, namespace=seen.namespace,
                                                 patch_type="merge")
            except api.NotFound:
                return False  # deleted (e.g. by TTL): start a new Event
            except _TRANSIENT as exc:
                if attempt < self.max_retries:
                    await asyncio.sleep(self.retry_backoff * 2 ** attempt)
                    continue
                self._log.warning("event dropped after retries", error=str(exc), event_name=seen.name,
                                  namespace=seen.namespace)
                return True
            except api.APIError as exc:
                self._log.warning("event dropped", error=str(exc), event_name=seen.name, namespace=seen.namespace)
                return True
            seen.count += 1
            seen.last_seen = self._clock()
            self._log.debug("event aggregated", event_name=seen.name, namespace=seen.namespace, count=seen.count,
                            resourceVersion=result.metadata.resourceVersion)  # type: ignore[attr-defined]
            return True
        return True

    def _event_name(self, object_name: str) -> str:
        """`<object name>.<16 hex digits of the time in ns>`, strictly increasing in this process."""
        stamp = max(time.time_ns(), self._last_name_ns + 1)
        self._last_name_ns = stamp
        suffix = f".{stamp:016x}"
        return object_name[: MAX_NAME_LENGTH - len(suffix)] + suffix

    async def _create(self, pending: _Pending) -> _Written | None:
        ref = pending.ref
        namespace = ref.namespace or "default"
        event = core_pb2.Event(
            involvedObject=ref,
            reason=pending.reason,
            message=pending.message,
            source=core_pb2.EventSource(component=self.component, host=self.host),
            firstTimestamp=pending.timestamp,
            lastTimestamp=pending.timestamp,
            count=1,
            type=pending.type,
            reportingComponent=self.component,
            reportingInstance=self.host,
        )
        event.metadata.namespace = namespace
        for attempt in range(self.max_retries + 1):
            event.metadata.name = self._event_name(ref.name)
            try:
                created = await self.client.create(EVENTS, event, namespace=namespace)
            except (*_TRANSIENT, api.AlreadyExists) as exc:
                if attempt < self.max_retries:
                    await asyncio.sleep(self.retry_backoff * 2 ** attempt)
                    continue
                self._log.warning("event dropped after retries", error=str(exc), reason=pending.reason,
                                  object=f"{ref.kind}/{ref.namespace}/{ref.name}")
                return None
            except api.APIError as exc:
                self._log.warning("event dropped", error=str(exc), reason=pending.reason,
                                  object=f"{ref.kind}/{ref.namespace}/{ref.name}")
                return None
            self._log.debug("event created", event_name=event.metadata.name, namespace=namespace,
                            reason=pending.reason,
                            resourceVersion=created.metadata.resourceVersion)  # type: ignore[attr-defined]
            return _Written(event.metadata.name, namespace, 1, self._clock())
        return None
