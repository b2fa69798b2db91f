"""Faults against the cluster a `kplane up` supervises.

The cluster is found from its state file (``DATA/cluster.json``, kplane/cluster/state.py); every
fault on a component goes through the supervisor's control channel (``DATA/control.sock``,
:class:`kplane.cluster.supervisor.Control`), so the supervisor knows a death was asked for (no
"exited unexpectedly", no --restart-on-failure restart) and a component started again is its child
(`kplane down` and Ctrl-C stop it). Pod processes are found and killed here
(kplane/cluster/pods.py): they belong to no supervisor.

Every fault appends a :class:`FaultRecord` to ``DATA/chaos/faults.jsonl``: when, what, on which
target, the pids it hit, and the etcd revision just before it (so reports can place it among the
watch events).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kplane.cluster.pods import kill_pod_processes
from kplane.cluster.state import ProcessRef, StateError, live_process, read_state, state_path
from kplane.cluster.supervisor import CONTROL_SOCKET

FAULTS_FILE = "chaos/faults.jsonl"
# Components that take leader election, and the kube-system Lease each one's leader holds.
LEADER_LEASES = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager"}
COMPONENT_ALIASES = {"etcd": "etcd", "apiserver": "apiserver", "scheduler": "scheduler",
                     "controller-manager": "controller-manager", "kube-scheduler": "scheduler",
                     "kube-controller-manager": "controller-manager", "kube-apiserver": "apiserver"}


class ChaosError(Exception):
    """A fault that cannot be done; the message says why (printed as `kplane chaos: ...`, exit 1)."""


@dataclass
class FaultRecord:
    """One fault, as the timeline and the report place it."""

    time: float
    fault: str  # kill-node, freeze-node, thaw-node, restart-node, kill, restart
    target: str  # a node or component name
    revision: int | None  # etcd revision just before the fault (None: the apiserver did not answer)
    detail: str = ""
    pids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FaultRecord:
        rev = d.get("revision")
        return cls(time=float(d["time"]), fault=str(d["fault"]), target=str(d["target"]),
                   revision=int(rev) if rev is not None else None, detail=str(d.get("detail", "")),
                   pids=[int(p) for p in d.get("pids") or []])


class Cluster:
    """A running `kplane up` cluster, found from ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        try:
            self.state = read_state(state_path(self.data_dir))
        except StateError as e:
            raise ChaosError(f"no running cluster: {e}") from None
        launcher = self.state.get("launcher") or {}
        ref = ProcessRef.from_json(launcher) if isinstance(launcher, dict) else None
        if ref is None or live_process(ref) is None:
            raise ChaosError(f"no running cluster in {self.data_dir} (the `kplane up` that started it has "
                             f"stopped{' at ' + str(self.state.get('stopped_at')) if self.state.get('stopped_at') else ''});"
                             f" start one with `kplane up --data-dir {self.data_dir}`")
        self.socket = Path(str(self.state.get("control_socket") or self.data_dir / CONTROL_SOCKET))
        self.apiserver = str(self.state.get("apiserver") or "")
        self.profile = str(self.state.get("profile") or "default")

    # -- the control channel -----------------------------------------------------------------

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One control request; raises ChaosError with the supervisor's message when it says no."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ChaosError(f"the cluster in {self.data_dir} has no control channel at {self.socket} "
                             "(was it started by an older `kplane up`?)") from None
        try:
            writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 120.0)
        finally:
            writer.close()
        try:
            answer = json.loads(line)
        except ValueError:
            raise ChaosError(f"the supervisor gave no answer to {op}") from None
        if not answer.get("ok"):
            raise ChaosError(str(answer.get("error") or f"{op} failed"))
        return dict(answer)

    async def components(self) -> list[dict[str, Any]]:
        """The live component list (the supervisor's, not the possibly older state file)."""
        return list((await self.request("ping")).get("components") or [])

    # -- names ---------------------------------------------------------------------------------

    async def nodes(self) -> dict[str, dict[str, Any]]:
        """Real nodes (one kubelet process each) by node name."""
        out: dict[str, dict[str, Any]] = {}
        for c in await self.components():
            extra = c.get("extra") or {}
            if extra.get("role", "kubelet") == "kubelet" and extra.get("node"):
                out[str(extra["node"])] = c
        return out

    async def node_component(self, node: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The kubelet component of ``node`` and its companions (e.g. the node's proxy)."""
        comps = await self.components()
        kubelet = None
        companions = []
        for c in comps:
            extra = c.get("extra") or {}
            if node not in (extra.get("node"), extra.get("proxy_for")):  # the kubelet, the node's proxy
                continue
            if extra.get("role", "kubelet") == "kubelet":
                kubelet = c
            else:
                companions.append(c)
        if kubelet is None:
            names = sorted(str((c.get("extra") or {}).get("node")) for c in comps
                           if (c.get("extra") or {}).get("node") and (c.get("extra") or {}).get("role", "kubelet")
                           == "kubelet")
            hint = (" (simulated nodes share one fake-nodes process: fault the whole process with "
                    "`kplane chaos kill fake-nodes`)") if node.startswith("fake-") else ""
            raise ChaosError(f"no node {node!r} in this cluster{hint}; nodes: {', '.join(names) or 'none'}")
        return kubelet, companions

    async def component_name(self, component: str, *, leader: bool = False) -> str:
        """The component to act on: ``component`` itself, or with ``leader`` the replica of its role
        holding the role's Lease in kube-system."""
        comps = {str(c["name"]): c for c in await self.components()}
        role = COMPONENT_ALIASES.get(component, component)
        if leader:
            if role not in LEADER_LEASES:
                raise ChaosError(f"--leader works for {', '.join(LEADER_LEASES)}; {component} elects no leader")
            return await self.leader(role, comps)
        if role not in comps:
            known = ", ".join(n for n, c in comps.items()
                              if not {"node", "proxy_for"} & set(c.get("extra") or {}))
            raise ChaosError(f"no component {component!r} in this cluster; components: {known} "
                             "(nodes: use kill-node/freeze-node/restart-node)")
        return role

    async def leader(self, role: str, comps: dict[str, dict[str, Any]]) -> str:
        """The replica of ``role`` whose process holds the Lease (identities are `<host>_<pid>`)."""
        from kplane.api import errors as api
        from kplane.api.resources import resolve
        from kplane.client.client import Client

        lease_name = LEADER_LEASES[role]
        try:
            async with Client([self.apiserver], identity="kplane-chaos", timeout=5.0) as client:
                lease = await client.get(resolve("leases"), lease_name, namespace="kube-system")
        except api.NotFound:
            raise ChaosError(f"no kube-system/{lease_name} Lease: no {role} has been elected yet") from None
        except api.APIError as e:
            raise ChaosError(f"cannot read kube-system/{lease_name}: {e}") from None
        holder = str(lease.spec.holderIdentity)  # type: ignore[attr-defined]
        parts = set(holder.split("_"))
        for name, c in comps.items():
            if (c.get("extra") or {}).get("role") == role and str(c.get("pid")) in parts:
                return name
        raise ChaosError(f"kube-system/{lease_name} is held by {holder or 'nobody'}, which is none of this "
                         f"cluster's {role} processes (its lease may have lapsed)")

    # -- faults ----------------------------------------------------------------------------------

    async def revision(self) -> int | None:
        """etcd's current revision through the apiserver, or None when it does not answer quickly."""
        from kplane.api.resources import resolve
        from kplane.client.client import Client

        try:
            async with Client([self.apiserver], identity="kplane-chaos", timeout=2.0) as client:
                _, rv, _ = await asyncio.wait_for(client.list(resolve("namespaces"), limit=1), 3.0)
            return int(rv)
        except Exception:
            return None

    async def kill_node(self, node: str) -> FaultRecord:
        kubelet, companions = await self.node_component(node)
        if kubelet.get("pid") is None:
            raise ChaosError(f"{node}'s kubelet is not running ({kubelet.get('status')}); "
                             f"`kplane chaos restart-node {node}` starts it")
        rev = await self.revision()
        t = time.time()
        pids = [int((await self.request("signal", component=kubelet["name"], signal="SIGKILL"))["pid"])]
        killed = [f"kubelet (pid {pids[0]})"]
        for c in companions:
            if c.get("pid") is not None:
                answer = await self.request("signal", component=c["name"], signal="SIGKILL")
                pids.append(int(answer["pid"]))
                killed.append(f"{c['name']} (pid {answer['pid']})")
        pod_pids = await asyncio.to_thread(kill_pod_processes, self.data_dir / "kubelet" / node)
        pids += pod_pids
        killed.append(f"{len(pod_pids)} pod process(es)")
        return self._record("kill-node", node, t, rev, "SIGKILL " + ", ".join(killed), pids)

    async def freeze_node(self, node: str) -> FaultRecord:
        kubelet, _ = await self.node_component(node)
        rev = await self.revision()
        t = time.time()
        answer = await self.request("signal", component=kubelet["name"], signal="SIGSTOP")
        return self._record("freeze-node", node, t, rev,
                            f"SIGSTOP kubelet (pid {answer['pid']}): heartbeats stop, pods keep running",
                            [int(answer["pid"])])

    async def thaw_node(self, node: str) -> FaultRecord:
        kubelet, _ = await self.node_component(node)
        rev = await self.revision()
        t = time.time()
        answer = await self.request("signal", component=kubelet["name"], signal="SIGCONT")
        return self._record("thaw-node", node, t, rev, f"SIGCONT kubelet (pid {answer['pid']})",
                            [int(answer["pid"])])

    async def restart_node(self, node: str) -> FaultRecord:
        kubelet, companions = await self.node_component(node)
        rev = await self.revision()
        t = time.time()
        op = "restart" if kubelet.get("pid") is not None else "start"
        answer = await self.request(op, component=kubelet["name"])
        done = [f"kubelet (pid {answer['pid']})"]
        for c in companions:
            if c.get("pid") is None:
                a = await self.request("start", component=c["name"])
                done.append(f"{c['name']} (pid {a['pid']})")
        verb = "restarted" if op == "restart" else "started"
        return self._record("restart-node", node, t, rev, f"{verb} " + ", ".join(done), [int(answer["pid"])])

    async def kill(self, component: str, *, leader: bool = False) -> FaultRecord:
        name = await self.component_name(component, leader=leader)
        rev = await self.revision()
        t = time.time()
        answer = await self.request("signal", component=name, signal="SIGKILL")
        what = f"SIGKILL {name} (pid {answer['pid']}{', the leader' if leader else ''})"
        return self._record("kill", name, t, rev, what, [int(answer["pid"])])

    async def restart(self, component: str) -> FaultRecord:
        """Restart ``component``; given a role whose replica is down (e.g. the leader a `kill
        --leader` took, `controller-manager-2`), start that replica instead."""
        name = await self.component_name(component)
        comps = {str(c["name"]): c for c in await self.components()}
        role = (comps[name].get("extra") or {}).get("role")
        down = [n for n, c in comps.items() if role and (c.get("extra") or {}).get("role") == role
                and c.get("pid") is None]
        if comps[name].get("pid") is not None and down and name == COMPONENT_ALIASES.get(component, component):
            name = down[0]
        rev = await self.revision()
        t = time.time()
        running = comps[name].get("pid") is not None
        answer = await self.request("restart" if running else "start", component=name)
        prev = f" (was pid {answer.get('previous_pid')})" if answer.get("previous_pid") else ""
        return self._record("restart", name, t, rev, f"{'restarted' if running else 'started'} {name}: "
                            f"pid {answer['pid']}{prev}", [int(answer["pid"])])

    def _record(self, fault: str, target: str, t: float, rev: int | None, detail: str, pids: list[int]) -> FaultRecord:
        rec = FaultRecord(time=t, fault=fault, target=target, revision=rev, detail=detail, pids=pids)
        path = self.data_dir / FAULTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec.to_json()) + "\n")
        return rec


def read_fault_records(data_dir: Path) -> list[FaultRecord]:
    path = Path(data_dir) / FAULTS_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(FaultRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return out
