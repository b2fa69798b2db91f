"""The namespace controller: empties a namespace that is being deleted, then lets it go
(Kubernetes' ``pkg/controller/namespace``).

``kpctl delete namespace x`` only marks the namespace (deletionTimestamp, phase Terminating);
the apiserver keeps it while ``spec.finalizers`` holds ``kubernetes``, and meanwhile refuses new
content in it. For such a namespace this controller

1. deletes every object of every namespaced resource type in it (``RESOURCES``, events and
   leases included — nothing may survive its namespace), in the background: owners' dependents
   are in the namespace too and are deleted here directly, and the garbage collector handles
   any foreground/orphan finalizers they carry;
2. lists again and records what remains in the namespace's status conditions, with Kubernetes'
   types, reasons and messages (``NamespaceContentRemaining`` "Some resources are remaining:
   pods has 2 resource instances", ``NamespaceFinalizersRemaining``,
   ``NamespaceDeletionContentFailure``, and the discovery conditions, which cannot fail here);
3. requeues while anything remains — pods wait for their kubelet's graceful termination, objects
   with finalizers for whoever owns the finalizer — and looks again soon (the estimate is the
   longest remaining pod grace period, bounded to a few seconds, as nothing here watches the
   content);
4. once the namespace is empty, removes ``kubernetes`` from ``spec.finalizers`` through the
   ``namespaces/finalize`` subresource; with no finalizers left the apiserver deletes it.

Everything is read live from the apiserver (lists per type), not from informers: the controller
acts rarely, and must not finalize on a cache that has not yet seen the latest content.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from kplane.api import errors as api
from kplane.api.codec import copy_message
from kplane.api.pb import core_pb2
from kplane.api.resources import RESOURCES, ResourceType, resolve
from kplane.client.client import Client
from kplane.client.controller import Controller, Result
from kplane.logs import get_logger

NAMESPACES: ResourceType = resolve("namespaces")
FINALIZER_KUBERNETES = "kubernetes"
DELETE_CONCURRENCY = 20
# Requeue bounds while content remains (seconds).
MIN_RECHECK, MAX_RECHECK = 1.0, 5.0

# Kubernetes' namespace condition types and their "all is well" reason and message.
DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
OK_CONDITIONS: dict[str, tuple[str, str]] = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GV_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def namespaced_resources() -> list[ResourceType]:
    return [rt for rt in RESOURCES if rt.namespaced]


class Contents:
    """What one pass found left in a namespace."""

    def __init__(self) -> None:
        self.remaining: dict[str, int] = {}  # group resource -> objects left
        self.finalizers: dict[str, int] = {}  # finalizer -> objects carrying it
        self.errors: list[str] = []
        self.estimate = 0.0  # seconds until the slowest pod's grace period ends

    @property
    def empty(self) -> bool:
        return not self.remaining and not self.errors

    def conditions(self) -> list[tuple[str, str, str, str]]:
        """(type, status, reason, message) for every condition Kubernetes sets."""
        out = [(t, "False", *OK_CONDITIONS[t]) for t in (DISCOVERY_FAILURE, GV_PARSING_FAILURE)]
        if self.errors:
            out.append((CONTENT_FAILURE, "True", "ContentDeletionFailed",
                        f"Failed to delete all resource types, {len(self.errors)} remaining: "
                        + ", ".join(self.errors)))
        else:
            out.append((CONTENT_FAILURE, "False", *OK_CONDITIONS[CONTENT_FAILURE]))
        if self.remaining:
            text = ", ".join(f"{gr} has {n} resource instances" for gr, n in sorted(self.remaining.items()))
            out.append((CONTENT_REMAINING, "True", "SomeResourcesRemain", f"Some resources are remaining: {text}"))
        else:
            out.append((CONTENT_REMAINING, "False", *OK_CONDITIONS[CONTENT_REMAINING]))
        if self.finalizers:
            text = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(self.finalizers.items()))
            out.append((FINALIZERS_REMAINING, "True", "SomeFinalizersRemain",
                        f"Some content in the namespace has finalizers remaining: {text}"))
        else:
            out.append((FINALIZERS_REMAINING, "False", *OK_CONDITIONS[FINALIZERS_REMAINING]))
        return out


class NamespaceController:
    def __init__(self, ctx: ControllerContext, *, resources: list[ResourceType] | None = None) -> None:
        self.client: Client = ctx.client
        self.may_write = ctx.may_write
        self.resources = resources if resources is not None else namespaced_resources()
        self.log = get_logger(component="controller-manager", controller="namespace")
        self.informer = ctx.factory.informer_for(NAMESPACES)
        self.controller = Controller("namespace", self.sync, workers=ctx.workers)
        self.controller.watch(self.informer)

    async def sync(self, key: str) -> Result | None:
        cached = self.informer.store.get_by_key(key)
        if cached is None or not cached.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            return None
        if self.may_write is not None and not self.may_write():
            return None
        try:
            ns = await self.client.get(NAMESPACES, key)
        except api.NotFound:
            return None
        assert isinstance(ns, core_pb2.Namespace)
        if not ns.metadata.HasField("deletionTimestamp") or FINALIZER_KUBERNETES not in ns.spec.finalizers:
            return None
        contents = await self.delete_content(key)
        ns = await self.update_conditions(ns, contents)
        if not contents.empty:
            self.log.info("namespace content remains; looking again", key=key,
                          resourceVersion=ns.metadata.resourceVersion, remaining=contents.remaining,
                          finalizers=contents.finalizers, errors=len(contents.errors))
            if contents.errors:
                raise RuntimeError(f"deleting the content of namespace {key}: " + "; ".join(contents.errors))
            return Result(requeue_after=min(MAX_RECHECK, max(MIN_RECHECK, contents.estimate)))
        await self.finalize(key)
        return None

    async def delete_content(self, namespace: str) -> Contents:
        """Delete everything in ``namespace``, then report what is left."""
        contents = Contents()
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def delete(rt: ResourceType, obj: Message) -> None:
            meta = obj.metadata  # type: ignore[attr-defined]
            async with limit:
                try:
                    await self.client.delete(rt, meta.name, namespace=namespace, propagation_policy="Background",
                                             uid=meta.uid)
                except (api.NotFound, api.Conflict):
                    pass  # gone already, or replaced (the next pass sees the new one)

        async def one_type(rt: ResourceType) -> None:
            try:
                items, _ = await self.client.list_all(rt, namespace=namespace)
                todo = [o for o in items if not o.metadata.HasField("deletionTimestamp")]  # type: ignore[attr-defined]
                await asyncio.gather(*(delete(rt, o) for o in todo))
                if todo:
                    items, _ = await self.client.list_all(rt, namespace=namespace)
            except api.APIError as exc:
                contents.errors.append(f"{rt.group_resource}: {exc}")
                return
            if not items:
                return
            contents.remaining[rt.group_resource] = len(items)
            now = time.time()
            for obj in items:
                meta = obj.metadata  # type: ignore[attr-defined]
                for f in meta.finalizers:
                    contents.finalizers[f] = contents.finalizers.get(f, 0) + 1
                if meta.HasField("deletionTimestamp"):
                    contents.estimate = max(contents.estimate, meta.deletionTimestamp.seconds - now)

        await asyncio.gather(*(one_type(rt) for rt in await self.served(self.resources)))
        return contents

    async def update_conditions(self, ns: core_pb2.Namespace, contents: Contents) -> core_pb2.Namespace:
        """Write the deletion conditions when they changed (transition times kept otherwise)."""
        wanted = contents.conditions()
        current: dict[str, Any] = {c.type: c for c in ns.status.conditions}
        if all(t in current and (current[t].status, current[t].reason, current[t].message) == (s, r, m)
               for t, s, r, m in wanted):
            return ns
        new = copy_message(ns)
        kept = [c for c in ns.status.conditions if c.type not in {w[0] for w in wanted}]
        del new.status.conditions[:]
        new.status.conditions.extend(kept)
        for t, s, r, m in wanted:
            cond = new.status.conditions.add(type=t, status=s, reason=r, message=m)
            old = current.get(t)
            if old is not None and old.status == s and old.HasField("lastTransitionTime"):
                cond.lastTransitionTime.CopyFrom(old.lastTransitionTime)
            else:
                cond.lastTransitionTime.GetCurrentTime()
                cond.lastTransitionTime.nanos = 0
        try:
            out = await self.client.update_status(NAMESPACES, new)
        except (api.Conflict, api.NotFound):
            return ns  # changed meanwhile: the next pass writes them
        assert isinstance(out, core_pb2.Namespace)
        return out

    async def served(self, resources: list[ResourceType]) -> list[ResourceType]:
        """``resources`` minus the types the apiserver does not serve (discovery, as Kubernetes'
        namespace controller does): an older apiserver than this controller-manager has no
        content of a newer type, and must not block namespace deletion forever."""
        try:
            found = {(r.group, r.name) for r in await self.client.discover()}
        except api.APIError:
            return resources  # discovery failed: try everything; the errors say what is wrong
        return [rt for rt in resources if (rt.group, rt.plural) in found]

    async def finalize(self, name: str) -> None:
        """Remove ``kubernetes`` from ``spec.finalizers`` (``namespaces/finalize``), retrying on conflict."""
        for _ in range(5):
            try:
                ns = await self.client.get(NAMESPACES, name)
            except api.NotFound:
                return
            assert isinstance(ns, core_pb2.Namespace)
            if FINALIZER_KUBERNETES not in ns.spec.finalizers:
                return
            new = copy_message(ns)
            kept = [f for f in ns.spec.finalizers if f != FINALIZER_KUBERNETES]
            del new.spec.finalizers[:]
            new.spec.finalizers.extend(kept)
            try:
                await self.client.update(NAMESPACES, new, subresource="finalize")
            except api.Conflict:
                continue
            except api.NotFound:
                return
            self.log.info("namespace finalized", key=name, resourceVersion=ns.metadata.resourceVersion,
                          deleted=not kept)  # no finalizer left: the apiserver removes it
            return
        raise api.Conflict(f"namespace {name}: finalize kept conflicting")


def new(ctx: ControllerContext) -> Controller:
    return NamespaceController(ctx).controller
