"""The proxy's routing table, computed from Services and Endpoints (pure: no sockets, no I/O).

For every TCP port of a Service that has a ClusterIP (not headless, not ExternalName) there is a
:class:`Route` at ``clusterIP:port``; a NodePort (or LoadBalancer) Service also gets one at
``address:nodePort`` for each ``--nodeport-addresses`` address. A route knows the ready endpoints
of its service port (``addresses`` of every Endpoints subset whose port has the service port's
name, as kube-proxy matches them) and the policies that filter them:

- ``externalTrafficPolicy: Local`` — node-port routes use only endpoints on this node;
- ``internalTrafficPolicy: Local`` — cluster-IP routes use only endpoints on this node;
- ``sessionAffinity: ClientIP`` with ``timeoutSeconds`` (default 10800).

A Service the proxy cannot use (a clusterIP outside 127.0.0.0/8 — kplane binds loopback only —,
a port out of range, a non-TCP protocol) is skipped with a reason; it never stops the others.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from kplane.api.pb import core_pb2

DEFAULT_AFFINITY_SECONDS = 10800
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class Route:
    """Where connections to one listening address go."""

    service: str  # "namespace/name"
    port_name: str
    endpoints: tuple[Endpoint, ...]
    affinity_seconds: int = 0  # 0: no session affinity
    node_port: bool = False

    @property
    def label(self) -> str:
        return f"{self.service}:{self.port_name}" if self.port_name else self.service


@dataclass
class Table:
    routes: dict[tuple[str, int], Route] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # service key -> why


def is_loopback_ipv4(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return ip.version == 4 and ip in LOOPBACK


def endpoints_for_port(endpoints: core_pb2.Endpoints | None, port_name: str) -> list[Endpoint]:
    """Ready addresses of the subsets whose port has ``port_name`` (deduplicated, sorted)."""
    if endpoints is None:
        return []
    out: set[Endpoint] = set()
    for subset in endpoints.subsets:
        for port in subset.ports:
            if port.name != port_name or (port.protocol or "TCP") != "TCP":
                continue
            if not 0 < port.port < 65536:
                continue
            for addr in subset.addresses:
                if is_loopback_ipv4(addr.ip):
                    out.add(Endpoint(addr.ip, int(port.port), addr.nodeName))
    return sorted(out)


def build_table(services: list[core_pb2.Service], endpoints: dict[str, core_pb2.Endpoints], *,
                node_name: str, nodeport_addresses: list[str]) -> Table:
    table = Table()
    for svc in sorted(services, key=lambda s: (s.metadata.namespace, s.metadata.name)):
        key = f"{svc.metadata.namespace}/{svc.metadata.name}"
        try:
            _add_service(table, key, svc, endpoints.get(key), node_name, nodeport_addresses)
        except Exception as exc:  # garbage in one Service must not take the others down
            table.skipped[key] = f"unusable service: {exc!r}"
    return table


def _add_service(table: Table, key: str, svc: core_pb2.Service, eps: core_pb2.Endpoints | None,
                 node_name: str, nodeport_addresses: list[str]) -> None:
    spec = svc.spec
    if spec.type == "ExternalName":
        return
    cluster_ip = spec.clusterIP
    if not cluster_ip or cluster_ip == "None":
        return  # headless or not allocated yet: nothing to proxy
    if not is_loopback_ipv4(cluster_ip):
        table.skipped[key] = f"clusterIP {cluster_ip} is not an IPv4 address in 127.0.0.0/8 (kplane binds loopback only)"
        return
    affinity = 0
    if spec.sessionAffinity == "ClientIP":
        cfg = spec.sessionAffinityConfig.clientIP
        affinity = int(cfg.timeoutSeconds) if cfg.HasField("timeoutSeconds") and cfg.timeoutSeconds > 0 \
            else DEFAULT_AFFINITY_SECONDS
    external_local = spec.externalTrafficPolicy == "Local"
    internal_local = spec.internalTrafficPolicy == "Local"
    with_node_ports = spec.type in ("NodePort", "LoadBalancer")
    problems: list[str] = []
    for sp in spec.ports:
        if (sp.protocol or "TCP") != "TCP":
            problems.append(f"port {sp.port}/{sp.protocol}: only TCP is proxied")
            continue
        if not 0 < sp.port < 65536:
            problems.append(f"port {sp.port}: out of range")
            continue
        ready = endpoints_for_port(eps, sp.name)
        local = tuple(e for e in ready if e.node == node_name)
        table.routes[(cluster_ip, int(sp.port))] = Route(
            key, sp.name, local if internal_local else tuple(ready), affinity)
        if with_node_ports and sp.nodePort:
            if not 0 < sp.nodePort < 65536:
                problems.append(f"nodePort {sp.nodePort}: out of range")
                continue
            for address in nodeport_addresses:
                table.routes[(address, int(sp.nodePort))] = Route(
                    key, sp.name, local if external_local else tuple(ready), affinity, node_port=True)
    if problems:
        table.skipped[key] = "; ".join(problems)
