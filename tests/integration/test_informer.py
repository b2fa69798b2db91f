"""Informers against a real etcd and real apiserver processes: list+watch, handlers, selectors,
apiserver restarts (resume from the last resourceVersion) and compaction (relist on Expired)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from apiserver.storage import Storage
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.client.informer import (
    Backoff,
    DeletedFinalStateUnknown,
    Informer,
    ResourceEventHandlerFuncs,
    SharedInformerFactory,
    deletion_handling_key,
    last_known_state,
    wait_for_cache_sync,
)
from kplane.client.store import NAMESPACE_INDEX, meta_namespace_key
from kplane.devcluster import APIServer, free_port, start_apiserver

CM = resolve("configmaps")
PODS = resolve("pods")
NS = resolve("namespaces")

DEADLINE = 60.0


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}


def rv_of(obj: Any) -> str:
    return str(obj.metadata.resourceVersion)


async def eventually(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)


class Recorder:
    """A handler that remembers every notification as (kind, key, resourceVersion, uid, tombstone)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str, bool]] = []

    def on_add(self, obj: Any) -> None:
        self.events.append(("add", meta_namespace_key(obj), rv_of(obj), obj.metadata.uid, False))

    def on_update(self, old: Any, new: Any) -> None:
        self.events.append(("update", meta_namespace_key(new), rv_of(new), new.metadata.uid, False))

    def on_delete(self, obj: Any) -> None:
        last: Any = last_known_state(obj)
        self.events.append(("delete", deletion_handling_key(obj), rv_of(last), last.metadata.uid,
                            isinstance(obj, DeletedFinalStateUnknown)))

    def view(self) -> dict[str, str]:
        """key -> resourceVersion of the objects this handler believes exist."""
        state: dict[str, str] = {}
        for kind, key, rv, _uid, _tomb in self.events:
            if kind == "delete":
                state.pop(key, None)
            else:
                state[key] = rv
        return state

    def kinds(self, key: str) -> list[str]:
        return [kind for kind, k, *_ in self.events if k == key]

    def assert_no_duplicates(self) -> None:
        """No object was added twice, and no (key, resourceVersion) state was delivered twice."""
        adds = Counter((key, uid) for kind, key, _rv, uid, _t in self.events if kind == "add")
        assert not [k for k, n in adds.items() if n > 1], f"duplicate adds: {adds}"
        states = Counter((key, rv) for kind, key, rv, _u, _t in self.events if kind != "delete")
        assert not [k for k, n in states.items() if n > 1], f"a state was delivered twice: {states}"


@asynccontextmanager
async def running(*informers: Informer) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(i.run()) for i in informers]
    try:
        assert await wait_for_cache_sync(*informers, timeout=DEADLINE)
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def truth(client: Client, namespace: str) -> dict[str, str]:
    items, _ = await client.list_all(CM, namespace=namespace)
    return {meta_namespace_key(o): rv_of(o) for o in items}


def store_view(informer: Informer) -> dict[str, str]:
    return {k: rv_of(o) for k in informer.store.list_keys() if (o := informer.store.get_by_key(k)) is not None}


async def start_private_apiserver(apiserver: APIServer, tmp: Path, port: int) -> APIServer:
    # In a thread: the informer under test keeps retrying on the event loop while this one starts.
    return await asyncio.to_thread(start_apiserver, apiserver.etcd, tmp, "--default-watch-cache-size", "5",
                                   port=port)


def kill(server: APIServer) -> None:
    server.proc.kill()
    server.proc.wait()


def test_backoff_doubles_with_jitter_and_resets() -> None:
    """Re-watch delays start at 0.1 s, double to a 5 s cap, are jittered within [d/2, d], and reset."""
    low, high = Backoff(rng=lambda: 1.0), Backoff(rng=lambda: 0.0)
    assert [round(high.next(), 3) for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert [round(low.next(), 3) for _ in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.5, 2.5]
    high.reset()
    assert high.next() == 0.1


async def test_initial_list_and_handlers(client: Client, namespace: str) -> None:
    """An informer lists existing objects into its store and hands each to a handler as one add."""
    for i in range(3):
        await client.create(CM, configmap(f"c{i}"), namespace=namespace)
    informer = Informer(client, CM, namespace=namespace)
    rec = Recorder()
    informer.add_event_handler(rec)
    assert not informer.has_synced()
    async with running(informer):
        assert informer.has_synced()
        assert sorted(informer.store.list_keys()) == [f"{namespace}/c{i}" for i in range(3)]
        assert len(informer.store.by_index(NAMESPACE_INDEX, namespace)) == 3
        await eventually(lambda: len(rec.events) == 3, "three adds")
        assert {e[0] for e in rec.events} == {"add"}
        assert rec.view() == await truth(client, namespace)


async def test_updates_and_deletes_arrive(client: Client, namespace: str) -> None:
    """Creates, updates and deletes after the list reach the store and the handlers in order."""
    informer = Informer(client, "configmaps", namespace=namespace)
    updates: list[tuple[str, str]] = []
    rec = Recorder()
    informer.add_event_handler(rec)

    async def on_update(old: Any, new: Any) -> None:  # async handlers are awaited
        updates.append((dict(old.data).get("v", ""), dict(new.data).get("v", "")))

    informer.add_event_handler(ResourceEventHandlerFuncs(on_update=on_update))
    async with running(informer):
        await client.create(CM, configmap("a", v="1"), namespace=namespace)
        await client.patch(CM, "a", {"data": {"v": "2"}}, namespace=namespace)
        await client.create(CM, configmap("b"), namespace=namespace)
        await client.delete(CM, "b", namespace=namespace)
        key_a, key_b = f"{namespace}/a", f"{namespace}/b"
        await eventually(lambda: rec.kinds(key_b) == ["add", "delete"], "b added then deleted")
        await eventually(lambda: rec.kinds(key_a) == ["add", "update"], "a added then updated")
        await eventually(lambda: updates == [("1", "2")], "the async handler saw old and new")
        assert store_view(informer) == await truth(client, namespace)
        tombstones = [e for e in rec.events if e[0] == "delete" and e[4]]
        assert not tombstones, "a delete seen on the watch carries the real final state"
        assert int(informer.last_sync_resource_version) >= int(rv_of(informer.store.get_by_key(key_a)))


async def test_selectors_are_respected(client: Client, namespace: str) -> None:
    """Label and field selectors filter the cache; an object leaving a label selector is deleted from it."""
    await client.create(PODS, pod("web-1", {"app": "web"}), namespace=namespace)
    await client.create(PODS, pod("db-1", {"app": "db"}), namespace=namespace)
    await client.create(CM, configmap("keep"), namespace=namespace)
    await client.create(CM, configmap("skip"), namespace=namespace)
    web = Informer(client, PODS, namespace=namespace, label_selector="app=web")
    named = Informer(client, CM, namespace=namespace, field_selector="metadata.name=keep")
    rec = Recorder()
    web.add_event_handler(rec)
    async with running(web, named):
        assert web.store.list_keys() == [f"{namespace}/web-1"]
        assert named.store.list_keys() == [f"{namespace}/keep"]
        await client.create(PODS, pod("web-2", {"app": "web"}), namespace=namespace)
        await client.patch(PODS, "web-1", {"metadata": {"labels": {"app": "other"}}}, namespace=namespace)
        await client.patch(PODS, "db-1", {"metadata": {"labels": {"app": "web"}}}, namespace=namespace)
        await eventually(lambda: sorted(web.store.list_keys()) == [f"{namespace}/db-1", f"{namespace}/web-2"],
                         "the label selector's view")
        await eventually(lambda: rec.kinds(f"{namespace}/web-1") == ["add", "delete"], "web-1 left the selector")
        assert named.store.list_keys() == [f"{namespace}/keep"]


async def test_late_handler_and_failing_handler(client: Client, namespace: str) -> None:
    """A handler added after sync gets the cache as adds; a handler that raises does not stop delivery."""
    await client.create(CM, configmap("x"), namespace=namespace)
    informer = Informer(client, CM, namespace=namespace)
    failures = 0

    def explode(obj: Any) -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("handler bug")

    informer.add_event_handler(ResourceEventHandlerFuncs(on_add=explode))
    async with running(informer):
        late = Recorder()
        informer.add_event_handler(late)
        await eventually(lambda: late.kinds(f"{namespace}/x") == ["add"], "synthetic add for the late handler")
        await client.create(CM, configmap("y"), namespace=namespace)
        await eventually(lambda: late.kinds(f"{namespace}/y") == ["add"], "a later add")
        await eventually(lambda: failures == 2, "the failing handler kept being called")
        late.assert_no_duplicates()


def data_keys(obj: Any) -> list[str]:
    return list(obj.data)


async def test_shared_factory_returns_one_informer_per_view(client: Client, namespace: str) -> None:
    """The factory hands every caller the same informer for the same view, and starts and syncs them all."""
    factory = SharedInformerFactory(client)
    a = factory.informer_for(CM, namespace=namespace)
    b = factory.informer_for("configmaps", namespace=namespace, indexers={"data-v": data_keys})
    other = factory.informer_for(CM, namespace=namespace, label_selector="x=y")
    assert a is b and a is not other
    assert "data-v" in a.store.get_indexers()
    await client.create(CM, configmap("f", v="1"), namespace=namespace)
    factory.start()
    try:
        assert await factory.wait_for_cache_sync(timeout=DEADLINE)
        assert a.store.index_keys("data-v", "v") == [f"{namespace}/f"]
        assert other.store.list_keys() == []
        factory.start()  # idempotent: nothing started twice
        assert a.store.list_keys() == [f"{namespace}/f"]
    finally:
        await factory.shutdown()


async def test_resync_redelivers_updates(client: Client, namespace: str) -> None:
    """With a resync period every cached object is re-delivered as on_update(obj, obj)."""
    await client.create(CM, configmap("r"), namespace=namespace)
    informer = Informer(client, CM, namespace=namespace, resync_period=0.2)
    resyncs: list[tuple[Any, Any]] = []
    informer.add_event_handler(ResourceEventHandlerFuncs(on_update=lambda old, new: resyncs.append((old, new))))
    async with running(informer):
        await eventually(lambda: len(resyncs) >= 2, "two resyncs")
        assert all(old is new and rv_of(new) == rv_of(resyncs[0][1]) for old, new in resyncs)


async def test_apiserver_restart_resumes_without_loss_or_duplicates(
        apiserver: APIServer, client: Client, namespace: str, tmp_path: Path) -> None:
    """After its apiserver is SIGKILLed and restarted, an informer resumes from its last resourceVersion
    and its store and handlers converge on exactly the truth, with every final state seen once."""
    for name in ("keep", "update", "delete", "recreate"):
        await client.create(CM, configmap(name, v="0"), namespace=namespace)
    port = free_port()
    private = await start_private_apiserver(apiserver, tmp_path, port)
    watcher = Client([private.address], identity="informer-under-test", timeout=5)
    informer = Informer(watcher, CM, namespace=namespace)
    rec = Recorder()
    informer.add_event_handler(rec)
    try:
        async with running(informer):
            await eventually(lambda: len(rec.events) == 4, "the initial adds")
            resume_rv = informer.last_sync_resource_version
            kill(private)
            # Changes made through the other apiserver (same etcd) while the informer's is down.
            await client.patch(CM, "update", {"data": {"v": "1"}}, namespace=namespace)
            await client.patch(CM, "update", {"data": {"v": "2"}}, namespace=namespace)
            await client.delete(CM, "delete", namespace=namespace)
            await client.delete(CM, "recreate", namespace=namespace)
            await client.create(CM, configmap("recreate", v="new"), namespace=namespace)
            for i in range(3):
                await client.create(CM, configmap(f"new-{i}"), namespace=namespace)
            await client.delete(CM, "new-2", namespace=namespace)
            want = await truth(client, namespace)
            private = await start_private_apiserver(apiserver, tmp_path, port)
            await eventually(lambda: store_view(informer) == want, "the store to converge")
            await eventually(lambda: rec.view() == want, "the handler's view to converge")
            assert informer.reflector.lists == 1, "it resumed from its resourceVersion, no relist"
            assert informer.reflector.reconnects >= 1
            assert int(informer.last_sync_resource_version) > int(resume_rv)
            rec.assert_no_duplicates()
            k = f"{namespace}/"
            assert rec.kinds(k + "keep") == ["add"]
            assert rec.kinds(k + "update") == ["add", "update", "update"]
            assert rec.kinds(k + "delete") == ["add", "delete"]
            assert rec.kinds(k + "recreate") == ["add", "delete", "add"]
            assert rec.kinds(k + "new-2") == ["add", "delete"]
            assert not any(e[4] for e in rec.events), "watch deletes carry real final states"
            # and the resumed watch keeps working
            await client.create(CM, configmap("after"), namespace=namespace)
            await eventually(lambda: rec.kinds(k + "after") == ["add"], "a change after the restart")
    finally:
        await watcher.close()
        kill(private)


async def test_compaction_while_disconnected_relists(
        apiserver: APIServer, client: Client, namespace: str, tmp_path: Path) -> None:
    """An informer whose resourceVersion was compacted while it was disconnected gets Expired, relists,
    converges, and reports objects removed meanwhile as DeletedFinalStateUnknown deletes."""
    for name in ("keep", "update", "delete", "recreate"):
        await client.create(CM, configmap(name, v="0"), namespace=namespace)
    port = free_port()
    private = await start_private_apiserver(apiserver, tmp_path, port)
    watcher = Client([private.address], identity="informer-under-test", timeout=5)
    informer = Informer(watcher, CM, namespace=namespace)
    rec = Recorder()
    informer.add_event_handler(rec)
    try:
        async with running(informer):
            await eventually(lambda: len(rec.events) == 4, "the initial adds")
            kill(private)
            await client.patch(CM, "update", {"data": {"v": "1"}}, namespace=namespace)
            await client.delete(CM, "delete", namespace=namespace)
            await client.delete(CM, "recreate", namespace=namespace)
            await client.create(CM, configmap("recreate", v="new"), namespace=namespace)
            await client.create(CM, configmap("added"), namespace=namespace)
            want = await truth(client, namespace)
            storage = Storage(apiserver.etcd.url)
            await storage.connect()
            try:
                await storage.compact(await storage.current_revision())
            finally:
                await storage.close()
            private = await start_private_apiserver(apiserver, tmp_path, port)
            await eventually(lambda: store_view(informer) == want, "the store to converge")
            await eventually(lambda: rec.view() == want, "the handler's view to converge")
            assert informer.reflector.expired >= 1 and informer.reflector.lists >= 2
            rec.assert_no_duplicates()
            k = f"{namespace}/"
            assert rec.kinds(k + "keep") == ["add"], "unchanged objects are not re-delivered by the relist"
            assert rec.kinds(k + "update") == ["add", "update"]
            assert rec.kinds(k + "added") == ["add"]
            assert rec.kinds(k + "delete") == ["add", "delete"]
            assert rec.kinds(k + "recreate") == ["add", "delete", "add"], "a new uid is a delete and an add"
            tombstones = {e[1] for e in rec.events if e[0] == "delete" and e[4]}
            assert tombstones == {k + "delete", k + "recreate"}
    finally:
        await watcher.close()
        kill(private)
