"""The Endpoints controller in-process against a real apiserver (no kubelet: the tests write pod
status — podIP, Ready — themselves; pods get a nodeName so deletion is graceful)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controller_manager.context import ControllerContext
from controller_manager.endpoints import LAST_CHANGE_TRIGGER_TIME, new
from kplane.api import errors as api
from kplane.api.resources import object_to_dict, resolve
from kplane.client.client import Client
from kplane.client.informer import SharedInformerFactory
from kplane.devcluster import APIServer

PODS, SVC, EP, EVENTS = resolve("pods"), resolve("services"), resolve("endpoints"), resolve("events")


async def eventually(predicate: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = await predicate()
        except api.NotFound:
            got = None
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def controller(apiserver: APIServer) -> AsyncIterator[None]:
    async with Client([apiserver.address], identity="kube-controller-manager") as own:
        factory = SharedInformerFactory(own)
        ctx = ControllerContext(client=own, factory=factory, workers=2)
        built = new(ctx)
        for rec in ctx.recorders.values():
            await rec.start()
        factory.start()
        task = asyncio.create_task(built.start())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.shutdown()
            for rec in ctx.recorders.values():
                await rec.stop(drain=False)


def service(name: str, selector: dict[str, str] | None, ports: list[dict[str, Any]] | None = None,
            **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "a"}}, "spec": body}


async def make_pod(client: Client, ns: str, name: str, ip: str, *, ready: bool = True,
                   labels: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None) -> None:
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": name, "labels": labels or {"app": "web"}},
                               "spec": {"nodeName": "ep-node", "containers": [
                                   {"name": "c", "image": "busybox", "ports": ports or []}]}}, namespace=ns)
    await set_status(client, ns, name, ip, ready)


async def set_status(client: Client, ns: str, name: str, ip: str, ready: bool) -> None:
    pod = object_to_dict(PODS, await client.get(PODS, name, namespace=ns))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                     "lastTransitionTime": now}]}
    await client.update_status(PODS, pod, namespace=ns)


async def endpoints(client: Client, ns: str, name: str) -> dict[str, Any]:
    return object_to_dict(EP, await client.get(EP, name, namespace=ns))


def addresses(ep: dict[str, Any], field: str = "addresses") -> list[str]:
    return [a["ip"] for s in ep.get("subsets", []) for a in s.get(field, [])]


async def test_ready_and_not_ready_pods_with_refs_labels_and_trigger_time(client: Client, namespace: str,
                                                                          controller: None) -> None:
    """Ready pods in addresses, the others in notReadyAddresses, each with nodeName and a Pod
    targetRef; the Service's labels and the last-change-trigger-time annotation are set."""
    await make_pod(client, namespace, "a", "127.248.60.1")
    await make_pod(client, namespace, "b", "127.248.60.2", ready=False)
    await make_pod(client, namespace, "other", "127.248.60.3", labels={"app": "db"})
    await client.create(SVC, service("web", {"app": "web"}), namespace=namespace)

    async def filled() -> dict[str, Any] | None:
        ep = await endpoints(client, namespace, "web")
        return ep if addresses(ep) and addresses(ep, "notReadyAddresses") else None

    ep = await eventually(filled, "endpoints of web")
    [subset] = ep["subsets"]
    assert addresses(ep) == ["127.248.60.1"] and addresses(ep, "notReadyAddresses") == ["127.248.60.2"]
    pod_a = await client.get(PODS, "a", namespace=namespace)
    assert subset["addresses"][0] == {"ip": "127.248.60.1", "nodeName": "ep-node", "targetRef": {
        "kind": "Pod", "namespace": namespace, "name": "a", "uid": pod_a.metadata.uid}}  # type: ignore[attr-defined]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert ep["metadata"]["labels"] == {"team": "a"}
    assert ep["metadata"]["annotations"][LAST_CHANGE_TRIGGER_TIME].endswith("Z")


async def test_readiness_changes_and_deletion_move_addresses(client: Client, namespace: str, controller: None) -> None:
    """A pod turning ready moves to addresses; a pod being deleted (deletionTimestamp) drops out
    at once, before its kubelet has finished with it."""
    await make_pod(client, namespace, "a", "127.248.60.11")
    await make_pod(client, namespace, "b", "127.248.60.12", ready=False)
    await client.create(SVC, service("web", {"app": "web"}), namespace=namespace)
    await eventually(lambda: _has(client, namespace, ["127.248.60.11"], ["127.248.60.12"]), "initial endpoints")
    await set_status(client, namespace, "b", "127.248.60.12", True)
    await eventually(lambda: _has(client, namespace, ["127.248.60.11", "127.248.60.12"], []), "b ready")
    await client.delete(PODS, "a", namespace=namespace, grace_period=30)
    assert (await client.get(PODS, "a", namespace=namespace)).metadata.HasField("deletionTimestamp")  # type: ignore[attr-defined]
    await eventually(lambda: _has(client, namespace, ["127.248.60.12"], []), "a gone from endpoints")


async def _has(client: Client, ns: str, ready: list[str], not_ready: list[str]) -> bool:
    ep = await endpoints(client, ns, "web")
    return addresses(ep) == ready and addresses(ep, "notReadyAddresses") == not_ready


async def test_named_target_port_per_pod_and_missing_name_reported(client: Client, namespace: str,
                                                                   controller: None) -> None:
    """A named targetPort resolves per pod (two numbers, two subsets); a pod without the name gets
    no address and a FailedToFindPort Warning on the Service says which."""
    await make_pod(client, namespace, "a", "127.248.60.21", ports=[{"name": "web", "containerPort": 8080}])
    await make_pod(client, namespace, "b", "127.248.60.22", ports=[{"name": "web", "containerPort": 9090}])
    await make_pod(client, namespace, "c", "127.248.60.23", ports=[{"name": "nope", "containerPort": 8080}])
    await client.create(SVC, service("web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": "web"}]),
                        namespace=namespace)

    async def two_subsets() -> dict[str, Any] | None:
        ep = await endpoints(client, namespace, "web")
        return ep if len(ep.get("subsets", [])) == 2 else None

    ep = await eventually(two_subsets, "two subsets")
    assert [(addresses({"subsets": [s]}), s["ports"][0]["port"]) for s in ep["subsets"]] == [
        (["127.248.60.21"], 8080), (["127.248.60.22"], 9090)]

    async def warned() -> list[Any]:
        items, _ = await client.list_all(EVENTS, namespace=namespace)
        return [e for e in items if e.reason == "FailedToFindPort"]  # type: ignore[attr-defined]

    [event] = await eventually(warned, "FailedToFindPort event")
    assert event.involvedObject.kind == "Service" and "c (port http)" in event.message  # type: ignore[attr-defined]


async def test_service_deletion_deletes_endpoints_and_selectorless_services_are_left_alone(
        client: Client, namespace: str, controller: None) -> None:
    """Deleting the Service deletes its Endpoints; a selector-less Service's hand-made Endpoints stay
    exactly as written."""
    await make_pod(client, namespace, "a", "127.248.60.31")
    await client.create(SVC, service("web", {"app": "web"}), namespace=namespace)
    await eventually(lambda: _has(client, namespace, ["127.248.60.31"], []), "endpoints")
    await client.create(SVC, service("manual", None), namespace=namespace)
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
              "subsets": [{"addresses": [{"ip": "127.248.60.99"}], "ports": [{"name": "http", "port": 1234}]}]}
    created = await client.create(EP, manual, namespace=namespace)
    await client.delete(SVC, "web", namespace=namespace)

    async def gone() -> bool:
        try:
            await client.get(EP, "web", namespace=namespace)
        except api.NotFound:
            return True
        return False

    await eventually(gone, "endpoints of the deleted service to go")
    still = await client.get(EP, "manual", namespace=namespace)
    assert still.metadata.resourceVersion == created.metadata.resourceVersion  # type: ignore[attr-defined]


async def test_irrelevant_pod_changes_do_not_rewrite_endpoints(client: Client, namespace: str,
                                                               controller: None) -> None:
    """An annotation on a pod changes nothing: the Endpoints keep their resourceVersion (checked
    after a later change to another Service shows the controller has caught up)."""
    await make_pod(client, namespace, "a", "127.248.60.41")
    await client.create(SVC, service("web", {"app": "web"}), namespace=namespace)
    await eventually(lambda: _has(client, namespace, ["127.248.60.41"], []), "endpoints")
    before = (await client.get(EP, "web", namespace=namespace)).metadata.resourceVersion  # type: ignore[attr-defined]
    await client.patch(PODS, "a", {"metadata": {"annotations": {"note": "x"}}}, namespace=namespace)
    await client.create(SVC, service("web2", {"app": "web"}), namespace=namespace)
    await eventually(lambda: endpoints(client, namespace, "web2"), "endpoints of web2")
    after = (await client.get(EP, "web", namespace=namespace)).metadata.resourceVersion  # type: ignore[attr-defined]
    assert after == before


async def test_headless_service_gets_hostnames_and_the_headless_label(client: Client, namespace: str,
                                                                      controller: None) -> None:
    """clusterIP None: pods with hostname/subdomain matching get hostname; label headless."""
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "h", "labels": {"app": "db"}},
                               "spec": {"nodeName": "ep-node", "hostname": "db-0", "subdomain": "db",
                                        "containers": [{"name": "c", "image": "busybox"}]}}, namespace=namespace)
    await set_status(client, namespace, "h", "127.248.60.51", True)
    await client.create(SVC, service("db", {"app": "db"}, clusterIP="None"), namespace=namespace)

    async def ready() -> dict[str, Any] | None:
        ep = await endpoints(client, namespace, "db")
        return ep if addresses(ep) else None

    ep = await eventually(ready, "headless endpoints")
    assert ep["subsets"][0]["addresses"][0]["hostname"] == "db-0"
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
