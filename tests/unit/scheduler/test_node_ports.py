"""NodePorts, ported from upstream's nodeports node_ports_test.go (TestNodePorts,
TestPreFilterDisabled, TestGetContainerPorts) plus sidecar ports (util.GetHostPorts)."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import Code, CycleState, FilterPlugin, PreFilterPlugin, Status
from scheduler.nodeinfo import host_ports, new_node_info
from scheduler.plugins import node_ports
from scheduler.plugins.node_ports import ERR_REASON, port_conflicts

NODE = codec.from_dict({"metadata": {"name": "m1"}, "status": {"allocatable": {"pods": "10"}}}, core_pb2.Node)


def new_pod(*host_port_infos: str, name: str = "p", node: str = "m1") -> Any:
    """Upstream's newPod(host, "PROTO/IP/PORT", ...): one container with those host ports."""
    ports = []
    for info in host_port_infos:
        protocol, ip, port = info.split("/")
        ports.append({"containerPort": int(port), "hostPort": int(port), "protocol": protocol, "hostIP": ip})
    return codec.from_dict(
        {"metadata": {"name": name, "namespace": "default"},
         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i", "ports": ports}]}},
        core_pb2.Pod,
    )


@pytest.mark.parametrize(
    ("pod", "existing", "conflict"),
    [
        pytest.param(new_pod("UDP/127.0.0.1/8080"), new_pod("UDP/127.0.0.1/9090"), False, id="other port"),
        pytest.param(new_pod("UDP/127.0.0.1/8080"), new_pod("UDP/127.0.0.1/8080"), True, id="same udp port"),
        pytest.param(new_pod("TCP/127.0.0.1/8080"), new_pod("TCP/127.0.0.1/8080"), True, id="same tcp port"),
        pytest.param(new_pod("TCP/127.0.0.1/8080"), new_pod("TCP/127.0.0.2/8080"), False, id="different host ip"),
        pytest.param(new_pod("UDP/127.0.0.1/8080"), new_pod("TCP/127.0.0.1/8080"), False, id="different protocol"),
        pytest.param(new_pod("UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"), new_pod("UDP/127.0.0.1/8080"), True,
                     id="second udp port conflict"),
        pytest.param(new_pod("TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"),
                     new_pod("TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"), True, id="first tcp port conflict"),
        pytest.param(new_pod("TCP/0.0.0.0/8001"), new_pod("TCP/127.0.0.1/8001"), True,
                     id="first tcp port conflict due to 0.0.0.0 hostIP"),
        pytest.param(new_pod("TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"), new_pod("TCP/127.0.0.1/8001"), True,
                     id="TCP hostPort conflict due to 0.0.0.0 hostIP"),
        pytest.param(new_pod("TCP/127.0.0.1/8001"), new_pod("TCP/0.0.0.0/8001"), True,
                     id="second tcp port conflict to 0.0.0.0 hostIP"),
        pytest.param(new_pod("UDP/127.0.0.1/8001"), new_pod("TCP/0.0.0.0/8001"), False,
                     id="second different protocol"),
        pytest.param(new_pod("UDP/127.0.0.1/8001"), new_pod("TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001"), True,
                     id="UDP hostPort conflict due to 0.0.0.0 hostIP"),
        pytest.param(new_pod("TCP//8001"), new_pod("TCP/127.0.0.1/8001"), True, id="empty hostIP means 0.0.0.0"),
    ],
)
def test_node_ports(pod: Any, existing: Any, conflict: bool) -> None:
    """A host port conflicts on the same protocol and port when the IPs match or either is 0.0.0.0."""
    plugin = node_ports.new({}, None)  # type: ignore[arg-type]
    state = CycleState()
    node_info = new_node_info(NODE, [existing])
    result, status = plugin.pre_filter(state, pod, [node_info])
    assert result is None and status.is_success()
    got = plugin.filter(state, pod, node_info)
    assert got == (Status.unschedulable(ERR_REASON) if conflict else Status.success())


def test_skip_filter_without_host_ports() -> None:
    """A pod without host ports makes pre-filter return Skip ("skip filter")."""
    plugin = node_ports.new({}, None)  # type: ignore[arg-type]
    no_host_port = codec.from_dict(
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}},
        core_pb2.Pod,
    )
    for pod in (codec.from_dict({}, core_pb2.Pod), no_host_port):
        result, status = plugin.pre_filter(CycleState(), pod, [])
        assert result is None and status.code == Code.SKIP


def test_pre_filter_disabled() -> None:
    """Filter without pre-filter state returns an Error status (TestPreFilterDisabled)."""
    plugin = node_ports.new({}, None)  # type: ignore[arg-type]
    status = plugin.filter(CycleState(), new_pod("TCP/127.0.0.1/80"), new_node_info(NODE))
    assert status.code == Code.ERROR


def test_get_container_ports() -> None:
    """Only ports with a hostPort are collected, in container order (TestGetContainerPorts)."""
    def container(*ports: tuple[int, int]) -> dict[str, Any]:
        return {"name": f"c{ports[0][0]}", "image": "i",
                "ports": [{"containerPort": c, "hostPort": h, "protocol": "TCP"} for c, h in ports]}

    pod = codec.from_dict({"metadata": {"name": "p"}, "spec": {"containers": [
        container((8001, 8001), (8002, 8002)), container((8003, 8003), (8004, 8004)), container((8005, 0))]}},
        core_pb2.Pod)
    assert host_ports(pod) == [("0.0.0.0", "TCP", p) for p in (8001, 8002, 8003, 8004)]


def test_sidecar_ports_conflict() -> None:
    """Host ports of restartable init containers count, both on the node and for the incoming pod."""
    sidecar = codec.from_dict(
        {"metadata": {"name": "s", "namespace": "default"},
         "spec": {"containers": [{"name": "c", "image": "i"}],
                  "initContainers": [{"name": "side", "image": "i", "restartPolicy": "Always",
                                      "ports": [{"containerPort": 9000, "hostPort": 9000}]}]}},
        core_pb2.Pod,
    )
    plugin = node_ports.new({}, None)  # type: ignore[arg-type]
    state = CycleState()
    _, status = plugin.pre_filter(state, new_pod("TCP/0.0.0.0/9000"), [])
    assert status.is_success()
    assert plugin.filter(state, new_pod("TCP/0.0.0.0/9000"), new_node_info(NODE, [sidecar])) == Status.unschedulable(ERR_REASON)
    state = CycleState()
    _, status = plugin.pre_filter(state, sidecar, [])
    assert status.is_success()
    assert plugin.filter(state, sidecar, new_node_info(NODE, [new_pod("TCP/127.0.0.1/9000")])).is_rejected()


def test_port_conflicts_helper() -> None:
    """port_conflicts ignores non-positive ports, like HostPortInfo.CheckConflict."""
    used = {("0.0.0.0", "TCP", 80)}
    assert port_conflicts(used, ("10.0.0.1", "TCP", 80))
    assert not port_conflicts(used, ("10.0.0.1", "TCP", 0))
    assert not port_conflicts(used, ("10.0.0.1", "SCTP", 80))


def test_plugin_shape() -> None:
    """The module exposes NAME, a pre-filter/filter plugin, and rejects args."""
    plugin = node_ports.new({}, None)  # type: ignore[arg-type]
    assert plugin.NAME == node_ports.NAME == "NodePorts"
    assert isinstance(plugin, PreFilterPlugin) and isinstance(plugin, FilterPlugin)
    with pytest.raises(ValueError, match="NodePorts takes no args"):
        node_ports.new({"x": 1}, None)  # type: ignore[arg-type]
