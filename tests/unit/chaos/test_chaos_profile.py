"""`kplane up --profile/--cluster-cidr/--control-plane-replicas/--fake-nodes`: the command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplane.cluster import components
from kplane.cluster.components import ClusterOptions, build_components, check_cluster_cidr, node_pod_cidr
from kplane.cluster.etcd import EtcdBinary

ETCD = EtcdBinary("/usr/bin/etcd", (3, 4, 23), "PATH")


@pytest.fixture(autouse=True)
def all_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(components, "module_has_main", lambda name: name in {"scheduler", "controller_manager",
                                                                              "kubelet"})


def flags(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_fast_profile_timings(tmp_path: Path) -> None:
    """fast: 1 s heartbeats, 5 s grace, 5 s tolerations, 1 s monitor period, short leader leases."""
    specs = {s.name: s for s in build_components(ClusterOptions(data_dir=tmp_path, nodes=1, profile="fast"), ETCD)}
    kubelet, cm, api = specs["node-1"].argv, specs["controller-manager"].argv, specs["apiserver"].argv
    assert flags(kubelet, "--node-lease-renew-interval") == "1s"
    assert flags(kubelet, "--node-status-update-frequency") == "1s"
    assert flags(cm, "--node-monitor-grace-period") == "5s" and flags(cm, "--node-monitor-period") == "1s"
    assert flags(cm, "--leader-elect-lease-duration") == "6s"
    assert flags(api, "--default-unreachable-toleration-seconds") == "5"
    assert flags(api, "--default-not-ready-toleration-seconds") == "5"
    assert specs["node-1"].extra["profile"] == "fast"


def test_default_profile_adds_nothing(tmp_path: Path) -> None:
    """default keeps every component's Kubernetes-like defaults (no timing flags at all)."""
    specs = build_components(ClusterOptions(data_dir=tmp_path, nodes=1), ETCD)
    for s in specs:
        assert "--node-monitor-grace-period" not in s.argv and "--node-lease-renew-interval" not in s.argv


def test_cluster_cidr_gives_node_i_the_ith_slash24(tmp_path: Path) -> None:
    """127.244.0.0/14 keeps the old 127.244.i.0/24; another range moves every node."""
    assert node_pod_cidr("127.244.0.0/14", 1) == "127.244.1.0/24"
    assert node_pod_cidr("127.244.0.0/14", 300) == "127.245.44.0/24"
    specs = build_components(ClusterOptions(data_dir=tmp_path, nodes=2, cluster_cidr="127.252.0.0/16"), ETCD)
    cidrs = [flags(s.argv, "--pod-cidr") for s in specs if s.name.startswith("node-")]
    assert cidrs == ["127.252.1.0/24", "127.252.2.0/24"]


def test_cluster_cidr_checks() -> None:
    """Off-loopback, too small and too full ranges are refused with the reason."""
    assert check_cluster_cidr("127.252.0.0/16", 3) is None
    assert "must be inside 127.0.0.0/8" in str(check_cluster_cidr("10.0.0.0/16", 3))
    assert "too small" in str(check_cluster_cidr("127.1.1.0/24", 1))
    assert "room for 255 node(s)" in str(check_cluster_cidr("127.252.0.0/16", 300))
    assert "room for 127 node(s)" in str(check_cluster_cidr("127.252.0.0/16", 200, fake_nodes=5))
    assert str(check_cluster_cidr("127.x/16", 1)).startswith("--cluster-cidr 127.x/16: ")


def test_standbys_and_fake_nodes(tmp_path: Path) -> None:
    """--control-plane-replicas 2 adds scheduler-2 and controller-manager-2; --fake-nodes adds one
    fake kubelet process on the upper half of the cluster range, labelled for nodeSelectors."""
    opts = ClusterOptions(data_dir=tmp_path, nodes=1, control_plane_replicas=2, fake_nodes=20,
                          cluster_cidr="127.253.0.0/16", metrics_port_base=9100)
    specs = {s.name: s for s in build_components(opts, ETCD)}
    assert {"scheduler-2", "controller-manager-2", "fake-nodes"} <= set(specs)
    assert flags(specs["scheduler-2"].argv, "--metrics-port") == "0"
    assert specs["controller-manager-2"].extra["role"] == "controller-manager"
    fake = specs["fake-nodes"].argv
    assert flags(fake, "--fake-nodes") == "20" and flags(fake, "--pod-cidr") == "127.253.128.0/17"
    assert flags(fake, "--node-labels") == "kplane.dev/fake-node=true"
