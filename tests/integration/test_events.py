"""The event recorder against a real apiserver: fields, aggregation, rate limit, errors, describe."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from typing import Any

from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.client.events import EventRecorder
from kplane.devcluster import APIServer

CM = resolve("configmaps")
EVENTS = resolve("events")
NS = resolve("namespaces")


async def configmap(client: Client, namespace: str, name: str) -> Any:
    return await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                     "data": {"k": "v"}}, namespace=namespace)


async def events_for(client: Client, namespace: str, name: str, kind: str) -> list[core_pb2.Event]:
    items, _ = await client.list_all(EVENTS, namespace=namespace,
                                     field_selector=f"involvedObject.name={name},involvedObject.kind={kind}")
    return [e for e in items if isinstance(e, core_pb2.Event)]


async def test_event_is_written_with_kubernetes_fields(client: Client, namespace: str) -> None:
    """An event lands in the object's namespace, named <object>.<16 hex>, with a full involvedObject and source."""
    cm = await configmap(client, namespace, "cfg")
    async with EventRecorder(client, component="test-controller", host="host-1") as recorder:
        recorder.event(cm, "Normal", "Synced", "config synced")
        await recorder.flush(timeout=30)
    [event] = await events_for(client, namespace, "cfg", "ConfigMap")
    assert re.fullmatch(r"cfg\.[0-9a-f]{16}", event.metadata.name)
    assert event.metadata.namespace == namespace
    ref = event.involvedObject
    assert (ref.kind, ref.apiVersion, ref.namespace, ref.name) == ("ConfigMap", "v1", namespace, "cfg")
    assert ref.uid == cm.metadata.uid and ref.resourceVersion == cm.metadata.resourceVersion
    assert (event.type, event.reason, event.message, event.count) == ("Normal", "Synced", "config synced", 1)
    assert (event.source.component, event.source.host) == ("test-controller", "host-1")
    assert event.reportingComponent == "test-controller"
    assert event.firstTimestamp.seconds > 0 and event.lastTimestamp == event.firstTimestamp


async def test_repeated_events_aggregate_into_one_with_a_count(client: Client, namespace: str) -> None:
    """The same event three times is one Event with count 3 and a lastTimestamp no earlier than the first."""
    cm = await configmap(client, namespace, "agg")
    async with EventRecorder(client, component="test-controller") as recorder:
        for _ in range(3):
            recorder.event(cm, "Warning", "FailedSync", "could not sync: boom")
        await recorder.flush(timeout=30)
    [event] = await events_for(client, namespace, "agg", "ConfigMap")
    assert event.count == 3 and event.type == "Warning"
    assert event.lastTimestamp.ToNanoseconds() >= event.firstTimestamp.ToNanoseconds()


async def test_different_reasons_or_messages_make_separate_events(client: Client, namespace: str) -> None:
    """Events differing in reason or message are not aggregated together."""
    cm = await configmap(client, namespace, "sep")
    async with EventRecorder(client, component="test-controller") as recorder:
        recorder.event(cm, "Normal", "Created", "made it")
        recorder.event(cm, "Normal", "Updated", "changed it")
        recorder.event(cm, "Normal", "Updated", "changed it again")
        recorder.event(cm, "Normal", "Created", "made it")
    events = await events_for(client, namespace, "sep", "ConfigMap")
    counts = sorted((e.reason, e.message, e.count) for e in events)
    assert counts == [("Created", "made it", 2), ("Updated", "changed it", 1), ("Updated", "changed it again", 1)]


async def test_cluster_scoped_object_events_go_to_default(client: Client, namespace: str) -> None:
    """An event about a cluster-scoped object (a Namespace) is stored in "default" with no involved namespace."""
    ns_obj = await client.get(NS, namespace)
    async with EventRecorder(client, component="test-controller") as recorder:
        recorder.event(ns_obj, "Normal", "Checked", f"looked at {namespace}")
    events = await events_for(client, "default", namespace, "Namespace")
    [event] = [e for e in events if e.reason == "Checked"]
    assert event.metadata.namespace == "default" and event.involvedObject.namespace == ""


async def test_reference_dicts_are_accepted(client: Client, namespace: str) -> None:
    """An ObjectReference-shaped dict works as the event's object."""
    async with EventRecorder(client, component="test-controller") as recorder:
        recorder.event({"kind": "Pod", "apiVersion": "v1", "namespace": namespace, "name": "ghost"},
                       "Normal", "Seen", "a pod reference")
    [event] = await events_for(client, namespace, "ghost", "Pod")
    assert event.involvedObject.kind == "Pod" and event.message == "a pod reference"


async def test_rate_limit_drops_events_over_the_burst(client: Client, namespace: str) -> None:
    """With a burst of 2 and no refill, five identical events count only twice."""
    cm = await configmap(client, namespace, "limited")
    async with EventRecorder(client, component="test-controller", burst=2, refill_seconds=3600) as recorder:
        for _ in range(5):
            recorder.event(cm, "Normal", "Spam", "again")
    [event] = await events_for(client, namespace, "limited", "ConfigMap")
    assert event.count == 2


async def test_write_errors_are_dropped_and_recording_continues(client: Client, namespace: str) -> None:
    """An event that cannot be written (missing namespace) is dropped; the next one is still written."""
    cm = await configmap(client, namespace, "after-error")
    async with EventRecorder(client, component="test-controller", retry_backoff=0.01) as recorder:
        recorder.event({"kind": "Pod", "apiVersion": "v1", "namespace": "no-such-ns-x1", "name": "p"},
                       "Warning", "Lost", "nowhere to go")
        recorder.event(cm, "Normal", "StillHere", "recorder survived")
        recorder.event(cm, "Bogus", "BadType", "not Normal or Warning")
    [event] = await events_for(client, namespace, "after-error", "ConfigMap")
    assert event.reason == "StillHere"


async def test_stop_drains_and_later_events_are_dropped(client: Client, namespace: str) -> None:
    """stop() writes what was queued before it; events recorded after stop() are dropped without error."""
    cm = await configmap(client, namespace, "drain")
    recorder = EventRecorder(client, component="test-controller")
    recorder.event(cm, "Normal", "Queued", "before start")
    await recorder.start()
    await recorder.stop()
    recorder.event(cm, "Normal", "Late", "after stop")
    events = await events_for(client, namespace, "drain", "ConfigMap")
    assert [e.reason for e in events] == ["Queued"]


async def test_describe_shows_events_with_count(client: Client, namespace: str, apiserver: APIServer) -> None:
    """`kpctl describe configmap` lists the recorder's events: type, reason, source, message and "x3 over"."""
    cm = await configmap(client, namespace, "described")
    async with EventRecorder(client, component="cm-controller") as recorder:
        for _ in range(3):
            recorder.event(cm, "Warning", "BackOff", "backing off restart")
        recorder.event(cm, "Normal", "Reloaded", "configuration reloaded")
    cmd = [sys.executable, "-m", "kplane.cli.kpctl", "--server", apiserver.address, "-n", namespace,
           "describe", "configmap", "described"]
    result = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [backoff_line] = [line for line in lines if "BackOff" in line]
    assert re.search(r"Warning\s+BackOff\s+.*\(x3 over .*\)\s+cm-controller\s+backing off restart", backoff_line)
    [reload_line] = [line for line in lines if "Reloaded" in line]
    assert re.search(r"Normal\s+Reloaded\s+.*cm-controller\s+configuration reloaded", reload_line)
