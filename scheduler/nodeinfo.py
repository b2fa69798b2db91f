"""Building and updating the scheduler's per-node view: pod requests, NodeInfo, image names.

Mirrors kube-scheduler's `framework.NodeInfo` bookkeeping (pkg/scheduler/framework/types.go) and
the pod request arithmetic of `k8s.io/component-helpers/resource.PodRequests`:

* a pod's requests are the **sum** of its containers' requests, plus every *sidecar* (an init
  container with `restartPolicy: Always`, which keeps running), taken per resource as the **max**
  with what any init container needs while it runs (its own requests plus the sidecars started
  before it), plus `spec.overhead`. Arithmetic is done on exact `Quantity` values and converted
  at the end (cpu in millicores, everything else rounded up to an integer) as Kubernetes does;
* the *non-zero* variant substitutes 100m cpu / 200Mi memory for each container that does not
  set that request at all (an explicit `0` is kept). Scoring plugins use it so that best-effort
  pods still spread instead of piling onto one "empty" node.

Terminal pods (phase `Succeeded` or `Failed`) hold no resources: `add_pod` ignores them (it
returns False) and `new_node_info` therefore skips them too. A cache that sees a counted pod turn
terminal must call `remove_pod` for it.

Node image names are keyed by `image_key`, a canonical Docker reference
(`nginx` -> `docker.io/library/nginx:latest`), so that a pod's `nginx:1.25` matches a node that
reports `docker.io/library/nginx:1.25`. Upstream only appends `:latest`
(`normalized_image_name`, kept here for reference and tests); full canonicalisation resolves the
mismatch upstream leaves as a TODO and never breaks a match upstream would make.

Invalid quantity strings raise `ValueError` (the apiserver rejects them, so they indicate a bug).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from kplane.api.quantity import Quantity
from kplane.api.validation.names import is_qualified_name
from scheduler.framework import CycleState, Node, NodeInfo, Pod, PodInfo, Resource

DEFAULT_MILLI_CPU_REQUEST = 100  # 0.1 core
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # 200 MiB
DEFAULT_BIND_ALL_HOST_IP = "0.0.0.0"
DEFAULT_PROTOCOL = "TCP"

RESOURCE_CPU = "cpu"
RESOURCE_MEMORY = "memory"
RESOURCE_PODS = "pods"
RESOURCE_EPHEMERAL_STORAGE = "ephemeral-storage"

_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_REPO_PREFIX = "library/"

ResourceList = dict[str, Quantity]
HostPort = tuple[str, str, int]  # (hostIP, protocol, hostPort), sanitized


@functools.lru_cache(maxsize=8192)
def _parse(s: str) -> Quantity:
    # Quantities are immutable, so parsed values can be shared across pods and nodes.
    return Quantity.parse(s)


_NON_ZERO_DEFAULTS: Mapping[str, Quantity] = {
    RESOURCE_CPU: Quantity.from_milli(DEFAULT_MILLI_CPU_REQUEST),
    RESOURCE_MEMORY: Quantity.from_int(DEFAULT_MEMORY_REQUEST),
}


# ----- resource names ----------------------------------------------------------------------


def is_native_resource(name: str) -> bool:
    """No domain prefix (`cpu`) or a `kubernetes.io/` one."""
    return "/" not in name or "kubernetes.io/" in name


def is_extended_resource_name(name: str) -> bool:
    """`example.com/gpu`: a domain-prefixed, non-kubernetes.io, quota-able resource name."""
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


@functools.lru_cache(maxsize=1024)
def is_scalar_resource_name(name: str) -> bool:
    """Resources the scheduler tracks in `Resource.scalar`: extended, hugepages, prefixed
    native (`kubernetes.io/...`) and attachable-volume resources."""
    return (
        name.startswith("hugepages-")
        or name.startswith("attachable-volumes-")
        or "kubernetes.io/" in name
        or is_extended_resource_name(name)
    )


# ----- resource lists ------------------------------------------------------------------------


def parse_resource_list(m: Mapping[str, Any]) -> ResourceList:
    """A protobuf `map<string, Quantity>` (or a plain `{name: "1Gi"}` dict) as parsed Quantities."""
    out: ResourceList = {}
    for name, q in m.items():
        s = q if isinstance(q, str) else q.string
        try:
            out[name] = _parse(s)
        except ValueError as exc:
            raise ValueError(f"invalid quantity {s!r} for resource {name!r}: {exc}") from None
    return out


def _add_list(acc: ResourceList, other: Mapping[str, Quantity]) -> None:
    for name, q in other.items():
        cur = acc.get(name)
        acc[name] = q if cur is None else cur + q


def _max_list(acc: ResourceList, other: Mapping[str, Quantity]) -> None:
    for name, q in other.items():
        cur = acc.get(name)
        if cur is None or q.cmp(cur) > 0:
            acc[name] = q


def _container_requests(container: Any, non_zero: bool) -> ResourceList:
    reqs = parse_resource_list(container.resources.requests)
    if non_zero:
        for name, q in _NON_ZERO_DEFAULTS.items():
            reqs.setdefault(name, q)
    return reqs


def is_restartable_init_container(container: Any) -> bool:
    """A sidecar: an init container with `restartPolicy: Always`."""
    return bool(container.restartPolicy == "Always")


def pod_resource_list(pod: Pod, *, non_zero: bool = False) -> ResourceList:
    """`PodRequests(pod)` as exact quantities per resource name (overhead included).

    With `non_zero`, each container (and init container) that does not set a cpu/memory request
    counts the defaults (100m / 200Mi) instead, as `NonMissingContainerRequests` does upstream.
    """
    spec = pod.spec
    result: ResourceList = {}
    for c in spec.containers:
        _add_list(result, _container_requests(c, non_zero))

    # While init container i runs, the pod needs its requests plus those of the sidecars started
    # before it; sidecars also keep running next to the regular containers.
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for c in spec.initContainers:
        reqs = _container_requests(c, non_zero)
        if is_restartable_init_container(c):
            _add_list(result, reqs)
            _add_list(sidecars, reqs)
            _max_list(init_max, sidecars)
        else:
            combined = dict(reqs)
            _add_list(combined, sidecars)
            _max_list(init_max, combined)
    _max_list(result, init_max)

    if spec.overhead:
        _add_list(result, parse_resource_list(spec.overhead))
    return result


def resource_from_list(rl: Mapping[str, Quantity]) -> Resource:
    """`framework.NewResource`: cpu in millicores, others as integers (rounded up); names that are
    neither cpu/memory/pods/ephemeral-storage nor scalar resources are dropped."""
    r = Resource()
    for name, q in rl.items():
        if name == RESOURCE_CPU:
            r.milli_cpu += q.milli_value()
        elif name == RESOURCE_MEMORY:
            r.memory += q.value()
        elif name == RESOURCE_PODS:
            r.allowed_pod_number += q.value()
        elif name == RESOURCE_EPHEMERAL_STORAGE:
            r.ephemeral_storage += q.value()
        elif is_scalar_resource_name(name):
            r.scalar[name] = r.scalar.get(name, 0) + q.value()
    return r


def resource_value(r: Resource, name: str) -> int:
    """One named resource of a `Resource` in scheduler units (0 when absent)."""
    if name == RESOURCE_CPU:
        return r.milli_cpu
    if name == RESOURCE_MEMORY:
        return r.memory
    if name == RESOURCE_EPHEMERAL_STORAGE:
        return r.ephemeral_storage
    if name == RESOURCE_PODS:
        return r.allowed_pod_number
    return r.scalar.get(name, 0)


def quantity_value(name: str, q: Quantity | None) -> int:
    """A quantity in scheduler units for resource `name`: millicores for cpu, else the value."""
    if q is None:
        return 0
    return q.milli_value() if name == RESOURCE_CPU else q.value()


def pod_requests(pod: Pod) -> Resource:
    """The pod's resource requests (Kubernetes PodRequests: containers, init containers, sidecars,
    overhead) in scheduler units."""
    return resource_from_list(pod_resource_list(pod))


def non_zero_requests(pod: Pod) -> Resource:
    """Like `pod_requests`, but each container without a cpu/memory request counts 100m/200Mi."""
    return resource_from_list(pod_resource_list(pod, non_zero=True))


# ----- pods ----------------------------------------------------------------------------------


def new_pod_info(pod: Pod) -> PodInfo:
    """A PodInfo with its requests and non-zero requests computed once (per pod shape: pods with
    the same resource fields share the arithmetic, see `_requests_of`)."""
    requests, non_zero = _requests_of(_requests_signature(pod), pod)
    return PodInfo(pod=pod, requests=requests.clone(), non_zero_requests=non_zero.clone())


def _requests_signature(pod: Pod) -> tuple[Any, ...]:
    """Every field `pod_resource_list` reads — container and init container resources (requests,
    serialized with their limits), which init containers are sidecars, the overhead. Pods with
    equal signatures have equal requests."""
    spec = pod.spec
    return (
        tuple(c.resources.SerializeToString(deterministic=True) for c in spec.containers),
        tuple((is_restartable_init_container(c), c.resources.SerializeToString(deterministic=True))
              for c in spec.initContainers),
        tuple((name, q.string) for name, q in spec.overhead.items()),
    )


_REQUESTS_CACHE: dict[tuple[Any, ...], tuple[Resource, Resource]] = {}
_REQUESTS_CACHE_SIZE = 4096


def _requests_of(signature: tuple[Any, ...], pod: Pod) -> tuple[Resource, Resource]:
    """(requests, non-zero requests) of a pod with this signature, computed once per signature;
    the Resources are shared: callers copy them."""
    hit = _REQUESTS_CACHE.get(signature)
    if hit is None:
        hit = (pod_requests(pod), non_zero_requests(pod))
        if len(_REQUESTS_CACHE) >= _REQUESTS_CACHE_SIZE:
            _REQUESTS_CACHE.clear()
        _REQUESTS_CACHE[signature] = hit
    return hit


POD_INFO_KEY = "PodInfo"
"""Cycle-state key of the incoming pod's PodInfo: its requests, computed once per cycle for every
plugin that needs them (and for assuming the pod afterwards)."""


def cycle_pod_info(state: CycleState, pod: Pod) -> PodInfo:
    """The incoming pod's PodInfo for this cycle, computed on first use."""
    pod_info: PodInfo | None = state.get(POD_INFO_KEY)
    if pod_info is None or pod_info.pod is not pod:
        pod_info = new_pod_info(pod)
        state.write(POD_INFO_KEY, pod_info)
    return pod_info


_KNOWN_RESOURCES = frozenset({RESOURCE_CPU, RESOURCE_MEMORY, RESOURCE_PODS, RESOURCE_EPHEMERAL_STORAGE})


def pod_request_values(pod_info: PodInfo, names: Iterable[str], *, non_zero: bool) -> list[int]:
    """The pod's request of each named resource in scheduler units (millicores for cpu), from the
    PodInfo's precomputed requests — equal to reading `pod_resource_list(pod, non_zero=...)` per
    name. Names that are neither cpu/memory/pods/ephemeral-storage nor scalar resources are not in a
    `Resource`, so those are read from the quantities."""
    r = pod_info.non_zero_requests if non_zero else pod_info.requests
    out: list[int] = []
    quantities: ResourceList | None = None
    for name in names:
        if name in _KNOWN_RESOURCES:
            out.append(resource_value(r, name))
        elif is_scalar_resource_name(name):
            out.append(r.scalar.get(name, 0))
        else:
            if quantities is None:
                quantities = pod_resource_list(pod_info.pod, non_zero=non_zero)
            out.append(quantity_value(name, quantities.get(name)))
    return out


def is_terminal(pod: Pod) -> bool:
    """Succeeded or Failed: the pod's containers are gone and hold no resources or ports."""
    return pod.status.phase in _TERMINAL_PHASES


def host_ports(pod: Pod) -> list[HostPort]:
    """The host ports a pod binds (`util.GetHostPorts`): ports with hostPort > 0 of its regular
    containers and sidecars, as (hostIP or 0.0.0.0, protocol or TCP, hostPort)."""
    out: list[HostPort] = []
    containers = [c for c in pod.spec.initContainers if is_restartable_init_container(c)]
    containers.extend(pod.spec.containers)
    for c in containers:
        for p in c.ports:
            if p.hostPort > 0:
                out.append((p.hostIP or DEFAULT_BIND_ALL_HOST_IP, p.protocol or DEFAULT_PROTOCOL, int(p.hostPort)))
    return out


def has_pod_affinity(pod: Pod) -> bool:
    """The pod declares pod affinity or pod anti-affinity (required or preferred)."""
    spec = pod.spec
    if not spec.HasField("affinity"):
        return False
    return bool(spec.affinity.HasField("podAffinity") or spec.affinity.HasField("podAntiAffinity"))


def has_required_anti_affinity(pod: Pod) -> bool:
    """The pod has at least one requiredDuringScheduling pod anti-affinity term."""
    spec = pod.spec
    if not spec.HasField("affinity") or not spec.affinity.HasField("podAntiAffinity"):
        return False
    return len(spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution) > 0


# ----- images --------------------------------------------------------------------------------


def normalized_image_name(name: str) -> str:
    """Upstream's normalizedImageName: append `:latest` when the reference has no tag."""
    if name.rfind(":") <= name.rfind("/"):
        name += ":latest"
    return name


def image_key(name: str) -> str:
    """A canonical Docker reference: default domain `docker.io`, `library/` for official images,
    `:latest` when there is neither tag nor digest (`nginx` -> `docker.io/library/nginx:latest`,
    `gcr.io/x` -> `gcr.io/x:latest`)."""
    ref, at, digest = name.partition("@")
    tag = ""
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        ref, tag = ref[:colon], ref[colon:]
    slash = ref.find("/")
    first = ref[:slash] if slash >= 0 else ""
    if slash < 0 or (not any(ch in first for ch in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = _DEFAULT_DOMAIN, ref
    else:
        domain, remainder = first, ref[slash + 1 :]
    if domain == _LEGACY_DEFAULT_DOMAIN:
        domain = _DEFAULT_DOMAIN
    if domain == _DEFAULT_DOMAIN and "/" not in remainder:
        remainder = _OFFICIAL_REPO_PREFIX + remainder
    if not tag and not at:
        tag = ":latest"
    return f"{domain}/{remainder}{tag}{at}{digest}"


def node_image_sizes(node: Node) -> dict[str, int]:
    """`image_key(name) -> sizeBytes` for every name of every image in node.status.images."""
    sizes: dict[str, int] = {}
    for image in node.status.images:
        for name in image.names:
            sizes.setdefault(image_key(name), int(image.sizeBytes))
    return sizes


# ----- node infos ----------------------------------------------------------------------------


def set_node(node_info: NodeInfo, node: Node) -> None:
    """Point `node_info` at a (new version of a) node: refresh allocatable and image sizes."""
    node_info.node = node
    node_info.refresh_node_fields()
    node_info.allocatable = resource_from_list(parse_resource_list(node.status.allocatable))
    node_info.image_sizes = node_image_sizes(node)
    node_info.generation += 1


def new_node_info(node: Node, pods: Iterable[Pod] = ()) -> NodeInfo:
    """A NodeInfo for `node` (allocatable, images) with `pods` counted (terminal ones skipped)."""
    ni = NodeInfo(node=node)
    set_node(ni, node)
    ni.generation = 0
    for pod in pods:
        add_pod(ni, new_pod_info(pod))
    return ni


def add_pod(node_info: NodeInfo, pod_info: PodInfo) -> bool:
    """Count a pod on the node: requests, non-zero requests, host ports, affinity lists.

    Returns False (and changes nothing) for a terminal pod. A pod already counted under the same
    namespace/name is replaced, so re-adding an updated pod never double counts.
    """
    if is_terminal(pod_info.pod):
        return False
    remove_pod(node_info, pod_info.key)
    node_info.pods.append(pod_info)
    if has_pod_affinity(pod_info.pod):
        node_info.pods_with_affinity.append(pod_info)
    if has_required_anti_affinity(pod_info.pod):
        node_info.pods_with_required_anti_affinity.append(pod_info)
    node_info.requested.add(pod_info.requests)
    node_info.non_zero_requested.add(pod_info.non_zero_requests)
    node_info.used_ports.update(host_ports(pod_info.pod))
    node_info.generation += 1
    return True


def remove_pod(node_info: NodeInfo, pod_key: str) -> bool:
    """Stop counting the pod `namespace/name` on the node; False when it was not counted."""
    index = next((i for i, p in enumerate(node_info.pods) if p.key == pod_key), None)
    if index is None:
        return False
    pi = node_info.pods.pop(index)
    node_info.pods_with_affinity = [p for p in node_info.pods_with_affinity if p is not pi]
    node_info.pods_with_required_anti_affinity = [
        p for p in node_info.pods_with_required_anti_affinity if p is not pi
    ]
    node_info.requested.sub(pi.requests)
    node_info.non_zero_requested.sub(pi.non_zero_requests)
    if host_ports(pi.pod):
        # Rebuild rather than discard: another pod may bind the same (ip, protocol, port) entry
        # (e.g. two pods bound with spec.nodeName, which bypasses the NodePorts filter).
        node_info.used_ports = {hp for p in node_info.pods for hp in host_ports(p.pod)}
    node_info.generation += 1
    return True
