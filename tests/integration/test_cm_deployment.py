"""The Deployment controller in-process, with the real ReplicaSet controller, against a real
apiserver.

No kubelet or scheduler runs here: pods stay unbound (so deleting one removes it at once) and a
stand-in writes their status — Running and Ready — for the pods a test lets become ready. That
is all a Deployment looks at (through its ReplicaSets' status), so rollouts can be driven,
stalled and observed deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controller_manager.context import ControllerContext
from controller_manager.deployment import new as new_deployment_controller
from controller_manager.replicaset import new_replicaset
from kplane.api import errors as api
from kplane.api import rollout as ro
from kplane.api.pb import apps_pb2, core_pb2
from kplane.api.resources import object_to_dict, resolve
from kplane.cli.rollout import rollback, rollout_history
from kplane.client.client import Client
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

PODS, RS, DEPLOY, EVENTS = resolve("pods"), resolve("replicasets"), resolve("deployments"), resolve("events")
HASHED = re.compile(r"^web-[456789bcdf]+$")


async def eventually(predicate: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await predicate()
        except api.NotFound as exc:
            last = exc
        if last:
            return last
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last: {last!r}"
        await asyncio.sleep(0.1)


class StandIn:
    """Plays the kubelet's part for readiness: marks the namespace's pods Running and Ready when
    ``ready(pod)`` says so (every pod unless a test changes the policy)."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.ready: Callable[[core_pb2.Pod], bool] = lambda pod: True
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            self.wake.clear()
            pods, _ = await self.client.list_all(PODS, namespace=self.namespace)
            for pod in pods:
                assert isinstance(pod, core_pb2.Pod)
                if pod.metadata.HasField("deletionTimestamp") or pod.status.phase == "Running":
                    continue
                if not self.ready(pod):
                    continue
                body = object_to_dict(PODS, pod)
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                body["status"] = {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}]}
                with contextlib.suppress(api.NotFound, api.Conflict):
                    await self.client.update_status(PODS, body, namespace=self.namespace)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.wake.wait()


class Cluster:
    def __init__(self, client: Client, namespace: str, standin: StandIn) -> None:
        self.client = client
        self.ns = namespace
        self.standin = standin

    async def deployment(self, name: str = "web") -> apps_pb2.Deployment:
        d = await self.client.get(DEPLOY, name, namespace=self.ns)
        assert isinstance(d, apps_pb2.Deployment)
        return d

    async def replica_sets(self, name: str = "web") -> list[apps_pb2.ReplicaSet]:
        items, _ = await self.client.list_all(RS, namespace=self.ns)
        d = await self.deployment(name)
        out = [rs for rs in items if isinstance(rs, apps_pb2.ReplicaSet)
               and any(ref.uid == d.metadata.uid for ref in rs.metadata.ownerReferences)]
        return sorted(out, key=lambda rs: ro.revision(rs))

    async def pods(self) -> list[core_pb2.Pod]:
        items, _ = await self.client.list_all(PODS, namespace=self.ns)
        return [p for p in items if isinstance(p, core_pb2.Pod) and not p.metadata.HasField("deletionTimestamp")]

    async def complete(self, name: str = "web", replicas: int | None = None) -> apps_pb2.Deployment | None:
        d = await self.deployment(name)
        want = ro.replicas(d) if replicas is None else replicas
        st = d.status
        done = (st.observedGeneration >= d.metadata.generation and st.updatedReplicas == want
                and st.replicas == want and st.availableReplicas == want)
        return d if done else None

    async def patch(self, patch: dict[str, Any], name: str = "web") -> None:
        await self.client.patch(DEPLOY, name, patch, namespace=self.ns, patch_type="strategic")

    async def set_image(self, image: str, name: str = "web") -> None:
        await self.patch({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}, name)

    async def events(self, name: str = "web") -> list[tuple[str, str]]:
        evs, _ = await self.client.list_all(EVENTS, namespace=self.ns,
                                            field_selector=f"involvedObject.name={name}")
        return [(e.reason, e.message) for e in evs]  # type: ignore[attr-defined]


@pytest.fixture
async def cluster(apiserver: APIServer, client: Client, namespace: str) -> AsyncIterator[Cluster]:
    async with Client([apiserver.address], identity="kube-controller-manager") as own:
        factory = SharedInformerFactory(own)
        ctx = ControllerContext(client=own, factory=factory, workers=3)
        built = [new_replicaset(ctx), new_deployment_controller(ctx)]
        for rec in ctx.recorders.values():
            await rec.start()
        factory.start()
        standin = StandIn(client, namespace)
        tasks = [asyncio.create_task(c.start()) for c in built] + [asyncio.create_task(standin.run())]
        try:
            yield Cluster(client, namespace, standin)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.shutdown()
            for rec in ctx.recorders.values():
                await rec.stop(drain=False)
            # nothing of ours keeps running pods in the shared apiserver
            for d in (await client.list_all(DEPLOY, namespace=namespace))[0]:
                await client.delete(DEPLOY, d.metadata.name, namespace=namespace)  # type: ignore[attr-defined]
            for rs in (await client.list_all(RS, namespace=namespace))[0]:
                await client.delete(RS, rs.metadata.name, namespace=namespace)  # type: ignore[attr-defined]
            for p in (await client.list_all(PODS, namespace=namespace))[0]:
                with contextlib.suppress(api.NotFound):
                    await client.delete(PODS, p.metadata.name, namespace=namespace,  # type: ignore[attr-defined]
                                        grace_period=0)


def manifest(name: str = "web", replicas: int = 3, image: str = "myapp:v1", *, strategy: dict[str, Any] | None = None,
             **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": image}]}}}
    if strategy is not None:
        body["strategy"] = strategy
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": body}


def rolling(surge: int | str, unavailable: int | str) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


def condition(d: apps_pb2.Deployment, ctype: str) -> tuple[str, str]:
    cond = ro.get_condition(d.status, ctype)
    return (cond.status, cond.reason) if cond is not None else ("", "")


async def test_creates_a_hashed_replica_set_and_reports_status(cluster: Cluster) -> None:
    await cluster.client.create(DEPLOY, manifest(replicas=3), namespace=cluster.ns)
    d = await eventually(cluster.complete, what="3 available replicas")
    (rs,) = await cluster.replica_sets()
    name = rs.metadata.name
    assert HASHED.match(name), name
    pod_hash = name.removeprefix("web-")
    assert rs.metadata.labels["pod-template-hash"] == pod_hash
    assert rs.spec.selector.matchLabels["pod-template-hash"] == pod_hash
    assert rs.spec.template.metadata.labels["pod-template-hash"] == pod_hash
    (ref,) = rs.metadata.ownerReferences
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion) == (
        "Deployment", "web", d.metadata.uid, True, True)
    assert dict(rs.metadata.annotations) == {ro.REVISION_ANNOTATION: "1", ro.DESIRED_REPLICAS_ANNOTATION: "3",
                                             ro.MAX_REPLICAS_ANNOTATION: "4"}  # 25% of 3 surges to 1
    assert d.metadata.annotations[ro.REVISION_ANNOTATION] == "1"
    assert (d.status.replicas, d.status.updatedReplicas, d.status.readyReplicas, d.status.availableReplicas,
            d.status.unavailableReplicas) == (3, 3, 3, 3, 0)
    assert condition(d, "Available") == ("True", "MinimumReplicasAvailable")
    assert condition(d, "Progressing") == ("True", "NewReplicaSetAvailable")
    assert all(p.metadata.labels["pod-template-hash"] == pod_hash for p in await cluster.pods())
    events = await eventually(lambda: cluster.events(), what="events")
    assert ("ScalingReplicaSet", f"Scaled up replica set {name} from 0 to 3") in events


async def test_rolling_update_keeps_within_surge_and_unavailable(cluster: Cluster) -> None:
    """10 replicas, maxSurge 3, maxUnavailable 2: at every pod event of the rollout the pods never
    exceed 13 and the ready ones never drop below 8; the old ReplicaSet ends at 0, revision 2."""
    await cluster.client.create(DEPLOY, manifest(replicas=10, strategy=rolling(3, 2)), namespace=cluster.ns)
    await eventually(cluster.complete, what="10 available replicas")
    (old,) = await cluster.replica_sets()
    # new pods become ready slowly, so the budget is actually exercised
    first_seen: dict[str, float] = {}

    def slow(pod: core_pb2.Pod) -> bool:
        seen = first_seen.setdefault(pod.metadata.name, time.monotonic())
        return time.monotonic() - seen > 0.3

    cluster.standin.ready = slow
    worst = {"max_total": 0, "min_ready": 10}
    stop = asyncio.Event()

    async def observe() -> None:
        state: dict[str, core_pb2.Pod] = {}
        async for etype, obj in cluster.client.watch(PODS, namespace=cluster.ns):
            assert isinstance(obj, core_pb2.Pod)
            if etype == "DELETED" or obj.metadata.HasField("deletionTimestamp"):
                state.pop(obj.metadata.name, None)
            elif etype in ("ADDED", "MODIFIED"):
                state[obj.metadata.name] = obj
            ready = sum(1 for p in state.values() if any(c.type == "Ready" and c.status == "True"
                                                         for c in p.status.conditions))
            if len(state) >= 10:  # the initial list has arrived
                worst["max_total"] = max(worst["max_total"], len(state))
                worst["min_ready"] = min(worst["min_ready"], ready)
            if stop.is_set():
                return

    watcher = asyncio.create_task(observe())
    await asyncio.sleep(0.5)
    await cluster.set_image("myapp:v2")
    d = await eventually(cluster.complete, timeout=60, what="the rollout to finish")
    stop.set()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert worst["max_total"] <= 13, worst
    assert worst["min_ready"] >= 8, worst
    rss = await cluster.replica_sets()
    assert [rs.metadata.name for rs in rss] == [old.metadata.name, rss[1].metadata.name]
    assert [ro.revision(rs) for rs in rss] == [1, 2]
    assert [ro.replicas(rs) for rs in rss] == [0, 10]
    assert d.metadata.annotations[ro.REVISION_ANNOTATION] == "2"
    assert all(p.spec.containers[0].image == "myapp:v2" for p in await cluster.pods())
    events = [m for r, m in await cluster.events() if r == "ScalingReplicaSet"]
    new_name = rss[1].metadata.name
    assert f"Scaled up replica set {new_name} from 0 to 3" in events  # the first step: surge only
    assert any(m.startswith(f"Scaled down replica set {old.metadata.name} from 10 to ") for m in events)


async def test_rollback_makes_the_old_template_the_newest_revision(cluster: Cluster) -> None:
    await cluster.client.create(DEPLOY, manifest(replicas=2), namespace=cluster.ns)
    await eventually(cluster.complete, what="v1")
    await cluster.client.patch(DEPLOY, "web", {"metadata": {"annotations": {
        ro.CHANGE_CAUSE_ANNOTATION: "image to v2"}}}, namespace=cluster.ns)
    await cluster.set_image("myapp:v2")
    await eventually(lambda: cluster.complete(), what="v2")
    await cluster.set_image("myapp:v3")
    await eventually(lambda: cluster.complete(), what="v3")

    async def three_revisions() -> bool:
        return [ro.revision(rs) for rs in await cluster.replica_sets()] == [1, 2, 3]

    await eventually(three_revisions, what="revisions 1..3")
    history = await rollout_history(cluster.client, cluster.ns, "web")
    assert [rev for rev, _ in history] == [1, 2, 3]
    assert dict(history)[2] == "image to v2"
    # undo to revision 1: its ReplicaSet becomes revision 4, and revision 1 leaves the history
    assert await rollback(cluster.client, cluster.ns, "web", 1) == "rolled back"
    d = await eventually(lambda: cluster.complete(), what="back to v1")

    async def rolled_back() -> bool:
        return [ro.revision(rs) for rs in await cluster.replica_sets()] == [2, 3, 4]

    await eventually(rolled_back, what="revisions 2, 3, 4")
    rss = await cluster.replica_sets()
    assert rss[-1].spec.template.spec.containers[0].image == "myapp:v1"
    assert rss[-1].metadata.annotations[ro.REVISION_HISTORY_ANNOTATION] == "1"
    d = await cluster.deployment()
    assert d.metadata.annotations[ro.REVISION_ANNOTATION] == "4"
    assert d.spec.template.spec.containers[0].image == "myapp:v1"
    assert "pod-template-hash" not in d.spec.template.metadata.labels
    assert [rev for rev, _ in await rollout_history(cluster.client, cluster.ns, "web")] == [2, 3, 4]
    # a revision that is not there: an error, and nothing changes
    with pytest.raises(LookupError, match="unable to find specified revision 7 in history"):
        await rollback(cluster.client, cluster.ns, "web", 7)
    assert (await cluster.deployment()).metadata.generation == d.metadata.generation
    # the current template already: skipped
    assert await rollback(cluster.client, cluster.ns, "web", 4) == \
        "skipped rollback (current template already matches revision 4)"


async def test_scaling_during_a_rollout_is_proportional(cluster: Cluster) -> None:
    """A stuck rollout (new pods never ready) scaled from 10 to 20: both ReplicaSets grow in
    proportion and together reach replicas + maxSurge."""
    await cluster.client.create(DEPLOY, manifest(replicas=10, strategy=rolling(3, 2)), namespace=cluster.ns)
    await eventually(cluster.complete, what="v1 complete")
    cluster.standin.ready = lambda pod: pod.spec.containers[0].image == "myapp:v1"
    await cluster.set_image("myapp:v2")

    async def stuck() -> list[int] | None:
        rss = await cluster.replica_sets()
        sizes = [ro.replicas(rs) for rs in rss]
        return sizes if sizes == [8, 5] else None  # 13 = 10 + 3, only 2 old ones may go

    await eventually(stuck, what="the rollout to stall at 8 old + 5 new")
    await cluster.patch({"spec": {"replicas": 20}})

    async def scaled() -> list[int] | None:
        rss = await cluster.replica_sets()
        sizes = [ro.replicas(rs) for rs in rss]
        annotated = all(rs.metadata.annotations.get(ro.DESIRED_REPLICAS_ANNOTATION) == "20" for rs in rss)
        return sizes if sum(sizes) == 23 and annotated else None

    # maxSurge 3: 23 in all; the 10 added are shared 8:5 -> round(8*23/13)=14 and round(5*23/13)=9
    assert await eventually(scaled, what="proportional scale-up") == [14, 9]
    d = await cluster.deployment()
    assert condition(d, "Progressing")[0] == "True"


async def test_recreate_never_runs_old_and_new_together(cluster: Cluster) -> None:
    await cluster.client.create(DEPLOY, manifest(replicas=3, strategy={"type": "Recreate"}), namespace=cluster.ns)
    await eventually(cluster.complete, what="v1")
    images: list[set[str]] = []
    stop = asyncio.Event()

    async def observe() -> None:
        state: dict[str, str] = {}
        async for etype, obj in cluster.client.watch(PODS, namespace=cluster.ns):
            assert isinstance(obj, core_pb2.Pod)
            if etype == "DELETED":
                state.pop(obj.metadata.name, None)
            elif etype in ("ADDED", "MODIFIED"):
                state[obj.metadata.name] = obj.spec.containers[0].image
            images.append(set(state.values()))
            if stop.is_set():
                return

    watcher = asyncio.create_task(observe())
    await asyncio.sleep(0.3)
    await cluster.set_image("myapp:v2")
    await eventually(lambda: cluster.complete(), what="v2")
    stop.set()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert {"myapp:v2"} in images
    assert not any(len(s) > 1 for s in images), [s for s in images if len(s) > 1][:3]
    assert [ro.replicas(rs) for rs in await cluster.replica_sets()] == [0, 3]


async def test_paused_deployment_holds_template_changes_until_resumed(cluster: Cluster) -> None:
    await cluster.client.create(DEPLOY, manifest(replicas=2), namespace=cluster.ns)
    await eventually(cluster.complete, what="v1")
    await cluster.patch({"spec": {"paused": True}})

    async def paused() -> bool:
        return condition(await cluster.deployment(), "Progressing") == ("Unknown", "DeploymentPaused")

    await eventually(paused, what="the DeploymentPaused condition")
    await cluster.set_image("myapp:v2")
    await cluster.patch({"spec": {"replicas": 4}})  # scaling still works while paused

    async def scaled_paused() -> bool:
        d = await cluster.deployment()
        # the template change is not rolled out: no new ReplicaSet, nothing "updated"
        return (d.status.replicas, d.status.availableReplicas, d.status.updatedReplicas) == (4, 4, 0)

    await eventually(scaled_paused, what="4 replicas while paused")
    assert [ro.replicas(rs) for rs in await cluster.replica_sets()] == [4]
    assert {p.spec.containers[0].image for p in await cluster.pods()} == {"myapp:v1"}
    await cluster.patch({"spec": {"paused": False}})
    d = await eventually(lambda: cluster.complete(), what="the rollout after resuming")
    assert [ro.revision(rs) for rs in await cluster.replica_sets()] == [1, 2]
    assert d.spec.template.spec.containers[0].image == "myapp:v2"


async def test_progress_deadline_exceeded(cluster: Cluster) -> None:
    cluster.standin.ready = lambda pod: pod.spec.containers[0].image == "myapp:v1"
    await cluster.client.create(DEPLOY, manifest(replicas=2, progressDeadlineSeconds=2), namespace=cluster.ns)
    await eventually(cluster.complete, what="v1")
    await cluster.set_image("myapp:v2")

    async def timed_out() -> apps_pb2.Deployment | None:
        d = await cluster.deployment()
        return d if condition(d, "Progressing") == ("False", "ProgressDeadlineExceeded") else None

    d = await eventually(timed_out, timeout=30, what="ProgressDeadlineExceeded")
    cond = ro.get_condition(d.status, "Progressing")
    assert cond is not None and re.fullmatch(r'ReplicaSet "web-[456789bcdf]+" has timed out progressing\.',
                                             cond.message)
    # the old pods stay: maxUnavailable 25% of 2 rounds down to 0
    assert condition(d, "Available") == ("True", "MinimumReplicasAvailable")


async def test_revision_history_limit_prunes_empty_old_replica_sets(cluster: Cluster) -> None:
    await cluster.client.create(DEPLOY, manifest(replicas=1, revisionHistoryLimit=1), namespace=cluster.ns)
    for image in ("myapp:v1", "myapp:v2", "nginx:1.25", "busybox"):
        if image != "myapp:v1":
            await cluster.set_image(image)
        await eventually(lambda: cluster.complete(), what=f"{image} rolled out")

    async def pruned() -> list[int] | None:
        revs = [ro.revision(rs) for rs in await cluster.replica_sets()]
        return revs if revs == [3, 4] else None

    await eventually(pruned, what="only the newest old revision kept")


async def test_adopts_matching_orphans_and_releases_what_stops_matching(cluster: Cluster) -> None:
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "stray", "labels": {"app": "web"}},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web", "v": "old"}},
                       "template": {"metadata": {"labels": {"app": "web", "v": "old"}},
                                    "spec": {"containers": [{"name": "app", "image": "myapp:v0"}]}}}}
    await cluster.client.create(RS, orphan, namespace=cluster.ns)
    await cluster.client.create(DEPLOY, manifest(replicas=1), namespace=cluster.ns)
    await eventually(cluster.complete, what="v1")

    async def adopted() -> bool:
        rs = await cluster.client.get(RS, "stray", namespace=cluster.ns)
        return any(ref.kind == "Deployment" and ref.controller for ref in rs.metadata.ownerReferences)  # type: ignore[attr-defined]

    await eventually(adopted, what="the orphan to be adopted")
    await cluster.client.patch(RS, "stray", {"metadata": {"labels": {"app": "other"}}}, namespace=cluster.ns)

    async def released() -> bool:
        rs = await cluster.client.get(RS, "stray", namespace=cluster.ns)
        return not rs.metadata.ownerReferences  # type: ignore[attr-defined]

    await eventually(released, what="the ReplicaSet to be released")


async def test_hash_collision_bumps_collision_count(cluster: Cluster) -> None:
    """Someone else's ReplicaSet already has the name the template hashes to: the controller
    counts a collision and uses the next hash."""
    await cluster.client.create(DEPLOY, manifest(replicas=1, paused=True), namespace=cluster.ns)
    d = await cluster.deployment()
    taken = f"web-{ro.compute_hash(d.spec.template, None)}"
    squatter = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": taken},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"other": "x"}},
                         "template": {"metadata": {"labels": {"other": "x"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    await cluster.client.create(RS, squatter, namespace=cluster.ns)
    await cluster.patch({"spec": {"paused": False}})
    d = await eventually(cluster.complete, what="the rollout despite the collision")
    assert d.status.collisionCount == 1
    (rs,) = await cluster.replica_sets()
    assert rs.metadata.name == f"web-{ro.compute_hash(d.spec.template, 1)}" != taken


async def test_status_is_stable_once_complete(cluster: Cluster) -> None:
    """A complete deployment is not rewritten: its resourceVersion stays put."""
    await cluster.client.create(DEPLOY, manifest(replicas=2), namespace=cluster.ns)
    d = await eventually(cluster.complete, what="complete")
    await asyncio.sleep(1.5)
    again = await cluster.deployment()
    assert again.metadata.resourceVersion == d.metadata.resourceVersion
