"""Validation tables for the core/v1 kinds: Pod, Node, Namespace, Service, Endpoints, ConfigMap,
Secret, Event, Binding, ReplicationController, PersistentVolumeClaim."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kplane.api.defaults import apply_defaults, service_prepare_for_update
from kplane.api.validation import validate_create, validate_status_update, validate_update

Obj = dict[str, Any]

DNS_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def pod(**spec: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
    }
    obj["spec"].update(spec)
    return obj


def pod_with(fn: Callable[[Obj], None], **spec: Any) -> Obj:
    obj = pod(**spec)
    fn(obj["spec"])
    return obj


def container(**fields: Any) -> Callable[[Obj], None]:
    def apply(spec: Obj) -> None:
        spec["containers"][0].update(fields)

    return apply


def messages(kind: str, obj: Obj) -> list[str]:
    obj = copy.deepcopy(obj)
    apply_defaults(kind, obj)
    return [e.message() for e in validate_create(kind, obj)]


def stored(kind: str, obj: Obj, **meta: Any) -> Obj:
    """An object as the apiserver stores it: defaulted, with server-set metadata."""
    out = copy.deepcopy(obj)
    apply_defaults(kind, out)
    out["metadata"].update(
        {"uid": "uid-1", "resourceVersion": "10", "creationTimestamp": "2026-01-01T00:00:00Z", **meta}
    )
    return out


def update_messages(kind: str, old: Obj, change: Callable[[Obj], None]) -> list[str]:
    new = copy.deepcopy(old)
    change(new)
    return [e.message() for e in validate_update(kind, new, old)]


# --------------------------------------------------------------------------------------------
# Pods


POD_CASES: list[Any] = [
    pytest.param(pod(), [], id="valid"),
    pytest.param(
        pod_with(container(name="Web")),
        [f'spec.containers[0].name: Invalid value: "Web": {DNS_LABEL_MSG}'],
        id="container-name-not-dns-label",
    ),
    pytest.param(
        pod_with(container(image="")), ["spec.containers[0].image: Required value"], id="image-required"
    ),
    pytest.param(
        pod(initContainers=[{"name": "web", "image": "busybox"}]),
        ['spec.initContainers[0].name: Duplicate value: "web"'],
        id="init-container-name-clashes",
    ),
    pytest.param(
        pod_with(container(ports=[{"containerPort": 70000, "hostPort": -1, "protocol": "ICMP"}])),
        [
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
            'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        ],
        id="bad-ports",
    ),
    pytest.param(
        pod_with(
            container(ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}])
        ),
        ['spec.containers[0].ports[1].name: Duplicate value: "http"'],
        id="duplicate-port-names",
    ),
    pytest.param(
        pod_with(container(ports=[{"containerPort": 80, "name": "Web_Port-"}])),
        [
            'spec.containers[0].ports[0].name: Invalid value: "Web_Port-": '
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            'spec.containers[0].ports[0].name: Invalid value: "Web_Port-": must not begin or end with a hyphen',
        ],
        id="port-name-not-iana",
    ),
    pytest.param(
        pod(
            containers=[
                {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]},
            ]
        ),
        ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"'],
        id="host-port-conflict",
    ),
    pytest.param(
        pod(
            hostNetwork=True,
            containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 81}]}],
        ),
        [
            "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true"
        ],
        id="host-network-needs-equal-ports",
    ),
    pytest.param(
        pod_with(
            container(
                env=[
                    {"name": "A=B"},
                    {"name": ""},
                    {"name": "X", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                ]
            )
        ),
        [
            'spec.containers[0].env[0].name: Invalid value: "A=B": '
            "a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[1].name: Required value",
            'spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        ],
        id="env-vars",
    ),
    pytest.param(
        pod_with(container(env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}])),
        [
            'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.bogus": supported values: '
            '"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
            '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"'
        ],
        id="env-field-ref",
    ),
    pytest.param(
        pod_with(container(envFrom=[{}])),
        ['spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`'],
        id="env-from-needs-a-source",
    ),
    pytest.param(
        pod(volumes=[{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}, {"name": "Bad"}]),
        [
            'spec.volumes[1].name: Duplicate value: "data"',
            f'spec.volumes[2].name: Invalid value: "Bad": {DNS_LABEL_MSG}',
        ],
        id="volume-names",
    ),
    pytest.param(
        pod(volumes=[{"name": "v", "secret": {"secretName": "s"}, "configMap": {"name": "c"}}]),
        ["spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type"],
        id="one-volume-source",
    ),
    pytest.param(
        pod(
            volumes=[
                {"name": "v", "secret": {"defaultMode": 1000}},
                {"name": "h", "hostPath": {"path": "/x/../y", "type": "Pipe"}},
            ]
        ),
        [
            "spec.volumes[0].secret.secretName: Required value",
            "spec.volumes[0].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
            "spec.volumes[1].hostPath.path: Invalid value: \"/x/../y\": must not contain '..'",
            'spec.volumes[1].hostPath.type: Unsupported value: "Pipe": supported values: "", "BlockDevice", "CharDevice", '
            '"Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"',
        ],
        id="volume-sources",
    ),
    pytest.param(
        pod_with(
            container(
                volumeMounts=[{"name": "missing", "mountPath": "/a"}, {"name": "missing", "mountPath": ""}]
            )
        ),
        [
            'spec.containers[0].volumeMounts[0].name: Not found: "missing"',
            'spec.containers[0].volumeMounts[1].name: Not found: "missing"',
            "spec.containers[0].volumeMounts[1].mountPath: Required value",
        ],
        id="volume-mounts",
    ),
    pytest.param(
        pod(
            restartPolicy="Sometimes",
            dnsPolicy="Google",
            terminationGracePeriodSeconds=-5,
            activeDeadlineSeconds=0,
        ),
        [
            "spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0",
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            'spec.dnsPolicy: Unsupported value: "Google": supported values: '
            '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        ],
        id="pod-spec-enums-and-ranges",
    ),
    pytest.param(
        pod_with(
            container(resources={"requests": {"cpu": "-1", "memory": "lots"}, "limits": {"bogus": "1"}})
        ),
        [
            'spec.containers[0].resources.limits[bogus]: Invalid value: "bogus": must be a standard resource type or fully qualified',
            'spec.containers[0].resources.limits[bogus]: Invalid value: "bogus": must be a standard resource for containers',
            'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0',
            'spec.containers[0].resources.requests[memory]: Invalid value: "lots": quantities must match the regular '
            "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            # A Pod's requests default to its limits, so the bad limit is reported for requests too.
            'spec.containers[0].resources.requests[bogus]: Invalid value: "bogus": must be a standard resource type or fully qualified',
            'spec.containers[0].resources.requests[bogus]: Invalid value: "bogus": must be a standard resource for containers',
        ],
        id="resources",
    ),
    pytest.param(
        pod_with(
            container(resources={"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}})
        ),
        [
            'spec.containers[0].resources.requests: Invalid value: "1": must be equal to example.com/gpu limit of 2'
        ],
        id="extended-resource-requests-equal-limits",
    ),
    pytest.param(
        pod_with(
            container(
                livenessProbe={
                    "exec": {"command": ["true"]},
                    "tcpSocket": {"port": 80},
                    "successThreshold": 2,
                },
                readinessProbe={"httpGet": {"port": "no_such_port!"}, "periodSeconds": -1},
                startupProbe={},
            )
        ),
        [
            "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            'spec.containers[0].readinessProbe.httpGet.port: Invalid value: "no_such_port!": '
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.containers[0].startupProbe: Required value: must specify a handler type",
        ],
        id="probes",
    ),
    pytest.param(
        pod_with(container(imagePullPolicy="Sometimes")),
        [
            'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'
        ],
        id="image-pull-policy",
    ),
    pytest.param(
        pod(
            tolerations=[
                {"key": "a", "operator": "Exists", "value": "x"},
                {"operator": "Equal", "value": "x"},
                {"key": "b", "effect": "NoSchedule", "tolerationSeconds": 10},
                {"key": "c", "operator": "Like", "effect": "Sometimes"},
            ]
        ),
        [
            'spec.tolerations[0].operator: Invalid value: {"key": "a", "operator": "Exists", "value": "x"}: '
            "value must be empty when `operator` is 'Exists'",
            'spec.tolerations[1].operator: Invalid value: "Equal": '
            'operator must be Exists when `key` is empty, which means "match all values and all keys"',
            "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            'spec.tolerations[3].operator: Unsupported value: "Like": supported values: "Equal", "Exists"',
            'spec.tolerations[3].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        ],
        id="tolerations",
    ),
    pytest.param(
        pod(nodeSelector={"disk": "ssd", "bad key!": "x"}),
        [
            'spec.nodeSelector: Invalid value: "bad key!": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ],
        id="node-selector-labels",
    ),
    pytest.param(
        pod(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In"},
                                    {"key": "gpu", "operator": "Exists", "values": ["1"]},
                                    {"key": "cores", "operator": "Gt", "values": ["1", "2"]},
                                    {"key": "x", "operator": "Near"},
                                ]
                            }
                        ]
                    },
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 101, "preference": {}}],
                },
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "web"}}}
                    ]
                },
            }
        ),
        [
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'",
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            '.matchExpressions[3].operator: Invalid value: "Near": not a valid selector operator',
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
            "Invalid value: 101: must be in the range 1-100",
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
            "Required value: can not be empty",
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
            'Invalid value: "": name part must be non-empty',
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
            "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ],
        id="affinity",
    ),
    pytest.param(
        pod(topologySpreadConstraints=[{"maxSkew": 0, "topologyKey": "", "whenUnsatisfiable": "Maybe"}]),
        [
            "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
            "spec.topologySpreadConstraints[0].topologyKey: Required value: can not be empty",
            'spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: '
            '"DoNotSchedule", "ScheduleAnyway"',
        ],
        id="topology-spread",
    ),
    pytest.param(
        pod(dnsPolicy="None"),
        ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"],
        id="dns-none-needs-config",
    ),
    pytest.param(
        pod(
            ephemeralContainers=[{"name": "debug", "image": "busybox"}],
            nodeName="n1",
            schedulingGates=[{"name": "gate"}],
        ),
        [
            "spec.ephemeralContainers: Forbidden: cannot be set on create",
            "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared",
        ],
        id="create-only-rules",
    ),
    pytest.param(
        pod_with(container(image=" nginx")),
        ['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace'],
        id="image-whitespace",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), POD_CASES)
def test_pod_create(obj: Obj, expected: list[str]) -> None:
    """Pod create validation reports exactly the Kubernetes errors, in order."""
    assert messages("Pod", obj) == expected


UPDATABLE = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _set_image(p: Obj) -> None:
    p["spec"]["containers"][0]["image"] = "nginx:1.26"


def _set_restart(p: Obj) -> None:
    p["spec"]["restartPolicy"] = "Never"


def _add_container(p: Obj) -> None:
    p["spec"]["containers"].append(copy.deepcopy(p["spec"]["containers"][0]) | {"name": "two"})


def _add_toleration(p: Obj) -> None:
    p["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]


def _drop_toleration(p: Obj) -> None:
    p["spec"]["tolerations"] = []


def _deadline(value: int | None) -> Callable[[Obj], None]:
    def change(p: Obj) -> None:
        p["spec"]["activeDeadlineSeconds"] = value

    return change


def _grace_while_deleting(p: Obj) -> None:
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    p["spec"]["terminationGracePeriodSeconds"] = 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(_set_image, [], id="image-may-change"),
        pytest.param(_add_toleration, [], id="tolerations-may-be-added"),
        pytest.param(_deadline(50), [], id="deadline-may-shrink"),
        pytest.param(_grace_while_deleting, [], id="grace-period-while-deleting"),
        pytest.param(
            _set_restart,
            [f'spec: Forbidden: {UPDATABLE}\nspec.restartPolicy: "Always" -> "Never"'],
            id="other-fields-frozen",
        ),
        pytest.param(
            _add_container,
            ["spec.containers: Forbidden: pod updates may not add or remove containers"],
            id="containers-fixed",
        ),
        pytest.param(
            _drop_toleration,
            [
                "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
            ],
            id="tolerations-not-removed",
        ),
        pytest.param(
            _deadline(200),
            ["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"],
            id="deadline-may-not-grow",
        ),
        pytest.param(
            _deadline(None),
            [
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ],
            id="deadline-may-not-be-removed",
        ),
    ],
)
def test_pod_update(change: Callable[[Obj], None], expected: list[str]) -> None:
    """Only images, activeDeadlineSeconds (downwards) and added tolerations may change in a Pod's spec."""
    old = stored("Pod", pod(activeDeadlineSeconds=100, tolerations=[{"key": "a", "operator": "Exists"}]))
    assert update_messages("Pod", old, change) == expected


def test_pod_status_update() -> None:
    """Status writes may not move the pod to another node and must carry valid IPs and states."""
    old = stored("Pod", pod(nodeName="n1", restartPolicy="Never"))
    old["status"] = {"containerStatuses": [{"name": "web", "state": {"terminated": {"exitCode": 0}}}]}
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "n2"
    new["status"] = {
        "phase": "Running",
        "podIP": "127.0.0.5",
        "podIPs": [{"ip": "127.0.0.5"}, {"ip": "127.0.0.6"}],
        "conditions": [{"type": "bad type!", "status": "True"}],
        "containerStatuses": [{"name": "web", "state": {"running": {}}}],
    }
    got = [e.message() for e in validate_status_update("Pod", new, old)]
    assert got == [
        'status.conditions[0].type: Invalid value: "bad type!": name part must consist of alphanumeric characters, '
        "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
        "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "status.nodeName: Forbidden: may not be changed directly",
        "status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state",
        'status.podIPs: Invalid value: [{"ip": "127.0.0.5"}, {"ip": "127.0.0.6"}]: may specify no more than one IP for each IP family',
    ]


# --------------------------------------------------------------------------------------------
# Other core kinds


def service(**spec: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    obj["spec"].update(spec)
    return obj


CORE_CASES: list[Any] = [
    pytest.param("Service", service(), [], id="service-valid"),
    pytest.param(
        "Service",
        {"metadata": {"name": "1web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}'],
        id="service-name-dns1035",
    ),
    pytest.param("Service", service(ports=[]), ["spec.ports: Required value"], id="service-ports-required"),
    pytest.param("Service", service(clusterIP="None", ports=[]), [], id="headless-needs-no-ports"),
    pytest.param(
        "Service",
        service(
            ports=[
                {"port": 0, "protocol": "HTTP", "targetPort": 70000},
                {"port": 443, "name": "https", "nodePort": 30443},
            ]
        ),
        [
            "spec.ports[0].name: Required value",
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        ],
        id="service-ports",
    ),
    pytest.param(
        "Service",
        service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "a"}]),
        [
            'spec.ports[1].name: Duplicate value: "a"',
            'spec.ports[1]: Duplicate value: {"port": 80, "protocol": "TCP"}',
        ],
        id="service-duplicate-ports",
    ),
    pytest.param(
        "Service",
        service(type="Magic", sessionAffinity="Sticky", clusterIP="10.0.0.300"),
        [
            'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
            'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
            'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
        ],
        id="service-enums",
    ),
    pytest.param(
        "Service",
        {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "Not A Host"}},
        [
            'spec.externalName: Invalid value: "Not A Host": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ],
        id="external-name",
    ),
    pytest.param(
        "Node",
        {
            "metadata": {"name": "n1", "namespace": "default"},
            "spec": {
                "taints": [
                    {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                    {"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                    {"key": "x", "effect": ""},
                    {"key": "y", "effect": "Evict"},
                ]
            },
        },
        [
            "metadata.namespace: Forbidden: not allowed on this type",
            'spec.taints[1]: Duplicate value: {"effect": "NoSchedule", "key": "dedicated", "value": "db"}: '
            "taints must be unique by key and effect pair",
            "spec.taints[2].effect: Required value",
            'spec.taints[3].effect: Unsupported value: "Evict": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        ],
        id="node-taints",
    ),
    pytest.param(
        "Node",
        {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "-1"}}},
        [
            'status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0',
            'status.allocatable.cpu: Invalid value: "-1": must be greater than or equal to 0',
        ],
        id="node-capacity",
    ),
    pytest.param(
        "Namespace",
        {"metadata": {"name": "team.a"}},
        ['metadata.name: Invalid value: "team.a": must not contain dots'],
        id="namespace-name-is-a-label",
    ),
    pytest.param(
        "ConfigMap",
        {
            "metadata": {"name": "cfg", "namespace": "Bad_NS"},
            "data": {"ok": "1", "no spaces": "2", "..": "3", "both": "x"},
            "binaryData": {"both": "eA=="},
        },
        [
            f'metadata.namespace: Invalid value: "Bad_NS": {DNS_LABEL_MSG}',
            f'data[no spaces]: Invalid value: "no spaces": {CONFIG_KEY_MSG}',
            "data[..]: Invalid value: \"..\": must not be '..'",
            'data[both]: Invalid value: "both": duplicate of key present in binaryData',
        ],
        id="config-map-keys",
    ),
    pytest.param(
        "ConfigMap",
        {"metadata": {"name": "big"}, "data": {"a": "x" * (1024 * 1024 + 1)}},
        ["Too long: must have at most 1048576 bytes"],
        id="config-map-size",
    ),
    pytest.param(
        "Secret",
        {
            "metadata": {"name": "tls"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "eA==", "bad/key": "eA=="},
        },
        [
            f'data[bad/key]: Invalid value: "bad/key": {CONFIG_KEY_MSG}',
            "data[tls.key]: Required value",
        ],
        id="secret-keys-and-type",
    ),
    pytest.param(
        "Endpoints",
        {
            "metadata": {"name": "web"},
            "subsets": [
                {
                    "addresses": [{"ip": "127.0.0.9"}, {"ip": "0.0.0.0"}, {"ip": "web"}],
                    "ports": [{"port": 80, "name": "a"}, {"port": 70000}],
                },
                {"ports": [{"port": 80}]},
            ],
        },
        [
            'subsets[0].addresses[1].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
            'subsets[0].addresses[2].ip: Invalid value: "web": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
            "subsets[0].ports[1].name: Required value",
            "subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
        ],
        id="endpoints",
    ),
    pytest.param(
        "Event",
        {
            "metadata": {"name": "web.1", "namespace": "default"},
            "reason": "Started",
            "type": "Info",
            "count": -1,
        },
        [
            "involvedObject: Required value",
            'type: Unsupported value: "Info": supported values: "Normal", "Warning"',
            "count: Invalid value: -1: must be greater than or equal to 0",
        ],
        id="event",
    ),
    pytest.param(
        "Event",
        {
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"},
        },
        ['involvedObject.namespace: Invalid value: "other": does not match event.namespace'],
        id="event-namespace-mismatch",
    ),
    pytest.param(
        "Binding",
        {"metadata": {"name": "web"}, "target": {"kind": "Pod"}},
        [
            'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"',
            "target.name: Required value",
        ],
        id="binding",
    ),
    pytest.param(
        "ReplicationController",
        {
            "metadata": {"name": "rc"},
            "spec": {
                "replicas": -1,
                "selector": {"app": "a"},
                "template": {
                    "metadata": {"labels": {"app": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        },
        [
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            'spec.template.metadata.labels: Invalid value: {"app": "b"}: `selector` does not match template `labels`',
        ],
        id="replication-controller",
    ),
    pytest.param(
        "PersistentVolumeClaim",
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteSometimes"], "resources": {"requests": {}}},
        },
        [
            'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
            '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
            "spec.resources.requests[storage]: Required value",
        ],
        id="persistent-volume-claim",
    ),
]


@pytest.mark.parametrize(("kind", "obj", "expected"), CORE_CASES)
def test_core_kinds_create(kind: str, obj: Obj, expected: list[str]) -> None:
    """Create validation of each core kind reports exactly the Kubernetes errors."""
    assert messages(kind, obj) == expected


def test_service_cluster_ip_is_immutable() -> None:
    """A Service's allocated clusterIP may not change, but may be omitted by an apply."""
    old = stored("Service", service(clusterIP="10.0.0.5"))
    assert update_messages(
        "Service", old, lambda s: s["spec"].update(clusterIP="10.0.0.6", clusterIPs=["10.0.0.6"])
    ) == ['spec.clusterIPs[0]: Invalid value: ["10.0.0.6"]: may not change once set']
    applied = service()
    applied["metadata"] = copy.deepcopy(old["metadata"])
    apply_defaults("Service", applied)
    service_prepare_for_update(applied, old)
    assert validate_update("Service", applied, old) == []


def test_immutable_config_map_and_secret() -> None:
    """With immutable: true, data may not change and the flag may not be cleared."""
    cm = stored("ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True})
    assert update_messages("ConfigMap", cm, lambda o: o.update(data={"a": "2"}, immutable=False)) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    secret = stored("Secret", {"metadata": {"name": "s"}, "data": {"a": "eA=="}, "immutable": True})
    assert update_messages("Secret", secret, lambda o: o.update(data={"a": "eQ=="}, type="Other")) == [
        'type: Invalid value: "Other": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    mutable = stored("ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert update_messages("ConfigMap", mutable, lambda o: o.update(data={"a": "2"})) == []


def test_namespace_status_phase() -> None:
    """A namespace is Active until deletion starts, then Terminating."""
    ns = stored("Namespace", {"metadata": {"name": "team-a"}})
    terminating = copy.deepcopy(ns)
    terminating["status"]["phase"] = "Terminating"
    assert [e.message() for e in validate_status_update("Namespace", terminating, ns)] == [
        "status.phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
    ]
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert validate_status_update("Namespace", terminating, ns) == []


def test_node_update_keeps_pod_cidr_and_provider() -> None:
    """A node's podCIDRs and providerID may be set once, never changed."""
    node = stored(
        "Node",
        {"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.1.0.0/24"], "providerID": "kplane://n1"}},
    )
    assert update_messages(
        "Node", node, lambda n: n["spec"].update(podCIDRs=["10.2.0.0/24"], providerID="x")
    ) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
        'spec.providerID: Forbidden: node updates may not change providerID except from "" to valid',
    ]
    assert update_messages("Node", node, lambda n: n["spec"].update(unschedulable=True)) == []


def test_finalizers_cannot_be_added_while_deleting() -> None:
    """Once deletionTimestamp is set, an update may remove finalizers but not add them."""
    old = stored(
        "ConfigMap",
        {"metadata": {"name": "c", "finalizers": ["example.com/a"]}},
        deletionTimestamp="2026-01-01T00:00:00Z",
    )
    assert update_messages("ConfigMap", old, lambda o: o["metadata"].update(finalizers=[])) == []
    assert update_messages(
        "ConfigMap", old, lambda o: o["metadata"].update(finalizers=["example.com/a", "example.com/b"])
    ) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ["example.com/b"]'
    ]


def test_replication_controller_status_counts() -> None:
    """RC status counters are non-negative and bounded by status.replicas."""
    old = stored(
        "ReplicationController",
        {"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}},
    )
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 2, "readyReplicas": 3, "availableReplicas": 1, "observedGeneration": -1}
    assert [e.message() for e in validate_status_update("ReplicationController", new, old)] == [
        "status.observedGeneration: Invalid value: -1: must be greater than or equal to 0",
        "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
    ]
