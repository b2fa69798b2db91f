"""The watch cache's freshness proof (WatchCache.consistent_revision) against a real etcd: it may
advance the cache's revision only when nothing under the resource's prefix changed, and a key
created and deleted again while the cache has not seen it is a change (regression: such a pair
left the prefix's count and newest mod_revision as they were, the proof passed, and a watch
resumed behind a BOOKMARK at the advanced revision lost both events)."""

from __future__ import annotations

import uuid

from apiserver.history import WriteRecorder
from apiserver.leases import LeaseManager
from apiserver.storage import Storage
from apiserver.watchcache import WatchCache
from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.devcluster import EtcdServer

CONFIGMAPS = resolve("configmaps")


def configmap_bytes(namespace: str, name: str) -> bytes:
    cm = core_pb2.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = name, namespace
    cm.data["v"] = "1"
    return cm.SerializeToString()


async def test_create_then_delete_unseen_by_the_cache_fails_the_proof(etcd: EtcdServer) -> None:
    storage = Storage(etcd.url)
    await storage.connect()
    storage.hooks = WriteRecorder(LeaseManager(storage))
    ns = f"proof-{uuid.uuid4().hex[:8]}"
    try:
        await storage.create(CONFIGMAPS.key(ns, "kept"), configmap_bytes(ns, "kept"))
        cache = WatchCache(CONFIGMAPS, storage)
        await cache._relist()  # listed, but never started: it sees no event after this point
        applied = cache.rev
        # nothing changed under the prefix: the proof holds (and may advance over other keys' writes)
        await storage.put_raw(f"/unrelated/{ns}", b"x")
        proven = await cache.consistent_revision(timeout=1.0)
        assert proven is not None and proven > applied
        # a create and a delete the cache has not seen: count and newest mod_revision are unchanged
        key = CONFIGMAPS.key(ns, "flash")
        rev = await storage.create(key, configmap_bytes(ns, "flash"))
        await storage.delete(key, rev)
        before = cache.rev
        assert await cache.consistent_revision(timeout=0.3) is None
        assert cache.rev == before, "the cache's revision must not move past events it has not applied"
    finally:
        await storage.close()
