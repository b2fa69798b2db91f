"""`python -m apiserver`: the kplane API server."""

from __future__ import annotations

import argparse
import asyncio

from apiserver.allocator import DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR, IPRange, PortRange
from apiserver.server import Options, serve
from kplane.durations import parse_duration
from kplane.logs import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="apiserver", description="kplane apiserver: gRPC API backed by etcd")
    parser.add_argument("--etcd-servers", default="http://127.0.0.1:2379", help="comma-separated etcd client URLs")
    parser.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (loopback only)")
    parser.add_argument("--port", type=int, default=6443, help="gRPC port")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port (0: off)")
    parser.add_argument("--compaction-retention", default="1h", help="history to keep before compacting (e.g. 1h)")
    parser.add_argument("--compaction-interval", default="5m", help="how often to compact")
    parser.add_argument("--bookmark-interval", default="5s", help="how often watchers get a BOOKMARK")
    parser.add_argument("--default-watch-cache-size", type=int, default=10_000,
                        help="recent events kept per resource for watch replay (older: served from etcd)")
    parser.add_argument("--event-ttl", default="1h",
                        help="how long an Event lives after its last update (etcd leases; 0: forever)")
    parser.add_argument("--audit-log-path", default="",
                        help="write the audit log (JSON lines, audit.k8s.io/v1 Events) to this file (default: off)")
    parser.add_argument("--audit-level", default="Metadata", choices=["None", "Metadata", "Request", "RequestResponse"],
                        help="what each audit line holds: Metadata (who, verb, object, revision), + Request body, "
                        "+ Response object")
    parser.add_argument("--audit-log-maxsize", type=float, default=100.0,
                        help="rotate the audit log at this many megabytes")
    parser.add_argument("--audit-log-maxbackup", type=int, default=3, help="rotated audit logs to keep")
    parser.add_argument("--service-cluster-ip-range", default=DEFAULT_SERVICE_CIDR,
                        help="IPv4 CIDR that Service ClusterIPs come from (Kubernetes' default is 10.96.0.0/12; "
                        "kplane's is loopback, so node proxies bind ClusterIPs without root)")
    parser.add_argument("--service-node-port-range", default=DEFAULT_NODE_PORT_RANGE,
                        help="port range (FROM-TO) that NodePort Services' node ports come from")
    parser.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                        help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod "
                        "that has none (DefaultTolerationSeconds admission)")
    parser.add_argument("--default-unreachable-toleration-seconds", type=int, default=300,
                        help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod "
                        "that has none (DefaultTolerationSeconds admission)")
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    parser.add_argument("--log-level", default="info")
    ns = parser.parse_args(argv)
    configure_logging("apiserver", ns.log_format, ns.log_level)
    try:
        opts = Options(
            etcd_servers=ns.etcd_servers,
            bind_address=ns.bind_address,
            port=ns.port,
            metrics_port=ns.metrics_port,
            compaction_retention=parse_duration(ns.compaction_retention),
            compaction_interval=parse_duration(ns.compaction_interval),
            bookmark_interval=parse_duration(ns.bookmark_interval),
            watch_cache_size=ns.default_watch_cache_size,
            event_ttl=parse_duration(ns.event_ttl),
            audit_log_path=ns.audit_log_path,
            audit_level=ns.audit_level,
            audit_log_max_size_mb=ns.audit_log_maxsize,
            audit_log_max_backups=ns.audit_log_maxbackup,
            service_cluster_ip_range=str(IPRange(ns.service_cluster_ip_range)),
            service_node_port_range=str(PortRange(ns.service_node_port_range)),
            default_not_ready_toleration_seconds=ns.default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=ns.default_unreachable_toleration_seconds,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(opts))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
