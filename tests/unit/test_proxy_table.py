"""The proxy's routing table from Services and Endpoints: which addresses, which endpoints."""

from __future__ import annotations

from typing import Any

from kplane.api import codec
from kplane.api.pb import core_pb2
from proxy.table import Endpoint, build_table


def svc(name: str = "web", **spec: Any) -> core_pb2.Service:
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": "ns"},
                            "spec": {"clusterIP": "127.98.0.10", "selector": {"app": name},
                                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                                     **spec}}
    return codec.from_dict(body, core_pb2.Service)


def eps(name: str = "web", port_name: str = "http") -> core_pb2.Endpoints:
    return codec.from_dict({
        "metadata": {"name": name, "namespace": "ns"},
        "subsets": [{"addresses": [{"ip": "127.248.0.1", "nodeName": "n1"}, {"ip": "127.248.1.1", "nodeName": "n2"}],
                     "notReadyAddresses": [{"ip": "127.248.0.9", "nodeName": "n1"}],
                     "ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}]}]}, core_pb2.Endpoints)


def test_cluster_ip_route_has_the_ready_endpoints_of_the_named_port() -> None:
    """clusterIP:port routes to ready addresses of the subset port with the service port's name."""
    table = build_table([svc()], {"ns/web": eps()}, node_name="n1", nodeport_addresses=["127.0.248.1"])
    assert list(table.routes) == [("127.98.0.10", 80)]
    assert table.routes[("127.98.0.10", 80)].endpoints == (Endpoint("127.248.0.1", 8080, "n1"),
                                                          Endpoint("127.248.1.1", 8080, "n2"))
    other = build_table([svc()], {"ns/web": eps(port_name="metrics")}, node_name="n1", nodeport_addresses=[])
    assert other.routes[("127.98.0.10", 80)].endpoints == ()


def test_node_port_routes_on_each_address_and_local_policy_filters_by_node() -> None:
    """NodePort: one route per --nodeport-addresses address; externalTrafficPolicy Local keeps only
    this node's endpoints there, while the cluster IP keeps all."""
    service = svc(type="NodePort", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}])
    table = build_table([service], {"ns/web": eps()}, node_name="n2",
                        nodeport_addresses=["127.0.248.2", "127.0.248.200"])
    assert set(table.routes) == {("127.98.0.10", 80), ("127.0.248.2", 30080), ("127.0.248.200", 30080)}
    assert len(table.routes[("127.98.0.10", 80)].endpoints) == 2
    assert table.routes[("127.0.248.2", 30080)].endpoints == (Endpoint("127.248.1.1", 8080, "n2"),)
    assert table.routes[("127.0.248.2", 30080)].node_port


def test_session_affinity_timeout_defaults_to_10800() -> None:
    """ClientIP affinity without timeoutSeconds sticks for Kubernetes' default 3 hours."""
    table = build_table([svc(sessionAffinity="ClientIP")], {}, node_name="n1", nodeport_addresses=[])
    assert table.routes[("127.98.0.10", 80)].affinity_seconds == 10800
    table = build_table([svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}})],
                        {}, node_name="n1", nodeport_addresses=[])
    assert table.routes[("127.98.0.10", 80)].affinity_seconds == 5


def test_headless_unallocated_external_and_non_loopback_services_get_no_route() -> None:
    """clusterIP None or empty and ExternalName are not proxied; a non-loopback clusterIP or a UDP
    port is skipped with a reason while the other services still get their routes."""
    services = [svc("headless", clusterIP="None"), svc("pending", clusterIP=""),
                svc("ext", type="ExternalName", clusterIP="", externalName="example.com"),
                svc("far", clusterIP="10.0.0.1"),
                svc("udp", clusterIP="127.98.0.11", ports=[{"port": 53, "protocol": "UDP"}]),
                svc("web")]
    table = build_table(services, {}, node_name="n1", nodeport_addresses=[])
    assert list(table.routes) == [("127.98.0.10", 80)]
    assert "127.0.0.0/8" in table.skipped["ns/far"] and "only TCP" in table.skipped["ns/udp"]


def test_garbage_endpoints_do_not_break_the_table() -> None:
    """Endpoint addresses that are not loopback IPv4 or ports out of range are ignored."""
    bad = codec.from_dict({"metadata": {"name": "web", "namespace": "ns"},
                           "subsets": [{"addresses": [{"ip": "10.1.1.1"}, {"ip": "not-an-ip"}, {"ip": "127.248.0.3"}],
                                        "ports": [{"name": "http", "port": 8080}]},
                                       {"addresses": [{"ip": "127.248.0.4"}], "ports": [{"name": "http", "port": 0}]}]},
                          core_pb2.Endpoints)
    table = build_table([svc()], {"ns/web": bad}, node_name="n1", nodeport_addresses=[])
    assert table.routes[("127.98.0.10", 80)].endpoints == (Endpoint("127.248.0.3", 8080, ""),)
