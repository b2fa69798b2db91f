"""`python -m kubelet`: the kplane node agent (one node, or many fake nodes for scale work)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import signal
import socket
import sys
from pathlib import Path

from kplane.api.quantity import parse_quantity
from kplane.durations import parse_duration
from kplane.logs import configure_logging, get_logger

FAKE_STATUS_WRITES = 64  # pod status writes in flight for all the fake nodes of one process
DEFAULT_POD_CIDR = "127.244.0.0/24"
DEFAULT_FAKE_POD_CIDR = "127.64.0.0/10"  # 16384 /24s; nothing listens on fake pod IPs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelet", description="kplane kubelet (node agent)")
    p.add_argument("--node-name", default=socket.gethostname(), help="this node's name (default: the hostname)")
    p.add_argument("--server", default="", help="apiserver address(es) HOST:PORT[,HOST:PORT] "
                                               "(default: from the client config)")
    p.add_argument("--data-dir", default="", help="the kubelet's state: runtime, images, pod volumes "
                                                  "(default: ~/.kplane/kubelet/NODE)")
    p.add_argument("--runtime", default="process", choices=["process", "fake"])
    p.add_argument("--fake-nodes", type=int, default=0,
                   help="run N fake nodes NODE-NAME-0..N-1 in this process (implies --runtime fake)")
    p.add_argument("--node-ip", default="127.0.0.1", help="the node's InternalIP (loopback: 127.0.0.0/8)")
    p.add_argument("--pod-cidr", default="", help="pod IPs are taken from this loopback range (default: "
                                                 f"{DEFAULT_POD_CIDR}; with --fake-nodes, {DEFAULT_FAKE_POD_CIDR} "
                                                 "split into a /24 per node)")
    p.add_argument("--cpu", default="", help="cpu capacity (quantity; default: the host's CPUs)")
    p.add_argument("--memory", default="", help="memory capacity (quantity; default: the host's memory)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--node-labels", default="", help="k=v,k2=v2 added to the node's labels")
    p.add_argument("--register-with-taints", default="", help="key=value:Effect,... set when registering")
    p.add_argument("--pod-manifest-path", default="", help="directory of static pod manifests")
    p.add_argument("--file-check-frequency", default="5s", help="how often to rescan --pod-manifest-path")
    p.add_argument("--image-registry", default="", help="directory of image manifests (default: deploy/images)")
    p.add_argument("--streaming-port", type=int, default=0, help="logs/exec endpoint port (0: any free port)")
    p.add_argument("--node-lease-duration", default="40s")
    p.add_argument("--node-lease-renew-interval", default="10s")
    p.add_argument("--node-status-update-frequency", default="10s")
    p.add_argument("--node-status-report-frequency", default="1m")
    p.add_argument("--crash-backoff-base", default="10s", help="first crash-loop back-off (doubles)")
    p.add_argument("--crash-backoff-max", default="5m")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port (0: off)")
    p.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    p.add_argument("--log-level", default="info")
    return p


def _fail(message: str) -> None:
    print(f"kubelet: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_loopback(flag: str, value: str, *, network: bool = False) -> None:
    try:
        addr = ipaddress.ip_network(value, strict=False) if network else ipaddress.ip_address(value)
    except ValueError as exc:
        _fail(f"{flag} {value}: {exc}")
        return
    if not addr.is_loopback or addr.version != 4:
        _fail(f"{flag} {value}: must be in 127.0.0.0/8 (kplane never uses addresses off this machine)")


def fake_pod_cidrs(cidr: str, nodes: int) -> list[str]:
    """A slice of ``cidr`` per fake node, so no two fake pods share an IP: a /24 each when the
    range has room, else equal smaller slices (at least 4 addresses each)."""
    network = ipaddress.ip_network(cidr, strict=False)
    prefix = max(24, network.prefixlen + max(0, nodes - 1).bit_length())
    if prefix > 30:
        raise ValueError(f"too small for {nodes} fake nodes (each needs its own slice of at least a /30)")
    return [str(s) for s in itertools.islice(network.subnets(new_prefix=prefix), nodes)]


def main(argv: list[str] | None = None) -> None:
    ns = _parser().parse_args(argv)
    configure_logging("kubelet", ns.log_format, ns.log_level)
    log = get_logger(component="kubelet")
    _check_loopback("--node-ip", ns.node_ip)
    if not ns.pod_cidr:
        ns.pod_cidr = DEFAULT_FAKE_POD_CIDR if ns.fake_nodes else DEFAULT_POD_CIDR
    _check_loopback("--pod-cidr", ns.pod_cidr, network=True)
    if ns.fake_nodes:
        try:
            ns.fake_pod_cidrs = fake_pod_cidrs(ns.pod_cidr, ns.fake_nodes)
        except ValueError as exc:
            _fail(f"--pod-cidr {ns.pod_cidr}: {exc}")
    for flag, value in (("--cpu", ns.cpu), ("--memory", ns.memory)):
        if value:
            try:
                parse_quantity(value)
            except ValueError as exc:
                _fail(f"{flag} {value}: {exc}")
    durations = {}
    for flag in ("file_check_frequency", "node_lease_duration", "node_lease_renew_interval",
                 "node_status_update_frequency", "node_status_report_frequency", "crash_backoff_base",
                 "crash_backoff_max"):
        try:
            durations[flag] = parse_duration(getattr(ns, flag))
        except ValueError as exc:
            _fail(f"--{flag.replace('_', '-')}: {exc}")
    from kplane.config import component_servers

    servers = component_servers("kubelet", ns.server)
    if ns.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(ns.metrics_port, addr="127.0.0.1")
    try:
        asyncio.run(_run(servers, ns, durations))
    except KeyboardInterrupt:
        pass
    log.info("stopped")


async def _run(servers: list[str], ns: argparse.Namespace, durations: dict[str, float]) -> None:
    from kplane.api.pb import core_pb2
    from kplane.api.scheduling import parse_taint
    from kplane.client.client import Client
    from kplane.client.events import EventRecorder
    from kubelet.kubelet import Kubelet, KubeletConfig
    from kubelet.node import NodeConfig

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    labels = dict(kv.split("=", 1) for kv in ns.node_labels.split(",") if "=" in kv)
    taints: list[core_pb2.Taint] = []
    for text in (t for t in ns.register_with_taints.split(",") if t):
        try:
            spec, remove = parse_taint(text)
        except ValueError as exc:
            _fail(f"--register-with-taints: {exc}")
        if remove:
            _fail(f"--register-with-taints: {text}: a taint to register cannot end in '-'")
        taints.append(core_pb2.Taint(key=spec.get("key", ""), value=spec.get("value", ""), effect=spec.get("effect", "")))
    fake = ns.runtime == "fake" or ns.fake_nodes > 0
    data_dir = Path(ns.data_dir) if ns.data_dir else Path.home() / ".kplane" / "kubelet" / ns.node_name
    names = [f"{ns.node_name}-{i}" for i in range(ns.fake_nodes)] if ns.fake_nodes else [ns.node_name]

    async with Client(servers, identity=f"kubelet/{ns.node_name}") as client:
        recorder = EventRecorder(client, component="kubelet", host=ns.node_name)
        await recorder.start()
        kubelets: list[Kubelet] = []
        servers_: list[object] = []
        # The fake nodes of this process share one client connection and one limit on pod status
        # writes in flight (a single node has its own 16): 100 nodes x 16 would let a burst of
        # pods pile thousands of writes onto the apiserver, time out and be retried.
        status_slots = asyncio.Semaphore(FAKE_STATUS_WRITES) if ns.fake_nodes else None
        for index, name in enumerate(names):
            pod_cidr = ns.fake_pod_cidrs[index] if ns.fake_nodes else ns.pod_cidr
            node_cfg = NodeConfig(
                name=name, ip=ns.node_ip, pod_cidr=pod_cidr, cpu=ns.cpu, memory=ns.memory, max_pods=ns.max_pods,
                labels=labels, taints=taints, runtime="fake" if fake else "process",
                lease_duration=int(durations["node_lease_duration"]),
                lease_renew_interval=durations["node_lease_renew_interval"],
                status_update_frequency=durations["node_status_update_frequency"],
                status_report_frequency=durations["node_status_report_frequency"])
            config = KubeletConfig(
                node=node_cfg, pod_manifest_path=Path(ns.pod_manifest_path) if ns.pod_manifest_path else None,
                file_check_frequency=durations["file_check_frequency"],
                crash_backoff_base=durations["crash_backoff_base"],
                crash_backoff_max=durations["crash_backoff_max"])
            images = None
            if fake:
                from kubelet.runtime.fake import FakeRuntime

                runtime: object = FakeRuntime(pod_cidr=pod_cidr)
            else:
                from kubelet.images import ImageStore, Registry
                from kubelet.runtime.process import ProcessRuntime

                registry = Registry(Path(ns.image_registry)) if ns.image_registry else Registry()
                images = ImageStore(data_dir, registry)
                runtime = ProcessRuntime(data_dir / "runtime", pod_cidr=pod_cidr)
            kubelet = Kubelet(client, config, runtime, recorder=recorder, images=images,  # type: ignore[arg-type]
                              status_write_slots=status_slots)
            if not fake:
                from kubelet.streaming import StreamingServer

                streaming = StreamingServer(runtime, kubelet, bind_host=ns.node_ip,  # type: ignore[arg-type]
                                            port=ns.streaming_port)
                await streaming.start()
                servers_.append(streaming)
                node_cfg.streaming_port = streaming.port
            kubelets.append(kubelet)

        work: list[asyncio.Task[object]] = [asyncio.create_task(k.run(), name=f"kubelet-{k.node_name}")
                                            for k in kubelets]
        stopper: asyncio.Task[object] = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({*work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        stopper.cancel()
        for server in servers_:
            await server.stop()  # type: ignore[attr-defined]
        for k in kubelets:
            await k.runtime.close()
        await recorder.stop()
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


if __name__ == "__main__":
    main()
