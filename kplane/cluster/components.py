"""The components `kplane up` runs, as :class:`ComponentSpec` lists.

Command lines (each a separate OS process, every one on loopback):

- ``etcd``: see :func:`kplane.cluster.etcd.etcd_argv` (skipped with ``--etcd-servers``);
- ``apiserver``: ``python -m apiserver --etcd-servers URLS --bind-address 127.0.0.1 --port P
  --metrics-port M --compaction-retention R --log-format json``; healthy when gRPC health says
  SERVING;
- ``scheduler`` / ``controller-manager`` (when ``scheduler/__main__.py`` /
  ``controller_manager/__main__.py`` exist): ``python -m MODULE --server 127.0.0.1:P
  --metrics-port M --log-format json``; healthy while alive;
- ``node-1`` ... ``node-N`` (when ``kubelet/__main__.py`` exists): ``python -m kubelet --node-name
  node-i --server 127.0.0.1:P --data-dir DATA/kubelet/node-i --node-ip 127.0.1.i --pod-cidr
  127.244.i.0/24 --cpu SHARE --memory SHARE --pod-manifest-path DATA/kubelet/node-i/manifests
  --metrics-port M --log-format json`` (SHARE: this machine's CPUs and memory split evenly);
- ``proxy-1`` ... ``proxy-N`` beside them (when ``proxy/__main__.py`` exists): ``python -m proxy
  --node-name node-i --node-ip 127.0.1.i --server 127.0.0.1:P --nodeport-addresses
  127.0.0.1,127.0.1.i --log-format json``.

Metrics ports: 0 everywhere by default (each component picks its own or none); with
``--metrics-port-base B`` the apiserver gets B, the scheduler B+1, the controller-manager B+2 and
kubelet i gets B+2+i.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kplane.cluster.etcd import EtcdBinary, client_url, etcd_argv, etcd_env, parse_etcd_servers
from kplane.cluster.ports import LOOPBACK, PortRequest
from kplane.cluster.spec import ALIVE, PROFILES, ComponentSpec, HealthCheck

DEFAULT_CLUSTER_CIDR = "127.244.0.0/14"
# On every simulated node (`--fake-nodes`): a nodeSelector that puts a workload on them only.
FAKE_NODE_LABEL = "kplane.dev/fake-node"
# Service ClusterIPs and node ports (the apiserver's --service-cluster-ip-range and
# --service-node-port-range; Kubernetes' default range 10.96.0.0/12 is not loopback).
DEFAULT_SERVICE_CIDR = "127.96.0.0/16"
DEFAULT_NODE_PORT_RANGE = "30000-32767"


@dataclass
class ClusterOptions:
    """Everything `kplane up` was asked for."""

    data_dir: Path
    nodes: int = 1
    etcd_servers: list[str] | None = None  # None: start our own etcd
    etcd_port: int = 2379
    etcd_peer_port: int = 2380
    port: int = 6443
    metrics_port_base: int = 0
    compaction_retention: str = "1h"
    # The apiserver's audit log, DATA_DIR/logs/audit.log ("None": off).
    audit_level: str = "Metadata"
    component_log_format: str = "json"
    python: str = field(default_factory=lambda: sys.executable)
    # Timing flags per component (kplane.cluster.spec.PROFILES): "default" or "fast".
    profile: str = "default"
    # Pod IPs: node i gets the i-th /24 of this range (fake nodes share its upper half).
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    # Scheduler and controller-manager processes each (one leads, the rest stand by).
    control_plane_replicas: int = 1
    # Simulated nodes (fake-0 ... fake-N-1) served by one extra `kubelet --fake-nodes N` process.
    fake_nodes: int = 0
    service_cluster_ip_range: str = DEFAULT_SERVICE_CIDR
    service_node_port_range: str = DEFAULT_NODE_PORT_RANGE

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def apiserver_address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def etcd_urls(self) -> list[str]:
        if self.etcd_servers:
            return parse_etcd_servers(self.etcd_servers)
        return [client_url(self.etcd_port)]

    def metrics_port(self, offset: int) -> int:
        return self.metrics_port_base + offset if self.metrics_port_base else 0


def module_has_main(name: str) -> bool:
    """Whether ``python -m name`` would run: ``name/__main__.py`` exists. Imports nothing."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations:
        return any(
            os.path.isfile(os.path.join(loc, "__main__.py")) for loc in spec.submodule_search_locations
        )
    return spec.origin is not None and spec.origin.endswith(".py")  # a plain module runs with -m too


def build_components(
    opts: ClusterOptions, etcd: EtcdBinary | None, notes: list[str] | None = None
) -> list[ComponentSpec]:
    """The component list for ``opts``; ``notes`` collects one line per component left out."""
    notes = [] if notes is None else notes
    specs: list[ComponentSpec] = []
    urls = opts.etcd_urls()
    if opts.etcd_servers:
        first = urls[0]
        parts = urlsplit(first)
        specs.append(
            ComponentSpec(
                name="etcd",
                argv=[],
                health=HealthCheck(kind="etcd", host=parts.hostname or LOOPBACK, port=parts.port or 2379),
                address=",".join(urls),
                external=True,
            )
        )
    else:
        if etcd is None:
            raise ValueError("an etcd binary is needed when --etcd-servers is not given")
        specs.append(
            ComponentSpec(
                name="etcd",
                argv=etcd_argv(etcd.path, opts.data_dir / "etcd", opts.etcd_port, opts.etcd_peer_port),
                health=HealthCheck(kind="etcd", port=opts.etcd_port),
                env=etcd_env(),
                address=client_url(opts.etcd_port),
                console_level="warning",  # etcd is chatty: its full log is in logs/etcd.log
            )
        )

    specs.append(apiserver_spec(opts, urls))
    server = opts.apiserver_address
    common = ["--server", server]
    profile = PROFILES[opts.profile]
    for offset, (module, name) in enumerate(
        (("scheduler", "scheduler"), ("controller_manager", "controller-manager"))
    ):
        if module_has_main(module):
            for replica in range(1, max(1, opts.control_plane_replicas) + 1):
                # Standbys (name-2, ...) get no metrics port of their own: the base layout has none.
                metrics = opts.metrics_port(1 + offset) if replica == 1 else 0
                specs.append(
                    ComponentSpec(
                        name=name if replica == 1 else f"{name}-{replica}",
                        argv=[
                            opts.python,
                            "-m",
                            module,
                            *common,
                            "--metrics-port",
                            str(metrics),
                            *profile.args_for(name),
                            "--log-format",
                            opts.component_log_format,
                        ],
                        health=ALIVE,
                        depends_on=("apiserver",),
                        extra={"role": name, "profile": opts.profile},
                    )
                )
        else:
            notes.append(f"no {name} yet: it starts here once {module}/__main__.py exists")
    if opts.nodes > 0:
        if module_has_main("kubelet"):
            for i in range(1, opts.nodes + 1):
                node = f"node-{i}"
                specs.append(
                    ComponentSpec(
                        name=node,
                        argv=[
                            opts.python,
                            "-m",
                            "kubelet",
                            "--node-name",
                            node,
                            *common,
                            "--data-dir",
                            str(opts.data_dir / "kubelet" / node),
                            "--node-ip",
                            node_ip(i),
                            "--pod-cidr",
                            node_pod_cidr(opts.cluster_cidr, i),
                            "--cpu",
                            cpu_share(opts.nodes),
                            "--memory",
                            memory_share(opts.nodes),
                            "--pod-manifest-path",
                            str(opts.data_dir / "kubelet" / node / "manifests"),
                            "--metrics-port",
                            str(opts.metrics_port(2 + i)),
                            *profile.args_for("kubelet"),
                            "--log-format",
                            opts.component_log_format,
                        ],
                        health=ALIVE,
                        depends_on=("apiserver",),
                        extra={"node": node, "role": "kubelet", "profile": opts.profile},
                    )
                )
                if module_has_main("proxy"):
                    specs.append(proxy_spec(opts, common, node, i))
        else:
            plural = "s" if opts.nodes != 1 else ""
            notes.append(
                f"--nodes {opts.nodes}: kubelets arrive with the kubelet component; "
                f"starting no node{plural} for now"
            )
    if opts.fake_nodes > 0 and module_has_main("kubelet"):
        specs.append(fake_nodes_spec(opts, common, notes))
    return specs


def node_pod_cidr(cluster_cidr: str, i: int) -> str:
    """Node i's pod range: the i-th /24 of ``cluster_cidr`` (127.244.0.0/14: 127.244.i.0/24)."""
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    return str(ipaddress.ip_network((int(net.network_address) + i * 256, 24)))


def fake_pod_range(cluster_cidr: str) -> str:
    """The upper half of the cluster range, which fake nodes slice among themselves."""
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    return str(list(net.subnets(prefixlen_diff=1))[1])


def check_cluster_cidr(cluster_cidr: str, nodes: int, fake_nodes: int = 0) -> str | None:
    """Why ``cluster_cidr`` cannot hold ``nodes`` /24s (and the fake nodes), or None when it can."""
    try:
        net = ipaddress.ip_network(cluster_cidr, strict=False)
    except ValueError as e:
        return f"--cluster-cidr {cluster_cidr}: {e}"
    if net.version != 4 or not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")):  # type: ignore[arg-type]
        return f"--cluster-cidr {cluster_cidr}: must be inside 127.0.0.0/8 (kplane stays on loopback)"
    if net.prefixlen > 23:
        return f"--cluster-cidr {cluster_cidr}: too small; give at least a /23 (node i gets the i-th /24)"
    room = 2 ** (24 - net.prefixlen) // (2 if fake_nodes else 1)
    if nodes >= room:
        return (f"--cluster-cidr {cluster_cidr}: room for {room - 1} node(s) (node i gets the i-th /24"
                f"{', fake nodes the upper half' if fake_nodes else ''}), asked for {nodes}")
    return None


def check_service_cidr(service_cidr: str, cluster_cidr: str) -> str | None:
    """Why ``service_cidr`` cannot be the ClusterIP range next to pod range ``cluster_cidr``."""
    try:
        net = ipaddress.ip_network(service_cidr, strict=False)
    except ValueError as e:
        return f"--service-cluster-ip-range {service_cidr}: {e}"
    if net.version != 4 or not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")):  # type: ignore[arg-type]
        return f"--service-cluster-ip-range {service_cidr}: must be inside 127.0.0.0/8 (kplane stays on loopback)"
    taken = {"--cluster-cidr " + cluster_cidr: cluster_cidr, "node IPs 127.0.0.0/16": "127.0.0.0/16"}
    for what, other in taken.items():
        try:
            if net.overlaps(ipaddress.ip_network(other, strict=False)):
                return f"--service-cluster-ip-range {service_cidr}: overlaps {what}"
        except ValueError:
            continue
    return None


def fake_nodes_spec(opts: ClusterOptions, common: list[str], notes: list[str]) -> ComponentSpec:
    """One kubelet process simulating ``opts.fake_nodes`` nodes (fake-0 ...), kwok-style."""
    profile = PROFILES[opts.profile]
    return ComponentSpec(
        name="fake-nodes",
        argv=[
            opts.python,
            "-m",
            "kubelet",
            "--runtime",
            "fake",
            "--fake-nodes",
            str(opts.fake_nodes),
            "--node-name",
            "fake",
            "--node-labels",
            f"{FAKE_NODE_LABEL}=true",
            *common,
            "--data-dir",
            str(opts.data_dir / "kubelet" / "fake-nodes"),
            "--pod-cidr",
            fake_pod_range(opts.cluster_cidr),
            *profile.args_for("kubelet"),
            "--log-format",
            opts.component_log_format,
        ],
        health=ALIVE,
        depends_on=("apiserver",),
        extra={"role": "fake-kubelet", "profile": opts.profile},
    )


def proxy_spec(opts: ClusterOptions, common: list[str], node: str, i: int) -> ComponentSpec:
    """``python -m proxy`` beside node i's kubelet: node ports on 127.0.0.1 and the node IP; every
    node's proxy binds every cluster IP too (SO_REUSEPORT, see proxy/forwarder.py)."""
    return ComponentSpec(
        name=f"proxy-{i}",
        argv=[
            opts.python,
            "-m",
            "proxy",
            "--node-name",
            node,
            "--node-ip",
            node_ip(i),
            *common,
            "--nodeport-addresses",
            f"{LOOPBACK},{node_ip(i)}",
            "--log-format",
            opts.component_log_format,
        ],
        health=ALIVE,
        depends_on=("apiserver",),
        extra={"proxy_for": node, "role": "proxy", "profile": opts.profile},
    )


def node_ip(i: int) -> str:
    """Node i's own loopback address (its InternalIP, where its kubelet serves logs and exec)."""
    return f"127.0.{1 + (i - 1) // 254}.{(i - 1) % 254 + 1}"


def cpu_share(nodes: int) -> str:
    """Each node's cpu capacity: an equal share of this machine's CPUs, in millicores."""
    return f"{max(100, (os.cpu_count() or 1) * 1000 // max(nodes, 1))}m"


def memory_share(nodes: int) -> str:
    """Each node's memory capacity: an equal share of this machine's memory, in Mi."""
    total_kib = 4 * 1024 * 1024
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    total_kib = int(line.split()[1])
                    break
    except OSError:
        pass
    return f"{max(256, total_kib // 1024 // max(nodes, 1))}Mi"


def apiserver_spec(opts: ClusterOptions, etcd_urls: list[str]) -> ComponentSpec:
    """``python -m apiserver ...``, healthy once gRPC health answers SERVING."""
    return ComponentSpec(
        name="apiserver",
        argv=[
            opts.python,
            "-m",
            "apiserver",
            "--etcd-servers",
            ",".join(etcd_urls),
            "--bind-address",
            LOOPBACK,
            "--port",
            str(opts.port),
            "--metrics-port",
            str(opts.metrics_port(0)),
            "--compaction-retention",
            opts.compaction_retention,
            "--service-cluster-ip-range",
            opts.service_cluster_ip_range,
            "--service-node-port-range",
            opts.service_node_port_range,
            *(["--audit-log-path", str(opts.log_dir / "audit.log"), "--audit-level", opts.audit_level]
              if opts.audit_level != "None" else []),
            *PROFILES[opts.profile].args_for("apiserver"),
            "--log-format",
            opts.component_log_format,
        ],
        health=HealthCheck(kind="grpc", port=opts.port),
        depends_on=("etcd",),
        address=opts.apiserver_address,
        extra={"role": "apiserver", "profile": opts.profile},
    )


def port_requests(opts: ClusterOptions, specs: list[ComponentSpec]) -> list[PortRequest]:
    """Every loopback port the components in ``specs`` will listen on, with the flag that sets it."""
    names = {s.name for s in specs}
    reqs: list[PortRequest] = []
    etcd = next((s for s in specs if s.name == "etcd"), None)
    if etcd is not None and not etcd.external:
        reqs.append(PortRequest(opts.etcd_port, "etcd client URL", "--etcd-port"))
        reqs.append(PortRequest(opts.etcd_peer_port, "etcd peer URL", "--etcd-peer-port"))
    if "apiserver" in names:
        reqs.append(PortRequest(opts.port, "apiserver", "--port"))
    if opts.metrics_port_base:
        offsets = {"apiserver": 0, "scheduler": 1, "controller-manager": 2}
        for s in specs:
            if s.name in offsets:
                off = offsets[s.name]
            elif "node" in s.extra:
                off = 2 + int(str(s.extra["node"]).rsplit("-", 1)[1])
            else:
                continue
            reqs.append(PortRequest(opts.metrics_port(off), f"{s.name} metrics", "--metrics-port-base"))
    return reqs
