"""The pure parts of Service allocation: ranges, bands, picking, planning, the update rules."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from apiserver.allocator import (
    IPS_PREFIX,
    NODE_PORTS_PREFIX,
    IPRange,
    PortRange,
    ServiceAllocator,
    pick_free,
    prepare_service_update,
)
from apiserver.storage import Storage
from kplane.api import errors as api
from kplane.cluster.components import check_service_cidr


def allocator(cidr: str = "127.96.0.0/16", ports: str = "30000-32767", seed: int = 1) -> ServiceAllocator:
    # plan() never touches storage: an unconnected Storage is enough
    return ServiceAllocator(Storage("127.0.0.1:1"), IPRange(cidr), PortRange(ports), rng=random.Random(seed))


def svc(stype: str = "ClusterIP", cluster_ip: str = "", node_ports: tuple[int, ...] = (), nports: int = 1,
        uid: str = "u1", **spec: Any) -> dict[str, Any]:
    ports: list[dict[str, Any]] = [{"name": f"p{i}", "port": 80 + i, "protocol": "TCP"} for i in range(nports)]
    for i, np in enumerate(node_ports):
        ports[i]["nodePort"] = np
    body: dict[str, Any] = {"type": stype, "ports": ports, **spec}
    if cluster_ip:
        body["clusterIP"] = cluster_ip
        body["clusterIPs"] = [cluster_ip]
    return {"metadata": {"name": "s", "namespace": "ns", "uid": uid}, "spec": body}


def test_ip_range_usable_addresses_and_bands() -> None:
    r = IPRange("127.96.0.0/16")
    assert (r.size, r.offset, r.first()) == (65534, 256, "127.96.0.1")
    assert r.index("127.96.0.0") is None and r.index("127.96.255.255") is None  # network, broadcast
    assert r.index("127.96.0.1") == 0 and r.index("127.96.1.1") == 256
    assert r.index("127.97.0.1") is None and r.index("nonsense") is None and r.index("::1") is None
    assert str(IPRange("127.100.7.9/24")) == "127.100.7.0/24"  # host bits dropped, as Kubernetes parses CIDRs
    assert IPRange("127.100.7.0/28").offset == 16 and IPRange("127.100.7.0/29").offset == 0
    assert IPRange("127.96.0.0/12").offset == 256


@pytest.mark.parametrize("bad", ["127.96.0.0/31", "fd00::/112", "10.96.0.0/12", "x", "127.96.0.0/40"])
def test_ip_range_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="service cluster IP range"):
        IPRange(bad)


def test_port_range_forms_and_offset() -> None:
    p = PortRange("30000-32767")
    assert (p.base, p.size, p.offset, str(p)) == (30000, 2768, 86, "30000-32767")
    assert str(PortRange("30000+99")) == "30000-30099" and str(PortRange("31000")) == "31000-31000"
    assert p.index(29999) is None and p.index(32767) == 2767
    for bad in ("a-b", "40000-30000", "0-10", "1-70000"):
        with pytest.raises(ValueError, match="invalid service node port range"):
            PortRange(bad)


def test_pick_free_prefers_the_upper_band_then_fills_the_lower() -> None:
    rng = random.Random(7)
    picks = {pick_free(100, 16, set(), rng) for _ in range(200)}
    assert picks and all(p is not None and 16 <= p < 100 for p in picks)
    upper_full = set(range(16, 100))
    assert pick_free(100, 16, upper_full, rng) in set(range(16))
    assert pick_free(100, 16, set(range(100)), rng) is None
    assert pick_free(100, 16, set(range(100)) - {3}, rng) == 3
    assert pick_free(100, 16, set(range(100)) - {57}, rng) == 57


def test_plan_create_fills_random_values_and_claims_them() -> None:
    a = allocator()
    obj = svc("NodePort", nports=3)
    plan = a.plan(obj, None)
    spec = obj["spec"]
    ip = spec["clusterIP"]
    assert spec["clusterIPs"] == [ip] and a.ips.index(ip) is not None and a.ips.index(ip) >= 256  # type: ignore[operator]
    nps = [p["nodePort"] for p in spec["ports"]]
    assert len(set(nps)) == 3 and all(30086 <= n <= 32767 for n in nps)
    assert set(plan.claims) == {IPS_PREFIX + ip, *(NODE_PORTS_PREFIX + str(n) for n in nps)}
    assert not any(c.requested for c in plan.claims.values()) and plan.releases == []
    companions = plan.companions()
    assert companions is not None and all(v == b"ns/s/u1" for _, v in companions.claim)
    # undo takes every filled value back out
    a._undo(obj, plan)
    assert "clusterIP" not in spec and all("nodePort" not in p for p in spec["ports"])


def test_plan_requested_values_out_of_range_are_invalid_with_kubernetes_wording() -> None:
    a = allocator()
    obj = svc("NodePort", cluster_ip="127.1.1.1", node_ports=(8080, 30005), nports=2)
    with pytest.raises(api.Invalid) as info:
        a.plan(obj, None)
    assert [message for _, message, _ in info.value.causes] == [
        'spec.clusterIPs: Invalid value: ["127.1.1.1"]: failed to allocate IP 127.1.1.1: the provided IP '
        "(127.1.1.1) is not in the valid range. The range of valid IPs is 127.96.0.0/16",
        "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767",
    ]


def test_plan_headless_external_name_and_lb_without_node_ports() -> None:
    a = allocator()
    assert a.plan(svc(cluster_ip="None"), None).claims == {}
    ext = svc("ExternalName")
    assert a.plan(ext, None).claims == {} and "clusterIP" not in ext["spec"]
    lb = svc("LoadBalancer", allocateLoadBalancerNodePorts=False, nports=2, node_ports=(30001,))
    plan = a.plan(lb, None)
    assert NODE_PORTS_PREFIX + "30001" in plan.claims and "nodePort" not in lb["spec"]["ports"][1]
    local = svc("LoadBalancer", externalTrafficPolicy="Local")
    a.plan(local, None)
    assert 30000 <= local["spec"]["healthCheckNodePort"] <= 32767
    # one node port shared by TCP and UDP of the same service is one allocation
    both = svc("NodePort", nports=2, node_ports=(30002, 30002))
    both["spec"]["ports"][1]["protocol"] = "UDP"
    assert [k for k in a.plan(both, None).claims if k.startswith(NODE_PORTS_PREFIX)] == [NODE_PORTS_PREFIX + "30002"]


def test_plan_update_claims_additions_and_releases_drops() -> None:
    a = allocator()
    old = svc("NodePort", cluster_ip="127.96.3.3", node_ports=(30010, 30011), nports=2)
    new = copy.deepcopy(old)
    new["spec"]["ports"][1]["nodePort"] = 30012
    plan = a.plan(new, old)
    assert list(plan.claims) == [NODE_PORTS_PREFIX + "30012"] and plan.claims[NODE_PORTS_PREFIX + "30012"].requested
    assert plan.releases == [NODE_PORTS_PREFIX + "30011"]
    gone = a.plan(None, old)
    assert gone.claims == {} and set(gone.releases) == {IPS_PREFIX + "127.96.3.3", NODE_PORTS_PREFIX + "30010",
                                                         NODE_PORTS_PREFIX + "30011"}
    assert gone.old_owner == b"ns/s/u1"
    # nothing changed: nothing to write beside the object
    assert a.plan(copy.deepcopy(old), old).companions() is None
    # kept values are not range-checked again (a range narrowed after they were given out)
    narrow = allocator(ports="31000-31999")
    assert narrow.plan(copy.deepcopy(old), old).claims == {}


def test_update_rules_keep_allocated_values_and_clear_what_a_type_change_drops() -> None:
    old = svc("NodePort", cluster_ip="127.96.3.3", node_ports=(30010, 30011), nports=2,
              externalTrafficPolicy="Cluster", ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack")
    # a replace that leaves out clusterIP and nodePorts keeps them (ports matched by name)
    new = svc("NodePort", nports=2, externalTrafficPolicy="Cluster")
    new["spec"]["ports"].reverse()
    prepare_service_update(new, old)
    assert new["spec"]["clusterIP"] == "127.96.3.3" and new["spec"]["clusterIPs"] == ["127.96.3.3"]
    assert {p["name"]: p["nodePort"] for p in new["spec"]["ports"]} == {"p0": 30010, "p1": 30011}
    # NodePort -> ClusterIP: node ports and externalTrafficPolicy go
    to_cip = copy.deepcopy(old)
    to_cip["spec"]["type"] = "ClusterIP"
    prepare_service_update(to_cip, old)
    assert all("nodePort" not in p for p in to_cip["spec"]["ports"]) and "externalTrafficPolicy" not in to_cip["spec"]
    # ... unless the user changed them (then validation speaks)
    changed = copy.deepcopy(old)
    changed["spec"]["type"] = "ClusterIP"
    changed["spec"]["ports"][0]["nodePort"] = 30020
    prepare_service_update(changed, old)
    assert changed["spec"]["ports"][0]["nodePort"] == 30020
    # -> ExternalName: the cluster IP fields go
    ext = copy.deepcopy(old)
    ext["spec"]["type"] = "ExternalName"
    prepare_service_update(ext, old)
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(ext["spec"])
    # a changed singular clusterIP carries the plural along
    single = copy.deepcopy(old)
    single["spec"]["clusterIP"] = "127.96.4.4"
    prepare_service_update(single, old)
    assert single["spec"]["clusterIPs"] == ["127.96.4.4"]


def test_kplane_up_checks_the_service_range() -> None:
    assert check_service_cidr("127.96.0.0/16", "127.244.0.0/14") is None
    assert "inside 127.0.0.0/8" in (check_service_cidr("10.96.0.0/12", "127.244.0.0/14") or "")
    assert "overlaps --cluster-cidr" in (check_service_cidr("127.245.0.0/16", "127.244.0.0/14") or "")
    assert "overlaps node IPs" in (check_service_cidr("127.0.0.0/12", "127.244.0.0/14") or "")
    assert "does not appear to be" in (check_service_cidr("bogus", "127.244.0.0/14") or "")
