"""The scheduling cycle end to end over real plugins (no cluster): profiles, scoring, messages."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import Snapshot
from scheduler.nodeinfo import add_pod, new_node_info, new_pod_info
from scheduler.profile import ConfigError, Profile, fit_error_message, load_profiles


def node(name: str, cpu: str = "4", labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False) -> Any:
    return codec.from_dict({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                            "spec": {"taints": taints or [], "unschedulable": unschedulable},
                            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}, core_pb2.Node)


def pod(name: str, cpu: str = "100m", labels: dict[str, str] | None = None, **spec: Any) -> Any:
    body = {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}], **spec}
    return codec.from_dict({"metadata": {"name": name, "namespace": "default", "labels": labels or {}},
                            "spec": body}, core_pb2.Pod)


def test_default_profile_spreads_by_least_allocated() -> None:
    """With the default plugins a pod goes to the emptier node (LeastAllocated + balanced scores)."""
    busy = new_node_info(node("busy"))
    add_pod(busy, new_pod_info(pod("existing", cpu="3", nodeName="busy")))
    idle = new_node_info(node("idle"))
    result = Profile().schedule(pod("p"), Snapshot([busy, idle]))
    assert result.node == "idle"


def test_required_anti_affinity_separates_pods() -> None:
    """A pod with required anti-affinity to app=web never lands beside an app=web pod."""
    a, b = new_node_info(node("a")), new_node_info(node("b"))
    add_pod(a, new_pod_info(pod("web-1", labels={"app": "web"}, nodeName="a")))
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    for _ in range(10):
        assert Profile().schedule(pod("web-2", labels={"app": "web"}, affinity=anti), Snapshot([a, b])).node == "b"


def test_unschedulable_message_is_kubernetes_wording() -> None:
    """A pod that fits nowhere gets the FitError histogram, reasons sorted as strings."""
    nodes = [new_node_info(node("t", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])),
             new_node_info(node("s1", cpu="1")), new_node_info(node("s2", cpu="1")),
             new_node_info(node("c", unschedulable=True))]
    result = Profile().schedule(pod("big", cpu="2"), Snapshot(nodes))
    assert result.node is None
    assert result.status.message() == (
        "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "1 node(s) were unschedulable, 2 Insufficient cpu.")


def test_fit_error_message_histogram() -> None:
    """Reasons are counted across nodes and sorted as strings, as Kubernetes' FitError does."""
    from scheduler.framework import Status

    diagnosis = {"a": Status.unschedulable("Insufficient cpu"), "b": Status.unschedulable("Insufficient cpu"),
                 "c": Status.unresolvable("node(s) didn't match Pod's node affinity/selector")}
    assert fit_error_message(3, diagnosis) == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.")


def test_no_nodes() -> None:
    """With no nodes at all the message says so."""
    assert Profile().schedule(pod("p"), Snapshot([])).status.message() == "no nodes available to schedule pods"


def test_load_profiles_from_config() -> None:
    """A config can disable plugins, set weights and plugin args, and define several profiles."""
    profiles, pct = load_profiles({
        "percentageOfNodesToScore": 50,
        "profiles": [
            {"schedulerName": "default-scheduler", "plugins": {"disabled": ["ImageLocality"],
                                                               "weights": {"NodeResourcesFit": 5}}},
            {"schedulerName": "packer", "pluginConfig": [
                {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}]},
        ]})
    assert pct == 50 and [p.name for p in profiles] == ["default-scheduler", "packer"]
    assert "ImageLocality" not in profiles[0].weights and profiles[0].weights["NodeResourcesFit"] == 5
    busy = new_node_info(node("busy"))
    add_pod(busy, new_pod_info(pod("existing", cpu="3", nodeName="busy")))
    idle = new_node_info(node("idle"))
    assert profiles[1].schedule(pod("p"), Snapshot([busy, idle])).node == "busy"


@pytest.mark.parametrize("config", [
    {"profiles": [{"plugins": {"enabled": ["NoSuchPlugin"]}}]},
    {"bogus": 1},
    {"percentageOfNodesToScore": 101},
    {"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]},
    {"profiles": [{"pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Nope"}}}]}]},
], ids=["unknown-plugin", "unknown-field", "bad-percentage", "duplicate-profile", "bad-plugin-args"])
def test_bad_config_is_rejected(config: dict[str, Any]) -> None:
    """Invalid scheduler configs fail with ConfigError naming the problem."""
    with pytest.raises(ConfigError):
        load_profiles(config)


def test_percentage_of_nodes_to_score() -> None:
    """Below 100 nodes all are evaluated; above, kube-scheduler's adaptive share (at least 100 nodes)."""
    p = Profile()
    assert p.num_feasible_nodes_to_find(50) == 50
    assert p.num_feasible_nodes_to_find(1000) == 420  # 50 - 1000/125 = 42 %
    assert p.num_feasible_nodes_to_find(5000) == 500  # floor of 10 %... max(5, 50-40)=10 %
    assert p.num_feasible_nodes_to_find(250) == 120  # 48 % of 250
    assert Profile(percentage_of_nodes_to_score=100).num_feasible_nodes_to_find(5000) == 5000


def _window(names: list[str], start: int, count: int) -> set[str]:
    return {names[(start + i) % len(names)] for i in range(count)}


def test_filtering_stops_at_enough_feasible_nodes_from_a_rotating_start() -> None:
    """As kube-scheduler's findNodesThatPassFilters: filtering stops once num_feasible_nodes_to_find
    nodes passed, and the next cycle starts after the last node processed (rejected ones count)."""
    infos = [new_node_info(node(f"n{i:03}", unschedulable=i < 10)) for i in range(250)]
    names = [ni.name for ni in infos]
    snapshot, profile = Snapshot(infos), Profile()
    first = profile.schedule(pod("p"), snapshot)
    assert (first.evaluated, first.feasible) == (130, 120)  # 10 cordoned + 120 feasible
    assert first.node in _window(names, 10, 120)
    assert set(first.diagnosis) == set(names[:10])
    second = profile.schedule(pod("p"), snapshot)
    assert (second.evaluated, second.feasible) == (120, 120)
    assert second.node in _window(names, 130, 120)
    third = profile.schedule(pod("p"), snapshot)  # wraps around: 250..259 is 0..9, cordoned
    assert (third.evaluated, third.feasible) == (130, 120)
    assert third.node in _window(names, 10, 120)


def test_ties_are_broken_at_random_among_the_best() -> None:
    """Equal best totals: each of the tied nodes gets picked; a worse node never is."""
    busy = new_node_info(node("busy"))
    add_pod(busy, new_pod_info(pod("existing", cpu="3", nodeName="busy")))
    idle = [new_node_info(node(f"idle{i}")) for i in range(4)]
    profile = Profile(rng=random.Random(7))
    chosen = {profile.schedule(pod("p"), Snapshot([busy, *idle])).node for _ in range(200)}
    assert chosen == {f"idle{i}" for i in range(4)}
