"""kubelet.env: Kubernetes' environment order, precedence, expansion and error wording (pure core)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kplane.api.codec import from_dict
from kplane.api.pb import core_pb2
from kplane.api.quantity import Quantity
from kubelet.env import (
    CreateContainerConfigError,
    EnvSources,
    build_env,
    container_resource_value,
    expand,
    go_quote,
    pod_field_value,
)


def make_pod(container: dict[str, Any], **meta: Any) -> core_pb2.Pod:
    metadata = {"name": "web-1", "namespace": "prod", "uid": "u-123", **meta}
    return from_dict({"metadata": metadata, "spec": {"nodeName": "node-a", "containers": [{"name": "c", **container}]}},
                     core_pb2.Pod)


def configmap(name: str, data: dict[str, str]) -> core_pb2.ConfigMap:
    return from_dict({"metadata": {"name": name}, "data": data}, core_pb2.ConfigMap)


def secret(name: str, data: dict[str, bytes]) -> core_pb2.Secret:
    sec = core_pb2.Secret()
    sec.metadata.name = name
    for k, v in data.items():
        sec.data[k] = v
    return sec


def env_of(container: dict[str, Any], sources: EnvSources | None = None, *, defaults: bool = False,
           **kwargs: Any) -> dict[str, str]:
    pod = make_pod(container, **kwargs.pop("meta", {}))
    return build_env(pod, pod.spec.containers[0], sources or EnvSources(), pod_ip="127.244.0.5",
                     host_ip="127.0.0.1", node_name="node-a", kplane_defaults=defaults,
                     node_allocatable={"cpu": Quantity.parse("4"), "memory": Quantity.parse("8Gi")}, **kwargs)


# -- expansion (cases from Kubernetes' expand_test.go) --------------------------------------------

MAPPING = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize(("given", "want"), [
    ("$(VAR_A)", "A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
    ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
    ("$(VAR_REF)", "$(VAR_A)"),  # values are not expanded again
    ("$(VAR_EMPTY)", ""),
    ("$(VAR_DNE)", "$(VAR_DNE)"),
    ("$$(VAR_A)", "$(VAR_A)"),
    ("$$$(VAR_A)", "$A"),
    ("$$$$(VAR_A)", "$$(VAR_A)"),
    ("$(VAR_A", "$(VAR_A"),
    ("$(", "$("),
    ("$$", "$"),
    ("$", "$"),
    ("$VAR_A", "$VAR_A"),
    ("$()", "$()"),
    ("$(VAR_A)$", "A$"),
    ("x$(VAR_A)y$(VAR_B", "xAy$(VAR_B"),
])
def test_expand(given: str, want: str) -> None:
    assert expand(given, MAPPING) == want


def test_expand_with_function() -> None:
    assert expand("$(X)-$(Y)", lambda name: name.lower()) == "x-y"


# -- order and precedence ---------------------------------------------------------------------------

def test_env_from_in_order_then_env_overrides() -> None:
    sources = EnvSources(
        configmaps={"a": configmap("a", {"K1": "a1", "K2": "a2"}), "b": configmap("b", {"K2": "b2"})},
        secrets={"s": secret("s", {"PASSWORD": b"hunter2"})},
    )
    env = env_of({
        "envFrom": [{"configMapRef": {"name": "a"}}, {"configMapRef": {"name": "b"}},
                    {"secretRef": {"name": "s"}, "prefix": "DB_"}],
        "env": [{"name": "K1", "value": "explicit"}],
    }, sources)
    assert env == {"K1": "explicit", "K2": "b2", "DB_PASSWORD": "hunter2"}


def test_value_expansion_uses_previous_vars_and_service_env() -> None:
    sources = EnvSources(configmaps={"a": configmap("a", {"FROM_CM": "cm"})})
    env = env_of({
        "envFrom": [{"configMapRef": {"name": "a"}}],
        "env": [
            {"name": "LATER_REF", "value": "[$(DEFINED_LATER)]"},
            {"name": "DEFINED_LATER", "value": "x"},
            {"name": "BOTH", "value": "$(FROM_CM)/$(DEFINED_LATER)/$(SVC_HOST)/$(NOPE)/$$(FROM_CM)"},
        ],
    }, sources, service_env={"SVC_HOST": "10.0.0.1", "FROM_CM": "shadowed"})
    assert env["LATER_REF"] == "[$(DEFINED_LATER)]"
    assert env["BOTH"] == "cm/x/10.0.0.1/$(NOPE)/$(FROM_CM)"
    assert env["SVC_HOST"] == "10.0.0.1"
    assert env["FROM_CM"] == "cm"  # the pod's own value wins over a service variable


def test_value_from_is_not_expanded() -> None:
    sources = EnvSources(configmaps={"a": configmap("a", {"k": "$(A)"})})
    env = env_of({"env": [{"name": "A", "value": "1"},
                          {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "k"}}}]}, sources)
    assert env["B"] == "$(A)"


def test_empty_value_and_later_duplicate() -> None:
    env = env_of({"env": [{"name": "X", "value": "1"}, {"name": "E"}, {"name": "X", "value": "$(X)2"}]})
    assert env == {"X": "12", "E": ""}


def test_invalid_env_from_keys_are_skipped_and_reported() -> None:
    sources = EnvSources(configmaps={"a": configmap("a", {"GOOD": "1", "a=b": "2"})},
                         secrets={"s": secret("s", {"ok.key": b"3"})})
    warnings: list[str] = []
    env = env_of({"envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s"}}]}, sources,
                 warnings=warnings)
    assert env == {"GOOD": "1", "ok.key": "3"}
    assert warnings == ["Keys [a=b] from the EnvFrom configMap prod/a were skipped since they are considered "
                        "invalid environment variable names."]


def test_secret_bytes_round_trip() -> None:
    sources = EnvSources(secrets={"s": secret("s", {"bin": b"\xff\xfeok", "utf": "héllo".encode()})})
    env = env_of({"env": [{"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "bin"}}},
                          {"name": "U", "valueFrom": {"secretKeyRef": {"name": "s", "key": "utf"}}}]}, sources)
    assert env["U"] == "héllo"
    assert env["B"].encode("utf-8", "surrogateescape") == b"\xff\xfeok"


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("container", "message"), [
    ({"envFrom": [{"configMapRef": {"name": "nosuch"}}]}, 'configmap "nosuch" not found'),
    ({"envFrom": [{"secretRef": {"name": "nosuch"}}]}, 'secret "nosuch" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nosuch", "key": "k"}}}]},
     'configmap "nosuch" not found'),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nosuch", "key": "k"}}}]},
     'secret "nosuch" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "missing"}}}]},
     "couldn't find key missing in ConfigMap prod/cm"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "missing"}}}]},
     "couldn't find key missing in Secret prod/sec"),
    ({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}]},
     "unsupported fieldPath: spec.restartPolicy"),
    ({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]},
     "field label not supported: spec.bogus"),
    ({"env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]},
     "unsupported container resource : limits.gpu"),
])
def test_errors(container: dict[str, Any], message: str) -> None:
    sources = EnvSources(configmaps={"cm": configmap("cm", {"k": "v"})}, secrets={"sec": secret("sec", {"k": b"v"})})
    with pytest.raises(CreateContainerConfigError) as info:
        env_of(container, sources)
    assert str(info.value) == message
    assert info.value.reason == "CreateContainerConfigError"


def test_optional_sources_are_skipped() -> None:
    sources = EnvSources(configmaps={"cm": configmap("cm", {"k": "v"})}, secrets={"sec": secret("sec", {})})
    env = env_of({
        "envFrom": [{"configMapRef": {"name": "nosuch", "optional": True}},
                    {"secretRef": {"name": "nosuch", "optional": True}}],
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nosuch", "key": "k", "optional": True}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nokey", "optional": True}}},
            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "nokey", "optional": True}}},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "nosuch", "key": "k", "optional": True}}},
            {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": True}}},
        ],
    }, sources)
    assert env == {"E": "v"}


# -- downward API ----------------------------------------------------------------------------------

def field_env(path: str, **meta: Any) -> str:
    return env_of({"env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}}]}, meta=meta)["V"]


def test_field_refs() -> None:
    meta = {"labels": {"app": "web", "tier": "front"}, "annotations": {"note": 'say "hi"\n'}}
    assert field_env("metadata.name") == "web-1"
    assert field_env("metadata.namespace") == "prod"
    assert field_env("metadata.uid") == "u-123"
    assert field_env("metadata.labels['app']", **meta) == "web"
    assert field_env("metadata.labels['missing']", **meta) == ""
    assert field_env("metadata.annotations['note']", **meta) == 'say "hi"\n'
    assert field_env("metadata.labels", **meta) == 'app="web"\ntier="front"'
    assert field_env("metadata.annotations", **meta) == 'note="say \\"hi\\"\\n"'
    assert field_env("spec.nodeName") == "node-a"
    assert field_env("spec.serviceAccountName") == ""
    assert field_env("status.podIP") == "127.244.0.5"
    assert field_env("status.podIPs") == "127.244.0.5"
    assert field_env("status.hostIP") == "127.0.0.1"


def test_volume_field_refs_are_metadata_only() -> None:
    pod = make_pod({})
    with pytest.raises(CreateContainerConfigError, match=re.escape("unsupported fieldPath: status.podIP")):
        pod_field_value(pod, core_pb2.ObjectFieldSelector(fieldPath="status.podIP"))
    assert pod_field_value(pod, core_pb2.ObjectFieldSelector(fieldPath="metadata.name")) == "web-1"


@pytest.mark.parametrize(("resources", "resource", "divisor", "want"), [
    ({"limits": {"cpu": "500m"}}, "limits.cpu", None, "1"),  # rounded up
    ({"limits": {"cpu": "500m"}}, "limits.cpu", "1m", "500"),
    ({"limits": {"cpu": "1500m"}}, "limits.cpu", "100m", "15"),
    ({"requests": {"cpu": "250m"}}, "requests.cpu", "1m", "250"),
    ({"limits": {"memory": "64Mi"}}, "limits.memory", "1Mi", "64"),
    ({"limits": {"memory": "64Mi"}}, "limits.memory", None, str(64 * 1024 * 1024)),
    ({"limits": {"memory": "1G"}}, "limits.memory", "1Gi", "1"),  # 0.93 rounded up
    ({"requests": {"memory": "100M"}}, "requests.memory", "1k", "100000"),
    ({}, "limits.cpu", None, "4"),  # unset limit: node allocatable
    ({}, "limits.memory", "1Gi", "8"),
    ({}, "requests.cpu", None, "0"),  # unset request: zero
])
def test_resource_field_refs(resources: dict[str, Any], resource: str, divisor: str | None, want: str) -> None:
    ref: dict[str, Any] = {"resource": resource}
    if divisor:
        ref["divisor"] = divisor
    env = env_of({"resources": resources, "env": [{"name": "V", "valueFrom": {"resourceFieldRef": ref}}]})
    assert env["V"] == want


def test_container_resource_value_direct() -> None:
    ctr = from_dict({"name": "c", "resources": {"limits": {"cpu": "2"}}}, core_pb2.Container)
    sel = from_dict({"resource": "limits.cpu", "divisor": "1m"}, core_pb2.ResourceFieldSelector)
    assert container_resource_value(sel, ctr, {}) == "2000"


# -- kplane additions ------------------------------------------------------------------------------

def test_kplane_defaults_added_when_undefined() -> None:
    env = env_of({"env": [{"name": "POD_IP", "value": "mine"}]}, defaults=True)
    assert env == {"POD_IP": "mine", "POD_NAME": "web-1", "POD_NAMESPACE": "prod", "NODE_NAME": "node-a",
                   "HOSTNAME": "web-1"}


def test_kplane_defaults_hostname_from_spec() -> None:
    pod = from_dict({"metadata": {"name": "p", "namespace": "d"},
                     "spec": {"hostname": "box", "containers": [{"name": "c"}]}}, core_pb2.Pod)
    env = build_env(pod, pod.spec.containers[0], EnvSources(), pod_ip="127.0.0.9", host_ip="127.0.0.1",
                    node_name="n1")
    assert env["HOSTNAME"] == "box"
    assert env["NODE_NAME"] == "n1"  # the pod is not bound in the object yet: the kubelet's node name
    assert env["POD_IP"] == "127.0.0.9"


def test_no_service_env_by_default() -> None:
    assert env_of({}) == {}


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\t\x01') == '"a\\"b\\\\c\\n\\t\\x01"'
