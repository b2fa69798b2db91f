"""The garbage collector: deleting an owner deletes its dependents (Kubernetes'
``pkg/controller/garbagecollector``, re-expressed without the dependency graph).

Kubernetes keeps an explicit owner/dependent graph fed by one informer per resource. Here the
graph *is* the informer caches: every watched type is indexed by ``metadata.uid`` (find an
owner) and by the uids of its ``ownerReferences`` (find an owner's dependents), so the graph
can never disagree with the caches. Keys are ``<resource>/<namespace>/<name>`` (``nodes/n1`` for
cluster-scoped objects) and ``sync(key)`` is level-triggered like every other controller:

- **A dependent** (an object with ownerReferences, not being deleted) is checked when one of its
  owners is missing from the cache or is waiting for foreground deletion. Owners are classified
  as *solid* (exists), *dangling* (gone, or the name now belongs to another UID) or *waiting*
  (deleting with the ``foregroundDeletion`` finalizer). A cache miss is never trusted: the
  owner is confirmed absent with a live GET first (Kubernetes' virtual-node check), so an
  informer that lags never gets a live object deleted; confirmed-absent UIDs are remembered
  (UIDs are never reused). Then, as ``attemptToDeleteItem``: with a solid owner left, the
  references to dangling and waiting owners are removed (strategic merge patch with the
  object's UID as precondition); with none left, the object is deleted — in the Foreground if
  an owner waits for it and it has dependents of its own, otherwise honouring its own
  orphan/foreground finalizer, else in the Background. The delete carries the UID and
  resourceVersion the decision was made on. A dependent about to join a foreground wait while
  one of its own dependents waits too (maybe a cycle of blocking references) first stops
  blocking its owners, as Kubernetes does, so a cycle cannot wait forever.
- **An owner with ``orphan``** (``--cascade=orphan``): the reference to it is removed from every
  dependent, then the finalizer.
- **An owner with ``foregroundDeletion``**: its dependents are queued (each then deletes itself
  as above); once no dependent with ``blockOwnerDeletion: true`` remains, the finalizer goes and
  the apiserver removes the owner. The owner is re-checked when a dependent disappears, and
  every few seconds while blockers remain.

Which types: every resource in ``kplane.api.resources.RESOURCES`` except ``events`` — the same
exclusion as Kubernetes' ``DefaultIgnoredResources``: events are by far the busiest type and
nothing owns them. Leases are included (renewals cost a handler call each, and Kubernetes'
node leases do point at their Node). An owner of an excluded or unknown type is never cached:
it is looked up live (unknown kinds count as solid — never delete for an owner we cannot check).

Mirror pods point at their Node; they are collected only when that Node is gone, by exactly the
rules above. The collector writes no Events (Kubernetes' does not either); it logs each action.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from kplane.api import errors as api
from kplane.api.resources import RESOURCES, ResourceType, UnknownResource, for_kind
from kplane.client.client import Client, retry_on_conflict
from kplane.client.controller import Controller, Result
from kplane.client.informer import (
    DeletedFinalStateUnknown,
    Informer,
    ResourceEventHandlerFuncs,
    last_known_state,
)
from kplane.client.store import OWNER_UID_INDEX, by_owner_uid_index_func, meta_namespace_key
from kplane.logs import get_logger

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# Kubernetes' DefaultIgnoredResources: events are never collected nor tracked.
IGNORED_RESOURCES = frozenset({"events"})
UID_INDEX = "metadata.uid"
ABSENT_OWNER_CACHE_SIZE = 10_000
# While a foreground owner waits for blocking dependents, look again this often even if no
# event arrives (dependent deletions normally wake it at once).
FOREGROUND_RECHECK_SECONDS = 5.0


def uid_index_func(obj: Message) -> list[str]:
    uid = obj.metadata.uid  # type: ignore[attr-defined]
    return [str(uid)] if uid else []


def collected_resources() -> list[ResourceType]:
    """The resource types the collector watches (dependents it can collect, owners it caches)."""
    return [rt for rt in RESOURCES if rt.plural not in IGNORED_RESOURCES]


def _meta(obj: Message) -> Any:
    return obj.metadata  # type: ignore[attr-defined]


def _deleting_with(obj: Message, finalizer: str) -> bool:
    meta = _meta(obj)
    return bool(meta.HasField("deletionTimestamp")) and finalizer in meta.finalizers


def _owner_ref_patch(obj_uid: str, owner_uids: Iterable[str]) -> dict[str, Any]:
    """Strategic merge patch removing the references to ``owner_uids`` (UID precondition)."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": u} for u in owner_uids], "uid": obj_uid}}


class _AbsentOwners:
    """UIDs confirmed absent by a live GET (a UID never comes back), least recently used evicted."""

    def __init__(self, size: int = ABSENT_OWNER_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, uid: object) -> bool:
        if uid in self._items:
            self._items.move_to_end(str(uid))
            return True
        return False

    def add(self, uid: str) -> None:
        self._items[uid] = None
        self._items.move_to_end(uid)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class GarbageCollector:
    def __init__(self, ctx: ControllerContext, *, resources: Iterable[ResourceType] | None = None) -> None:
        self.client: Client = ctx.client
        self.may_write = ctx.may_write
        self.log = get_logger(component="controller-manager", controller="garbagecollector")
        self.types = list(resources) if resources is not None else collected_resources()
        self.by_gr: dict[str, ResourceType] = {rt.group_resource: rt for rt in self.types}
        self.informers: dict[str, Informer] = {}
        self.controller = Controller("garbagecollector", self.sync, workers=ctx.workers)
        self.absent = _AbsentOwners()
        for rt in self.types:
            informer = ctx.factory.informer_for(rt, indexers={UID_INDEX: uid_index_func,
                                                              OWNER_UID_INDEX: by_owner_uid_index_func})
            self.informers[rt.group_resource] = informer
            informer.add_event_handler(self._handler(rt))
            self.controller.informers.append(informer)

    # -- cache lookups -------------------------------------------------------------------------

    def key_of(self, rt: ResourceType, obj: Message) -> str:
        return f"{rt.group_resource}/{meta_namespace_key(obj)}"

    def split(self, key: str) -> tuple[ResourceType, str]:
        gr, _, store_key = key.partition("/")
        return self.by_gr[gr], store_key

    def cached_owner(self, ref: Any, namespace: str) -> Message | None:
        """The owner a reference points to, from the cache (same UID; same namespace when the
        owner's kind is namespaced); None when not cached or the kind is not watched."""
        try:
            rt = for_kind(ref.apiVersion, ref.kind)
        except UnknownResource:
            return None
        informer = self.informers.get(rt.group_resource)
        if informer is None:
            return None
        for obj in informer.store.by_index(UID_INDEX, ref.uid):
            if not rt.namespaced or _meta(obj).namespace == namespace:
                return obj
        return None

    def dependents(self, owner_uid: str) -> list[tuple[ResourceType, Message]]:
        out: list[tuple[ResourceType, Message]] = []
        for rt in self.types:
            out.extend((rt, obj) for obj in self.informers[rt.group_resource].store.by_index(OWNER_UID_INDEX,
                                                                                             owner_uid))
        return out

    def _solid_in_cache(self, ref: Any, namespace: str) -> bool:
        owner = self.cached_owner(ref, namespace)
        return owner is not None and not _deleting_with(owner, FOREGROUND_FINALIZER)

    # -- event handlers ------------------------------------------------------------------------

    def _enqueue(self, rt: ResourceType, obj: Message) -> None:
        self.controller.queue.add(self.key_of(rt, obj))

    def _handler(self, rt: ResourceType) -> ResourceEventHandlerFuncs:
        def on_add(obj: Message) -> None:
            self._observe(rt, None, obj)

        def on_update(old: Message, new: Message) -> None:
            self._observe(rt, old, new)

        def on_delete(obj: Message | DeletedFinalStateUnknown) -> None:
            self._gone(last_known_state(obj))

        return ResourceEventHandlerFuncs(on_add=on_add, on_update=on_update, on_delete=on_delete)

    def _observe(self, rt: ResourceType, old: Message | None, new: Message) -> None:
        meta = _meta(new)
        if meta.HasField("deletionTimestamp") and (ORPHAN_FINALIZER in meta.finalizers
                                                   or FOREGROUND_FINALIZER in meta.finalizers):
            self._enqueue(rt, new)  # an owner waiting for us
        elif meta.ownerReferences and not meta.HasField("deletionTimestamp") and not all(
                self._solid_in_cache(ref, meta.namespace) for ref in meta.ownerReferences):
            self._enqueue(rt, new)  # a dependent whose owner is missing or deleting
        if old is not None:
            # A reference dropped (released, orphaned) or no longer blocking: a foreground owner
            # may be done waiting.
            blocking = {ref.uid for ref in meta.ownerReferences if ref.blockOwnerDeletion}
            for ref in _meta(old).ownerReferences:
                if ref.blockOwnerDeletion and ref.uid not in blocking:
                    self._wake_waiting_owner(ref, _meta(old).namespace)

    def _gone(self, obj: Message) -> None:
        meta = _meta(obj)
        for rt, dep in self.dependents(meta.uid):
            self._enqueue(rt, dep)
        for ref in meta.ownerReferences:
            self._wake_waiting_owner(ref, meta.namespace)

    def _wake_waiting_owner(self, ref: Any, namespace: str) -> None:
        owner = self.cached_owner(ref, namespace)
        if owner is not None and _deleting_with(owner, FOREGROUND_FINALIZER):
            self._enqueue(for_kind(ref.apiVersion, ref.kind), owner)

    # -- reconcile -----------------------------------------------------------------------------

    async def sync(self, key: str) -> Result | None:
        try:
            rt, store_key = self.split(key)
        except KeyError:
            return None
        if self.may_write is not None and not self.may_write():
            return None
        obj = self.informers[rt.group_resource].store.get_by_key(store_key)
        if obj is None:
            return None
        meta = _meta(obj)
        if meta.HasField("deletionTimestamp"):
            if ORPHAN_FINALIZER in meta.finalizers:
                await self.orphan_dependents(rt, obj)
                return None
            if FOREGROUND_FINALIZER in meta.finalizers:
                return await self.delete_dependents(rt, obj)
            return None
        if not meta.ownerReferences:
            return None
        return await self.attempt_to_delete(rt, obj)

    async def _classify(self, ref: Any, namespace: str) -> str:
        """"solid", "dangling" or "waiting" for one ownerReference of a dependent in ``namespace``."""
        try:
            owner_rt = for_kind(ref.apiVersion, ref.kind)
        except UnknownResource:
            self.log.warning("owner of an unknown kind; treated as present", ownerKind=ref.kind,
                             ownerApiVersion=ref.apiVersion, owner=ref.name)
            return "solid"
        if ref.uid in self.absent:
            return "dangling"
        owner = self.cached_owner(ref, namespace)
        if owner is None:
            if owner_rt.namespaced and not namespace:
                # a cluster-scoped object cannot be owned by a namespaced one (Kubernetes:
                # OwnerRefInvalidNamespace): the reference resolves to nothing
                return "dangling"
            try:
                owner = await self.client.get(owner_rt, ref.name, namespace=namespace if owner_rt.namespaced else "")
            except api.NotFound:
                self.absent.add(ref.uid)
                return "dangling"
            if _meta(owner).uid != ref.uid:
                self.absent.add(ref.uid)
                return "dangling"
        return "waiting" if _deleting_with(owner, FOREGROUND_FINALIZER) else "solid"

    async def attempt_to_delete(self, rt: ResourceType, obj: Message) -> Result | None:
        """``attemptToDeleteItem`` for a dependent not being deleted."""
        meta = _meta(obj)
        if all(self._solid_in_cache(ref, meta.namespace) for ref in meta.ownerReferences):
            return None
        try:
            latest = await self.client.get(rt, meta.name, namespace=meta.namespace)
        except api.NotFound:
            return None
        lmeta = _meta(latest)
        if lmeta.uid != meta.uid or lmeta.HasField("deletionTimestamp") or not lmeta.ownerReferences:
            return None
        solid: list[Any] = []
        dangling: list[Any] = []
        waiting: list[Any] = []
        for ref in lmeta.ownerReferences:
            state = await self._classify(ref, lmeta.namespace)
            {"solid": solid, "dangling": dangling, "waiting": waiting}[state].append(ref)
        key = self.key_of(rt, latest)
        if solid:
            if not dangling and not waiting:
                return None
            uids = [r.uid for r in [*dangling, *waiting]]
            self.log.info("removing references to absent or deleting owners", key=key,
                          resourceVersion=lmeta.resourceVersion, owners=[r.name for r in [*dangling, *waiting]])
            try:
                await self.client.patch(rt, lmeta.name, _owner_ref_patch(lmeta.uid, uids), namespace=lmeta.namespace,
                                        patch_type="strategic")
            except (api.NotFound, api.Conflict):
                pass  # gone or replaced: its own events bring it back if there is more to do
            return None
        deps = self.dependents(lmeta.uid) if waiting else []
        if deps:
            policy = "Foreground"  # an owner waits for us and we have dependents: they go first
            if any(_deleting_with(dep, FOREGROUND_FINALIZER) for _, dep in deps):
                # A dependent of ours is itself waiting in the foreground: possibly a cycle of
                # blocking references that would wait forever. As Kubernetes does, stop blocking
                # our waiting owners before joining the wait (the cycle check has false positives;
                # they only lose the ordering, never an object).
                unblock = [{"uid": r.uid, "blockOwnerDeletion": False} for r in waiting if r.blockOwnerDeletion]
                if unblock:
                    try:
                        await self.client.patch(rt, lmeta.name, {"metadata": {"ownerReferences": unblock,
                                                                              "uid": lmeta.uid}},
                                                namespace=lmeta.namespace, patch_type="strategic")
                    except api.NotFound:
                        return None
                    except api.Conflict:
                        return Result(requeue=True)
                    return Result(requeue=True)  # decide again on the unblocked object
        elif ORPHAN_FINALIZER in lmeta.finalizers:
            policy = "Orphan"
        elif FOREGROUND_FINALIZER in lmeta.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        self.log.info("deleting object whose owners are all gone or deleting", key=key,
                      resourceVersion=lmeta.resourceVersion, policy=policy,
                      dangling=[r.name for r in dangling], waiting=[r.name for r in waiting])
        try:
            await self.client.delete(rt, lmeta.name, namespace=lmeta.namespace, propagation_policy=policy,
                                     uid=lmeta.uid, resource_version=lmeta.resourceVersion)
        except api.NotFound:
            return None
        except api.Conflict:
            return Result(requeue=True)  # changed since we looked (maybe adopted): decide again
        return None

    async def orphan_dependents(self, rt: ResourceType, owner: Message) -> None:
        """``attemptToOrphan``: drop the reference to ``owner`` from every dependent, then the
        ``orphan`` finalizer."""
        meta = _meta(owner)
        deps = self.dependents(meta.uid)

        async def orphan(drt: ResourceType, dep: Message) -> None:
            dmeta = _meta(dep)
            try:
                await self.client.patch(drt, dmeta.name, _owner_ref_patch(dmeta.uid, [meta.uid]),
                                        namespace=dmeta.namespace, patch_type="strategic")
            except (api.NotFound, api.Conflict, api.Invalid):
                pass  # gone, replaced by another object of that name, or the reference already went

        await asyncio.gather(*(orphan(drt, dep) for drt, dep in deps))
        self.log.info("orphaned dependents", key=self.key_of(rt, owner), resourceVersion=meta.resourceVersion,
                      dependents=len(deps))
        await self.remove_finalizer(rt, owner, ORPHAN_FINALIZER)

    async def delete_dependents(self, rt: ResourceType, owner: Message) -> Result | None:
        """``processDeletingDependentsItem``: queue the dependents; drop ``foregroundDeletion``
        once no dependent blocks the owner's deletion."""
        meta = _meta(owner)
        blocking = 0
        for drt, dep in self.dependents(meta.uid):
            dmeta = _meta(dep)
            if any(r.uid == meta.uid and r.blockOwnerDeletion for r in dmeta.ownerReferences):
                blocking += 1
            if not dmeta.HasField("deletionTimestamp"):
                self._enqueue(drt, dep)
        if blocking:
            return Result(requeue_after=FOREGROUND_RECHECK_SECONDS)
        self.log.info("no blocking dependents left; removing the foregroundDeletion finalizer",
                      key=self.key_of(rt, owner), resourceVersion=meta.resourceVersion)
        await self.remove_finalizer(rt, owner, FOREGROUND_FINALIZER)
        return None

    async def remove_finalizer(self, rt: ResourceType, obj: Message, finalizer: str) -> None:
        meta = _meta(obj)

        async def attempt() -> None:
            try:
                live = await self.client.get(rt, meta.name, namespace=meta.namespace)
            except api.NotFound:
                return
            lmeta = _meta(live)
            if lmeta.uid != meta.uid or finalizer not in lmeta.finalizers:
                return
            kept = [f for f in lmeta.finalizers if f != finalizer]
            patch = {"metadata": {"finalizers": kept or None, "resourceVersion": lmeta.resourceVersion,
                                  "uid": lmeta.uid}}
            try:
                await self.client.patch(rt, meta.name, patch, namespace=meta.namespace, patch_type="merge")
            except api.NotFound:
                return

        await retry_on_conflict(attempt)


def new(ctx: ControllerContext) -> Controller:
    return GarbageCollector(ctx).controller
