"""The fake runtime's lifecycle and the pod IP allocator both runtimes share."""

from __future__ import annotations

import pytest

from kubelet.runtime import ContainerConfig, NotFound, RuntimeFailure, SandboxConfig
from kubelet.runtime.fake import FakeRuntime
from kubelet.runtime.ipam import PodIPAllocator


def cfg(name: str = "c", attempt: int = 0) -> ContainerConfig:
    return ContainerConfig(
        name=name, attempt=attempt, image="busybox", image_id="sha256:x", image_root=None, argv=["sh"]
    )


def test_allocator_skips_network_gateway_and_broadcast() -> None:
    ipam = PodIPAllocator("127.250.3.0/29")  # .0 network, .1 gateway, .7 broadcast
    got = [ipam.allocate() for _ in range(ipam.capacity)]
    assert got == [f"127.250.3.{i}" for i in range(2, 7)]
    with pytest.raises(RuntimeFailure) as err:
        ipam.allocate()
    assert err.value.reason == "IPExhausted"
    ipam.release("127.250.3.4")
    assert ipam.allocate() == "127.250.3.4"


def test_allocator_round_robin_and_reserve() -> None:
    ipam = PodIPAllocator("127.250.4.0/24")
    a = ipam.allocate()
    ipam.release(a)
    assert ipam.allocate() != a  # a freed address is not reused at once
    fresh = PodIPAllocator("127.250.4.0/24")
    fresh.reserve("127.250.4.2")
    fresh.reserve("127.250.4.2")  # idempotent
    assert fresh.allocate() == "127.250.4.3"
    assert fresh.in_use("127.250.4.2") and not fresh.in_use("10.0.0.1")
    fresh.release("10.0.0.1")  # outside the CIDR: nothing happens
    with pytest.raises(ValueError, match="not in the pod CIDR"):
        fresh.reserve("127.250.5.2")


@pytest.mark.parametrize("cidr", ["nonsense", "127.250.0.1/24", "::1/128", "127.250.0.0/31"])
def test_allocator_rejects_bad_cidrs(cidr: str) -> None:
    with pytest.raises(ValueError, match="pod CIDR"):
        PodIPAllocator(cidr)


async def test_fake_lifecycle() -> None:
    rt = FakeRuntime("10.244.7.0/24")
    sb = await rt.run_pod_sandbox(SandboxConfig(pod_uid="u", namespace="ns", name="p", labels={"a": "b"}))
    assert sb.ip == "10.244.7.2" and sb.state == "ready" and sb.labels == {"a": "b"}
    c = await rt.create_container(sb.id, cfg())
    assert c.state == "created"
    running = await rt.start_container(c.id)
    assert running.state == "running" and running.started_at is not None
    assert (await rt.exec_sync(c.id, ["true"], 1)).exit_code == 0
    with pytest.raises(RuntimeFailure) as err:
        await rt.exec(c.id, ["sh"], stdin=True, tty=False)
    assert err.value.reason == "NotSupported"
    with pytest.raises(RuntimeFailure, match="attach"):
        await rt.attach(c.id)
    assert rt.log_path(c.id) is None
    # snapshots: changing what we got back does not change the runtime
    running.state = "exited"
    assert (await rt.container_status(c.id)).state == "running"
    await rt.stop_container(c.id, 30)
    done = await rt.container_status(c.id)
    assert (done.state, done.exit_code, done.reason) == ("exited", 0, "Completed")
    with pytest.raises(RuntimeFailure):
        await rt.start_container(c.id)
    # simulated exits for restart-policy tests
    c2 = await rt.create_container(sb.id, cfg("d", 0))
    await rt.start_container(c2.id)
    rt.exit_container(c2.id, 2)
    crashed = await rt.container_status(c2.id)
    assert (crashed.state, crashed.exit_code, crashed.reason) == ("exited", 2, "Error")
    assert [x.name for x in await rt.list_containers(sb.id)] == ["c", "d"]
    await rt.stop_pod_sandbox(sb.id)
    assert [s.state for s in await rt.list_sandboxes()] == ["notready"]
    with pytest.raises(RuntimeFailure, match="not ready"):
        await rt.create_container(sb.id, cfg("late"))
    await rt.remove_pod_sandbox(sb.id)
    assert await rt.list_sandboxes() == [] and await rt.list_containers() == []
    assert not rt.ipam.in_use(sb.ip)
    with pytest.raises(NotFound):
        await rt.container_status(c.id)
    # stop/remove of things that are gone are fine
    await rt.stop_container(c.id, 0)
    await rt.remove_container(c.id)
    await rt.stop_pod_sandbox(sb.id)
    await rt.remove_pod_sandbox(sb.id)


async def test_many_fake_nodes_in_one_process() -> None:
    nodes = [FakeRuntime(f"10.{i // 256}.{i % 256}.0/24") for i in range(100)]
    for rt in nodes:
        for p in range(30):
            sb = await rt.run_pod_sandbox(SandboxConfig(pod_uid=f"u{p}", namespace="ns", name=f"p{p}"))
            c = await rt.create_container(sb.id, cfg())
            await rt.start_container(c.id)
    counts = [len(await rt.list_containers()) for rt in nodes]
    assert sum(counts) == 3000
    assert len({sb.ip for sb in await nodes[5].list_sandboxes()}) == 30
