"""A pod's inputs read through a real apiserver (real etcd): environment and volumes.

The pod itself is created through the API too, so what the kubelet functions see is what the
apiserver stored after defaulting (fieldRef apiVersion, defaultMode 420, ...).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from kplane.api.pb import core_pb2
from kplane.api.resources import resolve
from kplane.client.client import Client
from kubelet.env import CreateContainerConfigError, container_env
from kubelet.volumes import VolumeSetupError, cleanup_volumes, container_mounts, prepare_volumes

CM = resolve("configmaps")
SECRETS = resolve("secrets")
PODS = resolve("pods")


async def create_configmap(client: Client, ns: str, name: str, data: dict[str, str]) -> None:
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data},
                        namespace=ns)


async def create_secret(client: Client, ns: str, name: str, data: dict[str, bytes]) -> None:
    await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                  "data": {k: base64.b64encode(v).decode() for k, v in data.items()}},
                        namespace=ns)


async def create_pod(client: Client, ns: str, spec: dict[str, Any], name: str = "web") -> core_pb2.Pod:
    pod = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec},
                              namespace=ns)
    assert isinstance(pod, core_pb2.Pod)
    return pod


async def test_container_env_from_the_apiserver(client: Client, namespace: str) -> None:
    await create_configmap(client, namespace, "settings", {"MODE": "prod", "LEVEL": "info"})
    await create_secret(client, namespace, "db", {"password": b"s3cr3t"})
    pod = await create_pod(client, namespace, {"containers": [{
        "name": "app", "image": "busybox",
        "envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "db"}, "prefix": "DB_"}],
        "env": [
            {"name": "LEVEL", "value": "debug"},
            {"name": "URL", "value": "postgres://$(DB_password)@$(MY_NODE)/$(MODE)"},
            {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        ],
    }]})
    warnings: list[str] = []
    env = await container_env(client, pod, pod.spec.containers[0], pod_ip="127.244.0.5", host_ip="127.0.0.1",
                              node_name="node-a", warnings=warnings)
    assert env == {
        "MODE": "prod", "LEVEL": "debug", "DB_password": "s3cr3t",
        "URL": "postgres://s3cr3t@$(MY_NODE)/prod",  # MY_NODE is defined after URL
        "MY_NODE": "node-a", "APP": "web", "PW": "s3cr3t",
        "POD_NAME": "web", "POD_NAMESPACE": namespace, "POD_IP": "127.244.0.5", "NODE_NAME": "node-a",
        "HOSTNAME": "web",
    }
    assert warnings == []  # every valid ConfigMap key is a valid (relaxed) variable name


@pytest.mark.parametrize(("env", "message"), [
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nosuch", "key": "k"}}}], 'configmap "nosuch" not found'),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nosuch", "key": "k"}}}], 'secret "nosuch" not found'),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "present", "key": "nokey"}}}],
     "couldn't find key nokey in ConfigMap {ns}/present"),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "present", "key": "nokey"}}}],
     "couldn't find key nokey in Secret {ns}/present"),
])
async def test_container_env_errors(client: Client, namespace: str, env: list[dict[str, Any]], message: str) -> None:
    await create_configmap(client, namespace, "present", {"k": "v"})
    await create_secret(client, namespace, "present", {"k": b"v"})
    pod = await create_pod(client, namespace, {"containers": [{"name": "app", "image": "busybox", "env": env}]})
    with pytest.raises(CreateContainerConfigError) as info:
        await container_env(client, pod, pod.spec.containers[0], pod_ip="127.244.0.5", host_ip="127.0.0.1",
                            node_name="node-a")
    assert str(info.value) == message.format(ns=namespace)


async def test_volumes_from_the_apiserver_refresh_and_cleanup(client: Client, namespace: str, tmp_path: Path) -> None:
    await create_configmap(client, namespace, "cfg", {"app.conf": "v=1", "extra": "e"})
    await create_secret(client, namespace, "tls", {"tls.key": b"KEY"})
    pod = await create_pod(client, namespace, {
        "volumes": [
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "tls", "secret": {"secretName": "tls"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        ],
        "containers": [{"name": "app", "image": "busybox", "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/app"}, {"name": "tls", "mountPath": "/tls", "readOnly": True},
            {"name": "scratch", "mountPath": "/data", "subPath": "app"},
            {"name": "info", "mountPath": "/etc/podinfo"}]}],
    })
    vols = await prepare_volumes(client, pod, tmp_path)
    assert (vols["cfg"] / "app.conf").read_text() == "v=1"
    assert (vols["cfg"] / "app.conf").stat().st_mode & 0o777 == 0o644  # the API's defaultMode 420
    assert (vols["tls"] / "tls.key").read_bytes() == b"KEY"
    assert (vols["info"] / "labels").read_text() == 'app="web"'
    mounts = container_mounts(pod.spec.containers[0], vols)
    assert [(m.container_path, m.read_only) for m in mounts] == [
        ("/etc/app", True), ("/tls", True), ("/data", False), ("/etc/podinfo", True)]
    assert mounts[2].host_path == (vols["scratch"] / "app").resolve()

    # An update to the ConfigMap reaches the volume on the next prepare (the kubelet's periodic sync).
    await client.patch(CM, "cfg", {"data": {"app.conf": "v=2", "extra": None}}, namespace=namespace)
    await prepare_volumes(client, pod, tmp_path)
    assert (vols["cfg"] / "app.conf").read_text() == "v=2"
    assert not (vols["cfg"] / "extra").exists()

    cleanup_volumes(tmp_path)
    assert not (tmp_path / "volumes").exists()


async def test_volume_errors_name_the_volume(client: Client, namespace: str, tmp_path: Path) -> None:
    pod = await create_pod(client, namespace, {
        "volumes": [{"name": "cfg", "configMap": {"name": "nosuch"}},
                    {"name": "opt", "secret": {"secretName": "nosuch", "optional": True}}],
        "containers": [{"name": "app", "image": "busybox"}],
    })
    with pytest.raises(VolumeSetupError) as info:
        await prepare_volumes(client, pod, tmp_path)
    assert str(info.value) == 'MountVolume.SetUp failed for volume "cfg" : configmap "nosuch" not found'
    assert [e.volume_name for e in info.value.errors] == ["cfg"]

    # Once the ConfigMap exists, the same pod's volumes set up.
    await create_configmap(client, namespace, "nosuch", {"k": "v"})
    vols = await prepare_volumes(client, pod, tmp_path)
    assert (vols["cfg"] / "k").read_text() == "v"
    assert (vols["opt"] / "..data").is_symlink()  # optional and absent: an empty volume
    assert [p.name for p in vols["opt"].iterdir() if not p.name.startswith("..")] == []
