"""Service ClusterIPs and NodePorts: allocated by the apiserver, recorded in etcd.

Kubernetes keeps one bitmap per range in a single etcd object and reconciles it with a repair
loop. kplane keeps one etcd key per allocated value, owned by the Service that holds it:

    /kplane/allocations/serviceips/<ip>             "<namespace>/<name>/<uid>"
    /kplane/allocations/servicenodeports/<port>     "<namespace>/<name>/<uid>"

and writes them in the *same* etcd transaction as the Service write that takes or frees them
(storage `Companions`): a create claims its keys (each must be absent, else nothing is written),
an update claims what it adds and releases what it drops, a delete — also the one that
completes later when the last finalizer goes — releases everything. So two concurrent creates
can never hold the same value, a failed create holds nothing, and a dry run writes nothing.

Values are chosen as Kubernetes chooses them: a requested value must lie in the range and be
free; a value picked for the user is random, from the upper ("dynamic") part of the range
first, so requested values in the lower ("static") part rarely collide — `default/kubernetes`
takes the range's first address. A random pick that loses a race is re-picked from the set of
allocated keys read back from etcd.

`repair` (at apiserver start and every few minutes, as Kubernetes' repair controllers) frees
keys no Service references — leaks from objects deleted while undecodable — and records
allocations of Services written before this bookkeeping existed.

The update rules of Kubernetes' service registry strategy live here too
(`prepare_service_update`): an update that leaves clusterIP/nodePort out keeps the allocated
values, and a type change away from NodePort or to ExternalName clears what it no longer needs.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apiserver.storage import ClaimTaken, Companions, KeyExists, RevisionMismatch, Storage
from kplane.api import errors as api
from kplane.api import field as fe
from kplane.logs import get_logger

if TYPE_CHECKING:
    from apiserver.registry import Registry

log = get_logger(component="apiserver")

Obj = dict[str, Any]

ALLOCATIONS_PREFIX = "/kplane/allocations/"
IPS_PREFIX = ALLOCATIONS_PREFIX + "serviceips/"
NODE_PORTS_PREFIX = ALLOCATIONS_PREFIX + "servicenodeports/"
SERVICES_PREFIX = "/registry/services/"

DEFAULT_SERVICE_CIDR = "127.96.0.0/16"
DEFAULT_NODE_PORT_RANGE = "30000-32767"
# A write whose random picks keep losing races gives up after this many tries (each re-pick
# after the first loss avoids every value allocated at that moment, so this is never reached
# short of a range emptied and refilled under our feet).
MAX_ATTEMPTS = 16
REPAIR_INTERVAL = 180.0  # Kubernetes' repair controllers run every 3 minutes


def _range_offset(size: int, lo: int, hi: int, step: int) -> int:
    """How many values at the start of a range are kept for requests (Kubernetes'
    calculateRangeOffset: size/step, at least lo, at most hi; 0 for ranges smaller than lo)."""
    if size < lo:
        return 0
    return max(lo, min(hi, size // step))


class IPRange:
    """An IPv4 service CIDR. Usable addresses exclude the network and broadcast addresses."""

    def __init__(self, cidr: str) -> None:
        try:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"invalid service cluster IP range {cidr!r}: {exc}") from None
        if net.version != 4:
            raise ValueError(f"service cluster IP range {cidr!r}: only IPv4 ranges are supported")
        if not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):  # type: ignore[arg-type]
            raise ValueError(f"service cluster IP range {cidr!r} must lie inside 127.0.0.0/8: kplane binds and "
                             "connects to loopback addresses only (Kubernetes' default 10.96.0.0/12 is not)")
        if net.prefixlen > 30:
            raise ValueError(f"service cluster IP range {cidr!r} is too small: use a /30 or larger")
        self.network = net
        self.cidr = str(net)
        self.base = int(net.network_address) + 1
        self.size = net.num_addresses - 2
        self.offset = _range_offset(net.num_addresses, 16, 256, 16)

    def __str__(self) -> str:
        return self.cidr

    def index(self, ip: str) -> int | None:
        """The address's position among the usable addresses, None when outside them."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr.version != 4:
            return None
        i = int(addr) - self.base
        return i if 0 <= i < self.size else None

    def address(self, index: int) -> str:
        return str(ipaddress.IPv4Address(self.base + index))

    def first(self) -> str:
        """The range's first usable address (Kubernetes gives it to `default/kubernetes`)."""
        return self.address(0)


class PortRange:
    """A node-port range: `30000-32767`, `30000+2767` or one port."""

    def __init__(self, text: str) -> None:
        spec = text.strip()
        try:
            if "-" in spec:
                a, b = spec.split("-", 1)
                lo, hi = int(a), int(b)
            elif "+" in spec:
                a, b = spec.split("+", 1)
                lo, hi = int(a), int(a) + int(b)
            else:
                lo = hi = int(spec)
        except ValueError:
            raise ValueError(f"invalid service node port range {text!r}: want FROM-TO, e.g. 30000-32767") from None
        if not (1 <= lo <= hi <= 65535):
            raise ValueError(f"invalid service node port range {text!r}: ports must satisfy 1 <= FROM <= TO <= 65535")
        self.base, self.size = lo, hi - lo + 1
        self.offset = _range_offset(self.size, 16, 128, 32)

    def __str__(self) -> str:
        return f"{self.base}-{self.base + self.size - 1}"

    def index(self, port: int) -> int | None:
        i = port - self.base
        return i if 0 <= i < self.size else None


def pick_free(size: int, offset: int, used: set[int], rng: random.Random) -> int | None:
    """A random free index of a range of `size`, from [offset, size) first, then [0, offset)."""
    for lo, hi in ((offset, size), (0, offset)):
        n = hi - lo
        if n <= 0:
            continue
        if sum(1 for u in used if lo <= u < hi) >= n:
            continue  # this part is full
        for _ in range(32):
            candidate = lo + rng.randrange(n)
            if candidate not in used:
                return candidate
        start = rng.randrange(n)
        for i in range(n):
            candidate = lo + (start + i) % n
            if candidate not in used:
                return candidate
    return None


# -- what a Service holds ---------------------------------------------------------------------


def _spec(obj: Obj | None) -> Obj:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _type(spec: Obj) -> str:
    return str(spec.get("type") or "ClusterIP")


def needs_cluster_ip(spec: Obj) -> bool:
    return _type(spec) != "ExternalName"


def needs_node_ports(spec: Obj) -> bool:
    """Type NodePort, or LoadBalancer unless allocateLoadBalancerNodePorts is false."""
    stype = _type(spec)
    return stype == "NodePort" or (stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def has_node_ports(spec: Obj) -> bool:
    return _type(spec) in ("NodePort", "LoadBalancer")


def needs_health_check_port(spec: Obj) -> bool:
    return _type(spec) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _ports(spec: Obj) -> list[Obj]:
    ports = spec.get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def held_ip(spec: Obj) -> str:
    """The cluster IP a stored Service holds ('' for headless and ExternalName)."""
    if not needs_cluster_ip(spec):
        return ""
    ip = spec.get("clusterIP")
    return ip if isinstance(ip, str) and ip not in ("", "None") else ""


def held_node_ports(spec: Obj) -> set[int]:
    if not has_node_ports(spec):
        return set()
    out = {_int(p.get("nodePort")) for p in _ports(spec)} - {0}
    hc = _int(spec.get("healthCheckNodePort"))
    if hc and needs_health_check_port(spec):
        out.add(hc)
    return out


def owner_of(obj: Obj) -> bytes:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}/{meta.get('uid', '')}".encode()


# -- the registry strategy's update rules ------------------------------------------------------


def prepare_service_update(new: Obj, old: Obj) -> None:
    """Kubernetes' service strategy on update, before defaults and validation: the plural
    clusterIPs follow a changed singular clusterIP; allocated values the update leaves out are
    kept (so `kubectl replace` of a manifest without clusterIP works); values a type change no
    longer needs are cleared when the user left them as they were."""
    spec, old_spec = new.get("spec"), _spec(old)
    if not isinstance(spec, dict):
        return
    # NormalizeClusterIPs: the singular field changed and the plural did not -> plural follows
    if spec.get("clusterIP") != old_spec.get("clusterIP") and spec.get("clusterIPs") == old_spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]] if spec.get("clusterIP") else []
        if not spec["clusterIPs"]:
            spec.pop("clusterIPs")
    # patchAllocatedValues
    if needs_cluster_ip(old_spec) and needs_cluster_ip(spec):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = copy.deepcopy(old_spec["clusterIPs"])
    if has_node_ports(old_spec) and has_node_ports(spec):
        used = ({_int(p.get("nodePort")) for p in _ports(old_spec)} &
                {_int(p.get("nodePort")) for p in _ports(spec)})
        by_name = {str(p.get("name") or ""): _int(p.get("nodePort")) for p in _ports(old_spec)}
        for port in _ports(spec):
            if not _int(port.get("nodePort")):
                previous = by_name.get(str(port.get("name") or ""), 0)
                if previous and previous not in used:
                    port["nodePort"] = previous
    if needs_health_check_port(old_spec) and needs_health_check_port(spec) and \
            not _int(spec.get("healthCheckNodePort")) and _int(old_spec.get("healthCheckNodePort")):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
    # dropTypeDependentFields
    if needs_cluster_ip(old_spec) and not needs_cluster_ip(spec):
        if spec.get("clusterIP") == old_spec.get("clusterIP") and spec.get("clusterIPs") == old_spec.get("clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old_spec.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old_spec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    same_node_ports = [_int(p.get("nodePort")) for p in _ports(spec)] == \
        [_int(p.get("nodePort")) for p in _ports(old_spec)]
    if has_node_ports(old_spec) and not has_node_ports(spec) and same_node_ports:
        for port in _ports(spec):
            port.pop("nodePort", None)
    if needs_health_check_port(old_spec) and not needs_health_check_port(spec) and \
            _int(spec.get("healthCheckNodePort")) == _int(old_spec.get("healthCheckNodePort")):
        spec.pop("healthCheckNodePort", None)
    if _type(old_spec) == "LoadBalancer" and _type(spec) != "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is not None and \
                spec.get("allocateLoadBalancerNodePorts") == old_spec.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts")
        if spec.get("loadBalancerClass") == old_spec.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if _externally_accessible(old_spec) and not _externally_accessible(spec) and \
            spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)


def _externally_accessible(spec: Obj) -> bool:
    stype = _type(spec)
    return stype in ("NodePort", "LoadBalancer") or (stype == "ClusterIP" and bool(spec.get("externalIPs")))


# -- planning ------------------------------------------------------------------------------------


@dataclass
class Claim:
    key: str
    path: str  # the field an error names
    value: Any  # the value an error shows
    detail: str  # "failed to allocate IP x: " prefix for IPs, "" for ports
    requested: bool  # the user asked for it (a taken one is Invalid); else picked for them


@dataclass
class Plan:
    claims: dict[str, Claim] = field(default_factory=dict)
    releases: list[str] = field(default_factory=list)
    owner: bytes = b""
    old_owner: bytes = b""
    # fields filled in for the user, undone when the write fails: ("ip", -1) or ("port", i) / ("hc", -1)
    filled: list[tuple[str, int]] = field(default_factory=list)

    def companions(self) -> Companions | None:
        if not self.claims and not self.releases:
            return None
        return Companions(claim=tuple((k, self.owner) for k in self.claims),
                          release=tuple((k, self.old_owner) for k in self.releases))


def ip_key(ip: str) -> str:
    return IPS_PREFIX + ip


def port_key(port: int) -> str:
    return NODE_PORTS_PREFIX + str(port)


class ServiceAllocator:
    """Allocates ClusterIPs from `ip_range` and NodePorts from `port_range` (see the module doc)."""

    def __init__(self, storage: Storage, ip_range: IPRange, port_range: PortRange, *,
                 rng: random.Random | None = None) -> None:
        self.storage = storage
        self.ips = ip_range
        self.ports = port_range
        self.rng = rng or random.SystemRandom()

    # -- the write path ------------------------------------------------------------------

    async def write(self, new: Obj | None, old: Obj | None,
                    write: Callable[[Companions | None], Awaitable[int]]) -> int:
        """Fill in the values `new` needs (in place), then run `write` with the allocation keys
        it claims and releases. `new` None is a delete of `old`. A requested value that is
        taken or out of range is Invalid; a random pick that lost a race is picked again."""
        avoid_ips: set[int] = set()
        avoid_ports: set[int] = set()
        for _ in range(MAX_ATTEMPTS):
            plan = self.plan(new, old, avoid_ips, avoid_ports)
            try:
                return await write(plan.companions())
            except ClaimTaken as exc:
                self._undo(new, plan)
                self._raise_requested_taken(new, plan, exc.keys)
                await self._learn_used(avoid_ips, avoid_ports, exc.keys)
            except BaseException:
                self._undo(new, plan)
                raise
        raise api.InternalError("failed to allocate a service address: too many concurrent allocations; try again")

    async def dry_run(self, new: Obj, old: Obj | None) -> None:
        """What `write` would do, without writing: requested values are checked against etcd,
        random ones picked among the free values of the moment."""
        avoid_ips: set[int] = set()
        avoid_ports: set[int] = set()
        for _ in range(MAX_ATTEMPTS):
            plan = self.plan(new, old, avoid_ips, avoid_ports)
            taken = [k for k in plan.claims if await self.storage.get(k) is not None]
            if not taken:
                return
            self._undo(new, plan)
            self._raise_requested_taken(new, plan, taken)
            await self._learn_used(avoid_ips, avoid_ports, taken)
        raise api.InternalError("failed to allocate a service address: too many concurrent allocations; try again")

    def plan(self, new: Obj | None, old: Obj | None, avoid_ips: set[int] | None = None,
             avoid_ports: set[int] | None = None) -> Plan:
        """The keys `new` claims and `old`'s keys it releases; fills random values into `new`.
        Raises Invalid for requested values outside the ranges, InternalError when full."""
        old_spec = _spec(old)
        held_keys: set[str] = set()
        if old is not None:
            if ip := held_ip(old_spec):
                held_keys.add(ip_key(ip))
            held_keys |= {port_key(p) for p in held_node_ports(old_spec)}
        plan = Plan(owner=owner_of(new) if new is not None else b"",
                    old_owner=owner_of(old) if old is not None else b"")
        wanted: set[str] = set()
        if new is not None:
            self._plan_new(new, held_keys, plan, wanted, avoid_ips or set(), avoid_ports or set())
        plan.releases = sorted(held_keys - wanted)
        return plan

    def _plan_new(self, new: Obj, held_keys: set[str], plan: Plan, wanted: set[str], avoid_ips: set[int],
                  avoid_ports: set[int]) -> None:
        spec = new.get("spec")
        if not isinstance(spec, dict):
            return
        errors: list[fe.FieldError] = []
        if needs_cluster_ip(spec):
            ip = spec.get("clusterIP")
            if ip in (None, ""):
                idx = pick_free(self.ips.size, self.ips.offset, avoid_ips, self.rng)
                if idx is None:
                    raise api.InternalError("failed to allocate a serviceIP: range is full")
                ip = self.ips.address(idx)
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
                plan.filled.append(("ip", -1))
                plan.claims[ip_key(ip)] = Claim(ip_key(ip), "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: ",
                                                requested=False)
                wanted.add(ip_key(ip))
            elif ip != "None" and isinstance(ip, str):
                key = ip_key(ip)
                wanted.add(key)
                if key not in held_keys:
                    value = spec.get("clusterIPs") or [ip]
                    if self.ips.index(ip) is None:
                        errors.append(fe.invalid(
                            "spec.clusterIPs", value,
                            f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. "
                            f"The range of valid IPs is {self.ips}"))
                    plan.claims[key] = Claim(key, "spec.clusterIPs", value, f"failed to allocate IP {ip}: ",
                                             requested=True)
        if has_node_ports(spec):
            fill = needs_node_ports(spec)
            in_service: set[int] = {_int(p.get("nodePort")) for p in _ports(spec)} - {0}
            for i, port in enumerate(_ports(spec)):
                number = _int(port.get("nodePort"))
                path = f"spec.ports[{i}].nodePort"
                if number:
                    self._want_port(number, path, held_keys, plan, wanted, errors)
                elif fill:
                    picked = self._pick_port(avoid_ports | {p - self.ports.base for p in in_service})
                    port["nodePort"] = picked
                    in_service.add(picked)
                    plan.filled.append(("port", i))
                    key = port_key(picked)
                    wanted.add(key)
                    plan.claims[key] = Claim(key, path, picked, "", requested=False)
            if needs_health_check_port(spec):
                hc = _int(spec.get("healthCheckNodePort"))
                if hc:
                    self._want_port(hc, "spec.healthCheckNodePort", held_keys, plan, wanted, errors)
                else:
                    picked = self._pick_port(avoid_ports | {p - self.ports.base for p in in_service})
                    spec["healthCheckNodePort"] = picked
                    plan.filled.append(("hc", -1))
                    key = port_key(picked)
                    wanted.add(key)
                    plan.claims[key] = Claim(key, "spec.healthCheckNodePort", picked, "", requested=False)
        if errors:
            self._undo(new, plan)
            meta = new.get("metadata") or {}
            raise api.Invalid.for_object("Service", str(meta.get("name", "")), errors)

    def _want_port(self, number: int, path: str, held_keys: set[str], plan: Plan, wanted: set[str],
                   errors: list[fe.FieldError]) -> None:
        key = port_key(number)
        if key in wanted:
            return  # the same node port on another protocol of this Service: one allocation
        wanted.add(key)
        if key in held_keys:
            return
        if self.ports.index(number) is None:
            errors.append(fe.invalid(path, number, "provided port is not in the valid range. "
                                                   f"The range of valid ports is {self.ports}"))
        plan.claims[key] = Claim(key, path, number, "", requested=True)

    def _pick_port(self, avoid: set[int]) -> int:
        idx = pick_free(self.ports.size, self.ports.offset, avoid, self.rng)
        if idx is None:
            raise api.InternalError("failed to allocate a nodePort: range is full")
        return self.ports.base + idx

    @staticmethod
    def _undo(new: Obj | None, plan: Plan) -> None:
        """Take back the values `plan` filled into `new` (the write did not happen)."""
        if new is None:
            return
        spec = _spec(new)
        ports = _ports(spec)
        for what, i in plan.filled:
            if what == "ip":
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
            elif what == "port" and i < len(ports):
                ports[i].pop("nodePort", None)
            elif what == "hc":
                spec.pop("healthCheckNodePort", None)
        plan.filled.clear()

    @staticmethod
    def _raise_requested_taken(new: Obj | None, plan: Plan, taken: list[str]) -> None:
        errors = []
        for key in taken:
            claim = plan.claims.get(key)
            if claim is not None and claim.requested:
                what = "IP" if key.startswith(IPS_PREFIX) else "port"
                errors.append(fe.invalid(claim.path, claim.value, f"{claim.detail}provided {what} is already allocated"))
        if errors:
            meta = (new or {}).get("metadata") or {}
            raise api.Invalid.for_object("Service", str(meta.get("name", "")), errors)

    async def _learn_used(self, avoid_ips: set[int], avoid_ports: set[int], taken: list[str]) -> None:
        """After a lost race: avoid every value allocated right now."""
        ips, ports = await self.allocated()
        for ip in ips:
            if (i := self.ips.index(ip)) is not None:
                avoid_ips.add(i)
        for port in ports:
            if (i := self.ports.index(port)) is not None:
                avoid_ports.add(i)
        for key in taken:
            if key.startswith(IPS_PREFIX) and (i := self.ips.index(key[len(IPS_PREFIX):])) is not None:
                avoid_ips.add(i)
            elif key.startswith(NODE_PORTS_PREFIX) and (i := self.ports.index(_to_int(key[len(NODE_PORTS_PREFIX):]))) \
                    is not None:
                avoid_ports.add(i)

    async def allocated(self) -> tuple[dict[str, bytes], dict[int, bytes]]:
        """Every allocation key now: ({ip: owner}, {port: owner})."""
        ip_kvs, _, _ = await self.storage.list(IPS_PREFIX)
        port_kvs, _, _ = await self.storage.list(NODE_PORTS_PREFIX)
        return ({kv.key[len(IPS_PREFIX):]: kv.value for kv in ip_kvs},
                {_to_int(kv.key[len(NODE_PORTS_PREFIX):]): kv.value for kv in port_kvs})

    # -- repair --------------------------------------------------------------------------

    async def repair(self, decode: Callable[[str, bytes, int], Obj | None]) -> tuple[int, int]:
        """Make the allocation keys match the Services, read at one etcd revision: free keys no
        Service holds, record values Services hold without a key. Every change is a
        compare-and-swap on what was read, so a concurrent write wins. Returns (freed, recorded)."""
        svc_kvs, rev, _ = await self.storage.list(SERVICES_PREFIX)
        alloc_kvs, _, _ = await self.storage.list(ALLOCATIONS_PREFIX, rev)
        desired: dict[str, bytes] = {}
        for kv in svc_kvs:
            obj = decode(kv.key, kv.value, kv.mod_revision)
            if obj is None:
                continue
            spec, owner = _spec(obj), owner_of(obj)
            keys = ([ip_key(ip)] if (ip := held_ip(spec)) else []) + [port_key(p) for p in held_node_ports(spec)]
            for key in keys:
                if key in desired and desired[key] != owner:
                    log.warning("two services hold the same value", key=key,
                                services=[desired[key].decode(), owner.decode()])
                    continue
                desired[key] = owner
        existing = {kv.key: kv for kv in alloc_kvs}
        freed = recorded = 0
        for key, kv in existing.items():
            if key in desired:
                continue
            try:
                await self.storage.delete(key, kv.mod_revision)
                freed += 1
                log.warning("freed a leaked service allocation", key=key, owner=kv.value.decode(errors="replace"))
            except RevisionMismatch:
                pass
        for key, owner in desired.items():
            if key in existing:
                continue
            try:
                await self.storage.create(key, owner)
                recorded += 1
                log.info("recorded a service allocation", key=key, owner=owner.decode(errors="replace"))
            except KeyExists:
                pass
        return freed, recorded

    async def run_repairs(self, decode: Callable[[str, bytes, int], Obj | None],
                          interval: float = REPAIR_INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.repair(decode)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("service allocation repair failed; will retry", error=str(exc))


def _to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


# -- default/kubernetes ------------------------------------------------------------------------


class KubernetesService:
    """`default/kubernetes`, the apiserver as a Service (Kubernetes' control-plane endpoint
    reconciler): ClusterIP the range's first address, port 443 (`https`) to the apiserver's gRPC
    port, Endpoints `<bind address>:<port>`; created at start, checked every `interval`.

    Several apiservers may share one etcd (tests start extra ones beside a cluster's): the one
    the Service points at keeps it; another takes it over only when nothing listens on the
    Service's target port any more."""

    NAMESPACE, NAME = "default", "kubernetes"

    def __init__(self, registry: Registry, cluster_ip: str, address: str, port: int,
                 interval: float = 10.0) -> None:
        self.registry = registry
        self.cluster_ip = cluster_ip
        self.address = address
        self.port = port
        self.interval = interval

    def service(self) -> Obj:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": self.NAME, "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ip, "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}]}}

    def endpoints(self) -> Obj:
        return {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": self.NAME, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": self.address}],
                             "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]}]}

    async def reconcile(self) -> None:
        from kplane.api.resources import object_to_dict, resolve

        services, endpoints = resolve("services"), resolve("endpoints")
        try:
            current: Obj | None = object_to_dict(services, await self.registry.get(services, self.NAMESPACE, self.NAME))
        except api.NotFound:
            current = None
        if current is None:
            try:
                await self.registry.create(services, self.NAMESPACE, self.service())
                log.info("created the kubernetes service", cluster_ip=self.cluster_ip, port=self.port)
            except api.AlreadyExists:
                return  # another apiserver was quicker: the next round looks again
            except api.Invalid as exc:  # its address is held by another Service
                log.warning("cannot create the kubernetes service", error=exc.message)
                return
        else:
            ports = _ports(_spec(current))
            target = _int(ports[0].get("targetPort")) if ports else 0
            if target != self.port:
                if target and await _listening(self.address, target):
                    return  # a live apiserver serves it
                await self.registry.patch(services, self.NAMESPACE, self.NAME, "merge", json.dumps(
                    {"spec": {"ports": self.service()["spec"]["ports"]}}))
                log.info("took over the kubernetes service", port=self.port, previous_port=target)
        want = self.endpoints()
        try:
            have = object_to_dict(endpoints, await self.registry.get(endpoints, self.NAMESPACE, self.NAME))
        except api.NotFound:
            try:
                await self.registry.create(endpoints, self.NAMESPACE, want)
            except api.AlreadyExists:
                pass
            return
        if have.get("subsets") != want["subsets"]:
            have["subsets"] = want["subsets"]
            have.setdefault("metadata", {}).pop("resourceVersion", None)
            await self.registry.update(endpoints, self.NAMESPACE, self.NAME, have)

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("kubernetes service reconcile failed; will retry", error=str(exc))
            await asyncio.sleep(self.interval)


async def _listening(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
