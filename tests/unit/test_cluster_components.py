"""The component list `kplane up` builds: exact command lines, optional components, ports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kplane.cluster import components
from kplane.cluster.components import ClusterOptions, build_components, module_has_main, port_requests
from kplane.cluster.etcd import EtcdBinary
from kplane.cluster.spec import order_components

ETCD = EtcdBinary("/usr/bin/etcd", (3, 4, 23), "PATH")


def only(available: set[str]):  # type: ignore[no-untyped-def]
    """A module_has_main stand-in that says yes for ``available`` only."""
    return lambda name: name in available


def test_apiserver_command_is_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The apiserver runs exactly `python -m apiserver --etcd-servers ... --log-format json`, with the
    audit log under the data dir unless `--audit-level None`."""
    monkeypatch.setattr(components, "module_has_main", only(set()))
    specs = build_components(ClusterOptions(data_dir=tmp_path), ETCD)
    api = next(s for s in specs if s.name == "apiserver")
    assert api.argv == [
        sys.executable,
        "-m",
        "apiserver",
        "--etcd-servers",
        "http://127.0.0.1:2379",
        "--bind-address",
        "127.0.0.1",
        "--port",
        "6443",
        "--metrics-port",
        "0",
        "--compaction-retention",
        "1h",
        "--service-cluster-ip-range",
        "127.96.0.0/16",
        "--service-node-port-range",
        "30000-32767",
        "--audit-log-path",
        str(tmp_path / "logs" / "audit.log"),
        "--audit-level",
        "Metadata",
        "--log-format",
        "json",
    ]
    assert api.depends_on == ("etcd",)
    quiet = build_components(ClusterOptions(data_dir=tmp_path, audit_level="None"), ETCD)
    assert "--audit-log-path" not in next(s for s in quiet if s.name == "apiserver").argv
    assert (api.health.kind, api.health.address) == ("grpc", "127.0.0.1:6443")


def test_missing_components_are_skipped_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without scheduler/controller_manager/kubelet `__main__` modules only etcd and the apiserver run."""
    monkeypatch.setattr(components, "module_has_main", only(set()))
    notes: list[str] = []
    specs = build_components(ClusterOptions(data_dir=tmp_path, nodes=3), ETCD, notes)
    assert [s.name for s in specs] == ["etcd", "apiserver"]
    assert "--nodes 3: kubelets arrive with the kubelet component; starting no nodes for now" in notes
    assert len(notes) == 3


def test_components_turn_on_when_their_modules_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the modules exist, the scheduler, controller-manager and N kubelets start after the apiserver."""
    monkeypatch.setattr(components, "module_has_main", only({"scheduler", "controller_manager", "kubelet"}))
    opts = ClusterOptions(data_dir=tmp_path, nodes=2, port=7443, metrics_port_base=9100)
    specs = order_components(build_components(opts, ETCD))
    assert [s.name for s in specs] == [
        "etcd",
        "apiserver",
        "scheduler",
        "controller-manager",
        "node-1",
        "node-2",
    ]
    node2 = specs[-1]
    assert node2.argv[:5] == [sys.executable, "-m", "kubelet", "--node-name", "node-2"]
    assert "127.0.0.1:7443" in node2.argv and str(tmp_path / "kubelet" / "node-2") in node2.argv
    assert node2.argv[node2.argv.index("--node-ip") + 1] == "127.0.1.2"
    assert node2.argv[node2.argv.index("--pod-cidr") + 1] == "127.244.2.0/24"
    assert all(s.depends_on == ("apiserver",) for s in specs[2:])
    metrics = {r.what: r.port for r in port_requests(opts, specs) if r.flag == "--metrics-port-base"}
    assert metrics == {
        "apiserver metrics": 9100,
        "scheduler metrics": 9101,
        "controller-manager metrics": 9102,
        "node-1 metrics": 9103,
        "node-2 metrics": 9104,
    }


def test_external_etcd_is_probed_not_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --etcd-servers etcd is external: no process, no etcd ports, the apiserver gets the URLs."""
    monkeypatch.setattr(components, "module_has_main", only(set()))
    opts = ClusterOptions(data_dir=tmp_path, etcd_servers=["http://127.0.0.1:3379,http://127.0.0.1:4379"])
    specs = build_components(opts, None)
    etcd = specs[0]
    assert etcd.external and etcd.argv == []
    assert (etcd.health.kind, etcd.health.port) == ("etcd", 3379)
    api = specs[1]
    assert api.argv[api.argv.index("--etcd-servers") + 1] == "http://127.0.0.1:3379,http://127.0.0.1:4379"
    assert [(r.port, r.flag) for r in port_requests(opts, specs)] == [(6443, "--port")]


def test_own_etcd_needs_both_its_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own etcd asks for its client and peer ports, with the flags that move them."""
    monkeypatch.setattr(components, "module_has_main", only(set()))
    opts = ClusterOptions(data_dir=tmp_path, etcd_port=12379, etcd_peer_port=12380)
    reqs = port_requests(opts, build_components(opts, ETCD))
    assert [(r.port, r.flag) for r in reqs] == [
        (12379, "--etcd-port"),
        (12380, "--etcd-peer-port"),
        (6443, "--port"),
    ]


def test_module_has_main_checks_files_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package counts only when its __main__.py exists, and it is not imported to find out."""
    with_main = tmp_path / "pkg_with_main_x"
    with_main.mkdir()
    (with_main / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (with_main / "__main__.py").write_text("")
    without = tmp_path / "pkg_without_main_x"
    without.mkdir()
    (without / "__init__.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module_has_main("pkg_with_main_x")
    assert not module_has_main("pkg_without_main_x")
    assert not module_has_main("no_such_module_anywhere_x")
    assert "pkg_with_main_x" not in sys.modules
