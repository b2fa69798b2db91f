"""The DaemonSet, Job (with TTL-after-finished) and CronJob controllers in-process against a real
apiserver.

No scheduler or kubelet runs: the test plays their part where it needs to — binding daemon pods
to the node their affinity names and marking them Running/Ready, or writing a Job pod's
Succeeded/Failed phase — so every transition is driven and observed deterministically. Times the
controllers look at come from an injected clock, so schedules and deadlines are crossed without
waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller_manager.context import ControllerContext
from controller_manager.cronjob import CronJobController, parse_standard
from controller_manager.daemonset import REVISION_HASH_LABEL, DaemonSetController, target_node_name
from controller_manager.job import (
    COMPLETION_INDEX_KEY,
    JOB_TRACKING_FINALIZER,
    JobController,
    TTLAfterFinishedController,
)
from kplane.api import errors as api
from kplane.api.pb import apps_pb2, batch_pb2, core_pb2
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.client.controller import Controller
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

PODS, NODES, EVENTS = resolve("pods"), resolve("nodes"), resolve("events")
DS, REVISIONS, JOBS, CRONJOBS = resolve("daemonsets"), resolve("controllerrevisions"), resolve("jobs"), resolve("cronjobs")


async def eventually(predicate: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await predicate()
        except (api.NotFound, AssertionError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last: {last!r}"
        await asyncio.sleep(0.1)


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@contextlib.asynccontextmanager
async def running(apiserver: APIServer, build: Callable[[ControllerContext], Any]) -> AsyncIterator[Any]:
    """Build controllers on their own client and informers, run them, stop them afterwards."""
    async with Client([apiserver.address], identity="cm-workloads-test") as own:
        factory = SharedInformerFactory(own)
        ctx = ControllerContext(client=own, factory=factory, workers=2)
        built = build(ctx)
        items = built if isinstance(built, tuple) else (built,)
        controllers: list[Controller] = [c.controller for c in items]
        for rec in ctx.recorders.values():
            await rec.start()
        factory.start()
        tasks = [asyncio.create_task(c.start()) for c in controllers]
        try:
            yield built
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.shutdown()
            for rec in ctx.recorders.values():
                await rec.stop()


async def pods_in(client: Client, namespace: str) -> list[core_pb2.Pod]:
    pods, _ = await client.list_all(PODS, namespace=namespace)
    return [p for p in pods if isinstance(p, core_pb2.Pod)]


async def reasons(client: Client, namespace: str, name: str) -> list[str]:
    events, _ = await client.list_all(EVENTS, namespace=namespace)
    return [e.reason for e in events if e.involvedObject.name == name]  # type: ignore[attr-defined]


async def set_pod_status(client: Client, pod: core_pb2.Pod, phase: str, *, ready: bool = False,
                         restarts: int = 0) -> None:
    body = object_to_dict(PODS, pod)
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    if restarts:
        status["containerStatuses"] = [{"name": pod.spec.containers[0].name, "restartCount": restarts,
                                        "image": pod.spec.containers[0].image, "ready": False}]
    body["status"] = status
    await client.update_status(PODS, body)


# =============================================================================================
# DaemonSet
# =============================================================================================


def node(name: str, labels: dict[str, str], taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def daemonset(name: str, tag: str, image: str = "busybox", strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": {"run": tag}, "terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "agent", "image": image}]}}}}


class NodeStandIn:
    """The scheduler's and kubelets' part for daemon pods: bind each pod to the node its affinity
    names, report it Running and Ready, finish deletions at once (as a kubelet would)."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client, self.namespace = client, namespace
        self.task: asyncio.Task[None] | None = None

    async def step(self) -> None:
        for pod in await pods_in(self.client, self.namespace):
            try:
                if pod.metadata.HasField("deletionTimestamp"):
                    await self.client.delete(PODS, pod.metadata.name, namespace=self.namespace, grace_period=0)
                elif not pod.spec.nodeName:
                    target = target_node_name(pod)
                    if target:
                        await self.client.bind(self.namespace, pod.metadata.name, target, uid=pod.metadata.uid)
                elif pod.status.phase not in ("Running", "Failed", "Succeeded"):
                    await set_pod_status(self.client, pod, "Running", ready=True)
            except (api.NotFound, api.Conflict):
                pass

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(0.1)

    def __enter__(self) -> NodeStandIn:
        self.task = asyncio.create_task(self.run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()


@pytest.fixture
async def tagged_nodes(client: Client) -> AsyncIterator[tuple[str, list[str]]]:
    """Nodes of our own (labelled run=<tag>), deleted afterwards; yields (tag, names created)."""
    tag = uuid.uuid4().hex[:6]
    created: list[str] = []
    yield tag, created
    for name in created:
        with contextlib.suppress(api.NotFound):
            await client.delete(NODES, name)


async def daemon_pods(client: Client, namespace: str) -> dict[str, list[core_pb2.Pod]]:
    out: dict[str, list[core_pb2.Pod]] = {}
    for pod in await pods_in(client, namespace):
        if not pod.metadata.HasField("deletionTimestamp"):
            out.setdefault(target_node_name(pod), []).append(pod)
    return out


async def test_daemonset_places_one_pod_per_eligible_node(client: Client, namespace: str, apiserver: APIServer,
                                                          tagged_nodes: tuple[str, list[str]]) -> None:
    """Selected nodes get exactly one pod each (a cordoned one too: daemon pods tolerate
    unschedulable), a tainted one gets none; pods carry the node affinity, the daemon tolerations,
    the revision hash and a controller reference; a new node gets a pod, a deleted node loses its
    pod, an untolerated NoExecute taint evicts it, a failed pod is replaced; status follows."""
    tag, created = tagged_nodes
    names = [f"ds-{tag}-{i}" for i in range(4)]
    created.extend(names)
    await client.create(NODES, node(names[0], {"run": tag}))
    await client.create(NODES, node(names[1], {"run": tag}, unschedulable=True,
                                    taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]))
    await client.create(NODES, node(names[2], {"run": tag}, taints=[{"key": "gpu", "effect": "NoSchedule"}]))
    await client.create(NODES, node(names[3], {"run": "other"}))
    ds = await client.create(DS, daemonset("agent", tag), namespace=namespace)
    assert isinstance(ds, apps_pb2.DaemonSet)
    async with running(apiserver, lambda ctx: DaemonSetController(ctx)):
        async def placed(expected: set[str]) -> dict[str, list[core_pb2.Pod]]:
            got = await daemon_pods(client, namespace)
            assert set(got) == expected and all(len(p) == 1 for p in got.values()), {k: len(v) for k, v in got.items()}
            return got

        by_node = await eventually(lambda: placed({names[0], names[1]}), what="one pod on each eligible node")
        pod = by_node[names[0]][0]
        assert pod.metadata.name.startswith("agent-") and len(pod.metadata.name) == len("agent-") + 5
        ref = pod.metadata.ownerReferences[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion) == (
            "DaemonSet", "agent", ds.metadata.uid, True, True)
        terms = pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
        assert [(r.key, r.operator, list(r.values)) for r in terms[0].matchFields] == [
            ("metadata.name", "In", [names[0]])]
        assert {t.key for t in pod.spec.tolerations} >= {"node.kubernetes.io/not-ready",
                                                        "node.kubernetes.io/unschedulable"}
        hash_ = pod.metadata.labels[REVISION_HASH_LABEL]
        revs, _ = await client.list_all(REVISIONS, namespace=namespace)
        assert [(r.metadata.name, r.revision) for r in revs] == [(f"agent-{hash_}", 1)]  # type: ignore[attr-defined]

        async def status(**want: int) -> bool:
            st = object_to_dict(DS, await client.get(DS, "agent", namespace=namespace)).get("status", {})
            assert all(st.get(k, 0) == v for k, v in want.items()), st
            return True

        await eventually(lambda: status(desiredNumberScheduled=2, currentNumberScheduled=2, numberMisscheduled=0,
                                        updatedNumberScheduled=2, numberReady=0, numberUnavailable=2,
                                        observedGeneration=1), what="status of unbound pods")
        with NodeStandIn(client, namespace):
            await eventually(lambda: status(numberReady=2, numberAvailable=2, numberUnavailable=0),
                             what="pods ready")
            # a new node gets one
            created.append(f"ds-{tag}-new")
            await client.create(NODES, node(f"ds-{tag}-new", {"run": tag}))
            await eventually(lambda: placed({names[0], names[1], f"ds-{tag}-new"}), what="pod for the new node")
            await eventually(lambda: status(desiredNumberScheduled=3, numberAvailable=3), what="3 available")
            # a removed node loses its pod
            await client.delete(NODES, f"ds-{tag}-new")
            await eventually(lambda: placed({names[0], names[1]}), what="pod of the deleted node gone")
            # an untolerated NoExecute taint evicts; removing it brings the daemon back
            await client.patch(NODES, names[0], {"spec": {"taints": [{"key": "evict", "effect": "NoExecute"}]}})
            await eventually(lambda: placed({names[1]}), what="NoExecute taint evicts")
            await eventually(lambda: status(desiredNumberScheduled=1, currentNumberScheduled=1), what="desired 1")
            await client.patch(NODES, names[0], {"spec": {"taints": []}})
            by_node = await eventually(lambda: placed({names[0], names[1]}), what="pod back after the taint")
            # a failed daemon pod is deleted and replaced
            failed = by_node[names[1]][0]
            await eventually(lambda: _running(client, namespace, failed.metadata.name), what="pod running")
            await set_pod_status(client, await client.get(PODS, failed.metadata.name, namespace=namespace),  # type: ignore[arg-type]
                                 "Failed")

            async def replaced() -> bool:
                pods = (await daemon_pods(client, namespace)).get(names[1], [])
                return len(pods) == 1 and pods[0].metadata.name != failed.metadata.name

            await eventually(replaced, what="failed pod replaced")
        await eventually(lambda: _has_reasons(client, namespace, "agent", {"FailedDaemonPod", "SuccessfulCreate"}),
                         what="events")


async def _running(client: Client, namespace: str, name: str) -> bool:
    pod = await client.get(PODS, name, namespace=namespace)
    return pod.status.phase == "Running"  # type: ignore[attr-defined, no-any-return]


async def test_daemonset_updates_rolling_surging_and_on_delete(client: Client, namespace: str, apiserver: APIServer,
                                                                tagged_nodes: tuple[str, list[str]]) -> None:
    """A template change rolls every node onto a new revision (maxUnavailable 1, never two
    nodes down at once), then with maxSurge 1 (the old pod stays until the new one is ready);
    revisions are numbered; with OnDelete only a deleted pod comes back updated."""
    tag, created = tagged_nodes
    names = [f"ru-{tag}-{i}" for i in range(3)]
    created.extend(names)
    for n in names:
        await client.create(NODES, node(n, {"run": tag}))
    await client.create(DS, daemonset("web", tag), namespace=namespace)

    async def hashes() -> dict[str, list[str]]:
        return {n: sorted(p.metadata.labels[REVISION_HASH_LABEL] for p in pods)
                for n, pods in (await daemon_pods(client, namespace)).items()}

    async def all_on(revision: int) -> str:
        revs, _ = await client.list_all(REVISIONS, namespace=namespace)
        current = [r for r in revs if r.revision == revision]  # type: ignore[attr-defined]
        assert current, [(r.metadata.name, r.revision) for r in revs]  # type: ignore[attr-defined]
        want = current[0].metadata.labels[REVISION_HASH_LABEL]  # type: ignore[attr-defined]
        got = await hashes()
        assert set(got) == set(names) and all(v == [want] for v in got.values()), got
        st = object_to_dict(DS, await client.get(DS, "web", namespace=namespace)).get("status", {})
        assert st.get("updatedNumberScheduled") == 3 and st.get("numberAvailable") == 3, st
        return str(want)

    async with running(apiserver, lambda ctx: DaemonSetController(ctx)):
        with NodeStandIn(client, namespace):
            first = await eventually(lambda: all_on(1), what="revision 1 everywhere")
            # maxUnavailable 1: at no time are two nodes without an available pod
            worst = 0
            stop = asyncio.Event()

            async def watch_availability() -> None:
                nonlocal worst
                while not stop.is_set():
                    pods = await daemon_pods(client, namespace)
                    down = sum(1 for n in names if not any(
                        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
                        for p in pods.get(n, [])))
                    worst = max(worst, down)
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch_availability())
            await client.patch(DS, "web", {"spec": {"template": {"spec": {"containers": [
                {"name": "agent", "image": "busybox:1.36"}]}}}}, namespace=namespace)
            second = await eventually(lambda: all_on(2), what="revision 2 everywhere")
            stop.set()
            await watcher
            assert second != first and worst <= 1
            # surge: new pod beside the old one first
            await client.patch(DS, "web", {"spec": {
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {"metadata": {"labels": {"app": "web", "v": "3"}}}}}, namespace=namespace)
            saw_two = False

            async def surged() -> str:
                nonlocal saw_two
                saw_two = saw_two or any(len(v) == 2 for v in (await hashes()).values())
                return await all_on(3)

            third = await eventually(surged, what="revision 3 everywhere")
            assert saw_two and third not in (first, second)
            # OnDelete: nothing moves until a pod is deleted
            await client.patch(DS, "web", {"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None},
                                                    "template": {"metadata": {"labels": {"app": "web", "v": "4"}}}}},
                               namespace=namespace)

            async def revision_4() -> bool:
                revs, _ = await client.list_all(REVISIONS, namespace=namespace)
                return any(r.revision == 4 for r in revs)  # type: ignore[attr-defined]

            await eventually(revision_4, what="revision 4 recorded")
            await asyncio.sleep(1.0)
            assert all(v == [third] for v in (await hashes()).values())
            victim = (await daemon_pods(client, namespace))[names[0]][0]
            await client.delete(PODS, victim.metadata.name, namespace=namespace, grace_period=0)

            async def one_updated() -> bool:
                got = await hashes()
                return len(got.get(names[0], [])) == 1 and got[names[0]] != [third] and got[names[1]] == [third]

            await eventually(one_updated, what="the deleted pod comes back on revision 4")
        revs, _ = await client.list_all(REVISIONS, namespace=namespace)
        assert sorted(r.revision for r in revs) == [1, 2, 3, 4]  # type: ignore[attr-defined]
        assert all(r.metadata.name.startswith("web-") for r in revs)  # type: ignore[attr-defined]


# =============================================================================================
# Job
# =============================================================================================


def job(name: str, *, completions: int | None = 1, parallelism: int = 1, restart: str = "Never",
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"parallelism": parallelism,
                            "template": {"spec": {"restartPolicy": restart,
                                                  "containers": [{"name": "main", "image": "busybox"}]}}}
    if completions is not None:
        body["completions"] = completions
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": body}


async def job_status(client: Client, namespace: str, name: str) -> dict[str, Any]:
    return object_to_dict(JOBS, await client.get(JOBS, name, namespace=namespace)).get("status", {})


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status.get("conditions", [])}


async def active_pods(client: Client, namespace: str, count: int) -> list[core_pb2.Pod]:
    async def check() -> list[core_pb2.Pod]:
        pods = [p for p in await pods_in(client, namespace)
                if not p.metadata.HasField("deletionTimestamp") and p.status.phase not in ("Succeeded", "Failed")]
        assert len(pods) == count, [p.metadata.name for p in pods]
        return pods or [core_pb2.Pod()]
    return await eventually(check, what=f"{count} active pods")


def job_controllers(clock: Clock | None = None) -> Callable[[ControllerContext], Any]:
    def build(ctx: ControllerContext) -> tuple[JobController, TTLAfterFinishedController]:
        now = clock or time.time
        return (JobController(ctx, clock=now, backoff_base=0.05, backoff_max=0.2),
                TTLAfterFinishedController(ctx, clock=now))
    return build


async def test_job_runs_completions_with_parallelism(client: Client, namespace: str, apiserver: APIServer) -> None:
    """completions 3 / parallelism 2: two pods, then one more; the Job completes (SuccessCriteriaMet,
    then Complete with completionTime); every pod was tracked by the finalizer, which is gone."""
    created = await client.create(JOBS, job("pi", completions=3, parallelism=2), namespace=namespace)
    uid = created.metadata.uid  # type: ignore[attr-defined]
    async with running(apiserver, job_controllers()):
        pods = await active_pods(client, namespace, 2)
        for pod in pods:
            assert pod.metadata.name.startswith("pi-") and len(pod.metadata.name) == len("pi-") + 5
            assert JOB_TRACKING_FINALIZER in pod.metadata.finalizers
            labels = pod.metadata.labels
            assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "pi"
            assert labels["batch.kubernetes.io/controller-uid"] == labels["controller-uid"] == uid
            ref = pod.metadata.ownerReferences[0]
            assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Job", "pi", uid, True)
        st = await eventually(lambda: _status_has(client, namespace, "pi", active=2), what="active 2")
        assert "startTime" in st
        for pod in pods:
            await set_pod_status(client, pod, "Succeeded")
        third = await active_pods(client, namespace, 1)
        await set_pod_status(client, third[0], "Succeeded")
        st = await eventually(lambda: _status_has(client, namespace, "pi", succeeded=3, active=0, failed=0),
                              what="3 succeeded")
        st = await eventually(lambda: _finished(client, namespace, "pi", "Complete"), what="Complete")
        assert conditions(st)["SuccessCriteriaMet"] == ("True", "CompletionsReached")
        assert conditions(st)["Complete"] == ("True", "CompletionsReached")
        assert "completionTime" in st and st.get("uncountedTerminatedPods", {}) == {}
        await eventually(lambda: _no_finalizers(client, namespace), what="finalizers removed")
        await eventually(lambda: _has_reasons(client, namespace, "pi", {"SuccessfulCreate", "Completed"}),
                         what="events")


async def _status_has(client: Client, namespace: str, name: str, **want: int) -> dict[str, Any]:
    st = await job_status(client, namespace, name)
    assert all(int(st.get(k, 0)) == v for k, v in want.items()), st
    return st


async def _finished(client: Client, namespace: str, name: str, ctype: str) -> dict[str, Any]:
    st = await job_status(client, namespace, name)
    assert conditions(st).get(ctype, ("", ""))[0] == "True", st
    return st


async def _no_finalizers(client: Client, namespace: str) -> bool:
    return all(JOB_TRACKING_FINALIZER not in p.metadata.finalizers for p in await pods_in(client, namespace))


async def _has_reasons(client: Client, namespace: str, name: str, want: set[str]) -> bool:
    return want <= set(await reasons(client, namespace, name))


async def test_job_fails_after_the_backoff_limit(client: Client, namespace: str, apiserver: APIServer) -> None:
    """backoffLimit 1: a failed pod is replaced; the second failure fails the Job
    (FailureTarget, then Failed, reason BackoffLimitExceeded)."""
    await client.create(JOBS, job("flaky", backoffLimit=1), namespace=namespace)
    async with running(apiserver, job_controllers()):
        first = await active_pods(client, namespace, 1)
        await set_pod_status(client, first[0], "Failed")
        second = await eventually(lambda: _other_active(client, namespace, first[0].metadata.name), what="replacement")
        await eventually(lambda: _status_has(client, namespace, "flaky", failed=1), what="failed 1")
        await set_pod_status(client, second, "Failed")
        st = await eventually(lambda: _finished(client, namespace, "flaky", "Failed"), what="Failed")
        assert conditions(st)["Failed"] == ("True", "BackoffLimitExceeded")
        assert conditions(st)["FailureTarget"] == ("True", "BackoffLimitExceeded")
        assert int(st["failed"]) == 2 and "completionTime" not in st
        await eventually(lambda: _has_reasons(client, namespace, "flaky", {"BackoffLimitExceeded"}), what="event")


async def _other_active(client: Client, namespace: str, old: str) -> core_pb2.Pod | None:
    for pod in await pods_in(client, namespace):
        if pod.metadata.name != old and pod.status.phase not in ("Failed", "Succeeded") \
                and not pod.metadata.HasField("deletionTimestamp"):
            return pod
    return None


async def test_job_on_failure_restarts_count(client: Client, namespace: str, apiserver: APIServer) -> None:
    """restartPolicy OnFailure: container restarts reaching backoffLimit fail the Job, and its
    still-running pod is deleted before Failed is set."""
    await client.create(JOBS, job("crashy", restart="OnFailure", backoffLimit=2), namespace=namespace)
    async with running(apiserver, job_controllers()):
        pod = (await active_pods(client, namespace, 1))[0]
        await set_pod_status(client, pod, "Running", restarts=2)
        st = await eventually(lambda: _finished(client, namespace, "crashy", "Failed"), what="Failed")
        assert conditions(st)["Failed"][1] == "BackoffLimitExceeded"
        await eventually(lambda: _no_pods(client, namespace), what="the running pod deleted")


async def _no_pods(client: Client, namespace: str) -> bool:
    return not await pods_in(client, namespace)


async def test_job_active_deadline(client: Client, namespace: str, apiserver: APIServer) -> None:
    """activeDeadlineSeconds passes (on the controller's clock): DeadlineExceeded, pods deleted."""
    clock = Clock()
    await client.create(JOBS, job("slow", completions=4, parallelism=2, activeDeadlineSeconds=30), namespace=namespace)
    async with running(apiserver, job_controllers(clock)) as (jobs, _):
        await active_pods(client, namespace, 2)
        clock.offset = 31
        jobs.controller.queue.add(f"{namespace}/slow")
        st = await eventually(lambda: _finished(client, namespace, "slow", "Failed"), what="Failed")
        assert conditions(st)["Failed"] == ("True", "DeadlineExceeded")
        assert int(st.get("active", 0)) == 0 and int(st["failed"]) == 2
        await eventually(lambda: _no_pods(client, namespace), what="pods deleted")


async def test_deleted_pod_is_counted_and_replaced(client: Client, namespace: str, apiserver: APIServer) -> None:
    """Deleting a running pod cannot lose it: the finalizer holds it until it is counted as
    failed; then it goes and a replacement starts."""
    await client.create(JOBS, job("keep"), namespace=namespace)
    async with running(apiserver, job_controllers()):
        pod = (await active_pods(client, namespace, 1))[0]
        await client.delete(PODS, pod.metadata.name, namespace=namespace)
        await eventually(lambda: _status_has(client, namespace, "keep", failed=1, active=1), what="counted, replaced")

        async def gone() -> bool:
            names = {p.metadata.name for p in await pods_in(client, namespace)}
            return pod.metadata.name not in names and len(names) == 1

        await eventually(gone, what="the deleted pod released and gone")


async def test_indexed_job(client: Client, namespace: str, apiserver: APIServer) -> None:
    """completionMode Indexed: one pod per index (annotation, label, hostname, env), lowest
    indexes first; completedIndexes tracks successes."""
    await client.create(JOBS, job("idx", completions=3, parallelism=2, completionMode="Indexed"), namespace=namespace)
    async with running(apiserver, job_controllers()):
        pods = await active_pods(client, namespace, 2)
        by_index = {p.metadata.annotations[COMPLETION_INDEX_KEY]: p for p in pods}
        assert set(by_index) == {"0", "1"}
        p0 = by_index["0"]
        assert p0.metadata.labels[COMPLETION_INDEX_KEY] == "0" and p0.spec.hostname == "idx-0"
        assert p0.metadata.name.startswith("idx-0-")
        env = {e.name: e.valueFrom.fieldRef.fieldPath for e in p0.spec.containers[0].env}
        assert env["JOB_COMPLETION_INDEX"] == f"metadata.annotations['{COMPLETION_INDEX_KEY}']"
        await set_pod_status(client, p0, "Succeeded")

        async def index_2() -> core_pb2.Pod:
            pods = await active_pods(client, namespace, 2)
            (p2,) = [p for p in pods if p.metadata.annotations[COMPLETION_INDEX_KEY] == "2"]
            return p2

        p2 = await eventually(index_2, what="index 2 started")
        await eventually(lambda: _completed_indexes(client, namespace, "0"), what="completedIndexes 0")
        await set_pod_status(client, p2, "Succeeded")
        await set_pod_status(client, by_index["1"], "Succeeded")
        st = await eventually(lambda: _finished(client, namespace, "idx", "Complete"), what="Complete")
        assert st["completedIndexes"] == "0-2" and int(st["succeeded"]) == 3


async def _completed_indexes(client: Client, namespace: str, want: str) -> bool:
    return (await job_status(client, namespace, "idx")).get("completedIndexes") == want


async def test_suspend_resume_and_ttl(client: Client, namespace: str, apiserver: APIServer) -> None:
    """A suspended Job runs nothing (Suspended condition); resumed it runs, completes, and with
    ttlSecondsAfterFinished 0 the TTL controller deletes it."""
    await client.create(JOBS, job("later", suspend=True, ttlSecondsAfterFinished=0), namespace=namespace)
    async with running(apiserver, job_controllers()):
        st = await eventually(lambda: _finished(client, namespace, "later", "Suspended"), what="Suspended")
        assert conditions(st)["Suspended"] == ("True", "JobSuspended") and not await pods_in(client, namespace)
        await client.patch(JOBS, "later", {"spec": {"suspend": False}}, namespace=namespace)
        pod = (await active_pods(client, namespace, 1))[0]

        async def resumed() -> bool:
            return conditions(await job_status(client, namespace, "later"))["Suspended"] == ("False", "JobResumed")

        await eventually(resumed, what="Suspended False (JobResumed)")
        await set_pod_status(client, pod, "Succeeded")

        async def deleted() -> bool:
            try:
                await client.get(JOBS, "later", namespace=namespace)
            except api.NotFound:
                return True
            return False

        await eventually(deleted, what="the TTL controller deleted the finished Job")


# =============================================================================================
# CronJob
# =============================================================================================


def cronjob(name: str, schedule: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                               "containers": [{"name": "c", "image": "busybox"}]}}}}}}


async def complete_job(client: Client, namespace: str, name: str, start: datetime) -> None:
    body = object_to_dict(JOBS, await client.get(JOBS, name, namespace=namespace))
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    body["status"] = {"startTime": stamp, "completionTime": stamp, "succeeded": 1,
                      "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": stamp}]}
    await client.update_status(JOBS, body)


async def test_cronjob_schedules_jobs(client: Client, namespace: str, apiserver: APIServer) -> None:
    """On the controller's clock: a Job per scheduled time named <cronjob>-<minutes>; Forbid skips
    a run while one is active; finished Jobs are pruned beyond the history limit; Replace deletes
    the running Job; after a long outage only the most recent time runs (with a warning); a
    suspended CronJob starts nothing."""
    clock = Clock()
    cj = await client.create(CRONJOBS, cronjob("tick", "*/5 * * * *", concurrencyPolicy="Forbid",
                                               successfulJobsHistoryLimit=1), namespace=namespace)
    assert isinstance(cj, batch_pb2.CronJob)
    created = datetime.fromtimestamp(cj.metadata.creationTimestamp.seconds, UTC)
    sched = parse_standard("*/5 * * * *")
    t1 = sched.next(created)
    assert t1 is not None
    times = [t1 + timedelta(minutes=5 * i) for i in range(6)]
    key = f"{namespace}/tick"

    def name_at(t: datetime) -> str:
        return f"tick-{int(t.timestamp()) // 60}"

    async def jobs_now() -> list[str]:
        items, _ = await client.list_all(JOBS, namespace=namespace)
        return sorted(j.metadata.name for j in items if not j.metadata.HasField("deletionTimestamp"))  # type: ignore[attr-defined]

    async def jobs_are(want: list[str]) -> bool:
        got = await jobs_now()
        assert got == sorted(want), got
        return True

    def at(t: datetime, controller: CronJobController) -> None:
        clock.offset = t.timestamp() + 1 - time.time()
        controller.controller.queue.add(key)

    async with running(apiserver, lambda ctx: CronJobController(ctx, clock=clock, zone=UTC)) as ctrl:
        await asyncio.sleep(0.5)
        assert await jobs_now() == []  # nothing is due yet
        at(times[0], ctrl)
        await eventually(lambda: jobs_are([name_at(times[0])]), what="the first run")
        first = await client.get(JOBS, name_at(times[0]), namespace=namespace)
        assert isinstance(first, batch_pb2.Job)
        assert first.metadata.labels["cron"] == "tick"
        assert first.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
            times[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert first.metadata.ownerReferences[0].kind == "CronJob" and first.metadata.ownerReferences[0].controller

        async def cj_status(**want: Any) -> bool:
            st = object_to_dict(CRONJOBS, await client.get(CRONJOBS, "tick", namespace=namespace)).get("status", {})
            assert all(st.get(k) == v for k, v in want.items()), st
            return True

        await eventually(lambda: cj_status(active=[{
            "kind": "Job", "namespace": namespace, "name": name_at(times[0]), "uid": first.metadata.uid,
            "apiVersion": "batch/v1", "resourceVersion": first.metadata.resourceVersion}],
            lastScheduleTime=times[0].strftime("%Y-%m-%dT%H:%M:%SZ")), what="status of the first run")
        # Forbid: the next time passes while the first Job still runs
        at(times[1], ctrl)
        await eventually(lambda: _has_reasons(client, namespace, "tick", {"JobAlreadyActive"}), what="forbidden")
        assert await jobs_now() == [name_at(times[0])]
        # the first Job completes: it leaves the active list and the overdue run starts
        await complete_job(client, namespace, name_at(times[0]), times[0])
        await eventually(lambda: jobs_are([name_at(times[0]), name_at(times[1])]), what="the second run")
        await eventually(lambda: cj_status(lastSuccessfulTime=times[0].strftime("%Y-%m-%dT%H:%M:%SZ")),
                         what="lastSuccessfulTime")
        await eventually(lambda: _has_reasons(client, namespace, "tick", {"SawCompletedJob"}), what="SawCompletedJob")
        # history limit 1: when the second completes, the first is deleted
        await complete_job(client, namespace, name_at(times[1]), times[1])
        ctrl.controller.queue.add(key)
        await eventually(lambda: jobs_are([name_at(times[1])]), what="history pruned to one")
        # Replace: a running Job is deleted for the next run
        await client.patch(CRONJOBS, "tick", {"spec": {"concurrencyPolicy": "Replace"}}, namespace=namespace)
        at(times[2], ctrl)
        await eventually(lambda: jobs_are([name_at(times[1]), name_at(times[2])]), what="the third run")
        at(times[3], ctrl)
        await eventually(lambda: jobs_are([name_at(times[1]), name_at(times[3])]), what="the third replaced")
        # a long outage: hundreds of missed runs, only the latest one starts
        late = times[3] + timedelta(minutes=5 * 300)
        at(late, ctrl)
        await eventually(lambda: jobs_are([name_at(times[1]), name_at(late)]), what="only the most recent")
        await eventually(lambda: _has_reasons(client, namespace, "tick", {"TooManyMissedTimes"}), what="warning")
        # suspended: nothing new
        await client.patch(CRONJOBS, "tick", {"spec": {"suspend": True}}, namespace=namespace)

        async def seen_suspended() -> bool:  # a controller acts on its cache: let it see the change first
            cached = ctrl.cronjobs.store.get_by_key(key)
            return cached is not None and bool(cached.spec.suspend)

        await eventually(seen_suspended, what="the controller's cache sees suspend")
        at(late + timedelta(minutes=5), ctrl)
        await asyncio.sleep(1.0)
        assert await jobs_now() == [name_at(times[1]), name_at(late)]


async def test_cronjob_starting_deadline(client: Client, namespace: str, apiserver: APIServer) -> None:
    """With startingDeadlineSeconds a run that is too late is not started; one within it is."""
    clock = Clock()
    cj = await client.create(CRONJOBS, cronjob("dl", "*/5 * * * *", startingDeadlineSeconds=30), namespace=namespace)
    created = datetime.fromtimestamp(cj.metadata.creationTimestamp.seconds, UTC)  # type: ignore[attr-defined]
    t1 = parse_standard("*/5 * * * *").next(created)
    assert t1 is not None
    async with running(apiserver, lambda ctx: CronJobController(ctx, clock=clock, zone=UTC)) as ctrl:
        clock.offset = t1.timestamp() + 120 - time.time()  # two minutes late: beyond 30 s
        ctrl.controller.queue.add(f"{namespace}/dl")
        await asyncio.sleep(1.0)
        items, _ = await client.list_all(JOBS, namespace=namespace)
        assert items == []
        t2 = t1 + timedelta(minutes=5)
        clock.offset = t2.timestamp() + 10 - time.time()  # ten seconds late: fine
        ctrl.controller.queue.add(f"{namespace}/dl")

        async def started() -> bool:
            items, _ = await client.list_all(JOBS, namespace=namespace)
            return [j.metadata.name for j in items] == [f"dl-{int(t2.timestamp()) // 60}"]  # type: ignore[attr-defined]

        await eventually(started, what="the run within the deadline")
