"""Revision history, the change stream, writer attribution, Event TTL leases and the audit log,
against the real apiserver and etcd."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aetcd import rpc

from apiserver.storage import Storage
from kplane.api import errors as api
from kplane.api.pb import api_pb2
from kplane.api.resources import object_to_dict, resolve, unpack
from kplane.client.client import Client
from kplane.devcluster import APIServer, EtcdServer, start_apiserver, start_etcd, stop_process

PODS, CONFIGMAPS, EVENTS, NAMESPACES = resolve("pods"), resolve("configmaps"), resolve("events"), resolve("namespaces")


def pod(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def cm(name: str, ns: str, value: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns,
                                                                  "labels": labels or {}}, "data": {"v": value}}


def event(name: str, ns: str, reason: str = "Tested") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": ns}, "reason": reason,
            "message": "hello", "type": "Normal", "count": 1}


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def rv(msg: Any) -> int:
    return int(msg.metadata.resourceVersion)


def who(entry: Any) -> tuple[str, str, str, str]:
    w = entry.writer
    return (w.manager, w.user, w.verb, w.subresource)


async def test_history_attributes_every_revision_to_its_writer(apiserver: APIServer, namespace: str) -> None:
    """Creator, scheduler, kubelet and a deleting user each show on the revision they wrote, with
    verb and subresource; the object's managedFields say who owns which fields."""
    async with Client([apiserver.address], identity="kpctl", user="alice") as user, \
            Client([apiserver.address], identity="kube-scheduler") as scheduler, \
            Client([apiserver.address], identity="kubelet/node-1") as kubelet:
        revs = [rv(await user.create(PODS, pod("web", namespace)))]
        revs.append(rv(await scheduler.bind(namespace, "web", "node-1")))
        live = object_to_dict(PODS, await kubelet.get(PODS, "web", namespace=namespace))
        live["status"]["phase"] = "Running"
        revs.append(rv(await kubelet.update_status(PODS, live)))
        revs.append(rv(await user.patch(PODS, "web", {"metadata": {"labels": {"tier": "front"}}}, namespace=namespace)))
        managed = object_to_dict(PODS, await user.get(PODS, "web", namespace=namespace))["metadata"]["managedFields"]
        graceful, deleted = await user.delete(PODS, "web", namespace=namespace)  # bound: graceful (30 s)
        assert not deleted
        revs.append(rv(graceful))
        _, deleted = await kubelet.delete(PODS, "web", namespace=namespace, grace_period=0)
        assert deleted

        entries = await collect(user.history(PODS, "web", namespace=namespace, include_deleted=True))
        assert [e.revision for e in entries][:-1] == revs
        assert [e.type for e in entries] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
        assert [who(e) for e in entries] == [
            ("kpctl", "alice", "create", ""), ("kube-scheduler", "", "create", "binding"),
            ("kubelet/node-1", "", "update", "status"), ("kpctl", "alice", "patch", ""),
            ("kpctl", "alice", "delete", ""), ("kubelet/node-1", "", "delete", "")]
        times = [e.writer.time.ToMilliseconds() for e in entries]
        assert times == sorted(times) and abs(times[0] / 1000 - time.time()) < 600
        last = object_to_dict(PODS, unpack(entries[-1].object)[1])
        assert last["metadata"]["resourceVersion"] == str(entries[-1].revision)
        assert last["metadata"]["deletionTimestamp"] and last["spec"]["nodeName"] == "node-1"
        second = object_to_dict(PODS, unpack(entries[1].object)[1])
        assert second["spec"]["nodeName"] == "node-1" and second["metadata"]["resourceVersion"] == str(revs[1])

        owners = {(m["manager"], m.get("subresource", "")): m["fieldsV1"] for m in managed}
        assert owners[("kube-scheduler", "binding")]["f:spec"] == {"f:nodeName": {}}
        assert "f:phase" in owners[("kubelet/node-1", "status")]["f:status"]
        assert "f:labels" in owners[("kpctl", "")]["f:metadata"]

        with pytest.raises(api.NotFound, match='pods "web" not found'):
            await collect(user.history(PODS, "web", namespace=namespace))


async def test_history_of_a_recreated_name_and_time_travel(client: Client, namespace: str) -> None:
    """Incarnations of one name come oldest first; --at shows a past state; bad revisions are clear."""
    first = rv(await client.create(CONFIGMAPS, cm("c", namespace, "1")))
    updated = rv(await client.update(CONFIGMAPS, cm("c", namespace, "2")))
    gone, _ = await client.delete(CONFIGMAPS, "c", namespace=namespace)
    again = rv(await client.create(CONFIGMAPS, cm("c", namespace, "3")))

    current = await collect(client.history(CONFIGMAPS, "c", namespace=namespace))
    assert [(e.revision, e.type) for e in current] == [(again, "ADDED")]
    everything = await collect(client.history(CONFIGMAPS, "c", namespace=namespace, include_deleted=True))
    assert [e.type for e in everything] == ["ADDED", "MODIFIED", "DELETED", "ADDED"]
    assert [e.revision for e in everything][:2] == [first, updated] and everything[3].revision == again
    assert everything[2].writer.verb == "delete" and everything[2].writer.manager == "pytest"

    [at] = await collect(client.history(CONFIGMAPS, "c", namespace=namespace, at_revision=rv(gone) - 1))
    assert at.revision == updated  # just before the deletion: the last state
    with pytest.raises(api.NotFound, match=f"did not exist at revision {rv(gone)}"):
        await collect(client.history(CONFIGMAPS, "c", namespace=namespace, at_revision=rv(gone)))
    [at] = await collect(client.history(CONFIGMAPS, "c", namespace=namespace, at_revision=updated))
    assert object_to_dict(CONFIGMAPS, unpack(at.object)[1])["data"] == {"v": "2"}
    with pytest.raises(api.NotFound, match="did not exist at revision"):
        await collect(client.history(CONFIGMAPS, "c", namespace=namespace, at_revision=first - 1))
    with pytest.raises(api.BadRequest, match="is in the future: the current revision is"):
        await collect(client.history(CONFIGMAPS, "c", namespace=namespace, at_revision=10**9))
    with pytest.raises(api.NotFound):
        await collect(client.history(resolve("nodes"), "no-such-node"))


async def _in_process_history(etcd: EtcdServer, rt: Any, ns: str, name: str, dense_factor: int,
                              include_deleted: bool) -> list[tuple[int, str, str]]:
    """apiserver/history.py's History over etcd directly, with a forced replay strategy."""
    from apiserver import history

    storage = Storage(etcd.url)
    await storage.connect()
    saved = history.DENSE_FACTOR
    history.DENSE_FACTOR = dense_factor
    try:
        return [(e.revision, e.type, e.writer.manager) async for e in
                history.History(storage).entries(rt, ns, name, include_deleted=include_deleted)]
    finally:
        history.DENSE_FACTOR = saved
        await storage.close()


async def test_sparse_and_dense_histories_read_the_same(etcd: EtcdServer, client: Client, namespace: str) -> None:
    """Walking back with Ranges (sparse histories) and replaying a watch (dense ones) agree, across
    a deletion and a re-creation and with other keys written in between."""
    await client.create(CONFIGMAPS, cm("s", namespace, "0"))
    for i in range(1, 4):
        await client.create(CONFIGMAPS, cm(f"noise-{i}", namespace))
        await client.update(CONFIGMAPS, cm("s", namespace, str(i)))
    await client.delete(CONFIGMAPS, "s", namespace=namespace)
    await client.create(CONFIGMAPS, cm("s", namespace, "again"))
    await client.update(CONFIGMAPS, cm("s", namespace, "again-2"))
    walked = await _in_process_history(etcd, CONFIGMAPS, namespace, "s", 0, True)
    watched = await _in_process_history(etcd, CONFIGMAPS, namespace, "s", 10**9, True)
    assert walked == watched
    assert [t for _, t, _ in walked] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED", "ADDED", "MODIFIED"]
    via_api = await collect(client.history(CONFIGMAPS, "s", namespace=namespace, include_deleted=True))
    assert [(e.revision, e.type, e.writer.manager) for e in via_api] == walked


async def test_changes_stream_in_revision_order_with_writers(client: Client, namespace: str) -> None:
    """The stream from a revision ends at the revision current when it started; filters by kind,
    namespace and labels; MODIFIED carries the previous state."""
    start = (await client.retention()).current_revision
    a = rv(await client.create(CONFIGMAPS, cm("a", namespace, "1", {"app": "x"})))
    b = rv(await client.update(CONFIGMAPS, cm("a", namespace, "2", {"app": "x"})))
    c = rv(await client.create(CONFIGMAPS, cm("b", namespace, "1", {"app": "y"})))
    d = rv(await client.create(EVENTS, event("e1", namespace)))
    _, _ = await client.delete(CONFIGMAPS, "b", namespace=namespace)

    changes = await collect(client.changes(since_revision=start, namespace=namespace))
    assert [ch.revision for ch in changes][:4] == [a, b, c, d]
    assert [ch.type for ch in changes] == ["ADDED", "MODIFIED", "ADDED", "ADDED", "DELETED"]
    assert all(ch.writer.manager == "pytest" for ch in changes)
    modified = changes[1]
    assert object_to_dict(CONFIGMAPS, unpack(modified.previous)[1])["data"] == {"v": "1"}
    assert object_to_dict(CONFIGMAPS, unpack(modified.object)[1])["data"] == {"v": "2"}
    assert (modified.ref.resource, modified.ref.namespace, modified.ref.name) == ("configmaps", namespace, "a")

    only_cms = await collect(client.changes(since_revision=start, namespace=namespace, resources=[CONFIGMAPS]))
    assert [ch.ref.resource for ch in only_cms] == ["configmaps"] * 4
    labelled = await collect(client.changes(since_revision=start, namespace=namespace, label_selector="app=y"))
    assert [(ch.type, ch.ref.name) for ch in labelled] == [("ADDED", "b"), ("DELETED", "b")]
    assert await collect(client.changes(since_revision=(await client.retention()).current_revision)) == []
    with pytest.raises(api.BadRequest, match="in the future"):
        await collect(client.changes(since_revision=10**9))
    with pytest.raises(api.BadRequest, match="invalid label selector"):
        await collect(client.changes(since_revision=start, label_selector="app in ("))


async def test_changes_follow_delivers_live_changes(client: Client, namespace: str) -> None:
    """With follow the stream stays open and delivers each new change with its writer."""
    start = (await client.retention()).current_revision
    seen: list[api_pb2.Change] = []

    async def follow() -> None:
        async for change in client.changes(since_revision=start, follow=True, namespace=namespace):
            seen.append(change)

    task = asyncio.create_task(follow())
    try:
        async with Client([client.servers[0]], identity="kube-controller-manager") as cm_client:
            created = rv(await cm_client.create(CONFIGMAPS, cm("live", namespace)))
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [(c.revision, c.writer.manager) for c in seen] == [(created, "kube-controller-manager")]
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _lease_of(storage: Storage, key: str) -> int:
    resp = await storage.kv.Range(rpc.RangeRequest(key=key.encode()))
    return int(resp.kvs[0].lease)


async def test_events_share_ttl_leases(etcd: EtcdServer, client: Client, namespace: str) -> None:
    """Every Event put carries an etcd lease (re-attached on update), events written together share
    one, with the default 1 h TTL plus the reuse window; other kinds have none."""
    await client.create(EVENTS, event("one", namespace))
    await client.create(EVENTS, event("two", namespace))
    await client.patch(EVENTS, "one", {"count": 2}, namespace=namespace)
    await client.create(CONFIGMAPS, cm("plain", namespace))
    storage = Storage(etcd.url)
    await storage.connect()
    try:
        one = await _lease_of(storage, EVENTS.key(namespace, "one"))
        two = await _lease_of(storage, EVENTS.key(namespace, "two"))
        assert one != 0 and one == two
        assert await _lease_of(storage, CONFIGMAPS.key(namespace, "plain")) == 0
        ttl = await rpc.LeaseStub(storage.channel).LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=one))
        assert 3600 <= ttl.grantedTTL <= 3660 and ttl.TTL > 3000
    finally:
        await storage.close()


async def test_retention_and_status_line(client: Client, apiserver: APIServer) -> None:
    """Retention reports the oldest and current revision and the policy `kplane status` prints."""
    from kplane.cli.history import retention_line

    info = await client.retention()
    assert 1 <= info.oldest_revision <= info.current_revision
    assert info.retention_seconds == 3600 and info.event_ttl_seconds == 3600
    line = await asyncio.to_thread(retention_line, apiserver.address)
    assert line is not None and line.startswith(f"history: revisions {info.oldest_revision}–")
    assert "compaction keeps at least 1h of history, checked every 5m" in line
    assert "events expire 1h after their last update" in line


# -- a private cluster: short Event TTL, an audit log, and compaction that must not disturb others --


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[APIServer, Path]]:
    tmp = tmp_path_factory.mktemp("history")
    try:
        etcd = start_etcd(tmp)
    except Exception as exc:  # no etcd binary: the session fixture would have skipped too
        pytest.skip(str(exc))
    audit_path = tmp / "audit.log"
    server = start_apiserver(etcd, tmp, "--event-ttl", "2s", "--audit-log-path", str(audit_path),
                             "--audit-level", "Request")
    yield server, audit_path
    stop_process(server.proc)
    stop_process(etcd.proc)


async def test_an_event_expires_through_its_lease(private: tuple[APIServer, Path]) -> None:
    """With --event-ttl 2s an Event vanishes on its own (etcd deletes it), an unattributed DELETED."""
    server, _ = private
    ns = f"t-{uuid.uuid4().hex[:8]}"
    async with Client([server.address], identity="kubelet/node-1") as client:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        created = rv(await client.create(EVENTS, event("short", ns)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                await client.get(EVENTS, "short", namespace=ns)
            except api.NotFound:
                break
            await asyncio.sleep(0.25)
        else:
            pytest.fail("the event never expired")
        changes = await collect(client.changes(since_revision=created - 1, namespace=ns, resources=[EVENTS]))
        assert [(c.type, c.writer.manager) for c in changes] == [("ADDED", "kubelet/node-1"), ("DELETED", "")]


async def test_compacted_history_names_the_oldest_retained_revision(private: tuple[APIServer, Path]) -> None:
    """After compaction history starts at the oldest retained revision, and reads before it fail
    with Expired naming that revision (history, time travel and the change stream alike)."""
    server, _ = private
    ns = f"t-{uuid.uuid4().hex[:8]}"
    async with Client([server.address], identity="pytest") as client:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        revs = [rv(await client.create(CONFIGMAPS, cm("c", ns, "0")))]
        for i in range(1, 4):
            revs.append(rv(await client.update(CONFIGMAPS, cm("c", ns, str(i)))))
        storage = Storage(server.etcd.url)
        await storage.connect()
        try:
            await storage.compact(revs[2])
        finally:
            await storage.close()
        entries = await collect(client.history(CONFIGMAPS, "c", namespace=ns))
        assert [(e.revision, e.type) for e in entries] == [(revs[2], "MODIFIED"), (revs[3], "MODIFIED")]
        assert entries[0].oldest_retained_revision == revs[2]
        with pytest.raises(api.Expired, match=f"the oldest retained revision is {revs[2]}"):
            await collect(client.history(CONFIGMAPS, "c", namespace=ns, at_revision=revs[1]))
        with pytest.raises(api.Expired, match=f"the oldest retained revision is {revs[2]}"):
            await collect(client.changes(since_revision=revs[0]))
        assert (await client.retention()).oldest_revision == revs[2]
        for factor in (0, 10**9):  # both strategies (walk back / watch) see the same retained history
            assert await _in_process_history(server.etcd, CONFIGMAPS, ns, "c", factor, False) == \
                [(e.revision, e.type, e.writer.manager) for e in entries]
        since_floor = await collect(client.changes(since_revision=0, namespace=ns))
        assert [c.revision for c in since_floor] == revs[2:]  # from the oldest retained revision on


async def test_audit_log_records_who_did_what(private: tuple[APIServer, Path]) -> None:
    """Each request is one audit.k8s.io/v1 Event line: user, verb, object, revision, request body."""
    server, path = private
    async with Client([server.address], identity="kube-scheduler") as client:
        created = await client.create(CONFIGMAPS, cm(f"audited-{uuid.uuid4().hex[:6]}", "default"))
    name = created.metadata.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    found: dict[str, Any] | None = None
    while found is None and time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record["verb"] == "create" and record["objectRef"].get("name") == name:
                    found = record
        await asyncio.sleep(0.2)
    assert found is not None, "no audit line for the create"
    assert found["user"] == {"username": "kube-scheduler"} and found["level"] == "Request"
    assert found["objectRef"]["resourceVersion"] == created.metadata.resourceVersion  # type: ignore[attr-defined]
    assert found["requestURI"] == "/api/v1/namespaces/default/configmaps"
    assert found["responseStatus"]["code"] == 201 and found["requestObject"]["data"] == {"v": "1"}
