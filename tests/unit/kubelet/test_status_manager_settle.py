"""The kubelet's status manager writes a pod status only when it says something new: a worker
that computed its conditions from a copy of the pod older than the manager's own last write
(a fresh lastTransitionTime on a condition that never transitioned) costs no write, while a
condition the server's copy changed meanwhile (node lifecycle controller) is written again."""

from __future__ import annotations

import asyncio
from typing import Any

from kplane.api.pb import core_pb2
from kubelet.kubelet import StatusManager


class RecordingClient:
    """Stands in for the apiserver client: records each status write, returns it at a new RV."""

    def __init__(self) -> None:
        self.writes: list[core_pb2.Pod] = []
        self.rv = 10

    async def update_status(self, rt: Any, pod: core_pb2.Pod) -> core_pb2.Pod:
        self.rv += 1
        out = core_pb2.Pod()
        out.CopyFrom(pod)
        out.metadata.resourceVersion = str(self.rv)
        self.writes.append(out)
        return out


def pod(rv: int, ready: str | None, at: int) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace, p.metadata.name, p.metadata.uid = "ns", "web-1", "u1"
    p.metadata.resourceVersion = str(rv)
    if ready is not None:
        p.status.CopyFrom(status(ready, at))
    return p


def status(ready: str, at: int) -> core_pb2.PodStatus:
    st = core_pb2.PodStatus(phase="Running")
    for ctype in ("Ready", "ContainersReady"):
        cond = st.conditions.add(type=ctype, status=ready)
        cond.lastTransitionTime.seconds = at
    return st


async def settle(manager: StatusManager) -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_stale_copy_costs_no_write_but_a_server_side_change_does() -> None:
    client = RecordingClient()
    store = {"ns/web-1": pod(10, "False", 100)}
    manager = StatusManager(client, store.get)  # type: ignore[arg-type]
    runner = asyncio.create_task(manager.run())
    try:
        manager.publish(store["ns/web-1"], status("True", 200))
        await settle(manager)
        assert len(client.writes) == 1
        # the informer has not delivered our write yet; the worker recomputes from its old copy
        manager.publish(store["ns/web-1"], status("True", 201))
        await settle(manager)
        assert len(client.writes) == 1
        # the informer catches up; the same status again with yet another time: still nothing new
        store["ns/web-1"] = client.writes[-1]
        manager.publish(store["ns/web-1"], status("True", 202))
        await settle(manager)
        assert len(client.writes) == 1
        # the node lifecycle controller marks the pod not ready: ours is written again, with a
        # transition time of its own
        store["ns/web-1"] = pod(client.rv + 1, "False", 250)
        manager.publish(store["ns/web-1"], status("True", 300))
        await settle(manager)
        assert len(client.writes) == 2
        assert [c.lastTransitionTime.seconds for c in client.writes[-1].status.conditions] == [300, 300]
        # a real transition is always written
        store["ns/web-1"] = client.writes[-1]
        manager.publish(store["ns/web-1"], status("False", 400))
        await settle(manager)
        assert len(client.writes) == 3
        assert client.writes[-1].status.conditions[0].status == "False"
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
