"""Invariants checked over a recorded timeline, and recovery times per node fault.

Every check is a pure function of a :class:`~kplane.chaos.record.Timeline` (plus, for lost writes,
what the runner read back at the end), so a recorded run can be re-checked offline and each check
is tested on hand-written timelines.

*After a fault* means the fault's window: from the fault to the next fault (or the end of the run).
A property "recovers within B" when it holds at the end of the window and the stretch during
which it has held started at most B seconds after the fault.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kplane.chaos.record import NO_EXECUTE_KEYS, Entry, State, Timeline, active, owned_by, replay, serving

NODE_LOSS_FAULTS = ("kill-node", "freeze-node")


@dataclass
class Result:
    name: str
    held: bool | None  # None: nothing to check (e.g. no DaemonSet)
    summary: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class Recovery:
    """Seconds from a node fault to each stage of the control plane's answer (None: not seen)."""

    fault: str
    node: str
    t: float
    detection: float | None = None  # Ready went True -> Unknown/False
    taint: float | None = None  # a NoExecute not-ready/unreachable taint appeared
    eviction_first: float | None = None  # first of the node's pods deleted (or terminating)
    eviction_last: float | None = None
    replacement_running: float | None = None  # the last replacement pod Running elsewhere
    pods: int = 0  # pods on the node at the fault
    evicted: int = 0
    replaced: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _rel(t: float | None, t0: float) -> str:
    return "-" if t is None else f"+{t - t0:.1f}s"


def windows(timeline: Timeline) -> list[tuple[Entry, float]]:
    """Each fault with the end of its window (the next fault's time, or the end of the run)."""
    faults = timeline.faults()
    out = []
    for i, f in enumerate(faults):
        end = faults[i + 1].t if i + 1 < len(faults) else timeline.end
        out.append((f, end))
    return out


def _fault_label(f: Entry) -> str:
    return f"{f.obj.get('fault')} {f.obj.get('target')}"


def _recovered(timeline: Timeline, t0: float, t1: float,
               preds: Callable[[State], dict[str, bool]]) -> dict[str, tuple[bool, float | None]]:
    """Per subject: (holds at t1, when its final stretch of holding started), over [t0, t1]."""
    holds: dict[str, bool] = {}
    since: dict[str, float] = {}
    for e, state in replay(timeline):
        if e.t < t0:
            continue
        if e.t > t1:
            break
        for k, now in preds(state).items():
            if now and not holds.get(k):
                since[k] = e.t
            holds[k] = now
    return {k: (h, since.get(k) if h else None) for k, h in holds.items()}


def _state_at(timeline: Timeline, t: float) -> State:
    last = State()
    for e, state in replay(timeline):
        if e.t > t:
            break
        last = state
    return last


def _bounded(name: str, timeline: Timeline, bound: float, what: str,
             preds: Callable[[State], dict[str, bool]]) -> Result:
    """Shared shape of replicas-restored and converged: per fault window, per subject."""
    wins = windows(timeline)
    if not wins:
        state = _state_at(timeline, timeline.end)
        bad = [k for k, ok in preds(state).items() if not ok]
        return Result(name, not bad, f"no faults; {what} at the end" + (f" except {', '.join(bad)}" if bad else ""),
                      [f"{k}: not {what} at the end of the run" for k in bad])
    evidence, violated = [], False
    for f, end in wins:
        subjects = preds(_state_at(timeline, f.t)).keys()
        outcome = _recovered(timeline, f.t, end, preds)
        worst = 0.0
        for subject in subjects:
            holds, since = outcome.get(subject, (True, f.t))
            if holds and since is not None:
                took = max(0.0, since - f.t)
                worst = max(worst, took)
                if took > bound:
                    violated = True
                    evidence.append(f"{subject}: {what} only {took:.1f}s after {_fault_label(f)} (bound {bound:.0f}s)")
            elif end - f.t >= bound or f is wins[-1][0]:
                violated = True
                evidence.append(f"{subject}: not {what} within {end - f.t:.1f}s after {_fault_label(f)} "
                                f"(bound {bound:.0f}s)")
            else:
                evidence.append(f"{subject}: not checked after {_fault_label(f)}: the next fault came "
                                f"{end - f.t:.1f}s later, before the {bound:.0f}s bound")
        if subjects:
            evidence.append(f"after {_fault_label(f)}: {what} within {worst:.1f}s")
    n = len(wins)
    summary = (f"{what} within {bound:.0f}s after each of {n} fault(s)" if not violated
               else f"not {what} within {bound:.0f}s after a fault")
    return Result(name, not violated, summary, evidence)


# -- replicas restored (ground truth: pods really running and Ready) -------------------------------


def _workload_serving(state: State, namespace: str) -> dict[str, bool]:
    out = {}
    for kind in ("deployments", "replicasets"):
        for ns, name, obj in state.of(kind):
            if ns != namespace or (kind == "replicasets" and obj.get("owner")):
                continue  # a Deployment's ReplicaSets are counted as the Deployment
            target = f"{kind}/{name}"
            n = sum(1 for pns, _, p in state.pods() if pns == ns and serving(p, state) and owned_by(state, ns, target, p))
            out[f"{kind[:-1]} {ns}/{name}"] = n >= int(obj.get("replicas", 0))
    return out


def check_replicas_restored(timeline: Timeline, namespace: str, bound: float) -> Result:
    """Every Deployment/ReplicaSet has spec.replicas pods Running and Ready on live nodes again
    within ``bound`` after every fault."""
    return _bounded("replicas-restored", timeline, bound, "restored", lambda s: _workload_serving(s, namespace))


# -- converged (what the controllers report, and nothing pending) -----------------------------------


def _converged(state: State, namespace: str) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for ns, name, d in state.of("deployments"):
        if ns == namespace:
            want = d.get("replicas", 0)
            out[f"deployment {ns}/{name}"] = (
                d.get("status.observedGeneration", 0) >= d.get("generation", 0)
                and d.get("status.replicas") == want and d.get("status.updatedReplicas") == want
                and d.get("status.availableReplicas") == want)
    for ns, name, d in state.of("daemonsets"):
        if ns == namespace:
            out[f"daemonset {ns}/{name}"] = (d.get("status.observedGeneration", 0) >= d.get("generation", 0)
                                             and d.get("status.numberReady") == d.get("status.desiredNumberScheduled"))
    pending = [n for ns, n, p in state.pods() if ns == namespace and active(p) and not p.get("node")]
    stranded = [n for ns, n, p in state.pods() if ns == namespace and active(p) and p.get("node") in state.down]
    out["no pending pods"] = not pending
    out["no pods left on lost nodes"] = not stranded
    return out


def check_converged(timeline: Timeline, namespace: str, bound: float) -> Result:
    """After every fault, within ``bound``: every Deployment reports all replicas updated and
    available, every DaemonSet all ready, no pod waits unscheduled, no live pod is left on a
    killed node."""
    return _bounded("converged", timeline, bound, "converged", lambda s: _converged(s, namespace))


# -- no duplicate pods ----------------------------------------------------------------------------------


def check_no_duplicates(timeline: Timeline) -> Result:
    """A pod (by UID) is never seen on two nodes, and a pod name never has two live incarnations."""
    node_of: dict[str, str] = {}
    live_uid: dict[tuple[str, str], str] = {}
    evidence = []
    for e in timeline.entries:
        if e.kind != "watch" or e.resource != "pods":
            continue
        uid, node = e.obj.get("uid", ""), e.obj.get("node", "")
        key = (e.namespace, e.name)
        if e.type == "DELETED":
            if live_uid.get(key) == uid:
                live_uid.pop(key)
            continue
        if uid and node:
            first = node_of.setdefault(uid, node)
            if first != node:
                evidence.append(f"pod {e.namespace}/{e.name} (uid {uid[:8]}) on {first} and then on {node} "
                                f"at revision {e.rv}")
        other = live_uid.get(key)
        if other and other != uid:
            evidence.append(f"pod {e.namespace}/{e.name}: uid {uid[:8]} appeared at revision {e.rv} while uid "
                            f"{other[:8]} was not deleted")
        live_uid[key] = uid
    n = len(node_of)
    return Result("no-duplicate-pods", not evidence,
                  f"{n} pods, each on one node, one incarnation per name at a time" if not evidence
                  else f"{len(evidence)} duplicate(s)", evidence[:20])


# -- allocatable ------------------------------------------------------------------------------------------


def check_allocatable(timeline: Timeline) -> Result:
    """No node ever holds pods whose requests exceed its allocatable cpu, memory or pod count."""
    evidence: list[str] = []
    seen: set[tuple[str, str]] = set()
    checks = 0
    for e, state in replay(timeline):
        if e.kind != "watch" or e.resource not in ("pods", "nodes"):
            continue
        node = e.name if e.resource == "nodes" else e.obj.get("node", "")
        n = state.node(node) if node else None
        if n is None:
            continue
        alloc = n.get("allocatable") or {}
        used = {"cpu": 0, "memory": 0, "pods": 0}
        for _, _, p in state.pods():
            if p.get("node") == node and p.get("phase") not in ("Succeeded", "Failed"):
                used["cpu"] += p.get("requests", {}).get("cpu", 0)
                used["memory"] += p.get("requests", {}).get("memory", 0)
                used["pods"] += 1
        checks += 1
        for res, amount in used.items():
            if res in alloc and amount > alloc[res] and (node, res) not in seen:
                seen.add((node, res))
                evidence.append(f"{node}: {res} requests {amount} > allocatable {alloc[res]} at revision {e.rv}")
    return Result("allocatable", not evidence,
                  f"requests within allocatable on every node ({checks} checks)" if not evidence
                  else "a node was overcommitted", evidence)


# -- DaemonSet coverage ------------------------------------------------------------------------------------

_DAEMON_TOLERATIONS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                       "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                       "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable"}


def _tolerates(tolerations: list[str], taint: str) -> bool:
    key, _, effect = taint.partition(":")
    if effect not in ("NoSchedule", "NoExecute"):
        return True
    if key in _DAEMON_TOLERATIONS:
        return True
    for t in tolerations:
        tkey, op, teffect = [*t.split(":"), "", "", ""][:3]
        if (not teffect or teffect == effect) and ((op == "Exists" and not tkey) or tkey == key):
            return True
    return False


def check_daemonsets(timeline: Timeline, namespace: str, settle: float) -> Result:
    """At the end (nodes quiet for ``settle`` seconds), every DaemonSet has exactly one live pod on
    every Ready node it is eligible for (nodeSelector, taints) and none on other nodes."""
    state = _state_at(timeline, timeline.end)
    dss = [(ns, name, d) for ns, name, d in state.of("daemonsets") if ns == namespace]
    if not dss:
        return Result("daemonset-coverage", None, "no DaemonSet in the scenario")
    last_node_change = max((e.t for e in timeline.entries if e.kind == "watch" and e.resource == "nodes"
                            and e.type != "MODIFIED"), default=timeline.start)
    ready_changes = [e.t for e in timeline.entries if e.kind == "fault"]
    quiet_since = max([last_node_change, *ready_changes])
    if timeline.end - quiet_since < settle:
        return Result("daemonset-coverage", None,
                      f"not checked: nodes changed {timeline.end - quiet_since:.1f}s before the end (settle {settle:.0f}s)")
    evidence = []
    for ns, name, d in dss:
        target = f"daemonsets/{name}"
        per_node: dict[str, int] = defaultdict(int)
        for pns, _, p in state.pods():
            if pns == ns and active(p) and p.get("owner") == target and p.get("node"):
                per_node[p["node"]] += 1
        eligible = []
        for _, node, n in state.of("nodes"):
            if n.get("ready") != "True" or node in state.down:
                continue
            labels = n.get("labels") or {}
            if any(labels.get(k) != v for k, v in (d.get("nodeSelector") or {}).items()):
                continue
            if not all(_tolerates(d.get("tolerations") or [], t) for t in n.get("taints") or []):
                continue
            eligible.append(node)
        for node in eligible:
            if per_node.get(node, 0) != 1:
                evidence.append(f"daemonset {ns}/{name}: {per_node.get(node, 0)} pods on eligible node {node}")
        for node, count in per_node.items():
            if node not in eligible and count:
                n = state.node(node) or {}
                if n.get("ready") == "True" and node not in state.down:
                    evidence.append(f"daemonset {ns}/{name}: {count} pod(s) on ineligible node {node}")
    return Result("daemonset-coverage", not evidence,
                  f"{len(dss)} DaemonSet(s): one pod per ready eligible node" if not evidence
                  else "a DaemonSet does not cover its nodes", evidence)


# -- acknowledged writes ---------------------------------------------------------------------------------


@dataclass
class Ack:
    """A write the apiserver acknowledged: the object must still exist (same UID) at the end."""

    resource: str
    namespace: str
    name: str
    uid: str
    rv: int
    t: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_acknowledged(acks: list[Ack], present: dict[tuple[str, str, str], str | None], faults: int) -> Result:
    """Every acknowledged write (objects the run created, one canary ConfigMap before each fault)
    is still there at the end with the same UID."""
    evidence = []
    for a in acks:
        uid = present.get((a.resource, a.namespace, a.name))
        if uid is None:
            evidence.append(f"{a.resource} {a.namespace}/{a.name} (written at revision {a.rv}) is gone")
        elif uid != a.uid:
            evidence.append(f"{a.resource} {a.namespace}/{a.name} (written at revision {a.rv}) was replaced: "
                            f"uid {a.uid[:8]} -> {uid[:8]}")
    return Result("no-lost-writes", not evidence,
                  f"{len(acks)} acknowledged writes all present after {faults} fault(s)" if not evidence
                  else f"{len(evidence)} acknowledged write(s) lost", evidence)


# -- recovery times ------------------------------------------------------------------------------------------


def recovery_times(timeline: Timeline) -> list[Recovery]:
    """Per kill-node/freeze-node: detection, taint, eviction and replacement, relative to the fault;
    a node's window ends when it is thawed/restarted (or at the end)."""
    out = []
    faults = timeline.faults()
    for f in faults:
        kind, node = str(f.obj.get("fault")), str(f.obj.get("target"))
        if kind not in NODE_LOSS_FAULTS:
            continue
        end = next((g.t for g in faults if g.t > f.t and g.obj.get("target") == node
                    and g.obj.get("fault") in ("thaw-node", "restart-node")), timeline.end)
        state = _state_at(timeline, f.t)
        on_node = {p["uid"]: (ns, name, p.get("owner", "")) for ns, name, p in state.pods()
                   if p.get("node") == node and active(p)}
        r = Recovery(kind, node, f.t, pods=len(on_node))
        evicted: dict[str, float] = {}
        replacements: dict[str, list[float]] = defaultdict(list)
        new_seen: set[str] = set()
        running_new: set[str] = set()
        for e in timeline.entries:
            if e.t < f.t or e.t > end or e.kind != "watch":
                continue
            if e.resource == "nodes" and e.name == node:
                if r.detection is None and e.obj.get("ready") != "True":
                    r.detection = e.t - f.t
                if r.taint is None and any(t.split(":")[0] in NO_EXECUTE_KEYS and t.endswith(":NoExecute")
                                           for t in e.obj.get("taints") or []):
                    r.taint = e.t - f.t
            elif e.resource == "pods":
                uid = e.obj.get("uid", "")
                if uid in on_node:
                    if uid not in evicted and (e.type == "DELETED" or e.obj.get("deleting")):
                        evicted[uid] = e.t - f.t
                elif e.obj.get("owner") and e.obj.get("node") != node:
                    if e.type == "ADDED":
                        new_seen.add(uid)
                    if uid in new_seen and uid not in running_new and e.obj.get("phase") == "Running" \
                            and e.type != "DELETED":
                        running_new.add(uid)
                        replacements[e.obj["owner"]].append(e.t - f.t)
        if evicted:
            r.evicted = len(evicted)
            r.eviction_first, r.eviction_last = min(evicted.values()), max(evicted.values())
            need: dict[str, int] = defaultdict(int)
            for uid in evicted:
                owner = on_node[uid][2]
                if owner:
                    need[owner] += 1
            lasts = []
            for owner, k in need.items():
                times = sorted(replacements.get(owner, []))
                r.replaced += min(k, len(times))
                if len(times) >= k:
                    lasts.append(times[k - 1])
            if lasts and r.replaced == sum(need.values()):
                r.replacement_running = max(lasts)
        out.append(r)
    return out


def check_all(timeline: Timeline, namespace: str, *, converge: float, restore: float, settle: float,
              enabled: tuple[str, ...], acks: list[Ack] | None = None,
              present: dict[tuple[str, str, str], str | None] | None = None) -> list[Result]:
    results = []
    for name in enabled:
        if name == "replicas-restored":
            results.append(check_replicas_restored(timeline, namespace, restore))
        elif name == "no-duplicate-pods":
            results.append(check_no_duplicates(timeline))
        elif name == "allocatable":
            results.append(check_allocatable(timeline))
        elif name == "daemonset-coverage":
            results.append(check_daemonsets(timeline, namespace, settle))
        elif name == "no-lost-writes":
            if acks is None or present is None:
                results.append(Result(name, None, "not checked: no acknowledged writes recorded"))
            else:
                results.append(check_acknowledged(acks, present, len(timeline.faults())))
        elif name == "converged":
            results.append(check_converged(timeline, namespace, converge))
    return results


# -- expectations (scenario `expect` steps), evaluated on the timeline so far -------------------------------


def _pods_of(state: State, namespace: str, target: str | None, p: dict[str, Any]) -> bool:
    return target is None or owned_by(state, namespace, target, p)


def expect_no_evictions(timeline: Timeline, namespace: str, target: str | None) -> Result:
    evidence = []
    for e, state in replay(timeline):
        if e.kind == "watch" and e.resource == "pods" and e.namespace == namespace \
                and (e.type == "DELETED" or e.obj.get("deleting")) and _pods_of(state, namespace, target, e.obj):
            evidence.append(f"pod {e.namespace}/{e.name} deleted at +{e.t - timeline.start:.1f}s (revision {e.rv})")
    uniq = list(dict.fromkeys(evidence))
    return Result(f"expect no-evictions{' of ' + target if target else ''}", not uniq,
                  "no pod was deleted" if not uniq else f"{len(uniq)} pod deletion(s)", uniq[:20])


def expect_evicted(timeline: Timeline, node: str, within: float) -> Result:
    name = f"expect evicted from {node} within {within:.0f}s"
    rec = [r for r in recovery_times(timeline) if r.node == node]
    if not rec:
        return Result(name, False, f"no kill-node/freeze-node fault on {node} was recorded")
    r = rec[-1]
    if r.pods == 0:
        return Result(name, False, f"{node} ran no pods at the fault")
    ok = r.evicted == r.pods and r.eviction_last is not None and r.eviction_last <= within
    last = f"{r.eviction_last:.1f}s" if r.eviction_last is not None else "never"
    return Result(name, ok, f"{r.evicted}/{r.pods} pods evicted, the last {last} after the fault",
                  [f"detection {_fmt(r.detection)}, taint {_fmt(r.taint)}, eviction {_fmt(r.eviction_first)}–"
                   f"{_fmt(r.eviction_last)}"])


def expect_max_pods(timeline: Timeline, namespace: str, target: str, limit: int) -> Result:
    worst, at = 0, 0
    for e, state in replay(timeline):
        if e.kind != "watch" or e.resource != "pods":
            continue
        n = sum(1 for ns, _, p in state.pods() if ns == namespace and active(p) and owned_by(state, ns, target, p))
        if n > worst:
            worst, at = n, e.rv
    ok = worst <= limit
    return Result(f"expect at most {limit} pods of {target}", ok, f"at most {worst} active pods at once",
                  [] if ok else [f"{worst} active pods at revision {at}"])


def expect_pods(state: State, namespace: str, target: str, count: int) -> Result:
    n = sum(1 for ns, _, p in state.pods() if ns == namespace and serving(p, state) and owned_by(state, ns, target, p))
    return Result(f"expect {count} pods of {target}", n == count, f"{n} Running and Ready")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"
