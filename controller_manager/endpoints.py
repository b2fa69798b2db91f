"""The Endpoints controller (Kubernetes' ``pkg/controller/endpoint``).

For every Service with a selector it keeps an Endpoints object of the same name listing the pods
behind it; the node proxies (``proxy/``) forward service traffic to those addresses.

- **Which pods.** Pods in the Service's namespace matching ``spec.selector`` that have a
  ``status.podIP``, are not terminal (Succeeded/Failed) and are not terminating (a
  ``deletionTimestamp`` drops a pod at once, so proxies stop sending it new connections while it
  shuts down) — unless ``publishNotReadyAddresses``, which keeps terminating pods and lists every
  pod as ready.
- **Ready or not.** A pod whose Ready condition is True goes into ``addresses``, any other into
  ``notReadyAddresses``. Each address carries ``ip``, ``nodeName`` and ``targetRef`` (kind Pod,
  namespace, name, uid); a headless Service (``clusterIP: None``) also gets ``hostname`` for pods
  whose ``spec.hostname`` is set and whose ``spec.subdomain`` is the Service's name.
- **Ports per pod.** A numeric ``targetPort`` is used as is; a named one is looked up in the
  pod's container ports (same name and protocol). A pod that does not declare the name gives
  no address for that port, as in Kubernetes; kplane says so in a warning log line and a
  ``FailedToFindPort`` Warning event on the Service (once per change of the set of such pods).
- **Subsets.** Addresses sharing the same set of ports form one subset (Kubernetes'
  ``RepackSubsets``); addresses are sorted by IP then pod UID, ports by name, port and
  protocol, subsets by their ports — so equal inputs always give equal objects.
- **Writes.** Nothing is written when subsets and labels (the Service's, plus
  ``service.kubernetes.io/headless`` for a headless Service) are unchanged. A write sets
  ``endpoints.kubernetes.io/last-change-trigger-time`` to the earliest change it reflects (a
  pod's Ready transition or creation, the Service's creation), or removes it when the write was
  not caused by such a change.
- **Lifecycle.** A deleted Service takes its Endpoints with it. Selector-less Services are left
  alone (users manage their Endpoints), so are ExternalName Services. At start every Endpoints
  object is looked at once (``checkLeftoverEndpoints``): those without a Service are deleted.

Reconciliation is per Service key (``namespace/name``); pod events are mapped to the keys of
the Services that select the pod (before and after a label change).

**kplane difference:** a Service stored with an empty selector (``selector: {}``) is treated as
selector-less; protobuf cannot tell an empty map from an absent one (Kubernetes would select every
pod of the namespace).
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.podcontrol import is_pod_ready, namespace_terminating
from kplane.api import errors as api
from kplane.api.codec import format_time
from kplane.api.pb import core_pb2
from kplane.api.resources import ResourceType, resolve
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, Informer, ResourceEventHandlerFuncs
from kplane.client.store import NAMESPACE_INDEX, meta_namespace_key, split_key
from kplane.logs import get_logger

SERVICES: ResourceType = resolve("services")
ENDPOINTS: ResourceType = resolve("endpoints")
PODS: ResourceType = resolve("pods")

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
# Leader-election records kept in Endpoints by old components: never touched (Kubernetes' check).
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
CLUSTER_IP_NONE = "None"


# -- the pure part: subsets from a Service and its pods -------------------------------------------

@dataclass(frozen=True)
class PortKey:
    name: str
    port: int
    protocol: str
    app_protocol: str


@dataclass
class Computed:
    subsets: list[core_pb2.EndpointSubset]
    # (pod name, service port name or number) for named target ports a pod does not declare
    missing_ports: list[tuple[str, str]]


def selects(service: core_pb2.Service, pod: core_pb2.Pod) -> bool:
    """The Service has a selector and the pod's labels match it (equality on every key)."""
    selector = service.spec.selector
    if not selector:
        return False
    labels = pod.metadata.labels
    return all(labels.get(k) == v for k, v in selector.items())


def should_pod_be_in_endpoints(pod: core_pb2.Pod, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``: a pod IP, not terminal, not terminating (unless tolerated)."""
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    if not pod.status.podIP:
        return False
    return include_terminating or not pod.metadata.HasField("deletionTimestamp")


def find_port(pod: core_pb2.Pod, sp: core_pb2.ServicePort) -> int | None:
    """``FindPort``: a numeric targetPort as is, a named one from the pod's container ports
    (name and protocol must match); None when the pod does not declare it."""
    target = sp.targetPort
    protocol = sp.protocol or "TCP"
    if sp.HasField("targetPort") and target.type == 1:
        name = target.strVal
        for container in list(pod.spec.containers) + [c for c in pod.spec.initContainers
                                                      if c.restartPolicy == "Always"]:
            for cp in container.ports:
                if cp.name == name and (cp.protocol or "TCP") == protocol:
                    return int(cp.containerPort)
        return None
    if sp.HasField("targetPort") and target.intVal:
        return int(target.intVal)
    return int(sp.port)  # the apiserver defaults targetPort to port; be safe when it did not


def endpoint_address(service: core_pb2.Service, pod: core_pb2.Pod) -> core_pb2.EndpointAddress:
    addr = core_pb2.EndpointAddress(ip=pod.status.podIP)
    if pod.spec.nodeName:
        addr.nodeName = pod.spec.nodeName
    ref = addr.targetRef
    ref.kind, ref.namespace, ref.name, ref.uid = "Pod", pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
    if (pod.spec.hostname and pod.spec.subdomain == service.metadata.name
            and service.spec.clusterIP == CLUSTER_IP_NONE):
        addr.hostname = pod.spec.hostname
    return addr


def compute_subsets(service: core_pb2.Service, pods: list[core_pb2.Pod]) -> Computed:
    """The Endpoints subsets for ``service`` given the pods of its namespace (unfiltered)."""
    publish_not_ready = service.spec.publishNotReadyAddresses
    headless = service.spec.clusterIP == CLUSTER_IP_NONE
    # (ip, uid) -> (address, ready); per port set of (ip, uid)
    addresses: dict[tuple[str, str], tuple[core_pb2.EndpointAddress, bool]] = {}
    by_port: dict[PortKey, set[tuple[str, str]]] = {}
    missing: list[tuple[str, str]] = []
    no_ports = PortKey("", -1, "", "")  # sentinel: a headless Service without ports
    for pod in pods:
        if not selects(service, pod) or not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        addr = endpoint_address(service, pod)
        ready = publish_not_ready or is_pod_ready(pod)
        key = (addr.ip, pod.metadata.uid)
        keys: list[PortKey] = []
        if not service.spec.ports and headless:
            keys.append(no_ports)
        for sp in service.spec.ports:
            port = find_port(pod, sp)
            if port is None:
                missing.append((pod.metadata.name, sp.name or str(sp.port)))
                continue
            keys.append(PortKey(sp.name, port, sp.protocol or "TCP", sp.appProtocol))
        if not keys:
            continue
        previous = addresses.get(key)
        addresses[key] = (addr, ready or (previous is not None and previous[1]))  # ready wins
        for pk in keys:
            by_port.setdefault(pk, set()).add(key)
    # Group ports by identical address sets (RepackSubsets), then sort everything.
    groups: dict[frozenset[tuple[str, str]], list[PortKey]] = {}
    for pk, members in by_port.items():
        groups.setdefault(frozenset(members), []).append(pk)
    subsets: list[tuple[list[PortKey], core_pb2.EndpointSubset]] = []
    for group, ports in groups.items():
        ports.sort(key=lambda p: (p.name, p.port, p.protocol, p.app_protocol))
        subset = core_pb2.EndpointSubset()
        for key in sorted(group):
            addr, ready = addresses[key]
            (subset.addresses if ready else subset.notReadyAddresses).add().CopyFrom(addr)
        for pk in ports:
            if pk == no_ports:
                continue
            ep = subset.ports.add(name=pk.name, port=pk.port, protocol=pk.protocol)
            if pk.app_protocol:
                ep.appProtocol = pk.app_protocol
            if not pk.name:
                ep.ClearField("name")
        subsets.append((ports, subset))
    subsets.sort(key=lambda item: [(p.name, p.port, p.protocol, p.app_protocol) for p in item[0]])
    return Computed([s for _, s in subsets], missing)


def endpoints_labels(service: core_pb2.Service) -> dict[str, str]:
    labels = dict(service.metadata.labels)
    if service.spec.clusterIP == CLUSTER_IP_NONE:
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


def pod_trigger_time(pod: core_pb2.Pod) -> str:
    """When the pod last changed in a way that matters: its Ready transition, else its creation."""
    for cond in pod.status.conditions:
        if cond.type == "Ready" and cond.HasField("lastTransitionTime"):
            return format_time(cond.lastTransitionTime)
    return format_time(pod.metadata.creationTimestamp) if pod.metadata.HasField("creationTimestamp") else ""


class TriggerTimeTracker:
    """Kubernetes' ``TriggerTimeTracker``: per Service, the trigger times seen at its last sync;
    the annotation is the earliest trigger time among pods (and the Service) that changed since."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, dict[str, str]]] = {}

    def compute(self, key: str, service: core_pb2.Service, pods: list[core_pb2.Pod]) -> str:
        service_time = format_time(service.metadata.creationTimestamp) \
            if service.metadata.HasField("creationTimestamp") else ""
        prev_service, prev_pods = self._seen.get(key, ("", {}))
        times: list[str] = []
        if key not in self._seen and service_time:
            times.append(service_time)
        current: dict[str, str] = {}
        for pod in pods:
            t = pod_trigger_time(pod)
            current[pod.metadata.uid] = t
            if t and prev_pods.get(pod.metadata.uid) != t:
                times.append(t)
        self._seen[key] = (service_time or prev_service, current)
        return min(times) if times else ""

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)


# -- the controller ----------------------------------------------------------------------------------

class EndpointsController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.recorder = ctx.recorder("endpoint-controller")
        self.log = get_logger(component="controller-manager", controller="endpoints")
        self.services: Informer = ctx.factory.informer_for(SERVICES)
        self.pods: Informer = ctx.factory.informer_for(PODS)
        self.endpoints: Informer = ctx.factory.informer_for(ENDPOINTS)
        self.controller = Controller("endpoints", self.sync, workers=ctx.workers)
        self.triggers = TriggerTimeTracker()
        self._missing_reported: dict[str, frozenset[tuple[str, str]]] = {}
        self._leftovers_checked = False
        self.services.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._service_changed, on_update=lambda old, new: self._service_changed(new),
            on_delete=self._service_changed))
        self.pods.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted))
        self.endpoints.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._endpoints_added, on_delete=self._endpoints_deleted))
        self.controller.informers.extend([self.services, self.pods, self.endpoints])

    # -- handlers: they only enqueue Service keys ---------------------------------------------------

    def _service_changed(self, obj: Message | DeletedFinalStateUnknown) -> None:
        svc = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.controller.queue.add(meta_namespace_key(svc))

    def _services_of(self, pod: core_pb2.Pod) -> set[str]:
        return {meta_namespace_key(s) for s in self.services.store.by_index(NAMESPACE_INDEX, pod.metadata.namespace)
                if isinstance(s, core_pb2.Service) and selects(s, pod)}

    def _pod_added(self, pod: Message) -> None:
        assert isinstance(pod, core_pb2.Pod)
        for key in self._services_of(pod):
            self.controller.queue.add(key)

    def _pod_updated(self, old: Message, new: Message) -> None:
        assert isinstance(old, core_pb2.Pod) and isinstance(new, core_pb2.Pod)
        if not _endpoints_relevant_change(old, new):
            return
        keys = self._services_of(new)
        if dict(old.metadata.labels) != dict(new.metadata.labels):
            keys |= self._services_of(old)
        for key in keys:
            self.controller.queue.add(key)

    def _pod_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if isinstance(pod, core_pb2.Pod):
            self._pod_added(pod)

    def _endpoints_added(self, obj: Message) -> None:
        # Only until the first sync: the leftover check (Endpoints whose Service is gone).
        if not self._leftovers_checked:
            self.controller.queue.add(meta_namespace_key(obj))

    def _endpoints_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        ep = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.controller.queue.add(meta_namespace_key(ep))  # recreated if its Service still wants it

    # -- reconcile --------------------------------------------------------------------------------

    async def sync(self, key: str) -> Result | None:
        self._leftovers_checked = True
        namespace, name = split_key(key)
        if self.may_write is not None and not self.may_write():
            return None
        service = self.services.store.get_by_key(key)
        if service is None:
            self.triggers.forget(key)
            self._missing_reported.pop(key, None)
            current = self.endpoints.store.get_by_key(key)
            if current is None or LEADER_ANNOTATION in current.metadata.annotations:  # type: ignore[attr-defined]
                return None
            try:
                await self.client.delete(ENDPOINTS, name, namespace=namespace,
                                         uid=current.metadata.uid)  # type: ignore[attr-defined]
                self.log.info("endpoints deleted: their service is gone", key=key)
            except (api.NotFound, api.Conflict):
                pass
            return None
        assert isinstance(service, core_pb2.Service)
        if not service.spec.selector or service.spec.type == "ExternalName":
            return None  # the user manages these Endpoints (or there are none)
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, namespace) if isinstance(p, core_pb2.Pod)]
        computed = compute_subsets(service, pods)
        self._report_missing_ports(key, service, computed.missing_ports)
        trigger = self.triggers.compute(key, service, [p for p in pods if selects(service, p)])
        labels = endpoints_labels(service)
        current = self.endpoints.store.get_by_key(key)
        if current is not None:
            assert isinstance(current, core_pb2.Endpoints)
            if list(current.subsets) == computed.subsets and dict(current.metadata.labels) == labels:
                return None
            new = core_pb2.Endpoints()
            new.CopyFrom(current)
            del new.subsets[:]
        else:
            new = core_pb2.Endpoints()
            new.metadata.name, new.metadata.namespace = name, namespace
        new.subsets.extend(computed.subsets)
        new.metadata.labels.clear()
        new.metadata.labels.update(labels)
        if trigger:
            new.metadata.annotations[LAST_CHANGE_TRIGGER_TIME] = trigger
        else:
            new.metadata.annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
        ready = sum(len(s.addresses) for s in computed.subsets)
        not_ready = sum(len(s.notReadyAddresses) for s in computed.subsets)
        try:
            if current is None:
                written = await self.client.create(ENDPOINTS, new, namespace=namespace)
            else:
                written = await self.client.update(ENDPOINTS, new, namespace=namespace)
        except api.AlreadyExists:
            return Result(requeue=True)  # our cache is behind: look again once it has the object
        except api.Conflict:
            return Result(requeue=True)  # someone wrote in between: recompute from the newer copy
        except api.APIError as exc:
            if namespace_terminating(exc):
                return None
            raise
        self.log.info("endpoints updated", key=key,
                      resourceVersion=written.metadata.resourceVersion,  # type: ignore[attr-defined]
                      ready=ready, notReady=not_ready, created=current is None)
        return None

    def _report_missing_ports(self, key: str, service: core_pb2.Service, missing: list[tuple[str, str]]) -> None:
        seen = frozenset(missing)
        if self._missing_reported.get(key, frozenset()) == seen:
            return
        self._missing_reported[key] = seen
        if not seen:
            return
        listing = ", ".join(f"{pod} (port {port})" for pod, port in sorted(seen))
        message = (f"pods do not declare the named targetPort of the service and get no endpoint for it: "
                   f"{listing}")
        self.log.warning("named target port not found in pods", key=key, pods=listing)
        self.recorder.event(service, "Warning", "FailedToFindPort", message)


def _endpoints_relevant_change(old: core_pb2.Pod, new: core_pb2.Pod) -> bool:
    """Whether a pod update can change any Endpoints (Kubernetes' ``podEndpointsChanged``)."""
    return (old.status.podIP != new.status.podIP
            or is_pod_ready(old) != is_pod_ready(new)
            or old.status.phase != new.status.phase
            or dict(old.metadata.labels) != dict(new.metadata.labels)
            or old.metadata.HasField("deletionTimestamp") != new.metadata.HasField("deletionTimestamp")
            or old.spec.nodeName != new.spec.nodeName
            or old.spec.hostname != new.spec.hostname
            or old.spec.subdomain != new.spec.subdomain
            or pod_trigger_time(old) != pod_trigger_time(new)
            or old.metadata.uid != new.metadata.uid)


def new(ctx: ControllerContext) -> Controller:
    return EndpointsController(ctx).controller


__all__ = ["EndpointsController", "compute_subsets", "find_port", "new", "selects"]
