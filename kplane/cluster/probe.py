"""Health probes for cluster components.

gRPC is imported only inside :func:`grpc_health_check`: the ``kplane up`` launcher must never load
gRPC before it has spawned its children (never fork after gRPC starts), so it waits for a gRPC
component by running this module as a subprocess::

    python -m kplane.cluster.probe grpc 127.0.0.1:6443 --wait 60

which exits 0 as soon as ``grpc.health.v1.Health/Check`` answers SERVING, 1 at the deadline.
``kplane status`` spawns nothing, so it calls :func:`grpc_health_check` in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from kplane.cluster.etcd import etcd_health, http_get
from kplane.cluster.spec import HealthCheck

# Never route loopback probes through an HTTP proxy from the environment.
GRPC_CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


def grpc_health_check(address: str, service: str = "", timeout: float = 2.0) -> tuple[bool, str]:
    """One ``grpc.health.v1.Health/Check`` call: (serving, detail). Imports gRPC."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address, options=GRPC_CHANNEL_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            name = code.name if code is not None else "ERROR"
            details = e.details() if hasattr(e, "details") else str(e)
            return False, f"{name}: {details}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, status


def wait_grpc_serving(address: str, service: str, wait: float) -> tuple[bool, str]:
    """Poll :func:`grpc_health_check` until SERVING or ``wait`` seconds pass."""
    deadline = time.monotonic() + wait
    delay = 0.05
    detail = "not checked"
    while True:
        left = deadline - time.monotonic()
        ok, detail = grpc_health_check(address, service, timeout=max(0.1, min(2.0, left)))
        if ok:
            return True, detail
        if time.monotonic() + delay >= deadline:
            return False, detail
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


async def check_health(
    health: HealthCheck, *, grpc_in_process: bool, timeout: float = 2.0
) -> tuple[bool, str]:
    """One probe of ``health`` (not ``alive``, which needs the process): (healthy, detail).

    ``grpc_in_process=False`` runs gRPC probes in a subprocess, keeping gRPC out of this process.
    """
    if health.kind == "etcd":
        return await etcd_health(f"http://{health.host}:{health.port}", timeout)
    if health.kind == "http":
        try:
            status, _body = await http_get(health.host, health.port, health.path, timeout)
        except (OSError, TimeoutError, ConnectionError) as e:
            return False, f"cannot connect: {e or type(e).__name__}"
        return 200 <= status < 300, f"GET {health.path} -> {status}"
    if health.kind == "grpc":
        if grpc_in_process:
            return await asyncio.to_thread(grpc_health_check, health.address, health.service, timeout)
        return await grpc_probe_subprocess(health, wait=0.0, timeout=timeout)
    return True, "process check only"


async def grpc_probe_subprocess(health: HealthCheck, wait: float, timeout: float = 2.0) -> tuple[bool, str]:
    """Run this module in a child process to probe (and with ``wait``, wait for) a gRPC server."""
    argv = [
        sys.executable,
        "-m",
        "kplane.cluster.probe",
        "grpc",
        health.address,
        "--service",
        health.service,
        "--wait",
        str(wait),
        "--timeout",
        str(timeout),
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    text = out.decode("utf-8", "replace").strip().splitlines()
    detail = text[-1] if text else f"probe exited {proc.returncode}"
    return proc.returncode == 0, detail


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kplane.cluster.probe", description=__doc__)
    sub = p.add_subparsers(dest="kind", required=True)
    g = sub.add_parser("grpc", help="grpc.health.v1 check")
    g.add_argument("address", help="HOST:PORT")
    g.add_argument("--service", default="")
    g.add_argument("--wait", type=float, default=0.0, help="keep trying for this many seconds")
    g.add_argument("--timeout", type=float, default=2.0, help="deadline of one check")
    args = p.parse_args(argv)
    if args.wait > 0:
        ok, detail = wait_grpc_serving(args.address, args.service, args.wait)
    else:
        ok, detail = grpc_health_check(args.address, args.service, args.timeout)
    print(detail, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
