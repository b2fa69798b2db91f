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
  --metrics-port M --log-format json`` (SHARE: this machine's CPUs and memory split evenly).

Metrics ports: 0 everywhere by default (each component picks its own or none); with
``--metrics-port-base B`` the apiserver gets B, the scheduler B+1, the controller-manager B+2 and
kubelet i gets B+2+i.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kplane.cluster.etcd import EtcdBinary, client_url, etcd_argv, etcd_env, parse_etcd_servers
from kplane.cluster.ports import LOOPBACK, PortRequest
from kplane.cluster.spec import ALIVE, ComponentSpec, HealthCheck


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
    for offset, (module, name) in enumerate(
        (("scheduler", "scheduler"), ("controller_manager", "controller-manager"))
    ):
        if module_has_main(module):
            specs.append(
                ComponentSpec(
                    name=name,
                    argv=[
                        opts.python,
                        "-m",
                        module,
                        *common,
                        "--metrics-port",
                        str(opts.metrics_port(1 + offset)),
                        "--log-format",
                        opts.component_log_format,
                    ],
                    health=ALIVE,
                    depends_on=("apiserver",),
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
                            f"127.{244 + i // 256}.{i % 256}.0/24",
                            "--cpu",
                            cpu_share(opts.nodes),
                            "--memory",
                            memory_share(opts.nodes),
                            "--pod-manifest-path",
                            str(opts.data_dir / "kubelet" / node / "manifests"),
                            "--metrics-port",
                            str(opts.metrics_port(2 + i)),
                            "--log-format",
                            opts.component_log_format,
                        ],
                        health=ALIVE,
                        depends_on=("apiserver",),
                        extra={"node": node},
                    )
                )
        else:
            plural = "s" if opts.nodes != 1 else ""
            notes.append(
                f"--nodes {opts.nodes}: kubelets arrive with the kubelet component; "
                f"starting no node{plural} for now"
            )
    return specs


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
            *(["--audit-log-path", str(opts.log_dir / "audit.log"), "--audit-level", opts.audit_level]
              if opts.audit_level != "None" else []),
            "--log-format",
            opts.component_log_format,
        ],
        health=HealthCheck(kind="grpc", port=opts.port),
        depends_on=("etcd",),
        address=opts.apiserver_address,
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
