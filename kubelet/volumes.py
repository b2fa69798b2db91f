"""Per-pod volumes: directories on the node that the runtime binds into containers.

Every volume the kubelet supports is a host directory (or, for some hostPath types, a file):

- ``emptyDir`` — ``<pod_dir>/volumes/empty-dir/<name>``, created once, shared by the pod's
  containers, surviving container restarts, removed with the pod (:func:`cleanup_volumes`).
  ``medium: Memory`` is a plain directory too and ``sizeLimit`` is not enforced (kplane has no
  tmpfs mounts or disk-usage eviction);
- ``configMap``, ``secret``, ``downwardAPI``, ``projected`` — ``<pod_dir>/volumes/<kind>/<name>``,
  written the way Kubernetes' AtomicWriter does: the files live in a timestamped directory
  ``..2024_05_01_10_00_00.123456``, ``..data`` is a symlink to it and every top-level entry the
  user sees is a symlink through ``..data``. An update writes a new timestamped directory and
  swaps ``..data`` with one ``rename`` (readers never see half a payload), then removes the old
  one; an unchanged payload is not rewritten. Re-running :func:`prepare_volumes` is therefore
  idempotent and is how the kubelet refreshes these volumes (Kubernetes re-syncs them every
  minute or so). Secrets are written to disk, not to a tmpfs as in Kubernetes. A projected
  ``serviceAccountToken`` source is skipped: kplane issues no tokens;
- ``hostPath`` — the node's own path, with Kubernetes' ``type`` checks and error wording; with
  type ``""`` a missing path is created as a directory, as container runtimes do for missing
  bind sources;
- ``persistentVolumeClaim`` — not supported: a clear error.

Errors are :class:`VolumeSetupError`, whose text is Kubernetes' ``FailedMount`` event:
``MountVolume.SetUp failed for volume "cfg" : configmap "nosuch" not found``.

:func:`container_mounts` turns a container's ``volumeMounts`` into runtime :class:`Mount` s,
including ``subPath``/``subPathExpr``. configMap/secret/downwardAPI/projected volumes are always
mounted read-only, as in Kubernetes since 1.10.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from google.protobuf.message import Message

from kplane.api.pb import core_pb2
from kubelet.env import (
    CreateContainerConfigError,
    ObjectGetter,
    container_resource_value,
    expand,
    fetch_object,
    pod_field_value,
)
from kubelet.runtime import Mount

__all__ = [
    "DEFAULT_MODE",
    "VolumeSetupError",
    "cleanup_volumes",
    "container_mounts",
    "prepare_volumes",
    "write_atomic",
]

DEFAULT_MODE = 0o644  # Kubernetes' default for configMap/secret/downwardAPI/projected files
DATA_DIR = "..data"


class VolumeSetupError(Exception):
    """A volume could not be set up. ``str()`` is Kubernetes' ``FailedMount`` event message;
    when several volumes failed, ``errors`` lists all of them (this one first)."""

    reason = "FailedMount"

    def __init__(self, volume_name: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume_name}" : {message}')
        self.volume_name = volume_name
        self.message = message
        self.errors: list[VolumeSetupError] = [self]


# --------------------------------------------------------------------------------------------
# Atomic writer


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int


def _check_payload_path(rel: str) -> str:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or rel.startswith(".."):
        raise ValueError(f"invalid path: {rel!r}")
    return str(p)


def _read_tree(root: Path) -> dict[str, FileProjection] | None:
    """The payload a timestamped directory holds, or ``None`` when it cannot be read back."""
    out: dict[str, FileProjection] = {}
    try:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                full = Path(dirpath) / f
                st = full.lstat()
                out[str(full.relative_to(root))] = FileProjection(full.read_bytes(), stat.S_IMODE(st.st_mode))
    except OSError:
        return None
    return out


def _top_level(paths: Iterable[str]) -> set[str]:
    return {p.split("/", 1)[0] for p in paths}


def write_atomic(target: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Make ``target`` show exactly ``payload`` (relative path -> data and mode), switching from
    the previous payload with one atomic rename of the ``..data`` symlink. Returns whether
    anything changed."""
    payload = {_check_payload_path(k): v for k, v in payload.items()}
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / DATA_DIR
    old_dir: Path | None = None
    old_top: set[str] = set()
    if data_link.is_symlink():
        old_dir = target / os.readlink(data_link)
        old = _read_tree(old_dir) if old_dir.is_dir() else None
        if old == payload:
            _link_top_level(target, payload, old_top=set())
            return False
        old_top = _top_level(old) if old is not None else {
            e.name for e in target.iterdir() if e.is_symlink() and os.readlink(e).startswith(DATA_DIR + "/")}

    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(new_dir, 0o755)
    for rel, proj in payload.items():
        path = new_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(proj.data)
        os.chmod(path, proj.mode)

    tmp_link = target / f"..data_tmp.{os.getpid()}.{time.monotonic_ns()}"
    os.symlink(new_dir.name, tmp_link)
    os.replace(tmp_link, data_link)
    _link_top_level(target, payload, old_top)
    if old_dir is not None and old_dir != new_dir:
        shutil.rmtree(old_dir, ignore_errors=True)
    return True


def _link_top_level(target: Path, payload: Mapping[str, Any], old_top: set[str]) -> None:
    new_top = _top_level(payload)
    for name in sorted(new_top):
        link = target / name
        want = f"{DATA_DIR}/{name}"
        if link.is_symlink() and os.readlink(link) == want:
            continue
        if link.exists() and not link.is_symlink():
            continue  # something a container created (e.g. a subPath directory): leave it
        tmp = target / f"..{name}.tmp.{time.monotonic_ns()}"
        os.symlink(want, tmp)
        os.replace(tmp, link)
    for name in old_top - new_top:
        link = target / name
        if link.is_symlink():
            link.unlink()


# --------------------------------------------------------------------------------------------
# Payloads (Kubernetes' MakePayload / CollectData), each raising ValueError with the message


def _mode(explicit: int | None, default: int | None) -> int:
    if explicit is not None:
        return explicit
    return default if default is not None else DEFAULT_MODE


def _opt(msg: Message, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _keyed_payload(what: str, data: Mapping[str, bytes], items: Iterable[core_pb2.KeyToPath],
                   default_mode: int | None, optional: bool) -> dict[str, FileProjection]:
    items = list(items)
    payload: dict[str, FileProjection] = {}
    if not items:
        for key, value in data.items():
            payload[key] = FileProjection(value, _mode(None, default_mode))
        return payload
    for item in items:
        if item.key not in data:
            if optional:
                continue
            if what == "configmap":
                raise ValueError(f"configmap references non-existent config key: {item.key}")
            raise ValueError(f"references non-existent secret key: {item.key}")
        payload[item.path] = FileProjection(data[item.key], _mode(_opt(item, "mode"), default_mode))
    return payload


def _configmap_data(cm: core_pb2.ConfigMap | None) -> dict[str, bytes]:
    if cm is None:
        return {}
    data = {k: v.encode() for k, v in cm.data.items()}
    data.update(cm.binaryData)
    return data


def _downward_payload(pod: core_pb2.Pod, items: Iterable[core_pb2.DownwardAPIVolumeFile], default_mode: int | None,
                      node_allocatable: Mapping[str, Any] | None) -> dict[str, FileProjection]:
    errors: list[str] = []
    payload: dict[str, FileProjection] = {}
    for item in items:
        mode = _mode(_opt(item, "mode"), default_mode)
        value = b""
        try:
            if item.HasField("fieldRef"):
                value = pod_field_value(pod, item.fieldRef).encode()
            elif item.HasField("resourceFieldRef"):
                ref = item.resourceFieldRef
                ctr = _find_container(pod, ref.containerName)
                if ctr is None:
                    raise CreateContainerConfigError(f"container {ref.containerName} not found")
                value = container_resource_value(ref, ctr, node_allocatable).encode()
        except CreateContainerConfigError as exc:
            errors.append(exc.message)
        payload[os.path.normpath(item.path)] = FileProjection(value, mode)
    if errors:
        raise ValueError(_aggregate(errors))
    return payload


def _find_container(pod: core_pb2.Pod, name: str) -> core_pb2.Container | None:
    for ctr in [*pod.spec.containers, *pod.spec.initContainers]:
        if ctr.name == name:
            return ctr
    return None


def _aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


# --------------------------------------------------------------------------------------------
# hostPath


def _host_path(path_str: str, type_: str) -> Path:
    path = Path(path_str)
    if type_ == "":
        if not os.path.lexists(path):
            path.mkdir(parents=True, mode=0o755, exist_ok=True)
        return path
    exists = path.exists()
    if type_ == "DirectoryOrCreate":
        if not exists:
            path.mkdir(parents=True, mode=0o755, exist_ok=True)
            return path
        type_ = "Directory"
    if type_ == "FileOrCreate":
        if not exists:
            try:
                fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as exc:
                raise ValueError(f"open {path}: {_os_message(exc)}") from exc
            os.close(fd)
            return path
        type_ = "File"
    st = path.stat() if exists else None
    checks: dict[str, tuple[Callable[[int], bool], str]] = {
        "Directory": (stat.S_ISDIR, "a directory"),
        "File": (stat.S_ISREG, "a file"),
        "Socket": (stat.S_ISSOCK, "a socket file"),
        "CharDevice": (stat.S_ISCHR, "a character device"),
        "BlockDevice": (stat.S_ISBLK, "a block device"),
    }
    if type_ not in checks:
        raise ValueError(f"{type_} is an invalid volume type")
    check, what = checks[type_]
    if st is None or not check(st.st_mode):
        raise ValueError(f"hostPath type check failed: {path} is not {what}")
    return path


def _os_message(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


# --------------------------------------------------------------------------------------------
# prepare / mounts / cleanup


VOLUME_DIRS = {
    "emptyDir": "empty-dir",
    "configMap": "configmap",
    "secret": "secret",
    "downwardAPI": "downward-api",
    "projected": "projected",
}


class _Objects:
    """ConfigMaps and Secrets read once per prepare (several volumes may name the same one)."""

    def __init__(self, client: ObjectGetter, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.cache: dict[tuple[str, str], Message | None] = {}

    async def get(self, resource: str, name: str) -> Message | None:
        key = (resource, name)
        if key not in self.cache:
            try:
                self.cache[key] = await fetch_object(self.client, resource, self.namespace, name)
            except CreateContainerConfigError as exc:
                raise ValueError(exc.message) from exc
        return self.cache[key]


async def _configmap_payload(objs: _Objects, name: str, items: Iterable[core_pb2.KeyToPath],
                             default_mode: int | None, optional: bool) -> dict[str, FileProjection]:
    cm = await objs.get("configmaps", name)
    if cm is None and not optional:
        raise ValueError(f'configmap "{name}" not found')
    return _keyed_payload("configmap", _configmap_data(cm), items, default_mode, optional)  # type: ignore[arg-type]


async def _secret_payload(objs: _Objects, name: str, items: Iterable[core_pb2.KeyToPath],
                          default_mode: int | None, optional: bool) -> dict[str, FileProjection]:
    sec = await objs.get("secrets", name)
    if sec is None and not optional:
        raise ValueError(f'secret "{name}" not found')
    data: dict[str, bytes] = dict(sec.data) if sec is not None else {}  # type: ignore[attr-defined]
    return _keyed_payload("secret", data, items, default_mode, optional)


async def _projected_payload(objs: _Objects, pod: core_pb2.Pod, src: core_pb2.ProjectedVolumeSource,
                             node_allocatable: Mapping[str, Any] | None) -> dict[str, FileProjection]:
    default_mode = _opt(src, "defaultMode")
    payload: dict[str, FileProjection] = {}
    errors: list[str] = []
    for source in src.sources:
        try:
            if source.HasField("configMap"):
                c = source.configMap
                payload.update(await _configmap_payload(objs, c.name, c.items, default_mode, c.optional))
            elif source.HasField("secret"):
                s = source.secret
                payload.update(await _secret_payload(objs, s.name, s.items, default_mode, s.optional))
            elif source.HasField("downwardAPI"):
                payload.update(_downward_payload(pod, source.downwardAPI.items, default_mode, node_allocatable))
            # serviceAccountToken: kplane issues no tokens; the source contributes no file.
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        raise ValueError(_aggregate(errors))
    return payload


async def _prepare_one(objs: _Objects, pod: core_pb2.Pod, vol: core_pb2.Volume, volumes_dir: Path,
                       node_allocatable: Mapping[str, Any] | None) -> Path:
    name = vol.name
    if vol.HasField("hostPath"):
        return _host_path(vol.hostPath.path, vol.hostPath.type)
    if vol.HasField("persistentVolumeClaim"):
        raise ValueError("persistentvolumeclaim not supported by kplane")
    kind = next((k for k in VOLUME_DIRS if vol.HasField(k)), None)  # type: ignore[arg-type]
    if kind is None:
        raise ValueError("volume source not supported by kplane")
    target = volumes_dir / VOLUME_DIRS[kind] / name
    if kind == "emptyDir":
        if not target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o777)  # as Kubernetes: any container user may write
        return target
    if kind == "configMap":
        c = vol.configMap
        payload = await _configmap_payload(objs, c.name, c.items, _opt(c, "defaultMode"), c.optional)
    elif kind == "secret":
        s = vol.secret
        payload = await _secret_payload(objs, s.secretName, s.items, _opt(s, "defaultMode"), s.optional)
    elif kind == "downwardAPI":
        d = vol.downwardAPI
        payload = _downward_payload(pod, d.items, _opt(d, "defaultMode"), node_allocatable)
    else:
        payload = await _projected_payload(objs, pod, vol.projected, node_allocatable)
    write_atomic(target, payload)
    return target


async def prepare_volumes(client: ObjectGetter, pod: core_pb2.Pod, pod_dir: Path, *,
                          node_allocatable: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Set up (or refresh) every volume of ``pod`` under ``pod_dir``: volume name -> host
    directory (or file, for some hostPath types). Every volume is attempted; if any failed, the
    first failure is raised as :class:`VolumeSetupError` with all of them in ``.errors``."""
    volumes_dir = pod_dir / "volumes"
    objs = _Objects(client, pod.metadata.namespace)
    result: dict[str, Path] = {}
    failures: list[VolumeSetupError] = []
    for vol in pod.spec.volumes:
        try:
            result[vol.name] = await _prepare_one(objs, pod, vol, volumes_dir, node_allocatable)
        except (ValueError, OSError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else f"{exc.filename}: {_os_message(exc)}"
            failures.append(VolumeSetupError(vol.name, message))
    if failures:
        first = failures[0]
        first.errors = failures
        raise first
    return result


def _is_api_data_volume(root: Path) -> bool:
    return (root / DATA_DIR).is_symlink()


def container_mounts(container: core_pb2.Container, volumes: Mapping[str, Path], *,
                     env: Mapping[str, str] | None = None) -> list[Mount]:
    """The runtime mounts for ``container.volumeMounts``. ``subPath`` is a path inside the volume
    (created as a directory when missing in an emptyDir or hostPath directory); ``subPathExpr``
    is expanded with the container's ``env``. configMap/secret/downwardAPI/projected volumes are
    always read-only. Raises :class:`kubelet.env.CreateContainerConfigError` (Kubernetes fails
    the container with that reason for a bad volume mount)."""
    mounts: list[Mount] = []
    for vm in container.volumeMounts:
        root = volumes.get(vm.name)
        if root is None:
            raise CreateContainerConfigError(
                f'cannot find volume "{vm.name}" to mount into container "{container.name}"')
        api_data = root.is_dir() and _is_api_data_volume(root)
        sub = vm.subPath
        if vm.subPathExpr:
            sub = expand(vm.subPathExpr, dict(env or {}))
        host = root
        if sub:
            host = _sub_path(container, vm, root, sub, create=not api_data)
        mounts.append(Mount(host_path=host, container_path=vm.mountPath, read_only=vm.readOnly or api_data))
    return mounts


def _sub_path(container: core_pb2.Container, vm: core_pb2.VolumeMount, root: Path, sub: str, *, create: bool) -> Path:
    failed = f'failed to prepare subPath for volumeMount "{vm.name}" of container "{container.name}"'
    p = PurePosixPath(sub)
    if p.is_absolute() or ".." in p.parts:
        raise CreateContainerConfigError(f"{failed}: subPath {sub!r} must be a relative path without '..'")
    if not root.is_dir():
        raise CreateContainerConfigError(f"{failed}: volume path {root} is not a directory")
    host = root / sub
    if not os.path.lexists(host):
        if not create:
            raise CreateContainerConfigError(f"{failed}: {sub} does not exist in the volume")
        host.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(host, 0o777)
    real_root = root.resolve()
    real = host.resolve()
    if real != real_root and real_root not in real.parents:
        raise CreateContainerConfigError(f"{failed}: subpath {sub!r} resolves outside the volume")
    return real


def cleanup_volumes(pod_dir: Path) -> None:
    """Remove the pod's volume directories (emptyDir contents included; hostPaths are the node's
    and are never touched). Symlinks are removed, never followed."""
    volumes_dir = pod_dir / "volumes"
    if not os.path.lexists(volumes_dir):
        return

    def on_error(func: Callable[..., Any], path: str, _exc: Any) -> None:
        # A container may have left a directory without write permission: open it up and retry.
        parent = os.path.dirname(path)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
        with contextlib.suppress(FileNotFoundError):
            func(path)

    shutil.rmtree(volumes_dir, onerror=on_error)
