"""Validation for the core/v1 kinds, after pkg/apis/core/validation/validation.go.

Kinds: Pod (and the PodSpec / PodTemplateSpec shared with every workload), Node, Namespace,
Service, Endpoints, ConfigMap, Secret, Event, Binding, ReplicationController,
PersistentVolumeClaim. Validation runs on *defaulted* objects (`kplane.api.defaults` first), as
in Kubernetes: fields that defaulting always fills (`restartPolicy`, `dnsPolicy`,
`imagePullPolicy`, `terminationGracePeriodSeconds`, ...) are reported as required when missing.

Deliberate differences from upstream, all in the direction of a more precise path:
node taint errors are reported under `spec.taints` (upstream says `metadata.taints`), owner
references and finalizers carry their list index, pod template label errors carry
`spec.template.metadata.labels`. Loopback addresses are accepted in Endpoints (kplane gives every
pod its own 127.0.0.0/8 address).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Mapping
from typing import Any

from kplane.api import field as fe
from kplane.api.field import FieldError
from kplane.api.labels import validate_label_value
from kplane.api.quantity import Quantity
from kplane.api.validation import names
from kplane.api.validation.meta import (
    IS_NEGATIVE,
    Errs,
    JSONDict,
    as_dict,
    as_int,
    child,
    dict_items,
    format_errors,
    get_dict,
    get_int,
    get_list,
    get_str,
    get_str_list,
    get_str_map,
    index,
    key,
    name_errors,
    nonnegative,
    opt_bool,
    opt_dict,
    opt_int,
    opt_str,
    quiet,
    render,
    semantic_equal,
    validate_annotations,
    validate_finalizer_name,
    validate_immutable,
    validate_label_name,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

MAX_INT32 = names.MAX_INT32
SUPPORTED_PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
HTTP_SCHEMES = ("HTTP", "HTTPS")
HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
MOUNT_PROPAGATION = ("Bidirectional", "HostToContainer", "None")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
NODE_INCLUSION_POLICIES = ("Honor", "Ignore")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
FS_GROUP_CHANGE_POLICIES = ("Always", "OnRootMismatch")
SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")
PROC_MOUNT_TYPES = ("Default", "Unmasked")
OS_NAMES = ("linux", "windows")
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")
MAX_SECRET_SIZE = 1024 * 1024
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
FILE_MODE_ERR = "must be a number between 0 and 0777 (octal), both inclusive"
NOT_POSITIVE = "must be greater than zero"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

# The volume sources, in the order Kubernetes checks them ("may not specify more than 1 volume type").
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc",
    "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk",
    "storageos", "projected", "scaleIO", "csi", "ephemeral", "image",
)  # fmt: skip

UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)

_ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)  # fmt: skip
_VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
_RESOURCE_FIELD_PATHS = (
    "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage",
    "requests.memory",
)  # fmt: skip
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_STANDARD_RESOURCES = frozenset(
    {
        "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
        "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "quota", "services",
        "replicationcontrollers", "resourcequotas", "secrets", "persistentvolumeclaims", "configmaps",
        "services.nodeports", "services.loadbalancers", "storage", "requests.storage",
    }
)  # fmt: skip


# ============================================================================================
# Small helpers


def _one_of(value: str, allowed: tuple[str, ...], path: str, errs: Errs, *, required: bool = True) -> None:
    """Required when empty (if `required`), Unsupported value when not in `allowed`."""
    if not value:
        if required:
            errs.append(fe.required(path))
    elif value not in allowed:
        errs.append(fe.not_supported(path, value, allowed))


def _int_or_string(value: Any, path: str, errs: Errs) -> int | str | None:
    """An IntOrString JSON value (a number or a string); None when absent or of another type."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    n = as_int(value)
    if n is None:
        errs.append(fe.type_invalid(path, value, "expected an integer or a string"))
    return n


def validate_port_num_or_name(value: Any, path: str, errs: Errs) -> None:
    port = _int_or_string(value, path, errs)
    if port is None:
        if value is None:
            errs.append(fe.invalid(path, 0, names.inclusive_range_error(1, 65535)))
        return
    if isinstance(port, int):
        for msg in names.is_valid_port_num(port):
            errs.append(fe.invalid(path, port, msg))
    else:
        for msg in names.is_valid_port_name(port):
            errs.append(fe.invalid(path, port, msg))


def _path_no_backsteps(target: str, path: str, errs: Errs) -> None:
    if ".." in target.replace("\\", "/").split("/"):
        errs.append(fe.invalid(path, target, "must not contain '..'"))


def _local_descending_path(target: str, path: str, errs: Errs) -> None:
    if target.startswith("/"):
        errs.append(fe.invalid(path, target, "must be a relative path"))
    _path_no_backsteps(target, path, errs)


def _local_non_reserved_path(target: str, path: str, errs: Errs) -> None:
    _local_descending_path(target, path, errs)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(fe.invalid(path, target, "must not start with '..'"))


def _file_mode(obj: JSONDict, name: str, path: str, errs: Errs) -> None:
    mode = opt_int(obj, name, path, errs)
    if mode is not None and not 0 <= mode <= 0o777:
        errs.append(fe.invalid(child(path, name), mode, FILE_MODE_ERR))


def _ip(value: str, path: str, errs: Errs) -> bool:
    msgs = names.is_valid_ip(value)
    for msg in msgs:
        errs.append(fe.invalid(path, value, msg))
    return not msgs


def _non_special_ip(value: str, path: str, errs: Errs, *, allow_loopback: bool = False) -> None:
    ip = names.parse_ip(value)
    if ip is None:
        return
    if ip.is_unspecified:
        errs.append(fe.invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback and not allow_loopback:
        errs.append(fe.invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local:
        errs.append(fe.invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if ip.is_multicast and (str(ip).startswith("224.0.0.") or str(ip).lower().startswith("ff02:")):
        errs.append(
            fe.invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        )


# ============================================================================================
# Resources and quantities


def parse_quantity(raw: Any, path: str, errs: Errs) -> Quantity | None:
    """A quantity from JSON (string or number); invalid ones are reported at `path`."""
    try:
        return Quantity.from_json(raw)
    except (ValueError, TypeError) as exc:
        errs.append(fe.invalid(path, raw, str(exc)))
        return None


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_extended_resource(name: str) -> bool:
    if _is_native_resource(name) or name.startswith("requests."):
        return False
    return not names.is_qualified_name("requests." + name)


def _overcommit_allowed(name: str) -> bool:
    return _is_native_resource(name) and not _is_hugepages(name)


def _validate_container_resource_name(name: str, path: str, errs: Errs) -> bool:
    before = len(errs)
    msgs = names.is_qualified_name(name)
    for msg in msgs:
        errs.append(fe.invalid(path, name, msg))
    if msgs:
        return False
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name):
            errs.append(fe.invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            errs.append(fe.invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native_resource(name) and not _is_extended_resource(name):
        errs.append(fe.invalid(path, name, "doesn't follow extended resource name standard"))
    return len(errs) == before


def validate_quantity_value(name: str, q: Quantity, path: str, errs: Errs) -> None:
    if q.sign() < 0:
        errs.append(fe.invalid(path, str(q), IS_NEGATIVE))
    if _is_extended_resource(name) and q.milli_value() % 1000 != 0:
        errs.append(fe.invalid(path, str(q), "must be an integer"))


def _resource_list(res: JSONDict, name: str, path: str, errs: Errs) -> dict[str, Quantity]:
    lpath = child(path, name)
    raw = as_dict(res.get(name), lpath, errs) or {}
    out: dict[str, Quantity] = {}
    for rname, value in raw.items():
        kpath = key(lpath, str(rname))
        ok = _validate_container_resource_name(str(rname), kpath, errs)
        q = parse_quantity(value, kpath, errs)
        if q is None:
            continue
        validate_quantity_value(str(rname), q, kpath, errs)
        if ok:
            out[str(rname)] = q
    return out


def validate_resource_requirements(res: JSONDict, path: str, errs: Errs) -> None:
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    limits = _resource_list(res, "limits", path, errs)
    requests = _resource_list(res, "requests", path, errs)
    for rname, q in requests.items():
        limit = limits.get(rname)
        if limit is not None:
            if q != limit and not _overcommit_allowed(rname):
                errs.append(fe.invalid(req_path, str(q), f"must be equal to {rname} limit of {limit}"))
            elif q > limit:
                errs.append(
                    fe.invalid(req_path, str(q), f"must be less than or equal to {rname} limit of {limit}")
                )
        elif not _overcommit_allowed(rname):
            errs.append(fe.required(lim_path, "Limit must be set for non overcommitable resources"))
    all_names = set(limits) | set(requests)
    if any(_is_hugepages(n) for n in all_names) and not all_names & {"cpu", "memory"}:
        errs.append(fe.forbidden(path, "HugePages require cpu or memory"))


# ============================================================================================
# Volumes


def _validate_key_to_paths(src: JSONDict, path: str, errs: Errs) -> list[str]:
    paths: list[str] = []
    for _, ipath, item in dict_items(src, "items", path, errs):
        if not get_str(item, "key", ipath, errs):
            errs.append(fe.required(child(ipath, "key")))
        p = get_str(item, "path", ipath, errs)
        if not p:
            errs.append(fe.required(child(ipath, "path")))
        _local_non_reserved_path(p, child(ipath, "path"), errs)
        _file_mode(item, "mode", ipath, errs)
        if p:
            paths.append(p)
    return paths


def _validate_object_field_selector(ref: JSONDict, allowed: tuple[str, ...], path: str, errs: Errs) -> None:
    if not get_str(ref, "apiVersion", path, errs):
        errs.append(fe.required(child(path, "apiVersion")))
        return
    field_path = get_str(ref, "fieldPath", path, errs)
    if not field_path:
        errs.append(fe.required(child(path, "fieldPath")))
        return
    if "[" in field_path and field_path.endswith("]"):
        base, _, rest = field_path.partition("[")
        subscript = rest[:-1].strip("'\"")
        if base == "metadata.annotations":
            format_errors(subscript.lower(), path, names.is_qualified_name, errs)
        elif base == "metadata.labels":
            format_errors(subscript, path, names.is_qualified_name, errs)
        else:
            errs.append(fe.invalid(path, base, "does not support subscript"))
        return
    if field_path not in allowed:
        errs.append(fe.not_supported(child(path, "fieldPath"), field_path, sorted(allowed)))


def _validate_resource_field_selector(ref: JSONDict, path: str, errs: Errs, *, volume: bool) -> None:
    resource = get_str(ref, "resource", path, errs)
    if volume and not get_str(ref, "containerName", path, errs):
        errs.append(fe.required(child(path, "containerName")))
    elif not resource:
        errs.append(fe.required(child(path, "resource")))
    elif resource not in _RESOURCE_FIELD_PATHS and not resource.startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        errs.append(fe.not_supported(child(path, "resource"), resource, _RESOURCE_FIELD_PATHS))
    if ref.get("divisor") is not None:
        parse_quantity(ref.get("divisor"), child(path, "divisor"), errs)


def _validate_downward_api_file(item: JSONDict, path: str, errs: Errs) -> str:
    p = get_str(item, "path", path, errs)
    if not p:
        errs.append(fe.required(child(path, "path")))
    _local_non_reserved_path(p, child(path, "path"), errs)
    field_ref = opt_dict(item, "fieldRef", path, errs)
    resource_ref = opt_dict(item, "resourceFieldRef", path, errs)
    if field_ref is not None:
        _validate_object_field_selector(field_ref, _VOLUME_FIELD_PATHS, child(path, "fieldRef"), errs)
        if resource_ref is not None:
            errs.append(
                fe.invalid(
                    path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"
                )
            )
    elif resource_ref is not None:
        _validate_resource_field_selector(resource_ref, child(path, "resourceFieldRef"), errs, volume=True)
    else:
        errs.append(fe.required(path, "one of fieldRef and resourceFieldRef is required"))
    _file_mode(item, "mode", path, errs)
    return p


def _validate_projected(src: JSONDict, path: str, errs: Errs) -> None:
    _file_mode(src, "defaultMode", path, errs)
    seen: set[str] = set()

    def add_path(p: str, value: str) -> None:
        if p in seen:
            errs.append(fe.invalid(path, value, "conflicting duplicate paths"))
        seen.add(p)

    for _, spath, source in dict_items(src, "sources", path, errs):
        count = 0
        for kind in ("secret", "configMap"):
            proj = opt_dict(source, kind, spath, errs)
            if proj is None:
                continue
            count += 1
            ppath = child(spath, kind)
            if not get_str(proj, "name", ppath, errs):
                errs.append(fe.required(child(ppath, "name")))
            for p in _validate_key_to_paths(proj, ppath, errs):
                add_path(p, get_str(proj, "name", ppath, []))
        dapi = opt_dict(source, "downwardAPI", spath, errs)
        if dapi is not None:
            count += 1
            dpath = child(spath, "downwardAPI")
            for _, ipath, item in dict_items(dapi, "items", dpath, errs):
                p = _validate_downward_api_file(item, ipath, errs)
                if p:
                    add_path(p, p)
        token = opt_dict(source, "serviceAccountToken", spath, errs)
        if token is not None:
            count += 1
            tpath = child(spath, "serviceAccountToken")
            expiration = opt_int(token, "expirationSeconds", tpath, errs)
            if expiration is not None and expiration < 600:
                errs.append(
                    fe.invalid(
                        child(tpath, "expirationSeconds"),
                        expiration,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            elif expiration is not None and expiration > 2**32:
                errs.append(
                    fe.invalid(
                        child(tpath, "expirationSeconds"),
                        expiration,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                )
            p = get_str(token, "path", tpath, errs)
            if not p:
                errs.append(fe.required(child(tpath, "path")))
            else:
                add_path(p, p)
        for other in ("clusterTrustBundle", "podCertificate"):
            if opt_dict(source, other, spath, errs) is not None:
                count += 1
        if count > 1:
            errs.append(fe.forbidden(spath, "may not specify more than 1 volume type per source"))
        elif count == 0:
            errs.append(fe.required(spath, "must specify one source"))


def _validate_volume_source(vol: JSONDict, path: str, errs: Errs) -> None:
    count = 0
    for src_name in VOLUME_SOURCES:
        raw = vol.get(src_name)
        if raw is None:
            continue
        spath = child(path, src_name)
        if count > 0:
            errs.append(fe.forbidden(spath, "may not specify more than 1 volume type"))
            continue
        count += 1
        src = as_dict(raw, spath, errs)
        if src is None:
            continue
        if src_name == "emptyDir":
            if src.get("sizeLimit") is not None:
                q = parse_quantity(src.get("sizeLimit"), child(spath, "sizeLimit"), errs)
                if q is not None and q.sign() < 0:
                    errs.append(
                        fe.forbidden(
                            child(spath, "sizeLimit"), "SizeLimit field must be a valid resource quantity"
                        )
                    )
        elif src_name == "hostPath":
            p = get_str(src, "path", spath, errs)
            if not p:
                errs.append(fe.required(child(spath, "path")))
                continue
            _path_no_backsteps(p, child(spath, "path"), errs)
            t = opt_str(src, "type", spath, errs)
            if t is not None and t not in HOST_PATH_TYPES:
                errs.append(fe.not_supported(child(spath, "type"), t, HOST_PATH_TYPES))
        elif src_name == "secret":
            if not get_str(src, "secretName", spath, errs):
                errs.append(fe.required(child(spath, "secretName")))
            _file_mode(src, "defaultMode", spath, errs)
            _validate_key_to_paths(src, spath, errs)
        elif src_name == "configMap":
            if not get_str(src, "name", spath, errs):
                errs.append(fe.required(child(spath, "name")))
            _file_mode(src, "defaultMode", spath, errs)
            _validate_key_to_paths(src, spath, errs)
        elif src_name == "persistentVolumeClaim":
            if not get_str(src, "claimName", spath, errs):
                errs.append(fe.required(child(spath, "claimName")))
        elif src_name == "downwardAPI":
            _file_mode(src, "defaultMode", spath, errs)
            for _, ipath, item in dict_items(src, "items", spath, errs):
                _validate_downward_api_file(item, ipath, errs)
        elif src_name == "projected":
            _validate_projected(src, spath, errs)
        elif src_name == "nfs":
            if not get_str(src, "server", spath, errs):
                errs.append(fe.required(child(spath, "server")))
            p = get_str(src, "path", spath, errs)
            if not p:
                errs.append(fe.required(child(spath, "path")))
            if not p.startswith("/"):
                errs.append(fe.invalid(child(spath, "path"), p, "must be an absolute path"))
        elif src_name == "csi":
            if not get_str(src, "driver", spath, errs):
                errs.append(fe.required(child(spath, "driver")))
        elif src_name == "ephemeral":
            if opt_dict(src, "volumeClaimTemplate", spath, errs) is None:
                errs.append(fe.required(child(spath, "volumeClaimTemplate")))
        elif src_name == "gitRepo":
            if not get_str(src, "repository", spath, errs):
                errs.append(fe.required(child(spath, "repository")))
            _local_descending_path(get_str(src, "directory", spath, errs), child(spath, "directory"), errs)
        elif src_name == "image" and not get_str(src, "reference", spath, errs):
            errs.append(fe.required(child(spath, "reference")))
    if count == 0:
        errs.append(fe.required(path, "must specify a volume type"))


def validate_volumes(spec: JSONDict, path: str, errs: Errs) -> dict[str, JSONDict]:
    """Volume names (required, DNS-1123 labels, unique) and sources; returns the valid volumes."""
    vols: dict[str, JSONDict] = {}
    all_names: set[str] = set()
    for _, vpath, vol in dict_items(spec, "volumes", path, errs):
        el: Errs = []
        name = get_str(vol, "name", vpath, el)
        _validate_volume_source(vol, vpath, el)
        npath = child(vpath, "name")
        if not name:
            el.append(fe.required(npath))
        else:
            format_errors(name, npath, names.is_dns1123_label, el)
        if name in all_names:
            el.append(fe.duplicate(npath, name))
        if not el:
            all_names.add(name)
            vols[name] = vol
        errs.extend(el)
    return vols


# ============================================================================================
# Containers


def _validate_container_ports(ctr: JSONDict, path: str, errs: Errs) -> None:
    seen: set[str] = set()
    for _, ppath, port in dict_items(ctr, "ports", path, errs):
        name = get_str(port, "name", ppath, errs)
        if name:
            msgs = names.is_valid_port_name(name)
            for msg in msgs:
                errs.append(fe.invalid(child(ppath, "name"), name, msg))
            if not msgs:
                if name in seen:
                    errs.append(fe.duplicate(child(ppath, "name"), name))
                seen.add(name)
        container_port = opt_int(port, "containerPort", ppath, errs)
        if not container_port:
            errs.append(fe.required(child(ppath, "containerPort")))
        else:
            for msg in names.is_valid_port_num(container_port):
                errs.append(fe.invalid(child(ppath, "containerPort"), container_port, msg))
        host_port = opt_int(port, "hostPort", ppath, errs)
        if host_port:
            for msg in names.is_valid_port_num(host_port):
                errs.append(fe.invalid(child(ppath, "hostPort"), host_port, msg))
        _one_of(get_str(port, "protocol", ppath, errs), SUPPORTED_PROTOCOLS, child(ppath, "protocol"), errs)
        host_ip = get_str(port, "hostIP", ppath, errs)
        if host_ip:
            _ip(host_ip, child(ppath, "hostIP"), errs)


def _validate_env(ctr: JSONDict, path: str, errs: Errs) -> None:
    for _, epath, ev in dict_items(ctr, "env", path, errs):
        name = get_str(ev, "name", epath, errs)
        if not name:
            errs.append(fe.required(child(epath, "name")))
        else:
            format_errors(name, child(epath, "name"), names.is_relaxed_env_var_name, errs)
        value_from = opt_dict(ev, "valueFrom", epath, errs)
        if value_from is None:
            continue
        vpath = child(epath, "valueFrom")
        sources = 0
        field_ref = opt_dict(value_from, "fieldRef", vpath, errs)
        if field_ref is not None:
            sources += 1
            _validate_object_field_selector(field_ref, _ENV_FIELD_PATHS, child(vpath, "fieldRef"), errs)
        resource_ref = opt_dict(value_from, "resourceFieldRef", vpath, errs)
        if resource_ref is not None:
            sources += 1
            _validate_resource_field_selector(
                resource_ref, child(vpath, "resourceFieldRef"), errs, volume=False
            )
        for ref_name in ("configMapKeyRef", "secretKeyRef"):
            ref = opt_dict(value_from, ref_name, vpath, errs)
            if ref is None:
                continue
            sources += 1
            rpath = child(vpath, ref_name)
            ref_obj = get_str(ref, "name", rpath, errs)
            if ref_obj:
                name_errors(ref_obj, child(rpath, "name"), names.name_is_dns_subdomain, errs)
            ref_key = get_str(ref, "key", rpath, errs)
            if not ref_key:
                errs.append(fe.required(child(rpath, "key")))
            else:
                format_errors(ref_key, child(rpath, "key"), names.is_config_map_key, errs)
        for _other in ("fileKeyRef",):
            if opt_dict(value_from, _other, vpath, errs) is not None:
                sources += 1
        if sources == 0:
            errs.append(
                fe.invalid(
                    vpath,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif get_str(ev, "value", epath, errs):
            errs.append(fe.invalid(vpath, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errs.append(fe.invalid(vpath, "", "may not have more than one field specified at a time"))


def _validate_env_from(ctr: JSONDict, path: str, errs: Errs) -> None:
    lpath = child(path, "envFrom")
    for _, epath, ev in dict_items(ctr, "envFrom", path, errs):
        prefix = get_str(ev, "prefix", epath, errs)
        if prefix:
            format_errors(prefix, child(epath, "prefix"), names.is_relaxed_env_var_name, errs)
        sources = 0
        for ref_name in ("configMapRef", "secretRef"):
            ref = opt_dict(ev, ref_name, epath, errs)
            if ref is None:
                continue
            sources += 1
            rpath = child(epath, ref_name)
            ref_obj = get_str(ref, "name", rpath, errs)
            if not ref_obj:
                errs.append(fe.required(child(rpath, "name")))
            else:
                name_errors(ref_obj, child(rpath, "name"), names.name_is_dns_subdomain, errs, prefix=True)
        if sources == 0:
            errs.append(fe.invalid(lpath, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif sources > 1:
            errs.append(fe.invalid(lpath, "", "may not have more than one field specified at a time"))


def _validate_volume_mounts(ctr: JSONDict, vols: Mapping[str, JSONDict], path: str, errs: Errs) -> None:
    lpath = child(path, "volumeMounts")
    mount_points: set[str] = set()
    for _, mpath, mnt in dict_items(ctr, "volumeMounts", path, errs):
        name = get_str(mnt, "name", mpath, errs)
        if not name:
            errs.append(fe.required(child(mpath, "name")))
        if name not in vols:
            errs.append(FieldError(fe.NOT_FOUND, child(mpath, "name"), "", name))
        mount_path = get_str(mnt, "mountPath", mpath, errs)
        if not mount_path:
            errs.append(fe.required(child(mpath, "mountPath")))
        if mount_path in mount_points:
            errs.append(fe.invalid(child(mpath, "mountPath"), mount_path, "must be unique"))
        mount_points.add(mount_path)
        sub_path = get_str(mnt, "subPath", mpath, errs)
        if sub_path:
            _local_descending_path(sub_path, child(lpath, "subPath"), errs)
        sub_path_expr = get_str(mnt, "subPathExpr", mpath, errs)
        if sub_path_expr:
            if sub_path:
                errs.append(
                    fe.invalid(
                        child(mpath, "subPathExpr"),
                        sub_path_expr,
                        "subPathExpr and subPath are mutually exclusive",
                    )
                )
            _local_descending_path(sub_path_expr, child(lpath, "subPathExpr"), errs)
        propagation = opt_str(mnt, "mountPropagation", mpath, errs)
        if propagation is not None:
            ppath = child(lpath, "mountPropagation")
            if propagation not in MOUNT_PROPAGATION:
                errs.append(fe.not_supported(ppath, propagation, MOUNT_PROPAGATION))
            elif propagation == "Bidirectional":
                sc = as_dict(ctr.get("securityContext"), child(path, "securityContext"), []) or {}
                if sc.get("privileged") is not True:
                    errs.append(
                        fe.forbidden(
                            ppath,
                            "Bidirectional mount propagation is available only to privileged containers",
                        )
                    )


def _validate_handler(handler: JSONDict, grace: int | None, path: str, errs: Errs, *, probe: bool) -> None:
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else ("exec", "httpGet", "tcpSocket", "sleep")
    count = 0
    for kind in kinds:
        raw = handler.get(kind)
        if raw is None:
            continue
        hpath = child(path, kind)
        if count > 0:
            errs.append(fe.forbidden(hpath, "may not specify more than 1 handler type"))
            continue
        count += 1
        action = as_dict(raw, hpath, errs)
        if action is None:
            continue
        if kind == "exec":
            if not get_str_list(action, "command", hpath, errs):
                errs.append(fe.required(child(hpath, "command")))
        elif kind == "httpGet":
            if not get_str(action, "path", hpath, errs):
                errs.append(fe.required(child(hpath, "path")))
            validate_port_num_or_name(action.get("port"), child(hpath, "port"), errs)
            scheme = get_str(action, "scheme", hpath, errs)
            if scheme not in HTTP_SCHEMES:
                errs.append(fe.not_supported(child(hpath, "scheme"), scheme, HTTP_SCHEMES))
            for _, _hp, header in dict_items(action, "httpHeaders", hpath, errs):
                hname = get_str(header, "name", _hp, errs)
                format_errors(hname, child(hpath, "httpHeaders"), names.is_http_header_name, errs)
        elif kind == "tcpSocket":
            validate_port_num_or_name(action.get("port"), child(hpath, "port"), errs)
        elif kind == "grpc":
            port = opt_int(action, "port", hpath, errs)
            for msg in names.is_valid_port_num(port or 0):
                errs.append(fe.invalid(child(hpath, "port"), port or 0, msg))
        elif kind == "sleep":
            seconds = get_int(action, "seconds", hpath, errs)
            if seconds <= 0 or (grace is not None and seconds > grace):
                errs.append(
                    fe.invalid(
                        child(hpath, "seconds"),
                        seconds,
                        f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace or 0})",
                    )
                )
    if count == 0:
        errs.append(fe.required(path, "must specify a handler type"))


def _validate_probe(ctr: JSONDict, name: str, grace: int | None, path: str, errs: Errs) -> None:
    probe = opt_dict(ctr, name, path, errs)
    if probe is None:
        return
    ppath = child(path, name)
    _validate_handler(probe, grace, ppath, errs, probe=True)
    for f in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        nonnegative(opt_int(probe, f, ppath, errs), child(ppath, f), errs)
    probe_grace = opt_int(probe, "terminationGracePeriodSeconds", ppath, errs)
    if probe_grace is not None and probe_grace <= 0:
        errs.append(
            fe.invalid(child(ppath, "terminationGracePeriodSeconds"), probe_grace, "must be greater than 0")
        )
    if name in ("livenessProbe", "startupProbe"):
        success = opt_int(probe, "successThreshold", ppath, [])
        if success != 1:
            errs.append(fe.invalid(child(ppath, "successThreshold"), success or 0, "must be 1"))
    if name == "readinessProbe" and probe_grace is not None:
        errs.append(
            fe.invalid(
                child(ppath, "terminationGracePeriodSeconds"),
                probe_grace,
                "must not be set for readinessProbes",
            )
        )


def _validate_lifecycle(ctr: JSONDict, grace: int | None, path: str, errs: Errs) -> None:
    lifecycle = opt_dict(ctr, "lifecycle", path, errs)
    if lifecycle is None:
        return
    lpath = child(path, "lifecycle")
    for hook in ("postStart", "preStop"):
        handler = opt_dict(lifecycle, hook, lpath, errs)
        if handler is not None:
            _validate_handler(handler, grace, child(lpath, hook), errs, probe=False)


def _validate_seccomp(sc: JSONDict, path: str, errs: Errs) -> None:
    profile = opt_dict(sc, "seccompProfile", path, errs)
    if profile is None:
        return
    ppath = child(path, "seccompProfile")
    ptype = get_str(profile, "type", ppath, errs)
    if not ptype:
        errs.append(fe.required(child(ppath, "type"), "type is required when seccompProfile is set"))
    elif ptype not in SECCOMP_TYPES:
        errs.append(fe.not_supported(child(ppath, "type"), ptype, SECCOMP_TYPES))
    localhost = opt_str(profile, "localhostProfile", ppath, errs)
    if ptype == "Localhost":
        if localhost is None:
            errs.append(
                fe.required(child(ppath, "localhostProfile"), "must be set when seccomp type is Localhost")
            )
        else:
            _local_descending_path(localhost, child(ppath, "localhostProfile"), errs)
    elif localhost is not None:
        errs.append(
            fe.invalid(
                child(ppath, "localhostProfile"), profile, "can only be set when seccomp type is Localhost"
            )
        )


def _validate_container_security_context(ctr: JSONDict, path: str, errs: Errs) -> None:
    sc = opt_dict(ctr, "securityContext", path, errs)
    if sc is None:
        return
    spath = child(path, "securityContext")
    for f in ("runAsUser", "runAsGroup"):
        v = opt_int(sc, f, spath, errs)
        if v is not None:
            for msg in names.is_valid_user_id(v):
                errs.append(fe.invalid(child(spath, f), v, msg))
    proc_mount = opt_str(sc, "procMount", spath, errs)
    if proc_mount is not None and proc_mount not in PROC_MOUNT_TYPES:
        errs.append(fe.not_supported(child(spath, "procMount"), proc_mount, PROC_MOUNT_TYPES))
    _validate_seccomp(sc, spath, errs)
    if opt_bool(sc, "allowPrivilegeEscalation", spath, errs) is False:
        if opt_bool(sc, "privileged", spath, errs) is True:
            errs.append(
                fe.invalid(
                    spath, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
                )
            )
        caps = opt_dict(sc, "capabilities", spath, errs) or {}
        if "CAP_SYS_ADMIN" in get_str_list(caps, "add", child(spath, "capabilities"), errs):
            errs.append(
                fe.invalid(
                    spath,
                    sc,
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                )
            )


def _validate_container_common(ctr: JSONDict, vols: Mapping[str, JSONDict], path: str, errs: Errs) -> None:
    name = get_str(ctr, "name", path, errs)
    if not name:
        errs.append(fe.required(child(path, "name")))
    else:
        format_errors(name, child(path, "name"), names.is_dns1123_label, errs)
    if not get_str(ctr, "image", path, errs):
        errs.append(fe.required(child(path, "image")))
    _one_of(
        get_str(ctr, "terminationMessagePolicy", path, errs),
        TERMINATION_MESSAGE_POLICIES,
        child(path, "terminationMessagePolicy"),
        errs,
    )
    _validate_container_ports(ctr, path, errs)
    _validate_env(ctr, path, errs)
    _validate_env_from(ctr, path, errs)
    _validate_volume_mounts(ctr, vols, path, errs)
    _one_of(get_str(ctr, "imagePullPolicy", path, errs), PULL_POLICIES, child(path, "imagePullPolicy"), errs)
    validate_resource_requirements(get_dict(ctr, "resources", path, errs), child(path, "resources"), errs)
    _validate_container_security_context(ctr, path, errs)


def _check_host_port_conflicts(containers: list[tuple[int, str, JSONDict]], errs: Errs) -> None:
    seen: set[str] = set()
    for _, cpath, ctr in containers:
        for _, ppath, port in dict_items(ctr, "ports", cpath, []):
            host_port = as_int(port.get("hostPort"))
            if not host_port:
                continue
            proto = port.get("protocol") if isinstance(port.get("protocol"), str) else ""
            host_ip = port.get("hostIP") if isinstance(port.get("hostIP"), str) else ""
            entry = f"{proto}/{host_ip}/{host_port}"
            if entry in seen:
                errs.append(fe.duplicate(child(ppath, "hostPort"), entry))
            seen.add(entry)


def _validate_containers(
    spec: JSONDict, vols: Mapping[str, JSONDict], grace: int | None, path: str, errs: Errs
) -> set[str]:
    cpath_list = child(path, "containers")
    if spec.get("containers") is not None and not isinstance(spec.get("containers"), list):
        get_list(spec, "containers", path, errs)
        return set()
    containers = dict_items(spec, "containers", path, errs)
    if not containers:
        errs.append(fe.required(cpath_list))
        return set()
    all_names: set[str] = set()
    for _, cpath, ctr in containers:
        _validate_container_common(ctr, vols, cpath, errs)
        name = get_str(ctr, "name", cpath, [])
        if name in all_names:
            errs.append(fe.duplicate(child(cpath, "name"), name))
        all_names.add(name)
        _validate_lifecycle(ctr, grace, cpath, errs)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            _validate_probe(ctr, probe, grace, cpath, errs)
        if ctr.get("restartPolicy") is not None:
            errs.append(fe.forbidden(child(cpath, "restartPolicy"), "may not be set for non-init containers"))
    _check_host_port_conflicts(containers, errs)
    return all_names


def _validate_init_containers(
    spec: JSONDict, regular: set[str], vols: Mapping[str, JSONDict], grace: int | None, path: str, errs: Errs
) -> None:
    all_names = set(regular)
    for _, cpath, ctr in dict_items(spec, "initContainers", path, errs):
        _validate_container_common(ctr, vols, cpath, errs)
        restart = opt_str(ctr, "restartPolicy", cpath, errs)
        if restart is not None and restart != "Always":
            errs.append(fe.not_supported(child(cpath, "restartPolicy"), restart, ["Always"]))
        name = get_str(ctr, "name", cpath, [])
        if name in all_names:
            errs.append(fe.duplicate(child(cpath, "name"), name))
        elif name:
            all_names.add(name)
        _check_host_port_conflicts([(0, cpath, ctr)], errs)
        if restart == "Always":
            _validate_lifecycle(ctr, grace, cpath, errs)
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                _validate_probe(ctr, probe, grace, cpath, errs)
        else:
            for f in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(f) is not None:
                    errs.append(
                        fe.forbidden(
                            child(cpath, f), "may not be set for init containers without restartPolicy=Always"
                        )
                    )
        if ctr.get("resizePolicy"):
            errs.append(
                fe.invalid(
                    child(cpath, "resizePolicy"),
                    ctr.get("resizePolicy"),
                    "must not be set for init containers",
                )
            )


# ============================================================================================
# Scheduling: tolerations, taints, affinity, topology spread


def _validate_taint_effect(effect: str, allow_empty: bool, path: str, errs: Errs) -> None:
    if not effect:
        if not allow_empty:
            errs.append(fe.required(path))
        return
    if effect not in TAINT_EFFECTS:
        errs.append(fe.not_supported(path, effect, TAINT_EFFECTS))


def validate_tolerations(tolerations: list[tuple[int, str, JSONDict]], errs: Errs) -> None:
    for _, tpath, tol in tolerations:
        tkey = get_str(tol, "key", tpath, errs)
        if tkey:
            validate_label_name(tkey, child(tpath, "key"), errs)
        op = get_str(tol, "operator", tpath, errs)
        effect = get_str(tol, "effect", tpath, errs)
        value = get_str(tol, "value", tpath, errs)
        if not tkey and op != "Exists":
            errs.append(
                fe.invalid(
                    child(tpath, "operator"),
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if opt_int(tol, "tolerationSeconds", tpath, errs) is not None and effect != "NoExecute":
            errs.append(
                fe.invalid(
                    child(tpath, "effect"),
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if op in ("Equal", ""):
            msgs = validate_label_value(value)
            if msgs:
                errs.append(fe.invalid(child(tpath, "operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    fe.invalid(
                        child(tpath, "operator"), tol, "value must be empty when `operator` is 'Exists'"
                    )
                )
        else:
            errs.append(fe.not_supported(child(tpath, "operator"), op, TOLERATION_OPERATORS))
        _validate_taint_effect(effect, True, child(tpath, "effect"), errs)


def validate_taints(taints: list[tuple[int, str, JSONDict]], errs: Errs) -> None:
    seen: dict[str, set[str]] = {}
    for _, tpath, taint in taints:
        tkey = get_str(taint, "key", tpath, errs)
        validate_label_name(tkey, child(tpath, "key"), errs)
        value = get_str(taint, "value", tpath, errs)
        msgs = validate_label_value(value)
        if msgs:
            errs.append(fe.invalid(child(tpath, "value"), value, ";".join(msgs)))
        effect = get_str(taint, "effect", tpath, errs)
        _validate_taint_effect(effect, False, child(tpath, "effect"), errs)
        if tkey in seen.get(effect, set()):
            errs.append(
                FieldError(fe.DUPLICATE, tpath, "taints must be unique by key and effect pair", taint)
            )
            continue
        seen.setdefault(effect, set()).add(tkey)


def _validate_node_selector_term(term: JSONDict, path: str, errs: Errs) -> None:
    for _, rpath, req in dict_items(term, "matchExpressions", path, errs):
        op = get_str(req, "operator", rpath, errs)
        values = get_str_list(req, "values", rpath, errs)
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    fe.required(
                        child(rpath, "values"), "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    fe.forbidden(
                        child(rpath, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        elif op in ("Gt", "Lt"):
            if len(values) != 1:
                errs.append(
                    fe.required(
                        child(rpath, "values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    )
                )
        else:
            errs.append(fe.invalid(child(rpath, "operator"), op, "not a valid selector operator"))
        validate_label_name(get_str(req, "key", rpath, errs), child(rpath, "key"), errs)
    for _, rpath, req in dict_items(term, "matchFields", path, errs):
        op = get_str(req, "operator", rpath, errs)
        values = get_str_list(req, "values", rpath, errs)
        if op in ("In", "NotIn"):
            if len(values) != 1:
                errs.append(
                    fe.required(
                        child(rpath, "values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            errs.append(fe.invalid(child(rpath, "operator"), op, "not a valid selector operator"))
        fkey = get_str(req, "key", rpath, errs)
        if fkey != "metadata.name":
            errs.append(fe.invalid(child(rpath, "key"), fkey, "not a valid field selector key"))
        else:
            for i, v in enumerate(values):
                name_errors(v, index(child(rpath, "values"), i), names.name_is_dns_subdomain, errs)


def _validate_pod_affinity_term(term: JSONDict, path: str, errs: Errs) -> None:
    validate_label_selector(term.get("labelSelector"), child(path, "labelSelector"), errs)
    validate_label_selector(term.get("namespaceSelector"), child(path, "namespaceSelector"), errs)
    for ns in get_str_list(term, "namespaces", path, errs):
        name_errors(ns, child(path, "namespace"), names.validate_namespace_name, errs)
    for list_name in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = get_str_list(term, list_name, path, errs)
        if keys and term.get("labelSelector") is None:
            errs.append(
                fe.forbidden(child(path, list_name), "must not be specified when labelSelector is not set")
            )
            continue
        for i, k in enumerate(keys):
            validate_label_name(k, index(child(path, list_name), i), errs)
    topology_key = get_str(term, "topologyKey", path, errs)
    if not topology_key:
        errs.append(fe.required(child(path, "topologyKey"), "can not be empty"))
    validate_label_name(topology_key, child(path, "topologyKey"), errs)


def _validate_weighted(
    items: list[tuple[int, str, JSONDict]], inner: str, errs: Errs
) -> list[tuple[str, JSONDict]]:
    out: list[tuple[str, JSONDict]] = []
    for _, wpath, item in items:
        weight = get_int(item, "weight", wpath, errs)
        if weight <= 0 or weight > 100:
            errs.append(fe.invalid(child(wpath, "weight"), weight, "must be in the range 1-100"))
        term = opt_dict(item, inner, wpath, errs)
        out.append((child(wpath, inner), term or {}))
    return out


def validate_affinity(spec: JSONDict, path: str, errs: Errs) -> None:
    affinity = opt_dict(spec, "affinity", path, errs)
    if affinity is None:
        return
    apath = child(path, "affinity")
    node = opt_dict(affinity, "nodeAffinity", apath, errs)
    if node is not None:
        npath = child(apath, "nodeAffinity")
        required = opt_dict(node, "requiredDuringSchedulingIgnoredDuringExecution", npath, errs)
        if required is not None:
            rpath = child(npath, "requiredDuringSchedulingIgnoredDuringExecution")
            terms = dict_items(required, "nodeSelectorTerms", rpath, errs)
            if not terms:
                errs.append(
                    fe.required(
                        child(rpath, "nodeSelectorTerms"), "must have at least one node selector term"
                    )
                )
            for _, tpath, term in terms:
                _validate_node_selector_term(term, tpath, errs)
        preferred = dict_items(node, "preferredDuringSchedulingIgnoredDuringExecution", npath, errs)
        for tpath, term in _validate_weighted(preferred, "preference", errs):
            _validate_node_selector_term(term, tpath, errs)
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = opt_dict(affinity, kind, apath, errs)
        if pod is None:
            continue
        ppath = child(apath, kind)
        for _, tpath, term in dict_items(pod, "requiredDuringSchedulingIgnoredDuringExecution", ppath, errs):
            _validate_pod_affinity_term(term, tpath, errs)
        preferred = dict_items(pod, "preferredDuringSchedulingIgnoredDuringExecution", ppath, errs)
        for tpath, term in _validate_weighted(preferred, "podAffinityTerm", errs):
            _validate_pod_affinity_term(term, tpath, errs)


def _validate_topology_spread(spec: JSONDict, path: str, errs: Errs) -> None:
    constraints = dict_items(spec, "topologySpreadConstraints", path, errs)
    for i, cpath, c in constraints:
        max_skew = get_int(c, "maxSkew", cpath, errs)
        if max_skew <= 0:
            errs.append(fe.invalid(child(cpath, "maxSkew"), max_skew, NOT_POSITIVE))
        topology_key = get_str(c, "topologyKey", cpath, errs)
        if not topology_key:
            errs.append(fe.required(child(cpath, "topologyKey"), "can not be empty"))
        action = get_str(c, "whenUnsatisfiable", cpath, errs)
        if action not in WHEN_UNSATISFIABLE:
            errs.append(fe.not_supported(child(cpath, "whenUnsatisfiable"), action, WHEN_UNSATISFIABLE))
        for _, _p, other in constraints[i + 1 :]:
            if other.get("topologyKey") == topology_key and other.get("whenUnsatisfiable") == action:
                errs.append(
                    fe.duplicate(
                        child(cpath, "{topologyKey, whenUnsatisfiable}"), f"{{{topology_key}, {action}}}"
                    )
                )
                break
        min_domains = opt_int(c, "minDomains", cpath, errs)
        if min_domains is not None:
            if min_domains <= 0:
                errs.append(fe.invalid(child(cpath, "minDomains"), min_domains, NOT_POSITIVE))
            if action != "DoNotSchedule":
                errs.append(
                    fe.invalid(
                        child(cpath, "minDomains"),
                        min_domains,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}",
                    )
                )
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            value = opt_str(c, policy, cpath, errs)
            if value is not None and value not in NODE_INCLUSION_POLICIES:
                errs.append(fe.not_supported(child(cpath, policy), value, NODE_INCLUSION_POLICIES))
        validate_label_selector(c.get("labelSelector"), child(cpath, "labelSelector"), errs)


# ============================================================================================
# Pod spec


def _validate_pod_security_context(spec: JSONDict, path: str, errs: Errs) -> None:
    sc = opt_dict(spec, "securityContext", path, errs)
    if sc is None:
        return
    spath = child(path, "securityContext")
    for f in ("runAsUser", "runAsGroup", "fsGroup"):
        v = opt_int(sc, f, spath, errs)
        if v is not None:
            for msg in names.is_valid_user_id(v):
                errs.append(fe.invalid(child(spath, f), v, msg))
    for i, g in enumerate(get_list(sc, "supplementalGroups", spath, errs)):
        gid = as_int(g)
        if gid is None or names.is_valid_user_id(gid):
            errs.append(
                fe.invalid(
                    index(child(spath, "supplementalGroups"), i), g, names.inclusive_range_error(0, MAX_INT32)
                )
            )
    seen: set[str] = set()
    for _, sysctl_path, sysctl in dict_items(sc, "sysctls", spath, errs):
        sname = get_str(sysctl, "name", sysctl_path, errs)
        if not sname:
            errs.append(fe.required(child(sysctl_path, "name")))
        elif sname in seen:
            errs.append(fe.duplicate(child(sysctl_path, "name"), sname))
        seen.add(sname)
    policy = opt_str(sc, "fsGroupChangePolicy", spath, errs)
    if policy is not None and policy not in FS_GROUP_CHANGE_POLICIES:
        errs.append(fe.not_supported(child(spath, "fsGroupChangePolicy"), policy, FS_GROUP_CHANGE_POLICIES))
    _validate_seccomp(sc, spath, errs)
    share = opt_bool(spec, "shareProcessNamespace", path, errs)
    if share and opt_bool(spec, "hostPID", path, errs):
        errs.append(
            fe.invalid(
                child(spath, "shareProcessNamespace"),
                share,
                "ShareProcessNamespace and HostPID cannot both be enabled",
            )
        )


def _validate_dns(spec: JSONDict, dns_policy: str, path: str, errs: Errs) -> None:
    dns_config = opt_dict(spec, "dnsConfig", path, errs)
    cpath = child(path, "dnsConfig")
    if dns_policy == "None":
        if dns_config is None:
            errs.append(fe.required(cpath, "must provide `dnsConfig` when `dnsPolicy` is None"))
            return
        if not get_list(dns_config, "nameservers", cpath, []):
            errs.append(
                fe.required(
                    child(cpath, "nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            )
            return
    if dns_config is None:
        return
    nameservers = get_str_list(dns_config, "nameservers", cpath, errs)
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        errs.append(
            fe.invalid(
                child(cpath, "nameservers"),
                nameservers,
                f"must not have more than {MAX_DNS_NAMESERVERS} nameservers",
            )
        )
    for i, ns in enumerate(nameservers):
        _ip(ns, index(child(cpath, "nameservers"), i), errs)
    searches = get_str_list(dns_config, "searches", cpath, errs)
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        errs.append(
            fe.invalid(
                child(cpath, "searches"),
                searches,
                f"must not have more than {MAX_DNS_SEARCH_PATHS} search paths",
            )
        )
    if len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        errs.append(
            fe.invalid(
                child(cpath, "searches"),
                searches,
                f"must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list",
            )
        )
    for i, search in enumerate(searches):
        format_errors(
            search.removesuffix("."), index(child(cpath, "searches"), i), names.is_dns1123_subdomain, errs
        )
    for _, opath, option in dict_items(dns_config, "options", cpath, errs):
        if not get_str(option, "name", opath, errs):
            errs.append(fe.required(opath, "must not be empty"))


def validate_pod_spec(
    spec: JSONDict,
    path: str,
    errs: Errs,
    *,
    is_pod: bool,
    extra_volumes: Mapping[str, JSONDict] | None = None,
) -> None:
    """`ValidatePodSpec` plus the host-network rules; `is_pod` is false for embedded templates.

    `extra_volumes` are volumes the pods will get from elsewhere (a StatefulSet's
    volumeClaimTemplates), so volume mounts may refer to them.
    """
    grace = opt_int(spec, "terminationGracePeriodSeconds", path, errs)
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(fe.required(child(path, "terminationGracePeriodSeconds")))
    elif grace is not None and grace < 0:
        errs.append(fe.invalid(child(path, "terminationGracePeriodSeconds"), grace, IS_NEGATIVE))
    vols = validate_volumes(spec, path, errs)
    for vname, vsrc in (extra_volumes or {}).items():
        vols.setdefault(vname, vsrc)
    regular = _validate_containers(spec, vols, grace, path, errs)
    _validate_init_containers(spec, regular, vols, grace, path, errs)
    for _, cpath, ctr in dict_items(spec, "ephemeralContainers", path, errs):
        _validate_container_common(ctr, vols, cpath, errs)
    if opt_bool(spec, "hostNetwork", path, errs):
        for _, cpath, ctr in dict_items(spec, "containers", path, []):
            for _, ppath, port in dict_items(ctr, "ports", cpath, []):
                hp, cp = as_int(port.get("hostPort")) or 0, as_int(port.get("containerPort")) or 0
                if (is_pod or hp != 0) and hp != cp:
                    errs.append(
                        fe.invalid(
                            child(ppath, "hostPort"),
                            hp,
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    )
    _one_of(get_str(spec, "restartPolicy", path, errs), RESTART_POLICIES, child(path, "restartPolicy"), errs)
    dns_policy = get_str(spec, "dnsPolicy", path, errs)
    _one_of(dns_policy, DNS_POLICIES, child(path, "dnsPolicy"), errs)
    validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"), errs)
    _validate_pod_security_context(spec, path, errs)
    for _, ipath, secret in dict_items(spec, "imagePullSecrets", path, errs):
        if set(secret) - {"name"}:
            errs.append(fe.invalid(ipath, secret, "only name may be set"))
    validate_affinity(spec, path, errs)
    _validate_dns(spec, dns_policy, path, errs)
    for _, gpath, gate in dict_items(spec, "readinessGates", path, errs):
        format_errors(
            get_str(gate, "conditionType", gpath, errs),
            child(gpath, "conditionType"),
            names.is_qualified_name,
            errs,
        )
    seen_gates: set[str] = set()
    for _, gpath, gate in dict_items(spec, "schedulingGates", path, errs):
        gname = get_str(gate, "name", gpath, errs)
        format_errors(gname, gpath, names.is_qualified_name, errs)
        if gname in seen_gates:
            errs.append(fe.duplicate(gpath, gname))
        seen_gates.add(gname)
    _validate_topology_spread(spec, path, errs)
    for fname, fn in (
        ("serviceAccountName", names.name_is_dns_subdomain),
        ("nodeName", names.name_is_dns_subdomain),
        ("priorityClassName", names.name_is_dns_subdomain),
    ):
        value = get_str(spec, fname, path, errs)
        if value:
            name_errors(value, child(path, fname), fn, errs)
    runtime_class = opt_str(spec, "runtimeClassName", path, errs)
    if runtime_class is not None:
        name_errors(runtime_class, child(path, "runtimeClassName"), names.name_is_dns_subdomain, errs)
    deadline = opt_int(spec, "activeDeadlineSeconds", path, errs)
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.append(
            fe.invalid(
                child(path, "activeDeadlineSeconds"), deadline, names.inclusive_range_error(1, MAX_INT32)
            )
        )
    for fname in ("hostname", "subdomain"):
        value = get_str(spec, fname, path, errs)
        if value:
            format_errors(value, child(path, fname), names.is_dns1123_label, errs)
    validate_tolerations(dict_items(spec, "tolerations", path, errs), errs)
    for _, hpath, alias in dict_items(spec, "hostAliases", path, errs):
        _ip(get_str(alias, "ip", hpath, errs), child(hpath, "ip"), errs)
        for j, hostname in enumerate(get_str_list(alias, "hostnames", hpath, errs)):
            format_errors(hostname, index(child(hpath, "hostnames"), j), names.is_dns1123_subdomain, errs)
    preemption = opt_str(spec, "preemptionPolicy", path, errs)
    if preemption is not None:
        _one_of(preemption, PREEMPTION_POLICIES, child(path, "preemptionPolicy"), errs)
    overhead = opt_dict(spec, "overhead", path, errs)
    if overhead is not None:
        for rname, raw in overhead.items():
            q = parse_quantity(raw, key(child(path, "overhead"), str(rname)), errs)
            if q is not None:
                validate_quantity_value(str(rname), q, key(child(path, "overhead"), str(rname)), errs)
    os_spec = opt_dict(spec, "os", path, errs)
    if os_spec is not None:
        os_name = get_str(os_spec, "name", child(path, "os"), errs)
        if not os_name:
            errs.append(fe.required(child(child(path, "os"), "name"), "cannot be empty"))
        elif os_name not in OS_NAMES:
            errs.append(fe.not_supported(child(path, "os"), os_name, OS_NAMES))


def validate_pod_template_spec(
    template: Any, path: str, errs: Errs, *, extra_volumes: Mapping[str, JSONDict] | None = None
) -> JSONDict:
    """`ValidatePodTemplateSpec`: template labels/annotations and the pod spec (returns the template)."""
    tmpl = as_dict(template, path, errs)
    if tmpl is None:
        if template is None:
            errs.append(fe.required(path))
        return {}
    meta = get_dict(tmpl, "metadata", path, errs)
    mpath = child(path, "metadata")
    validate_labels(meta.get("labels"), child(mpath, "labels"), errs)
    validate_annotations(meta.get("annotations"), child(mpath, "annotations"), errs)
    _validate_pod_annotations(meta, get_dict(tmpl, "spec", path, []), child(mpath, "annotations"), errs)
    spec = get_dict(tmpl, "spec", path, errs)
    spath = child(path, "spec")
    validate_pod_spec(spec, spath, errs, is_pod=False, extra_volumes=extra_volumes)
    if spec.get("ephemeralContainers"):
        errs.append(
            fe.forbidden(
                child(spath, "ephemeralContainers"), "ephemeral containers not allowed in pod template"
            )
        )
    return tmpl


def template_labels(template: Any) -> dict[str, str]:
    tmpl = template if isinstance(template, dict) else {}
    meta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {str(k): v for k, v in labels.items() if isinstance(v, str)}


def template_spec(template: Any) -> JSONDict:
    tmpl = template if isinstance(template, dict) else {}
    spec = tmpl.get("spec")
    return spec if isinstance(spec, dict) else {}


# ============================================================================================
# Pod


def _annotations(meta: JSONDict) -> dict[str, Any]:
    value = meta.get("annotations")
    return value if isinstance(value, dict) else {}


def _validate_pod_annotations(meta: JSONDict, spec: JSONDict, path: str, errs: Errs) -> None:
    annotations = _annotations(meta)
    if MIRROR_POD_ANNOTATION in annotations and not spec.get("nodeName"):
        errs.append(
            fe.invalid(
                key(path, MIRROR_POD_ANNOTATION),
                annotations[MIRROR_POD_ANNOTATION],
                "must set spec.nodeName if mirror pod annotation is set",
            )
        )
    cost = annotations.get(POD_DELETION_COST_ANNOTATION)
    if cost is not None:
        try:
            ok = isinstance(cost, str) and cost.strip() == cost and -(2**31) <= int(cost, 10) <= MAX_INT32
        except ValueError:
            ok = False
        if not ok:
            errs.append(fe.invalid(key(path, POD_DELETION_COST_ANNOTATION), cost, "must be a 32bit integer"))


def _validate_image_whitespace(spec: JSONDict, path: str, errs: Errs) -> None:
    for list_name in ("containers", "initContainers"):
        for _, cpath, ctr in dict_items(spec, list_name, path, []):
            image = ctr.get("image")
            if isinstance(image, str) and image != image.strip():
                errs.append(
                    fe.invalid(child(cpath, "image"), image, "must not have leading or trailing whitespace")
                )


def _validate_pod_body(obj: JSONDict, errs: Errs) -> JSONDict:
    meta = get_dict(obj, "metadata", "", [])
    spec = get_dict(obj, "spec", "", errs)
    _validate_pod_annotations(meta, spec, "metadata.annotations", errs)
    validate_pod_spec(spec, "spec", errs, is_pod=True)
    _validate_image_whitespace(spec, "spec", errs)
    return spec


def validate_pod(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    spec = _validate_pod_body(obj, errs)
    if spec.get("ephemeralContainers"):
        errs.append(fe.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(
            fe.forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared")
        )
    return errs


def _diff_paths(a: Any, b: Any, path: str, out: list[str], limit: int = 20) -> None:
    if len(out) >= limit or quiet(a) == quiet(b):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff_paths(a.get(k), b.get(k), child(path, str(k)), out, limit)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff_paths(x, y, index(path, i), out, limit)
    else:
        out.append(
            f"{path}: {json.dumps(quiet(b), sort_keys=True)} -> {json.dumps(quiet(a), sort_keys=True)}"
        )


def spec_diff(new: Any, old: Any, path: str) -> str:
    """A short, readable list of the fields that differ (`path: old -> new`, one per line)."""
    out: list[str] = []
    _diff_paths(new, old, path, out)
    return "\n".join(out)


def _only_added_tolerations(new: list[Any], old: list[Any], path: str, errs: Errs) -> None:
    for old_tol in old:
        if not isinstance(old_tol, dict):
            continue
        found = False
        for new_tol in new:
            if not isinstance(new_tol, dict):
                continue
            clone = dict(old_tol)
            clone["tolerationSeconds"] = new_tol.get("tolerationSeconds")
            if quiet(clone) == quiet(new_tol):
                found = True
                break
        if not found:
            errs.append(
                fe.forbidden(path, "existing toleration can not be modified except its tolerationSeconds")
            )
            return


def validate_pod_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    new_meta = get_dict(new, "metadata", "", [])
    old_meta = get_dict(old, "metadata", "", [])
    new_ann, old_ann = _annotations(new_meta), _annotations(old_meta)
    if (
        MIRROR_POD_ANNOTATION in old_ann
        and new_ann.get(MIRROR_POD_ANNOTATION) != old_ann[MIRROR_POD_ANNOTATION]
    ):
        errs.append(
            fe.forbidden(
                key("metadata.annotations", MIRROR_POD_ANNOTATION),
                "may not remove or update mirror pod annotation",
            )
        )
    elif MIRROR_POD_ANNOTATION in new_ann and MIRROR_POD_ANNOTATION not in old_ann:
        errs.append(
            fe.forbidden(
                key("metadata.annotations", MIRROR_POD_ANNOTATION), "may not add mirror pod annotation"
            )
        )
    new_spec = _validate_pod_body(new, errs)
    old_spec = get_dict(old, "spec", "", [])

    for list_name in ("containers", "initContainers"):
        new_list = get_list(new_spec, list_name, "spec", [])
        old_list = get_list(old_spec, list_name, "spec", [])
        if len(new_list) != len(old_list):
            errs.append(
                fe.forbidden(child("spec", list_name), "pod updates may not add or remove containers")
            )
            return errs

    spath = "spec"
    new_deadline = as_int(new_spec.get("activeDeadlineSeconds"))
    old_deadline = as_int(old_spec.get("activeDeadlineSeconds"))
    if new_deadline is not None:
        if not 0 <= new_deadline <= MAX_INT32:
            errs.append(
                fe.invalid(
                    child(spath, "activeDeadlineSeconds"),
                    new_deadline,
                    names.inclusive_range_error(0, MAX_INT32),
                )
            )
            return errs
        if old_deadline is not None and old_deadline < new_deadline:
            errs.append(
                fe.invalid(
                    child(spath, "activeDeadlineSeconds"),
                    new_deadline,
                    "must be less than or equal to previous value",
                )
            )
            return errs
    elif old_deadline is not None:
        errs.append(
            fe.invalid(
                child(spath, "activeDeadlineSeconds"),
                None,
                "must not update from a positive integer to nil value",
            )
        )

    new_tols = get_list(new_spec, "tolerations", spath, [])
    old_tols = get_list(old_spec, "tolerations", spath, [])
    _only_added_tolerations(new_tols, old_tols, child(spath, "tolerations"), errs)
    old_gates = {
        render(g.get("name")) for g in get_list(old_spec, "schedulingGates", spath, []) if isinstance(g, dict)
    }
    for i, gate in enumerate(get_list(new_spec, "schedulingGates", spath, [])):
        if isinstance(gate, dict) and render(gate.get("name")) not in old_gates:
            errs.append(
                fe.forbidden(
                    child(index(child(spath, "schedulingGates"), i), "name"),
                    f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'",
                )
            )

    if semantic_equal(new_spec, old_spec):
        return errs
    munged = copy.deepcopy(new_spec)
    for list_name in ("containers", "initContainers"):
        old_list = get_list(old_spec, list_name, spath, [])
        for i, ctr in enumerate(get_list(munged, list_name, spath, [])):
            if isinstance(ctr, dict) and isinstance(old_list[i], dict):
                ctr["image"] = old_list[i].get("image")
    munged["activeDeadlineSeconds"] = old_spec.get("activeDeadlineSeconds")
    munged["tolerations"] = old_spec.get("tolerations")
    munged["schedulingGates"] = old_spec.get("schedulingGates")
    old_grace = as_int(old_spec.get("terminationGracePeriodSeconds"))
    new_grace = as_int(munged.get("terminationGracePeriodSeconds"))
    deleting = new_meta.get("deletionTimestamp") is not None
    if (old_grace is not None and old_grace < 0 and new_grace == 1) or deleting:
        munged["terminationGracePeriodSeconds"] = old_spec.get("terminationGracePeriodSeconds")
    if not semantic_equal(munged, old_spec):
        errs.append(
            fe.forbidden(
                spath,
                "pod updates may not change fields other than "
                + ",".join(UPDATABLE_POD_SPEC_FIELDS)
                + "\n"
                + spec_diff(munged, old_spec, spath),
            )
        )
    return errs


def _container_state_transitions(
    new_statuses: list[Any],
    old_statuses: list[Any],
    path: str,
    restart_policy: str,
    restartable: set[str],
    errs: Errs,
) -> None:
    if restart_policy == "Always":
        return
    for i, old_status in enumerate(old_statuses):
        if not isinstance(old_status, dict):
            continue
        state = old_status.get("state") if isinstance(old_status.get("state"), dict) else {}
        terminated = state.get("terminated") if isinstance(state, dict) else None
        if not isinstance(terminated, dict):
            continue
        if as_int(terminated.get("exitCode")) and restart_policy == "OnFailure":
            continue
        if old_status.get("name") in restartable:
            continue
        for new_status in new_statuses:
            if not isinstance(new_status, dict) or new_status.get("name") != old_status.get("name"):
                continue
            new_state = new_status.get("state") if isinstance(new_status.get("state"), dict) else {}
            if not isinstance(new_state, dict) or new_state.get("terminated") is None:
                errs.append(
                    fe.forbidden(
                        child(index(path, i), "state"), "may not be transitioned to non-terminated state"
                    )
                )


def _validate_ip_list(status: JSONDict, name: str, path: str, errs: Errs) -> list[str]:
    ips: list[str] = []
    lpath = child(path, name)
    for _, ipath, entry in dict_items(status, name, path, errs):
        ip = get_str(entry, "ip", ipath, errs)
        _ip(ip, ipath, errs)
        ips.append(ip)
    if len(ips) > 1:
        families = [names.is_ipv6(ip) for ip in ips]
        if len(ips) > 2 or families[0] == families[1]:
            errs.append(
                fe.invalid(lpath, status.get(name), "may specify no more than one IP for each IP family")
            )
        seen: set[str] = set()
        for i, ip in enumerate(ips):
            if ip in seen:
                errs.append(fe.duplicate(index(lpath, i), {"ip": ip}))
            seen.add(ip)
    return ips


def validate_pod_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    new_spec = get_dict(new, "spec", "", [])
    old_spec = get_dict(old, "spec", "", [])
    status = get_dict(new, "status", "", errs)
    old_status = get_dict(old, "status", "", [])
    for i, cpath, cond in dict_items(status, "conditions", "status", errs):
        ctype = get_str(cond, "type", cpath, errs)
        if ctype not in (
            "PodScheduled",
            "Ready",
            "Initialized",
            "ContainersReady",
            "PodReadyToStartContainers",
        ):
            format_errors(ctype, child(index("status.conditions", i), "type"), names.is_qualified_name, errs)
    if get_str(new_spec, "nodeName", "spec", []) != get_str(old_spec, "nodeName", "spec", []):
        errs.append(fe.forbidden("status.nodeName", "may not be changed directly"))
    nominated = get_str(status, "nominatedNodeName", "status", errs)
    if nominated and nominated != old_status.get("nominatedNodeName"):
        name_errors(nominated, "status.nominatedNodeName", names.name_is_dns_subdomain, errs)
    phase = opt_str(status, "phase", "status", errs)
    if phase is not None and phase not in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        errs.append(
            fe.not_supported("status.phase", phase, ("Failed", "Pending", "Running", "Succeeded", "Unknown"))
        )
    restart_policy = get_str(old_spec, "restartPolicy", "spec", [])
    restartable: set[str] = {
        str(c.get("name"))
        for c in get_list(old_spec, "initContainers", "spec", [])
        if isinstance(c, dict) and c.get("restartPolicy") == "Always"
    }
    for list_name, policy, skip in (
        ("containerStatuses", restart_policy, set()),
        ("initContainerStatuses", restart_policy, restartable),
        ("ephemeralContainerStatuses", "Never", set()),
    ):
        _container_state_transitions(
            get_list(status, list_name, "status", errs),
            get_list(old_status, list_name, "status", []),
            child("status", list_name),
            policy,
            skip,
            errs,
        )
    _validate_ip_list(status, "podIPs", "status", errs)
    host_ips = _validate_ip_list(status, "hostIPs", "status", errs)
    if host_ips and status.get("hostIP") != host_ips[0]:
        errs.append(fe.invalid("status.hostIPs[0].ip", host_ips[0], "must be equal to `hostIP`"))
    for name in ("podIP", "hostIP"):
        value = get_str(status, name, "status", errs)
        if value:
            _ip(value, child("status", name), errs)
    return errs


# ============================================================================================
# Binding


def validate_binding(obj: JSONDict) -> Errs:
    errs: Errs = []
    target = get_dict(obj, "target", "", errs)
    kind = get_str(target, "kind", "target", errs)
    if kind and kind != "Node":
        errs.append(fe.not_supported("target.kind", kind, ["Node", "<empty>"]))
    name = get_str(target, "name", "target", errs)
    if not name:
        errs.append(fe.required("target.name"))
    else:
        name_errors(name, "target.name", names.name_is_dns_subdomain, errs)
    return errs


# ============================================================================================
# Node


def _validate_node_resources(status: JSONDict, errs: Errs) -> None:
    for list_name in ("capacity", "allocatable"):
        resources = opt_dict(status, list_name, "status", errs) or {}
        for rname, raw in resources.items():
            rpath = child(child("status", list_name), str(rname))
            q = parse_quantity(raw, rpath, errs)
            if q is not None:
                validate_quantity_value(str(rname), q, rpath, errs)


def _validate_node_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    validate_taints(dict_items(spec, "taints", "spec", errs), errs)
    cidrs = get_str_list(spec, "podCIDRs", "spec", errs)
    for i, cidr in enumerate(cidrs):
        format_errors(cidr, index("spec.podCIDRs", i), names.is_valid_cidr, errs)
    if len(cidrs) > 1:
        families = [names.is_ipv6(c.split("/")[0]) for c in cidrs]
        if len(cidrs) > 2 or families[0] == families[1]:
            errs.append(
                fe.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family")
            )
        seen: set[str] = set()
        for i, cidr in enumerate(cidrs):
            if cidr in seen:
                errs.append(fe.duplicate(index("spec.podCIDRs", i), cidr))
            seen.add(cidr)
    pod_cidr = get_str(spec, "podCIDR", "spec", errs)
    if pod_cidr and cidrs and cidrs[0] != pod_cidr:
        errs.append(fe.invalid("spec.podCIDRs", cidrs, "first value must match `podCIDR`"))
    _validate_node_resources(get_dict(obj, "status", "", errs), errs)


def validate_node(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=False)
    _validate_node_spec(obj, errs)
    return errs


def validate_node_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _validate_node_spec(new, errs)
    new_spec = get_dict(new, "spec", "", [])
    old_spec = get_dict(old, "spec", "", [])
    old_cidrs = get_str_list(old_spec, "podCIDRs", "spec", [])
    new_cidrs = get_str_list(new_spec, "podCIDRs", "spec", [])
    if old_cidrs and old_cidrs != new_cidrs:
        errs.append(
            fe.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
        )
    old_provider = get_str(old_spec, "providerID", "spec", [])
    if old_provider and old_provider != get_str(new_spec, "providerID", "spec", []):
        errs.append(
            fe.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')
        )
    if get_str(new_spec, "externalID", "spec", []) != get_str(old_spec, "externalID", "spec", []):
        errs.append(fe.forbidden("spec.externalID", "may not be updated"))
    seen: list[Any] = []
    for i, _ap, address in dict_items(get_dict(new, "status", "", []), "addresses", "status", errs):
        norm = quiet(address)
        if norm in seen:
            errs.append(fe.duplicate(index("status.addresses", i), address))
        seen.append(norm)
    return errs


# ============================================================================================
# Namespace


def validate_namespace(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_label, namespaced=False)
    spec = get_dict(obj, "spec", "", errs)
    for i, fin in enumerate(get_str_list(spec, "finalizers", "spec", errs)):
        validate_finalizer_name(fin, index("spec.finalizers", i), errs)
    return errs


def validate_namespace_update(new: JSONDict, old: JSONDict) -> Errs:
    return validate_object_meta_update(new, old)


def validate_namespace_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    meta = get_dict(new, "metadata", "", [])
    phase = get_str(get_dict(new, "status", "", errs), "phase", "status", errs)
    if meta.get("deletionTimestamp") is None:
        if phase != "Active":
            errs.append(
                fe.invalid("status.phase", phase, "may only be 'Active' if `deletionTimestamp` is empty")
            )
    elif phase != "Terminating":
        errs.append(
            fe.invalid("status.phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")
        )
    return errs


# ============================================================================================
# Service


def _primary_cluster_ips(spec: JSONDict) -> list[str]:
    ips = spec.get("clusterIPs")
    if isinstance(ips, list):
        return [ip for ip in ips if isinstance(ip, str)]
    return []


def _is_headless(spec: JSONDict) -> bool:
    ips = _primary_cluster_ips(spec)
    if ips:
        return len(ips) == 1 and ips[0] == "None"
    return spec.get("clusterIP") == "None"


def _externally_accessible(spec: JSONDict) -> bool:
    stype = spec.get("type")
    return stype in ("LoadBalancer", "NodePort") or (stype == "ClusterIP" and bool(spec.get("externalIPs")))


def _validate_cluster_ips(spec: JSONDict, errs: Errs) -> None:
    cluster_ip = get_str(spec, "clusterIP", "spec", errs)
    cluster_ips = get_str_list(spec, "clusterIPs", "spec", errs)
    if cluster_ip:
        if not cluster_ips:
            errs.append(fe.required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errs.append(fe.invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    elif cluster_ips:
        errs.append(
            fe.invalid("spec.clusterIPs", cluster_ips, "must be empty when `clusterIP` is not specified")
        )
    families = get_str_list(spec, "ipFamilies", "spec", errs)
    seen: set[str] = set()
    for i, fam in enumerate(families):
        if fam not in IP_FAMILIES:
            errs.append(fe.not_supported(index("spec.ipFamilies", i), fam, IP_FAMILIES))
        if fam in seen:
            errs.append(fe.duplicate(index("spec.ipFamilies", i), fam))
        seen.add(fam)
    policy = opt_str(spec, "ipFamilyPolicy", "spec", errs)
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errs.append(fe.not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
    invalid_ips = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                invalid_ips = True
                errs.append(
                    fe.invalid("spec.clusterIPs", cluster_ips, "'None' must be the first and only value")
                )
            continue
        if not _ip(ip, index("spec.clusterIPs", i), errs):
            invalid_ips = True
    if len(cluster_ips) > 2:
        errs.append(fe.invalid("spec.clusterIPs", cluster_ips, "may only hold up to 2 values"))
    if invalid_ips:
        return
    if len(cluster_ips) == 2 and names.is_ipv6(cluster_ips[0]) == names.is_ipv6(cluster_ips[1]):
        errs.append(
            fe.invalid("spec.clusterIPs", cluster_ips, "may specify no more than one IP for each IP family")
        )
    if not _is_headless(spec):
        for i, ip in enumerate(cluster_ips[: len(families)]):
            if families[i] == "IPv4" and names.is_ipv6(ip):
                errs.append(
                    fe.invalid(
                        index("spec.clusterIPs", i),
                        ip,
                        f"expected an IPv4 value as indicated by `ipFamilies[{i}]`",
                    )
                )
            if families[i] == "IPv6" and not names.is_ipv6(ip):
                errs.append(
                    fe.invalid(
                        index("spec.clusterIPs", i),
                        ip,
                        f"expected an IPv6 value as indicated by `ipFamilies[{i}]`",
                    )
                )


def _validate_service_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    stype = get_str(spec, "type", "spec", errs)
    ports = dict_items(spec, "ports", "spec", errs)
    headless = _is_headless(spec)
    if not ports and not headless and stype != "ExternalName":
        errs.append(fe.required("spec.ports"))
    if stype == "LoadBalancer":
        for _, ppath, port in ports:
            if as_int(port.get("port")) == 10250:
                errs.append(
                    fe.invalid(
                        ppath, 10250, "may not expose port 10250 externally since it is used by kubelet"
                    )
                )
        if headless:
            errs.append(
                fe.invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for LoadBalancer services")
            )
    elif stype == "NodePort" and headless:
        errs.append(
            fe.invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services")
        )
    elif stype == "ExternalName":
        if spec.get("clusterIPs") or spec.get("clusterIP"):
            errs.append(fe.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(fe.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(fe.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = get_str(spec, "externalName", "spec", errs).removesuffix(".")
        if cname:
            format_errors(cname, "spec.externalName", names.is_dns1123_subdomain, errs)
        else:
            errs.append(fe.required("spec.externalName"))
    port_names: set[str] = set()
    for _, ppath, port in ports:
        pname = get_str(port, "name", ppath, errs)
        if len(ports) > 1 and not pname:
            errs.append(fe.required(child(ppath, "name")))
        elif pname:
            format_errors(pname, child(ppath, "name"), names.is_dns1123_label, errs)
            if pname in port_names:
                errs.append(fe.duplicate(child(ppath, "name"), pname))
            port_names.add(pname)
        port_num = get_int(port, "port", ppath, errs)
        for msg in names.is_valid_port_num(port_num):
            errs.append(fe.invalid(child(ppath, "port"), port_num, msg))
        _one_of(get_str(port, "protocol", ppath, errs), SUPPORTED_PROTOCOLS, child(ppath, "protocol"), errs)
        validate_port_num_or_name(port.get("targetPort"), child(ppath, "targetPort"), errs)
        app_protocol = opt_str(port, "appProtocol", ppath, errs)
        if app_protocol is not None:
            format_errors(app_protocol, child(ppath, "appProtocol"), names.is_qualified_name, errs)
        node_port = opt_int(port, "nodePort", ppath, errs)
        if node_port:
            for msg in names.is_valid_port_num(node_port):
                errs.append(fe.invalid(child(ppath, "nodePort"), node_port, msg))
            if stype == "ClusterIP":
                errs.append(
                    fe.forbidden(child(ppath, "nodePort"), "may not be used when `type` is 'ClusterIP'")
                )
    if spec.get("selector") is not None:
        validate_labels(spec.get("selector"), "spec.selector", errs)
    affinity = get_str(spec, "sessionAffinity", "spec", errs)
    _one_of(affinity, SESSION_AFFINITIES, "spec.sessionAffinity", errs)
    config = opt_dict(spec, "sessionAffinityConfig", "spec", errs)
    if affinity == "ClientIP":
        cpath = "spec.sessionAffinityConfig"
        client_ip = opt_dict(config, "clientIP", cpath, errs) if config is not None else None
        if config is None:
            errs.append(fe.required(cpath, "when session affinity type is ClientIP"))
        elif client_ip is None:
            errs.append(fe.required(child(cpath, "clientIP"), "when session affinity type is ClientIP"))
        else:
            timeout = opt_int(client_ip, "timeoutSeconds", child(cpath, "clientIP"), errs)
            tpath = child(cpath, "clientIP.timeoutSeconds")
            if timeout is None:
                errs.append(fe.required(tpath, "when session affinity type is ClientIP"))
            elif timeout <= 0 or timeout > MAX_CLIENT_IP_AFFINITY_SECONDS:
                errs.append(
                    fe.invalid(
                        tpath,
                        timeout,
                        f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}",
                    )
                )
    elif affinity == "None" and config is not None:
        errs.append(
            fe.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
        )
    if stype != "ExternalName":
        _validate_cluster_ips(spec, errs)
    for i, ip in enumerate(get_str_list(spec, "externalIPs", "spec", errs)):
        ipath = index("spec.externalIPs", i)
        if _ip(ip, ipath, errs):
            _non_special_ip(ip, ipath, errs, allow_loopback=True)
    _one_of(stype, SERVICE_TYPES, "spec.type", errs)
    seen_node_ports: set[str] = set()
    seen_ports: set[str] = set()
    for _, ppath, port in ports:
        node_port = as_int(port.get("nodePort")) or 0
        if node_port:
            k = render([port.get("protocol"), node_port])
            if k in seen_node_ports:
                errs.append(fe.duplicate(child(ppath, "nodePort"), node_port))
            seen_node_ports.add(k)
        pk = render([port.get("protocol"), port.get("port")])
        if pk in seen_ports:
            errs.append(fe.duplicate(ppath, {"port": port.get("port"), "protocol": port.get("protocol")}))
        seen_ports.add(pk)
    ranges = get_str_list(spec, "loadBalancerSourceRanges", "spec", errs)
    if ranges:
        if stype != "LoadBalancer":
            errs.append(
                fe.forbidden(
                    "spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"
                )
            )
        for i, cidr in enumerate(ranges):
            format_errors(cidr.strip(), index("spec.loadBalancerSourceRanges", i), names.is_valid_cidr, errs)
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(
            fe.forbidden(
                "spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"
            )
        )
    lb_class = opt_str(spec, "loadBalancerClass", "spec", errs)
    if lb_class is not None:
        if stype == "LoadBalancer":
            format_errors(lb_class, "spec.loadBalancerClass", names.is_qualified_name, errs)
        else:
            errs.append(
                fe.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
            )
    etp = get_str(spec, "externalTrafficPolicy", "spec", errs)
    if not _externally_accessible(spec):
        if etp:
            errs.append(
                fe.invalid(
                    "spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"
                )
            )
    else:
        _one_of(etp, TRAFFIC_POLICIES, "spec.externalTrafficPolicy", errs)
    health_port = opt_int(spec, "healthCheckNodePort", "spec", errs)
    if health_port:
        if not (stype == "LoadBalancer" and etp == "Local"):
            errs.append(
                fe.invalid(
                    "spec.healthCheckNodePort",
                    health_port,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
        else:
            for msg in names.is_valid_port_num(health_port):
                errs.append(fe.invalid("spec.healthCheckNodePort", health_port, msg))
    itp = opt_str(spec, "internalTrafficPolicy", "spec", errs)
    if itp is None:
        if stype in ("ClusterIP", "NodePort", "LoadBalancer"):
            errs.append(fe.required("spec.internalTrafficPolicy"))
    elif itp not in TRAFFIC_POLICIES:
        errs.append(fe.not_supported("spec.internalTrafficPolicy", itp, TRAFFIC_POLICIES))
    distribution = opt_str(spec, "trafficDistribution", "spec", errs)
    if distribution is not None and distribution not in ("PreferClose", "PreferSameZone", "PreferSameNode"):
        errs.append(
            fe.not_supported(
                "spec.trafficDistribution", distribution, ["PreferClose", "PreferSameNode", "PreferSameZone"]
            )
        )


def validate_service(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns1035_label, namespaced=True)
    _validate_service_spec(obj, errs)
    return errs


def validate_service_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    new_spec = get_dict(new, "spec", "", [])
    old_spec = get_dict(old, "spec", "", [])
    if "ExternalName" not in (new_spec.get("type"), old_spec.get("type")) and not (
        _is_headless(new_spec) and _is_headless(old_spec)
    ):
        old_ips = _primary_cluster_ips(old_spec) or (
            [old_spec["clusterIP"]]
            if isinstance(old_spec.get("clusterIP"), str) and old_spec.get("clusterIP")
            else []
        )
        new_ips = _primary_cluster_ips(new_spec) or (
            [new_spec["clusterIP"]]
            if isinstance(new_spec.get("clusterIP"), str) and new_spec.get("clusterIP")
            else []
        )
        if old_ips and new_ips and old_ips[0] != new_ips[0]:
            errs.append(fe.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        elif old_ips and not new_ips and (new_spec.get("clusterIP") or new_spec.get("clusterIPs")):
            errs.append(fe.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
        if len(old_ips) == 2 and len(new_ips) == 2 and old_ips[1] != new_ips[1]:
            errs.append(fe.invalid("spec.clusterIPs[1]", new_ips, "may not change once set"))
    both_lb = new_spec.get("type") == "LoadBalancer" and old_spec.get("type") == "LoadBalancer"
    if both_lb and new_spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass"):
        errs.append(
            fe.invalid("spec.loadBalancerClass", new_spec.get("loadBalancerClass"), "may not change once set")
        )
    _validate_service_spec(new, errs)
    return errs


def validate_service_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    spec = get_dict(new, "spec", "", [])
    lb = get_dict(get_dict(new, "status", "", errs), "loadBalancer", "status", errs)
    ingress = dict_items(lb, "ingress", "status.loadBalancer", errs)
    if ingress and spec.get("type") != "LoadBalancer":
        errs.append(
            fe.forbidden("status.loadBalancer.ingress", "may only be used when `spec.type` is 'LoadBalancer'")
        )
        return errs
    for _, ipath, entry in ingress:
        ip = get_str(entry, "ip", ipath, errs)
        if ip:
            _ip(ip, child(ipath, "ip"), errs)
        mode = opt_str(entry, "ipMode", ipath, errs)
        if mode is not None:
            if not ip:
                errs.append(fe.forbidden(child(ipath, "ipMode"), "may not be specified when `ip` is not set"))
            elif mode not in ("Proxy", "VIP"):
                errs.append(fe.not_supported(child(ipath, "ipMode"), mode, ["Proxy", "VIP"]))
        hostname = get_str(entry, "hostname", ipath, errs)
        if hostname:
            format_errors(hostname, child(ipath, "hostname"), names.is_dns1123_subdomain, errs)
            if names.parse_ip(hostname) is not None:
                errs.append(
                    fe.invalid(child(ipath, "hostname"), hostname, "must be a DNS name, not an IP address")
                )
    return errs


# ============================================================================================
# Endpoints


def validate_endpoints(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    for _, spath, subset in dict_items(obj, "subsets", "", errs):
        addresses = dict_items(subset, "addresses", spath, errs)
        not_ready = dict_items(subset, "notReadyAddresses", spath, errs)
        if not addresses and not not_ready:
            errs.append(fe.required(spath, "must specify `addresses` or `notReadyAddresses`"))
        for _, apath, address in addresses + not_ready:
            ip = get_str(address, "ip", apath, errs)
            if _ip(ip, child(apath, "ip"), errs):
                _non_special_ip(ip, child(apath, "ip"), errs, allow_loopback=True)
            hostname = get_str(address, "hostname", apath, errs)
            if hostname:
                format_errors(hostname, child(apath, "hostname"), names.is_dns1123_label, errs)
            node_name = opt_str(address, "nodeName", apath, errs)
            if node_name is not None:
                name_errors(node_name, child(apath, "nodeName"), names.name_is_dns_subdomain, errs)
        ports = dict_items(subset, "ports", spath, errs)
        for _, ppath, port in ports:
            pname = get_str(port, "name", ppath, errs)
            if len(ports) > 1 and not pname:
                errs.append(fe.required(child(ppath, "name")))
            elif pname:
                format_errors(pname, child(ppath, "name"), names.is_dns1123_label, errs)
            port_num = get_int(port, "port", ppath, errs)
            for msg in names.is_valid_port_num(port_num):
                errs.append(fe.invalid(child(ppath, "port"), port_num, msg))
            _one_of(
                get_str(port, "protocol", ppath, errs), SUPPORTED_PROTOCOLS, child(ppath, "protocol"), errs
            )
            app_protocol = opt_str(port, "appProtocol", ppath, errs)
            if app_protocol is not None:
                format_errors(app_protocol, child(ppath, "appProtocol"), names.is_qualified_name, errs)
    return errs


def validate_endpoints_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    errs.extend(e for e in validate_endpoints(new) if not e.field.startswith("metadata."))
    return errs


# ============================================================================================
# ConfigMap and Secret


def validate_config_map(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    errs.extend(_config_map_body(obj))
    return errs


def _config_map_body(obj: JSONDict) -> Errs:
    errs: Errs = []
    total = 0
    data = opt_dict(obj, "data", "", errs) or {}
    binary = opt_dict(obj, "binaryData", "", errs) or {}
    for k, v in data.items():
        kpath = key("data", str(k))
        format_errors(str(k), kpath, names.is_config_map_key, errs)
        if k in binary:
            errs.append(fe.invalid(kpath, k, "duplicate of key present in binaryData"))
        if isinstance(v, str):
            total += len(v.encode())
        else:
            errs.append(fe.type_invalid(kpath, v, "expected a string"))
    for k, v in binary.items():
        format_errors(str(k), key("binaryData", str(k)), names.is_config_map_key, errs)
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(FieldError(fe.TOO_LONG, "", f"must have at most {MAX_SECRET_SIZE} bytes"))
    opt_bool(obj, "immutable", "", errs)
    return errs


def _decoded_len(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)


def _immutable_data(new: JSONDict, old: JSONDict, fields: tuple[str, ...], errs: Errs) -> None:
    if old.get("immutable") is not True:
        return
    if new.get("immutable") is not True:
        errs.append(fe.forbidden("immutable", "field is immutable when `immutable` is set"))
    for f in fields:
        if not semantic_equal(new.get(f), old.get(f)):
            errs.append(fe.forbidden(f, "field is immutable when `immutable` is set"))


def validate_config_map_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _immutable_data(new, old, ("data", "binaryData"), errs)
    errs.extend(_config_map_body(new))
    return errs


SECRET_TYPE_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _secret_body(obj: JSONDict) -> Errs:
    errs: Errs = []
    data = opt_dict(obj, "data", "", errs) or {}
    total = 0
    for k, v in data.items():
        format_errors(str(k), key("data", str(k)), names.is_config_map_key, errs)
        total += _decoded_len(v)
    string_data = opt_dict(obj, "stringData", "", errs) or {}
    for k, v in string_data.items():
        format_errors(str(k), key("stringData", str(k)), names.is_config_map_key, errs)
        if isinstance(v, str):
            total += len(v.encode())
    if total > MAX_SECRET_SIZE:
        errs.append(FieldError(fe.TOO_LONG, "data", f"must have at most {MAX_SECRET_SIZE} bytes"))
    stype = get_str(obj, "type", "", errs)
    present = set(data) | set(string_data)
    if stype == "kubernetes.io/service-account-token":
        meta = get_dict(obj, "metadata", "", [])
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        if not (annotations or {}).get("kubernetes.io/service-account.name"):
            errs.append(fe.required(key("metadata.annotations", "kubernetes.io/service-account.name")))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in present and "password" not in present:
            errs.append(fe.required(key("data", "username")))
            errs.append(fe.required(key("data", "password")))
    else:
        for required_key in SECRET_TYPE_REQUIRED_KEYS.get(stype, ()):
            if required_key not in present:
                errs.append(fe.required(key("data", required_key)))
        if stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
            dkey = SECRET_TYPE_REQUIRED_KEYS[stype][0]
            raw = data.get(dkey)
            if isinstance(raw, str):
                try:
                    decoded = json.loads(base64.b64decode(raw, validate=True))
                    if not isinstance(decoded, dict):
                        raise ValueError("expected a JSON object")
                except (ValueError, binascii.Error) as exc:
                    errs.append(fe.invalid(key("data", dkey), "<secret contents redacted>", str(exc)))
    opt_bool(obj, "immutable", "", errs)
    return errs


def validate_secret(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    errs.extend(_secret_body(obj))
    return errs


def validate_secret_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    validate_immutable(new.get("type"), old.get("type"), "type", errs)
    _immutable_data(new, old, ("data",), errs)
    errs.extend(_secret_body(new))
    return errs


# ============================================================================================
# Event


REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def _event_body(obj: JSONDict) -> Errs:
    errs: Errs = []
    meta = get_dict(obj, "metadata", "", [])
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    involved = opt_dict(obj, "involvedObject", "", errs)
    if involved is None:
        errs.append(fe.required("involvedObject"))
        involved = {}
    involved_ns = get_str(involved, "namespace", "involvedObject", errs)
    if obj.get("eventTime") is None:
        mismatch = (involved_ns and namespace != involved_ns) or (not involved_ns and namespace != "default")
        if namespace and mismatch:
            errs.append(fe.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        if namespace and not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(fe.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        controller = get_str(obj, "reportingComponent", "", errs)
        if not controller:
            errs.append(fe.required("reportingComponent"))
        format_errors(controller, "reportingComponent", names.is_qualified_name, errs)
        for fname, limit in (
            ("reportingInstance", REPORTING_INSTANCE_LIMIT),
            ("action", ACTION_LIMIT),
            ("reason", REASON_LIMIT),
        ):
            value = get_str(obj, fname, "", errs)
            if not value:
                errs.append(fe.required(fname))
            if len(value) > limit:
                errs.append(fe.invalid(fname, "", f"can have at most {limit} characters"))
        if len(get_str(obj, "message", "", errs)) > NOTE_LIMIT:
            errs.append(fe.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    event_type = opt_str(obj, "type", "", errs)
    if event_type:
        _one_of(event_type, ("Normal", "Warning"), "type", errs)
    count = opt_int(obj, "count", "", errs)
    nonnegative(count, "count", errs)
    series = opt_dict(obj, "series", "", errs)
    if series is not None:
        scount = get_int(series, "count", "series", errs)
        if scount < 2:
            errs.append(fe.invalid("series.count", scount, "should be at least 2"))
    return errs


def validate_event(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    errs.extend(_event_body(obj))
    return errs


def validate_event_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    errs.extend(_event_body(new))
    return errs


# ============================================================================================
# ReplicationController


def _validate_rc_spec(obj: JSONDict, errs: Errs) -> None:
    spec = get_dict(obj, "spec", "", errs)
    nonnegative(opt_int(spec, "minReadySeconds", "spec", errs), "spec.minReadySeconds", errs)
    selector = get_str_map(spec, "selector", "spec", errs)
    if not selector:
        errs.append(fe.required("spec.selector"))
    nonnegative(opt_int(spec, "replicas", "spec", errs), "spec.replicas", errs)
    validate_labels(selector, "spec.selector", errs)
    template = spec.get("template")
    if template is None:
        errs.append(fe.required("spec.template"))
        return
    labels = template_labels(template)
    if selector and not all(labels.get(k) == v for k, v in selector.items()):
        errs.append(
            fe.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    validate_pod_template_spec(template, "spec.template", errs)
    tspec = template_spec(template)
    restart = tspec.get("restartPolicy")
    if isinstance(restart, str) and restart and restart != "Always":
        errs.append(fe.not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            fe.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in ReplicationController is not Supported",
            )
        )


def validate_replication_controller(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    _validate_rc_spec(obj, errs)
    return errs


def validate_replication_controller_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    _validate_rc_spec(new, errs)
    return errs


def validate_replica_counts(
    status: JSONDict, errs: Errs, *, counts: tuple[str, ...], bounded: tuple[str, ...]
) -> None:
    """Non-negative counters; each of `bounded` may not exceed status.replicas; available <= ready."""
    values: dict[str, int] = {}
    for name in counts:
        v = opt_int(status, name, "status", errs)
        nonnegative(v, child("status", name), errs)
        values[name] = v or 0
    replicas = values.get("replicas", 0)
    for name in bounded if replicas >= 0 else ():
        if values.get(name, 0) > replicas:
            errs.append(
                fe.invalid(child("status", name), values[name], "cannot be greater than status.replicas")
            )
    if (
        "availableReplicas" in values
        and "readyReplicas" in values
        and values["availableReplicas"] > values["readyReplicas"]
    ):
        errs.append(
            fe.invalid(
                "status.availableReplicas",
                values["availableReplicas"],
                "cannot be greater than readyReplicas",
            )
        )


def validate_replication_controller_status_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    status = get_dict(new, "status", "", errs)
    validate_replica_counts(
        status,
        errs,
        counts=(
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ),
        bounded=("fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
    )
    return errs


# ============================================================================================
# PersistentVolumeClaim


def validate_pvc_spec(spec: JSONDict, path: str, errs: Errs) -> None:
    modes = get_str_list(spec, "accessModes", path, errs)
    if not modes:
        errs.append(fe.required(child(path, "accessModes"), "at least 1 access mode is required"))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(fe.not_supported(child(path, "accessModes"), mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(
            fe.forbidden(child(path, "accessModes"), "may not use ReadWriteOncePod with other access modes")
        )
    validate_label_selector(spec.get("selector"), child(path, "selector"), errs)
    resources = get_dict(spec, "resources", path, errs)
    rpath = child(path, "resources")
    requests = opt_dict(resources, "requests", rpath, errs) or {}
    spath = key(child(rpath, "requests"), "storage")
    if requests.get("storage") is None:
        errs.append(fe.required(spath))
    else:
        q = parse_quantity(requests.get("storage"), spath, errs)
        if q is not None and q.sign() <= 0:
            errs.append(fe.invalid(spath, str(q), NOT_POSITIVE))
    storage_class = opt_str(spec, "storageClassName", path, errs)
    if storage_class:
        name_errors(storage_class, child(path, "storageClassName"), names.name_is_dns_subdomain, errs)
    volume_mode = opt_str(spec, "volumeMode", path, errs)
    if volume_mode is not None and volume_mode not in VOLUME_MODES:
        errs.append(fe.not_supported(child(path, "volumeMode"), volume_mode, VOLUME_MODES))


def validate_persistent_volume_claim(obj: JSONDict) -> Errs:
    errs = validate_object_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    validate_pvc_spec(get_dict(obj, "spec", "", errs), "spec", errs)
    return errs


def validate_persistent_volume_claim_update(new: JSONDict, old: JSONDict) -> Errs:
    errs = validate_object_meta_update(new, old)
    new_spec = get_dict(new, "spec", "", errs)
    validate_pvc_spec(new_spec, "spec", errs)
    old_spec = get_dict(old, "spec", "", [])
    munged_new = copy.deepcopy(new_spec)
    munged_old = copy.deepcopy(old_spec)
    if not old_spec.get("volumeName"):
        munged_old["volumeName"] = munged_new.get("volumeName")
    bound = get_dict(new, "status", "", []).get("phase") == "Bound"
    for spec in (munged_new, munged_old):
        res = spec.get("resources")
        if bound and isinstance(res, dict) and isinstance(res.get("requests"), dict):
            res["requests"] = {k: v for k, v in res["requests"].items() if k != "storage"}
        spec.pop("volumeAttributesClassName", None)
    if not semantic_equal(munged_new, munged_old):
        errs.append(
            fe.forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"
                + spec_diff(munged_new, munged_old, "spec"),
            )
        )
    return errs


__all__ = [
    "FieldError",
    "validate_binding",
    "validate_config_map",
    "validate_config_map_update",
    "validate_endpoints",
    "validate_endpoints_update",
    "validate_event",
    "validate_event_update",
    "validate_namespace",
    "validate_namespace_status_update",
    "validate_namespace_update",
    "validate_node",
    "validate_node_update",
    "validate_persistent_volume_claim",
    "validate_persistent_volume_claim_update",
    "validate_pod",
    "validate_pod_spec",
    "validate_pod_status_update",
    "validate_pod_template_spec",
    "validate_pod_update",
    "validate_pvc_spec",
    "validate_replica_counts",
    "validate_replication_controller",
    "validate_replication_controller_status_update",
    "validate_replication_controller_update",
    "validate_secret",
    "validate_secret_update",
    "validate_service",
    "validate_service_status_update",
    "validate_service_update",
]
