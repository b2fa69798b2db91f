"""Static pods: pods the kubelet runs from files in ``--pod-manifest-path``, without the apiserver.

As in Kubernetes:

- each ``*.yaml``/``*.yml``/``*.json`` file holds one Pod; its name becomes ``<name>-<node>``,
  its namespace defaults to ``default``, ``spec.nodeName`` is this node;
- its UID is a hash of the file's content and the node name (the ``kubernetes.io/config.hash``
  annotation), so a restarted kubelet finds the same pod and re-adopts its containers, and an
  edited file is a different pod (the old one is killed, the new one started);
- the kubelet publishes a *mirror pod* in the apiserver so users can see it: same name and
  namespace, annotated ``kubernetes.io/config.mirror: <hash>``, owned by the Node. The mirror is
  read-only in spirit: deleting it makes the kubelet create it again; the static pod keeps running.
  Removing the file kills the pod and deletes the mirror.

A file that does not parse or validate is skipped with a log line naming the file and every
field error; the other files are still served.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from kplane.api.codec import DecodeError
from kplane.api.defaults import apply_defaults
from kplane.api.pb import core_pb2
from kplane.api.resources import UnknownResource, object_from_dict, object_to_dict, resolve
from kplane.api.validation import validate_create

PODS = resolve("pods")
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
CONFIG_SOURCE = "kubernetes.io/config.source"
SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    pass


@dataclass
class StaticPod:
    path: Path
    pod: core_pb2.Pod

    @property
    def key(self) -> str:
        return f"{self.pod.metadata.namespace}/{self.pod.metadata.name}"


def load_manifest(path: Path, node_name: str) -> StaticPod:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "Pod":
        raise ManifestError(f"{path}: a static pod manifest must hold one object of kind Pod")
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(f"{path}: metadata.name: Required value")
    meta["name"] = f"{meta['name']}-{node_name}"
    meta["namespace"] = meta.get("namespace") or "default"
    spec = data.get("spec")
    if isinstance(spec, dict):
        spec["nodeName"] = node_name
    apply_defaults("Pod", data)
    errors = validate_create("Pod", data)
    if errors:
        raise ManifestError(f"{path}: invalid pod: " + "; ".join(e.message() for e in errors))
    try:
        _, pod = object_from_dict(data)
    except (DecodeError, UnknownResource) as exc:
        raise ManifestError(f"{path}: {exc}") from None
    assert isinstance(pod, core_pb2.Pod)
    digest = hashlib.md5(text.encode() + b"\0" + node_name.encode(), usedforsecurity=False).hexdigest()
    pod.metadata.uid = digest
    pod.metadata.annotations[CONFIG_HASH] = digest
    pod.metadata.annotations[CONFIG_SOURCE] = "file"
    return StaticPod(path=path, pod=pod)


def scan(directory: Path, node_name: str) -> tuple[dict[str, StaticPod], list[str]]:
    """Every static pod in ``directory`` by UID, and the errors of files that were skipped."""
    pods: dict[str, StaticPod] = {}
    errors: list[str] = []
    if not directory.is_dir():
        return pods, errors
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix not in SUFFIXES or not path.is_file():
            continue
        try:
            static = load_manifest(path, node_name)
        except ManifestError as exc:
            errors.append(str(exc))
            continue
        pods[static.pod.metadata.uid] = static
    return pods, errors


def mirror_of(static: core_pb2.Pod, node: core_pb2.Node | None) -> dict[str, object]:
    """The mirror pod to create in the apiserver (as a dict: the apiserver assigns its UID)."""
    data = object_to_dict(PODS, static)
    meta = data["metadata"]
    assert isinstance(meta, dict)
    meta.pop("uid", None)
    meta.pop("resourceVersion", None)
    meta.pop("creationTimestamp", None)
    meta.setdefault("annotations", {})[CONFIG_MIRROR] = static.metadata.annotations[CONFIG_HASH]
    if node is not None:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node.metadata.name,
                                    "uid": node.metadata.uid, "controller": True}]
    data.pop("status", None)
    return data


def is_mirror(pod: core_pb2.Pod) -> bool:
    return CONFIG_MIRROR in pod.metadata.annotations
