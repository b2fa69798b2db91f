"""The apiserver against a real etcd: the storage contract, verbs, errors, watch and subresources."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client

PODS = resolve("pods")
DEPLOY = resolve("deployments")
CM = resolve("configmaps")
NS = resolve("namespaces")
NODES = resolve("nodes")


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox:1.36"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": body}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}},
    }


async def test_create_sets_server_fields_and_rv_is_mod_revision(client: Client, namespace: str) -> None:
    """A create fills uid, creationTimestamp, generation and a resourceVersion equal to etcd's revision."""
    created = await client.create(DEPLOY, deployment("web"), namespace=namespace)
    meta = created.metadata  # type: ignore[attr-defined]
    assert meta.uid and meta.creationTimestamp.seconds > 0 and meta.generation == 1
    fetched = await client.get(DEPLOY, "web", namespace=namespace)
    assert fetched.metadata.resourceVersion == meta.resourceVersion  # type: ignore[attr-defined]
    obj = object_to_dict(DEPLOY, fetched)
    # server-side defaults, as Kubernetes applies them
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


async def test_duplicate_create_is_already_exists(client: Client, namespace: str) -> None:
    """Creating the same name twice fails with AlreadyExists and leaves the first object untouched."""
    first = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                     "data": {"a": "1"}}, namespace=namespace)
    with pytest.raises(api.AlreadyExists, match='configmaps "c" already exists'):
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                 "data": {"a": "2"}}, namespace=namespace)
    again = await client.get(CM, "c", namespace=namespace)
    assert again.metadata.resourceVersion == first.metadata.resourceVersion  # type: ignore[attr-defined]
    assert dict(again.data) == {"a": "1"}  # type: ignore[attr-defined]


async def test_create_in_missing_namespace_is_not_found(client: Client) -> None:
    """A create in a namespace that does not exist is rejected with NotFound naming the namespace."""
    with pytest.raises(api.NotFound, match='namespaces "nope-missing" not found'):
        await client.create(PODS, pod("p"), namespace="nope-missing")


async def test_invalid_object_reports_every_field_error(client: Client, namespace: str) -> None:
    """Unknown fields and wrong types are all reported at once, with paths, and nothing is stored."""
    bad = deployment("bad")
    bad["spec"]["replicas"] = "three"
    bad["spec"]["template"]["spec"]["cantainers"] = bad["spec"]["template"]["spec"].pop("containers")
    with pytest.raises(api.Invalid) as info:
        await client.create(DEPLOY, bad, namespace=namespace)
    fields = {c[2] for c in info.value.causes}
    assert {"spec.replicas", "spec.template.spec.cantainers"} <= fields
    with pytest.raises(api.NotFound):
        await client.get(DEPLOY, "bad", namespace=namespace)


async def test_semantic_validation_errors(client: Client, namespace: str) -> None:
    """Validation errors (negative replicas, bad name) come back as Invalid with field causes."""
    bad = deployment("Web_App", replicas=-1)
    with pytest.raises(api.Invalid) as info:
        await client.create(DEPLOY, bad, namespace=namespace)
    fields = {c[2] for c in info.value.causes}
    assert "metadata.name" in fields and "spec.replicas" in fields


async def test_stale_update_conflicts_and_changes_nothing(client: Client, namespace: str) -> None:
    """An update carrying an old resourceVersion fails with Conflict (ABORTED) and stores nothing."""
    created = object_to_dict(DEPLOY, await client.create(DEPLOY, deployment("web"), namespace=namespace))
    fresh = dict(created)
    fresh["spec"] = {**created["spec"], "replicas": 3}
    updated = await client.update(DEPLOY, fresh, namespace=namespace)
    assert updated.metadata.generation == 2  # type: ignore[attr-defined]
    stale = dict(created)
    stale["spec"] = {**created["spec"], "replicas": 5}
    with pytest.raises(api.Conflict, match="the object has been modified"):
        await client.update(DEPLOY, stale, namespace=namespace)
    current = await client.get(DEPLOY, "web", namespace=namespace)
    assert current.spec.replicas == 3  # type: ignore[attr-defined]


async def test_metadata_only_update_keeps_generation(client: Client, namespace: str) -> None:
    """Changing labels bumps the resourceVersion but not metadata.generation."""
    await client.create(DEPLOY, deployment("web"), namespace=namespace)
    patched = await client.patch(DEPLOY, "web", {"metadata": {"labels": {"x": "y"}}}, namespace=namespace)
    assert patched.metadata.generation == 1  # type: ignore[attr-defined]
    assert patched.metadata.labels["x"] == "y"  # type: ignore[attr-defined]


async def test_generate_name(client: Client, namespace: str) -> None:
    """generateName yields prefix + 5 random characters."""
    body = pod("")
    body["metadata"] = {"generateName": "web-"}
    created = await client.create(PODS, body, namespace=namespace)
    name = created.metadata.name  # type: ignore[attr-defined]
    assert name.startswith("web-") and len(name) == len("web-") + 5


async def test_status_is_separate_from_spec(client: Client, namespace: str) -> None:
    """A main update cannot change status, and a status update cannot change the spec."""
    await client.create(DEPLOY, deployment("web"), namespace=namespace)
    obj = object_to_dict(DEPLOY, await client.get(DEPLOY, "web", namespace=namespace))
    obj["status"] = {"replicas": 7}
    obj["spec"]["replicas"] = 2
    after = object_to_dict(DEPLOY, await client.update(DEPLOY, obj, namespace=namespace))
    assert after["spec"]["replicas"] == 2 and "replicas" not in after.get("status", {})
    after["status"] = {"replicas": 7, "observedGeneration": 2}
    after["spec"]["replicas"] = 9
    status_after = object_to_dict(DEPLOY, await client.update_status(DEPLOY, after, namespace=namespace))
    assert status_after["status"]["replicas"] == 7 and status_after["spec"]["replicas"] == 2


async def test_label_and_field_selectors(client: Client, namespace: str) -> None:
    """Lists filter by label selector (set-based too) and by field selector, served from the watch cache."""
    await client.create(PODS, pod("a", {"app": "web", "tier": "front"}), namespace=namespace)
    await client.create(PODS, pod("b", {"app": "web", "tier": "back"}), namespace=namespace)
    await client.create(PODS, pod("c", {"app": "db"}), namespace=namespace)

    async def names(**kw: str) -> list[str]:
        items, _, _ = await client.list(PODS, namespace=namespace, **kw)
        return sorted(i.metadata.name for i in items)  # type: ignore[attr-defined]

    assert await names(label_selector="app=web") == ["a", "b"]
    assert await names(label_selector="tier in (front),app!=db") == ["a"]
    assert await names(label_selector="!tier") == ["c"]
    assert await names(field_selector="metadata.name=b") == ["b"]
    assert await names(field_selector="status.phase=Pending") == ["a", "b", "c"]
    with pytest.raises(api.BadRequest, match="field label not supported"):
        await names(field_selector="spec.bogus=1")


async def test_list_is_consistent_with_preceding_write(client: Client, namespace: str) -> None:
    """A list right after a write sees that write (consistent reads from the cache)."""
    for i in range(20):
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}},
                            namespace=namespace)
        items, rv, _ = await client.list(CM, namespace=namespace)
        assert len(items) == i + 1
        assert int(rv) >= int(items[-1].metadata.resourceVersion)  # type: ignore[attr-defined]


async def test_watch_delivers_every_change_in_order(client: Client, namespace: str) -> None:
    """A watch from a list's resourceVersion sees ADDED, MODIFIED, DELETED in revision order."""
    _, rv, _ = await client.list(CM, namespace=namespace)
    seen: list[tuple[str, str, int]] = []

    async def consume() -> None:
        async for etype, obj in client.watch(CM, namespace=namespace, resource_version=rv):
            seen.append((etype, obj.metadata.name, int(obj.metadata.resourceVersion)))  # type: ignore[attr-defined]
            if len(seen) == 4:
                return

    task = asyncio.create_task(consume())
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}}, namespace=namespace)
    await client.patch(CM, "w", {"data": {"k": "v"}}, namespace=namespace)
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w2"}}, namespace=namespace)
    await client.delete(CM, "w", namespace=namespace)
    await asyncio.wait_for(task, 30)
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "w"), ("MODIFIED", "w"), ("ADDED", "w2"), ("DELETED", "w")]
    revs = [r for _, _, r in seen]
    assert revs == sorted(revs) and len(set(revs)) == 4


async def test_watch_replays_from_an_old_revision(client: Client, namespace: str) -> None:
    """Starting a watch at an older revision replays the changes made since."""
    _, rv, _ = await client.list(CM, namespace=namespace)
    for i in range(3):
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"r{i}"}},
                            namespace=namespace)
    got: list[str] = []
    async for etype, obj in client.watch(CM, namespace=namespace, resource_version=rv):
        got.append(f"{etype}:{obj.metadata.name}")  # type: ignore[attr-defined]
        if len(got) == 3:
            break
    assert got == ["ADDED:r0", "ADDED:r1", "ADDED:r2"]


async def test_watch_with_label_selector_translates_transitions(client: Client, namespace: str) -> None:
    """A pod that stops matching a watcher's selector is DELETED for that watcher; one that starts, ADDED."""
    _, rv, _ = await client.list(PODS, namespace=namespace)
    await client.create(PODS, pod("p", {"app": "web"}), namespace=namespace)
    await client.patch(PODS, "p", {"metadata": {"labels": {"app": "other"}}}, namespace=namespace)
    await client.patch(PODS, "p", {"metadata": {"labels": {"app": "web"}}}, namespace=namespace)
    got: list[str] = []
    async for etype, _obj in client.watch(PODS, namespace=namespace, label_selector="app=web", resource_version=rv):
        got.append(etype)
        if len(got) == 3:
            break
    assert got == ["ADDED", "DELETED", "ADDED"]


async def test_watch_sends_bookmarks(client: Client, namespace: str) -> None:
    """With allow_bookmarks a quiet watch still receives BOOKMARK events carrying a resourceVersion."""
    _, rv, _ = await client.list(CM, namespace=namespace)

    async def first_bookmark() -> str:
        async for etype, obj in client.watch(CM, namespace=namespace, resource_version=rv, allow_bookmarks=True):
            if etype == "BOOKMARK":
                return str(obj.metadata.resourceVersion)  # type: ignore[attr-defined]
        return ""

    bookmark_rv = await asyncio.wait_for(first_bookmark(), 30)
    assert int(bookmark_rv) >= int(rv)


async def test_watch_on_compacted_revision_is_expired(apiserver: Any, tmp_path: Any) -> None:
    """A watch from before the cache window is served from etcd; once compacted it fails with Expired."""
    from apiserver.storage import Storage
    from kplane.devcluster import start_apiserver, stop_process

    small = start_apiserver(apiserver.etcd, tmp_path, "--default-watch-cache-size", "5")
    try:
        async with Client([small.address]) as c:
            await c.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "compaction"}})
            _, start_rv, _ = await c.list(CM, namespace="compaction")
            for i in range(8):
                await c.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}},
                               namespace="compaction")
            # older than the 5-event window but not compacted: replayed from etcd
            got = []
            async for _etype, obj in c.watch(CM, namespace="compaction", resource_version=start_rv):
                got.append(obj.metadata.name)  # type: ignore[attr-defined]
                if len(got) == 8:
                    break
            assert got == [f"c{i}" for i in range(8)]
            _, rv, _ = await c.list(CM, namespace="compaction")
            storage = Storage(apiserver.etcd.url)
            await storage.connect()
            try:
                await storage.compact(int(rv))
            finally:
                await storage.close()
            with pytest.raises(api.Expired, match="too old resource version"):
                async for _ in c.watch(CM, namespace="compaction", resource_version=start_rv):
                    pass
            with pytest.raises(api.Expired, match="oldest retained revision"):
                await c.get(CM, "c0", namespace="compaction", resource_version=start_rv)
    finally:
        stop_process(small.proc)


async def test_get_at_revision_reads_history(client: Client, namespace: str) -> None:
    """A get with resource_version N returns the object as it was at revision N."""
    v1 = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h"},
                                  "data": {"v": "1"}}, namespace=namespace)
    await client.patch(CM, "h", {"data": {"v": "2"}}, namespace=namespace)
    old = await client.get(CM, "h", namespace=namespace, resource_version=v1.metadata.resourceVersion)  # type: ignore[attr-defined]
    assert dict(old.data) == {"v": "1"}  # type: ignore[attr-defined]


async def test_graceful_pod_deletion_and_finalizers(client: Client, namespace: str) -> None:
    """A bound pod is deleted gracefully (deletionTimestamp set, object kept); finalizers hold any object."""
    await client.create(PODS, pod("g", nodeName="node-1"), namespace=namespace)
    obj, deleted = await client.delete(PODS, "g", namespace=namespace)
    assert not deleted and obj.metadata.deletionGracePeriodSeconds == 30  # type: ignore[attr-defined]
    obj, deleted = await client.delete(PODS, "g", namespace=namespace, grace_period=0)
    assert deleted
    with pytest.raises(api.NotFound):
        await client.get(PODS, "g", namespace=namespace)

    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "f", "finalizers": ["example.com/hold"]}}, namespace=namespace)
    obj, deleted = await client.delete(CM, "f", namespace=namespace)
    assert not deleted and obj.metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
    result = await client.patch(CM, "f", {"metadata": {"finalizers": None}}, namespace=namespace)
    assert result is not None
    with pytest.raises(api.NotFound):
        await client.get(CM, "f", namespace=namespace)


async def test_unbound_pod_is_deleted_at_once(client: Client, namespace: str) -> None:
    """A pod no kubelet runs (no nodeName) needs no grace period and disappears immediately."""
    await client.create(PODS, pod("u"), namespace=namespace)
    _, deleted = await client.delete(PODS, "u", namespace=namespace)
    assert deleted


async def test_binding_sets_node_once(client: Client, namespace: str) -> None:
    """Binding assigns spec.nodeName with PodScheduled=True; a second binding is a Conflict; a UID mismatch too."""
    created = await client.create(PODS, pod("b"), namespace=namespace)
    with pytest.raises(api.Conflict, match="Precondition failed"):
        await client.bind(namespace, "b", "node-1", uid="not-the-uid")
    bound = object_to_dict(PODS, await client.bind(namespace, "b", "node-1",
                                                   uid=created.metadata.uid))  # type: ignore[attr-defined]
    assert bound["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in bound["status"]["conditions"])
    with pytest.raises(api.Conflict, match="already assigned"):
        await client.bind(namespace, "b", "node-2")


async def test_scale_subresource(client: Client, namespace: str) -> None:
    """The scale subresource reads and writes spec.replicas and reports the selector."""
    await client.create(DEPLOY, deployment("s", 2), namespace=namespace)
    scale = await client.get_scale(DEPLOY, "s", namespace=namespace)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=s"
    await client.update_scale(DEPLOY, "s", 5, namespace=namespace)
    assert (await client.get(DEPLOY, "s", namespace=namespace)).spec.replicas == 5  # type: ignore[attr-defined]


async def test_patch_types(client: Client, namespace: str) -> None:
    """Merge, JSON and strategic patches apply with their own semantics."""
    await client.create(DEPLOY, deployment("p"), namespace=namespace)
    await client.patch(DEPLOY, "p", [{"op": "replace", "path": "/spec/replicas", "value": 4}], namespace=namespace,
                       patch_type="json")
    strategic = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}
    after = object_to_dict(DEPLOY, await client.patch(DEPLOY, "p", strategic, namespace=namespace,
                                                      patch_type="strategic"))
    assert after["spec"]["replicas"] == 4
    assert [c["name"] for c in after["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]
    merged = object_to_dict(DEPLOY, await client.patch(DEPLOY, "p", strategic, namespace=namespace,
                                                       patch_type="merge"))
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["sidecar"]
    with pytest.raises(api.BadRequest):
        await client.patch(DEPLOY, "p", "{not json", namespace=namespace)


async def test_cluster_scoped_and_system_namespaces(client: Client) -> None:
    """The system namespaces exist at start; Nodes are cluster-scoped."""
    items, _, _ = await client.list(NS)
    names = {i.metadata.name for i in items}  # type: ignore[attr-defined]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-int-1", "labels": {"zone": "a"}}}
    created = await client.create(NODES, node)
    assert created.metadata.namespace == ""  # type: ignore[attr-defined]
    await client.delete(NODES, "n-int-1")


async def test_compactor_keeps_the_retention_window(apiserver: Any, tmp_path: Any) -> None:
    """With a short retention the apiserver compacts old history itself: recent revisions stay
    readable, revisions older than the window become Expired."""
    import time

    from kplane.devcluster import start_apiserver, stop_process

    short = start_apiserver(apiserver.etcd, tmp_path, "--compaction-retention", "1s", "--compaction-interval", "0.5s")
    try:
        async with Client([short.address]) as c:
            first = await c.create(NS, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": "retention-test"}})
            old_rv = first.metadata.resourceVersion  # type: ignore[attr-defined]
            deadline = time.monotonic() + 30
            while True:
                await c.patch(NS, "retention-test", {"metadata": {"labels": {"tick": str(time.monotonic_ns())}}})
                try:
                    await c.get(NS, "retention-test", resource_version=old_rv)
                except api.Expired:
                    break
                assert time.monotonic() < deadline, "history was never compacted"
                await asyncio.sleep(0.3)
            latest = await c.get(NS, "retention-test")
            current = await c.get(NS, "retention-test",
                                  resource_version=latest.metadata.resourceVersion)  # type: ignore[attr-defined]
            assert current.metadata.uid == first.metadata.uid  # type: ignore[attr-defined]
    finally:
        stop_process(short.proc)


def test_health_and_reflection(apiserver: Any) -> None:
    """The standard gRPC health service says SERVING and server reflection lists the API (grpcurl works)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(apiserver.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="kplane.api.v1.API"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="k8s.io.api.core.v1.Pod")]
        responses = list(stub.ServerReflectionInfo(iter(requests)))
        services = {s.name for s in responses[0].list_services_response.service}
        assert "kplane.api.v1.API" in services and "grpc.health.v1.Health" in services
        assert responses[1].file_descriptor_response.file_descriptor_proto


async def test_watch_streams_respect_bookmarks(client: Client, namespace: str, apiserver: Any) -> None:
    """Within one watch stream, no event after a BOOKMARK has a revision at or below it, and a watch
    from revision N delivers nothing at or below N."""
    _, rv, _ = await client.list(CM, namespace=namespace)
    stream: list[tuple[str, int]] = []
    async with Client([apiserver.address]) as wc:
        async def watch() -> None:
            async for etype, obj in wc.watch(CM, namespace=namespace, resource_version=rv, allow_bookmarks=True):
                stream.append((etype, int(obj.metadata.resourceVersion or 0)))  # type: ignore[attr-defined]

        task = asyncio.create_task(watch())
        sem = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with sem:
                await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"b-{i}"}},
                                    namespace=namespace)

        await asyncio.gather(*(make(i) for i in range(200)))
        deadline = asyncio.get_running_loop().time() + 30
        while (sum(1 for t, _ in stream if t == "ADDED") < 200 or stream[-1][0] != "BOOKMARK") and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    added = [r for t, r in stream if t == "ADDED"]
    assert len(added) == 200 and len(set(added)) == 200
    assert all(r > int(rv) for r in added)
    high = 0
    for etype, r in stream:
        if etype == "BOOKMARK":
            high = max(high, r)
        else:
            assert r > high, f"event at {r} after a bookmark at {high}"


async def test_namespace_protection_and_finalize(client: Client) -> None:
    """default/kube-system/kube-public cannot be deleted; a deleted namespace stays Terminating until
    its spec.finalizers are cleared through namespaces/finalize, then it is gone."""
    from kplane.api.pb import api_pb2

    for name in ("default", "kube-system", "kube-public"):
        with pytest.raises(api.Forbidden, match="may not be deleted"):
            await client.delete(NS, name)
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fin-test"}})
    obj, deleted = await client.delete(NS, "fin-test")
    assert not deleted and obj.status.phase == "Terminating"  # type: ignore[attr-defined]
    with pytest.raises(api.Forbidden, match="being terminated"):
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                            namespace="fin-test")
    # a metadata-only update on a terminating namespace does not finish it
    await client.patch(NS, "fin-test", {"metadata": {"labels": {"a": "b"}}})
    assert (await client.get(NS, "fin-test")).metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
    live = object_to_dict(NS, await client.get(NS, "fin-test"))
    live["spec"]["finalizers"] = []
    from kplane.client.client import ref

    await client._call("Update", api_pb2.UpdateRequest(ref=ref(NS, "", "fin-test", "finalize"),
                                                       body=api_pb2.Body(json=__import__("json").dumps(live))))
    with pytest.raises(api.NotFound):
        await client.get(NS, "fin-test")


async def test_generation_rules(client: Client, namespace: str) -> None:
    """Binding does not bump a pod's generation; starting a graceful deletion does."""
    created = await client.create(PODS, pod("gen"), namespace=namespace)
    bound = await client.bind(namespace, "gen", "node-1")
    assert bound.metadata.generation == created.metadata.generation  # type: ignore[attr-defined]
    deleting, _ = await client.delete(PODS, "gen", namespace=namespace)
    assert deleting.metadata.generation == created.metadata.generation + 1  # type: ignore[attr-defined]


async def test_bad_requests_are_bad_requests(client: Client, namespace: str) -> None:
    """A malformed resourceVersion precondition, renaming through a patch and a future revision get
    BadRequest/Timeout, never INTERNAL or a misleading Conflict."""
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "br"}}, namespace=namespace)
    with pytest.raises(api.BadRequest, match="invalid resourceVersion"):
        await client.patch(CM, "br", {"metadata": {"resourceVersion": "abc"}}, namespace=namespace)
    with pytest.raises(api.BadRequest, match=r"metadata\.name cannot be changed"):
        await client.patch(CM, "br", {"metadata": {"name": "other"}}, namespace=namespace)
    with pytest.raises(api.Timeout, match="Too large resource version"):
        await client.get(CM, "br", namespace=namespace, resource_version="999999999")


async def test_garbage_in_etcd_is_contained(client: Client, namespace: str, apiserver: Any) -> None:
    """Bytes written straight into etcd that are not a ConfigMap, or a ConfigMap stored under the
    wrong key, never reach lists or watches; everything else keeps being served, a get names the
    corrupt key, and the garbage can be deleted through the API."""
    from apiserver.storage import Storage
    from kplane.api.pb import core_pb2

    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}},
                        namespace=namespace)
    impostor = core_pb2.ConfigMap()
    impostor.metadata.name = "other"
    impostor.metadata.namespace = "kube-system"
    storage = Storage(apiserver.etcd.url)
    await storage.connect()
    try:
        await storage.put_raw(f"/registry/configmaps/{namespace}/junk", b"\xff\x00not a protobuf\x01")
        await storage.put_raw(f"/registry/configmaps/{namespace}/impostor", impostor.SerializeToString())
    finally:
        await storage.close()
    items, _, _ = await client.list(CM, namespace=namespace)
    assert [i.metadata.name for i in items] == ["good"]  # type: ignore[attr-defined]
    with pytest.raises(api.InternalError, match="cannot be decoded"):
        await client.get(CM, "junk", namespace=namespace)
    _, deleted = await client.delete(CM, "junk", namespace=namespace)
    assert deleted
    with pytest.raises(api.NotFound):
        await client.get(CM, "junk", namespace=namespace)
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}},
                        namespace=namespace)
    items, _, _ = await client.list(CM, namespace=namespace)
    assert sorted(i.metadata.name for i in items) == ["after", "good"]  # type: ignore[attr-defined]
