"""`kubectl describe` output as a pure function over Kubernetes JSON objects.

Each describer follows kubectl's (`k8s.io/kubectl/pkg/describe`) line for line: the same
labels, the same order, the same tab-aligned layout (Go tabwriter, minwidth 0, padding 2). What
kubectl fetches besides the object — events, a node's pods and lease, a deployment's replica
sets, a service's endpoints — is passed in: `events` and `Related`.

Timestamps print in RFC 1123 form in the time zone of `now` (kubectl uses the local zone), so
pass `datetime.now().astimezone()` for local times, or an aware UTC `now` for UTC.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from fractions import Fraction
from typing import Any

from kplane.cli.jsonpath import go_format_float
from kplane.cli.printers import (
    Obj,
    TabWriter,
    controller_of,
    format_age,
    format_label_selector,
    format_labels,
    group_of,
    human_duration_seconds,
    node_roles,
    parse_time,
)


@dataclass(frozen=True)
class Related:
    """Objects kubectl looks up besides the one described.

    `pods`: for a Node, the pods on it (terminated ones are skipped); for a ReplicaSet,
    ReplicationController, DaemonSet or StatefulSet, pods in its namespace (only those it
    controls are counted). `replica_sets`: a Deployment's ReplicaSets (only those it controls
    are shown). `endpoint_slices` or `endpoints`: a Service's EndpointSlices (preferred, as
    kubectl) or its Endpoints. `lease`: a Node's Lease in kube-node-lease.
    """

    pods: Sequence[Obj] = ()
    replica_sets: Sequence[Obj] = ()
    endpoint_slices: Sequence[Obj] = ()
    endpoints: Obj | None = None
    lease: Obj | None = None


# ---------------------------------------------------------------------------------------------
# JSON readers


def _get(obj: Any, *path: str) -> Any:
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


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) else ""


def _int(obj: Any, *path: str, default: int = 0) -> int:
    value = _get(obj, *path)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return default


def _has(obj: Any, *path: str) -> bool:
    return _get(obj, *path) is not None


def _go_value(value: Any) -> str:
    """Go's `%v` of a decoded JSON scalar or list."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _int_or_string(value: Any) -> str:
    """An IntOrString as Go prints it ("25%", "1"); unset is "0"."""
    if value is None:
        return "0"
    return _go_value(value)


# ---------------------------------------------------------------------------------------------
# Output: kubectl's PrefixWriter over a tabwriter


class _Writer:
    """Collects text the way kubectl writes to its tabwriter; `flush` ends an alignment block."""

    def __init__(self) -> None:
        self._blocks: list[list[str]] = [[]]

    def write(self, level: int, text: str) -> None:
        self._blocks[-1].append("  " * level + text)

    def line(self, text: str) -> None:
        self._blocks[-1].append(text + "\n")

    def flush(self) -> None:
        self._blocks.append([])

    def render(self) -> str:
        return "".join(
            TabWriter(min_width=0, padding=2, remember_widths=False).format_text("".join(block))
            for block in self._blocks
        )


_ZERO_TIME = "Mon, 01 Jan 0001 00:00:00 +0000"


def _rfc1123z(value: Any, zone: tzinfo | None) -> str:
    """Go's RFC1123Z layout; an unset time prints as Go's zero time."""
    moment = parse_time(value)
    if moment is None:
        return _ZERO_TIME
    if zone is not None:
        moment = moment.astimezone(zone)
    return moment.strftime("%a, %d %b %Y %H:%M:%S %z")


@dataclass(frozen=True)
class _Context:
    now: datetime
    related: Related

    @property
    def zone(self) -> tzinfo | None:
        return self.now.tzinfo

    def time(self, value: Any) -> str:
        return _rfc1123z(value, self.zone)

    def since(self, value: Any) -> str:
        return format_age(parse_time(value), self.now)


# ---------------------------------------------------------------------------------------------
# Shared pieces


_SKIP_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_MAX_ANNOTATION_LEN = 140


def _labels_multiline(
    w: _Writer, title: str, labels: Mapping[str, Any], initial_indent: str = "", inner_indent: str = "\t"
) -> None:
    w.write(0, f"{initial_indent}{title}:{inner_indent}")
    if not labels:
        w.line("<none>")
        return
    for index, key in enumerate(sorted(labels)):
        if index:
            w.write(0, initial_indent + inner_indent)
        w.write(0, f"{key}={_go_value(labels[key])}\n")


def _annotations_multiline(w: _Writer, title: str, annotations: Mapping[str, Any]) -> None:
    w.write(0, f"{title}:\t")
    keys = sorted(k for k in annotations if k not in _SKIP_ANNOTATIONS)
    if not keys:
        w.line("<none>")
        return
    for index, key in enumerate(keys):
        if index:
            w.write(0, "\t")
        value = _go_value(annotations[key]).removesuffix("\n")
        if len(value.encode()) + len(key.encode()) + 2 > _MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{key}:\n")
            for part in value.split("\n"):
                w.write(0, f"\t  {_shorten(part, _MAX_ANNOTATION_LEN - 2)}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def _shorten(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) > limit:
        return raw[:limit].decode(errors="ignore") + "..."
    return text


def _meta_header(w: _Writer, obj: Obj, *, namespace: bool = True) -> None:
    w.write(0, f"Name:\t{_str(obj, 'metadata', 'name')}\n")
    if namespace:
        w.write(0, f"Namespace:\t{_str(obj, 'metadata', 'namespace')}\n")


def _labels_and_annotations(w: _Writer, obj: Obj) -> None:
    _labels_multiline(w, "Labels", _map(obj, "metadata", "labels"))
    _annotations_multiline(w, "Annotations", _map(obj, "metadata", "annotations"))


def _controlled_by(w: _Writer, obj: Obj) -> None:
    ref = controller_of(obj)
    if ref is not None:
        w.write(0, f"Controlled By:\t{_str(ref, 'kind')}/{_str(ref, 'name')}\n")


def _selector_string(selector: Any) -> str:
    text = format_label_selector(selector)
    return "" if text == "<none>" else text


def _describe_events(w: _Writer, events: Sequence[Obj] | None, ctx: _Context) -> None:
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.flush()
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for event in sorted(events, key=_event_sort_key):
        first = ctx.since(_get(event, "eventTime"))
        if parse_time(_get(event, "eventTime")) is None:
            first = ctx.since(_get(event, "firstTimestamp"))
        series = _get(event, "series")
        if isinstance(series, Mapping):
            age = f"{ctx.since(_get(series, 'lastObservedTime'))} (x{_int(series, 'count')} over {first})"
        elif _int(event, "count") > 1:
            age = f"{ctx.since(_get(event, 'lastTimestamp'))} (x{_int(event, 'count')} over {first})"
        else:
            age = first
        source = _str(event, "source", "component") or _str(event, "reportingController")
        message = _str(event, "message").strip()
        w.write(1, f"{_str(event, 'type')}\t{_str(event, 'reason')}\t{age}\t{source}\t{message}\n")


def _event_sort_key(event: Obj) -> float:
    """kubectl sorts events by series.lastObservedTime, else lastTimestamp, else eventTime."""
    if isinstance(_get(event, "series"), Mapping):
        return _timestamp(_get(event, "series", "lastObservedTime"))
    if parse_time(_get(event, "lastTimestamp")) is not None:
        return _timestamp(_get(event, "lastTimestamp"))
    return _timestamp(_get(event, "eventTime"))


# ---------------------------------------------------------------------------------------------
# Quantities (only what describe needs: sums, comparisons and Go's canonical String())

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_NAMES = {exp: name for name, exp in _DECIMAL_SUFFIXES.items()}


@dataclass(frozen=True)
class _Quantity:
    value: Fraction
    format: str  # "BinarySI", "DecimalSI", "DecimalExponent" or "" (Go's zero Quantity)

    @staticmethod
    def parse(text: Any) -> _Quantity:
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            return _Quantity(Fraction(0), "")
        match = _QUANTITY.match(str(text).strip())
        if not match:
            return _Quantity(Fraction(0), "")
        number = Fraction(match.group(1))
        suffix = match.group(2)
        if suffix in _BINARY_SUFFIXES:
            value, fmt = number * 2 ** _BINARY_SUFFIXES[suffix], "BinarySI"
        elif suffix in _DECIMAL_SUFFIXES:
            value, fmt = number * Fraction(10) ** _DECIMAL_SUFFIXES[suffix], "DecimalSI"
        elif re.fullmatch(r"[eE][+-]?[0-9]+", suffix):
            value, fmt = number * Fraction(10) ** int(suffix[1:]), "DecimalExponent"
        else:
            return _Quantity(Fraction(0), "")
        # Quantities keep nano precision at most, rounding up.
        value = Fraction(math.ceil(value * 10**9), 10**9)
        return _Quantity(value, fmt)

    def add(self, other: _Quantity) -> _Quantity:
        fmt = other.format if self.value == 0 else self.format
        return _Quantity(self.value + other.value, fmt)

    def milli_value(self) -> int:
        return math.ceil(self.value * 1000)

    def int_value(self) -> int:
        return math.ceil(self.value)

    def __str__(self) -> str:
        value = self.value
        if value == 0:
            return "0"
        fmt = self.format
        if fmt == "BinarySI" and (-1024 < value < 1024 or value.denominator != 1):
            fmt = "DecimalSI"
        if fmt == "BinarySI":
            number = int(value)
            exponent = 0
            while number % 1024 == 0 and exponent < 6:
                number //= 1024
                exponent += 1
            return f"{number}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][exponent]}"
        scale = 0
        while (value * 10**scale).denominator != 1:  # parse() keeps at most nano precision
            scale += 1
        mantissa, exponent = int(value * 10**scale), -scale
        while mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
        while exponent % 3 != 0:  # Go keeps the exponent a multiple of 3
            mantissa *= 10
            exponent -= 1
        if fmt == "DecimalExponent":
            return f"{mantissa}" + (f"e{exponent}" if exponent else "")
        name = _DECIMAL_NAMES.get(exponent)
        return f"{mantissa}{name}" if name is not None else f"{mantissa}e{exponent}"


_ResourceList = dict[str, _Quantity]


def _add_resources(total: _ResourceList, resources: Mapping[str, Any] | _ResourceList) -> None:
    for name, raw in resources.items():
        quantity = raw if isinstance(raw, _Quantity) else _Quantity.parse(raw)
        total[name] = total[name].add(quantity) if name in total else quantity


def _max_resources(total: _ResourceList, resources: _ResourceList) -> None:
    for name, quantity in resources.items():
        if name not in total or quantity.value > total[name].value:
            total[name] = quantity


def _pod_requests_and_limits(pod: Obj) -> tuple[_ResourceList, _ResourceList]:
    """kubectl's resourcehelper.PodRequestsAndLimits, sidecars and overhead included."""
    statuses = {_str(cs, "name"): cs for cs in _list(pod, "status", "containerStatuses")}
    requests: _ResourceList = {}
    limits: _ResourceList = {}
    for container in _list(pod, "spec", "containers"):
        container_requests: _ResourceList = {}
        _add_resources(container_requests, _map(container, "resources", "requests"))
        status = statuses.get(_str(container, "name"))
        if status is not None:
            allocated: _ResourceList = {}
            _add_resources(allocated, _map(status, "allocatedResources"))
            if _str(pod, "status", "resize") == "Infeasible":
                container_requests = allocated
            else:
                _max_resources(container_requests, allocated)
        _add_resources(requests, container_requests)
        _add_resources(limits, _map(container, "resources", "limits"))
    for kind, total in (("requests", requests), ("limits", limits)):
        sidecars: _ResourceList = {}
        init_max: _ResourceList = {}
        for container in _list(pod, "spec", "initContainers"):
            own: _ResourceList = {}
            _add_resources(own, _map(container, "resources", kind))
            if _str(container, "restartPolicy") == "Always":
                _add_resources(total, own)
                _add_resources(sidecars, own)
                candidate = dict(sidecars)
            else:
                candidate = dict(own)
                _add_resources(candidate, sidecars)
            _max_resources(init_max, candidate)
        _max_resources(total, init_max)
    overhead = _map(pod, "spec", "overhead")
    _add_resources(requests, overhead)
    for name, raw in overhead.items():
        if name in limits:
            limits[name] = limits[name].add(_Quantity.parse(raw))
    return requests, limits


def _go_int64(number: float) -> int:
    """Go's int64(float64) on amd64: NaN and out-of-range values become math.MinInt64."""
    if math.isnan(number) or math.isinf(number) or abs(number) >= 2**63:
        return -(2**63)
    return int(number)


def _percent(part: _Quantity, whole: int, *, milli: bool) -> int:
    """int64(float64(part) / float64(whole) * 100), Go's way: x/0 is NaN or Inf, then MinInt64."""
    numerator = part.milli_value() if milli else part.int_value()
    if whole == 0:
        return _go_int64(math.nan)
    return _go_int64(numerator / whole * 100)


# ---------------------------------------------------------------------------------------------
# Pods and pod templates


def _describe_probe(probe: Obj) -> str:
    attrs = (
        f"delay={_int(probe, 'initialDelaySeconds')}s timeout={_int(probe, 'timeoutSeconds', default=1)}s "
        f"period={_int(probe, 'periodSeconds', default=10)}s #success={_int(probe, 'successThreshold', default=1)} "
        f"#failure={_int(probe, 'failureThreshold', default=3)}"
    )
    if isinstance(_get(probe, "exec"), Mapping):
        return f"exec {_go_value(_list(probe, 'exec', 'command'))} {attrs}"
    if isinstance(_get(probe, "httpGet"), Mapping):
        http = _map(probe, "httpGet")
        scheme = (_str(http, "scheme") or "HTTP").lower()
        port = _int_or_string(_get(http, "port")) if _has(http, "port") else ""
        host = _str(http, "host")
        if port:
            host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"http-get {scheme}://{host}{_str(http, 'path')} {attrs}"
    if isinstance(_get(probe, "tcpSocket"), Mapping):
        tcp = _map(probe, "tcpSocket")
        return f"tcp-socket {_str(tcp, 'host')}:{_int_or_string(_get(tcp, 'port'))} {attrs}"
    if isinstance(_get(probe, "grpc"), Mapping):
        grpc = _map(probe, "grpc")
        return f"grpc <pod>:{_int(grpc, 'port')} {_str(grpc, 'service')} {attrs}"
    return f"unknown {attrs}"


def _describe_state(w: _Writer, title: str, state: Mapping[str, Any], ctx: _Context) -> None:
    if isinstance(state.get("running"), Mapping):
        w.write(2, f"{title}:\tRunning\n")
        w.write(3, f"Started:\t{ctx.time(_get(state, 'running', 'startedAt'))}\n")
    elif isinstance(state.get("waiting"), Mapping):
        w.write(2, f"{title}:\tWaiting\n")
        if _str(state, "waiting", "reason"):
            w.write(3, f"Reason:\t{_str(state, 'waiting', 'reason')}\n")
    elif isinstance(state.get("terminated"), Mapping):
        terminated = _map(state, "terminated")
        w.write(2, f"{title}:\tTerminated\n")
        if _str(terminated, "reason"):
            w.write(3, f"Reason:\t{_str(terminated, 'reason')}\n")
        if _str(terminated, "message"):
            w.write(3, f"Message:\t{_str(terminated, 'message')}\n")
        w.write(3, f"Exit Code:\t{_int(terminated, 'exitCode')}\n")
        if _int(terminated, "signal") > 0:
            w.write(3, f"Signal:\t{_int(terminated, 'signal')}\n")
        w.write(3, f"Started:\t{ctx.time(_get(terminated, 'startedAt'))}\n")
        w.write(3, f"Finished:\t{ctx.time(_get(terminated, 'finishedAt'))}\n")
    else:
        w.write(2, f"{title}:\tWaiting\n")


def _describe_resources(w: _Writer, resources: Any, level: int) -> None:
    for title in ("Limits", "Requests"):
        values = _map(resources, title.lower())
        if values:
            w.write(level, f"{title}:\n")
        for name in sorted(values):
            w.write(level + 1, f"{name}:\t{_go_value(values[name])}\n")


def _describe_containers(
    w: _Writer,
    label: str,
    containers: Sequence[Obj],
    statuses: Sequence[Obj] | None,
    space: str,
    ctx: _Context,
    pod: Obj | None,
) -> None:
    by_name = {_str(s, "name"): s for s in statuses or ()}
    w.write(0, f"{space}{label}:{'' if containers else ' <none>'}\n")
    name_indent = " " if space else ""
    for container in containers:
        status = by_name.get(_str(container, "name"))
        w.write(1, f"{name_indent}{_str(container, 'name')}:\n")
        if status is not None:
            w.write(2, f"Container ID:\t{_str(status, 'containerID')}\n")
        w.write(2, f"Image:\t{_str(container, 'image')}\n")
        if status is not None:
            w.write(2, f"Image ID:\t{_str(status, 'imageID')}\n")
        ports = _list(container, "ports")
        port_text = ", ".join(f"{_int(p, 'containerPort')}/{_str(p, 'protocol') or 'TCP'}" for p in ports)
        host_text = ", ".join(f"{_int(p, 'hostPort')}/{_str(p, 'protocol') or 'TCP'}" for p in ports)
        if "," in port_text:
            w.write(2, f"Ports:\t{port_text}\n")
        else:
            w.write(2, f"Port:\t{port_text or '<none>'}\n")
        if "," in host_text:
            w.write(2, f"Host Ports:\t{host_text}\n")
        else:
            w.write(2, f"Host Port:\t{host_text or '<none>'}\n")
        seccomp = _map(container, "securityContext", "seccompProfile")
        if seccomp:
            w.write(2, f"SeccompProfile:\t{_str(seccomp, 'type')}\n")
            if _str(seccomp, "type") == "Localhost":
                w.write(3, f"LocalhostProfile:\t{_str(seccomp, 'localhostProfile')}\n")
        for title, key in (("Command", "command"), ("Args", "args")):
            values = _list(container, key)
            if values:
                w.write(2, f"{title}:\n")
                for value in values:
                    for part in str(value).split("\n"):
                        w.write(3, f"{part}\n")
        if status is not None:
            _describe_state(w, "State", _map(status, "state"), ctx)
            if isinstance(_get(status, "lastState", "terminated"), Mapping):
                _describe_state(w, "Last State", _map(status, "lastState"), ctx)
            w.write(2, f"Ready:\t{'True' if _get(status, 'ready') is True else 'False'}\n")
            w.write(2, f"Restart Count:\t{_int(status, 'restartCount')}\n")
        _describe_resources(w, _get(container, "resources"), 2)
        for title, key in (
            ("Liveness", "livenessProbe"),
            ("Readiness", "readinessProbe"),
            ("Startup", "startupProbe"),
        ):
            probe = _get(container, key)
            if isinstance(probe, Mapping):
                w.write(2, f"{title}:\t{_describe_probe(probe)}\n")
        env_from = _list(container, "envFrom")
        if env_from:
            w.write(2, "Environment Variables from:\n")
            for source in env_from:
                kind, name, optional = "", "", False
                if isinstance(_get(source, "configMapRef"), Mapping):
                    kind, name = "ConfigMap", _str(source, "configMapRef", "name")
                    optional = _get(source, "configMapRef", "optional") is True
                elif isinstance(_get(source, "secretRef"), Mapping):
                    kind, name = "Secret", _str(source, "secretRef", "name")
                    optional = _get(source, "secretRef", "optional") is True
                prefix = _str(source, "prefix")
                kind_text = f"{kind} with prefix '{prefix}'" if prefix else kind
                w.write(3, f"{name}\t{kind_text}\tOptional: {'true' if optional else 'false'}\n")
        _describe_env(w, container, pod)
        mounts = sorted(_list(container, "volumeMounts"), key=lambda m: _str(m, "mountPath"))
        w.write(2, f"Mounts:{'' if mounts else chr(9) + '<none>'}\n")
        for mount in mounts:
            flags = ["ro" if _get(mount, "readOnly") is True else "rw"]
            if _str(mount, "subPath"):
                flags.append(f'path="{_str(mount, "subPath")}"')
            w.write(3, f"{_str(mount, 'mountPath')} from {_str(mount, 'name')} ({','.join(flags)})\n")
        devices = sorted(_list(container, "volumeDevices"), key=lambda d: _str(d, "devicePath"))
        if devices:
            w.write(2, "Devices:\n")
            for device in devices:
                w.write(3, f"{_str(device, 'devicePath')} from {_str(device, 'name')}\n")


def _field_path_value(pod: Obj | None, field_path: str) -> str:
    """fieldpath.ExtractFieldPathAsString: only metadata paths resolve; anything else is ""."""
    if pod is None:
        return ""
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if field_path in simple:
        return _str(pod, "metadata", simple[field_path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", field_path)
    if match:
        return _go_value(_map(pod, "metadata", match.group(1)).get(match.group(2), ""))
    if field_path in ("metadata.labels", "metadata.annotations"):
        values = _map(pod, "metadata", field_path.split(".")[1])
        return "\n".join(f'{k}="{values[k]}"' for k in sorted(values))
    return ""


def _describe_env(w: _Writer, container: Obj, pod: Obj | None) -> None:
    env = _list(container, "env")
    w.write(2, f"Environment:{'' if env else chr(9) + '<none>'}\n")
    for var in env:
        name = _str(var, "name")
        source = _get(var, "valueFrom")
        if not isinstance(source, Mapping):
            for index, part in enumerate(_str(var, "value").split("\n")):
                w.write(3, f"{name}:\t{part}\n" if index == 0 else f"\t{part}\n")
            continue
        if isinstance(source.get("fieldRef"), Mapping):
            ref = _map(source, "fieldRef")
            value = _field_path_value(pod, _str(ref, "fieldPath"))
            w.write(3, f"{name}:\t{value} ({_str(ref, 'apiVersion')}:{_str(ref, 'fieldPath')})\n")
        elif isinstance(source.get("resourceFieldRef"), Mapping):
            ref = _map(source, "resourceFieldRef")
            resource = _str(ref, "resource")
            value = _resource_field_value(container, ref)
            if value == "0" and resource in ("limits.cpu", "limits.memory"):
                value = "node allocatable"
            w.write(3, f"{name}:\t{value} ({resource})\n")
        elif isinstance(source.get("secretKeyRef"), Mapping):
            ref = _map(source, "secretKeyRef")
            optional = "true" if _get(ref, "optional") is True else "false"
            w.write(
                3,
                f"{name}:\t<set to the key '{_str(ref, 'key')}' in secret '{_str(ref, 'name')}'>"
                f"\tOptional: {optional}\n",
            )
        elif isinstance(source.get("configMapKeyRef"), Mapping):
            ref = _map(source, "configMapKeyRef")
            optional = "true" if _get(ref, "optional") is True else "false"
            w.write(
                3,
                f"{name}:\t<set to the key '{_str(ref, 'key')}' of config map '{_str(ref, 'name')}'>"
                f"\tOptional: {optional}\n",
            )


def _resource_field_value(container: Obj, ref: Mapping[str, Any]) -> str:
    """ExtractContainerResourceValue: a request or limit divided by the divisor, rounded up."""
    resource = _str(ref, "resource")
    if "." not in resource:
        return ""
    kind, name = resource.split(".", 1)
    quantity = _Quantity.parse(_map(container, "resources", kind).get(name, "0"))
    divisor = _Quantity.parse(_get(ref, "divisor") or "1")
    if divisor.value == 0:
        divisor = _Quantity(Fraction(1), "DecimalSI")
    if name == "cpu":
        return str(math.ceil(quantity.value / divisor.value))
    return str(math.ceil(quantity.value / divisor.value))


def _describe_volumes(w: _Writer, volumes: Sequence[Obj], space: str) -> None:
    if not volumes:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    name_indent = " " if space else ""
    for volume in volumes:
        w.write(1, f"{name_indent}{_str(volume, 'name')}:\n")
        _describe_volume_source(w, volume)


def _b(value: Any) -> str:
    return "true" if value is True else "false"


def _describe_volume_source(w: _Writer, volume: Obj) -> None:
    if isinstance(_get(volume, "hostPath"), Mapping):
        source = _map(volume, "hostPath")
        w.write(
            2,
            "Type:\tHostPath (bare host directory volume)\n"
            f"    Path:\t{_str(source, 'path')}\n"
            f"    HostPathType:\t{_str(source, 'type') if _has(source, 'type') else '<none>'}\n",
        )
    elif isinstance(_get(volume, "emptyDir"), Mapping):
        source = _map(volume, "emptyDir")
        limit = _Quantity.parse(_get(source, "sizeLimit"))
        size = _go_value(_get(source, "sizeLimit")) if limit.value > 0 else "<unset>"
        w.write(
            2,
            "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n"
            f"    Medium:\t{_str(source, 'medium')}\n"
            f"    SizeLimit:\t{size}\n",
        )
    elif isinstance(_get(volume, "secret"), Mapping):
        source = _map(volume, "secret")
        w.write(
            2,
            "Type:\tSecret (a volume populated by a Secret)\n"
            f"    SecretName:\t{_str(source, 'secretName')}\n"
            f"    Optional:\t{_b(_get(source, 'optional'))}\n",
        )
    elif isinstance(_get(volume, "configMap"), Mapping):
        source = _map(volume, "configMap")
        w.write(
            2,
            "Type:\tConfigMap (a volume populated by a ConfigMap)\n"
            f"    Name:\t{_str(source, 'name')}\n"
            f"    Optional:\t{_b(_get(source, 'optional'))}\n",
        )
    elif isinstance(_get(volume, "persistentVolumeClaim"), Mapping):
        source = _map(volume, "persistentVolumeClaim")
        w.write(
            2,
            "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n"
            f"    ClaimName:\t{_str(source, 'claimName')}\n"
            f"    ReadOnly:\t{_b(_get(source, 'readOnly'))}\n",
        )
    elif isinstance(_get(volume, "downwardAPI"), Mapping):
        w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n")
        for item in _list(volume, "downwardAPI", "items"):
            if isinstance(_get(item, "fieldRef"), Mapping):
                w.write(3, f"{_str(item, 'fieldRef', 'fieldPath')} -> {_str(item, 'path')}\n")
            if isinstance(_get(item, "resourceFieldRef"), Mapping):
                w.write(3, f"{_str(item, 'resourceFieldRef', 'resource')} -> {_str(item, 'path')}\n")
    elif isinstance(_get(volume, "projected"), Mapping):
        w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
        for source in _list(volume, "projected", "sources"):
            if isinstance(_get(source, "secret"), Mapping):
                w.write(
                    2,
                    f"SecretName:\t{_str(source, 'secret', 'name')}\n"
                    f"    Optional:\t{_b(_get(source, 'secret', 'optional'))}\n",
                )
            elif isinstance(_get(source, "downwardAPI"), Mapping):
                w.write(2, "DownwardAPI:\ttrue\n")
            elif isinstance(_get(source, "configMap"), Mapping):
                w.write(
                    2,
                    f"ConfigMapName:\t{_str(source, 'configMap', 'name')}\n"
                    f"    Optional:\t{_b(_get(source, 'configMap', 'optional'))}\n",
                )
            elif isinstance(_get(source, "serviceAccountToken"), Mapping):
                seconds = _int(source, "serviceAccountToken", "expirationSeconds", default=3600)
                w.write(2, f"TokenExpirationSeconds:\t{seconds}\n")
    elif isinstance(_get(volume, "nfs"), Mapping):
        source = _map(volume, "nfs")
        w.write(
            2,
            "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n"
            f"    Server:\t{_str(source, 'server')}\n"
            f"    Path:\t{_str(source, 'path')}\n"
            f"    ReadOnly:\t{_b(_get(source, 'readOnly'))}\n",
        )
    elif isinstance(_get(volume, "gitRepo"), Mapping):
        source = _map(volume, "gitRepo")
        w.write(
            2,
            "Type:\tGitRepo (a volume that is pulled from git when the pod is created)\n"
            f"    Repository:\t{_str(source, 'repository')}\n"
            f"    Revision:\t{_str(source, 'revision')}\n",
        )
    else:
        w.write(1, "<unknown>\n")


def _tolerations_multiline(
    w: _Writer, title: str, tolerations: Sequence[Obj], initial_indent: str = ""
) -> None:
    w.write(0, f"{initial_indent}{title}:\t")
    if not tolerations:
        w.line("<none>")
        return
    for index, toleration in enumerate(sorted(tolerations, key=lambda t: _str(t, "key"))):
        if index:
            w.write(0, initial_indent + "\t")
        key, value, effect = _str(toleration, "key"), _str(toleration, "value"), _str(toleration, "effect")
        text = key
        if value:
            text += f"={value}"
        if effect:
            text += f":{effect}"
        if _str(toleration, "operator") == "Exists" and not value:
            text += " op=Exists" if key or effect else "op=Exists"
        if _has(toleration, "tolerationSeconds"):
            text += f" for {_int(toleration, 'tolerationSeconds')}s"
        w.write(0, text + "\n")


def _topology_spread(w: _Writer, constraints: Sequence[Obj], space: str) -> None:
    if not constraints:
        return
    w.write(0, f"{space}Topology Spread Constraints:\t")
    for index, tsc in enumerate(sorted(constraints, key=lambda c: _str(c, "topologyKey"))):
        if index:
            w.write(0, space)
            w.write(0, "\t")
        text = (
            f"{_str(tsc, 'topologyKey')}:{_str(tsc, 'whenUnsatisfiable')}"
            f" when max skew {_int(tsc, 'maxSkew')} is exceeded"
        )
        if isinstance(_get(tsc, "labelSelector"), Mapping):
            text += f" for selector {format_label_selector(_get(tsc, 'labelSelector'))}"
        w.write(0, text + "\n")


def _pod_template(w: _Writer, template: Any, ctx: _Context) -> None:
    w.write(0, "Pod Template:\n")
    if not isinstance(template, Mapping):
        w.write(1, "<unset>")
        return
    spec = _map(template, "spec")
    _labels_multiline(w, "  Labels", _map(template, "metadata", "labels"))
    annotations = _map(template, "metadata", "annotations")
    if annotations:
        _annotations_multiline(w, "  Annotations", annotations)
    if _str(spec, "serviceAccountName"):
        w.write(1, f"Service Account:\t{_str(spec, 'serviceAccountName')}\n")
    init = _list(spec, "initContainers")
    if init:
        _describe_containers(w, "Init Containers", init, None, "  ", ctx, None)
    _describe_containers(w, "Containers", _list(spec, "containers"), None, "  ", ctx, None)
    _describe_volumes(w, _list(spec, "volumes"), "  ")
    _topology_spread(w, _list(spec, "topologySpreadConstraints"), "  ")
    if _str(spec, "priorityClassName"):
        w.write(1, f"Priority Class Name:\t{_str(spec, 'priorityClassName')}\n")
    _labels_multiline(w, "  Node-Selectors", _map(spec, "nodeSelector"))
    _tolerations_multiline(w, "  Tolerations", _list(spec, "tolerations"))


def describe_pod_template(template: Obj, now: datetime, *, aligned: bool = True) -> str:
    """The "Pod Template:" section on its own (kubectl's DescribePodTemplate). `kpctl rollout
    history --revision=N` prints it as kubectl does there: written straight out, tabs not aligned."""
    w = _Writer()
    _pod_template(w, template, _Context(now=now, related=Related()))
    if aligned:
        return w.render()
    return "".join("".join(block) for block in w._blocks)


_QOS_RESOURCES = ("cpu", "memory")


def pod_qos_class(pod: Obj) -> str:
    """status.qosClass, else computed the way Kubernetes does (Guaranteed/Burstable/BestEffort)."""
    if _str(pod, "status", "qosClass"):
        return _str(pod, "status", "qosClass")
    requests: _ResourceList = {}
    limits: _ResourceList = {}
    guaranteed = True
    containers = _list(pod, "spec", "containers") + _list(pod, "spec", "initContainers")
    for container in containers:
        for name, raw in _map(container, "resources", "requests").items():
            quantity = _Quantity.parse(raw)
            if name in _QOS_RESOURCES and quantity.value > 0:
                _add_resources(requests, {name: quantity})
        found: set[str] = set()
        for name, raw in _map(container, "resources", "limits").items():
            quantity = _Quantity.parse(raw)
            if name in _QOS_RESOURCES and quantity.value > 0:
                found.add(name)
                _add_resources(limits, {name: quantity})
        if not found.issuperset(_QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, request in requests.items():
            if name not in limits or limits[name].value != request.value:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _describe_pod(w: _Writer, pod: Obj, ctx: _Context) -> None:
    spec = _map(pod, "spec")
    status = _map(pod, "status")
    _meta_header(w, pod)
    if _has(spec, "priority"):
        w.write(0, f"Priority:\t{_int(spec, 'priority')}\n")
    if _str(spec, "priorityClassName"):
        w.write(0, f"Priority Class Name:\t{_str(spec, 'priorityClassName')}\n")
    if _str(spec, "runtimeClassName"):
        w.write(0, f"Runtime Class Name:\t{_str(spec, 'runtimeClassName')}\n")
    if _str(spec, "serviceAccountName"):
        w.write(0, f"Service Account:\t{_str(spec, 'serviceAccountName')}\n")
    if not _str(spec, "nodeName"):
        w.write(0, "Node:\t<none>\n")
    else:
        w.write(0, f"Node:\t{_str(spec, 'nodeName')}/{_str(status, 'hostIP')}\n")
    if _has(status, "startTime"):
        w.write(0, f"Start Time:\t{ctx.time(_get(status, 'startTime'))}\n")
    _labels_and_annotations(w, pod)
    phase = _str(status, "phase")
    if _has(pod, "metadata", "deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {ctx.since(_get(pod, 'metadata', 'deletionTimestamp'))})\n")
        w.write(0, f"Termination Grace Period:\t{_int(pod, 'metadata', 'deletionGracePeriodSeconds')}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    if _str(status, "reason"):
        w.write(0, f"Reason:\t{_str(status, 'reason')}\n")
    if _str(status, "message"):
        w.write(0, f"Message:\t{_str(status, 'message')}\n")
    seccomp = _map(spec, "securityContext", "seccompProfile")
    if seccomp:
        w.write(0, f"SeccompProfile:\t{_str(seccomp, 'type')}\n")
        if _str(seccomp, "type") == "Localhost":
            w.write(0, f"LocalhostProfile:\t{_str(seccomp, 'localhostProfile')}\n")
    w.write(0, f"IP:\t{_str(status, 'podIP')}\n")
    ips = _list(status, "podIPs")
    if not ips:
        w.write(0, "IPs:\t<none>\n")
    else:
        w.write(0, "IPs:\n")
        for ip in ips:
            w.write(1, f"IP:\t{_str(ip, 'ip')}\n")
    _controlled_by(w, pod)
    if _str(status, "nominatedNodeName"):
        w.write(0, f"NominatedNodeName:\t{_str(status, 'nominatedNodeName')}\n")
    if isinstance(_get(spec, "resources"), Mapping):
        w.write(0, "Resources:\n")
        _describe_resources(w, _get(spec, "resources"), 1)
    if _list(spec, "initContainers"):
        _describe_containers(
            w,
            "Init Containers",
            _list(spec, "initContainers"),
            _list(status, "initContainerStatuses"),
            "",
            ctx,
            pod,
        )
    _describe_containers(
        w, "Containers", _list(spec, "containers"), _list(status, "containerStatuses"), "", ctx, pod
    )
    if _list(spec, "ephemeralContainers"):
        _describe_containers(
            w,
            "Ephemeral Containers",
            _list(spec, "ephemeralContainers"),
            _list(status, "ephemeralContainerStatuses"),
            "",
            ctx,
            pod,
        )
    conditions = _list(status, "conditions")
    gates = _list(spec, "readinessGates")
    if gates:
        w.write(0, "Readiness Gates:\n  Type\tStatus\n")
        for gate in gates:
            gate_status = "<none>"
            for condition in conditions:
                if _str(condition, "type") == _str(gate, "conditionType"):
                    gate_status = _str(condition, "status")
                    break
            w.write(1, f"{_str(gate, 'conditionType')} \t{gate_status} \n")
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for condition in conditions:
            w.write(1, f"{_str(condition, 'type')} \t{_str(condition, 'status')} \n")
    _describe_volumes(w, _list(spec, "volumes"), "")
    w.write(0, f"QoS Class:\t{pod_qos_class(pod)}\n")
    _labels_multiline(w, "Node-Selectors", _map(spec, "nodeSelector"))
    _tolerations_multiline(w, "Tolerations", _list(spec, "tolerations"))
    _topology_spread(w, _list(spec, "topologySpreadConstraints"), "")


# ---------------------------------------------------------------------------------------------
# Workloads


def _owned_pod_counts(obj: Obj, pods: Sequence[Obj]) -> tuple[int, int, int, int]:
    uid = _str(obj, "metadata", "uid")
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for pod in pods:
        ref = controller_of(pod)
        if ref is None or _str(ref, "uid") != uid:
            continue
        phase = _str(pod, "status", "phase")
        if phase in counts:
            counts[phase] += 1
    return counts["Running"], counts["Pending"], counts["Succeeded"], counts["Failed"]


def _pods_status(w: _Writer, obj: Obj, ctx: _Context) -> None:
    running, waiting, succeeded, failed = _owned_pod_counts(obj, ctx.related.pods)
    w.write(
        0, f"Pods Status:\t{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed\n"
    )


def _replica_conditions(w: _Writer, obj: Obj) -> None:
    conditions = _list(obj, "status", "conditions")
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(1, "----\t------\t------\n")
        for c in conditions:
            w.write(1, f"{_str(c, 'type')} \t{_str(c, 'status')}\t{_str(c, 'reason')}\n")


def _desired(obj: Obj) -> int:
    return _int(obj, "spec", "replicas", default=1)


def _describe_replica_set(w: _Writer, rs: Obj, ctx: _Context) -> None:
    _meta_header(w, rs)
    w.write(0, f"Selector:\t{format_label_selector(_get(rs, 'spec', 'selector'))}\n")
    _labels_and_annotations(w, rs)
    _controlled_by(w, rs)
    w.write(0, f"Replicas:\t{_int(rs, 'status', 'replicas')} current / {_desired(rs)} desired\n")
    _pods_status(w, rs, ctx)
    _pod_template(w, _get(rs, "spec", "template"), ctx)
    _replica_conditions(w, rs)


def _describe_replication_controller(w: _Writer, rc: Obj, ctx: _Context) -> None:
    _meta_header(w, rc)
    w.write(0, f"Selector:\t{format_labels(_map(rc, 'spec', 'selector'))}\n")
    _labels_and_annotations(w, rc)
    w.write(0, f"Replicas:\t{_int(rc, 'status', 'replicas')} current / {_desired(rc)} desired\n")
    _pods_status(w, rc, ctx)
    _pod_template(w, _get(rc, "spec", "template"), ctx)
    _replica_conditions(w, rc)


def _timestamp(value: Any) -> float:
    moment = parse_time(value)
    return moment.timestamp() if moment is not None else -math.inf


def _template_without_hash(template: Any) -> Any:
    if not isinstance(template, Mapping):
        return template
    copy = dict(template)
    metadata = dict(_map(template, "metadata"))
    labels = {k: v for k, v in _map(metadata, "labels").items() if k != "pod-template-hash"}
    if labels:
        metadata["labels"] = labels
    else:
        metadata.pop("labels", None)
    copy["metadata"] = metadata
    return copy


def _deployment_replica_sets(deploy: Obj, replica_sets: Sequence[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old, new) the way kubectl's deploymentutil.GetAllReplicaSets splits them."""
    uid = _str(deploy, "metadata", "uid")
    owned = [rs for rs in replica_sets if _str(controller_of(rs) or {}, "uid") == uid]
    owned.sort(
        key=lambda rs: (_timestamp(_get(rs, "metadata", "creationTimestamp")), _str(rs, "metadata", "name"))
    )
    wanted = _template_without_hash(_get(deploy, "spec", "template"))
    new = next((rs for rs in owned if _template_without_hash(_get(rs, "spec", "template")) == wanted), None)
    old = [rs for rs in owned if rs is not new]
    return old, [new] if new is not None else []


def _replica_sets_text(replica_sets: Sequence[Obj]) -> str:
    text = ", ".join(
        f"{_str(rs, 'metadata', 'name')} ({_int(rs, 'status', 'replicas')}/{_desired(rs)} replicas created)"
        for rs in replica_sets
    )
    return text or "<none>"


def _describe_deployment(w: _Writer, deploy: Obj, ctx: _Context) -> None:
    status = _map(deploy, "status")
    _meta_header(w, deploy)
    w.write(0, f"CreationTimestamp:\t{ctx.time(_get(deploy, 'metadata', 'creationTimestamp'))}\n")
    _labels_and_annotations(w, deploy)
    w.write(0, f"Selector:\t{_selector_string(_get(deploy, 'spec', 'selector'))}\n")
    w.write(
        0,
        f"Replicas:\t{_desired(deploy)} desired | {_int(status, 'updatedReplicas')} updated | "
        f"{_int(status, 'replicas')} total | {_int(status, 'availableReplicas')} available | "
        f"{_int(status, 'unavailableReplicas')} unavailable\n",
    )
    strategy = _map(deploy, "spec", "strategy")
    w.write(0, f"StrategyType:\t{_str(strategy, 'type')}\n")
    w.write(0, f"MinReadySeconds:\t{_int(deploy, 'spec', 'minReadySeconds')}\n")
    if isinstance(_get(strategy, "rollingUpdate"), Mapping):
        rolling = _map(strategy, "rollingUpdate")
        w.write(
            0,
            f"RollingUpdateStrategy:\t{_int_or_string(_get(rolling, 'maxUnavailable'))} max unavailable, "
            f"{_int_or_string(_get(rolling, 'maxSurge'))} max surge\n",
        )
    _pod_template(w, _get(deploy, "spec", "template"), ctx)
    _replica_conditions(w, deploy)
    old, new = _deployment_replica_sets(deploy, ctx.related.replica_sets)
    if old or new:
        w.write(0, f"OldReplicaSets:\t{_replica_sets_text(old)}\n")
        w.write(0, f"NewReplicaSet:\t{_replica_sets_text(new)}\n")


def _describe_daemon_set(w: _Writer, ds: Obj, ctx: _Context) -> None:
    status = _map(ds, "status")
    _meta_header(w, ds)
    w.write(0, f"Selector:\t{_selector_string(_get(ds, 'spec', 'selector'))}\n")
    w.write(0, f"Node-Selector:\t{format_labels(_map(ds, 'spec', 'template', 'spec', 'nodeSelector'))}\n")
    _labels_and_annotations(w, ds)
    w.write(0, f"Desired Number of Nodes Scheduled: {_int(status, 'desiredNumberScheduled')}\n")
    w.write(0, f"Current Number of Nodes Scheduled: {_int(status, 'currentNumberScheduled')}\n")
    w.write(0, f"Number of Nodes Scheduled with Up-to-date Pods: {_int(status, 'updatedNumberScheduled')}\n")
    w.write(0, f"Number of Nodes Scheduled with Available Pods: {_int(status, 'numberAvailable')}\n")
    w.write(0, f"Number of Nodes Misscheduled: {_int(status, 'numberMisscheduled')}\n")
    _pods_status(w, ds, ctx)
    _pod_template(w, _get(ds, "spec", "template"), ctx)


def _describe_stateful_set(w: _Writer, sts: Obj, ctx: _Context) -> None:
    _meta_header(w, sts)
    w.write(0, f"CreationTimestamp:\t{ctx.time(_get(sts, 'metadata', 'creationTimestamp'))}\n")
    w.write(0, f"Selector:\t{_selector_string(_get(sts, 'spec', 'selector'))}\n")
    _labels_and_annotations(w, sts)
    w.write(0, f"Replicas:\t{_desired(sts)} desired | {_int(sts, 'status', 'replicas')} total\n")
    strategy = _map(sts, "spec", "updateStrategy")
    w.write(0, f"Update Strategy:\t{_str(strategy, 'type')}\n")
    rolling = _map(strategy, "rollingUpdate")
    if _has(rolling, "partition"):
        w.write(1, f"Partition:\t{_int(rolling, 'partition')}\n")
        if _has(rolling, "maxUnavailable"):
            w.write(1, f"MaxUnavailable:\t{_int_or_string(_get(rolling, 'maxUnavailable'))}\n")
    _pods_status(w, sts, ctx)
    _pod_template(w, _get(sts, "spec", "template"), ctx)
    claims = _list(sts, "spec", "volumeClaimTemplates")
    if not claims:
        w.write(0, "Volume Claims:\t<none>\n")
        return
    w.write(0, "Volume Claims:\n")
    for claim in claims:
        w.write(1, f"Name:\t{_str(claim, 'metadata', 'name')}\n")
        storage_class = _str(claim, "spec", "storageClassName") or _str(
            claim, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class"
        )
        w.write(1, f"StorageClass:\t{storage_class}\n")
        _labels_multiline(w, "Labels", _map(claim, "metadata", "labels"), initial_indent="  ")
        _labels_multiline(w, "Annotations", _map(claim, "metadata", "annotations"), initial_indent="  ")
        capacity = _get(claim, "spec", "resources", "requests", "storage")
        w.write(1, f"Capacity:\t{_go_value(capacity) if capacity is not None else '<default>'}\n")
        w.write(1, f"Access Modes:\t{_go_value(_list(claim, 'spec', 'accessModes'))}\n")


def _describe_job(w: _Writer, job: Obj, ctx: _Context) -> None:
    spec = _map(job, "spec")
    status = _map(job, "status")
    _meta_header(w, job)
    w.write(0, f"Selector:\t{_selector_string(_get(spec, 'selector'))}\n")
    _labels_and_annotations(w, job)
    _controlled_by(w, job)
    if _has(spec, "parallelism"):
        w.write(0, f"Parallelism:\t{_int(spec, 'parallelism')}\n")
    if _has(spec, "completions"):
        w.write(0, f"Completions:\t{_int(spec, 'completions')}\n")
    else:
        w.write(0, "Completions:\t<unset>\n")
    if _str(spec, "completionMode"):
        w.write(0, f"Completion Mode:\t{_str(spec, 'completionMode')}\n")
    if _has(spec, "suspend"):
        w.write(0, f"Suspend:\t{_go_value(_get(spec, 'suspend'))}\n")
    if _has(spec, "backoffLimit"):
        w.write(0, f"Backoff Limit:\t{_int(spec, 'backoffLimit')}\n")
    if _has(spec, "ttlSecondsAfterFinished"):
        w.write(0, f"TTL Seconds After Finished:\t{_int(spec, 'ttlSecondsAfterFinished')}\n")
    start = parse_time(_get(status, "startTime"))
    end = parse_time(_get(status, "completionTime"))
    if start is not None:
        w.write(0, f"Start Time:\t{ctx.time(_get(status, 'startTime'))}\n")
    if end is not None:
        w.write(0, f"Completed At:\t{ctx.time(_get(status, 'completionTime'))}\n")
    if start is not None and end is not None:
        w.write(0, f"Duration:\t{human_duration_seconds((end - start).total_seconds())}\n")
    if _has(spec, "activeDeadlineSeconds"):
        w.write(0, f"Active Deadline Seconds:\t{_int(spec, 'activeDeadlineSeconds')}s\n")
    active, succeeded, failed = _int(status, "active"), _int(status, "succeeded"), _int(status, "failed")
    if _has(status, "ready"):
        w.write(
            0,
            f"Pods Statuses:\t{active} Active ({_int(status, 'ready')} Ready) / {succeeded} Succeeded / {failed} Failed\n",
        )
    else:
        w.write(0, f"Pods Statuses:\t{active} Active / {succeeded} Succeeded / {failed} Failed\n")
    if _str(spec, "completionMode") == "Indexed":
        w.write(0, f"Completed Indexes:\t{_cap_indexes(_str(status, 'completedIndexes'), 50)}\n")
    _pod_template(w, _get(spec, "template"), ctx)


def _cap_indexes(indexes: str, soft_limit: int) -> str:
    if not indexes:
        return "<none>"
    index = soft_limit
    while index < len(indexes) and indexes[index] != ",":
        index += 1
    if index >= len(indexes):
        return indexes
    return indexes[: index + 1] + "..."


def _describe_cron_job(w: _Writer, cj: Obj, ctx: _Context) -> None:
    spec = _map(cj, "spec")
    _meta_header(w, cj)
    _labels_and_annotations(w, cj)
    w.write(0, f"Schedule:\t{_str(spec, 'schedule')}\n")
    w.write(0, f"Concurrency Policy:\t{_str(spec, 'concurrencyPolicy')}\n")
    suspend = _get(spec, "suspend")
    w.write(0, f"Suspend:\t{('True' if suspend else 'False') if isinstance(suspend, bool) else '<unset>'}\n")
    for title, key in (
        ("Successful Job History Limit", "successfulJobsHistoryLimit"),
        ("Failed Job History Limit", "failedJobsHistoryLimit"),
    ):
        value = str(_int(spec, key)) if _has(spec, key) else "<unset>"
        w.write(0, f"{title}:\t{value}\n")
    deadline = (
        f"{_int(spec, 'startingDeadlineSeconds')}s" if _has(spec, "startingDeadlineSeconds") else "<unset>"
    )
    w.write(0, f"Starting Deadline Seconds:\t{deadline}\n")
    job_spec = _map(spec, "jobTemplate", "spec")
    if isinstance(_get(job_spec, "selector"), Mapping):
        w.write(0, f"Selector:\t{_selector_string(_get(job_spec, 'selector'))}\n")
    else:
        w.write(0, "Selector:\t<unset>\n")
    for title, key in (("Parallelism", "parallelism"), ("Completions", "completions")):
        value = str(_int(job_spec, key)) if _has(job_spec, key) else "<unset>"
        w.write(0, f"{title}:\t{value}\n")
    if _has(job_spec, "activeDeadlineSeconds"):
        w.write(0, f"Active Deadline Seconds:\t{_int(job_spec, 'activeDeadlineSeconds')}s\n")
    _pod_template(w, _get(job_spec, "template"), ctx)
    if _has(cj, "status", "lastScheduleTime"):
        w.write(0, f"Last Schedule Time:\t{ctx.time(_get(cj, 'status', 'lastScheduleTime'))}\n")
    else:
        w.write(0, "Last Schedule Time:\t<unset>\n")
    active = _list(cj, "status", "active")
    w.write(0, "Active Jobs:\t")
    w.line(", ".join(_str(job, "name") for job in active) if active else "<none>")


# ---------------------------------------------------------------------------------------------
# Cluster objects


def _taint_text(taint: Obj) -> str:
    key, value, effect = _str(taint, "key"), _str(taint, "value"), _str(taint, "effect")
    if not effect:
        return f"{key}={value}:" if value else key
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def _describe_node(w: _Writer, node: Obj, ctx: _Context) -> None:
    name = _str(node, "metadata", "name")
    status = _map(node, "status")
    w.write(0, f"Name:\t{name}\n")
    w.write(0, f"Roles:\t{','.join(node_roles(node)) or '<none>'}\n")
    _labels_and_annotations(w, node)
    w.write(0, f"CreationTimestamp:\t{ctx.time(_get(node, 'metadata', 'creationTimestamp'))}\n")
    taints = sorted(_list(node, "spec", "taints"), key=lambda t: _str(t, "effect") + "," + _str(t, "key"))
    w.write(0, "Taints:\t")
    if not taints:
        w.line("<none>")
    for index, taint in enumerate(taints):
        if index:
            w.write(0, "\t")
        w.write(0, _taint_text(taint) + "\n")
    w.write(0, f"Unschedulable:\t{_go_value(_get(node, 'spec', 'unschedulable') is True)}\n")
    lease = ctx.related.lease
    if lease is None:
        w.write(0, f'Lease:\tFailed to get lease: leases.coordination.k8s.io "{name}" not found\n')
    else:
        w.write(0, "Lease:\n")
        holder = _str(lease, "spec", "holderIdentity") if _has(lease, "spec", "holderIdentity") else "<unset>"
        w.write(1, f"HolderIdentity:\t{holder}\n")
        for title, key in (("AcquireTime", "acquireTime"), ("RenewTime", "renewTime")):
            value = ctx.time(_get(lease, "spec", key)) if _has(lease, "spec", key) else "<unset>"
            w.write(1, f"{title}:\t{value}\n")
    conditions = _list(status, "conditions")
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(
                1,
                f"{_str(c, 'type')} \t{_str(c, 'status')} \t{ctx.time(_get(c, 'lastHeartbeatTime'))} \t"
                f"{ctx.time(_get(c, 'lastTransitionTime'))} \t{_str(c, 'reason')} \t{_str(c, 'message')}\n",
            )
    w.write(0, "Addresses:\n")
    for address in _list(status, "addresses"):
        w.write(1, f"{_str(address, 'type')}:\t{_str(address, 'address')}\n")
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        resources = _map(status, key)
        if resources:
            w.write(0, f"{title}:\n")
            for resource in sorted(resources):
                w.write(0, f"  {resource}:\t{_go_value(resources[resource])}\n")
    info = _map(status, "nodeInfo")
    w.write(0, "System Info:\n")
    for title, key in (
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ):
        w.write(0, f"  {title}:\t{_str(info, key)}\n")
    if _str(node, "spec", "podCIDR"):
        w.write(0, f"PodCIDR:\t{_str(node, 'spec', 'podCIDR')}\n")
    if _list(node, "spec", "podCIDRs"):
        w.write(0, f"PodCIDRs:\t{','.join(str(c) for c in _list(node, 'spec', 'podCIDRs'))}\n")
    if _str(node, "spec", "providerID"):
        w.write(0, f"ProviderID:\t{_str(node, 'spec', 'providerID')}\n")
    pods = [
        pod
        for pod in ctx.related.pods
        if _str(pod, "spec", "nodeName") == name
        and _str(pod, "status", "phase") not in ("Succeeded", "Failed")
    ]
    _describe_node_resources(w, node, pods, ctx)


def _describe_node_resources(w: _Writer, node: Obj, pods: Sequence[Obj], ctx: _Context) -> None:
    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
    w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
    allocatable = _map(node, "status", "allocatable") or _map(node, "status", "capacity")
    alloc_cpu = _Quantity.parse(allocatable.get("cpu")).milli_value()
    alloc_memory = _Quantity.parse(allocatable.get("memory")).int_value()
    alloc_storage = _Quantity.parse(allocatable.get("ephemeral-storage")).int_value()
    zero = _Quantity(Fraction(0), "")
    total_requests: _ResourceList = {}
    total_limits: _ResourceList = {}
    for pod in pods:
        requests, limits = _pod_requests_and_limits(pod)
        _add_resources(total_requests, requests)
        _add_resources(total_limits, limits)
        cells = []
        for quantity, whole, milli in (
            (requests.get("cpu", zero), alloc_cpu, True),
            (limits.get("cpu", zero), alloc_cpu, True),
            (requests.get("memory", zero), alloc_memory, False),
            (limits.get("memory", zero), alloc_memory, False),
        ):
            cells.append(f"{quantity} ({_percent(quantity, whole, milli=milli)}%)")
        w.write(
            1,
            f"{_str(pod, 'metadata', 'namespace')}\t{_str(pod, 'metadata', 'name')}\t\t{cells[0]}\t{cells[1]}\t"
            f"{cells[2]}\t{cells[3]}\t{ctx.since(_get(pod, 'metadata', 'creationTimestamp'))}\n",
        )
    w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    for resource, whole, milli in (
        ("cpu", alloc_cpu, True),
        ("memory", alloc_memory, False),
        ("ephemeral-storage", alloc_storage, False),
    ):
        request = total_requests.get(resource, zero)
        limit = total_limits.get(resource, zero)
        request_pct = _percent(request, whole, milli=milli) if whole else 0
        limit_pct = _percent(limit, whole, milli=milli) if whole else 0
        w.write(1, f"{resource}\t{request} ({request_pct}%)\t{limit} ({limit_pct}%)\n")
    huge_pages = sorted(r for r in allocatable if r.startswith("hugepages-"))
    standard = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}
    extended = sorted(
        r
        for r in allocatable
        if not r.startswith("hugepages-") and r not in standard and not r.startswith("requests.")
    )
    for resource in huge_pages:
        request = total_requests.get(resource, zero)
        limit = total_limits.get(resource, zero)
        whole = _Quantity.parse(allocatable.get(resource)).int_value()
        request_pct = _percent(request, whole, milli=False) if whole else 0
        limit_pct = _percent(limit, whole, milli=False) if whole else 0
        w.write(1, f"{resource}\t{request} ({request_pct}%)\t{limit} ({limit_pct}%)\n")
    for resource in extended:
        w.write(1, f"{resource}\t{total_requests.get(resource, zero)}\t{total_limits.get(resource, zero)}\n")


def _describe_namespace(w: _Writer, ns: Obj, ctx: _Context) -> None:
    _meta_header(w, ns, namespace=False)
    _labels_and_annotations(w, ns)
    w.write(0, f"Status:\t{_str(ns, 'status', 'phase')}\n")
    conditions = _list(ns, "status", "conditions")
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(
                1,
                f"{_str(c, 'type')}\t{_str(c, 'status')}\t{ctx.time(_get(c, 'lastTransitionTime'))}\t"
                f"{_str(c, 'reason')}\t{_str(c, 'message')}\n",
            )


def _load_balancer_ingress(service: Obj) -> str:
    parts = []
    for ingress in _list(service, "status", "loadBalancer", "ingress"):
        if _str(ingress, "ip"):
            mode = f" ({_str(ingress, 'ipMode')})" if _str(ingress, "ipMode") else ""
            parts.append(_str(ingress, "ip") + mode)
        else:
            parts.append(_str(ingress, "hostname"))
    return ", ".join(parts)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _format_endpoint_slices(slices: Sequence[Obj], port_name: str) -> str:
    if not slices:
        return "<none>"
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for eps in slices:
        endpoints = _list(eps, "endpoints")
        ports = _list(eps, "ports")
        if not ports:
            for endpoint in endpoints:
                if len(shown) == limit:
                    more = True
                if _get(endpoint, "conditions", "ready") is False:
                    continue
                if not more:
                    shown.append(str(_list(endpoint, "addresses")[0]) if _list(endpoint, "addresses") else "")
                count += 1
            continue
        for port in ports:
            if _str(port, "name") != port_name:
                continue
            for endpoint in endpoints:
                if len(shown) == limit:
                    more = True
                if _get(endpoint, "conditions", "ready") is False:
                    continue
                if not more:
                    address = str(_list(endpoint, "addresses")[0]) if _list(endpoint, "addresses") else ""
                    shown.append(_join_host_port(address, _int(port, "port")))
                count += 1
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def _format_endpoints(endpoints: Obj | None, port_name: str) -> str:
    """The Endpoints form of the same cell (kubectl before EndpointSlices)."""
    subsets = _list(endpoints, "subsets")
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit, more, count = 3, False, 0
    for subset in subsets:
        addresses = _list(subset, "addresses")
        ports = _list(subset, "ports")
        if not ports:
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_str(address, "ip"))
            continue
        for port in ports:
            if _str(port, "name") != port_name:
                continue
            count += len(addresses)
            for address in addresses:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(_join_host_port(_str(address, "ip"), _int(port, "port")))
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def _describe_service(w: _Writer, service: Obj, ctx: _Context) -> None:
    spec = _map(service, "spec")
    _meta_header(w, service)
    _labels_and_annotations(w, service)
    w.write(0, f"Selector:\t{format_labels(_map(spec, 'selector'))}\n")
    w.write(0, f"Type:\t{_str(spec, 'type')}\n")
    if _str(spec, "ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{_str(spec, 'ipFamilyPolicy')}\n")
    families = _list(spec, "ipFamilies")
    w.write(0, f"IP Families:\t{','.join(str(f) for f in families) if families else '<none>'}\n")
    w.write(0, f"IP:\t{_str(spec, 'clusterIP')}\n")
    cluster_ips = _list(spec, "clusterIPs")
    w.write(0, f"IPs:\t{','.join(str(ip) for ip in cluster_ips) if cluster_ips else '<none>'}\n")
    if _list(spec, "externalIPs"):
        w.write(0, f"External IPs:\t{','.join(str(ip) for ip in _list(spec, 'externalIPs'))}\n")
    if _str(spec, "loadBalancerIP"):
        w.write(0, f"Desired LoadBalancer IP:\t{_str(spec, 'loadBalancerIP')}\n")
    if _str(spec, "externalName"):
        w.write(0, f"External Name:\t{_str(spec, 'externalName')}\n")
    if _list(service, "status", "loadBalancer", "ingress"):
        w.write(0, f"LoadBalancer Ingress:\t{_load_balancer_ingress(service)}\n")
    for port in _list(spec, "ports"):
        name = _str(port, "name") or "<unset>"
        protocol = _str(port, "protocol") or "TCP"
        w.write(0, f"Port:\t{name}\t{_int(port, 'port')}/{protocol}\n")
        target = _get(port, "targetPort")
        w.write(0, f"TargetPort:\t{_int_or_string(target)}/{protocol}\n")
        if _int(port, "nodePort"):
            w.write(0, f"NodePort:\t{name}\t{_int(port, 'nodePort')}/{protocol}\n")
        if ctx.related.endpoint_slices or ctx.related.endpoints is None:
            endpoints_text = _format_endpoint_slices(ctx.related.endpoint_slices, _str(port, "name"))
        else:
            endpoints_text = _format_endpoints(ctx.related.endpoints, _str(port, "name"))
        w.write(0, f"Endpoints:\t{endpoints_text}\n")
    w.write(0, f"Session Affinity:\t{_str(spec, 'sessionAffinity')}\n")
    if _str(spec, "externalTrafficPolicy"):
        w.write(0, f"External Traffic Policy:\t{_str(spec, 'externalTrafficPolicy')}\n")
    if _str(spec, "internalTrafficPolicy"):
        w.write(0, f"Internal Traffic Policy:\t{_str(spec, 'internalTrafficPolicy')}\n")
    if _int(spec, "healthCheckNodePort"):
        w.write(0, f"HealthCheck NodePort:\t{_int(spec, 'healthCheckNodePort')}\n")
    if _list(spec, "loadBalancerSourceRanges"):
        w.write(
            0,
            f"LoadBalancer Source Ranges:\t{','.join(str(r) for r in _list(spec, 'loadBalancerSourceRanges'))}\n",
        )


def _describe_endpoints(w: _Writer, endpoints: Obj, ctx: _Context) -> None:
    _meta_header(w, endpoints)
    _labels_and_annotations(w, endpoints)
    w.write(0, "Subsets:\n")
    for subset in _list(endpoints, "subsets"):
        addresses = ",".join(_str(a, "ip") for a in _list(subset, "addresses")) or "<none>"
        w.write(1, f"Addresses:\t{addresses}\n")
        not_ready = ",".join(_str(a, "ip") for a in _list(subset, "notReadyAddresses")) or "<none>"
        w.write(1, f"NotReadyAddresses:\t{not_ready}\n")
        ports = _list(subset, "ports")
        if ports:
            w.write(1, "Ports:\n")
            w.write(2, "Name\tPort\tProtocol\n")
            w.write(2, "----\t----\t--------\n")
            for port in ports:
                w.write(
                    2, f"{_str(port, 'name') or '<unset>'}\t{_int(port, 'port')}\t{_str(port, 'protocol')}\n"
                )
        w.write(0, "\n")


def _describe_pod_disruption_budget(w: _Writer, pdb: Obj, ctx: _Context) -> None:
    """kubectl's describePodDisruptionBudgetV1."""
    _meta_header(w, pdb)
    spec = pdb.get("spec") or {}
    if spec.get("minAvailable") is not None:
        w.write(0, f"Min available:\t{spec['minAvailable']}\n")
    elif spec.get("maxUnavailable") is not None:
        w.write(0, f"Max unavailable:\t{spec['maxUnavailable']}\n")
    selector = spec.get("selector")
    w.write(0, f"Selector:\t{format_label_selector(selector) if selector is not None else '<unset>'}\n")
    w.write(0, "Status:\n")
    w.write(2, f"Allowed disruptions:\t{_int(pdb, 'status', 'disruptionsAllowed')}\n")
    w.write(2, f"Current:\t{_int(pdb, 'status', 'currentHealthy')}\n")
    w.write(2, f"Desired:\t{_int(pdb, 'status', 'desiredHealthy')}\n")
    w.write(2, f"Total:\t{_int(pdb, 'status', 'expectedPods')}\n")


def _describe_config_map(w: _Writer, cm: Obj, ctx: _Context) -> None:
    _meta_header(w, cm)
    _labels_and_annotations(w, cm)
    w.write(0, "\nData\n====\n")
    data = _map(cm, "data")
    for key in sorted(data):  # kubectl walks a Go map: any order; sorted is one of them
        w.write(0, f"{key}:\n----\n")
        w.write(0, f"{_go_value(data[key])}\n")
        w.write(0, "\n")
    w.write(0, "\nBinaryData\n====\n")
    binary = _map(cm, "binaryData")
    for key in sorted(binary):
        w.write(0, f"{key}: {_decoded_length(binary[key])} bytes\n")
    w.write(0, "\n")


def _decoded_length(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)


def _describe_secret(w: _Writer, secret: Obj, ctx: _Context) -> None:
    _meta_header(w, secret)
    _labels_and_annotations(w, secret)
    w.write(0, f"\nType:\t{_str(secret, 'type')}\n")
    w.write(0, "\nData\n====\n")
    data = _map(secret, "data")
    for key in sorted(data):
        if key == "token" and _str(secret, "type") == "kubernetes.io/service-account-token":
            try:
                token = base64.b64decode(str(data[key])).decode(errors="replace")
            except (binascii.Error, ValueError):
                token = str(data[key])
            w.write(0, f"{key}:\t{token}\n")
        else:
            w.write(0, f"{key}:\t{_decoded_length(data[key])} bytes\n")


# ---------------------------------------------------------------------------------------------
# Anything else: kubectl's generic (unstructured) describer

_GENERIC_SKIP = frozenset(
    {
        ".metadata.managedFields",
        ".metadata.name",
        ".metadata.namespace",
        ".metadata.labels",
        ".metadata.annotations",
    }
)
_ACRONYMS = frozenset({"API", "URL", "UID", "OSB", "GUID"})


def _camelcase_split(text: str) -> list[str]:
    """fatih/camelcase.Split: runs of one character class, an upper run yielding its last rune."""

    def kind(char: str) -> int:
        if char.islower():
            return 1
        if char.isupper():
            return 2
        if char.isdigit():
            return 3
        return 4

    runs: list[list[str]] = []
    last = 0
    for char in text:
        current = kind(char)
        if runs and current == last:
            runs[-1].append(char)
        else:
            runs.append([char])
        last = current
    for i in range(len(runs) - 1):
        if runs[i][0].isupper() and runs[i + 1][0].islower():
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(run) for run in runs if run]


def smart_label(field_name: str) -> str:
    """kubectl's smartLabelFor: "holderIdentity" -> "Holder Identity", "apiVersion" -> "API Version"."""
    if any(not (char.isalpha() or char == "-") for char in field_name):
        return field_name
    parts = []
    for part in _camelcase_split(field_name):
        if part == "_":
            continue
        if part.upper() in _ACRONYMS:
            parts.append(part.upper())
        else:
            parts.append(_go_title(part))
    return " ".join(parts)


def _go_title(word: str) -> str:
    """strings.Title for one word: upper-case the first letter, leave the rest."""
    return word[:1].upper() + word[1:]


def _unstructured(w: _Writer, level: int, content: Mapping[str, Any], prefix: str) -> None:
    for field_name in sorted(content):
        value = content[field_name]
        path = f"{prefix}.{field_name}"
        if path in _GENERIC_SKIP:
            continue
        if isinstance(value, Mapping):
            w.write(level, f"{smart_label(field_name)}:\n")
            _unstructured(w, level + 1, value, path)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(field_name)}:\n")
            for child in value:
                if isinstance(child, Mapping):
                    _unstructured(w, level + 1, child, path)
                else:
                    w.write(level + 1, f"{_go_value(child)}\n")
        else:
            w.write(level, f"{smart_label(field_name)}:\t{_go_value(value)}\n")


def _describe_generic(w: _Writer, obj: Obj, ctx: _Context) -> None:
    _meta_header(w, obj)
    _labels_and_annotations(w, obj)
    _unstructured(w, 0, obj, "")


# ---------------------------------------------------------------------------------------------
# Public API

_Describer = Callable[[_Writer, Obj, _Context], None]

# kind -> (describer, whether kubectl prints events for it)
_DESCRIBERS: dict[tuple[str, str], tuple[_Describer, bool]] = {
    ("", "Pod"): (_describe_pod, True),
    ("", "Node"): (_describe_node, True),
    ("", "Namespace"): (_describe_namespace, False),
    ("", "Service"): (_describe_service, True),
    ("", "Endpoints"): (_describe_endpoints, True),
    ("", "ConfigMap"): (_describe_config_map, True),
    ("", "Secret"): (_describe_secret, False),
    ("", "ReplicationController"): (_describe_replication_controller, True),
    ("apps", "Deployment"): (_describe_deployment, True),
    ("apps", "ReplicaSet"): (_describe_replica_set, True),
    ("apps", "DaemonSet"): (_describe_daemon_set, True),
    ("apps", "StatefulSet"): (_describe_stateful_set, True),
    ("batch", "Job"): (_describe_job, True),
    ("batch", "CronJob"): (_describe_cron_job, True),
    ("policy", "PodDisruptionBudget"): (_describe_pod_disruption_budget, True),
}


def describe(obj: Obj, events: Sequence[Obj] | None, now: datetime, *, related: Related | None = None) -> str:
    """`kubectl describe` text for `obj`, ending with its Events table ("Events:  <none>" if
    `events` is empty; no Events section when `events` is None, like `--show-events=false`).

    Kinds kubectl has no describer for print generically: metadata, then every field.
    """
    key = (group_of(_str(obj, "apiVersion")), _str(obj, "kind"))
    describer, shows_events = _DESCRIBERS.get(key, (_describe_generic, True))
    ctx = _Context(now=now, related=related or Related())
    w = _Writer()
    describer(w, obj, ctx)
    if shows_events:
        _describe_events(w, events, ctx)
    return w.render()
