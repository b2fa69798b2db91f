"""Defaulting tables: Kubernetes JSON in, the object a real apiserver would store out."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from typing import Any

import pytest

from kplane.api.defaults import (
    apply_defaults,
    default_pull_policy,
    image_tag,
    job_prepare_for_create,
    service_prepare_for_update,
)

# `kubectl create deployment web --image=nginx --dry-run=client -o json` (kubectl 1.32).
KUBECTL_DEPLOYMENT: dict[str, Any] = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
        },
        "strategy": {},
    },
    "status": {},
}

# What `kubectl get deployment web -o json` shows for it on Kubernetes (minus server-set metadata/status).
DEFAULTED_DEPLOYMENT: dict[str, Any] = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx",
                        "resources": {},
                        "imagePullPolicy": "Always",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler",
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
    "status": {},
}


def defaulted(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    apply_defaults(kind, out)
    return out


def pod_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    spec.update(extra)
    return spec


def test_minimal_deployment_matches_kubernetes_defaults() -> None:
    """A kubectl-generated Deployment defaults to exactly what Kubernetes stores."""
    assert defaulted("Deployment", KUBECTL_DEPLOYMENT) == DEFAULTED_DEPLOYMENT


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_real_kubectl_client_output_defaults_like_kubernetes() -> None:
    """The real kubectl's client dry-run output, once defaulted, equals the Kubernetes-stored Deployment."""
    out = subprocess.run(
        ["kubectl", "create", "deployment", "web", "--image=nginx", "--dry-run=client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert defaulted("Deployment", json.loads(out)) == DEFAULTED_DEPLOYMENT


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        ("Deployment", KUBECTL_DEPLOYMENT),
        ("Pod", {"spec": pod_spec(volumes=[{"name": "v"}])}),
        ("Service", {"spec": {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}}),
        (
            "Job",
            {
                "metadata": {"name": "j"},
                "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec()}},
            },
        ),
        (
            "StatefulSet",
            {
                "spec": {
                    "volumeClaimTemplates": [{"metadata": {"name": "d"}}],
                    "template": {"spec": pod_spec()},
                }
            },
        ),
    ],
)
def test_defaulting_is_idempotent(kind: str, obj: dict[str, Any]) -> None:
    """Applying defaults twice gives the same object as applying them once."""
    once = defaulted(kind, obj)
    assert defaulted(kind, once) == once


@pytest.mark.parametrize(
    ("image", "tag", "policy"),
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("nginx:1.25", "1.25", "IfNotPresent"),
        ("registry.local:5000/team/app", "latest", "Always"),
        ("registry.local:5000/team/app:v2", "v2", "IfNotPresent"),
        ("localhost/app:latest", "latest", "Always"),
        ("nginx@sha256:" + "a" * 64, "", "IfNotPresent"),
        ("nginx:1.25@sha256:" + "a" * 64, "1.25", "IfNotPresent"),
        ("", "", "IfNotPresent"),
        ("NGINX", "", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, tag: str, policy: str) -> None:
    """imagePullPolicy is Always for `:latest` or an untagged image, IfNotPresent otherwise."""
    assert image_tag(image) == tag
    assert default_pull_policy(image) == policy


def test_pod_spec_and_container_defaults() -> None:
    """A bare Pod gets PodSpec, container, port, env, probe, hook and volume defaults."""
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 3},
                    "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/stop"}}},
                }
            ],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "volumes": [
                {"name": "scratch"},
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}},
                {"name": "host", "hostPath": {"path": "/data"}},
                {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            ],
        }
    }
    spec = defaulted("Pod", pod)["spec"]
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    app = spec["containers"][0]
    assert app["imagePullPolicy"] == "IfNotPresent"
    assert app["terminationMessagePath"] == "/dev/termination-log"
    assert app["terminationMessagePolicy"] == "File"
    assert app["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert app["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert app["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert app["readinessProbe"]["periodSeconds"] == 3
    assert app["lifecycle"]["preStop"]["httpGet"] == {"port": 8080, "path": "/stop", "scheme": "HTTP"}
    assert spec["initContainers"][0]["imagePullPolicy"] == "Always"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert volumes["cfg"]["configMap"]["defaultMode"] == 420
    assert volumes["sec"]["secret"]["defaultMode"] == 256
    assert volumes["host"]["hostPath"]["type"] == ""
    assert volumes["proj"]["projected"]["defaultMode"] == 420
    assert volumes["proj"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600


def test_pod_only_defaults_stay_out_of_templates() -> None:
    """Requests-from-limits and enableServiceLinks apply to Pods but not to pod templates."""
    resources = {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"memory": "32Mi"}}
    ctr = {"name": "app", "image": "app:1", "resources": resources}
    pod = defaulted("Pod", {"spec": {"containers": [copy.deepcopy(ctr)]}})
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"memory": "32Mi", "cpu": "500m"}
    rs = defaulted("ReplicaSet", {"spec": {"template": {"spec": {"containers": [copy.deepcopy(ctr)]}}}})
    template_spec = rs["spec"]["template"]["spec"]
    assert template_spec["containers"][0]["resources"] == resources
    assert "enableServiceLinks" not in template_spec


def test_host_network_pod_defaults_host_ports() -> None:
    """With hostNetwork every container port's hostPort defaults to its containerPort."""
    pod = defaulted("Pod", {"spec": pod_spec(hostNetwork=True)})
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    apply_defaults("Pod", pod)
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "hostPort": 80, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ({}, {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
        ({"type": "Recreate"}, {"type": "Recreate"}),
        (
            {"rollingUpdate": {"maxSurge": 2}},
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "25%"}},
        ),
    ],
)
def test_deployment_strategy_defaults(strategy: dict[str, Any], expected: dict[str, Any]) -> None:
    """RollingUpdate with 25%/25% is filled in only when the strategy is (or defaults to) RollingUpdate."""
    dep = defaulted("Deployment", {"spec": {"strategy": strategy, "template": {"spec": pod_spec()}}})
    assert dep["spec"]["strategy"] == expected


def test_workload_replica_and_history_defaults() -> None:
    """ReplicaSet, DaemonSet and StatefulSet get their upstream spec defaults."""
    template = {"metadata": {"labels": {"app": "x"}}, "spec": pod_spec()}
    rs = defaulted("ReplicaSet", {"spec": {"template": copy.deepcopy(template)}})
    assert rs["spec"]["replicas"] == 1
    ds = defaulted("DaemonSet", {"spec": {"template": copy.deepcopy(template)}})
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10
    sts = defaulted(
        "StatefulSet",
        {
            "spec": {
                "template": copy.deepcopy(template),
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
            }
        },
    )
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["volumeClaimTemplates"][0] == {
        "metadata": {"name": "data"},
        "spec": {"volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    }
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


def test_statefulset_on_delete_strategy_gets_no_rolling_update() -> None:
    """An explicit OnDelete update strategy is left without a rollingUpdate block."""
    sts = defaulted("StatefulSet", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_replication_controller_takes_selector_and_labels_from_template() -> None:
    """An RC without selector or labels gets both from its pod template's labels."""
    rc = defaulted(
        "ReplicationController",
        {"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}},
    )
    assert rc["spec"]["selector"] == {"app": "x"}
    assert rc["metadata"]["labels"] == {"app": "x"}
    assert rc["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {"completions": 1, "parallelism": 1}),
        ({"parallelism": 3}, {"parallelism": 3}),
        ({"completions": 5}, {"completions": 5, "parallelism": 1}),
    ],
)
def test_job_completions_and_parallelism(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    """Completions defaults to 1 only when both completions and parallelism are unset."""
    job = defaulted("Job", {"spec": {**spec, "template": {"spec": pod_spec(restartPolicy="Never")}}})
    assert {k: job["spec"][k] for k in ("completions", "parallelism") if k in job["spec"]} == expected


def test_job_defaults_and_selector_generation() -> None:
    """A Job gets upstream defaults, then generated labels and selector for its uid."""
    job: dict[str, Any] = {
        "metadata": {"name": "pi"},
        "spec": {"template": {"spec": pod_spec(restartPolicy="Never")}},
    }
    apply_defaults("Job", job)
    job_prepare_for_create(job, "uid-1")
    labels = {
        "batch.kubernetes.io/controller-uid": "uid-1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "uid-1",
        "job-name": "pi",
    }
    spec = job["spec"]
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-1"}}
    assert spec["template"]["metadata"]["labels"] == labels
    assert job["metadata"]["labels"] == labels
    assert job["metadata"]["uid"] == "uid-1"


def test_job_with_user_labels_and_manual_selector() -> None:
    """User template labels are kept (and copied to the Job); manualSelector disables generation."""
    job: dict[str, Any] = {
        "metadata": {"name": "j"},
        "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": pod_spec()}},
    }
    apply_defaults("Job", job)
    job_prepare_for_create(job, "u")
    assert job["metadata"]["labels"]["app"] == "x"
    assert job["metadata"]["labels"]["job-name"] == "j"
    manual: dict[str, Any] = {
        "metadata": {"name": "m"},
        "spec": {
            "manualSelector": True,
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}},
        },
    }
    job_prepare_for_create(manual, "u")
    assert manual["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert manual["spec"]["template"]["metadata"]["labels"] == {"app": "x"}


def test_job_pod_failure_policy_defaults() -> None:
    """A pod failure policy makes podReplacementPolicy Failed and condition patterns default to True."""
    job = defaulted(
        "Job",
        {
            "spec": {
                "podFailurePolicy": {
                    "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
                }
            }
        },
    )
    assert job["spec"]["podReplacementPolicy"] == "Failed"
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"
    per_index = defaulted(
        "Job", {"spec": {"backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3}}
    )
    assert per_index["spec"]["backoffLimit"] == 2**31 - 1


def test_cron_job_defaults() -> None:
    """A CronJob gets its policy, suspend and history defaults and pod template defaults, but no Job defaults."""
    cj = defaulted(
        "CronJob",
        {
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": {"spec": pod_spec(restartPolicy="OnFailure")}}},
            }
        },
    )
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec
    assert job_spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_service_defaults() -> None:
    """A ClusterIP Service gets type, affinity, protocol, targetPort, traffic policy and IP family defaults."""
    svc = defaulted(
        "Service",
        {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}},
    )
    assert svc["spec"] == {
        "selector": {"app": "web"},
        "ports": [
            {"port": 80, "protocol": "TCP", "targetPort": 80},
            {"port": 443, "targetPort": "https", "protocol": "TCP"},
        ],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "NodePort"}, {"externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"}),
        (
            {"type": "LoadBalancer"},
            {"externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True},
        ),
        ({"sessionAffinity": "ClientIP"}, {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}),
        ({"clusterIP": "10.0.0.7"}, {"clusterIPs": ["10.0.0.7"], "ipFamilies": ["IPv4"]}),
        ({"clusterIPs": ["fd00::7"]}, {"clusterIP": "fd00::7", "ipFamilies": ["IPv6"]}),
        (
            {"type": "ExternalName", "externalName": "example.com"},
            {"type": "ExternalName", "sessionAffinity": "None"},
        ),
    ],
)
def test_service_type_specific_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    """Type-dependent Service defaults appear only for the types that need them."""
    out = defaulted("Service", {"spec": {"ports": [{"port": 80}], **spec}})["spec"]
    assert {k: out.get(k) for k in expected} == expected
    if spec.get("type") == "ExternalName":
        assert "ipFamilyPolicy" not in out and "internalTrafficPolicy" not in out


def test_service_prepare_for_update_carries_allocations_forward() -> None:
    """An update that omits clusterIP and nodePort keeps the allocated values."""
    old = defaulted(
        "Service",
        {
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.0.0.5",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
            }
        },
    )
    new = defaulted("Service", {"spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}})
    service_prepare_for_update(new, old)
    assert new["spec"]["clusterIP"] == "10.0.0.5"
    assert new["spec"]["clusterIPs"] == ["10.0.0.5"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080


def test_core_object_defaults() -> None:
    """Namespace, Secret, Node, Endpoints and PersistentVolumeClaim get their upstream defaults."""
    ns = defaulted("Namespace", {"metadata": {"name": "team-a"}})
    assert ns == {
        "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert defaulted("Secret", {"data": {}})["type"] == "Opaque"
    assert defaulted("Secret", {"type": "kubernetes.io/tls"})["type"] == "kubernetes.io/tls"
    node = defaulted("Node", {"status": {"capacity": {"cpu": "4"}}})
    assert node["status"]["allocatable"] == {"cpu": "4"}
    ep = defaulted("Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    pvc = defaulted("PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"]}})
    assert (pvc["spec"]["volumeMode"], pvc["status"]["phase"]) == ("Filesystem", "Pending")


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        ("Pod", {"spec": "nope"}),
        ("Pod", {"spec": {"containers": "nope", "volumes": [1, None, "x"]}}),
        ("Pod", {"spec": {"containers": [{"ports": "x", "env": [None], "livenessProbe": []}]}}),
        ("Deployment", {"spec": {"strategy": "fast", "template": 3}}),
        ("Service", {"spec": {"ports": [None, {"port": "80"}], "sessionAffinityConfig": 1}}),
        ("Job", {"metadata": [], "spec": {"template": {"metadata": {"labels": "x"}}}}),
        ("Namespace", {"metadata": {"name": 5, "labels": []}}),
        ("CronJob", {"spec": {"jobTemplate": {"spec": {"template": None}}}}),
        ("Widget", {"spec": {}}),
    ],
)
def test_wrong_json_types_never_raise(kind: str, obj: dict[str, Any]) -> None:
    """Defaulting leaves values of the wrong JSON type alone instead of raising."""
    out = defaulted(kind, obj)
    assert isinstance(out, dict)
    job_prepare_for_create(copy.deepcopy(obj), "uid")
    service_prepare_for_update(copy.deepcopy(obj), copy.deepcopy(obj))


def test_apply_defaults_ignores_non_objects() -> None:
    """A non-dict object is returned untouched."""
    value: Any = ["not", "an", "object"]
    apply_defaults("Pod", value)
    assert value == ["not", "an", "object"]
