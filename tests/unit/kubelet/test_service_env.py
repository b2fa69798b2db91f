"""Service environment variables in containers, as Kubernetes' kubelet makes them."""

from __future__ import annotations

from typing import Any

from kplane.api.codec import from_dict
from kplane.api.pb import core_pb2
from kubelet.env import EnvSources, build_env, service_env_for_pod, services_env


def svc(name: str, ns: str = "app", ip: str = "127.98.0.10", ports: list[dict[str, Any]] | None = None,
        **spec: Any) -> core_pb2.Service:
    return from_dict({"metadata": {"name": name, "namespace": ns},
                      "spec": {"clusterIP": ip, "ports": ports if ports is not None else
                               [{"port": 80, "protocol": "TCP"}], **spec}}, core_pb2.Service)


def pod(ns: str = "app", env: list[dict[str, Any]] | None = None, **spec: Any) -> core_pb2.Pod:
    return from_dict({"metadata": {"name": "p", "namespace": ns},
                      "spec": {"containers": [{"name": "c", "image": "x", "env": env or []}], **spec}},
                     core_pb2.Pod)


def test_variables_of_a_service_with_two_ports() -> None:
    """HOST, PORT (first port), PORT_<NAME> per named port and the docker-link variables;
    dashes become underscores and names are upper-cased."""
    s = svc("my-app", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                             {"name": "metrics-port", "port": 9090, "protocol": "TCP"}])
    assert services_env([s]) == {
        "MY_APP_SERVICE_HOST": "127.98.0.10",
        "MY_APP_SERVICE_PORT": "80",
        "MY_APP_SERVICE_PORT_HTTP": "80",
        "MY_APP_SERVICE_PORT_METRICS_PORT": "9090",
        "MY_APP_PORT": "tcp://127.98.0.10:80",
        "MY_APP_PORT_80_TCP": "tcp://127.98.0.10:80",
        "MY_APP_PORT_80_TCP_PROTO": "tcp",
        "MY_APP_PORT_80_TCP_PORT": "80",
        "MY_APP_PORT_80_TCP_ADDR": "127.98.0.10",
        "MY_APP_PORT_9090_TCP": "tcp://127.98.0.10:9090",
        "MY_APP_PORT_9090_TCP_PROTO": "tcp",
        "MY_APP_PORT_9090_TCP_PORT": "9090",
        "MY_APP_PORT_9090_TCP_ADDR": "127.98.0.10",
    }


def test_only_services_of_the_pods_namespace_with_a_cluster_ip() -> None:
    """Headless (None) and unallocated services and other namespaces' services give nothing."""
    services = [svc("web"), svc("headless", ip="None"), svc("pending", ip=""), svc("db", ns="other")]
    env = service_env_for_pod(pod(), services)
    assert {k.split("_")[0] for k in env} == {"WEB"}


def test_enable_service_links_false_keeps_only_the_kubernetes_service() -> None:
    """enableServiceLinks: false drops the namespace's services but keeps default/kubernetes."""
    services = [svc("web"), svc("kubernetes", ns="default", ip="127.98.0.1", ports=[{"name": "https", "port": 443}])]
    env = service_env_for_pod(pod(enableServiceLinks=False), services)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.98.0.1" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert not [k for k in env if k.startswith("WEB_")]
    assert service_env_for_pod(pod(enableServiceLinks=False), [svc("web")]) == {}
    assert "WEB_SERVICE_HOST" in service_env_for_pod(pod(enableServiceLinks=True), services)


def test_a_namesake_kubernetes_service_in_the_pods_namespace_wins_when_links_are_on() -> None:
    """As Kubernetes: the pod's own namespace's `kubernetes` Service replaces default/kubernetes."""
    services = [svc("kubernetes", ns="default", ip="127.98.0.1"), svc("kubernetes", ns="app", ip="127.98.0.77")]
    assert service_env_for_pod(pod(), services)["KUBERNETES_SERVICE_HOST"] == "127.98.0.77"
    assert service_env_for_pod(pod(enableServiceLinks=False), services)["KUBERNETES_SERVICE_HOST"] == "127.98.0.1"


def test_explicit_container_env_wins_and_can_refer_to_service_variables() -> None:
    """A container's own env overrides a service variable; $(WEB_SERVICE_HOST) expands."""
    p = pod(env=[{"name": "WEB_SERVICE_PORT", "value": "8080"}, {"name": "URL", "value": "http://$(WEB_SERVICE_HOST)/"}])
    service = service_env_for_pod(p, [svc("web")])
    env = build_env(p, p.spec.containers[0], EnvSources(), pod_ip="127.248.0.2", host_ip="127.0.248.1",
                    node_name="n", service_env=service, kplane_defaults=False)
    assert env["WEB_SERVICE_PORT"] == "8080"
    assert env["URL"] == "http://127.98.0.10/"
    assert env["WEB_SERVICE_HOST"] == "127.98.0.10" and env["WEB_PORT"] == "tcp://127.98.0.10:80"
