"""`python -m controller_manager`: the kplane controller-manager (leader-elected; several may
run, one reconciles). ``--controllers`` chooses which controllers run (see registry.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys

from kplane.durations import parse_duration
from kplane.logs import configure_logging, get_logger


def main(argv: list[str] | None = None) -> None:
    from controller_manager.registry import CONTROLLERS, ControllersError, select

    parser = argparse.ArgumentParser(prog="controller_manager", description="kplane controller-manager")
    parser.add_argument("--server", default="", help="apiserver address(es) HOST:PORT[,HOST:PORT] "
                                                    "(default: from the client config)")
    parser.add_argument("--controllers", default="*",
                        help=f"'*' for all, 'name' to add, '-name' to remove; known: {', '.join(CONTROLLERS)}")
    parser.add_argument("--concurrent-syncs", type=int, default=5, help="workers per controller")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port (0: off)")
    parser.add_argument("--leader-elect", default="true", choices=["true", "false"])
    parser.add_argument("--leader-elect-lease-duration", default="15s")
    parser.add_argument("--leader-elect-renew-deadline", default="10s")
    parser.add_argument("--leader-elect-retry-period", default="2s")
    parser.add_argument("--identity", default="", help="leader election identity (default: host_pid)")
    parser.add_argument("--node-monitor-period", default="5s",
                        help="how often the node lifecycle controller checks node health")
    parser.add_argument("--node-monitor-grace-period", default="50s",
                        help="a node not heard from for this long is marked Unknown (NotReady)")
    parser.add_argument("--node-startup-grace-period", default="60s",
                        help="grace for a node that never posted Ready")
    parser.add_argument("--node-eviction-rate", type=float, default=0.1,
                        help="nodes per second tainted NoExecute in a healthy zone")
    parser.add_argument("--secondary-node-eviction-rate", type=float, default=0.01,
                        help="nodes per second tainted NoExecute in a partially disrupted zone")
    parser.add_argument("--large-cluster-size-threshold", type=int, default=50,
                        help="clusters with at most this many nodes stop tainting in a partially disrupted zone")
    parser.add_argument("--unhealthy-zone-threshold", type=float, default=0.55,
                        help="fraction of not-ready nodes (and more than 2) that makes a zone partially disrupted")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    parser.add_argument("--log-level", default="info")
    ns = parser.parse_args(argv)
    configure_logging("controller-manager", ns.log_format, ns.log_level)
    log = get_logger(component="controller-manager")
    try:
        names = select(ns.controllers)
    except ControllersError as exc:
        print(f"controller-manager: --controllers: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if ns.concurrent_syncs < 1:
        print("controller-manager: --concurrent-syncs must be at least 1", file=sys.stderr)
        raise SystemExit(2)
    try:
        ns.node_lifecycle = _node_lifecycle_options(ns)
    except ValueError as exc:
        print(f"controller-manager: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from kplane.config import component_servers

    servers = component_servers("controller-manager", ns.server)
    if ns.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(ns.metrics_port, addr="127.0.0.1")
    try:
        asyncio.run(_run(servers, names, ns))
    except KeyboardInterrupt:
        pass
    log.info("stopped")


def _node_lifecycle_options(ns: argparse.Namespace) -> object:
    """The node lifecycle flags, checked: durations parse and are positive, rates are not negative."""
    from controller_manager.context import NodeLifecycleOptions

    durations = {}
    for flag in ("node-monitor-period", "node-monitor-grace-period", "node-startup-grace-period"):
        try:
            value = parse_duration(getattr(ns, flag.replace("-", "_")))
        except ValueError as exc:
            raise ValueError(f"--{flag}: {exc}") from None
        if value <= 0:
            raise ValueError(f"--{flag}: must be greater than 0")
        durations[flag.replace("-", "_")] = value
    for flag in ("node-eviction-rate", "secondary-node-eviction-rate", "unhealthy-zone-threshold"):
        if getattr(ns, flag.replace("-", "_")) < 0:
            raise ValueError(f"--{flag}: must not be negative")
    if ns.large_cluster_size_threshold < 0:
        raise ValueError("--large-cluster-size-threshold: must not be negative")
    return NodeLifecycleOptions(
        **durations, node_eviction_rate=ns.node_eviction_rate,
        secondary_node_eviction_rate=ns.secondary_node_eviction_rate,
        large_cluster_size_threshold=ns.large_cluster_size_threshold,
        unhealthy_zone_threshold=ns.unhealthy_zone_threshold)


async def _run(servers: list[str], names: list[str], ns: argparse.Namespace) -> None:
    from controller_manager.context import ControllerContext
    from controller_manager.registry import builder
    from kplane.client.client import Client
    from kplane.client.controller import Controller
    from kplane.client.informer import SharedInformerFactory
    from kplane.client.leaderelection import LeaderElectionConfig, LeaderElector

    log = get_logger(component="controller-manager")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    identity = ns.identity or f"{socket.gethostname()}_{os.getpid()}"
    async with Client(servers, identity="kube-controller-manager") as client:
        electors: list[LeaderElector] = []

        async def lead() -> None:
            """One term as leader: fresh informers and controllers, torn down when it ends."""
            factory = SharedInformerFactory(client)
            ctx = ControllerContext(client=client, factory=factory, workers=ns.concurrent_syncs,
                                    may_write=electors[-1].is_leader if electors else None,
                                    node_lifecycle=ns.node_lifecycle)
            controllers: list[Controller] = []
            for name in names:
                built = builder(name)(ctx)
                controllers.extend(built if isinstance(built, list) else [built])
            for rec in ctx.recorders.values():
                await rec.start()
            log.info("starting controllers", controllers=names)
            factory.start()
            try:
                await asyncio.gather(*(c.start() for c in controllers))
            finally:
                await factory.shutdown()
                for rec in ctx.recorders.values():
                    await rec.stop()

        if ns.leader_elect == "true":
            config = LeaderElectionConfig(
                lock_name="kube-controller-manager", identity=identity,
                lease_duration=parse_duration(ns.leader_elect_lease_duration),
                renew_deadline=parse_duration(ns.leader_elect_renew_deadline),
                retry_period=parse_duration(ns.leader_elect_retry_period))

            async def elect_forever() -> None:
                while True:  # lost leadership: stop every controller, then campaign again
                    electors.append(LeaderElector(client, config, on_started_leading=lead))
                    await electors[-1].run()

            work = asyncio.create_task(elect_forever())
        else:
            work = asyncio.create_task(lead())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        stopper.cancel()
        for task in done:
            if task is work and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


if __name__ == "__main__":
    main()
