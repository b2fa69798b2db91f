"""`python -m proxy`: the node proxy of one node (``kplane up`` starts one beside each kubelet).

    python -m proxy --node-name node-1 --node-ip 127.0.1.1 --server 127.0.0.1:6443 \\
        [--nodeport-addresses 127.0.0.1,127.0.1.1] [--metrics-port 0]

Every node's proxy listens on every Service's ``clusterIP:port`` (the kernel spreads connections
over them, see :mod:`proxy.forwarder`) and on ``ADDRESS:nodePort`` for each
``--nodeport-addresses`` address (default: the node IP).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from kplane.logs import configure_logging, get_logger


def _fail(message: str) -> None:
    print(f"proxy: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="proxy", description="kplane node proxy (Services -> pod endpoints)")
    parser.add_argument("--node-name", required=True, help="this node's name (for Local traffic policies)")
    parser.add_argument("--node-ip", required=True, help="this node's IP (a loopback address)")
    parser.add_argument("--server", default="", help="apiserver address(es) HOST:PORT[,HOST:PORT] "
                                                    "(default: from the client config)")
    parser.add_argument("--nodeport-addresses", default="",
                        help="comma-separated addresses to open node ports on (default: --node-ip)")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port (0: off)")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    parser.add_argument("--log-level", default="info")
    ns = parser.parse_args(argv)
    from proxy.table import is_loopback_ipv4

    if not is_loopback_ipv4(ns.node_ip):
        _fail(f"--node-ip {ns.node_ip}: must be an IPv4 address in 127.0.0.0/8 (kplane uses loopback only)")
    addresses = [a.strip() for a in ns.nodeport_addresses.split(",") if a.strip()] or [ns.node_ip]
    for address in addresses:
        if not is_loopback_ipv4(address):
            _fail(f"--nodeport-addresses {address}: must be an IPv4 address in 127.0.0.0/8")
    configure_logging("proxy", ns.log_format, ns.log_level)
    log = get_logger(component="proxy", node=ns.node_name)
    from kplane.config import component_servers

    servers = component_servers("proxy", ns.server)
    if ns.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(ns.metrics_port, addr="127.0.0.1")
    try:
        asyncio.run(_run(servers, ns.node_name, addresses))
    except KeyboardInterrupt:
        pass
    log.info("stopped")


async def _run(servers: list[str], node_name: str, addresses: list[str]) -> None:
    from kplane.client.client import Client
    from proxy.proxier import Proxier

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Client(servers, identity=f"kube-proxy/{node_name}") as client:
        proxier = Proxier(client, node_name=node_name, nodeport_addresses=addresses)
        work = asyncio.create_task(proxier.run(), name="proxier")
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        work.cancel()
        stopper.cancel()
        await asyncio.gather(work, stopper, return_exceptions=True)
        if work in done and not work.cancelled() and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]


if __name__ == "__main__":
    main()
