"""The generic registry: create/get/list/update/patch/delete for every kind.

The write path of every verb is the same pipeline, on the object's JSON form:

    decode strictly -> metadata rules -> strategy -> defaults -> validation -> admission
    -> encode -> etcd compare-and-swap

and a failure at any step changes nothing in the store. resourceVersion is the etcd
mod_revision; stored bytes never carry it (it is set on read).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import json_merge_patch
import jsonpatch
from google.protobuf.message import Message

from apiserver import managedfields
from apiserver import patch as smpatch
from apiserver.admission import Admission
from apiserver.allocator import ServiceAllocator, prepare_service_update
from apiserver.storage import (
    Companions,
    FutureRevision,
    KeyExists,
    RevisionCompacted,
    RevisionMismatch,
    Storage,
)
from apiserver.strategy import Strategy, spec_part, strategy_for
from apiserver.watchcache import Entry, Filter, WatchCache, rv_suffix
from kplane.api import codec
from kplane.api import errors as api
from kplane.api import field as fe
from kplane.api.defaults import apply_defaults
from kplane.api.resources import RESOURCES, ResourceType, object_to_dict
from kplane.api.validation import validate_create, validate_status_update, validate_update
from kplane.logs import get_logger

log = get_logger(component="apiserver")

Obj = dict[str, Any]

# Random-suffix alphabet of Kubernetes' generateName (no vowels, no confusable characters).
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
# Unconditional updates retry lost compare-and-swap races (Kubernetes' GuaranteedUpdate retries until
# it wins); the bound only stops a livelock from spinning forever.
MAX_UPDATE_RETRIES = 1000


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHANUMS) for _ in range(5))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CorruptObject(api.InternalError):
    """A stored value that does not decode as its kind (garbage written to etcd directly)."""


@dataclass
class Result:
    obj: Message
    deleted: bool = False


class Registry:
    def __init__(self, storage: Storage, *, watch_cache_size: int = 10_000) -> None:
        self.storage = storage
        self.caches: dict[str, WatchCache] = {
            rt.plural: WatchCache(rt, storage, window=watch_cache_size) for rt in RESOURCES}
        self.strategies: dict[str, Strategy] = {rt.plural: strategy_for(rt) for rt in RESOURCES}
        self.admission = Admission()  # mutating admission on create (apiserver/admission.py)
        # ClusterIPs and NodePorts of Services (apiserver/allocator.py); None: not allocated
        self.allocator: ServiceAllocator | None = None

    async def start(self) -> None:
        trusted = await self._etcd_progress_is_reliable()
        for cache in self.caches.values():
            cache.trust_progress = trusted
            cache.start()
        async with asyncio.timeout(60):
            await asyncio.gather(*(c.ready.wait() for c in self.caches.values()))

    async def _etcd_progress_is_reliable(self) -> bool:
        """etcd 3.4.24+ / 3.5.8+ fixed progress notifications racing events (etcd issue 15220)."""
        try:
            assert self.storage._client is not None
            status = await self.storage._client.status()
            parts = tuple(int(p) for p in str(status.version).split(".")[:3])
        except Exception:
            return False
        return parts >= (3, 5, 8) or ((3, 4, 24) <= parts < (3, 5, 0))

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.caches.values()))

    def cache(self, rt: ResourceType) -> WatchCache:
        return self.caches[rt.plural]

    # -- decoding helpers ------------------------------------------------------------------

    @staticmethod
    def decode_dict(rt: ResourceType, data: Any) -> Obj:
        """Strict decode of a JSON document for `rt`, returned in canonical dict form."""
        if not isinstance(data, dict):
            raise api.BadRequest("the request body must be a JSON object")
        errors: list[fe.FieldError] = []
        api_version, kind = data.get("apiVersion"), data.get("kind")
        if api_version not in (None, "") and api_version != rt.api_version:
            errors.append(fe.invalid("apiVersion", api_version, f"must be {rt.api_version} for {rt.group_resource}"))
        if kind not in (None, "") and kind != rt.kind:
            errors.append(fe.invalid("kind", kind, f"must be {rt.kind} for {rt.group_resource}"))
        try:
            msg = codec.from_dict(data, rt.message, ignore=frozenset({"apiVersion", "kind"}))
        except codec.DecodeError as exc:
            errors.extend(exc.errors)
            msg = None
        if errors or msg is None:
            name = data.get("metadata", {}).get("name", "") if isinstance(data.get("metadata"), dict) else ""
            raise api.Invalid.for_object(rt.kind, str(name), errors, rt.group)
        return object_to_dict(rt, msg)

    @staticmethod
    def encode(rt: ResourceType, obj: Obj) -> Message:
        try:
            return codec.from_dict(obj, rt.message, ignore=frozenset({"apiVersion", "kind"}))
        except codec.DecodeError as exc:  # defaults/strategies produced something odd: a bug, but say what
            raise api.Invalid.for_object(rt.kind, obj.get("metadata", {}).get("name", ""), exc.errors, rt.group) from None

    def _to_dict(self, rt: ResourceType, raw: bytes, rev: int, key: str = "") -> Obj:
        msg = rt.new()
        try:
            msg.ParseFromString(raw + rv_suffix(rev))
        except Exception:
            raise CorruptObject(f"the object stored at {key or rt.plural} (revision {rev}) cannot be decoded; "
                                f"delete it to recover") from None
        return object_to_dict(rt, msg)

    def decode_stored(self, rt: ResourceType, key: str, raw: bytes, rev: int) -> Obj | None:
        """A stored object as a dict, None when it does not decode."""
        try:
            return self._to_dict(rt, raw, rev, key)
        except CorruptObject:
            return None

    @staticmethod
    def _storable(rt: ResourceType, obj: Obj) -> tuple[Message, bytes]:
        msg = Registry.encode(rt, obj)
        msg.metadata.ClearField("resourceVersion")  # type: ignore[attr-defined]
        return msg, msg.SerializeToString(deterministic=True)

    @staticmethod
    def _with_rv(msg: Message, rev: int) -> Message:
        msg.metadata.resourceVersion = str(rev)  # type: ignore[attr-defined]
        return msg

    # -- admission -------------------------------------------------------------------------

    async def _admit_namespace(self, rt: ResourceType, namespace: str, name: str = "") -> None:
        """NamespaceLifecycle admission: the namespace must exist and not be terminating.
        Read from the namespaces watch cache (as Kubernetes reads an informer); a namespace too
        new for the cache is confirmed from etcd."""
        if not rt.namespaced:
            return
        ns_rt = _rt("namespaces")
        key = ns_rt.key("", namespace)
        entry = self.cache(ns_rt).get_entry(key)
        if entry is not None:
            meta, phase = entry.obj.metadata, entry.obj.status.phase  # type: ignore[attr-defined]
            terminating = meta.HasField("deletionTimestamp") or phase == "Terminating"
        else:
            kv = await self.storage.get(key)
            if kv is None:
                raise api.NotFound(f'namespaces "{namespace}" not found', kind="namespaces", name=namespace)
            ns = self._to_dict(ns_rt, kv.value, kv.mod_revision)
            terminating = bool(ns.get("metadata", {}).get("deletionTimestamp")) or \
                ns.get("status", {}).get("phase") == "Terminating"
        if terminating:
            raise api.Forbidden(
                f'{rt.group_resource} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                kind=rt.plural,
            )

    # -- create ----------------------------------------------------------------------------

    async def create(self, rt: ResourceType, namespace: str, data: Any, *, dry_run: bool = False) -> Result:
        obj = self.decode_dict(rt, data)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(rt, namespace, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        name = meta.get("name", "")
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if rt.has_spec:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        strategy = self.strategies[rt.plural]
        strategy.prepare_for_create(obj)
        apply_defaults(rt.kind, obj)
        if rt.kind == "Job":
            from kplane.api.defaults import job_prepare_for_create

            job_prepare_for_create(obj, meta["uid"])
        self.admission.admit_create(rt, obj)
        errors = validate_create(rt.kind, obj)
        if errors:
            raise api.Invalid.for_object(rt.kind, name, errors, rt.group)
        await self._admit_namespace(rt, namespace, name)
        managedfields.stamp_write(rt.api_version, obj, None)
        key = rt.key(namespace, name)
        if dry_run:
            if rt.kind == "Service" and self.allocator is not None:
                await self.allocator.dry_run(obj, None)
            return Result(self._storable(rt, obj)[0])
        stored: list[Message] = []
        for attempt in range(3):
            try:
                rev = await self._allocating_write(rt, obj, None, partial(self._cas_put, rt, key, obj, 0, stored))
                break
            except KeyExists:
                if attempt < 2 and meta.get("generateName") and name.startswith(meta["generateName"]):
                    # a generated name collided: pick another, as Kubernetes does
                    name = meta["name"] = generate_name(meta["generateName"])
                    key = rt.key(namespace, name)
                    continue
                raise api.AlreadyExists.for_object(rt.group_resource, name) from None
        log.info("created", resource=rt.plural, key=key, rv=rev)
        return Result(self._with_rv(stored[0], rev))

    async def _cas_put(self, rt: ResourceType, key: str, obj: Obj, expected: int, stored: list[Message],
                       companions: Companions | None) -> int:
        """Encode `obj` as it is now (allocation may just have filled it in) and write it:
        a create when `expected` is 0, else an update of that revision."""
        msg, raw = self._storable(rt, obj)
        stored[:] = [msg]
        if expected == 0:
            return await self.storage.create(key, raw, companions)
        return await self.storage.update(key, raw, expected, companions)

    async def _allocating_write(self, rt: ResourceType, new: Obj | None, old: Obj | None,
                                write: Callable[[Companions | None], Awaitable[int]]) -> int:
        """`write` (one etcd transaction), with the ClusterIP/NodePort keys a Service claims or
        releases in the same transaction (apiserver/allocator.py); other kinds write alone."""
        if rt.kind != "Service" or self.allocator is None:
            return await write(None)
        return await self.allocator.write(new, old, write)

    @staticmethod
    def _check_namespace(rt: ResourceType, namespace: str, meta: Obj) -> None:
        if rt.namespaced:
            if not namespace:
                raise api.BadRequest(f"{rt.group_resource} are namespaced: a namespace is required")
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise api.BadRequest(
                    f"the namespace of the provided object ({meta['namespace']}) does not match the namespace "
                    f"sent on the request ({namespace})"
                )
            meta["namespace"] = namespace
        else:
            # Kubernetes ignores a namespace on a cluster-scoped object, so such manifests work here too
            meta.pop("namespace", None)

    # -- reads -----------------------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str, name: str, resource_version: str = "") -> Message:
        key = rt.key(namespace, name)
        revision = _parse_rv(resource_version) if resource_version else 0
        try:
            kv = await self.storage.get(key, revision)
        except RevisionCompacted as exc:
            raise await self._expired(revision, exc) from None
        except FutureRevision:
            raise api.Timeout(f"Too large resource version: {revision}, current: "
                              f"{await self.storage.current_revision()}") from None
        if kv is None:
            raise api.NotFound.for_object(rt.group_resource, name)
        msg = rt.new()
        try:
            msg.ParseFromString(kv.value + rv_suffix(kv.mod_revision))
        except Exception:
            raise CorruptObject(f"the object stored at {key} (revision {kv.mod_revision}) cannot be decoded; "
                                f"delete it to recover") from None
        return msg

    async def _expired(self, revision: int, exc: Exception) -> api.Expired:
        try:
            floor = await self.storage.compact_revision_floor()
        except Exception:
            floor = 0
        oldest = f" (the oldest retained revision is {floor})" if floor else ""
        return api.Expired(f"too old resource version: {revision}{oldest}")

    async def list(
        self, rt: ResourceType, namespace: str, flt: Filter, *, resource_version: str = "", limit: int = 0,
        continue_token: str = "",
    ) -> tuple[builtins.list[bytes], int, str]:
        """Returns (wire encodings, revision read at, continue token)."""
        start_after = ""
        if continue_token:
            try:
                token = json.loads(bytes.fromhex(continue_token).decode())
                start_after, resource_version = token["k"], str(token["rv"])
            except (ValueError, KeyError, TypeError):
                raise api.BadRequest("invalid continue token") from None
        cache = self.cache(rt)
        if resource_version and resource_version != "0":
            return await self._list_at(rt, namespace, flt, _parse_rv(resource_version), limit, start_after)
        # A consistent read served from the cache once it provably equals etcd.
        if resource_version != "0" and await cache.consistent_revision() is None:
            current = await self.storage.current_revision()
            log.warning("watch cache lagging; listing from etcd", resource=rt.plural, want=current, have=cache.rev)
            return await self._list_at(rt, namespace, flt, current, limit, start_after)
        entries, rev, last = cache.list(flt, limit=limit, start_after=start_after)
        token = json.dumps({"k": last, "rv": rev}).encode().hex() if last else ""
        return [e.wire for e in entries], rev, token

    async def _list_at(self, rt: ResourceType, namespace: str, flt: Filter, revision: int, limit: int,
                       start_after: str) -> tuple[builtins.list[bytes], int, str]:
        """A list read from etcd at an exact revision (time travel, pagination, cache fallback)."""
        try:
            kvs, rev, _ = await self.storage.list(rt.prefix(namespace), revision)
        except RevisionCompacted as exc:
            raise await self._expired(revision, exc) from None
        except Exception as exc:
            if "future revision" in str(exc):
                raise api.Timeout(f"Too large resource version: {revision}, current: unknown") from None
            raise
        out: builtins.list[bytes] = []
        last = ""
        cache = self.cache(rt)
        for kv in kvs:
            if start_after and kv.key <= start_after:
                continue
            entry = cache._decode(kv)
            if entry is None or not flt.matches(entry):
                continue
            if limit and len(out) >= limit:
                last = (out and kvs and last) or ""
                break
            out.append(entry.wire)
            last = kv.key
        else:
            last = ""
        token = json.dumps({"k": last, "rv": rev}).encode().hex() if last else ""
        return out, rev, token

    # -- update ----------------------------------------------------------------------------

    async def update(self, rt: ResourceType, namespace: str, name: str, data: Any, *, subresource: str = "",
                     dry_run: bool = False) -> Result:
        new_obj = self.decode_dict(rt, data)
        meta = new_obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise api.BadRequest(f'the name of the object ({meta["name"]}) does not match the name on the URL ({name})')
        meta["name"] = name
        self._check_namespace(rt, namespace, meta)
        precondition = meta.get("resourceVersion", "")

        def mutate(old: Obj) -> Obj:
            return copy.deepcopy(new_obj)

        return await self._guaranteed_update(rt, namespace, name, mutate, precondition=precondition,
                                             subresource=subresource, dry_run=dry_run)

    async def patch(self, rt: ResourceType, namespace: str, name: str, patch_type: str, patch: str, *,
                    subresource: str = "", dry_run: bool = False) -> Result:
        try:
            doc = json.loads(patch)
        except json.JSONDecodeError as exc:
            raise api.BadRequest(f"the patch is not valid JSON: {exc}") from None
        kind = patch_type or "merge"
        if kind not in ("merge", "json", "strategic"):
            raise api.BadRequest(f'unsupported patch type "{patch_type}": use merge, json or strategic')
        if kind == "json" and not isinstance(doc, list):
            raise api.BadRequest("a JSON patch must be a list of operations")
        if kind != "json" and not isinstance(doc, dict):
            raise api.BadRequest("a merge patch must be a JSON object")
        precondition = ""
        if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
            precondition = str(doc["metadata"].get("resourceVersion") or "")

        def mutate(old: Obj) -> Obj:
            current = copy.deepcopy(old)
            try:
                if kind == "json":
                    patched = jsonpatch.apply_patch(current, doc)
                elif kind == "merge":
                    patched = json_merge_patch.merge(current, copy.deepcopy(doc))
                else:
                    patched = smpatch.strategic_merge(current, copy.deepcopy(doc))
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise api.BadRequest(f"the JSON patch could not be applied: {exc}") from None
            if not isinstance(patched, dict):
                raise api.BadRequest("the patch did not produce an object")
            return self.decode_dict(rt, patched)

        return await self._guaranteed_update(rt, namespace, name, mutate, precondition=precondition,
                                             subresource=subresource, dry_run=dry_run)

    async def _guaranteed_update(
        self, rt: ResourceType, namespace: str, name: str, mutate: Callable[[Obj], Obj], *, precondition: str = "",
        subresource: str = "", dry_run: bool = False,
    ) -> Result:
        """Read, mutate, compare-and-swap; retried on a lost race unless the caller sent a
        resourceVersion precondition (then the race is the caller's Conflict)."""
        key = rt.key(namespace, name)
        strategy = self.strategies[rt.plural]
        if precondition:
            _parse_rv(precondition)  # a malformed resourceVersion is a bad request, not a conflict
        for attempt in range(MAX_UPDATE_RETRIES):
            if attempt >= 3:  # heavy contention: back off a little (jittered) before re-reading
                await asyncio.sleep(random.uniform(0, min(0.001 * 2 ** min(attempt, 8), 0.25)))
            kv = await self.storage.get(key)
            if kv is None:
                raise api.NotFound.for_object(rt.group_resource, name)
            old = self._to_dict(rt, kv.value, kv.mod_revision)
            if precondition and precondition != str(kv.mod_revision):
                raise api.Conflict.for_object(
                    rt.group_resource, name,
                    "the object has been modified; please apply your changes to the latest version and try again")
            new = mutate(old)
            new_meta, old_meta = new.get("metadata") or {}, old["metadata"]
            for field_name in ("name", "namespace"):
                if new_meta.get(field_name, old_meta.get(field_name)) != old_meta.get(field_name):
                    raise api.BadRequest(f"metadata.{field_name} cannot be changed "
                                         f"(from {old_meta.get(field_name)!r} to {new_meta.get(field_name)!r})")
            new_obj = self._prepare_update(rt, strategy, new, old, subresource)
            if new_obj is None:  # nothing changed: no write, no new revision (as Kubernetes)
                return Result(self._with_rv(self.encode(rt, old), kv.mod_revision))
            managedfields.stamp_write(rt.api_version, new_obj, old, subresource)
            meta = new_obj["metadata"]
            finished = bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and not (
                rt.kind == "Pod" and int(meta.get("deletionGracePeriodSeconds") or 0) > 0) and not (
                rt.kind == "Namespace" and new_obj.get("spec", {}).get("finalizers"))
            if dry_run:
                if rt.kind == "Service" and self.allocator is not None and not finished:
                    await self.allocator.dry_run(new_obj, old)
                return Result(self._with_rv(self._storable(rt, new_obj)[0], kv.mod_revision))
            stored: list[Message] = []
            try:
                if finished:
                    rev = await self._allocating_write(rt, None, old, partial(self.storage.delete, key, kv.mod_revision))
                    log.info("deleted (finalizers done)", resource=rt.plural, key=key, rv=rev)
                    return Result(self._with_rv(self._storable(rt, new_obj)[0], rev), deleted=True)
                rev = await self._allocating_write(rt, new_obj, old,
                                                   partial(self._cas_put, rt, key, new_obj, kv.mod_revision, stored))
                msg = stored[0]
            except RevisionMismatch:
                if precondition:
                    raise api.Conflict.for_object(
                        rt.group_resource, name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ) from None
                continue
            log.info("updated", resource=rt.plural, key=key, rv=rev, subresource=subresource or None)
            return Result(self._with_rv(msg, rev))
        raise api.Conflict.for_object(rt.group_resource, name, "too many concurrent writers; try again")

    def _prepare_update(self, rt: ResourceType, strategy: Strategy, new: Obj, old: Obj, subresource: str) -> Obj | None:
        meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
        name = old_meta.get("name", "")
        if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
            raise api.Conflict.for_object(
                rt.group_resource, name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta.get('uid')}")
        # Server-owned metadata always comes from the stored object.
        for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "namespace", "name", "selfLink", "managedFields"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("resourceVersion", None)
        if subresource == "binding":
            # the binding subresource is the one writer allowed to set spec.nodeName (and PodScheduled)
            errors = []
        elif subresource == "finalize":
            # namespaces/finalize: only spec.finalizers change (the namespace controller's last step)
            finalizers = list((new.get("spec") or {}).get("finalizers") or [])
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = finalizers
            if not finalizers:
                new["spec"].pop("finalizers")
            meta = new["metadata"]
            meta.pop("resourceVersion", None)
            errors = validate_update(rt.kind, new, old)
        elif subresource == "status":
            strategy.prepare_for_status_update(new, old)
            apply_defaults(rt.kind, new)
            errors = validate_status_update(rt.kind, new, old)
        else:  # the main resource
            strategy.prepare_for_update(new, old)
            if rt.kind == "Service":
                prepare_service_update(new, old)
            apply_defaults(rt.kind, new)
            errors = validate_update(rt.kind, new, old)  # includes "no new finalizers once deleting"
        if errors:
            raise api.Invalid.for_object(rt.kind, name, errors, rt.group)
        old_cmp = {k: v for k, v in old.items()}
        old_cmp["metadata"] = {k: v for k, v in old_meta.items() if k != "resourceVersion"}
        if new == old_cmp:
            return None
        if rt.has_spec and subresource != "binding" and spec_part(new) != spec_part(old):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        return new

    # -- delete ----------------------------------------------------------------------------

    async def delete(self, rt: ResourceType, namespace: str, name: str, options: Obj, *,
                     dry_run: bool = False) -> Result:
        if rt.kind == "Namespace" and name in IMMORTAL_NAMESPACES:
            raise api.Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                kind="namespaces", name=name)
        key = rt.key(namespace, name)
        for _ in range(MAX_UPDATE_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                raise api.NotFound.for_object(rt.group_resource, name)
            try:
                obj = self._to_dict(rt, kv.value, kv.mod_revision, key)
            except CorruptObject:
                # Garbage in etcd must not be undeletable (Kubernetes: unsafe malformed object deletion).
                if dry_run:
                    return Result(rt.new(), deleted=True)
                try:
                    rev = await self.storage.delete(key, kv.mod_revision)
                except RevisionMismatch:
                    continue
                log.warning("deleted an undecodable object", resource=rt.plural, key=key, rv=rev)
                gone = rt.new()
                gone.metadata.name = name  # type: ignore[attr-defined]
                gone.metadata.namespace = namespace  # type: ignore[attr-defined]
                return Result(self._with_rv(gone, rev), deleted=True)
            meta = obj["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise api.Conflict.for_object(
                    rt.group_resource, name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != str(kv.mod_revision):
                raise api.Conflict.for_object(
                    rt.group_resource, name,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {kv.mod_revision}")
            grace = self._grace_period(rt, obj, options)
            policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "")
            finalizers = list(meta.get("finalizers", []))
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if rt.kind == "Namespace":
                finalizers_pending = bool(obj.get("spec", {}).get("finalizers")) or bool(finalizers)
            else:
                finalizers_pending = bool(finalizers)
            if grace > 0 or finalizers_pending:
                # Graceful: mark for deletion; the kubelet (grace) or the finalizers' owners finish it.
                new = copy.deepcopy(obj)
                nmeta = new["metadata"]
                nmeta["finalizers"] = finalizers
                if not finalizers:
                    nmeta.pop("finalizers")
                current_grace = nmeta.get("deletionGracePeriodSeconds")
                if nmeta.get("deletionTimestamp") and current_grace is not None and int(current_grace) <= grace \
                        and finalizers == meta.get("finalizers", []):
                    return Result(self.encode(rt, obj))  # already being deleted at least this fast
                nmeta["deletionTimestamp"] = (
                    datetime.now(UTC) + timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")
                nmeta["deletionGracePeriodSeconds"] = grace
                if rt.has_spec and not meta.get("deletionTimestamp"):
                    nmeta["generation"] = int(meta.get("generation") or 0) + 1  # as Kubernetes does
                if rt.kind == "Namespace":
                    new.setdefault("status", {})["phase"] = "Terminating"
                nmeta.pop("resourceVersion", None)
                msg, raw = self._storable(rt, new)
                if dry_run:
                    return Result(self._with_rv(msg, kv.mod_revision))
                try:
                    rev = await self.storage.update(key, raw, kv.mod_revision)
                except RevisionMismatch:
                    continue
                log.info("deletion started", resource=rt.plural, key=key, rv=rev, grace=grace)
                return Result(self._with_rv(msg, rev))
            if dry_run:
                return Result(self.encode(rt, obj), deleted=True)
            try:
                rev = await self._allocating_write(rt, None, obj, partial(self.storage.delete, key, kv.mod_revision))
            except RevisionMismatch:
                continue
            log.info("deleted", resource=rt.plural, key=key, rv=rev)
            return Result(self._with_rv(self.encode(rt, obj), rev), deleted=True)
        raise api.Conflict.for_object(rt.group_resource, name, "too many concurrent writers; try again")

    @staticmethod
    def _grace_period(rt: ResourceType, obj: Obj, options: Obj) -> int:
        if rt.kind != "Pod":
            return 0
        spec, status = obj.get("spec", {}), obj.get("status", {})
        # An unscheduled or finished pod has no kubelet to wait for: it goes at once.
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        requested = options.get("gracePeriodSeconds")
        if requested is None:
            requested = spec.get("terminationGracePeriodSeconds", 30)
        grace = int(requested)
        if grace < 0:
            raise api.Invalid("gracePeriodSeconds must be >= 0",
                              causes=[fe.invalid("gracePeriodSeconds", grace, "must be >= 0")])
        return grace

    # -- subresources ----------------------------------------------------------------------

    async def bind(self, namespace: str, name: str, binding: Obj) -> Result:
        pods = _rt("pods")
        target = binding.get("target") or {}
        node = target.get("name", "")
        errors = []
        if not node:
            errors.append(fe.required("target.name"))
        if target.get("kind") not in (None, "", "Node"):
            errors.append(fe.not_supported("target.kind", target.get("kind"), ["Node"]))
        if errors:
            raise api.Invalid.for_object("Binding", name, errors)
        uid = (binding.get("metadata") or {}).get("uid", "")

        def mutate(old: Obj) -> Obj:
            new = copy.deepcopy(old)
            meta, spec = new["metadata"], new.setdefault("spec", {})
            if uid and meta.get("uid") != uid:
                raise api.Conflict.for_object(
                    "pods/binding", name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}")
            if meta.get("deletionTimestamp"):
                raise api.Conflict.for_object("pods/binding", name, "pod is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise api.Conflict.for_object(
                    "pods/binding", name, f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
            spec["nodeName"] = node
            conditions = [c for c in new.setdefault("status", {}).get("conditions", []) if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()})
            new["status"]["conditions"] = conditions
            return new

        # binding writes spec.nodeName and a status condition: bypass the spec/status split.
        return await self._guaranteed_update(pods, namespace, name, mutate, subresource="binding")

    async def get_scale(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        if "scale" not in rt.subresources:
            raise api.NotFound(f"the server could not find the requested resource ({rt.group_resource}/scale)")
        msg = await self.get(rt, namespace, name)
        return self.scale_of(rt, object_to_dict(rt, msg))

    @staticmethod
    def scale_of(rt: ResourceType, obj: Obj) -> Obj:
        from kplane.api.labels import selector_from_label_selector, selector_from_set

        spec, status, meta = obj.get("spec", {}), obj.get("status", {}), obj["metadata"]
        raw_selector = spec.get("selector")
        if rt.kind == "ReplicationController":
            selector = str(selector_from_set(raw_selector or {}))
        else:
            try:
                selector = str(selector_from_label_selector(raw_selector)) if raw_selector else ""
            except ValueError:
                selector = ""
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0), "selector": selector},
        }

    async def update_scale(self, rt: ResourceType, namespace: str, name: str, scale: Obj) -> Obj:
        if "scale" not in rt.subresources:
            raise api.NotFound(f"the server could not find the requested resource ({rt.group_resource}/scale)")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise api.Invalid.for_object("Scale", name, [fe.invalid("spec.replicas", replicas,
                                                                    "must be greater than or equal to 0")], "autoscaling")
        precondition = str((scale.get("metadata") or {}).get("resourceVersion") or "")

        def mutate(old: Obj) -> Obj:
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["replicas"] = replicas
            return new

        result = await self._guaranteed_update(rt, namespace, name, mutate, precondition=precondition)
        return self.scale_of(rt, object_to_dict(rt, result.obj))

    # -- bootstrap -------------------------------------------------------------------------

    async def ensure_system_namespaces(self) -> None:
        ns = _rt("namespaces")
        for name in SYSTEM_NAMESPACES:
            try:
                await self.create(ns, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            except api.AlreadyExists:
                pass


def _rt(plural: str) -> ResourceType:
    for rt in RESOURCES:
        if rt.plural == plural and rt.group in ("",):
            return rt
    raise KeyError(plural)


def _parse_rv(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise api.BadRequest(f'invalid resourceVersion "{text}": must be a revision number') from None
    if value < 0:
        raise api.BadRequest(f'invalid resourceVersion "{text}": must not be negative')
    return value


__all__ = ["Entry", "Registry", "Result"]
