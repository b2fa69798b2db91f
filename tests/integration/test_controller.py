"""The controller runtime against a real apiserver: level-triggered reconcile of keys from informers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.client.controller import Controller, Result
from kplane.client.informer import SharedInformerFactory
from kplane.client.store import split_key

CM = resolve("configmaps")


async def eventually(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def mirror_controller(client: Client, factory: SharedInformerFactory, namespace: str,
                      calls: Counter[str], fail_first: set[str]) -> Controller:
    """Keeps `<name>-mirror` equal to every ConfigMap labelled mirror=yes (and deletes orphans)."""
    informer = factory.informer_for(CM, namespace=namespace)

    async def reconcile(key: str) -> Result | None:
        calls[key] += 1
        if key in fail_first:
            fail_first.discard(key)
            raise RuntimeError("transient failure")
        ns, name = split_key(key)
        source = informer.store.get_by_key(key)
        mirror_name = f"{name}-mirror"
        if source is None or source.metadata.labels.get("mirror") != "yes":  # type: ignore[attr-defined]
            try:
                await client.delete(CM, mirror_name, namespace=ns)
            except api.NotFound:
                pass
            return None
        want = dict(source.data)  # type: ignore[attr-defined]
        current = informer.store.get_by_key(f"{ns}/{mirror_name}")
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": mirror_name}, "data": want}
        if current is None:
            await client.create(CM, body, namespace=ns)
        elif dict(current.data) != want:  # type: ignore[attr-defined]
            live = object_to_dict(CM, current)
            live["data"] = want
            await client.update(CM, live, namespace=ns)
        return None

    def source_key(obj: Any) -> str:
        # a change to a mirror wakes its source's key: the reconcile of a source owns both
        meta = obj.metadata
        name = meta.name[: -len("-mirror")] if meta.name.endswith("-mirror") else meta.name
        return f"{meta.namespace}/{name}"

    controller = Controller("mirror", reconcile, workers=2)
    controller.watch(informer, source_key)
    return controller


async def test_controller_converges_and_retries(client: Client, namespace: str, apiserver: Any) -> None:
    """A controller reconciles keys from its informer to the desired state, retries a failing key
    with back-off, follows updates and deletes, and its cache syncs before workers start."""
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "pre", "labels": {"mirror": "yes"}}, "data": {"a": "1"}},
                        namespace=namespace)
    async with Client([apiserver.address], identity="mirror-controller") as own:
        factory = SharedInformerFactory(own)
        calls: Counter[str] = Counter()
        controller = mirror_controller(own, factory, namespace, calls, fail_first={f"{namespace}/pre"})
        factory.start()
        task = asyncio.create_task(controller.start())
        try:
            async def mirrored(name: str, data: dict[str, str] | None) -> bool:
                try:
                    got = await client.get(CM, f"{name}-mirror", namespace=namespace)
                except api.NotFound:
                    return data is None
                return data is not None and dict(got.data) == data  # type: ignore[attr-defined]

            await eventually(lambda: mirrored("pre", {"a": "1"}), what="pre-existing object mirrored")
            assert calls[f"{namespace}/pre"] >= 2  # failed once, then succeeded on the rate-limited retry
            await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "new", "labels": {"mirror": "yes"}}, "data": {"b": "2"}},
                                namespace=namespace)
            await eventually(lambda: mirrored("new", {"b": "2"}), what="new object mirrored")
            await client.patch(CM, "new", {"data": {"b": "3"}}, namespace=namespace)
            await eventually(lambda: mirrored("new", {"b": "3"}), what="update followed")
            await client.delete(CM, "pre", namespace=namespace)
            await eventually(lambda: mirrored("pre", None), what="mirror removed with its source")
            # someone deletes the mirror behind the controller's back: level-triggered repair
            await client.delete(CM, "new-mirror", namespace=namespace)
            await eventually(lambda: mirrored("new", {"b": "3"}), what="mirror repaired")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()
