"""Throwaway local clusters for tests and benchmarks: a real etcd and real apiserver processes on
free loopback ports. (`kplane up` is the user-facing launcher; this is the minimal, fast version.)"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class NoEtcd(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found:
        return found
    try:
        from kplane.cluster.etcd import find_etcd

        return str(find_etcd().path)  # type: ignore[attr-defined]
    except Exception as exc:
        raise NoEtcd("no etcd binary: run `make test` (it installs one) or apt-get install etcd-server") from exc


@dataclass
class EtcdServer:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def start_etcd(tmp: Path) -> EtcdServer:
    client, peer = free_port(), free_port()
    data = tmp / "etcd"
    log = open(tmp / "etcd.log", "wb")
    proc = subprocess.Popen(
        [etcd_binary(), "--name", "default", "--data-dir", str(data),
         "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{client}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"etcd exited: {(tmp / 'etcd.log').read_text()[-2000:]}")
        with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
            return b"true" in resp.read()

    wait_until(healthy, 30, "etcd /health")
    return EtcdServer(url, data, proc)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class APIServer:
    address: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    etcd: EtcdServer
    args: list[str]


def start_apiserver(etcd: EtcdServer, tmp: Path, *extra: str, port: int | None = None) -> APIServer:
    port = port or free_port()
    log_path = tmp / f"apiserver-{port}.log"
    args = [sys.executable, "-m", "apiserver", "--etcd-servers", etcd.url, "--port", str(port),
            "--bookmark-interval", "1s", "--log-format", "json", *extra]
    proc = subprocess.Popen(args, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=ROOT)
    address = f"127.0.0.1:{port}"
    wait_healthy(address, proc, log_path)
    return APIServer(address, proc, log_path, etcd, args)


def wait_healthy(address: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"apiserver exited: {log_path.read_text()[-3000:]}")
        with grpc.insecure_channel(address) as channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

    try:
        wait_until(healthy, timeout, f"apiserver at {address}", interval=0.1)
    except TimeoutError:
        raise TimeoutError(f"apiserver never became healthy: {log_path.read_text()[-3000:]}") from None


