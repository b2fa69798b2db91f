"""DaemonSet, Job and CronJob with real processes, driven with kpctl: the controller-manager
(``--controllers daemonset,job,cronjob``), the scheduler, a fake kubelet with three simulated
nodes for the DaemonSet (one pod per node; a node that joins gets one, a node that leaves loses
it) and a real process-runtime kubelet whose busybox containers run the Job and the CronJob's
Jobs to completion.

The session apiserver is shared with other e2e modules: the DaemonSet selects only our fake nodes
(a label), Job pods go only to our real node (a nodeSelector), and everything we created — objects,
pods, nodes — is removed at teardown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import yaml
from procs import (
    Components,
    component_argv,
    controller_manager_argv,
    kill_leftovers,
    kpctl,
    kubelet_argv,
    scheduler_argv,
    worker_index,
)
from procs import eventually as poll

from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, stop_process

pytestmark = pytest.mark.e2e

PODS, NODES = resolve("pods"), resolve("nodes")
DS, JOBS, CRONJOBS = resolve("daemonsets"), resolve("jobs"), resolve("cronjobs")


@dataclass
class Env(Components):
    apiserver: APIServer = field(kw_only=True)
    tag: str = field(kw_only=True)
    ns: str = field(kw_only=True)
    real_node: str = field(kw_only=True)

    def fake_kubelet(self, name: str, prefix: str, count: int) -> None:
        self.start(name, component_argv("kubelet", self.apiserver.address, "--fake-nodes", str(count),
                                        "--node-name", prefix, "--node-labels", f"run={self.tag}",
                                        "--data-dir", str(self.tmp / name), "--node-lease-renew-interval", "1s"))

    def kpctl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return kpctl(self.apiserver.address, *args, namespace=self.ns, stdin=stdin, timeout=timeout)

    async def akpctl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.kpctl, *args, stdin=stdin)

    async def get(self, resource: str, name: str = "", *, selector: str = "") -> Any:
        """Poll through the API (a kpctl process per poll would cost more than the test)."""
        rt = resolve(resource)
        async with Client(self.apiserver.address) as c:
            if name:
                return object_to_dict(rt, await c.get(rt, name, namespace=self.ns))
            items, _ = await c.list_all(rt, namespace=self.ns, label_selector=selector)
            return {"items": [object_to_dict(rt, i) for i in items]}


@pytest.fixture(scope="module")
def env(apiserver: APIServer, tmp_path_factory: Any) -> Iterator[Env]:
    n = worker_index() + 70
    tag = uuid.uuid4().hex[:6]
    e = Env(tmp_path_factory.mktemp("workloads"), apiserver=apiserver, tag=tag, ns=f"wl-{tag}", real_node=f"k-{tag}")
    created = kpctl(apiserver.address, "create", "namespace", e.ns)
    assert created.returncode == 0, created.stderr
    e.fake_kubelet("fake-kubelet", f"f-{tag}", 3)
    e.start("kubelet", kubelet_argv(apiserver.address, e.real_node, e.tmp / "data", node_ip=f"127.0.1.{n}",
                                    pod_cidr=f"127.247.{n}.0/24", cpu="4", memory="4Gi"))
    e.start("scheduler", scheduler_argv(apiserver.address))
    e.start("controller-manager", controller_manager_argv(apiserver.address, "daemonset,job,cronjob"))
    try:
        yield e
    finally:
        async def delete_objects() -> None:
            async with Client(apiserver.address) as c:
                for rt in (CRONJOBS, JOBS, DS):
                    items, _ = await c.list_all(rt, namespace=e.ns)
                    for obj in items:
                        with contextlib.suppress(api.NotFound):
                            await c.delete(rt, obj.metadata.name, namespace=e.ns)  # type: ignore[attr-defined]
                await asyncio.sleep(2)  # the job controller releases the pods of deleted Jobs

        async def delete_pods_and_nodes() -> None:
            async with Client(apiserver.address) as c:
                pods, _ = await c.list_all(PODS, namespace=e.ns)
                for p in pods:
                    meta = p.metadata  # type: ignore[attr-defined]
                    if meta.finalizers:
                        with contextlib.suppress(api.APIError):
                            await c.patch(PODS, meta.name, {"metadata": {"finalizers": None}}, namespace=e.ns)
                    with contextlib.suppress(api.NotFound):
                        await c.delete(PODS, meta.name, namespace=e.ns, grace_period=1)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    left, _ = await c.list_all(PODS, namespace=e.ns)
                    if not left:
                        break
                    await asyncio.sleep(0.2)
                e.stop_procs("kubelet", "fake-kubelet", "fake-kubelet-2")
                nodes, _ = await c.list_all(NODES)
                for node in nodes:
                    name = node.metadata.name  # type: ignore[attr-defined]
                    if tag in name:
                        with contextlib.suppress(api.NotFound):
                            await c.delete(NODES, name)

        asyncio.run(delete_objects())
        e.stop_procs("controller-manager", "scheduler")
        asyncio.run(delete_pods_and_nodes())
        e.stop_all()
        kill_leftovers(e.tmp / "data")
        e.print_logs(3000)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> Any:
    return await poll(check, what, timeout=timeout, interval=0.5, retry_on=(AssertionError, KeyError, api.NotFound))


DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
spec:
  selector:
    matchLabels: {app: node-agent}
  template:
    metadata:
      labels: {app: node-agent}
    spec:
      nodeSelector: {run: "%s"}
      terminationGracePeriodSeconds: 1
      containers:
      - name: agent
        image: busybox
        command: [sleep, "3600"]
"""


async def test_daemonset_follows_the_nodes(env: Env) -> None:
    """One Running pod on each of the three fake nodes, bound by the scheduler; a fourth node
    that registers gets one; when it is removed its pod goes; `get ds` counts along."""
    created = await env.akpctl("create", "-f", "-", stdin=DAEMONSET % env.tag)
    assert created.returncode == 0 and created.stdout.strip() == "daemonset.apps/node-agent created", created.stderr

    async def running_on(nodes: set[str]) -> bool:
        pods = (await env.get("pods", selector="app=node-agent"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        on = [p["spec"].get("nodeName") for p in live if p["status"].get("phase") == "Running"]
        assert sorted(on) == sorted(nodes) and len(live) == len(nodes), [(p["metadata"]["name"], p["spec"].get(
            "nodeName"), p["status"].get("phase")) for p in live]
        return True

    async def ds_counts(desired: int) -> bool:
        st = (await env.get("ds", "node-agent")).get("status", {})
        assert (st.get("desiredNumberScheduled"), st.get("currentNumberScheduled"), st.get("numberReady"),
                st.get("updatedNumberScheduled"), st.get("numberAvailable")) == (desired,) * 5, st
        return True

    three = {f"f-{env.tag}-{i}" for i in range(3)}
    await eventually(lambda: running_on(three), "a daemon pod on each fake node", timeout=90)
    await eventually(lambda: ds_counts(3), "status 3/3")
    table = await env.akpctl("get", "ds", "node-agent")
    assert table.stdout.splitlines()[1].split()[:6] == ["node-agent", "3", "3", "3", "3", "3"], table.stdout
    env.fake_kubelet("fake-kubelet-2", f"g-{env.tag}", 1)
    four = three | {f"g-{env.tag}-0"}
    await eventually(lambda: running_on(four), "a daemon pod on the new node", timeout=90)
    await eventually(lambda: ds_counts(4), "status 4/4")
    stop_process(env.procs.pop("fake-kubelet-2"))
    deleted = await env.akpctl("delete", "node", f"g-{env.tag}-0")
    assert deleted.returncode == 0, deleted.stderr
    await eventually(lambda: running_on(three), "the removed node's pod gone", timeout=90)
    await eventually(lambda: ds_counts(3), "status back to 3")


def pinned(manifest: str, node: str, **spec: Any) -> str:
    """A kpctl-generated Job/CronJob manifest with its pods pinned to ``node`` (plus spec fields)."""
    obj = yaml.safe_load(manifest)
    job_spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    job_spec.update(spec)
    job_spec["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return json.dumps(obj)


async def test_job_runs_to_completion(env: Env) -> None:
    """`create job` (completions 3, parallelism 2) runs busybox `echo ok` to Complete on the real
    node; its pods printed ok and their tracking finalizers are gone."""
    generated = await env.akpctl("create", "job", "hello", "--image=busybox", "--dry-run=client", "-o", "yaml",
                                 "--", "sh", "-c", "echo ok")
    assert generated.returncode == 0, generated.stderr
    created = await env.akpctl("create", "-f", "-",
                               stdin=pinned(generated.stdout, env.real_node, completions=3, parallelism=2))
    assert created.returncode == 0 and created.stdout.strip() == "job.batch/hello created", created.stderr

    async def complete() -> dict[str, Any]:
        job = await env.get("job", "hello")
        st = job.get("status", {})
        conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
        assert conds.get("Complete") == "True", st
        return dict(st)

    st = await eventually(complete, "the job to complete", timeout=120)
    assert (st["succeeded"], st.get("failed", 0), st.get("active", 0)) == (3, 0, 0)
    table = await env.akpctl("get", "job", "hello")
    assert table.stdout.splitlines()[1].split()[:3] == ["hello", "Complete", "3/3"], table.stdout
    pods = (await env.get("pods", selector="batch.kubernetes.io/job-name=hello"))["items"]
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or []) for p in pods)
    logs = await env.akpctl("logs", pods[0]["metadata"]["name"])
    assert logs.stdout == "ok\n", logs.stderr


async def test_cronjob_fires_and_can_be_run_by_hand(env: Env) -> None:
    """A `*/1 * * * *` CronJob starts a Job at the next minute (named <cronjob>-<minutes>) that
    completes; `create job --from=cronjob/...` runs its template at once."""
    generated = await env.akpctl("create", "cronjob", "tick", "--image=busybox", "--schedule=*/1 * * * *",
                                 "--restart=Never", "--dry-run=client", "-o", "yaml", "--", "sh", "-c", "echo tick")
    assert generated.returncode == 0, generated.stderr
    created = await env.akpctl("create", "-f", "-", stdin=pinned(generated.stdout, env.real_node))
    assert created.returncode == 0 and created.stdout.strip() == "cronjob.batch/tick created", created.stderr
    manual = await env.akpctl("create", "job", "tick-by-hand", "--from=cronjob/tick")
    assert manual.returncode == 0 and manual.stdout.strip() == "job.batch/tick-by-hand created", manual.stderr
    by_hand = await env.get("job", "tick-by-hand")
    assert by_hand["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"

    async def scheduled_and_done() -> dict[str, Any]:
        jobs = [j for j in (await env.get("jobs"))["items"]
                if j["metadata"]["name"].startswith("tick-") and j["metadata"]["name"][len("tick-"):].isdigit()]
        assert jobs, "no scheduled job yet"
        job = jobs[0]
        name = job["metadata"]["name"]
        assert name.startswith("tick-") and name[len("tick-"):].isdigit()
        annotation = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        scheduled = datetime.fromisoformat(annotation.replace("Z", "+00:00"))
        assert int(name[len("tick-"):]) * 60 == int(scheduled.timestamp())
        conds = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions", [])}
        assert conds.get("Complete") == "True", job.get("status")
        cj = await env.get("cronjob", "tick")
        assert cj["status"].get("lastSuccessfulTime") and cj["status"].get("lastScheduleTime"), cj["status"]
        return dict(job)

    await eventually(scheduled_and_done, "a scheduled run to complete", timeout=150)

    async def by_hand_done() -> bool:
        conds = {c["type"]: c["status"] for c in (await env.get("job", "tick-by-hand")).get("status", {}).get(
            "conditions", [])}
        return conds.get("Complete") == "True"

    await eventually(by_hand_done, "the hand-made run to complete", timeout=60)


@pytest.mark.parametrize("args", [
    ["job", "a", "--image=busybox", "--", "sh", "-c", "echo ok"],
    ["job", "a", "--image=busybox", "-n", "foo"],
    ["cronjob", "c1", "--image=busybox", "--schedule=*/1 * * * *", "--", "sh", "-c", "echo ok"],
    ["cronjob", "c1", "--image=busybox", "--schedule=*/1 * * * *", "--restart=Never"],
])
def test_dry_run_output_matches_kubectl(apiserver: APIServer, args: list[str]) -> None:
    """`kpctl create job|cronjob --dry-run=client -o yaml` prints what kubectl prints."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl on PATH to compare with")
    flags = ["--dry-run=client", "-o", "yaml"]
    at = args.index("--") if "--" in args else len(args)
    argv = ["create", *args[:at], *flags, *args[at:]]
    want = subprocess.run([kubectl, *argv], capture_output=True, text=True, timeout=60)
    got = kpctl(apiserver.address, *argv)
    assert got.returncode == want.returncode == 0, got.stderr
    assert got.stdout == want.stdout
