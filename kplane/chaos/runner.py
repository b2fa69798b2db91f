"""Run a scenario against the `kplane up` cluster: record, act, check, report.

1. Connect (the cluster's state file and control channel, kplane.chaos.faults), wait until the
   scenario's required number of nodes is Ready, (re)create the scenario's namespace.
2. Record: one reflector each for nodes and, in the namespace, pods, Deployments, ReplicaSets and
   DaemonSets; every list/watch result becomes a timeline entry (a summary of the object with its
   resourceVersion) and updates a live State that `wait` steps poll.
3. Steps in order; a fault is preceded by a canary ConfigMap write (an acknowledged write that
   must survive) and recorded with its FaultRecord. A failed step (a wait that times out, an API
   error, a fault that cannot be done) ends the steps; the checks still run.
4. Settle: wait (up to the bounds) until the namespace has converged, read every acknowledged
   write back, stop recording, check the invariants and expectations, compute recovery times.
5. Delete the namespace; the caller renders the report.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplane.chaos import invariants as inv
from kplane.chaos.faults import ChaosError, Cluster, FaultRecord
from kplane.chaos.record import Entry, State, Timeline, owned_by, serving, summarize
from kplane.chaos.scenario import Scenario, Step
from kplane.cluster.spec import PROFILES

WATCHED = (("nodes", False), ("pods", True), ("deployments", True), ("replicasets", True), ("daemonsets", True))


@dataclass
class StepOutcome:
    index: int
    title: str
    action: str
    t0: float
    t1: float = 0.0
    ok: bool = True
    detail: str = ""


@dataclass
class RunResult:
    scenario: Scenario
    profile: str
    start: float
    end: float = 0.0
    steps: list[StepOutcome] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    invariants: list[inv.Result] = field(default_factory=list)
    expectations: list[inv.Result] = field(default_factory=list)
    recoveries: list[inv.Recovery] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    acks: list[inv.Ack] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (all(s.ok for s in self.steps)
                and all(r.held is not False for r in self.invariants)
                and all(r.held is not False for r in self.expectations))

    def to_json(self) -> dict[str, Any]:
        prof = PROFILES.get(self.profile)
        return {
            "scenario": self.scenario.name, "description": self.scenario.description,
            "namespace": self.scenario.namespace, "profile": self.profile,
            "grace": prof.node_monitor_grace if prof else None, "toleration": prof.toleration if prof else None,
            "bounds": self.scenario.bounds.__dict__, "start": self.start, "end": self.end, "ok": self.ok,
            "steps": [s.__dict__ for s in self.steps], "faults": [f.to_json() for f in self.faults],
            "invariants": [r.__dict__ for r in self.invariants],
            "expectations": [r.__dict__ for r in self.expectations],
            "recoveries": [r.to_json() for r in self.recoveries], "notes": self.notes,
        }


class _RecordingStore:
    """A reflector store that turns every list/watch result into a timeline entry."""

    def __init__(self, runner: Runner, resource: str) -> None:
        self.runner = runner
        self.resource = resource
        self.known: dict[tuple[str, str], Any] = {}

    def _emit(self, etype: str, obj: Any) -> None:
        from kplane.api.codec import to_dict

        meta = obj.metadata
        d = to_dict(obj)
        self.runner.record(Entry(t=time.time(), kind="watch", type=etype, resource=self.resource,
                                 namespace=meta.namespace, name=meta.name, rv=int(meta.resourceVersion or 0),
                                 obj=summarize(self.resource, d)))

    def add(self, obj: Any) -> None:
        self.known[(obj.metadata.namespace, obj.metadata.name)] = obj
        self._emit("ADDED", obj)

    def update(self, obj: Any) -> None:
        self.known[(obj.metadata.namespace, obj.metadata.name)] = obj
        self._emit("MODIFIED", obj)

    def delete(self, obj: Any) -> None:
        self.known.pop((obj.metadata.namespace, obj.metadata.name), None)
        self._emit("DELETED", obj)

    def replace(self, objs: Any, resource_version: str) -> None:
        fresh = {(o.metadata.namespace, o.metadata.name): o for o in objs}
        for key, old in list(self.known.items()):
            if key not in fresh:
                self.delete(old)
        for key, o in fresh.items():
            old = self.known.get(key)
            if old is None:
                self.add(o)
            elif old.metadata.resourceVersion != o.metadata.resourceVersion:
                self.update(o)
        self.runner.synced.add(self.resource)


class Runner:
    def __init__(self, scenario: Scenario, cluster: Cluster, *, say: Callable[[str], None] = print) -> None:
        self.scenario = scenario
        self.cluster = cluster
        self.ns = scenario.namespace
        self._say = say
        self.state = State()
        self.timeline = Timeline()
        self.synced: set[str] = set()
        self.vars: dict[str, str] = {}
        self.result = RunResult(scenario=scenario, profile=cluster.profile, start=time.time(),
                                timeline=self.timeline)
        self._client: Any = None

    def say(self, msg: str) -> None:
        self._say(f"+{time.time() - self.result.start:6.1f}s  {msg}")

    def record(self, e: Entry) -> None:
        self.timeline.add(e)
        self.state.apply(e)

    # -- the run ----------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        from kplane.client.client import Client
        from kplane.client.informer import Reflector

        sc = self.scenario
        if sc.requires_profile and sc.requires_profile != self.cluster.profile:
            note = (f"this scenario is written for `kplane up --profile {sc.requires_profile}`; the cluster runs "
                    f"the {self.cluster.profile} profile, so its bounds may not hold")
            self.result.notes.append(note)
            self.say(f"warning: {note}")
        await self._check_control_plane()
        async with Client([self.cluster.apiserver], identity="kplane-chaos", timeout=15.0) as client:
            self._client = client
            await self._wait_nodes(client)
            await self._fresh_namespace(client)
            from kplane.api.resources import resolve

            reflectors = [Reflector(client, resolve(r), _RecordingStore(self, r), namespace=self.ns if namespaced else "")
                          for r, namespaced in WATCHED]
            tasks = [asyncio.create_task(r.run()) for r in reflectors]
            try:
                await self._until(lambda: len(self.synced) == len(WATCHED), 30.0, "the recorder to list everything")
                self.say(f"scenario {sc.name}: {len(sc.steps)} steps in namespace {self.ns} "
                         f"(profile {self.cluster.profile})")
                for step in sc.steps:
                    if not await self._step(step):
                        break
                await self._settle()
                await self._read_back(client)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            self.result.end = time.time()
            self._check()
            await self._cleanup(client)
        return self.result

    async def _until(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise ChaosError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.2)

    async def _check_control_plane(self) -> None:
        """Refuse to start when the scenario needs standbys the cluster does not run."""
        want = self.scenario.requires_control_plane_replicas
        if want <= 1:
            return
        comps = await self.cluster.components()
        for role in ("scheduler", "controller-manager"):
            have = sum(1 for c in comps if (c.get("extra") or {}).get("role") == role and c.get("pid") is not None)
            if have < want:
                raise ChaosError(f"the scenario needs {want} {role} processes (a leader and standbys); the cluster "
                                 f"runs {have}: start it with `kplane up --control-plane-replicas {want}` (or bring a killed one "
                                 f"back with `kplane chaos restart {role}`)")

    async def _wait_nodes(self, client: Any) -> None:
        from kplane.api.resources import resolve

        want = self.scenario.requires_nodes
        deadline = time.monotonic() + 90.0
        while True:
            nodes, _ = await client.list_all(resolve("nodes"))
            ready = [n.metadata.name for n in nodes
                     if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
                     and not n.metadata.name.startswith("fake-")]
            if len(ready) >= want:
                return
            if time.monotonic() > deadline:
                raise ChaosError(f"the scenario needs {want} Ready node(s); the cluster has {len(ready)} "
                                 f"({', '.join(ready) or 'none'}): start it with `kplane up --nodes {want}`")
            await asyncio.sleep(1.0)

    async def _fresh_namespace(self, client: Any) -> None:
        from kplane.api import errors as api
        from kplane.api.resources import resolve

        nss = resolve("namespaces")
        try:
            await client.get(nss, self.ns)
            self.say(f"namespace {self.ns} is left from an earlier run; deleting it first")
            await client.delete(nss, self.ns)
            deadline = time.monotonic() + 90.0
            while time.monotonic() < deadline:
                try:
                    await client.get(nss, self.ns)
                except api.NotFound:
                    break
                await asyncio.sleep(0.5)
            else:
                raise ChaosError(f"namespace {self.ns} is still terminating after 90s")
        except api.NotFound:
            pass
        await client.create(nss, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})

    async def _cleanup(self, client: Any) -> None:
        from kplane.api import errors as api
        from kplane.api.resources import resolve

        try:
            await client.delete(resolve("namespaces"), self.ns)
        except api.APIError as e:
            self.result.notes.append(f"could not delete namespace {self.ns}: {e}")

    # -- steps ----------------------------------------------------------------------------------------

    async def _step(self, step: Step) -> bool:
        from kplane.api import errors as api

        out = StepOutcome(step.index, step.title(), step.action, time.time())
        self.result.steps.append(out)
        self.record(Entry(t=out.t0, kind="step", type="start", name=out.title, obj={"index": step.index}))
        try:
            out.detail = await self._do(step) or ""
        except (ChaosError, api.APIError, OSError, ValueError) as e:
            out.ok = False
            out.detail = str(e)
        out.t1 = time.time()
        self.record(Entry(t=out.t1, kind="step", type="done" if out.ok else "failed", name=out.title,
                          obj={"index": step.index, "detail": out.detail}))
        mark = "ok" if out.ok else "FAILED"
        self.say(f"[{step.index}] {out.title}: {mark}{' — ' + out.detail if out.detail else ''}")
        return out.ok

    async def _do(self, step: Step) -> str | None:
        a, args = step.action, step.args
        if a == "apply":
            return await self._apply(args)
        if a == "scale":
            from kplane.api.resources import resolve

            kind, name = args["target"].split("/", 1)
            await self._client.update_scale(resolve(kind), name, args["replicas"], namespace=self.ns)
            return f"{args['target']} scaled to {args['replicas']}"
        if a == "set-image":
            return await self._set_image(args)
        if a == "wait":
            return await self._wait(args)
        if a == "sleep":
            await asyncio.sleep(args["duration"])
            return None
        if a == "expect":
            return self._expect(args)
        return await self._fault(step)

    async def _apply(self, args: dict[str, Any]) -> str:
        from kplane.api import errors as api
        from kplane.api.resources import for_kind
        from kplane.cli.manifests import parse_documents

        if "file" in args:
            objs = parse_documents(Path(args["file"]).read_text(encoding="utf-8"), args["file"])
        else:
            objs = copy.deepcopy(args["manifest"])
        done = []
        for obj in objs:
            rt = for_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
            meta = obj.setdefault("metadata", {})
            if rt.namespaced:
                meta.setdefault("namespace", self.ns)
            try:
                created = await self._client.create(rt, obj)
                verb = "created"
            except api.AlreadyExists:
                created = await self._client.patch(rt, meta["name"], obj, namespace=meta.get("namespace", ""))
                verb = "configured"
            m = created.metadata
            self.result.acks.append(inv.Ack(rt.plural, m.namespace, m.name, m.uid, int(m.resourceVersion), time.time()))
            done.append(f"{rt.singular}/{m.name} {verb}")
        return ", ".join(done)

    async def _set_image(self, args: dict[str, Any]) -> str:
        from kplane.api.codec import to_dict
        from kplane.api.resources import resolve

        kind, name = args["target"].split("/", 1)
        rt = resolve(kind)
        obj = to_dict(await self._client.get(rt, name, namespace=self.ns))
        containers = obj["spec"]["template"]["spec"]["containers"]
        match = [c for c in containers if c.get("name") == args["container"]]
        if not match:
            raise ChaosError(f"{args['target']} has no container {args['container']!r} "
                             f"(it has {', '.join(c.get('name', '?') for c in containers)})")
        match[0]["image"] = args["image"]
        await self._client.update(rt, obj, namespace=self.ns)
        return f"{args['target']} container {args['container']} image {args['image']}"

    def _node(self, ref: str) -> str:
        if ref.startswith("$"):
            return self.vars[ref[1:]]
        return ref

    def _last_fault_on(self, node: str) -> float | None:
        times = [f.time for f in self.result.faults if f.target == node and f.fault in inv.NODE_LOSS_FAULTS]
        return times[-1] if times else None

    async def _wait(self, args: dict[str, Any]) -> str:
        cond, timeout = args["for"], args["timeout"]
        t0 = time.time()
        if "target" in args:
            pred = self._workload_pred(cond, args["target"])
            what = f"{args['target']} {cond}"
        else:
            node = self._node(args["node"])
            pred = self._node_pred(cond, node)
            what = f"node {node} {cond}"
        try:
            await self._until(pred, timeout, what)
        except ChaosError:
            raise ChaosError(f"{what}: not within {timeout:.0f}s") from None
        return f"{what} after {time.time() - t0:.1f}s"

    def _workload_pred(self, cond: str, target: str) -> Callable[[], bool]:
        kind, name = target.split("/", 1)

        def pred() -> bool:
            d = self.state.objects.get((kind, self.ns, name))
            if d is None:
                return False
            if d.get("status.observedGeneration", 0) < d.get("generation", 0):
                return False
            if kind == "daemonsets":
                want = d.get("status.desiredNumberScheduled", 0)
                return bool(want) and d.get("status.numberReady") == want
            want = d.get("replicas", 0)
            if d.get("status.availableReplicas") != want or d.get("status.updatedReplicas", want) != want:
                return False
            if cond == "rolled-out":  # every pod (all ReplicaSets counted) is of the new template
                return bool(d.get("status.replicas") == want)
            return True

        return pred

    def _node_pred(self, cond: str, node: str) -> Callable[[], bool]:
        def pred() -> bool:
            n = self.state.node(node)
            if n is None:
                return False
            if cond == "ready":
                return n.get("ready") == "True"
            if cond == "not-ready":
                return n.get("ready") != "True"
            tainted = any(t.endswith(":NoExecute") and t.split(":")[0].startswith("node.kubernetes.io/")
                          for t in n.get("taints") or [])
            if cond == "tainted":
                return tainted
            if cond == "untainted":
                return not tainted
            # evicted: every pod bound to the node at its last fault is deleted or terminating
            since = self._last_fault_on(node)
            if since is None:
                raise ChaosError(f"wait for evicted: no fault on {node} yet")
            rec = [r for r in inv.recovery_times(self._sorted()) if r.node == node]
            return bool(rec) and rec[-1].evicted == rec[-1].pods

        return pred

    def _sorted(self) -> Timeline:
        return Timeline(sorted(self.timeline.entries, key=lambda e: e.t))

    def _expect(self, args: dict[str, Any]) -> str:
        kind = args["expect"]
        tl = self._sorted()
        if kind == "no-evictions":
            r = inv.expect_no_evictions(tl, self.ns, args.get("target"))
        elif kind == "evicted":
            r = inv.expect_evicted(tl, self._node(args["node"]), args["within"])
        elif kind == "max-pods":
            r = inv.expect_max_pods(tl, self.ns, args["target"], args["max"])
        else:
            r = inv.expect_pods(self.state, self.ns, args["target"], args["count"])
        self.result.expectations.append(r)
        if not r.held:
            raise ChaosError(f"{r.name}: {r.summary}{'; ' + '; '.join(r.evidence[:3]) if r.evidence else ''}")
        return r.summary

    async def _fault(self, step: Step) -> str:
        a, args = step.action, step.args
        await self._canary(len(self.result.faults))
        if a in ("kill-node", "freeze-node", "thaw-node", "restart-node"):
            node = self._node(args["node"]) if "node" in args else self._node_of(args["nodeOf"])
            if "as" in args:
                self.vars[args["as"]] = node
            fn = {"kill-node": self.cluster.kill_node, "freeze-node": self.cluster.freeze_node,
                  "thaw-node": self.cluster.thaw_node, "restart-node": self.cluster.restart_node}[a]
            rec = await fn(node)
        elif a == "kill-etcd":
            rec = await self.cluster.kill("etcd")
        elif a == "kill":
            rec = await self.cluster.kill(args["component"], leader=args.get("leader", False))
        else:
            rec = await self.cluster.restart(args["component"])
        self.result.faults.append(rec)
        self.record(Entry(t=rec.time, kind="fault", type=rec.fault, name=rec.target, rv=rec.revision or 0,
                          obj=rec.to_json()))
        return f"{rec.fault} {rec.target}: {rec.detail}"

    def _node_of(self, target: str) -> str:
        counts: dict[str, int] = {}
        for ns, _, p in self.state.pods():
            if ns == self.ns and serving(p, self.state) and owned_by(self.state, ns, target, p):
                counts[p["node"]] = counts.get(p["node"], 0) + 1
        if not counts:
            raise ChaosError(f"no Running pod of {target} to pick a node by")
        return max(sorted(counts), key=lambda n: counts[n])

    async def _canary(self, i: int) -> None:
        """An acknowledged write just before fault ``i``: it must outlive every fault."""
        from kplane.api import errors as api
        from kplane.api.resources import resolve

        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"chaos-ack-{i}", "namespace": self.ns},
                "data": {"before-fault": str(i), "written": f"{time.time():.3f}"}}
        try:
            cm = await asyncio.wait_for(self._client.create(resolve("configmaps"), body), 10.0)
        except (api.APIError, TimeoutError) as e:
            self.result.notes.append(f"no canary write before fault {i}: {e}")
            return
        m = cm.metadata
        self.result.acks.append(inv.Ack("configmaps", m.namespace, m.name, m.uid, int(m.resourceVersion), time.time()))

    # -- the end ----------------------------------------------------------------------------------

    async def _settle(self) -> None:
        """Give the cluster until the bounds after the last fault to converge before checking."""
        sc = self.scenario
        last = max((f.time for f in self.result.faults), default=self.result.start)
        deadline = last + max(sc.bounds.converge, sc.bounds.restore)
        converged = lambda: all(inv._converged(self.state, self.ns).values()) and \
            all(inv._workload_serving(self.state, self.ns).values())  # noqa: E731
        while time.time() < deadline and not converged():
            await asyncio.sleep(0.25)
        if any(True for ns, _, _ in self.state.of("daemonsets") if ns == self.ns):
            quiet = max([last, *(e.t for e in self.timeline.entries if e.resource == "nodes" and e.type != "MODIFIED")])
            wait = quiet + sc.bounds.settle - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        await asyncio.sleep(0.5)  # the last watch events in flight

    async def _read_back(self, client: Any) -> None:
        from kplane.api import errors as api
        from kplane.api.resources import resolve

        self.present: dict[tuple[str, str, str], str | None] = {}
        for a in self.result.acks:
            try:
                obj = await client.get(resolve(a.resource), a.name, namespace=a.namespace)
                self.present[(a.resource, a.namespace, a.name)] = obj.metadata.uid
            except api.NotFound:
                self.present[(a.resource, a.namespace, a.name)] = None

    def _check(self) -> None:
        sc = self.scenario
        tl = self._sorted()
        self.result.timeline = tl
        self.result.invariants = inv.check_all(tl, self.ns, converge=sc.bounds.converge, restore=sc.bounds.restore,
                                               settle=sc.bounds.settle, enabled=sc.invariants,
                                               acks=self.result.acks, present=getattr(self, "present", None))
        self.result.recoveries = inv.recovery_times(tl)


def write_timeline(result: RunResult, path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for e in result.timeline.entries:
            fh.write(json.dumps(e.to_json()) + "\n")
