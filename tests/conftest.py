"""Shared fixtures: a real etcd and a real apiserver process per test session (per xdist worker).

Nothing here is mocked: etcd is the real server binary on free loopback ports, the apiserver is
`python -m apiserver` in its own process. Tests isolate themselves with a fresh namespace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kplane.devcluster import (
    APIServer,
    EtcdServer,
    NoEtcd,
    start_apiserver,
    start_etcd,
    stop_process,
)


@pytest.fixture(scope="session")
def tmp_session() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kplane-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def etcd(tmp_session: Path) -> Iterator[EtcdServer]:
    try:
        server = start_etcd(tmp_session)
    except NoEtcd as exc:
        pytest.skip(str(exc))
    yield server
    stop_process(server.proc)


def worker_index() -> int:
    """This xdist worker's number (gw3 -> 3; 0 without xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0


def worker_service_cidr() -> str:
    """Each worker's apiserver hands out ClusterIPs from its own /16 (127.96+N.0.0/16), so
    clusters of parallel workers never share a ClusterIP (node proxies bind them with
    SO_REUSEPORT: two clusters with one IP would share its traffic)."""
    return f"127.{96 + worker_index() % 32}.0.0/16"


@pytest.fixture(scope="session")
def service_cidr() -> str:
    """The ClusterIP range of this worker's `apiserver`."""
    return worker_service_cidr()


@pytest.fixture(scope="session")
def apiserver(etcd: EtcdServer, tmp_session: Path) -> Iterator[APIServer]:
    server = start_apiserver(etcd, tmp_session, "--service-cluster-ip-range", worker_service_cidr())
    yield server
    stop_process(server.proc)


@pytest.fixture
async def client(apiserver: APIServer) -> AsyncIterator[object]:
    from kplane.client.client import Client

    async with Client([apiserver.address], identity="pytest") as c:
        yield c


@pytest.fixture
async def namespace(client: object) -> AsyncIterator[str]:
    from kplane.api.resources import resolve

    name = f"t-{uuid.uuid4().hex[:10]}"
    await client.create(resolve("namespaces"), {"apiVersion": "v1", "kind": "Namespace",  # type: ignore[attr-defined]
                                                 "metadata": {"name": name}})
    yield name


os.environ.setdefault("KPLANE_TEST", "1")
