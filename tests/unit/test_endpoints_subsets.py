"""The Endpoints controller's pure core: which pods, which addresses, which ports, in what order."""

from __future__ import annotations

from typing import Any

from controller_manager.endpoints import (
    HEADLESS_LABEL,
    TriggerTimeTracker,
    compute_subsets,
    endpoints_labels,
)
from kplane.api import codec
from kplane.api.pb import core_pb2


def service(ports: list[dict[str, Any]] | None = None, **spec: Any) -> core_pb2.Service:
    body = {"metadata": {"name": "web", "namespace": "ns", "creationTimestamp": "2026-11-22T10:00:00Z"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "127.98.0.10",
                     "ports": ports if ports is not None else [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     **spec}}
    return codec.from_dict(body, core_pb2.Service)


def pod(name: str, ip: str, *, ready: bool = True, labels: dict[str, str] | None = None, node: str = "n1",
        ports: list[dict[str, Any]] | None = None, deleting: bool = False, phase: str = "Running",
        ready_at: str = "2026-11-22T10:00:05Z", **spec: Any) -> core_pb2.Pod:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "web"},
                            "creationTimestamp": "2026-11-22T10:00:01Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T10:01:00Z"
    body = {"metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports or []}], **spec},
            "status": {"phase": phase, "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": ready_at}]}}
    return codec.from_dict(body, core_pb2.Pod)


def as_dicts(subsets: list[core_pb2.EndpointSubset]) -> list[dict[str, Any]]:
    return [codec.to_dict(s) for s in subsets]


def ips(subset: dict[str, Any], field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field, [])]


def test_ready_and_not_ready_pods_are_split_and_sorted_by_ip() -> None:
    """Ready pods go to addresses, others to notReadyAddresses; addresses are sorted by IP."""
    pods = [pod("b", "127.248.0.12"), pod("a", "127.248.0.11"), pod("c", "127.248.0.9", ready=False)]
    [subset] = as_dicts(compute_subsets(service(), pods).subsets)
    assert ips(subset) == ["127.248.0.11", "127.248.0.12"]
    assert ips(subset, "notReadyAddresses") == ["127.248.0.9"]
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]
    first = subset["addresses"][0]
    assert first == {"ip": "127.248.0.11", "nodeName": "n1",
                     "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}


def test_pods_without_ip_terminal_terminating_or_unselected_are_left_out() -> None:
    """No podIP, Succeeded/Failed, a deletionTimestamp or other labels: no address."""
    pods = [pod("noip", ""), pod("done", "127.248.0.2", phase="Succeeded"), pod("gone", "127.248.0.3", deleting=True),
            pod("other", "127.248.0.4", labels={"app": "db"}), pod("ok", "127.248.0.5")]
    [subset] = as_dicts(compute_subsets(service(), pods).subsets)
    assert ips(subset) == ["127.248.0.5"] and "notReadyAddresses" not in subset


def test_publish_not_ready_addresses_lists_everyone_as_ready_including_terminating() -> None:
    """publishNotReadyAddresses: not-ready and terminating pods are all in addresses."""
    pods = [pod("a", "127.248.0.1", ready=False), pod("b", "127.248.0.2", deleting=True)]
    [subset] = as_dicts(compute_subsets(service(publishNotReadyAddresses=True), pods).subsets)
    assert ips(subset) == ["127.248.0.1", "127.248.0.2"]


def test_named_target_port_resolves_per_pod_and_missing_names_get_no_address() -> None:
    """A named targetPort is looked up per pod: pods with different numbers form different subsets,
    a pod without the name contributes nothing and is reported."""
    svc = service([{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    pods = [pod("a", "127.248.0.1", ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "127.248.0.2", ports=[{"name": "web", "containerPort": 9090}]),
            pod("c", "127.248.0.3", ports=[{"name": "web", "containerPort": 8080}]),
            pod("d", "127.248.0.4", ports=[{"name": "other", "containerPort": 8080}])]
    computed = compute_subsets(svc, pods)
    got = as_dicts(computed.subsets)
    assert [(ips(s), s["ports"]) for s in got] == [
        (["127.248.0.1", "127.248.0.3"], [{"name": "http", "port": 8080, "protocol": "TCP"}]),
        (["127.248.0.2"], [{"name": "http", "port": 9090, "protocol": "TCP"}]),
    ]
    assert computed.missing_ports == [("d", "http")]


def test_ports_with_the_same_addresses_share_one_subset() -> None:
    """Two service ports served by the same pods are one subset with both ports, sorted by name."""
    svc = service([{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
                   {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    [subset] = as_dicts(compute_subsets(svc, [pod("a", "127.248.0.1"), pod("b", "127.248.0.2")]).subsets)
    assert [p["name"] for p in subset["ports"]] == ["http", "https"]
    assert ips(subset) == ["127.248.0.1", "127.248.0.2"]


def test_headless_service_sets_hostname_when_subdomain_matches() -> None:
    """clusterIP None: pods with spec.hostname and subdomain == service name get hostname."""
    svc = service(clusterIP="None")
    pods = [pod("a", "127.248.0.1", hostname="web-0", subdomain="web"),
            pod("b", "127.248.0.2", hostname="web-1", subdomain="elsewhere")]
    [subset] = as_dicts(compute_subsets(svc, pods).subsets)
    assert [a.get("hostname") for a in subset["addresses"]] == ["web-0", None]
    assert endpoints_labels(svc) == {HEADLESS_LABEL: ""}


def test_headless_service_without_ports_still_lists_addresses() -> None:
    """A headless Service with no ports: one subset of addresses and no ports."""
    svc = service([], clusterIP="None")
    assert as_dicts(compute_subsets(svc, [pod("a", "127.248.0.1")]).subsets) == [
        {"addresses": [{"ip": "127.248.0.1", "nodeName": "n1",
                        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}]


def test_equal_inputs_give_equal_subsets_whatever_the_pod_order() -> None:
    """Deterministic: shuffled pods give the identical protobuf list (so no spurious writes)."""
    pods = [pod(n, f"127.248.0.{i}", ready=i % 2 == 0) for i, n in enumerate("abcdef", start=1)]
    assert compute_subsets(service(), pods).subsets == compute_subsets(service(), list(reversed(pods))).subsets


def test_no_selector_selects_nothing() -> None:
    """A selector-less Service computes no subsets (the controller leaves it alone anyway)."""
    svc = service()
    svc.spec.selector.clear()
    assert compute_subsets(svc, [pod("a", "127.248.0.1")]).subsets == []


def test_trigger_time_is_the_earliest_change_since_the_last_sync() -> None:
    """First sync: the Service's creation; later: the earliest Ready transition among changed pods;
    nothing changed: empty (the annotation is removed on such a write)."""
    tracker = TriggerTimeTracker()
    svc = service()
    a = pod("a", "127.248.0.1", ready_at="2026-11-22T10:00:05Z")
    assert tracker.compute("ns/web", svc, [a]) == "2026-11-22T10:00:00Z"
    assert tracker.compute("ns/web", svc, [a]) == ""
    b = pod("b", "127.248.0.2", ready_at="2026-11-22T10:00:09Z")
    a2 = pod("a", "127.248.0.1", ready=False, ready_at="2026-11-22T10:00:07Z")
    assert tracker.compute("ns/web", svc, [a2, b]) == "2026-11-22T10:00:07Z"
