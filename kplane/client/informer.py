"""List+watch machinery: Reflector -> Informer (indexed cache + handlers) -> SharedInformerFactory.

The pipeline reads like client-go's, with one simplification that asyncio allows: there is no
DeltaFIFO. The reflector applies each list/watch result to the informer's `Indexer` directly
(no method of the store awaits, so every change is atomic for other coroutines) and the
informer fans the resulting notification out to one queue per handler; each handler's queue
is drained by its own task, so a slow handler delays only itself and sees events in order.

Recovery (docs/informers.md has the long version and measured numbers):
- Expired (the resourceVersion was compacted) -> relist at once; the relist is diffed against
  the store so handlers see adds, updates and deletes for what changed while we were away.
- Anything else (Unavailable while the apiserver restarts, a refused connection, a stream that
  just ends) -> re-watch from the last resourceVersion after a jittered exponential back-off
  (0.1 s doubling to 5 s, reset once a watch delivers an event); nothing is missed because a
  watch from an RV delivers every change after it, and an RV that was compacted meanwhile
  makes that watch fail with Expired, which relists.

Guarantees for handlers: notifications for one object arrive in resourceVersion order; a state
already delivered (same key, same resourceVersion) is never delivered again, so there is no
duplicate add after a reconnect or relist; an object removed while the informer could not see
it is delivered to `on_delete` wrapped in `DeletedFinalStateUnknown` (its last known state).
Handlers must treat every object as read-only (see kplane.client.store).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from google.protobuf.message import Message

from kplane.api import errors as api
from kplane.api.resources import ResourceType, resolve
from kplane.client.client import Client
from kplane.client.store import CacheMutationError, Indexer, IndexFunc, meta_namespace_key
from kplane.logs import get_logger

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"

DEFAULT_PAGE_SIZE = 500


# -- what handlers receive -------------------------------------------------------------------


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """Passed to `on_delete` when an object vanished while the informer was not watching (it was
    found missing by a relist), so its final state is unknown; `obj` is the last state we saw."""

    key: str
    obj: Message


def deletion_handling_key(obj: Message | DeletedFinalStateUnknown) -> str:
    """The store key of an object or of a tombstone (use it in `on_delete` handlers)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return meta_namespace_key(obj)


def last_known_state(obj: Message | DeletedFinalStateUnknown) -> Message:
    """The object itself, or the last state a tombstone recorded."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


@dataclass
class ResourceEventHandlerFuncs:
    """A handler from plain functions; any may be None, any may be sync or async."""

    on_add: Callable[[Message], Any] | None = None
    on_update: Callable[[Message, Message], Any] | None = None
    on_delete: Callable[[Message | DeletedFinalStateUnknown], Any] | None = None


# -- back-off --------------------------------------------------------------------------------


class Backoff:
    """Exponential back-off with jitter: each delay is drawn from [d/2, d], d doubling from
    `initial` to `maximum`. Jitter keeps a thousand informers whose apiserver restarted from
    reconnecting in lockstep."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0, *, factor: float = 2.0, jitter: float = 0.5,
                 rng: Callable[[], float] = random.random) -> None:
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self._rng = rng
        self._current = initial

    def next(self) -> float:
        delay = self._current * (1 - self.jitter * self._rng())
        self._current = min(self._current * self.factor, self.maximum)
        return delay

    def reset(self) -> None:
        self._current = self.initial


# -- reflector -------------------------------------------------------------------------------


class ReflectorStore(Protocol):
    """Where a reflector puts what it lists and watches (an `Indexer`, or an informer's notifier)."""

    def add(self, obj: Message) -> None: ...

    def update(self, obj: Message) -> None: ...

    def delete(self, obj: Message) -> None: ...

    def replace(self, objs: Iterable[Message], resource_version: str) -> None: ...


class Reflector:
    """Keeps `store` equal to the apiserver's view of one resource (filtered by namespace and
    selectors): list, then watch from the list's resourceVersion; relist on Expired, re-watch
    from the last resourceVersion on anything else."""

    def __init__(self, client: Client, rt: ResourceType, store: ReflectorStore, *, namespace: str = "",
                 label_selector: str = "", field_selector: str = "", page_size: int = DEFAULT_PAGE_SIZE,
                 backoff: Backoff | None = None, min_watch_timeout: float = 300.0,
                 dedicated_connection: bool = True,
                 logger: structlog.stdlib.BoundLogger | None = None) -> None:
        # With dedicated_connection (the default) the reflector lists and watches over its own
        # gRPC channel to the same servers, which it drops after a connection failure so the next
        # attempt dials at once. On a shared channel gRPC's own reconnect back-off (1 s growing to
        # 120 s) makes attempts fail fast for a while after the apiserver is back, and dropping a
        # shared channel would cut other users' calls. Any other client object (a fake) is used as is.
        self._own: Client | None = None
        if dedicated_connection and isinstance(client, Client):
            self._own = Client(client.servers, identity=client.identity, timeout=client.timeout)
            client = self._own
        self.client = client
        self.rt = rt
        self.store = store
        self.namespace = namespace if rt.namespaced else ""
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.backoff = backoff or Backoff()
        # Watches are restarted (from the last RV, no back-off) after a random 1-2x this many
        # seconds, as client-go does, so a watch served from etcd after an apiserver restart
        # eventually moves back onto the apiserver's watch cache.
        self.min_watch_timeout = min_watch_timeout
        self.log = logger if logger is not None else get_logger(resource=rt.group_resource)
        # The resourceVersion of the last list or watch event (BOOKMARKs included) applied to store.
        self.last_sync_resource_version = ""
        self.lists = 0
        self.reconnects = 0
        self.expired = 0

    async def run(self) -> None:
        """List and watch until cancelled. Never returns otherwise; never raises except for a
        cache mutation (a programming error that must crash loudly)."""
        try:
            await self._run()
        finally:
            if self._own is not None:
                await self._own.close()

    async def _run(self) -> None:
        need_list = True
        while True:
            if need_list:
                try:
                    await self._list()
                except asyncio.CancelledError:
                    raise
                except CacheMutationError:
                    raise
                except Exception as exc:
                    # Unavailable while the apiserver restarts, Expired on a compacted continue
                    # token, anything else: the list is idempotent, so try again after a pause.
                    delay = self.backoff.next()
                    self.log.warning("list failed; retrying", error=_describe(exc), retry_in_s=round(delay, 3))
                    await self._drop_connection(exc)
                    await asyncio.sleep(delay)
                    continue
                need_list = False
            reason, error = await self._watch()
            if reason == "expired":
                # The history between our RV and now is gone: only a fresh list tells the current state.
                self.expired += 1
                self.log.warning("watch expired; relisting", error=error,
                                 resourceVersion=self.last_sync_resource_version)
                need_list = True
                continue
            if reason == "timeout":
                continue  # a planned restart of a healthy watch: resume at once
            # The stream failed or ended: the last RV is still a valid resume point (if it was
            # compacted meanwhile, the next watch says Expired and we relist then).
            delay = self.backoff.next()
            self.reconnects += 1
            log = self.log.warning if reason == "failed" else self.log.info
            log("watch interrupted; re-watching from the last resourceVersion" if reason == "failed"
                else "watch stream ended; re-watching from the last resourceVersion",
                error=error, resourceVersion=self.last_sync_resource_version, retry_in_s=round(delay, 3))
            await asyncio.sleep(delay)

    async def _list(self) -> None:
        relist = self.lists > 0
        items, rv = await self.client.list_all(self.rt, namespace=self.namespace, label_selector=self.label_selector,
                                               field_selector=self.field_selector, limit=self.page_size)
        self.store.replace(items, rv)
        self.last_sync_resource_version = rv
        self.lists += 1
        self.log.info("relisted" if relist else "listed", objects=len(items), resourceVersion=rv)

    async def _watch(self) -> tuple[str, str]:
        """One watch stream from the last RV. Returns why it ended, (expired | timeout | ended |
        failed, error text); raises only on cancellation and cache mutation."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        healthy = False
        failure: Exception | None = None
        stream = self.client.watch(self.rt, namespace=self.namespace, label_selector=self.label_selector,
                                   field_selector=self.field_selector,
                                   resource_version=self.last_sync_resource_version, allow_bookmarks=True)
        timeout = asyncio.timeout(self.min_watch_timeout * (1 + random.random()))
        try:
            async with timeout:
                async for etype, obj in stream:
                    if not healthy:
                        # The server is serving us again: the next failure starts back-off afresh.
                        healthy = True
                        self.backoff.reset()
                    self._apply(etype, obj)
            return "ended", ""
        except TimeoutError as exc:
            if timeout.expired():
                return "timeout", ""
            failure = exc
            return "failed", _describe(exc)
        except api.Expired as exc:
            return "expired", str(exc)
        except asyncio.CancelledError:
            raise
        except CacheMutationError:
            raise
        except Exception as exc:
            # Unavailable (apiserver down or restarting), a refused connection, anything else.
            failure = exc
            return "failed", _describe(exc)
        finally:
            if loop.time() - started >= 2 * self.backoff.maximum:
                self.backoff.reset()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            if failure is not None:
                await self._drop_connection(failure)

    async def _drop_connection(self, exc: BaseException) -> None:
        """After a connection-level failure, drop our own channel so the next attempt dials afresh
        (typed API errors such as Forbidden or Expired say nothing about the connection)."""
        if self._own is not None and (isinstance(exc, api.Unavailable) or not isinstance(exc, api.APIError)):
            await self._own.close()

    def _apply(self, etype: str, obj: Message) -> None:
        rv = str(obj.metadata.resourceVersion)  # type: ignore[attr-defined]
        if etype == ADDED:
            self.store.add(obj)
        elif etype == MODIFIED:
            self.store.update(obj)
        elif etype == DELETED:
            self.store.delete(obj)
        elif etype != BOOKMARK:
            self.log.error("unknown watch event type; ignored", type=etype, resourceVersion=rv)
            return
        if rv:
            self.last_sync_resource_version = rv


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- informer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Notification:
    kind: str  # "add" | "update" | "delete"
    old: Message | DeletedFinalStateUnknown | None
    new: Message | DeletedFinalStateUnknown


class HandlerRegistration:
    """One handler's queue and the task that drains it (client-go's processorListener)."""

    def __init__(self, handler: object, log: structlog.stdlib.BoundLogger) -> None:
        self.handler = handler
        self._log = log
        self._queue: asyncio.Queue[_Notification] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def push(self, note: _Notification) -> None:
        self._queue.put_nowait(note)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-handler-{type(self.handler).__name__}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            note = await self._queue.get()
            await self._deliver(note)

    async def _deliver(self, note: _Notification) -> None:
        callback = getattr(self.handler, f"on_{note.kind}", None)
        if callback is None:
            return
        args = (note.new,) if note.kind != "update" else (note.old, note.new)
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            # A handler bug must not stop the informer or the other handlers.
            obj = last_known_state(note.new)
            self._log.exception("event handler failed", handler=repr(self.handler), notification=note.kind,
                                key=deletion_handling_key(note.new),
                                resourceVersion=obj.metadata.resourceVersion)  # type: ignore[attr-defined]


class Informer:
    """A shared index informer: one reflector, one indexed cache (`store`), many handlers."""

    def __init__(self, client: Client, rt: ResourceType | str, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "", resync_period: float | None = None,
                 indexers: Mapping[str, IndexFunc] | None = None, page_size: int = DEFAULT_PAGE_SIZE,
                 dedicated_connection: bool = True, logger: structlog.stdlib.BoundLogger | None = None) -> None:
        self.rt = resolve(rt) if isinstance(rt, str) else rt
        self.namespace = namespace if self.rt.namespaced else ""
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.store = Indexer(indexers)
        context = {k: v for k, v in (("namespace", self.namespace), ("labelSelector", label_selector),
                                     ("fieldSelector", field_selector)) if v}
        base = logger if logger is not None else get_logger()
        self.log: structlog.stdlib.BoundLogger = base.bind(informer=self.rt.group_resource, **context)
        self.reflector = Reflector(client, self.rt, _Notifier(self), namespace=self.namespace,
                                   label_selector=label_selector, field_selector=field_selector,
                                   page_size=page_size, dedicated_connection=dedicated_connection,
                                   logger=self.log)
        self._handlers: list[HandlerRegistration] = []
        self._synced = asyncio.Event()
        self._running = False

    # -- handlers ------------------------------------------------------------------------------

    def add_event_handler(self, handler: object) -> HandlerRegistration:
        """Register an object with optional `on_add(obj)`, `on_update(old, new)`, `on_delete(obj)`.
        It first receives an add for every object already cached, then every later change."""
        registration = HandlerRegistration(handler, self.log)
        # No await between the snapshot and the registration: nothing is missed or doubled.
        for obj in self.store.list():
            registration.push(_Notification("add", None, obj))
        self._handlers.append(registration)
        if self._running:
            registration.start()
        return registration

    async def remove_event_handler(self, registration: HandlerRegistration) -> None:
        if registration in self._handlers:
            self._handlers.remove(registration)
            await registration.stop()

    def _distribute(self, note: _Notification) -> None:
        for registration in self._handlers:
            registration.push(note)

    # -- state ---------------------------------------------------------------------------------

    def has_synced(self) -> bool:
        """True once the first list has been stored (handlers may still be draining it)."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    @property
    def last_sync_resource_version(self) -> str:
        return self.reflector.last_sync_resource_version

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """A runnable: list, watch and deliver until cancelled, then stop every handler task."""
        if self._running:
            raise RuntimeError(f"informer for {self.rt.group_resource} is already running")
        self._running = True
        resync: asyncio.Task[None] | None = None
        try:
            for registration in self._handlers:
                registration.start()
            if self.resync_period:
                resync = asyncio.create_task(self._resync_loop(self.resync_period),
                                             name=f"informer-resync-{self.rt.plural}")
            await self.reflector.run()
        finally:
            self._running = False
            if resync is not None:
                resync.cancel()
                await asyncio.gather(resync, return_exceptions=True)
            for registration in self._handlers:
                await registration.stop()
            self.log.info("informer stopped", resourceVersion=self.last_sync_resource_version)

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if not self.has_synced():
                continue
            objs = self.store.list()
            for obj in objs:
                self._distribute(_Notification("update", obj, obj))
            self.log.debug("resync", objects=len(objs), resourceVersion=self.last_sync_resource_version)


class _Notifier:
    """The reflector's store for an informer: applies changes to the Indexer and turns each real
    change into one handler notification (a state already held is dropped, not re-delivered)."""

    def __init__(self, informer: Informer) -> None:
        self._informer = informer
        self._store = informer.store

    def add(self, obj: Message) -> None:
        self._upsert(obj)

    def update(self, obj: Message) -> None:
        self._upsert(obj)

    def _upsert(self, obj: Message) -> None:
        key = self._store.key_func(obj)
        old = self._store.get_by_key(key)
        if old is not None and _rv(old) == _rv(obj):
            return
        self._store.update(obj)
        if old is None:
            self._informer._distribute(_Notification("add", None, obj))
        else:
            self._informer._distribute(_Notification("update", old, obj))

    def delete(self, obj: Message) -> None:
        key = self._store.key_func(obj)
        if self._store.get_by_key(key) is None:
            return
        self._store.delete_key(key)
        self._informer._distribute(_Notification("delete", None, obj))

    def replace(self, objs: Iterable[Message], resource_version: str) -> None:
        store = self._store
        old_items = {key: obj for key in store.list_keys() if (obj := store.get_by_key(key)) is not None}
        new_items = {store.key_func(obj): obj for obj in objs}
        store.replace(new_items.values(), resource_version)
        notes: list[_Notification] = []
        deletes: list[_Notification] = []
        for key, obj in new_items.items():
            old = old_items.get(key)
            if old is None:
                notes.append(_Notification("add", None, obj))
            elif _uid(old) != _uid(obj):
                # Deleted and re-created under the same name while we were away: the old object's
                # deletion and the new one's creation, not an "update" across two different objects.
                deletes.append(_Notification("delete", None, DeletedFinalStateUnknown(key, old)))
                notes.append(_Notification("add", None, obj))
            elif _rv(old) != _rv(obj):
                notes.append(_Notification("update", old, obj))
        for key in sorted(old_items.keys() - new_items.keys()):
            deletes.append(_Notification("delete", None, DeletedFinalStateUnknown(key, old_items[key])))
        for note in [*deletes, *notes]:
            self._informer._distribute(note)
        if old_items and (deletes or notes):
            self._informer.log.info("relist changed the cache", adds=sum(n.kind == "add" for n in notes),
                                    updates=sum(n.kind == "update" for n in notes), deletes=len(deletes),
                                    resourceVersion=resource_version)
        self._informer._synced.set()


def _rv(obj: Message) -> str:
    return str(obj.metadata.resourceVersion)  # type: ignore[attr-defined]


def _uid(obj: Message) -> str:
    return str(obj.metadata.uid)  # type: ignore[attr-defined]


# -- factory ---------------------------------------------------------------------------------


async def wait_for_cache_sync(*informers: Informer, timeout: float | None = None) -> bool:
    """True once every informer has synced; False if `timeout` seconds pass first."""
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(i._synced.wait() for i in informers))
    except TimeoutError:
        return False
    return True


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors) per process, however many controllers ask."""

    def __init__(self, client: Client, *, default_resync: float | None = None,
                 logger: structlog.stdlib.BoundLogger | None = None) -> None:
        self.client = client
        self.default_resync = default_resync
        self._log = logger
        self._informers: dict[tuple[str, str, str, str, str], Informer] = {}
        self._tasks: dict[Informer, asyncio.Task[None]] = {}

    def informer_for(self, rt: ResourceType | str, *, namespace: str = "", label_selector: str = "",
                     field_selector: str = "", indexers: Mapping[str, IndexFunc] | None = None) -> Informer:
        """The shared informer for this view, created on first request. Indexers asked for by a
        later caller are added to the existing store. An informer created after `start()` runs
        from the next `start()`."""
        resolved = resolve(rt) if isinstance(rt, str) else rt
        ns = namespace if resolved.namespaced else ""
        key = (resolved.group, resolved.plural, ns, label_selector.strip(), field_selector.strip())
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, resolved, namespace=ns, label_selector=key[3], field_selector=key[4],
                                resync_period=self.default_resync, indexers=indexers, logger=self._log)
            self._informers[key] = informer
        elif indexers:
            informer.store.add_indexers(indexers)
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet started, each as its own task."""
        for informer in self._informers.values():
            if informer not in self._tasks:
                self._tasks[informer] = asyncio.create_task(informer.run(),
                                                            name=f"informer-{informer.rt.group_resource}")

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        """True once every started informer has synced; False on timeout."""
        return await wait_for_cache_sync(*self._tasks, timeout=timeout)

    async def shutdown(self) -> None:
        """Stop every informer and wait for them to clean up."""
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
