"""kubectl's output formats as pure functions over Kubernetes JSON objects.

Tables follow kubectl's printers (`pkg/printers/internalversion/printers.go`) cell for cell and
its tabwriter layout (`cli-runtime`: minwidth 6, padding 3, widths remembered across flushes);
`-o yaml` / `-o json` follow kubectl's unstructured printers, which sort map keys; `-o name`
prints `kind[.group]/name`.

Objects are the JSON dicts kubectl would see. A field Kubernetes always defaults (e.g.
`spec.replicas`, a service's `type`, a port's `protocol`) is given that default when absent,
so an undefaulted manifest prints the way the server-defaulted object would.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from kplane.cli.jsonpath import go_json

Obj = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------
# Time


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`metav1.Time` or `MicroTime`) as an aware datetime; None if unset."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return _as_utc(parsed)


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are taken to be UTC: kplane timestamps are always UTC on the wire.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def human_duration_seconds(seconds: float) -> str:
    """apimachinery's `duration.HumanDuration`: ~2-3 significant figures ("45s", "3m20s", "2d4h")."""
    # Go truncates toward zero (int(d.Seconds())); up to 2s in the future is clock skew, "0s".
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def format_age(created: datetime | None, now: datetime) -> str:
    """kubectl's AGE cell: the human duration since `created`, "<unknown>" when unset."""
    if created is None:
        return "<unknown>"
    delta = _as_utc(now) - _as_utc(created)
    return human_duration_seconds(delta.total_seconds())


def _age_of(value: Any, now: datetime) -> str:
    return format_age(parse_time(value), now)


# ---------------------------------------------------------------------------------------------
# Small readers over JSON dicts


def _get(obj: Any, *path: str) -> Any:
    """The value at `path`, or None when any step is missing or not an object."""
    cur = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _map(obj: Any, *path: str) -> Mapping[str, Any]:
    value = _get(obj, *path)
    return value if isinstance(value, Mapping) else {}


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return list(value) if isinstance(value, list) else []


def _int(obj: Any, *path: str, default: int = 0) -> int:
    value = _get(obj, *path)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):  # int64 rendered as a string
        return int(value)
    return default


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) else ""


def group_of(api_version: str) -> str:
    """The API group of an apiVersion: "" for "v1", "apps" for "apps/v1"."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def format_labels(labels: Mapping[str, Any] | None) -> str:
    """`labels.FormatLabels`: sorted "k=v,k2=v2", or "<none>"."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def _selector_string(selector: Any) -> str:
    """`LabelSelectorAsSelector(sel).String()`: "" for a nil or empty selector."""
    if not isinstance(selector, Mapping):
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in sorted(_map(selector, "matchLabels").items()):
        requirements.append((key, f"{key}={value}"))
    for expr in _list(selector, "matchExpressions"):
        key = _str(expr, "key")
        operator = _str(expr, "operator")
        values = sorted({str(v) for v in _list(expr, "values")})
        if operator == "In":
            requirements.append((key, f"{key} in ({','.join(values)})"))
        elif operator == "NotIn":
            requirements.append((key, f"{key} notin ({','.join(values)})"))
        elif operator == "Exists":
            requirements.append((key, key))
        elif operator == "DoesNotExist":
            requirements.append((key, f"!{key}"))
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: the selector string, or "<none>" when it selects nothing/all."""
    return _selector_string(selector) or "<none>"


def _containers_cells(pod_spec: Any) -> tuple[str, str]:
    containers = _list(pod_spec, "containers")
    return (
        ",".join(_str(c, "name") for c in containers),
        ",".join(_str(c, "image") for c in containers),
    )


def _print_bool_ptr(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "<unset>"


# ---------------------------------------------------------------------------------------------
# Per-kind columns and cells


@dataclass(frozen=True)
class _Column:
    name: str
    wide: bool = False  # priority 1: only shown with -o wide
    is_name: bool = False  # Format "name": gets the kind/ prefix when several kinds are shown


_NAME = _Column("Name", is_name=True)
_AGE = _Column("Age")
_CONTAINERS = _Column("Containers", wide=True)
_IMAGES = _Column("Images", wide=True)
_SELECTOR = _Column("Selector", wide=True)

RowFunc = Callable[[Obj, datetime], list[str]]


def _pod_row(pod: Obj, now: datetime) -> list[str]:
    spec = _map(pod, "spec")
    status = _map(pod, "status")
    init_specs = _list(spec, "initContainers")
    restartable = {_str(c, "name") for c in init_specs if _str(c, "restartPolicy") == "Always"}
    total = len(_list(spec, "containers")) + sum(
        1 for c in init_specs if _str(c, "restartPolicy") == "Always"
    )
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable_restart: datetime | None = None

    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    for condition in _list(status, "conditions"):
        if _str(condition, "type") == "PodScheduled" and _str(condition, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    for index, cs in enumerate(_list(status, "initContainerStatuses")):
        restarts += _int(cs, "restartCount")
        finished = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        is_restartable = _str(cs, "name") in restartable
        if is_restartable:
            restartable_restarts += _int(cs, "restartCount")
            if finished is not None and (
                last_restartable_restart is None or finished > last_restartable_restart
            ):
                last_restartable_restart = finished
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if isinstance(terminated, Mapping) and _int(terminated, "exitCode") == 0:
            continue
        if is_restartable and _get(cs, "started") is True:
            if _get(cs, "ready") is True:
                ready += 1
            continue
        if isinstance(terminated, Mapping):
            if not _str(terminated, "reason"):
                signal = _int(terminated, "signal")
                reason = (
                    f"Init:Signal:{signal}" if signal else f"Init:ExitCode:{_int(terminated, 'exitCode')}"
                )
            else:
                reason = "Init:" + _str(terminated, "reason")
        elif (
            isinstance(waiting, Mapping)
            and _str(waiting, "reason")
            and _str(waiting, "reason") != "PodInitializing"
        ):
            reason = "Init:" + _str(waiting, "reason")
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed(_list(status, "containerStatuses")):
            restarts += _int(cs, "restartCount")
            finished = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
            if finished is not None and (last_restart is None or finished > last_restart):
                last_restart = finished
            terminated = _get(cs, "state", "terminated")
            waiting = _get(cs, "state", "waiting")
            running = _get(cs, "state", "running")
            if isinstance(waiting, Mapping) and _str(waiting, "reason"):
                reason = _str(waiting, "reason")
            elif isinstance(terminated, Mapping) and _str(terminated, "reason"):
                reason = _str(terminated, "reason")
            elif isinstance(terminated, Mapping):
                signal = _int(terminated, "signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated, 'exitCode')}"
            elif _get(cs, "ready") is True and isinstance(running, Mapping):
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and _str(status, "reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({format_age(last_restart, now)} ago)"

    pod_ip = _str(status, "podIP")
    if not pod_ip:
        ips = _list(status, "podIPs")
        pod_ip = _str(ips[0], "ip") if ips else ""
    gates = _list(spec, "readinessGates")
    readiness = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for condition in _list(status, "conditions"):
                if _str(condition, "type") == _str(gate, "conditionType"):
                    if _str(condition, "status") == "True":
                        true_count += 1
                    break
        readiness = f"{true_count}/{len(gates)}"
    return [
        _str(pod, "metadata", "name"),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age_of(_get(pod, "metadata", "creationTimestamp"), now),
        pod_ip or "<none>",
        _str(spec, "nodeName") or "<none>",
        _str(status, "nominatedNodeName") or "<none>",
        readiness,
    ]


def _condition_true(status: Any, condition_type: str) -> bool:
    for condition in _list(status, "conditions"):
        if _str(condition, "type") == condition_type:
            return _str(condition, "status") == "True"
    return False


def _name_age(obj: Obj, now: datetime) -> tuple[str, str]:
    return _str(obj, "metadata", "name"), _age_of(_get(obj, "metadata", "creationTimestamp"), now)


def _node_row(node: Obj, now: datetime) -> list[str]:
    status_parts: list[str] = []
    for condition in _list(node, "status", "conditions"):
        if _str(condition, "type") == "Ready":
            status_parts = ["Ready" if _str(condition, "status") == "True" else "NotReady"]
    if not status_parts:
        status_parts = ["Unknown"]
    if _get(node, "spec", "unschedulable") is True:
        status_parts.append("SchedulingDisabled")
    roles = ",".join(node_roles(node)) or "<none>"
    info = _map(node, "status", "nodeInfo")
    name, age = _name_age(node, now)
    return [
        name,
        ",".join(status_parts),
        roles,
        age,
        _str(info, "kubeletVersion"),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        _str(info, "osImage") or "<unknown>",
        _str(info, "kernelVersion") or "<unknown>",
        _str(info, "containerRuntimeVersion") or "<unknown>",
    ]


def node_roles(node: Obj) -> list[str]:
    """Sorted roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role=<role>` labels."""
    roles: set[str] = set()
    for key, value in _map(node, "metadata", "labels").items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return sorted(roles)


def _node_address(node: Obj, address_type: str) -> str:
    for address in _list(node, "status", "addresses"):
        if _str(address, "type") == address_type:
            return _str(address, "address")
    return "<none>"


def _namespace_row(ns: Obj, now: datetime) -> list[str]:
    name, age = _name_age(ns, now)
    return [name, _str(ns, "status", "phase"), age]


_LOAD_BALANCER_WIDTH = 16


def _load_balancer_ips(service: Obj, wide: bool) -> str:
    found: set[str] = set()
    for ingress in _list(service, "status", "loadBalancer", "ingress"):
        if _str(ingress, "ip"):
            found.add(_str(ingress, "ip"))
        elif _str(ingress, "hostname"):
            found.add(_str(ingress, "hostname"))
    text = ",".join(sorted(found))
    if not wide and len(text) > _LOAD_BALANCER_WIDTH:
        text = text[: _LOAD_BALANCER_WIDTH - 3] + "..."
    return text


def _service_external_ip(service: Obj, wide: bool) -> str:
    service_type = _str(service, "spec", "type") or "ClusterIP"
    external_ips = [str(ip) for ip in _list(service, "spec", "externalIPs")]
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if service_type == "LoadBalancer":
        lb_ips = _load_balancer_ips(service, wide)
        if external_ips:
            return ",".join(([*lb_ips.split(",")] if lb_ips else []) + external_ips)
        return lb_ips or "<pending>"
    if service_type == "ExternalName":
        return _str(service, "spec", "externalName")
    return "<unknown>"


def service_ports(service: Obj) -> str:
    """The PORT(S) cell: "80/TCP", "80:30080/TCP" for node ports, comma-joined."""
    pieces = []
    for port in _list(service, "spec", "ports"):
        protocol = _str(port, "protocol") or "TCP"
        node_port = _int(port, "nodePort")
        if node_port > 0:
            pieces.append(f"{_int(port, 'port')}:{node_port}/{protocol}")
        else:
            pieces.append(f"{_int(port, 'port')}/{protocol}")
    return ",".join(pieces)


def _service_row(service: Obj, now: datetime) -> list[str]:
    # The apiserver renders tables with Wide=true whatever kubectl asks for, so a load balancer's
    # addresses are never clipped to 16 characters in practice; neither are they here.
    name, age = _name_age(service, now)
    cluster_ips = _list(service, "spec", "clusterIPs")
    cluster_ip = str(cluster_ips[0]) if cluster_ips else _str(service, "spec", "clusterIP")
    return [
        name,
        _str(service, "spec", "type") or "ClusterIP",
        cluster_ip or "<none>",
        _service_external_ip(service, wide=True),
        service_ports(service) or "<none>",
        age,
        format_labels(_map(service, "spec", "selector")),
    ]


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_endpoints(endpoints: Obj) -> str:
    """The ENDPOINTS cell: up to three "ip:port" then " + N more...", or "<none>"."""
    subsets = _list(endpoints, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit = 3
    more = False
    count = 0
    for subset in subsets:
        addresses = _list(subset, "addresses")
        ports = _list(subset, "ports")
        if not ports:  # headless services may have no ports
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_str(address, "ip"))
            continue
        for port in ports:
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_join_host_port(_str(address, "ip"), _int(port, "port")))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def _endpoints_row(endpoints: Obj, now: datetime) -> list[str]:
    name, age = _name_age(endpoints, now)
    return [name, format_endpoints(endpoints), age]


def _configmap_row(cm: Obj, now: datetime) -> list[str]:
    name, age = _name_age(cm, now)
    return [name, str(len(_map(cm, "data")) + len(_map(cm, "binaryData"))), age]


def _secret_row(secret: Obj, now: datetime) -> list[str]:
    name, age = _name_age(secret, now)
    return [name, _str(secret, "type"), str(len(_map(secret, "data"))), age]


def event_source(event: Obj) -> str:
    """`formatEventSource`: "component, host", falling back to reportingController/Instance."""
    component = _str(event, "source", "component") or _str(event, "reportingController")
    host = _str(event, "source", "host") or _str(event, "reportingInstance")
    return f"{component}, {host}" if host else component


def event_times(event: Obj, now: datetime) -> tuple[str, str, int]:
    """(last seen, first seen, count) the way kubectl derives them from old and new event fields."""
    first = _age_of(_get(event, "firstTimestamp"), now)
    if parse_time(_get(event, "firstTimestamp")) is None:
        first = _age_of(_get(event, "eventTime"), now)
    last = _age_of(_get(event, "lastTimestamp"), now)
    if parse_time(_get(event, "lastTimestamp")) is None:
        last = first
    count = _int(event, "count")
    series = _get(event, "series")
    if isinstance(series, Mapping):
        last = _age_of(_get(series, "lastObservedTime"), now)
        count = _int(series, "count")
    elif count == 0:  # singleton events of the new API carry no count
        count = 1
    return last, first, count


def _event_row(event: Obj, now: datetime) -> list[str]:
    last, first, count = event_times(event, now)
    kind = _str(event, "involvedObject", "kind").lower()
    involved_name = _str(event, "involvedObject", "name")
    target = f"{kind}/{involved_name}" if involved_name else kind
    return [
        last,
        _str(event, "type"),
        _str(event, "reason"),
        target,
        _str(event, "involvedObject", "fieldPath"),
        event_source(event),
        _str(event, "message").strip(),
        first,
        str(count),
        _str(event, "metadata", "name"),
    ]


def _lease_row(lease: Obj, now: datetime) -> list[str]:
    name, age = _name_age(lease, now)
    return [name, _str(lease, "spec", "holderIdentity"), age]


def _pdb_row(pdb: Obj, now: datetime) -> list[str]:
    """kubectl's printPodDisruptionBudget: N/A for the bound that is not set."""
    name, age = _name_age(pdb, now)
    spec = pdb.get("spec") or {}
    bounds = [str(spec[k]) if spec.get(k) is not None else "N/A" for k in ("minAvailable", "maxUnavailable")]
    return [name, *bounds, str(_int(pdb, "status", "disruptionsAllowed")), age]


def _desired_replicas(obj: Obj) -> int:
    # spec.replicas is defaulted to 1 by the apiserver; an absent value means "1", not "0".
    return _int(obj, "spec", "replicas", default=1)


def _replicaset_row(rs: Obj, now: datetime) -> list[str]:
    name, age = _name_age(rs, now)
    names, images = _containers_cells(_get(rs, "spec", "template", "spec"))
    return [
        name,
        str(_desired_replicas(rs)),
        str(_int(rs, "status", "replicas")),
        str(_int(rs, "status", "readyReplicas")),
        age,
        names,
        images,
        format_label_selector(_get(rs, "spec", "selector")),
    ]


def _replication_controller_row(rc: Obj, now: datetime) -> list[str]:
    name, age = _name_age(rc, now)
    names, images = _containers_cells(_get(rc, "spec", "template", "spec"))
    return [
        name,
        str(_desired_replicas(rc)),
        str(_int(rc, "status", "replicas")),
        str(_int(rc, "status", "readyReplicas")),
        age,
        names,
        images,
        format_labels(_map(rc, "spec", "selector")),
    ]


def _deployment_row(deploy: Obj, now: datetime) -> list[str]:
    name, age = _name_age(deploy, now)
    names, images = _containers_cells(_get(deploy, "spec", "template", "spec"))
    return [
        name,
        f"{_int(deploy, 'status', 'readyReplicas')}/{_desired_replicas(deploy)}",
        str(_int(deploy, "status", "updatedReplicas")),
        str(_int(deploy, "status", "availableReplicas")),
        age,
        names,
        images,
        _selector_string(_get(deploy, "spec", "selector")),
    ]


def _daemonset_row(ds: Obj, now: datetime) -> list[str]:
    name, age = _name_age(ds, now)
    names, images = _containers_cells(_get(ds, "spec", "template", "spec"))
    status = _map(ds, "status")
    return [
        name,
        str(_int(status, "desiredNumberScheduled")),
        str(_int(status, "currentNumberScheduled")),
        str(_int(status, "numberReady")),
        str(_int(status, "updatedNumberScheduled")),
        str(_int(status, "numberAvailable")),
        format_labels(_map(ds, "spec", "template", "spec", "nodeSelector")),
        age,
        names,
        images,
        format_label_selector(_get(ds, "spec", "selector")),
    ]


def _statefulset_row(sts: Obj, now: datetime) -> list[str]:
    name, age = _name_age(sts, now)
    names, images = _containers_cells(_get(sts, "spec", "template", "spec"))
    return [
        name,
        f"{_int(sts, 'status', 'readyReplicas')}/{_desired_replicas(sts)}",
        age,
        names,
        images,
    ]


def controller_of(obj: Obj) -> Mapping[str, Any] | None:
    """The ownerReference with `controller: true`, if any."""
    for ref in _list(obj, "metadata", "ownerReferences"):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def _controller_revision_row(rev: Obj, now: datetime) -> list[str]:
    name, age = _name_age(rev, now)
    controller = "<none>"
    ref = controller_of(rev)
    if ref is not None:
        kind = _str(ref, "kind")
        group = group_of(_str(ref, "apiVersion"))
        group_kind = f"{kind}.{group}" if group else kind
        controller = f"{group_kind.lower()}/{_str(ref, 'name')}" if group_kind else _str(ref, "name")
    return [name, controller, str(_int(rev, "revision")), age]


def _job_has_condition(job: Obj, condition_type: str) -> bool:
    for condition in _list(job, "status", "conditions"):
        if _str(condition, "type") == condition_type:
            return _str(condition, "status") == "True"
    return False


def job_status(job: Obj) -> str:
    """The Job STATUS cell: Complete, Failed, Terminating, Suspended, FailureTarget or Running."""
    if _job_has_condition(job, "Complete"):
        return "Complete"
    if _job_has_condition(job, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if _job_has_condition(job, "Suspended"):
        return "Suspended"
    if _job_has_condition(job, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_row_at(job: Obj, now: datetime) -> list[str]:
    name, age = _name_age(job, now)
    succeeded = _int(job, "status", "succeeded")
    completions = _get(job, "spec", "completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        completions_cell = f"{succeeded}/{completions}"
    else:
        parallelism = _int(job, "spec", "parallelism")
        completions_cell = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start = parse_time(_get(job, "status", "startTime"))
    end = parse_time(_get(job, "status", "completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration_seconds(((end or _as_utc(now)) - start).total_seconds())
    names, images = _containers_cells(_get(job, "spec", "template", "spec"))
    return [
        name,
        job_status(job),
        completions_cell,
        duration,
        age,
        names,
        images,
        format_label_selector(_get(job, "spec", "selector")),
    ]


def _cronjob_row(cj: Obj, now: datetime) -> list[str]:
    name, age = _name_age(cj, now)
    last = _get(cj, "status", "lastScheduleTime")
    last_cell = _age_of(last, now) if last is not None else "<none>"
    job_spec = _get(cj, "spec", "jobTemplate", "spec")
    names, images = _containers_cells(_get(job_spec, "template", "spec"))
    time_zone = _get(cj, "spec", "timeZone")
    return [
        name,
        _str(cj, "spec", "schedule"),
        time_zone if isinstance(time_zone, str) else "<none>",
        _print_bool_ptr(_get(cj, "spec", "suspend")),
        str(len(_list(cj, "status", "active"))),
        last_cell,
        age,
        names,
        images,
        format_label_selector(_get(job_spec, "selector")),
    ]


def _default_row(obj: Obj, now: datetime) -> list[str]:
    name, age = _name_age(obj, now)
    return [name, age]


@dataclass(frozen=True)
class _KindPrinter:
    """A kind's columns and its row function, which returns a cell for every column (wide too)."""

    columns: tuple[_Column, ...]
    row: RowFunc


_REPLICA_COLUMNS = (
    _NAME,
    _Column("Desired"),
    _Column("Current"),
    _Column("Ready"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
)

_PRINTERS: dict[str, _KindPrinter] = {
    "Pod": _KindPrinter(
        (
            _NAME,
            _Column("Ready"),
            _Column("Status"),
            _Column("Restarts"),
            _AGE,
            _Column("IP", wide=True),
            _Column("Node", wide=True),
            _Column("Nominated Node", wide=True),
            _Column("Readiness Gates", wide=True),
        ),
        _pod_row,
    ),
    "Node": _KindPrinter(
        (
            _NAME,
            _Column("Status"),
            _Column("Roles"),
            _AGE,
            _Column("Version"),
            _Column("Internal-IP", wide=True),
            _Column("External-IP", wide=True),
            _Column("OS-Image", wide=True),
            _Column("Kernel-Version", wide=True),
            _Column("Container-Runtime", wide=True),
        ),
        _node_row,
    ),
    "Namespace": _KindPrinter((_NAME, _Column("Status"), _AGE), _namespace_row),
    "Service": _KindPrinter(
        (
            _NAME,
            _Column("Type"),
            _Column("Cluster-IP"),
            _Column("External-IP"),
            _Column("Port(s)"),
            _AGE,
            _SELECTOR,
        ),
        _service_row,
    ),
    "Endpoints": _KindPrinter((_NAME, _Column("Endpoints"), _AGE), _endpoints_row),
    "ConfigMap": _KindPrinter((_NAME, _Column("Data"), _AGE), _configmap_row),
    "Secret": _KindPrinter((_NAME, _Column("Type"), _Column("Data"), _AGE), _secret_row),
    "Event": _KindPrinter(
        (
            _Column("Last Seen"),
            _Column("Type"),
            _Column("Reason"),
            _Column("Object"),
            _Column("Subobject", wide=True),
            _Column("Source", wide=True),
            _Column("Message"),
            _Column("First Seen", wide=True),
            _Column("Count", wide=True),
            _Column("Name", wide=True, is_name=True),
        ),
        _event_row,
    ),
    "Lease": _KindPrinter((_NAME, _Column("Holder"), _AGE), _lease_row),
    "PodDisruptionBudget": _KindPrinter(
        (_NAME, _Column("Min Available"), _Column("Max Unavailable"), _Column("Allowed Disruptions"), _AGE),
        _pdb_row,
    ),
    "ReplicaSet": _KindPrinter(_REPLICA_COLUMNS, _replicaset_row),
    "ReplicationController": _KindPrinter(_REPLICA_COLUMNS, _replication_controller_row),
    "Deployment": _KindPrinter(
        (
            _NAME,
            _Column("Ready"),
            _Column("Up-to-date"),
            _Column("Available"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _deployment_row,
    ),
    "DaemonSet": _KindPrinter(
        (
            _NAME,
            _Column("Desired"),
            _Column("Current"),
            _Column("Ready"),
            _Column("Up-to-date"),
            _Column("Available"),
            _Column("Node Selector"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _daemonset_row,
    ),
    "StatefulSet": _KindPrinter((_NAME, _Column("Ready"), _AGE, _CONTAINERS, _IMAGES), _statefulset_row),
    "ControllerRevision": _KindPrinter(
        (_NAME, _Column("Controller"), _Column("Revision"), _AGE),
        _controller_revision_row,
    ),
    "Job": _KindPrinter(
        (
            _NAME,
            _Column("Status"),
            _Column("Completions"),
            _Column("Duration"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _job_row_at,
    ),
    "CronJob": _KindPrinter(
        (
            _NAME,
            _Column("Schedule"),
            _Column("Timezone"),
            _Column("Suspend"),
            _Column("Active"),
            _Column("Last Schedule"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _cronjob_row,
    ),
}

_DEFAULT_PRINTER = _KindPrinter((_NAME, _AGE), _default_row)

# Kinds without a namespace: `-A` prints no NAMESPACE column for them.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Node",
        "Namespace",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "PriorityClass",
        "RuntimeClass",
        "CustomResourceDefinition",
        "APIService",
        "CSINode",
        "CSIDriver",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ComponentStatus",
    }
)


def _printer_for(kind: str) -> _KindPrinter:
    return _PRINTERS.get(kind, _DEFAULT_PRINTER)


def _visible(columns: Iterable[_Column], wide: bool) -> list[_Column]:
    return [c for c in columns if wide or not c.wide]


def table_columns(kind: str, wide: bool) -> list[str]:
    """The header cells kubectl prints for `kind` (upper-case), without NAMESPACE/LABELS."""
    return [c.name.upper() for c in _visible(_printer_for(kind).columns, wide)]


def table_row(obj: Obj, now: datetime, wide: bool) -> list[str]:
    """The cells kubectl prints for one object, matching `table_columns(obj["kind"], wide)`."""
    printer = _printer_for(_str(obj, "kind"))
    cells = printer.row(obj, now)
    return [cell for column, cell in zip(printer.columns, cells, strict=True) if wide or not column.wide]


# ---------------------------------------------------------------------------------------------
# Table layout


def _escape_cell(text: str) -> str:
    """kubectl cuts a cell at its first line break (adding "...") and defuses terminal escapes."""
    for index, char in enumerate(text):
        if char in "\n\r\f":
            text = text[:index] + "..."
            break
    return text.replace("\x1b", "^[")


class TabWriter:
    """Go's elastic-tabstop tabwriter, as kubectl configures it.

    Lines are lists of cells; every cell but the last of a line is a column cell (Go's cells are
    tab-terminated). A column block is a run of contiguous lines that have a cell in that column;
    its width is its widest cell plus `padding`, at least `min_width`. `kubectl get` uses
    minwidth 6 / padding 3 and remembers widths across calls, so a column never narrows (that is
    how `-w` keeps alignment); `kubectl describe` uses minwidth 0 / padding 2 without memory.
    """

    def __init__(self, *, min_width: int = 6, padding: int = 3, remember_widths: bool = True) -> None:
        self.min_width = min_width
        self.padding = padding
        self.remember_widths = remember_widths
        self._max_widths: list[int] = []

    def format(self, lines: Sequence[Sequence[str]]) -> str:
        """Aligned text for `lines`, each terminated by a newline."""
        out: list[str] = []
        self._format(lines, 0, len(lines), [], out)
        return "".join(out)

    def format_text(self, text: str) -> str:
        """Align tab-separated `text` the way writing it to a Go tabwriter and flushing would."""
        lines = [line.split("\t") for line in text.split("\n")]
        return self.format(lines)[:-1]  # the part after the last newline is not a line of its own

    def _format(
        self, lines: Sequence[Sequence[str]], line0: int, line1: int, widths: list[int], out: list[str]
    ) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write_lines(lines, line0, this, widths, out)
            line0 = this
            width = self.min_width
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember_widths:
                if len(self._max_widths) < len(widths):
                    self._max_widths.extend(widths[len(self._max_widths) :])
                if len(self._max_widths) == len(widths):
                    self._max_widths.append(width)
                else:
                    width = max(width, self._max_widths[column])
                    self._max_widths[column] = width
            self._format(lines, line0, this, [*widths, width], out)
            line0 = this
        self._write_lines(lines, line0, line1, widths, out)

    @staticmethod
    def _write_lines(
        lines: Sequence[Sequence[str]], line0: int, line1: int, widths: list[int], out: list[str]
    ) -> None:
        for line in lines[line0:line1]:
            for index, cell in enumerate(line):
                out.append(cell)
                if index < len(widths):
                    out.append(" " * (widths[index] - len(cell)))
            out.append("\n")


@dataclass(frozen=True)
class _TableOptions:
    wide: bool = False
    show_labels: bool = False
    show_namespace: bool = False
    show_kind: bool = False


def kind_prefix(obj: Obj) -> str:
    """The lower-case `kind[.group]` kubectl puts before names ("deployment.apps", "pod")."""
    kind = _str(obj, "kind")
    group = group_of(_str(obj, "apiVersion"))
    return (f"{kind}.{group}" if group else kind).lower()


def _is_cluster_scoped(kind: str, objs: Sequence[Obj]) -> bool:
    if kind in CLUSTER_SCOPED_KINDS:
        return True
    if kind in _PRINTERS:
        return False
    return all(not _str(o, "metadata", "namespace") for o in objs)


def render_rows(
    objs: Sequence[Obj],
    *,
    now: datetime,
    wide: bool = False,
    show_labels: bool = False,
    show_namespace: bool = False,
    show_kind: bool = False,
) -> tuple[list[str], list[list[str]]]:
    """Header cells and row cells (unaligned) for objects of one kind, as kubectl would print them.

    NAMESPACE comes first with `show_namespace` (not for cluster-scoped kinds), the name cell is
    `kind[.group]/name` with `show_kind`, and LABELS comes last with `show_labels`.
    """
    kind = _str(objs[0], "kind") if objs else ""
    printer = _printer_for(kind)
    columns = _visible(printer.columns, wide)
    with_namespace = show_namespace and not _is_cluster_scoped(kind, objs)
    header = [c.name.upper() for c in columns]
    if with_namespace:
        header.insert(0, "NAMESPACE")
    if show_labels:
        header.append("LABELS")
    rows: list[list[str]] = []
    for obj in objs:
        cells = [_escape_cell(cell) for cell in table_row(obj, now, wide)]
        if show_kind:
            for index, column in enumerate(columns):
                if column.is_name:
                    cells[index] = f"{kind_prefix(obj)}/{cells[index]}"
                    break
        if with_namespace:
            cells.insert(0, _str(obj, "metadata", "namespace"))
        if show_labels:
            cells.append(format_labels(_map(obj, "metadata", "labels")))
        rows.append(cells)
    return header, rows


def _group_by_kind(objs: Sequence[Obj]) -> list[list[Obj]]:
    groups: dict[tuple[str, str], list[Obj]] = {}
    for obj in objs:
        key = (group_of(_str(obj, "apiVersion")), _str(obj, "kind"))
        groups.setdefault(key, []).append(obj)
    return list(groups.values())


def render_table(
    objs: Sequence[Obj],
    *,
    now: datetime,
    wide: bool = False,
    show_labels: bool = False,
    show_namespace: bool = False,
    show_kind: bool = False,
    no_headers: bool = False,
) -> str:
    """`kubectl get` human output: one aligned table per kind (in order of first appearance),
    separated by blank lines, each line newline-terminated; "" when there is nothing to print.
    """
    blocks: list[str] = []
    for group in _group_by_kind(objs):
        header, rows = render_rows(
            group,
            now=now,
            wide=wide,
            show_labels=show_labels,
            show_namespace=show_namespace,
            show_kind=show_kind,
        )
        lines = rows if no_headers else [header, *rows]
        blocks.append(TabWriter().format(lines))
    # kubectl separates kinds with an empty line only when it prints headers.
    return ("" if no_headers else "\n").join(blocks)


class WatchPrinter:
    """`kubectl get -w` output: the header once, then rows batch by batch, never realigning.

    Column widths are remembered across batches (kubectl's RememberWidths tabwriter), so a later
    row is padded to at least the widths already printed; a wider cell widens the column from
    that row on. One printer serves one kind.
    """

    def __init__(
        self,
        *,
        wide: bool = False,
        show_labels: bool = False,
        show_namespace: bool = False,
        show_kind: bool = False,
        no_headers: bool = False,
    ) -> None:
        self._options = _TableOptions(wide, show_labels, show_namespace, show_kind)
        self._no_headers = no_headers
        self._printed_header = False
        self._writer = TabWriter()

    def render(self, objs: Sequence[Obj], now: datetime) -> str:
        """The text for one batch (the initial list or a single watch event); "" for no objects."""
        if not objs:
            return ""
        header, rows = render_rows(
            objs,
            now=now,
            wide=self._options.wide,
            show_labels=self._options.show_labels,
            show_namespace=self._options.show_namespace,
            show_kind=self._options.show_kind,
        )
        lines = rows
        if not self._no_headers and not self._printed_header:
            lines = [header, *rows]
            self._printed_header = True
        return self._writer.format(lines)


def no_resources_message(namespace: str | None) -> str:
    """What kubectl prints (to stderr) for an empty `get`: namespaced or all-namespaces form."""
    if namespace:
        return f"No resources found in {namespace} namespace."
    return "No resources found"


def render_name(obj: Obj) -> str:
    """`-o name`: "pod/web-1", "deployment.apps/web"."""
    return f"{kind_prefix(obj)}/{_str(obj, 'metadata', 'name')}"


# ---------------------------------------------------------------------------------------------
# YAML and JSON


def as_list(objs: Sequence[Obj]) -> dict[str, Any]:
    """The `List` kubectl wraps several objects in for -o yaml/json."""
    return {"apiVersion": "v1", "items": list(objs), "kind": "List", "metadata": {"resourceVersion": ""}}


def _document(obj_or_list: Obj | Sequence[Obj]) -> Any:
    if isinstance(obj_or_list, Mapping):
        return obj_or_list
    return as_list(obj_or_list)


def render_json(obj_or_list: Obj | Sequence[Obj], *, sort_keys: bool = True) -> str:
    """`-o json`: Go's json.MarshalIndent with 4 spaces — keys sorted like kubectl's unstructured
    output, `<`, `>` and `&` escaped, floats in Go's form. A sequence renders as a `List`.
    The result ends with a newline.
    """
    return go_json(_document(obj_or_list), indent=4, sort_keys=sort_keys) + "\n"


# How go-yaml v2 resolves a plain scalar; kubectl double-quotes any string that would not come back
# as a string. PyYAML's YAML 1.1 resolver differs in details ("y", "0o17", "1e3", "<<"), so the
# dumper below uses these rules instead of PyYAML's.
_YAML = "tag:yaml.org,2002:"
_STR_TAG = _YAML + "str"
_GO_YAML_WORDS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), "bool"),
    **dict.fromkeys(("true", "True", "TRUE", "false", "False", "FALSE"), "bool"),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), "bool"),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), "null"),
    **dict.fromkeys((".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF"), "float"),
    **dict.fromkeys(("+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"), "float"),
}
_GO_YAML_INT = re.compile(r"[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)")
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_YAML_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_GO_YAML_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?"
)


def _go_yaml_tag(text: str) -> str:
    """The tag go-yaml v2 gives `text` as a plain scalar ("str" unless it reads as something else)."""
    if text in _GO_YAML_WORDS:
        return _YAML + _GO_YAML_WORDS[text]
    if text[0] in "+-.0123456789":
        if _GO_YAML_INT.fullmatch(text):
            return _YAML + "int"
        if _GO_YAML_FLOAT.fullmatch(text) or _GO_YAML_BASE60.fullmatch(text):
            return _YAML + "float"
        if _GO_YAML_TIMESTAMP.fullmatch(text):
            return _YAML + "timestamp"
    return _STR_TAG


class _KubectlDumper(yaml.CSafeDumper):
    """CSafeDumper resolving plain scalars the way go-yaml v2 does."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0] and isinstance(value, str):
            return _go_yaml_tag(value)
        return super().resolve(kind, value, implicit)


def _represent_str(dumper: _KubectlDumper, data: str) -> yaml.Node:
    if "\n" in data:
        style: str | None = "|"
    elif _go_yaml_tag(data) != _STR_TAG:
        style = '"'
    else:
        style = None
    return dumper.represent_scalar(_STR_TAG, data, style=style)


def _represent_float(dumper: _KubectlDumper, data: float) -> yaml.Node:
    if math.isnan(data):
        text = ".nan"
    elif math.isinf(data):
        text = ".inf" if data > 0 else "-.inf"
    elif data == int(data) and abs(data) < 2**63:
        text = str(int(data))  # kubectl's JSON -> YAML round trip reads 3.0 back as the int 3
    else:
        text = repr(data)
    return dumper.represent_scalar(_go_yaml_tag(text), text)


_KubectlDumper.add_representer(str, _represent_str)
_KubectlDumper.add_representer(float, _represent_float)


def _go_yaml_key_less(a: str, b: str) -> bool:
    """go-yaml v2's map key order: letters after other runes, digit runs compared as numbers."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        a_letter, b_letter = a[i].isalpha(), b[i].isalpha()
        if a_letter and b_letter:
            return a[i] < b[i]
        if a_letter or b_letter:
            return b_letter
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an = an * 10 + ord(a[ai]) - ord("0")
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn = bn * 10 + ord(b[bi]) - ord("0")
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def _go_yaml_key_cmp(a: str, b: str) -> int:
    if _go_yaml_key_less(a, b):
        return -1
    if _go_yaml_key_less(b, a):
        return 1
    return 0


_go_yaml_key = functools.cmp_to_key(_go_yaml_key_cmp)


def _sorted_for_yaml(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted_for_yaml(value[k]) for k in sorted((str(k) for k in value), key=_go_yaml_key)}
    if isinstance(value, (list, tuple)):
        return [_sorted_for_yaml(v) for v in value]
    return value


def _plain_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    return value


def render_yaml(obj_or_list: Obj | Sequence[Obj], *, sort_keys: bool = True) -> str:
    """`-o yaml`: block style, go-yaml key order and quoting, multi-line strings as literal blocks.

    A sequence renders as a `List`. `sort_keys=False` keeps the dicts' own key order instead.
    """
    document = _document(obj_or_list)
    data = _sorted_for_yaml(document) if sort_keys else _plain_copy(document)
    text = yaml.dump(
        data,
        Dumper=_KubectlDumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=80,
    )
    # libyaml ends the document with "..." after a trailing keep-chomped block ("|+"); go-yaml doesn't.
    return text.removesuffix("\n...\n") + "\n" if text.endswith("\n...\n") else text
