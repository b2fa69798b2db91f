"""The apiserver process: gRPC API + health + reflection, the watch caches, the compactor."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from apiserver.admission import Admission, AdmissionOptions
from apiserver.allocator import (
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    IPRange,
    KubernetesService,
    PortRange,
    ServiceAllocator,
)
from apiserver.audit import AuditLog
from apiserver.history import History, WriteRecorder
from apiserver.leases import LeaseManager
from apiserver.registry import Registry
from apiserver.service import APIService
from apiserver.storage import EtcdUnavailable, Storage
from kplane.api.pb import api_pb2, api_pb2_grpc
from kplane.api.resources import resolve
from kplane.logs import get_logger

log = get_logger(component="apiserver")


@dataclass
class Options:
    etcd_servers: str = "http://127.0.0.1:2379"
    bind_address: str = "127.0.0.1"
    port: int = 6443
    metrics_port: int = 0
    compaction_retention: float = 3600.0
    compaction_interval: float = 300.0
    bookmark_interval: float = 5.0
    watch_cache_size: int = 10_000
    event_ttl: float = 3600.0
    audit_log_path: str = ""
    audit_level: str = "Metadata"
    audit_log_max_size_mb: float = 100.0
    audit_log_max_backups: int = 3
    # Services: ClusterIPs and NodePorts (apiserver/allocator.py). Kubernetes' default range is
    # 10.96.0.0/12; every 127.x address is local on Linux, so node proxies bind these without root.
    service_cluster_ip_range: str = DEFAULT_SERVICE_CIDR
    service_node_port_range: str = DEFAULT_NODE_PORT_RANGE
    # DefaultTolerationSeconds admission (apiserver/admission.py)
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300


class Compactor:
    """Keeps at least `retention` seconds of history: every interval, compact etcd to the newest
    revision that is older than the retention window (history is a policy, not an accident)."""

    def __init__(self, storage: Storage, retention: float, interval: float) -> None:
        self.storage = storage
        self.retention = retention
        self.interval = interval
        self.samples: list[tuple[float, int]] = []

    async def run(self) -> None:
        while True:
            try:
                now = time.monotonic()
                self.samples.append((now, await self.storage.current_revision()))
                old = [rev for t, rev in self.samples if now - t >= self.retention]
                if old:
                    target = old[-1]
                    self.samples = [(t, rev) for t, rev in self.samples if rev >= target]
                    if await self.storage.compact_with_key(target):
                        log.info("compacted etcd history", rev=target, retention_s=self.retention)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("compaction failed; will retry", error=str(exc))
            await asyncio.sleep(self.interval)


async def serve(opts: Options, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    storage = Storage(opts.etcd_servers)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 256 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ])
    address = f"{opts.bind_address}:{opts.port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise SystemExit(f"apiserver: cannot listen on {address}: {exc} (is the port in use?)") from None
    if bound == 0:
        raise SystemExit(f"apiserver: cannot listen on {address} (is the port in use?)")
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    registry = Registry(storage, watch_cache_size=opts.watch_cache_size)
    registry.admission = Admission(AdmissionOptions(
        default_not_ready_toleration_seconds=opts.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=opts.default_unreachable_toleration_seconds))
    try:
        allocator = ServiceAllocator(storage, IPRange(opts.service_cluster_ip_range),
                                     PortRange(opts.service_node_port_range))
    except ValueError as exc:
        await server.stop(0)
        raise SystemExit(f"apiserver: {exc}") from None
    registry.allocator = allocator
    # Every write records its writer, deletes leave tombstones, Events expire (apiserver/history.py):
    # tombstones live as long as the history they point into.
    storage.hooks = WriteRecorder(LeaseManager(storage), event_ttl=opts.event_ttl,
                                  tombstone_ttl=opts.compaction_retention + opts.compaction_interval)
    audit = AuditLog(opts.audit_log_path or None, opts.audit_level, max_size_mb=opts.audit_log_max_size_mb,
                     max_backups=opts.audit_log_max_backups)
    history = History(storage, retention=opts.compaction_retention, interval=opts.compaction_interval,
                      event_ttl=opts.event_ttl)
    api_pb2_grpc.add_APIServicer_to_server(APIService(registry, storage, bookmark_interval=opts.bookmark_interval,
                                                      audit=audit, history=history), server)
    reflection.enable_server_reflection(
        (api_pb2.DESCRIPTOR.services_by_name["API"].full_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if opts.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(opts.metrics_port, addr=opts.bind_address)
    await server.start()
    log.info("listening", address=f"{opts.bind_address}:{bound}", etcd=opts.etcd_servers)
    deadline = time.monotonic() + 60
    while True:
        try:
            await storage.connect()
            break
        except EtcdUnavailable as exc:
            if time.monotonic() > deadline:
                await server.stop(0)
                raise SystemExit(f"apiserver: {exc}") from None
            log.warning("waiting for etcd", error=str(exc))
            await asyncio.sleep(0.5)
    await registry.start()
    await registry.ensure_system_namespaces()
    services_rt = resolve("services")

    def decode_service(key: str, raw: bytes, rev: int) -> dict[str, object] | None:
        return registry.decode_stored(services_rt, key, raw, rev)

    freed, recorded = await allocator.repair(decode_service)
    log.info("service allocations checked", cluster_ip_range=str(allocator.ips),
             node_port_range=str(allocator.ports), freed=freed, recorded=recorded)
    repairs = asyncio.create_task(allocator.run_repairs(decode_service))
    kubernetes = KubernetesService(registry, allocator.ips.first(), opts.bind_address, bound)
    kubernetes_task = asyncio.create_task(kubernetes.run())
    compactor = asyncio.create_task(Compactor(storage, opts.compaction_retention, opts.compaction_interval).run())
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    log.info("ready", address=f"{opts.bind_address}:{bound}")
    if ready is not None:
        ready.set()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    compactor.cancel()
    repairs.cancel()
    kubernetes_task.cancel()
    await server.stop(grace=2)
    audit.close()
    await registry.stop()
    await storage.close()


async def _set_health(servicer: object, status: int) -> None:
    result = servicer.set("", status)  # type: ignore[attr-defined]
    if asyncio.iscoroutine(result):
        await result
    result = servicer.set(api_pb2.DESCRIPTOR.services_by_name["API"].full_name, status)  # type: ignore[attr-defined]
    if asyncio.iscoroutine(result):
        await result
