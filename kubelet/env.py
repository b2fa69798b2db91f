"""A container's environment, with Kubernetes' order, precedence and error wording.

The kubelet computes a container's environment right before it creates the container
(``makeEnvironmentVariables`` in Kubernetes' ``pkg/kubelet/kubelet_pods.go``):

1. ``envFrom`` sources in order: every key of a ConfigMap's ``data`` / a Secret's ``data``
   (bytes, decoded), with ``prefix`` prepended; keys that are not valid variable names are
   skipped (and reported, as Kubernetes' ``InvalidEnvironmentVariableNames`` event);
2. ``env`` entries in order, overriding: ``value`` with ``$(VAR)`` expanded against what is
   defined so far (then the service variables), or ``valueFrom`` (configMapKeyRef, secretKeyRef,
   fieldRef, resourceFieldRef) — never expanded;
3. the service variables (``KUBERNETES_SERVICE_HOST``, ...) for names not defined yet.

A missing ConfigMap, Secret or key that is not ``optional`` fails the container with
``CreateContainerConfigError`` and Kubernetes' message (``configmap "x" not found``,
``couldn't find key k in ConfigMap ns/x``); the pod worker reports it as the container's
waiting reason and retries on its next sync.

The work is split into a fetch (:func:`fetch_env_sources`: every ConfigMap/Secret the container
names, read once) and a pure core (:func:`build_env`), so the semantics are testable without an
apiserver; :func:`container_env` is the two together.

**kplane difference** (documented in the kubelet's README): Kubernetes never injects downward
values on its own, but kplane's demo images read them, so the kubelet adds ``POD_NAME``,
``POD_NAMESPACE``, ``POD_IP``, ``NODE_NAME`` and ``HOSTNAME`` (the pod's hostname: ``spec.hostname``
or its name, as a container runtime sets it) whenever the pod's own environment does not define
them. A pod that defines any of them gets its own value.

:func:`expand` is Kubernetes' ``third_party/forked/golang/expansion`` (``$(VAR)`` references,
``$$`` escapes, undefined references left as written); the kubelet also uses it for ``command``
and ``args``. The downward-API helpers (:func:`pod_field_value`, :func:`container_resource_value`)
are shared with ``downwardAPI`` volumes (:mod:`kubelet.volumes`).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from google.protobuf.message import Message

from kplane.api import errors as api_errors
from kplane.api.pb import core_pb2, resource_pb2
from kplane.api.quantity import Quantity
from kplane.api.resources import ResourceType, resolve
from kplane.api.validation.names import is_qualified_name, is_relaxed_env_var_name

__all__ = [
    "CreateContainerConfigError",
    "EnvSources",
    "ObjectGetter",
    "build_env",
    "container_env",
    "container_resource_value",
    "default_node_allocatable",
    "expand",
    "fetch_env_sources",
    "fetch_object",
    "go_quote",
    "mapping_func",
    "pod_field_value",
    "service_env_for_pod",
    "services_env",
]

# kplane's additions when the pod does not define them (see the module docstring).
KPLANE_DOWNWARD_VARS = ("POD_NAME", "POD_NAMESPACE", "POD_IP", "NODE_NAME", "HOSTNAME")


class CreateContainerConfigError(Exception):
    """The container's configuration cannot be built (a missing ConfigMap, Secret or key, an
    unsupported field path, ...). ``reason`` is the container's waiting reason."""

    reason = "CreateContainerConfigError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ObjectGetter(Protocol):
    """What the kubelet reads ConfigMaps and Secrets through: :class:`kplane.client.client.Client`
    (or anything with its ``get``, e.g. a cache in front of it)."""

    async def get(self, rt: ResourceType, name: str, *, namespace: str = "") -> Message: ...


# --------------------------------------------------------------------------------------------
# $(VAR) expansion — k8s.io/kubernetes/third_party/forked/golang/expansion


def mapping_func(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """``MappingFuncFor``: the first context that defines a name wins; an undefined name is
    written back as ``$(name)``."""

    def lookup(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"

    return lookup


def expand(s: str, mapping: Mapping[str, str] | Callable[[str], str]) -> str:
    """Expand ``$(VAR)`` references in ``s``: ``$$`` is a literal ``$`` (so ``$$(VAR)`` stays
    ``$(VAR)``), an undefined or unterminated reference is left as written, and a ``$`` before
    anything else is kept."""
    lookup = mapping_func(mapping) if isinstance(mapping, Mapping) else mapping
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(s)
    while cursor < n:
        if s[cursor] == "$" and cursor + 1 < n:
            out.append(s[checkpoint:cursor])
            nxt = s[cursor + 1]
            if nxt == "$":  # escaped operator
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = s.find(")", cursor + 2)
                if close == -1:  # incomplete reference: keep "$(" and go on after it
                    out.append("$(")
                    advance = 1
                else:
                    out.append(lookup(s[cursor + 2 : close]))
                    advance = close - cursor
            else:  # not a reference: the operator and the character after it
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(s[checkpoint:])
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Downward API


def go_quote(s: str) -> str:
    """Go's ``%q`` of a string (what Kubernetes uses in formatted maps and messages)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _format_map(m: Mapping[str, str]) -> str:
    """``fieldpath.FormatMap``: ``key="value"`` lines in key order."""
    return "\n".join(f"{k}={go_quote(m[k])}" for k in sorted(m))


def _split_subscript(field_path: str) -> tuple[str, str] | None:
    """``SplitMaybeSubscriptedPath``: ``metadata.labels['k']`` -> (``metadata.labels``, ``k``)."""
    if not field_path.endswith("']"):
        return None
    base, sep, key = field_path[:-2].partition("['")
    if not sep or not base:
        return None
    return base, key


def _object_field(pod: core_pb2.Pod, field_path: str) -> str:
    """``fieldpath.ExtractFieldPathAsString``: the metadata fields (and whole label/annotation maps)."""
    meta = pod.metadata
    sub = _split_subscript(field_path)
    if sub is not None:
        base, key = sub
        if base == "metadata.annotations":
            errs = is_qualified_name(key.lower())
            if errs:
                raise CreateContainerConfigError(f"invalid key subscript in {field_path}: {';'.join(errs)}")
            return meta.annotations.get(key, "")
        if base == "metadata.labels":
            errs = is_qualified_name(key)
            if errs:
                raise CreateContainerConfigError(f"invalid key subscript in {field_path}: {';'.join(errs)}")
            return meta.labels.get(key, "")
        raise CreateContainerConfigError(f"fieldPath {go_quote(field_path)} does not support subscript")
    if field_path == "metadata.annotations":
        return _format_map(meta.annotations)
    if field_path == "metadata.labels":
        return _format_map(meta.labels)
    if field_path == "metadata.name":
        return meta.name
    if field_path == "metadata.namespace":
        return meta.namespace
    if field_path == "metadata.uid":
        return meta.uid
    raise CreateContainerConfigError(f"unsupported fieldPath: {field_path}")


# ConvertDownwardAPIFieldLabel (v1): the field paths a fieldRef may name.
_DOWNWARD_FIELDS = frozenset({
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
    "status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
})


def pod_field_value(pod: core_pb2.Pod, selector: core_pb2.ObjectFieldSelector, *, pod_ip: str | None = None,
                    host_ip: str | None = None, node_name: str = "") -> str:
    """A ``fieldRef``'s value (``podFieldSelectorRuntimeValue``). ``pod_ip``/``host_ip`` are what
    the kubelet knows now (the pod's status may not carry them yet); ``None`` means "not an
    environment variable": downwardAPI volumes support the metadata fields only, as in Kubernetes.
    Raises :class:`CreateContainerConfigError` for an unsupported path."""
    field_path = selector.fieldPath
    api_version = selector.apiVersion or "v1"
    if api_version != "v1":
        raise CreateContainerConfigError(f"unsupported pod version: {api_version}")
    sub = _split_subscript(field_path)
    base = sub[0] if sub is not None else field_path
    if sub is not None and base not in ("metadata.labels", "metadata.annotations"):
        raise CreateContainerConfigError(f"field label does not support subscript: {field_path}")
    if base not in _DOWNWARD_FIELDS:
        raise CreateContainerConfigError(f"field label not supported: {field_path}")
    if pod_ip is not None:  # the runtime-only fields, for environment variables
        pod_ips = _pod_ips(pod, pod_ip)
        if field_path == "spec.nodeName":
            return pod.spec.nodeName or node_name
        if field_path == "spec.serviceAccountName":
            return pod.spec.serviceAccountName
        if field_path == "status.hostIP":
            return host_ip or ""
        if field_path == "status.hostIPs":
            return host_ip or ""
        if field_path == "status.podIP":
            return pod_ips[0] if pod_ips else ""
        if field_path == "status.podIPs":
            return ",".join(pod_ips)
    return _object_field(pod, field_path)


def _pod_ips(pod: core_pb2.Pod, pod_ip: str) -> list[str]:
    ips = [p.ip for p in pod.status.podIPs if p.ip]
    if pod_ip and (not ips or ips[0] != pod_ip):
        ips = [pod_ip, *(ip for ip in ips if ip != pod_ip)]
    return ips


def default_node_allocatable() -> dict[str, Quantity]:
    """What this machine offers, the stand-in for an unset limit in ``resourceFieldRef``
    (Kubernetes uses the node's allocatable; the kubelet should pass its Node's)."""
    import psutil

    return {
        "cpu": Quantity.from_int(os.cpu_count() or 1),
        "memory": Quantity.from_int(psutil.virtual_memory().total),
        "ephemeral-storage": Quantity.from_int(shutil.disk_usage("/").total),
    }


def _quantity(q: resource_pb2.Quantity | None) -> Quantity | None:
    if q is None or not q.string:
        return None
    return Quantity.parse(q.string)


def _ceil_div(a: Fraction, b: Fraction) -> int:
    return math.ceil(a / b)


def container_resource_value(selector: core_pb2.ResourceFieldSelector, container: core_pb2.Container,
                             node_allocatable: Mapping[str, Quantity] | None = None) -> str:
    """A ``resourceFieldRef``'s value (``ExtractContainerResourceValue``): the container's limit or
    request in units of ``divisor`` (default 1), rounded up; an unset cpu/memory/ephemeral-storage
    limit is the node's allocatable (``MergeContainerResourceLimits``), an unset request is 0."""
    divisor = _quantity(selector.divisor if selector.HasField("divisor") else None)
    if divisor is None or divisor.is_zero():
        divisor = Quantity.from_int(1)
    resource = selector.resource
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise CreateContainerConfigError(f"unsupported container resource : {resource}")
    if name not in ("cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-"):
        raise CreateContainerConfigError(f"unsupported container resource : {resource}")
    values = container.resources.limits if kind == "limits" else container.resources.requests
    value = _quantity(values[name]) if name in values else None
    if value is None and kind == "limits" and not name.startswith("hugepages-"):
        alloc = node_allocatable if node_allocatable is not None else default_node_allocatable()
        value = alloc.get(name)
    if value is None:
        value = Quantity.from_int(0)
    if name == "cpu":
        return str(_ceil_div(Fraction(value.milli_value()), Fraction(max(divisor.milli_value(), 1))))
    return str(_ceil_div(Fraction(value.value()), Fraction(max(divisor.value(), 1))))


# --------------------------------------------------------------------------------------------
# Fetch: every ConfigMap and Secret a container's environment names


@dataclass
class EnvSources:
    """ConfigMaps and Secrets by name; ``None`` records "not found" (an optional reference may
    skip it, a required one fails with Kubernetes' message)."""

    configmaps: dict[str, core_pb2.ConfigMap | None] = field(default_factory=dict)
    secrets: dict[str, core_pb2.Secret | None] = field(default_factory=dict)


def _referenced(container: core_pb2.Container) -> tuple[list[str], list[str]]:
    cms: list[str] = []
    secrets: list[str] = []
    for src in container.envFrom:
        if src.HasField("configMapRef"):
            cms.append(src.configMapRef.name)
        elif src.HasField("secretRef"):
            secrets.append(src.secretRef.name)
    for var in container.env:
        if var.value or not var.HasField("valueFrom"):
            continue
        vf = var.valueFrom
        if vf.HasField("configMapKeyRef"):
            cms.append(vf.configMapKeyRef.name)
        elif vf.HasField("secretKeyRef"):
            secrets.append(vf.secretKeyRef.name)
    return list(dict.fromkeys(cms)), list(dict.fromkeys(secrets))


async def fetch_object(client: ObjectGetter, resource: str, namespace: str, name: str) -> Message | None:
    """One ConfigMap/Secret, or ``None`` when it does not exist. Any other API error (the
    apiserver unreachable, ...) is a :class:`CreateContainerConfigError` carrying its message,
    as Kubernetes reports it."""
    try:
        return await client.get(resolve(resource), name, namespace=namespace)
    except api_errors.NotFound:
        return None
    except api_errors.APIError as exc:
        raise CreateContainerConfigError(str(exc)) from exc


async def fetch_env_sources(client: ObjectGetter, pod: core_pb2.Pod,
                            containers: Sequence[core_pb2.Container]) -> EnvSources:
    """Read every ConfigMap and Secret the containers' ``envFrom``/``env`` name, once each."""
    ns = pod.metadata.namespace
    sources = EnvSources()
    for container in containers:
        cms, secrets = _referenced(container)
        for name in cms:
            if name not in sources.configmaps:
                sources.configmaps[name] = await fetch_object(client, "configmaps", ns, name)  # type: ignore[assignment]
        for name in secrets:
            if name not in sources.secrets:
                sources.secrets[name] = await fetch_object(client, "secrets", ns, name)  # type: ignore[assignment]
    return sources


# --------------------------------------------------------------------------------------------
# Service environment variables — Kubernetes' getServiceEnvVarMap and pkg/kubelet/envvars

MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


def _env_name(name: str) -> str:
    """``makeEnvVariableName``: upper-cased, dashes to underscores."""
    return name.replace("-", "_").upper()


def is_service_ip_set(service: core_pb2.Service) -> bool:
    ip = service.spec.clusterIP
    return bool(ip) and ip != "None"


def services_env(services: Sequence[core_pb2.Service]) -> dict[str, str]:
    """``envvars.FromServices``: ``NAME_SERVICE_HOST``, ``NAME_SERVICE_PORT`` (the first port),
    ``NAME_SERVICE_PORT_<PORTNAME>`` per named port, and the docker-link variables ``NAME_PORT``,
    ``NAME_PORT_<port>_<PROTO>`` with ``_PROTO``, ``_PORT`` and ``_ADDR``."""
    env: dict[str, str] = {}
    for svc in services:
        if not is_service_ip_set(svc) or not svc.spec.ports:
            continue
        ip = svc.spec.clusterIP
        prefix = _env_name(svc.metadata.name)
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(svc.spec.ports[0].port)
        for sp in svc.spec.ports:
            if sp.name:
                env[f"{prefix}_SERVICE_PORT_{_env_name(sp.name)}"] = str(sp.port)
        host = f"[{ip}]" if ":" in ip else ip
        for i, sp in enumerate(svc.spec.ports):
            proto = (sp.protocol or "TCP").lower()
            url = f"{proto}://{host}:{sp.port}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{sp.port}_{proto.upper()}"
            env[port_prefix] = url
            env[f"{port_prefix}_PROTO"] = proto
            env[f"{port_prefix}_PORT"] = str(sp.port)
            env[f"{port_prefix}_ADDR"] = ip
    return env


def service_env_for_pod(pod: core_pb2.Pod, services: Sequence[core_pb2.Service]) -> dict[str, str]:
    """The service variables a pod's containers get (``getServiceEnvVarMap``): every Service of
    the pod's namespace with a cluster IP, unless ``enableServiceLinks: false``; always
    ``default/kubernetes`` (a namesake in the pod's own namespace takes its place when links
    are enabled). ``services`` may hold every namespace's Services."""
    ns = pod.metadata.namespace
    links = not pod.spec.HasField("enableServiceLinks") or pod.spec.enableServiceLinks
    chosen: dict[str, core_pb2.Service] = {}
    for svc in services:
        if not is_service_ip_set(svc):
            continue
        name = svc.metadata.name
        if svc.metadata.namespace == MASTER_SERVICE_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif svc.metadata.namespace == ns and links:
            chosen[name] = svc
    return services_env([chosen[name] for name in sorted(chosen)])


# --------------------------------------------------------------------------------------------
# The pure core


def _decode(value: bytes) -> str:
    # Secret data is bytes; surrogateescape keeps non-UTF-8 bytes intact through os.fsencode.
    return value.decode("utf-8", "surrogateescape")


def build_env(pod: core_pb2.Pod, container: core_pb2.Container, sources: EnvSources, *, pod_ip: str,
              host_ip: str, node_name: str, service_env: Mapping[str, str] | None = None,
              node_allocatable: Mapping[str, Quantity] | None = None,
              warnings: list[str] | None = None, kplane_defaults: bool = True) -> dict[str, str]:
    """The container's environment from already fetched sources (see the module docstring for
    the order). ``warnings`` collects the messages of Kubernetes' ``InvalidEnvironmentVariableNames``
    events (skipped ``envFrom`` keys). ``kplane_defaults=False`` gives Kubernetes' exact result
    (no POD_NAME/.../HOSTNAME additions)."""
    ns = pod.metadata.namespace
    service = dict(service_env or {})
    env: dict[str, str] = {}

    def configmap(name: str) -> core_pb2.ConfigMap | None:
        return sources.configmaps.get(name)

    def secret(name: str) -> core_pb2.Secret | None:
        return sources.secrets.get(name)

    for src in container.envFrom:
        if src.HasField("configMapRef"):
            name, optional = src.configMapRef.name, src.configMapRef.optional
            cm = configmap(name)
            if cm is None:
                if optional:
                    continue
                raise CreateContainerConfigError(f'configmap "{name}" not found')
            items: list[tuple[str, str]] = list(cm.data.items())
            what = "configMap"
        elif src.HasField("secretRef"):
            name, optional = src.secretRef.name, src.secretRef.optional
            sec = secret(name)
            if sec is None:
                if optional:
                    continue
                raise CreateContainerConfigError(f'secret "{name}" not found')
            items = [(k, _decode(v)) for k, v in sec.data.items()]
            what = "secret"
        else:
            continue
        invalid: list[str] = []
        for key, value in items:
            key = src.prefix + key
            if is_relaxed_env_var_name(key):
                invalid.append(key)
                continue
            env[key] = value
        if invalid and warnings is not None:
            warnings.append(f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {what} {ns}/{name} were skipped "
                            "since they are considered invalid environment variable names.")

    lookup = mapping_func(env, service)
    for var in container.env:
        value = var.value
        if value:
            value = expand(value, lookup)
        elif var.HasField("valueFrom"):
            vf = var.valueFrom
            if vf.HasField("fieldRef"):
                value = pod_field_value(pod, vf.fieldRef, pod_ip=pod_ip, host_ip=host_ip, node_name=node_name)
            elif vf.HasField("resourceFieldRef"):
                value = container_resource_value(vf.resourceFieldRef, container, node_allocatable)
            elif vf.HasField("configMapKeyRef"):
                ref = vf.configMapKeyRef
                cm = configmap(ref.name)
                if cm is None:
                    if ref.optional:
                        continue
                    raise CreateContainerConfigError(f'configmap "{ref.name}" not found')
                if ref.key not in cm.data:
                    if ref.optional:
                        continue
                    raise CreateContainerConfigError(f"couldn't find key {ref.key} in ConfigMap {ns}/{ref.name}")
                value = cm.data[ref.key]
            elif vf.HasField("secretKeyRef"):
                sref = vf.secretKeyRef
                sec = secret(sref.name)
                if sec is None:
                    if sref.optional:
                        continue
                    raise CreateContainerConfigError(f'secret "{sref.name}" not found')
                if sref.key not in sec.data:
                    if sref.optional:
                        continue
                    raise CreateContainerConfigError(f"couldn't find key {sref.key} in Secret {ns}/{sref.name}")
                value = _decode(sec.data[sref.key])
        env[var.name] = value

    for key, value in service.items():
        env.setdefault(key, value)

    if kplane_defaults:
        ips = _pod_ips(pod, pod_ip)
        defaults = {
            "POD_NAME": pod.metadata.name,
            "POD_NAMESPACE": ns,
            "POD_IP": ips[0] if ips else "",
            "NODE_NAME": pod.spec.nodeName or node_name,
            "HOSTNAME": pod.spec.hostname or pod.metadata.name[:63],
        }
        for key, value in defaults.items():
            env.setdefault(key, value)
    return env


async def container_env(client: ObjectGetter, pod: core_pb2.Pod, container: core_pb2.Container, *, pod_ip: str,
                        host_ip: str, node_name: str, service_env: Mapping[str, str] | None = None,
                        node_allocatable: Mapping[str, Quantity] | None = None,
                        warnings: list[str] | None = None) -> dict[str, str]:
    """Fetch what the container's environment names and build it (:func:`build_env`).
    Raises :class:`CreateContainerConfigError`."""
    sources = await fetch_env_sources(client, pod, [container])
    return build_env(pod, container, sources, pod_ip=pod_ip, host_ip=host_ip, node_name=node_name,
                     service_env=service_env, node_allocatable=node_allocatable, warnings=warnings)
