"""kubelet.volumes on a real filesystem: layouts, the atomic ..data swap, hostPath checks, mounts.

ConfigMaps and Secrets come from a small in-memory getter with the client's `get` signature (the
apiserver path is covered by tests/integration/kubelet/test_pod_inputs.py).
"""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from kplane.api import errors as api_errors
from kplane.api.codec import from_dict
from kplane.api.pb import core_pb2
from kplane.api.resources import ResourceType
from kubelet.env import CreateContainerConfigError
from kubelet.volumes import (
    FileProjection,
    VolumeSetupError,
    cleanup_volumes,
    container_mounts,
    prepare_volumes,
    write_atomic,
)


class Objects:
    """ConfigMaps/Secrets by (plural, name); raises the client's NotFound like the apiserver."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Message] = {}
        self.gets = 0

    def add_configmap(self, name: str, data: dict[str, str], binary: dict[str, bytes] | None = None) -> None:
        cm = from_dict({"metadata": {"name": name, "namespace": "ns"}, "data": data}, core_pb2.ConfigMap)
        for k, v in (binary or {}).items():
            cm.binaryData[k] = v
        self.objects[("configmaps", name)] = cm

    def add_secret(self, name: str, data: dict[str, bytes]) -> None:
        sec = core_pb2.Secret()
        sec.metadata.name = name
        for k, v in data.items():
            sec.data[k] = v
        self.objects[("secrets", name)] = sec

    async def get(self, rt: ResourceType, name: str, *, namespace: str = "") -> Message:
        self.gets += 1
        assert namespace == "ns"
        try:
            return self.objects[(rt.plural, name)]
        except KeyError:
            raise api_errors.NotFound.for_object(rt.plural, name) from None


def make_pod(volumes: list[dict[str, Any]], containers: list[dict[str, Any]] | None = None,
             labels: dict[str, str] | None = None) -> core_pb2.Pod:
    return from_dict({"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": labels or {}},
                      "spec": {"volumes": volumes, "containers": containers or [{"name": "c"}]}}, core_pb2.Pod)


def files(root: Path) -> dict[str, str]:
    """What a container sees: every regular file under root, following the user-visible symlinks."""
    out: dict[str, str] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".."):
            continue
        if entry.is_dir():
            out.update({f"{entry.name}/{k}": v for k, v in files(entry).items()})
        else:
            out[entry.name] = entry.read_text()
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- emptyDir ----------------------------------------------------------------------------------------

async def test_empty_dir_layout_persistence_and_cleanup(tmp_path: Path) -> None:
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory"}}])
    vols = await prepare_volumes(Objects(), pod, tmp_path)
    assert vols["scratch"] == tmp_path / "volumes" / "empty-dir" / "scratch"
    assert vols["scratch"].is_dir() and vols["mem"].is_dir()
    (vols["scratch"] / "state").write_text("kept")
    locked = vols["scratch"] / "locked"
    locked.mkdir()
    (locked / "f").write_text("x")
    locked.chmod(0o500)  # a container may leave directories without write permission
    again = await prepare_volumes(Objects(), pod, tmp_path)
    assert again == vols
    assert (vols["scratch"] / "state").read_text() == "kept"  # survives re-prepare (container restarts)
    cleanup_volumes(tmp_path)
    assert not (tmp_path / "volumes").exists()
    cleanup_volumes(tmp_path)  # idempotent


# -- configMap / secret ------------------------------------------------------------------------------

async def test_configmap_all_keys_default_mode_and_binary(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cfg", {"app.conf": "a=1", "other": "o"}, binary={"blob": b"\x00\x01"})
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}])
    root = (await prepare_volumes(objs, pod, tmp_path))["cfg"]
    assert root == tmp_path / "volumes" / "configmap" / "cfg"
    assert files(root) == {"app.conf": "a=1", "blob": "\x00\x01", "other": "o"}
    assert mode(root / "app.conf") == 0o644
    assert os.readlink(root / "app.conf") == "..data/app.conf"
    assert os.readlink(root / "..data").startswith("..")


async def test_configmap_items_modes_and_nested_paths(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cfg", {"a": "A", "b": "B", "c": "C"})
    pod = make_pod([{"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
        {"key": "a", "path": "conf/a.txt"}, {"key": "b", "path": "b.txt", "mode": 0o755}]}}])
    root = (await prepare_volumes(objs, pod, tmp_path))["v"]
    assert files(root) == {"conf/a.txt": "A", "b.txt": "B"}
    assert mode(root / "conf" / "a.txt") == 0o600
    assert mode(root / "b.txt") == 0o755


async def test_configmap_refresh_is_atomic_and_idempotent(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cfg", {"keep": "1", "gone": "2"})
    pod = make_pod([{"name": "v", "configMap": {"name": "cfg"}}])
    root = (await prepare_volumes(objs, pod, tmp_path))["v"]
    first = os.readlink(root / "..data")
    await prepare_volumes(objs, pod, tmp_path)
    assert os.readlink(root / "..data") == first  # unchanged payload: not rewritten

    objs.add_configmap("cfg", {"keep": "changed", "new": "3"})
    await prepare_volumes(objs, pod, tmp_path)
    second = os.readlink(root / "..data")
    assert second != first
    assert files(root) == {"keep": "changed", "new": "3"}
    assert not os.path.lexists(root / "gone")
    assert not (root / first).exists()  # the old timestamped directory is removed
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("..")) == sorted(["..data", second])


async def test_secret_volume_and_default_mode(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_secret("creds", {"password": b"hunter2", "token": b"t"})
    pod = make_pod([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400,
                                              "items": [{"key": "password", "path": "pw"}]}}])
    root = (await prepare_volumes(objs, pod, tmp_path))["s"]
    assert root == tmp_path / "volumes" / "secret" / "s"
    assert files(root) == {"pw": "hunter2"}
    assert mode(root / "pw") == 0o400
    cleanup_volumes(tmp_path)
    assert not root.exists()


@pytest.mark.parametrize(("volume", "message"), [
    ({"name": "cfg", "configMap": {"name": "nosuch"}},
     'MountVolume.SetUp failed for volume "cfg" : configmap "nosuch" not found'),
    ({"name": "sec", "secret": {"secretName": "nosuch"}},
     'MountVolume.SetUp failed for volume "sec" : secret "nosuch" not found'),
    ({"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "missing", "path": "m"}]}},
     'MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: missing'),
    ({"name": "sec", "secret": {"secretName": "sec", "items": [{"key": "missing", "path": "m"}]}},
     'MountVolume.SetUp failed for volume "sec" : references non-existent secret key: missing'),
    ({"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
     'MountVolume.SetUp failed for volume "data" : persistentvolumeclaim not supported by kplane'),
])
async def test_setup_errors(tmp_path: Path, volume: dict[str, Any], message: str) -> None:
    objs = Objects()
    objs.add_configmap("cm", {"k": "v"})
    objs.add_secret("sec", {"k": b"v"})
    with pytest.raises(VolumeSetupError) as info:
        await prepare_volumes(objs, make_pod([volume]), tmp_path)
    assert str(info.value) == message
    assert info.value.volume_name == volume["name"]
    assert info.value.reason == "FailedMount"


async def test_optional_missing_sources_give_empty_volumes(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cm", {"k": "v"})
    pod = make_pod([
        {"name": "a", "configMap": {"name": "nosuch", "optional": True}},
        {"name": "b", "secret": {"secretName": "nosuch", "optional": True}},
        {"name": "c", "configMap": {"name": "cm", "optional": True,
                                    "items": [{"key": "k", "path": "k"}, {"key": "missing", "path": "m"}]}},
    ])
    vols = await prepare_volumes(objs, pod, tmp_path)
    assert files(vols["a"]) == {} and files(vols["b"]) == {}
    assert files(vols["c"]) == {"k": "v"}


async def test_every_volume_is_attempted_and_all_failures_reported(tmp_path: Path) -> None:
    pod = make_pod([{"name": "a", "configMap": {"name": "x"}}, {"name": "ok", "emptyDir": {}},
                    {"name": "b", "secret": {"secretName": "y"}}])
    with pytest.raises(VolumeSetupError) as info:
        await prepare_volumes(Objects(), pod, tmp_path)
    assert [e.volume_name for e in info.value.errors] == ["a", "b"]
    assert (tmp_path / "volumes" / "empty-dir" / "ok").is_dir()


async def test_objects_are_read_once_per_prepare(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cm", {"k": "v"})
    pod = make_pod([{"name": "a", "configMap": {"name": "cm"}}, {"name": "b", "configMap": {"name": "cm"}}])
    await prepare_volumes(objs, pod, tmp_path)
    assert objs.gets == 1


# -- downwardAPI / projected -------------------------------------------------------------------------

async def test_downward_api_volume_refreshes_labels(tmp_path: Path) -> None:
    volume = {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "sub/app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
    ]}}
    containers = [{"name": "c", "resources": {"limits": {"cpu": "250m"}}}]
    root = (await prepare_volumes(Objects(), make_pod([volume], containers, {"app": "web"}), tmp_path))["info"]
    assert root == tmp_path / "volumes" / "downward-api" / "info"
    assert files(root) == {"labels": 'app="web"', "name": "p", "sub/app": "web", "cpu": "250"}
    await prepare_volumes(Objects(), make_pod([volume], containers, {"app": "api", "v": "2"}), tmp_path)
    assert files(root) == {"labels": 'app="api"\nv="2"', "name": "p", "sub/app": "api", "cpu": "250"}


async def test_downward_api_volume_rejects_status_fields(tmp_path: Path) -> None:
    volume = {"name": "info", "downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}}
    with pytest.raises(VolumeSetupError, match=re.escape("unsupported fieldPath: status.podIP")):
        await prepare_volumes(Objects(), make_pod([volume]), tmp_path)


async def test_projected_combines_sources_and_skips_tokens(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cm", {"conf": "c"})
    objs.add_secret("sec", {"key": b"s"})
    pod = make_pod([{"name": "all", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cm"}},
        {"secret": {"name": "sec", "items": [{"key": "key", "path": "tls/key", "mode": 0o400}]}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        {"serviceAccountToken": {"path": "token"}},
    ]}}])
    root = (await prepare_volumes(objs, pod, tmp_path))["all"]
    assert files(root) == {"conf": "c", "ns": "ns", "tls/key": "s"}
    assert mode(root / "conf") == 0o440
    assert mode(root / "tls" / "key") == 0o400


async def test_projected_aggregates_errors(tmp_path: Path) -> None:
    pod = make_pod([{"name": "all", "projected": {"sources": [
        {"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]}}])
    with pytest.raises(VolumeSetupError) as info:
        await prepare_volumes(Objects(), pod, tmp_path)
    assert info.value.message == '[configmap "a" not found, secret "b" not found]'


# -- hostPath ----------------------------------------------------------------------------------------

async def host_path(tmp_path: Path, path: Path, type_: str) -> Path:
    pod = make_pod([{"name": "h", "hostPath": {"path": str(path), "type": type_}}])
    return (await prepare_volumes(Objects(), pod, tmp_path / "pod"))["h"]


async def test_host_path_create_types(tmp_path: Path) -> None:
    d = tmp_path / "made" / "dir"
    assert await host_path(tmp_path, d, "DirectoryOrCreate") == d and d.is_dir()
    f = tmp_path / "file.sock-not"
    assert await host_path(tmp_path, f, "FileOrCreate") == f and f.is_file()
    assert await host_path(tmp_path, d, "Directory") == d
    assert await host_path(tmp_path, f, "File") == f
    assert await host_path(tmp_path, f, "") == f
    plain = tmp_path / "plain-missing"
    assert await host_path(tmp_path, plain, "") == plain and plain.is_dir()


async def test_host_path_socket(tmp_path: Path) -> None:
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_path))
        assert await host_path(tmp_path, sock_path, "Socket") == sock_path
    finally:
        server.close()


@pytest.mark.parametrize(("setup", "type_", "want"), [
    ("file", "Directory", "hostPath type check failed: {p} is not a directory"),
    ("missing", "Directory", "hostPath type check failed: {p} is not a directory"),
    ("dir", "File", "hostPath type check failed: {p} is not a file"),
    ("dir", "FileOrCreate", "hostPath type check failed: {p} is not a file"),
    ("file", "DirectoryOrCreate", "hostPath type check failed: {p} is not a directory"),
    ("file", "Socket", "hostPath type check failed: {p} is not a socket file"),
    ("file", "CharDevice", "hostPath type check failed: {p} is not a character device"),
    ("file", "BlockDevice", "hostPath type check failed: {p} is not a block device"),
    ("file", "Weird", "Weird is an invalid volume type"),
])
async def test_host_path_type_errors(tmp_path: Path, setup: str, type_: str, want: str) -> None:
    p = tmp_path / "target"
    if setup == "file":
        p.write_text("x")
    elif setup == "dir":
        p.mkdir()
    with pytest.raises(VolumeSetupError) as info:
        await host_path(tmp_path, p, type_)
    assert str(info.value) == f'MountVolume.SetUp failed for volume "h" : {want.format(p=p)}'


async def test_host_path_file_or_create_needs_parent(tmp_path: Path) -> None:
    p = tmp_path / "no" / "parent"
    with pytest.raises(VolumeSetupError, match=re.escape(f"open {p}: no such file or directory")):
        await host_path(tmp_path, p, "FileOrCreate")


# -- container mounts --------------------------------------------------------------------------------

async def test_container_mounts(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cm", {"app.conf": "a=1"})
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cm"}},
                    {"name": "h", "hostPath": {"path": str(host_dir)}}])
    vols = await prepare_volumes(objs, pod, tmp_path / "pod")
    ctr = from_dict({"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/data"},
        {"name": "scratch", "mountPath": "/logs", "subPath": "logs/app", "readOnly": True},
        {"name": "cfg", "mountPath": "/etc/app"},
        {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
        {"name": "h", "mountPath": "/host", "subPathExpr": "$(POD_NAME)"},
    ]}, core_pb2.Container)
    mounts = container_mounts(ctr, vols, env={"POD_NAME": "p"})
    got = [(m.container_path, m.host_path, m.read_only) for m in mounts]
    real_cfg_file = (vols["cfg"] / "app.conf").resolve()
    assert got == [
        ("/data", vols["scratch"], False),
        ("/logs", (vols["scratch"] / "logs" / "app").resolve(), True),
        ("/etc/app", vols["cfg"], True),  # API data volumes are always read-only
        ("/etc/app.conf", real_cfg_file, True),
        ("/host", (host_dir / "p").resolve(), False),
    ]
    assert (vols["scratch"] / "logs" / "app").is_dir()  # created for the container
    assert real_cfg_file.read_text() == "a=1"


async def test_container_mount_errors(tmp_path: Path) -> None:
    objs = Objects()
    objs.add_configmap("cm", {"k": "v"})
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cm"}}])
    vols = await prepare_volumes(objs, pod, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (vols["scratch"] / "escape").symlink_to(outside)

    def mount(vm: dict[str, Any]) -> None:
        container_mounts(from_dict({"name": "c", "volumeMounts": [vm]}, core_pb2.Container), vols)

    with pytest.raises(CreateContainerConfigError, match=re.escape('cannot find volume "nope" to mount into container "c"')):
        mount({"name": "nope", "mountPath": "/x"})
    with pytest.raises(CreateContainerConfigError, match="resolves outside the volume"):
        mount({"name": "scratch", "mountPath": "/x", "subPath": "escape"})
    with pytest.raises(CreateContainerConfigError, match=re.escape("without '..'")):
        mount({"name": "scratch", "mountPath": "/x", "subPath": "../x"})
    with pytest.raises(CreateContainerConfigError, match="does not exist in the volume"):
        mount({"name": "cfg", "mountPath": "/x", "subPath": "missing"})


# -- the atomic writer directly ----------------------------------------------------------------------

def test_write_atomic_rejects_escaping_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_atomic(tmp_path / "t", {"../evil": FileProjection(b"", 0o644)})
    with pytest.raises(ValueError):
        write_atomic(tmp_path / "t", {"/abs": FileProjection(b"", 0o644)})


def test_write_atomic_changes(tmp_path: Path) -> None:
    target = tmp_path / "t"
    assert write_atomic(target, {"a": FileProjection(b"1", 0o644)})
    assert not write_atomic(target, {"a": FileProjection(b"1", 0o644)})
    assert write_atomic(target, {"a": FileProjection(b"1", 0o600)})  # a mode change is a change
    assert mode(target / "a") == 0o600
    assert write_atomic(target, {})
    assert files(target) == {}
