"""Bench service_proxy: HTTP GETs through a ClusterIP (one `python -m proxy` process, three myapp
endpoints) against GETs straight to one myapp pod, same run, same client and concurrency.

Setup: own etcd and apiserver (ClusterIPs from 127.98.192.0/18), three myapp:v1 servers started
directly (`deploy/images/myapp/v1/rootfs/app/server.py` on 127.248.250.1-3:80 — the process a
pod runs, without a kubelet), a selector-less Service with hand-written Endpoints, one proxy.
The client is asyncio in this process: 4 and then 16 workers, a new TCP connection per request
(``Connection: close``), as a curl loop does (myapp's listen backlog is 5: at 16 the direct path
overflows one pod's accept queue and some connects wait for a SYN retransmission). Figures: requests/s, p50/p99 latency for both
paths; ``ratio`` = proxied / direct requests/s, ``latency_ratio`` = proxied / direct p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import latency_ms, machine
from kplane.api.resources import resolve
from kplane.client.client import Client
from kplane.devcluster import start_apiserver, start_etcd, stop_process

ROOT = Path(__file__).resolve().parent.parent
MYAPP = ROOT / "deploy" / "images" / "myapp" / "v1" / "rootfs" / "app" / "server.py"
POD_IPS = ["127.248.250.1", "127.248.250.2", "127.248.250.3"]
NODE_IP = "127.0.248.250"
SERVICE_RANGE = "127.98.192.0/18"
REQUEST = b"GET / HTTP/1.1\r\nHost: myapp\r\nConnection: close\r\n\r\n"


async def one_request(ip: str, port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(REQUEST)
        body = await reader.read()
    finally:
        writer.close()
    if b"Version: v1" not in body:
        raise RuntimeError(f"unexpected answer from {ip}:{port}: {body[:80]!r}")
    return time.perf_counter() - start


async def load(ip: str, port: int, requests: int, concurrency: int) -> dict[str, Any]:
    samples: list[float] = []
    failures = 0
    remaining = requests

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            try:
                samples.append(await one_request(ip, port))
            except (OSError, RuntimeError):
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"requests": requests, "failures": failures, "requests_per_s": round(len(samples) / elapsed, 1),
            **latency_ms(samples)}


async def wait_answering(ip: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await one_request(ip, port)
            return
        except (OSError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def run(quick: bool = False) -> list[dict[str, Any]]:
    requests = 300 if quick else 3000
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kplane-bench-svc-") as tmp_name:
        tmp = Path(tmp_name)
        etcd = start_etcd(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            api = start_apiserver(etcd, tmp, "--log-level", "warning", "--service-cluster-ip-range", SERVICE_RANGE)
            procs.append(api.proc)
            for i, ip in enumerate(POD_IPS):
                env = {**os.environ, "POD_IP": ip, "PORT": "80", "MYAPP_VERSION": "v1", "POD_NAME": f"myapp-{i}"}
                procs.append(subprocess.Popen([sys.executable, str(MYAPP)], env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "proxy", "--node-name", "bench-node", "--node-ip", NODE_IP,
                 "--server", api.address, "--log-level", "warning", "--log-format", "json"],
                stdout=open(tmp / "proxy.log", "wb"), stderr=subprocess.STDOUT))
            async with Client([api.address], identity="bench") as client:
                svc = await client.create(resolve("services"), {
                    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp"},
                    "spec": {"ports": [{"port": 80, "targetPort": 80}]}}, namespace="default")
                vip = svc.spec.clusterIP  # type: ignore[attr-defined]
                await client.create(resolve("endpoints"), {
                    "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "myapp"},
                    "subsets": [{"addresses": [{"ip": ip} for ip in POD_IPS], "ports": [{"port": 80}]}]},
                    namespace="default")
            for ip in POD_IPS:
                await wait_answering(ip, 80)
            await wait_answering(vip, 80)
            for concurrency in (4, 16):  # myapp listens with a backlog of 5: 16 overflows one pod's queue
                await load(POD_IPS[0], 80, 100, concurrency)  # warm-up of both paths
                await load(vip, 80, 100, concurrency)
                direct = await load(POD_IPS[0], 80, requests, concurrency)
                proxied = await load(vip, 80, requests, concurrency)
                results.append({
                    "bench": "service_proxy", "concurrency": concurrency, "endpoints": len(POD_IPS),
                    "requests_per_s": proxied["requests_per_s"], "p50_ms": proxied["p50_ms"],
                    "p99_ms": proxied["p99_ms"], "failures": proxied["failures"] + direct["failures"],
                    "baseline_requests_per_s": direct["requests_per_s"], "baseline_p50_ms": direct["p50_ms"],
                    "baseline_p99_ms": direct["p99_ms"],
                    "ratio": round(proxied["requests_per_s"] / max(direct["requests_per_s"], 1e-9), 3),
                    "latency_ratio": round(proxied["p50_ms"] / max(direct["p50_ms"], 1e-9), 3),
                    "requests": requests, "loadavg_1m": round(os.getloadavg()[0], 2), **machine(),
                })
        finally:
            for p in reversed(procs):
                stop_process(p)
            stop_process(etcd.proc)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service_proxy", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args(argv)
    for result in asyncio.run(run(quick=ns.quick)):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
