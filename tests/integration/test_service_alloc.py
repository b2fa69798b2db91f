"""Service ClusterIP and NodePort allocation against the real apiserver and etcd.

The allocation keys (/kplane/allocations/...) are read straight from etcd to check that what a
Service holds is recorded, and freed when it no longer holds it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from apiserver.allocator import IPS_PREFIX, NODE_PORTS_PREFIX
from apiserver.storage import Storage
from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.devcluster import APIServer, start_apiserver, stop_process

SVC = resolve("services")


def service(name: str, *, stype: str = "", cluster_ip: str = "", node_ports: list[int] | None = None,
            ports: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"app": name},
        "ports": [{"name": f"p{i}", "port": 80 + i, "targetPort": 8080 + i} for i in range(ports)],
    }
    if ports == 1:
        del body["ports"][0]["name"]
    if stype:
        body["type"] = stype
    if cluster_ip:
        body["clusterIP"] = cluster_ip
    for i, np in enumerate(node_ports or []):
        body["ports"][i]["nodePort"] = np
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def as_dict(msg: object) -> dict[str, Any]:
    return object_to_dict(SVC, msg)  # type: ignore[arg-type]


@pytest.fixture
async def etcd_kv(apiserver: APIServer) -> AsyncIterator[Storage]:
    storage = Storage(apiserver.etcd.url)
    await storage.connect()
    yield storage
    await storage.close()


async def free_node_port(kv: Storage, lo: int, hi: int) -> int:
    """A node port of [lo, hi) that no Service holds now."""
    for port in range(lo, hi):
        if await kv.get(NODE_PORTS_PREFIX + str(port)) is None:
            return port
    raise AssertionError(f"no free node port in {lo}-{hi}")


def in_range(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


async def test_cluster_ip_is_allocated_from_the_range_and_recorded(
        client: Client, namespace: str, service_cidr: str, etcd_kv: Storage) -> None:
    """A ClusterIP Service gets a random address of the range (the dynamic upper part first),
    clusterIPs/ipFamilies/ipFamilyPolicy set as Kubernetes sets them, and an allocation key
    owned by this Service."""
    created = as_dict(await client.create(SVC, service("web"), namespace=namespace))
    spec = created["spec"]
    ip = spec["clusterIP"]
    assert in_range(ip, service_cidr)
    net = ipaddress.ip_network(service_cidr)
    assert int(ipaddress.ip_address(ip)) - int(net.network_address) > 256  # not the static lower part
    assert spec["clusterIPs"] == [ip]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["type"] == "ClusterIP" and "nodePort" not in spec["ports"][0]
    kv = await etcd_kv.get(IPS_PREFIX + ip)
    assert kv is not None
    assert kv.value.decode() == f"{namespace}/web/{created['metadata']['uid']}"


async def test_requested_cluster_ip_honoured_duplicate_and_out_of_range_rejected(
        client: Client, namespace: str, service_cidr: str) -> None:
    net = ipaddress.ip_network(service_cidr)
    wanted = str(net.network_address + 77)
    created = as_dict(await client.create(SVC, service("a", cluster_ip=wanted), namespace=namespace))
    assert created["spec"]["clusterIP"] == wanted and created["spec"]["clusterIPs"] == [wanted]
    with pytest.raises(api.Invalid) as info:
        await client.create(SVC, service("b", cluster_ip=wanted), namespace=namespace)
    assert str(info.value) == (f'Service "b" is invalid: spec.clusterIPs: Invalid value: ["{wanted}"]: '
                               f"failed to allocate IP {wanted}: provided IP is already allocated")
    assert [c[2] for c in info.value.causes] == ["spec.clusterIPs"]
    outside = "127.1.2.3"
    with pytest.raises(api.Invalid) as info:
        await client.create(SVC, service("c", cluster_ip=outside), namespace=namespace)
    assert str(info.value) == (
        f'Service "c" is invalid: spec.clusterIPs: Invalid value: ["{outside}"]: failed to allocate IP {outside}: '
        f"the provided IP ({outside}) is not in the valid range. The range of valid IPs is {service_cidr}")
    # the network address is not a usable address either
    with pytest.raises(api.Invalid, match="is not in the valid range"):
        await client.create(SVC, service("d", cluster_ip=str(net.network_address)), namespace=namespace)
    with pytest.raises(api.Invalid, match=r"spec.clusterIPs\[0\]: Invalid value: \"10.0.0.300\""):
        await client.create(SVC, service("e", cluster_ip="10.0.0.300"), namespace=namespace)
    for name in ("b", "c", "d", "e"):
        with pytest.raises(api.NotFound):
            await client.get(SVC, name, namespace=namespace)


async def test_headless_and_external_name_allocate_nothing(client: Client, namespace: str, etcd_kv: Storage) -> None:
    before = len((await etcd_kv.list(IPS_PREFIX))[0])
    headless = as_dict(await client.create(SVC, service("h", cluster_ip="None"), namespace=namespace))
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["clusterIPs"] == ["None"]
    ext = service("x", stype="ExternalName", externalName="example.com")
    del ext["spec"]["selector"]
    created = as_dict(await client.create(SVC, ext, namespace=namespace))
    assert "clusterIP" not in created["spec"]
    assert len((await etcd_kv.list(IPS_PREFIX))[0]) == before


async def test_node_ports_allocated_requested_duplicate_and_out_of_range(
        client: Client, namespace: str, etcd_kv: Storage) -> None:
    created = as_dict(await client.create(SVC, service("np", stype="NodePort", ports=2), namespace=namespace))
    nps = [p["nodePort"] for p in created["spec"]["ports"]]
    assert len(set(nps)) == 2 and all(30000 <= n <= 32767 for n in nps)
    assert created["spec"]["externalTrafficPolicy"] == "Cluster"
    for n in nps:
        assert await etcd_kv.get(NODE_PORTS_PREFIX + str(n)) is not None
    # a requested port in the static lower part of the range
    free = await free_node_port(etcd_kv, 30010, 30080)
    asked = as_dict(await client.create(SVC, service("np2", stype="NodePort", node_ports=[free]), namespace=namespace))
    assert asked["spec"]["ports"][0]["nodePort"] == free
    with pytest.raises(api.Invalid) as info:
        await client.create(SVC, service("np3", stype="NodePort", node_ports=[free]), namespace=namespace)
    assert str(info.value) == (f'Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: {free}: '
                               "provided port is already allocated")
    with pytest.raises(api.Invalid) as info:
        await client.create(SVC, service("np4", stype="NodePort", node_ports=[8080]), namespace=namespace)
    assert str(info.value) == ('Service "np4" is invalid: spec.ports[0].nodePort: Invalid value: 8080: '
                               "provided port is not in the valid range. The range of valid ports is 30000-32767")
    with pytest.raises(api.Invalid, match=r"spec.ports\[0\].port: Invalid value: 70000: must be between 1 and 65535"):
        bad = service("np5", stype="NodePort")
        bad["spec"]["ports"][0]["port"] = 70000
        await client.create(SVC, bad, namespace=namespace)
    # nodePort on a ClusterIP service is refused by validation
    with pytest.raises(api.Invalid, match=r"spec.ports\[0\].nodePort: Forbidden"):
        await client.create(SVC, service("np6", node_ports=[free + 1]), namespace=namespace)


async def test_failed_create_holds_nothing(client: Client, namespace: str, etcd_kv: Storage) -> None:
    """A create refused for a taken node port keeps no ClusterIP or other port picked for it."""
    first = as_dict(await client.create(SVC, service("one", stype="NodePort"), namespace=namespace))
    taken = first["spec"]["ports"][0]["nodePort"]
    ips_before = {kv.key for kv in (await etcd_kv.list(IPS_PREFIX))[0]}
    ports_before = {kv.key for kv in (await etcd_kv.list(NODE_PORTS_PREFIX))[0]}
    body = service("two", stype="NodePort", ports=2)
    body["spec"]["ports"][1]["nodePort"] = taken
    with pytest.raises(api.Invalid, match=rf"spec.ports\[1\].nodePort: Invalid value: {taken}: provided port is already"):
        await client.create(SVC, body, namespace=namespace)
    assert {kv.key for kv in (await etcd_kv.list(IPS_PREFIX))[0]} == ips_before
    assert {kv.key for kv in (await etcd_kv.list(NODE_PORTS_PREFIX))[0]} == ports_before
    # AlreadyExists with a requested address leaves the first Service's address alone
    with pytest.raises(api.AlreadyExists):
        await client.create(SVC, service("one", cluster_ip=first["spec"]["clusterIP"]), namespace=namespace)
    kv = await etcd_kv.get(IPS_PREFIX + first["spec"]["clusterIP"])
    assert kv is not None and kv.value.decode().startswith(f"{namespace}/one/")


async def test_fifty_concurrent_creates_get_distinct_ips_and_node_ports(
        client: Client, namespace: str, service_cidr: str, etcd_kv: Storage) -> None:
    results = await asyncio.gather(*(client.create(SVC, service(f"s{i}", stype="NodePort"), namespace=namespace)
                                     for i in range(50)))
    objs = [as_dict(r) for r in results]
    ips = [o["spec"]["clusterIP"] for o in objs]
    ports = [o["spec"]["ports"][0]["nodePort"] for o in objs]
    assert len(set(ips)) == 50 and all(in_range(ip, service_cidr) for ip in ips)
    assert len(set(ports)) == 50
    # every one recorded, owned by the service that holds it
    for o in objs:
        kv = await etcd_kv.get(IPS_PREFIX + o["spec"]["clusterIP"])
        assert kv is not None and kv.value.decode() == f"{namespace}/{o['metadata']['name']}/{o['metadata']['uid']}"
        kv = await etcd_kv.get(NODE_PORTS_PREFIX + str(o["spec"]["ports"][0]["nodePort"]))
        assert kv is not None and kv.value.decode().split("/")[1] == o["metadata"]["name"]


async def test_concurrent_creates_asking_for_the_same_values_one_wins(
        client: Client, namespace: str, service_cidr: str, etcd_kv: Storage) -> None:
    net = ipaddress.ip_network(service_cidr)
    wanted = str(net.network_address + 99)
    port = await free_node_port(etcd_kv, 30020, 30085)
    results = await asyncio.gather(
        *(client.create(SVC, service(f"r{i}", stype="NodePort", cluster_ip=wanted if i % 2 else "",
                                     node_ports=[port] if i % 2 == 0 else []), namespace=namespace)
          for i in range(20)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, api.Invalid) and "already allocated" in str(e) for e in failed)
    assert len(ok) == 2
    assert sum(1 for r in ok if as_dict(r)["spec"]["clusterIP"] == wanted) == 1
    assert sum(1 for r in ok if as_dict(r)["spec"]["ports"][0]["nodePort"] == port) == 1


async def test_delete_releases_ip_and_node_port(client: Client, namespace: str, service_cidr: str,
                                                etcd_kv: Storage) -> None:
    net = ipaddress.ip_network(service_cidr)
    wanted = str(net.network_address + 123)
    port = await free_node_port(etcd_kv, 30030, 30085)
    await client.create(SVC, service("gone", stype="NodePort", cluster_ip=wanted, node_ports=[port]),
                        namespace=namespace)
    with pytest.raises(api.Invalid):
        await client.create(SVC, service("other", cluster_ip=wanted), namespace=namespace)
    await client.delete(SVC, "gone", namespace=namespace)
    assert await etcd_kv.get(IPS_PREFIX + wanted) is None
    assert await etcd_kv.get(NODE_PORTS_PREFIX + str(port)) is None
    again = as_dict(await client.create(SVC, service("other", stype="NodePort", cluster_ip=wanted, node_ports=[port]),
                                        namespace=namespace))
    assert again["spec"]["clusterIP"] == wanted and again["spec"]["ports"][0]["nodePort"] == port


async def test_delete_through_finalizers_releases_when_the_object_goes(
        client: Client, namespace: str, etcd_kv: Storage) -> None:
    body = service("fin", stype="NodePort")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    created = as_dict(await client.create(SVC, body, namespace=namespace))
    ip, port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    await client.delete(SVC, "fin", namespace=namespace)
    # still there (deletionTimestamp set): still holds its values
    held = as_dict(await client.get(SVC, "fin", namespace=namespace))
    assert held["metadata"].get("deletionTimestamp")
    assert await etcd_kv.get(IPS_PREFIX + ip) is not None
    await client.patch(SVC, "fin", {"metadata": {"finalizers": None}}, namespace=namespace)
    with pytest.raises(api.NotFound):
        await client.get(SVC, "fin", namespace=namespace)
    assert await etcd_kv.get(IPS_PREFIX + ip) is None
    assert await etcd_kv.get(NODE_PORTS_PREFIX + str(port)) is None


async def test_type_changes_allocate_and_release(client: Client, namespace: str, etcd_kv: Storage) -> None:
    created = as_dict(await client.create(SVC, service("t"), namespace=namespace))
    ip = created["spec"]["clusterIP"]
    # ClusterIP -> NodePort: a node port is allocated, the ClusterIP kept
    patched = as_dict(await client.patch(SVC, "t", {"spec": {"type": "NodePort"}}, namespace=namespace))
    port = patched["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767 and patched["spec"]["clusterIP"] == ip
    assert patched["spec"]["externalTrafficPolicy"] == "Cluster"
    assert await etcd_kv.get(NODE_PORTS_PREFIX + str(port)) is not None
    # an update that leaves clusterIP and nodePort out keeps both (kubectl replace of the manifest)
    replaced = service("t", stype="NodePort")
    replaced["metadata"]["labels"] = {"v": "2"}
    updated = as_dict(await client.update(SVC, replaced, namespace=namespace))
    assert updated["spec"]["clusterIP"] == ip and updated["spec"]["ports"][0]["nodePort"] == port
    # NodePort -> ClusterIP: node port cleared and freed, externalTrafficPolicy dropped
    back = as_dict(await client.patch(SVC, "t", {"spec": {"type": "ClusterIP"}}, namespace=namespace))
    assert "nodePort" not in back["spec"]["ports"][0] and "externalTrafficPolicy" not in back["spec"]
    assert back["spec"]["clusterIP"] == ip
    assert await etcd_kv.get(NODE_PORTS_PREFIX + str(port)) is None
    # ClusterIP -> ExternalName: the address is freed; and back: a new one is allocated
    ext = as_dict(await client.patch(SVC, "t", {"spec": {"type": "ExternalName", "externalName": "example.com"}},
                                     namespace=namespace))
    assert "clusterIP" not in ext["spec"] and "clusterIPs" not in ext["spec"]
    assert await etcd_kv.get(IPS_PREFIX + ip) is None
    again = as_dict(await client.patch(SVC, "t", {"spec": {"type": "ClusterIP", "externalName": None}},
                                       namespace=namespace))
    new_ip = again["spec"]["clusterIP"]
    assert new_ip and await etcd_kv.get(IPS_PREFIX + new_ip) is not None
    # the ClusterIP may not change
    with pytest.raises(api.Invalid, match=r"spec.clusterIPs\[0\]: Invalid value: .*may not change once set"):
        await client.patch(SVC, "t", {"spec": {"clusterIP": ip, "clusterIPs": [ip]}}, namespace=namespace)
    # changing a node port to a requested one frees the old one
    np = as_dict(await client.patch(SVC, "t", {"spec": {"type": "NodePort"}}, namespace=namespace))
    old_port = np["spec"]["ports"][0]["nodePort"]
    target = await free_node_port(etcd_kv, 30040, 30085)
    moved = as_dict(await client.patch(
        SVC, "t", {"spec": {"ports": [{"port": 80, "targetPort": 8080, "nodePort": target}]}}, namespace=namespace))
    assert moved["spec"]["ports"][0]["nodePort"] == target
    assert await etcd_kv.get(NODE_PORTS_PREFIX + str(old_port)) is None
    assert await etcd_kv.get(NODE_PORTS_PREFIX + str(target)) is not None


async def test_dry_run_allocates_nothing(client: Client, namespace: str, service_cidr: str,
                                         etcd_kv: Storage) -> None:
    net = ipaddress.ip_network(service_cidr)
    wanted = str(net.network_address + 150)
    ips_before = {kv.key for kv in (await etcd_kv.list(IPS_PREFIX))[0]}
    preview = as_dict(await client.create(SVC, service("dry", stype="NodePort"), namespace=namespace, dry_run=True))
    assert in_range(preview["spec"]["clusterIP"], service_cidr) and preview["spec"]["ports"][0]["nodePort"]
    asked = as_dict(await client.create(SVC, service("dry", cluster_ip=wanted), namespace=namespace, dry_run=True))
    assert asked["spec"]["clusterIP"] == wanted
    assert {kv.key for kv in (await etcd_kv.list(IPS_PREFIX))[0]} == ips_before
    with pytest.raises(api.NotFound):
        await client.get(SVC, "dry", namespace=namespace)
    real = as_dict(await client.create(SVC, service("real", cluster_ip=wanted), namespace=namespace))
    assert real["spec"]["clusterIP"] == wanted
    # a dry run asking for a taken address is refused as the real create would be
    with pytest.raises(api.Invalid, match="provided IP is already allocated"):
        await client.create(SVC, service("dry2", cluster_ip=wanted), namespace=namespace, dry_run=True)
    # a dry-run type change shows a node port but keeps nothing
    ports_before = {kv.key for kv in (await etcd_kv.list(NODE_PORTS_PREFIX))[0]}
    shown = as_dict(await client.patch(SVC, "real", {"spec": {"type": "NodePort"}}, namespace=namespace, dry_run=True))
    assert shown["spec"]["ports"][0]["nodePort"]
    assert {kv.key for kv in (await etcd_kv.list(NODE_PORTS_PREFIX))[0]} == ports_before
    assert "nodePort" not in as_dict(await client.get(SVC, "real", namespace=namespace))["spec"]["ports"][0]


async def test_repair_at_start_frees_leaks_and_records_missing(
        apiserver: APIServer, client: Client, namespace: str, service_cidr: str, etcd_kv: Storage,
        tmp_path: Path) -> None:
    """An apiserver starting on an etcd with an allocation no Service holds frees it, and one a
    Service holds without a key (written before allocations were recorded) gets its key."""
    net = ipaddress.ip_network(service_cidr)
    leaked_ip = str(net.network_address + 201)
    await etcd_kv.put_raw(IPS_PREFIX + leaked_ip, f"{namespace}/ghost/0000".encode())
    await etcd_kv.put_raw(NODE_PORTS_PREFIX + "30077", f"{namespace}/ghost/0000".encode())
    kept = as_dict(await client.create(SVC, service("kept", stype="NodePort"), namespace=namespace))
    kept_ip, kept_port = kept["spec"]["clusterIP"], kept["spec"]["ports"][0]["nodePort"]
    # lose its keys, as if it had been written before this bookkeeping
    resp = await etcd_kv.get(IPS_PREFIX + kept_ip)
    assert resp is not None
    await etcd_kv.delete(IPS_PREFIX + kept_ip, resp.mod_revision)
    resp = await etcd_kv.get(NODE_PORTS_PREFIX + str(kept_port))
    assert resp is not None
    await etcd_kv.delete(NODE_PORTS_PREFIX + str(kept_port), resp.mod_revision)
    second = start_apiserver(apiserver.etcd, tmp_path, "--service-cluster-ip-range", service_cidr)
    try:
        assert await etcd_kv.get(IPS_PREFIX + leaked_ip) is None
        assert await etcd_kv.get(NODE_PORTS_PREFIX + "30077") is None
        owner = f"{namespace}/kept/{kept['metadata']['uid']}"
        kv = await etcd_kv.get(IPS_PREFIX + kept_ip)
        assert kv is not None and kv.value.decode() == owner
        kv = await etcd_kv.get(NODE_PORTS_PREFIX + str(kept_port))
        assert kv is not None and kv.value.decode() == owner
        log = second.log_path.read_text()
        summary = [json.loads(line) for line in log.splitlines()
                   if line.startswith("{") and "service allocations checked" in line]
        assert summary and summary[0]["freed"] >= 2 and summary[0]["recorded"] >= 2
        # the freed address can be taken again (through the second apiserver)
        async with Client([second.address], identity="pytest") as c2:
            got = as_dict(await c2.create(SVC, service("reuse", cluster_ip=leaked_ip), namespace=namespace))
            assert got["spec"]["clusterIP"] == leaked_ip
    finally:
        stop_process(second.proc)


async def test_apiserver_rejects_a_bad_range(apiserver: APIServer, tmp_path: Path) -> None:
    """A malformed or IPv6 range is a start-up error naming the flag's value."""
    import subprocess
    import sys

    for bad in ("127.96.0.0/33", "fd00::/112", "nonsense"):
        out = subprocess.run([sys.executable, "-m", "apiserver", "--etcd-servers", apiserver.etcd.url, "--port", "1",
                              "--service-cluster-ip-range", bad], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        assert "service cluster IP range" in out.stderr and bad in out.stderr
    out = subprocess.run([sys.executable, "-m", "apiserver", "--service-node-port-range", "40000-30000"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "invalid service node port range" in out.stderr


async def wait_for(check: Any, timeout: float = 60.0) -> Any:
    """Poll `check()` (async, returns a value or None) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            value = await check()
        except api.NotFound:
            value = None
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def test_default_kubernetes_service_points_at_the_apiserver(
        apiserver: APIServer, client: Client, service_cidr: str, tmp_path: Path) -> None:
    """The apiserver keeps `default/kubernetes`: the range's first address, 443 -> its gRPC port,
    Endpoints at its address; another apiserver on the same etcd leaves it alone while the first
    lives; a target port nothing listens on is taken back."""
    port = int(apiserver.address.rsplit(":", 1)[1])
    first = str(ipaddress.ip_network(service_cidr).network_address + 1)
    eps_rt = resolve("endpoints")

    async def service() -> dict[str, Any]:
        return as_dict(await client.get(SVC, "kubernetes", namespace="default"))

    svc = await wait_for(service)
    assert svc["spec"]["clusterIP"] == first and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    assert "selector" not in svc["spec"]

    async def endpoints() -> dict[str, Any]:
        return object_to_dict(eps_rt, await client.get(eps_rt, "kubernetes", namespace="default"))

    eps = await wait_for(endpoints)
    assert eps["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                               "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    second = start_apiserver(apiserver.etcd, tmp_path, "--service-cluster-ip-range", service_cidr)
    try:
        await asyncio.sleep(1.0)  # its first reconcile runs as it starts
        assert (await service())["spec"]["ports"][0]["targetPort"] == port
    finally:
        stop_process(second.proc)
    # point it at a port nothing listens on (the stopped apiserver's): the live one takes it back
    dead = int(second.address.rsplit(":", 1)[1])
    await client.patch(SVC, "kubernetes", {"spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                               "targetPort": dead}]}}, namespace="default")

    async def restored() -> bool:
        return (await service())["spec"]["ports"][0]["targetPort"] == port

    await wait_for(restored, timeout=60)
