"""The resource types kplane serves: group/version/kind, plural, short names, scope, message.

One table shared by the apiserver (storage keys, discovery) and every client (kpctl resolves
`po`, `deploy`, `deployments.apps` here, and decodes `Any` payloads by type URL).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from google.protobuf import symbol_database
from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.message import Message

TYPE_URL_PREFIX = "type.googleapis.com/"

_PB_MODULES = ("meta", "core", "apps", "batch", "coordination", "policy", "autoscaling", "api")


def _load_pb_modules() -> None:
    for name in _PB_MODULES:
        importlib.import_module(f"kplane.api.pb.{name}_pb2")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    message_name: str
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Kinds whose spec changes bump metadata.generation.
    has_spec: bool = True

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def type_url(self) -> str:
        return TYPE_URL_PREFIX + self.message_name

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods` — the name kubectl prints in errors."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @cached_property
    def message(self) -> type[Message]:
        _load_pb_modules()
        return symbol_database.Default().GetSymbol(self.message_name)  # type: ignore[no-any-return]

    def new(self) -> Message:
        return self.message()

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.plural}/{name}"

    def prefix(self, namespace: str = "") -> str:
        """Key prefix of every object of this type (in one namespace when given)."""
        if self.namespaced and namespace:
            return f"/registry/{self.plural}/{namespace}/"
        return f"/registry/{self.plural}/"


def _core(kind: str, plural: str, *, namespaced: bool = True, short: tuple[str, ...] = (), sub: tuple[str, ...] = (),
          cats: tuple[str, ...] = (), has_spec: bool = True) -> ResourceType:
    return ResourceType("", "v1", kind, plural, namespaced, f"k8s.io.api.core.v1.{kind}", short, sub, cats, has_spec)


def _apps(kind: str, plural: str, short: tuple[str, ...] = (), sub: tuple[str, ...] = ("status",),
          cats: tuple[str, ...] = ("all",), has_spec: bool = True) -> ResourceType:
    return ResourceType("apps", "v1", kind, plural, True, f"k8s.io.api.apps.v1.{kind}", short, sub, cats, has_spec)


RESOURCES: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", namespaced=False, short=("ns",), sub=("status", "finalize")),
    _core("Node", "nodes", namespaced=False, short=("no",), sub=("status",)),
    _core("Pod", "pods", short=("po",), sub=("status", "binding", "eviction", "log", "exec", "attach"), cats=("all",)),
    _core("Service", "services", short=("svc",), sub=("status",), cats=("all",)),
    _core("Endpoints", "endpoints", short=("ep",), has_spec=False),
    _core("ConfigMap", "configmaps", short=("cm",), has_spec=False),
    _core("Secret", "secrets", has_spec=False),
    _core("Event", "events", short=("ev",), has_spec=False),
    _core("ReplicationController", "replicationcontrollers", short=("rc",), sub=("status", "scale"), cats=("all",)),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=("status",)),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, "k8s.io.api.coordination.v1.Lease"),
    _apps("ReplicaSet", "replicasets", ("rs",), ("status", "scale")),
    _apps("Deployment", "deployments", ("deploy",), ("status", "scale")),
    _apps("DaemonSet", "daemonsets", ("ds",)),
    _apps("StatefulSet", "statefulsets", ("sts",), ("status", "scale")),
    _apps("ControllerRevision", "controllerrevisions", (), (), (), has_spec=False),
    ResourceType("batch", "v1", "Job", "jobs", True, "k8s.io.api.batch.v1.Job", (), ("status",), ("all",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, "k8s.io.api.batch.v1.CronJob", ("cj",), ("status",), ("all",)),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True,
                 "k8s.io.api.policy.v1.PodDisruptionBudget", ("pdb",), ("status",)),
)

_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_TYPE_URL: dict[str, ResourceType] = {r.type_url: r for r in RESOURCES}
_BY_GR: dict[tuple[str, str], ResourceType] = {(r.group, r.plural): r for r in RESOURCES}


class UnknownResource(LookupError):
    """A resource or kind name that kplane does not serve."""


def for_kind(api_version: str, kind: str) -> ResourceType:
    try:
        return _BY_KIND[(api_version, kind)]
    except KeyError:
        kinds = [r for r in RESOURCES if r.kind == kind]
        if kinds:
            versions = ", ".join(sorted({r.api_version for r in kinds}))
            raise UnknownResource(
                f'no matches for kind "{kind}" in version "{api_version}" (kind {kind} is served as {versions})'
            ) from None
        raise UnknownResource(f'no matches for kind "{kind}" in version "{api_version}"') from None


def for_group_resource(group: str, plural: str) -> ResourceType:
    try:
        return _BY_GR[(group, plural)]
    except KeyError:
        name = f"{plural}.{group}" if group else plural
        raise UnknownResource(f'the server doesn\'t have a resource type "{name}"') from None


def for_type_url(type_url: str) -> ResourceType:
    try:
        return _BY_TYPE_URL[type_url]
    except KeyError:
        raise UnknownResource(f"unknown object type {type_url!r}") from None


def resolve(name: str) -> ResourceType:
    """Resolve what a user typed (`po`, `pod`, `pods`, `Pod`, `deployments.apps`, `deploy.v1.apps`)."""
    text = name.strip()
    lowered = text.lower()
    base, _, group = lowered.partition(".")
    if group:
        # "deployments.v1.apps" -> version v1, group apps
        version, _, rest = group.partition(".")
        if version.startswith("v") and version[1:2].isdigit() and rest:
            group = rest
    candidates = [
        r
        for r in RESOURCES
        if base in (r.plural, r.singular, *r.short_names) and (not group or group == r.group)
    ]
    if not candidates and group:
        # "coordination.k8s.io" groups contain dots: retry matching the full group string
        candidates = [r for r in RESOURCES if lowered in (f"{r.plural}.{r.group}", f"{r.singular}.{r.group}")]
    if not candidates:
        raise UnknownResource(f'the server doesn\'t have a resource type "{text}"')
    return candidates[0]


def pack(rt: ResourceType, msg: Message) -> AnyPb:
    any_msg = AnyPb()
    any_msg.type_url = rt.type_url
    any_msg.value = msg.SerializeToString()
    return any_msg


def pack_raw(rt: ResourceType, raw: bytes) -> AnyPb:
    """An Any around bytes that already are the kind's protobuf encoding (no re-serialisation)."""
    return AnyPb(type_url=rt.type_url, value=raw)


def unpack(any_msg: AnyPb) -> tuple[ResourceType, Message]:
    rt = for_type_url(any_msg.type_url)
    msg = rt.new()
    msg.ParseFromString(any_msg.value)
    return rt, msg


def object_to_dict(rt: ResourceType, msg: Message) -> dict[str, Any]:
    """Kubernetes JSON for an object, with apiVersion and kind first."""
    from kplane.api import codec

    out: dict[str, Any] = {"apiVersion": rt.api_version, "kind": rt.kind}
    out.update(codec.to_dict(msg))
    return out


def object_from_dict(data: Any) -> tuple[ResourceType, Message]:
    """Decode a manifest: resolve apiVersion/kind, then decode strictly (every error at once)."""
    from kplane.api import codec
    from kplane.api import field as fe

    if not isinstance(data, dict):
        raise codec.DecodeError([fe.type_invalid("<root>", data, "expected an object (a YAML/JSON mapping)")])
    errors: list[fe.FieldError] = []
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if not isinstance(api_version, str) or not api_version:
        errors.append(fe.required("apiVersion"))
    if not isinstance(kind, str) or not kind:
        errors.append(fe.required("kind"))
    if errors:
        raise codec.DecodeError(errors)
    rt = for_kind(str(api_version), str(kind))
    msg = codec.from_dict(data, rt.message, ignore=frozenset({"apiVersion", "kind"}))
    return rt, msg
