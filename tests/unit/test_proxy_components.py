"""`kplane up` starts a node proxy beside each kubelet."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kplane.cluster import components
from kplane.cluster.components import ClusterOptions, build_components
from kplane.cluster.etcd import EtcdBinary

ETCD = EtcdBinary("/usr/bin/etcd", (3, 4, 23), "PATH")


def test_each_node_gets_a_proxy_with_its_node_ip_and_node_port_addresses(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """proxy-i runs `python -m proxy` for node-i with node IP 127.0.1.i and node ports on
    127.0.0.1 and that IP, after the apiserver."""
    monkeypatch.setattr(components, "module_has_main", lambda name: name in {"kubelet", "proxy"})
    specs = build_components(ClusterOptions(data_dir=tmp_path, nodes=2, port=7443), ETCD)
    proxies = [s for s in specs if s.name.startswith("proxy-")]
    assert [p.name for p in proxies] == ["proxy-1", "proxy-2"]
    argv = proxies[1].argv
    assert argv[:3] == [sys.executable, "-m", "proxy"]
    assert argv[argv.index("--node-name") + 1] == "node-2"
    assert argv[argv.index("--node-ip") + 1] == "127.0.1.2"
    assert argv[argv.index("--server") + 1] == "127.0.0.1:7443"
    assert argv[argv.index("--nodeport-addresses") + 1] == "127.0.0.1,127.0.1.2"
    assert proxies[1].depends_on == ("apiserver",)


def test_no_proxy_without_the_proxy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like every component, the proxy starts only when `python -m proxy` would run."""
    monkeypatch.setattr(components, "module_has_main", lambda name: name == "kubelet")
    specs = build_components(ClusterOptions(data_dir=tmp_path, nodes=1), ETCD)
    assert not [s for s in specs if s.name.startswith("proxy")]
