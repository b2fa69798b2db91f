"""The control loop of the node proxy: Services and Endpoints in, listening sockets out.

Two informers (all Services, all Endpoints) feed one sync loop. Any change wakes it; it rebuilds
the whole routing table (:func:`proxy.table.build_table`) and hands it to the
:class:`~proxy.forwarder.Forwarder`, which binds, closes or re-routes sockets. Like kube-proxy's
``syncProxyRules`` it is level-based: a full rebuild each time (cheap at kplane's sizes), at most
every ``min_sync_period`` seconds, and again after ``retry_period`` while a bind failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from prometheus_client import Histogram

from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.client.informer import Informer
from kplane.logs import get_logger
from proxy.forwarder import Forwarder
from proxy.table import Table, build_table

SERVICES = resolve("services")
ENDPOINTS = resolve("endpoints")
SYNC_TIME = Histogram("proxy_sync_duration_seconds", "routing table rebuilds",
                      buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))


class Proxier:
    def __init__(self, client: Client, *, node_name: str, nodeport_addresses: list[str],
                 forwarder: Forwarder | None = None, min_sync_period: float = 0.0,
                 retry_period: float = 2.0, resync_period: float = 30.0) -> None:
        self.node_name = node_name
        self.nodeport_addresses = nodeport_addresses
        self.forwarder = forwarder or Forwarder()
        self.min_sync_period = min_sync_period
        self.retry_period = retry_period
        self.resync_period = resync_period
        self.log = get_logger(component="proxy", node=node_name)
        self.services = Informer(client, SERVICES, logger=self.log)
        self.endpoints = Informer(client, ENDPOINTS, logger=self.log)
        self._wake = asyncio.Event()
        self._reported: dict[str, str] = {}
        self.table = Table()
        self.syncs = 0
        for informer in (self.services, self.endpoints):
            informer.add_event_handler(self)

    # informer handler protocol: any change wakes the sync loop
    def on_add(self, obj: Any) -> None:
        self._wake.set()

    def on_update(self, old: Any, new: Any) -> None:
        self._wake.set()

    def on_delete(self, obj: Any) -> None:
        self._wake.set()

    async def sync(self) -> None:
        started = time.perf_counter()
        services = [s for s in self.services.store.list() if isinstance(s, core_pb2.Service)]
        endpoints = {f"{e.metadata.namespace}/{e.metadata.name}": e for e in self.endpoints.store.list()
                     if isinstance(e, core_pb2.Endpoints)}
        table = build_table(services, endpoints, node_name=self.node_name,
                            nodeport_addresses=self.nodeport_addresses)
        for key, why in table.skipped.items():
            if self._reported.get(key) != why:
                self.log.warning("service (partly) not proxied", service=key, reason=why)
        self._reported = dict(table.skipped)
        await self.forwarder.apply(table)
        self.table = table
        self.syncs += 1
        SYNC_TIME.observe(time.perf_counter() - started)

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run(), name=f"informer-{i.rt.plural}") for i in (self.services, self.endpoints)]
        try:
            for informer in (self.services, self.endpoints):
                await informer.wait_for_sync()
            self.log.info("caches synced; proxying", nodePortAddresses=",".join(self.nodeport_addresses))
            while True:
                self._wake.clear()
                try:
                    await self.sync()
                except Exception:  # never die on a bad table: log and try again on the next change
                    self.log.exception("sync failed")
                if self.min_sync_period:
                    await asyncio.sleep(self.min_sync_period)
                timeout = self.retry_period if self.forwarder.bind_errors else self.resync_period
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.forwarder.close()
