"""`kubectl describe` layout per kind.

The goldens were produced from these fixtures and checked line by line against kubectl 1.32
describing the same objects through a loopback fake apiserver. Where kubectl 1.32 differs from
current upstream (event "From" falling back to reportingController, events sorted by their last
time, DaemonSet "Namespace:", projected volume "Optional:"), the goldens follow upstream.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kplane.cli.describe import Related, describe, pod_qos_class, smart_label

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago_micro(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def meta(name: str, namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": ago(minutes=42, seconds=30),
    }
    if namespace:
        out["namespace"] = namespace
    out.update(extra)
    return out


def event(name: str, involved: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": meta(name), "involvedObject": involved, **fields}


TEMPLATE: dict[str, Any] = {
    "metadata": {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-06-01T10:00:00Z"},
    },
    "spec": {
        "serviceAccountName": "builder",
        "priorityClassName": "high",
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "echo hi\nexit 0"]}],
        "containers": [
            {
                "name": "nginx",
                "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {
                    "limits": {"cpu": "500m", "memory": "128Mi"},
                    "requests": {"cpu": "250m", "memory": "64Mi"},
                },
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"},
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "env": [{"name": "MODE", "value": "prod"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "nodeSelector": {"disk": "ssd", "zone": "a"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
    },
}

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": meta(
        "web-5d7b9-abcde",
        labels={"app": "web", "pod-template-hash": "5d7b9"},
        annotations={
            "note": "short",
            "multi": "line one\nline two\n",
            "long": "x" * 150,
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        },
        ownerReferences=[
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-5d7b9",
                "uid": "uid-web-5d7b9",
                "controller": True,
            }
        ],
    ),
    "spec": {
        "nodeName": "node-1",
        "serviceAccountName": "default",
        "priority": 1000,
        "priorityClassName": "high",
        "initContainers": [{"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.25",
                "args": ["--port", "80", "--multi\nline"],
                "ports": [
                    {"name": "http", "containerPort": 80, "protocol": "TCP"},
                    {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"},
                ],
                "resources": {
                    "limits": {"cpu": "1", "memory": "256Mi", "ephemeral-storage": "1Gi"},
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                },
                "livenessProbe": {
                    "exec": {"command": ["cat", "/tmp/healthy"]},
                    "initialDelaySeconds": 5,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTPS"},
                    "timeoutSeconds": 2,
                    "periodSeconds": 5,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "startupProbe": {
                    "tcpSocket": {"port": 8080},
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 30,
                },
                "envFrom": [
                    {"configMapRef": {"name": "settings"}},
                    {"secretRef": {"name": "creds", "optional": True}, "prefix": "DB_"},
                ],
                "env": [
                    {"name": "PLAIN", "value": "hello"},
                    {"name": "MULTI", "value": "a\nb"},
                    {
                        "name": "POD_NAME",
                        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
                    },
                    {
                        "name": "NODE",
                        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
                    },
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {
                        "name": "LEVEL",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "settings", "key": "level", "optional": True}
                        },
                    },
                    {
                        "name": "CPU",
                        "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}},
                    },
                    {
                        "name": "MEM",
                        "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}},
                    },
                ],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/var/data"},
                    {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True, "subPath": "app.conf"},
                    {
                        "name": "token",
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        "readOnly": True,
                    },
                ],
            },
            {"name": "sidecar", "image": "busybox"},
        ],
        "volumes": [
            {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "creds", "secret": {"secretName": "creds", "optional": True}},
            {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "pvc-1", "readOnly": True}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {
                            "path": "cpu",
                            "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"},
                        },
                    ]
                },
            },
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt"}},
                        {"downwardAPI": {"items": []}},
                    ]
                },
            },
            {"name": "repo", "gitRepo": {"repository": "x"}},
            {"name": "odd", "iscsi": {}},
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "readinessGates": [{"conditionType": "example.com/gate"}, {"conditionType": "other"}],
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {"operator": "Exists"},
            {"key": "k", "value": "v"},
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
            },
            {"maxSkew": 2, "topologyKey": "host", "whenUnsatisfiable": "ScheduleAnyway"},
        ],
    },
    "status": {
        "phase": "Running",
        "hostIP": "127.0.0.2",
        "podIP": "10.244.0.5",
        "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}],
        "startTime": ago(minutes=42),
        "qosClass": "Burstable",
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "example.com/gate", "status": "True"},
        ],
        "initContainerStatuses": [
            {
                "name": "setup",
                "containerID": "process://abc",
                "imageID": "busybox@sha256:1",
                "ready": True,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": ago(minutes=42),
                        "finishedAt": ago(minutes=41, seconds=50),
                    }
                },
            }
        ],
        "containerStatuses": [
            {
                "name": "app",
                "containerID": "process://def",
                "imageID": "nginx@sha256:2",
                "ready": True,
                "restartCount": 2,
                "state": {"running": {"startedAt": ago(minutes=30)}},
                "lastState": {
                    "terminated": {
                        "exitCode": 137,
                        "signal": 9,
                        "reason": "OOMKilled",
                        "message": "out of memory",
                        "startedAt": ago(minutes=35),
                        "finishedAt": ago(minutes=30, seconds=5),
                    }
                },
            },
            {
                "name": "sidecar",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            },
        ],
    },
}

POD_REF = {"kind": "Pod", "name": "web-5d7b9-abcde", "namespace": "default", "uid": "uid-web-5d7b9-abcde"}
POD_EVENTS = [
    event(
        "e1",
        POD_REF,
        type="Normal",
        reason="Scheduled",
        reportingController="default-scheduler",
        message="Successfully assigned default/web-5d7b9-abcde to node-1",
        eventTime=ago_micro(minutes=42),
    ),
    event(
        "e2",
        POD_REF,
        type="Warning",
        reason="BackOff",
        message="Back-off restarting failed container sidecar  \n",
        source={"component": "kubelet", "host": "node-1"},
        firstTimestamp=ago(minutes=40),
        lastTimestamp=ago(minutes=12),
        count=12,
    ),
    event(
        "e3",
        POD_REF,
        type="Normal",
        reason="Pulled",
        message="Container image pulled",
        source={"component": "kubelet"},
        firstTimestamp=ago(minutes=41),
        lastTimestamp=ago(minutes=41),
        count=1,
    ),
    event(
        "e4",
        POD_REF,
        type="Warning",
        reason="Unhealthy",
        message="Readiness probe failed",
        reportingController="kubelet",
        eventTime=ago_micro(minutes=39),
        series={"count": 5, "lastObservedTime": ago_micro(minutes=20)},
    ),
]

GOLDEN_POD = (
    "Name:                 web-5d7b9-abcde\n"
    "Namespace:            default\n"
    "Priority:             1000\n"
    "Priority Class Name:  high\n"
    "Service Account:      default\n"
    "Node:                 node-1/127.0.0.2\n"
    "Start Time:           Sat, 01 Jun 2024 11:18:00 +0000\n"
    "Labels:               app=web\n"
    "                      pod-template-hash=5d7b9\n"
    "Annotations:          long:\n"
    "                        xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\n"
    "                      multi:\n"
    "                        line one\n"
    "                        line two\n"
    "                      note: short\n"
    "Status:               Running\n"
    "IP:                   10.244.0.5\n"
    "IPs:\n"
    "  IP:           10.244.0.5\n"
    "  IP:           fd00::5\n"
    "Controlled By:  ReplicaSet/web-5d7b9\n"
    "Init Containers:\n"
    "  setup:\n"
    "    Container ID:  process://abc\n"
    "    Image:         busybox:1.36\n"
    "    Image ID:      busybox@sha256:1\n"
    "    Port:          <none>\n"
    "    Host Port:     <none>\n"
    "    Command:\n"
    "      sh\n"
    "      -c\n"
    "      true\n"
    "    State:          Terminated\n"
    "      Reason:       Completed\n"
    "      Exit Code:    0\n"
    "      Started:      Sat, 01 Jun 2024 11:18:00 +0000\n"
    "      Finished:     Sat, 01 Jun 2024 11:18:10 +0000\n"
    "    Ready:          True\n"
    "    Restart Count:  0\n"
    "    Environment:    <none>\n"
    "    Mounts:         <none>\n"
    "Containers:\n"
    "  app:\n"
    "    Container ID:  process://def\n"
    "    Image:         nginx:1.25\n"
    "    Image ID:      nginx@sha256:2\n"
    "    Ports:         80/TCP, 53/UDP\n"
    "    Host Ports:    0/TCP, 5353/UDP\n"
    "    Args:\n"
    "      --port\n"
    "      80\n"
    "      --multi\n"
    "      line\n"
    "    State:          Running\n"
    "      Started:      Sat, 01 Jun 2024 11:30:00 +0000\n"
    "    Last State:     Terminated\n"
    "      Reason:       OOMKilled\n"
    "      Message:      out of memory\n"
    "      Exit Code:    137\n"
    "      Signal:       9\n"
    "      Started:      Sat, 01 Jun 2024 11:25:00 +0000\n"
    "      Finished:     Sat, 01 Jun 2024 11:29:55 +0000\n"
    "    Ready:          True\n"
    "    Restart Count:  2\n"
    "    Limits:\n"
    "      cpu:                1\n"
    "      ephemeral-storage:  1Gi\n"
    "      memory:             256Mi\n"
    "    Requests:\n"
    "      cpu:      100m\n"
    "      memory:   128Mi\n"
    "    Liveness:   exec [cat /tmp/healthy] delay=5s timeout=1s period=10s #success=1 #failure=3\n"
    "    Readiness:  http-get https://:http/ready delay=0s timeout=2s period=5s #success=1 #failure=3\n"
    "    Startup:    tcp-socket :8080 delay=0s timeout=1s period=10s #success=1 #failure=30\n"
    "    Environment Variables from:\n"
    "      settings  ConfigMap                 Optional: false\n"
    "      creds     Secret with prefix 'DB_'  Optional: true\n"
    "    Environment:\n"
    "      PLAIN:     hello\n"
    "      MULTI:     a\n"
    "                 b\n"
    "      POD_NAME:  web-5d7b9-abcde (v1:metadata.name)\n"
    "      NODE:       (v1:spec.nodeName)\n"
    "      PASS:      <set to the key 'password' in secret 'creds'>      Optional: false\n"
    "      LEVEL:     <set to the key 'level' of config map 'settings'>  Optional: true\n"
    "      CPU:       1000 (limits.cpu)\n"
    "      MEM:       128 (requests.memory)\n"
    "    Mounts:\n"
    '      /etc/cfg from cfg (ro,path="app.conf")\n'
    "      /var/data from data (rw)\n"
    "      /var/run/secrets/kubernetes.io/serviceaccount from token (ro)\n"
    "  sidecar:\n"
    "    Container ID:   \n"
    "    Image:          busybox\n"
    "    Image ID:       \n"
    "    Port:           <none>\n"
    "    Host Port:      <none>\n"
    "    State:          Waiting\n"
    "      Reason:       CrashLoopBackOff\n"
    "    Ready:          False\n"
    "    Restart Count:  0\n"
    "    Environment:    <none>\n"
    "    Mounts:         <none>\n"
    "Readiness Gates:\n"
    "  Type               Status\n"
    "  example.com/gate   True \n"
    "  other              <none> \n"
    "Conditions:\n"
    "  Type               Status\n"
    "  Initialized        True \n"
    "  Ready              True \n"
    "  example.com/gate   True \n"
    "Volumes:\n"
    "  data:\n"
    "    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)\n"
    "    Medium:     Memory\n"
    "    SizeLimit:  1Gi\n"
    "  cfg:\n"
    "    Type:      ConfigMap (a volume populated by a ConfigMap)\n"
    "    Name:      settings\n"
    "    Optional:  false\n"
    "  creds:\n"
    "    Type:        Secret (a volume populated by a Secret)\n"
    "    SecretName:  creds\n"
    "    Optional:    true\n"
    "  host:\n"
    "    Type:          HostPath (bare host directory volume)\n"
    "    Path:          /var/log\n"
    "    HostPathType:  Directory\n"
    "  claim:\n"
    "    Type:       PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n"
    "    ClaimName:  pvc-1\n"
    "    ReadOnly:   true\n"
    "  info:\n"
    "    Type:  DownwardAPI (a volume populated by information about the pod)\n"
    "    Items:\n"
    "      metadata.labels -> labels\n"
    "      limits.cpu -> cpu\n"
    "  token:\n"
    "    Type:                    Projected (a volume that contains injected data from multiple sources)\n"
    "    TokenExpirationSeconds:  3607\n"
    "    ConfigMapName:           kube-root-ca.crt\n"
    "    Optional:                false\n"
    "    DownwardAPI:             true\n"
    "  repo:\n"
    "    Type:        GitRepo (a volume that is pulled from git when the pod is created)\n"
    "    Repository:  x\n"
    "    Revision:    \n"
    "  odd:\n"
    "  <unknown>\n"
    "QoS Class:                    Burstable\n"
    "Node-Selectors:               kubernetes.io/os=linux\n"
    "Tolerations:                  op=Exists\n"
    "                              k=v\n"
    "                              node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n"
    "Topology Spread Constraints:  host:ScheduleAnyway when max skew 2 is exceeded\n"
    "                              zone:DoNotSchedule when max skew 1 is exceeded for selector app=web\n"
    "Events:\n"
    "  Type     Reason     Age                 From               Message\n"
    "  ----     ------     ----                ----               -------\n"
    "  Normal   Scheduled  42m                 default-scheduler  Successfully assigned default/web-5d7b9-abcde to node-1\n"
    "  Normal   Pulled     41m                 kubelet            Container image pulled\n"
    "  Warning  Unhealthy  20m (x5 over 39m)   kubelet            Readiness probe failed\n"
    "  Warning  BackOff    12m (x12 over 40m)  kubelet            Back-off restarting failed container sidecar\n"
)


def test_describe_pod_golden() -> None:
    """A pod prints metadata, containers with states/probes/env/mounts, volumes, QoS and events."""
    assert describe(POD, POD_EVENTS, NOW) == GOLDEN_POD


# ---------------------------------------------------------------------------------------------
# Node

NODE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": meta(
        "node-1",
        None,
        labels={"kubernetes.io/hostname": "node-1", "node-role.kubernetes.io/control-plane": ""},
        annotations={"node.alpha.kubernetes.io/ttl": "0"},
        creationTimestamp=ago(days=3),
    ),
    "spec": {
        "podCIDR": "10.244.0.0/24",
        "podCIDRs": ["10.244.0.0/24"],
        "taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "web", "effect": "NoExecute"},
            {"key": "a", "value": "b"},
        ],
    },
    "status": {
        "capacity": {
            "cpu": "4",
            "memory": "8148040Ki",
            "pods": "110",
            "ephemeral-storage": "100Gi",
            "hugepages-2Mi": "0",
            "example.com/gpu": "2",
        },
        "allocatable": {
            "cpu": "3800m",
            "memory": "7943240Ki",
            "pods": "110",
            "ephemeral-storage": "95Gi",
            "hugepages-2Mi": "0",
            "example.com/gpu": "2",
        },
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastHeartbeatTime": ago(seconds=20),
                "lastTransitionTime": ago(days=3),
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
            }
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.2"},
            {"type": "Hostname", "address": "node-1"},
        ],
        "nodeInfo": {
            "machineID": "m1",
            "systemUUID": "s1",
            "bootID": "b1",
            "kernelVersion": "6.1.0",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "containerRuntimeVersion": "process://0.1.0",
            "kubeletVersion": "v1.32.0-kplane",
        },
    },
}
NODE_LEASE = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": meta("node-1", "kube-node-lease"),
    "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": ago_micro(seconds=5)},
}


def db_pod(index: int, phase: str) -> dict[str, Any]:
    owner = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "db",
        "uid": "uid-db",
        "controller": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(f"db-{index}", labels={"app": "db"}, ownerReferences=[owner]),
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": "pg",
                    "image": "postgres:16",
                    "resources": {"requests": {"cpu": "1500m", "memory": "1G"}, "limits": {"memory": "2Gi"}},
                }
            ],
        },
        "status": {"phase": phase},
    }


DB_PODS = [db_pod(0, "Running"), db_pod(1, "Pending"), db_pod(2, "Failed")]
DYING_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": meta("dying", deletionTimestamp=ago(minutes=1), deletionGracePeriodSeconds=30),
    "spec": {
        "nodeName": "node-1",
        "containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}],
    },
    "status": {
        "phase": "Running",
        "reason": "Evicted",
        "message": "node is low on memory",
        "podIP": "10.0.0.9",
    },
}
NODE_EVENT = event(
    "e6",
    {"kind": "Node", "name": "node-1", "uid": "node-1"},
    type="Normal",
    reason="NodeReady",
    message="Node node-1 status is now: NodeReady",
    source={"component": "kubelet", "host": "node-1"},
    firstTimestamp=ago(days=3),
    lastTimestamp=ago(days=3),
    count=1,
)

GOLDEN_NODE = (
    "Name:               node-1\n"
    "Roles:              control-plane\n"
    "Labels:             kubernetes.io/hostname=node-1\n"
    "                    node-role.kubernetes.io/control-plane=\n"
    "Annotations:        node.alpha.kubernetes.io/ttl: 0\n"
    "CreationTimestamp:  Wed, 29 May 2024 12:00:00 +0000\n"
    "Taints:             a=b:\n"
    "                    dedicated=web:NoExecute\n"
    "                    node-role.kubernetes.io/control-plane:NoSchedule\n"
    "Unschedulable:      false\n"
    "Lease:\n"
    "  HolderIdentity:  node-1\n"
    "  AcquireTime:     <unset>\n"
    "  RenewTime:       Sat, 01 Jun 2024 11:59:55 +0000\n"
    "Conditions:\n"
    "  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason         Message\n"
    "  ----    ------  -----------------                 ------------------                ------         -------\n"
    "  Ready   True    Sat, 01 Jun 2024 11:59:40 +0000   Wed, 29 May 2024 12:00:00 +0000   KubeletReady   kubelet is posting ready status\n"
    "Addresses:\n"
    "  InternalIP:  127.0.0.2\n"
    "  Hostname:    node-1\n"
    "Capacity:\n"
    "  cpu:                4\n"
    "  ephemeral-storage:  100Gi\n"
    "  example.com/gpu:    2\n"
    "  hugepages-2Mi:      0\n"
    "  memory:             8148040Ki\n"
    "  pods:               110\n"
    "Allocatable:\n"
    "  cpu:                3800m\n"
    "  ephemeral-storage:  95Gi\n"
    "  example.com/gpu:    2\n"
    "  hugepages-2Mi:      0\n"
    "  memory:             7943240Ki\n"
    "  pods:               110\n"
    "System Info:\n"
    "  Machine ID:                 m1\n"
    "  System UUID:                s1\n"
    "  Boot ID:                    b1\n"
    "  Kernel Version:             6.1.0\n"
    "  OS Image:                   Debian GNU/Linux 12 (bookworm)\n"
    "  Operating System:           linux\n"
    "  Architecture:               amd64\n"
    "  Container Runtime Version:  process://0.1.0\n"
    "  Kubelet Version:            v1.32.0-kplane\n"
    "  Kube-Proxy Version:         \n"
    "PodCIDR:                      10.244.0.0/24\n"
    "PodCIDRs:                     10.244.0.0/24\n"
    "Non-terminated Pods:          (4 in total)\n"
    "  Namespace                   Name               CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age\n"
    "  ---------                   ----               ------------  ----------  ---------------  -------------  ---\n"
    "  default                     web-5d7b9-abcde    100m (2%)     1 (26%)     128Mi (1%)       256Mi (3%)     42m\n"
    "  default                     dying              0 (0%)        2 (52%)     0 (0%)           1Gi (13%)      42m\n"
    "  default                     db-0               1500m (39%)   0 (0%)      1G (12%)         2Gi (26%)      42m\n"
    "  default                     db-1               1500m (39%)   0 (0%)      1G (12%)         2Gi (26%)      42m\n"
    "Allocated resources:\n"
    "  (Total limits may be over 100 percent, i.e., overcommitted.)\n"
    "  Resource           Requests         Limits\n"
    "  --------           --------         ------\n"
    "  cpu                3100m (81%)      3 (78%)\n"
    "  memory             2084197Ki (26%)  5376Mi (69%)\n"
    "  ephemeral-storage  0 (0%)           1Gi (1%)\n"
    "  hugepages-2Mi      0 (0%)           0 (0%)\n"
    "  example.com/gpu    0                0\n"
    "Events:\n"
    "  Type    Reason     Age   From     Message\n"
    "  ----    ------     ----  ----     -------\n"
    "  Normal  NodeReady  3d    kubelet  Node node-1 status is now: NodeReady\n"
)


def test_describe_node_golden() -> None:
    """A node prints taints, lease, conditions, resources, its non-terminated pods' requests and events."""
    related = Related(pods=[POD, DYING_POD, *DB_PODS], lease=NODE_LEASE)
    assert describe(NODE, [NODE_EVENT], NOW, related=related) == GOLDEN_NODE


def test_describe_node_without_lease_or_capacity() -> None:
    """A node without a lease says so, and percentages of zero allocatable are Go's NaN cast."""
    bare = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta("node-2", None),
        "spec": {"unschedulable": True},
        "status": {},
    }
    text = describe(bare, [], NOW, related=Related(pods=[db_pod(0, "Running"), {**db_pod(9, "Succeeded")}]))
    assert 'Lease:              Failed to get lease: leases.coordination.k8s.io "node-2" not found\n' in text
    assert "Unschedulable:      true\n" in text
    assert "Non-terminated Pods:          (0 in total)\n" in text
    assert text.endswith("  ephemeral-storage  0 (0%)    0 (0%)\nEvents:              <none>\n")


# ---------------------------------------------------------------------------------------------
# Workloads

OWNER = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-web", "controller": True}]
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": meta("web", labels={"app": "web"}, annotations={"deployment.kubernetes.io/revision": "2"}),
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
        "minReadySeconds": 5,
    },
    "status": {
        "replicas": 4,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    },
}


def replica_set(name: str, image: str, replicas: int, current: int, created: str) -> dict[str, Any]:
    template = json.loads(json.dumps(TEMPLATE))
    template["metadata"]["labels"]["pod-template-hash"] = name.split("-")[1]
    template["spec"]["containers"][0]["image"] = image
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta(
            name,
            labels={"app": "web", "pod-template-hash": name.split("-")[1]},
            ownerReferences=OWNER,
            creationTimestamp=created,
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": name.split("-")[1]}},
            "template": template,
        },
        "status": {
            "replicas": current,
            "readyReplicas": current,
            "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}],
        },
    }


NEW_RS = replica_set("web-5d7b9", "nginx:1.25", 3, 3, ago(hours=1))
OLD_RS = replica_set("web-4c6a8", "nginx:1.24", 0, 1, ago(hours=2))
DEPLOYMENT_EVENT = event(
    "e5",
    {"kind": "Deployment", "name": "web", "namespace": "default", "uid": "uid-web"},
    type="Normal",
    reason="ScalingReplicaSet",
    message="Scaled up replica set web-5d7b9 to 3",
    source={"component": "deployment-controller"},
    firstTimestamp=ago(hours=3, minutes=10),
    lastTimestamp=ago(hours=3, minutes=10),
    count=1,
)

GOLDEN_DEPLOYMENT = (
    "Name:                   web\n"
    "Namespace:              default\n"
    "CreationTimestamp:      Sat, 01 Jun 2024 11:17:30 +0000\n"
    "Labels:                 app=web\n"
    "Annotations:            deployment.kubernetes.io/revision: 2\n"
    "Selector:               app=web\n"
    "Replicas:               3 desired | 3 updated | 4 total | 3 available | 1 unavailable\n"
    "StrategyType:           RollingUpdate\n"
    "MinReadySeconds:        5\n"
    "RollingUpdateStrategy:  25% max unavailable, 1 max surge\n"
    "Pod Template:\n"
    "  Labels:           app=web\n"
    "  Annotations:      kubectl.kubernetes.io/restartedAt: 2024-06-01T10:00:00Z\n"
    "  Service Account:  builder\n"
    "  Init Containers:\n"
    "   init:\n"
    "    Image:      busybox\n"
    "    Port:       <none>\n"
    "    Host Port:  <none>\n"
    "    Command:\n"
    "      sh\n"
    "      -c\n"
    "      echo hi\n"
    "      exit 0\n"
    "    Environment:  <none>\n"
    "    Mounts:       <none>\n"
    "  Containers:\n"
    "   nginx:\n"
    "    Image:      nginx:1.25\n"
    "    Port:       80/TCP\n"
    "    Host Port:  0/TCP\n"
    "    Limits:\n"
    "      cpu:     500m\n"
    "      memory:  128Mi\n"
    "    Requests:\n"
    "      cpu:      250m\n"
    "      memory:   64Mi\n"
    "    Readiness:  http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3\n"
    "    Environment:\n"
    "      MODE:  prod\n"
    "    Mounts:\n"
    "      /data from data (rw)\n"
    "  Volumes:\n"
    "   data:\n"
    "    Type:               EmptyDir (a temporary directory that shares a pod's lifetime)\n"
    "    Medium:             \n"
    "    SizeLimit:          <unset>\n"
    "  Priority Class Name:  high\n"
    "  Node-Selectors:       disk=ssd\n"
    "                        zone=a\n"
    "  Tolerations:          dedicated=web:NoSchedule\n"
    "Conditions:\n"
    "  Type           Status  Reason\n"
    "  ----           ------  ------\n"
    "  Available      True    MinimumReplicasAvailable\n"
    "  Progressing    True    NewReplicaSetAvailable\n"
    "OldReplicaSets:  web-4c6a8 (1/0 replicas created)\n"
    "NewReplicaSet:   web-5d7b9 (3/3 replicas created)\n"
    "Events:\n"
    "  Type    Reason             Age    From                   Message\n"
    "  ----    ------             ----   ----                   -------\n"
    "  Normal  ScalingReplicaSet  3h10m  deployment-controller  Scaled up replica set web-5d7b9 to 3\n"
)


def test_describe_deployment_golden() -> None:
    """A deployment prints replicas, strategy, the pod template and its old and new replica sets."""
    related = Related(replica_sets=[NEW_RS, OLD_RS])
    assert describe(DEPLOYMENT, [DEPLOYMENT_EVENT], NOW, related=related) == GOLDEN_DEPLOYMENT


def test_describe_deployment_without_replica_sets_omits_them() -> None:
    """With no owned replica sets the OldReplicaSets/NewReplicaSet lines are left out."""
    stranger = {**OLD_RS, "metadata": {**OLD_RS["metadata"], "ownerReferences": []}}
    text = describe(DEPLOYMENT, None, NOW, related=Related(replica_sets=[stranger]))
    assert "OldReplicaSets" not in text
    assert "NewReplicaSet:" not in text
    assert "Events" not in text


GOLDEN_REPLICA_SET = (
    "Name:           web-5d7b9\n"
    "Namespace:      default\n"
    "Selector:       app=web,pod-template-hash=5d7b9\n"
    "Labels:         app=web\n"
    "                pod-template-hash=5d7b9\n"
    "Annotations:    <none>\n"
    "Controlled By:  Deployment/web\n"
    "Replicas:       3 current / 3 desired\n"
    "Pods Status:    1 Running / 0 Waiting / 0 Succeeded / 0 Failed\n"
    "Pod Template:\n"
    "  Labels:           app=web\n"
    "                    pod-template-hash=5d7b9\n"
    "  Annotations:      kubectl.kubernetes.io/restartedAt: 2024-06-01T10:00:00Z\n"
    "  Service Account:  builder\n"
    "  Init Containers:\n"
    "   init:\n"
    "    Image:      busybox\n"
    "    Port:       <none>\n"
    "    Host Port:  <none>\n"
    "    Command:\n"
    "      sh\n"
    "      -c\n"
    "      echo hi\n"
    "      exit 0\n"
    "    Environment:  <none>\n"
    "    Mounts:       <none>\n"
    "  Containers:\n"
    "   nginx:\n"
    "    Image:      nginx:1.25\n"
    "    Port:       80/TCP\n"
    "    Host Port:  0/TCP\n"
    "    Limits:\n"
    "      cpu:     500m\n"
    "      memory:  128Mi\n"
    "    Requests:\n"
    "      cpu:      250m\n"
    "      memory:   64Mi\n"
    "    Readiness:  http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3\n"
    "    Environment:\n"
    "      MODE:  prod\n"
    "    Mounts:\n"
    "      /data from data (rw)\n"
    "  Volumes:\n"
    "   data:\n"
    "    Type:               EmptyDir (a temporary directory that shares a pod's lifetime)\n"
    "    Medium:             \n"
    "    SizeLimit:          <unset>\n"
    "  Priority Class Name:  high\n"
    "  Node-Selectors:       disk=ssd\n"
    "                        zone=a\n"
    "  Tolerations:          dedicated=web:NoSchedule\n"
    "Conditions:\n"
    "  Type             Status  Reason\n"
    "  ----             ------  ------\n"
    "  ReplicaFailure   True    FailedCreate\n"
    "Events:            <none>\n"
)


def test_describe_replica_set_golden() -> None:
    """A replica set prints its selector, owner, replica counts, owned pods' phases and conditions."""
    pods = [
        {
            **POD,
            "metadata": {
                **POD["metadata"],
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "web-5d7b9",
                        "uid": "uid-web-5d7b9",
                        "controller": True,
                    }
                ],
            },
        },
        DYING_POD,
    ]
    assert describe(NEW_RS, [], NOW, related=Related(pods=pods)) == GOLDEN_REPLICA_SET


STATEFUL_SET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": meta("db"),
    "spec": {
        "replicas": 3,
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "db"}},
            "spec": {
                "containers": [
                    {
                        "name": "pg",
                        "image": "postgres:16",
                        "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql"}],
                    }
                ]
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "pgdata", "labels": {"app": "db"}},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "local",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
            {"metadata": {"name": "scratch"}, "spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}},
        ],
    },
    "status": {"replicas": 2},
}

GOLDEN_STATEFUL_SET = (
    "Name:               db\n"
    "Namespace:          default\n"
    "CreationTimestamp:  Sat, 01 Jun 2024 11:17:30 +0000\n"
    "Selector:           app=db\n"
    "Labels:             <none>\n"
    "Annotations:        <none>\n"
    "Replicas:           3 desired | 2 total\n"
    "Update Strategy:    RollingUpdate\n"
    "  Partition:        1\n"
    "  MaxUnavailable:   1\n"
    "Pods Status:        1 Running / 1 Waiting / 0 Succeeded / 1 Failed\n"
    "Pod Template:\n"
    "  Labels:  app=db\n"
    "  Containers:\n"
    "   pg:\n"
    "    Image:        postgres:16\n"
    "    Port:         <none>\n"
    "    Host Port:    <none>\n"
    "    Environment:  <none>\n"
    "    Mounts:\n"
    "      /var/lib/postgresql from pgdata (rw)\n"
    "  Volumes:         <none>\n"
    "  Node-Selectors:  <none>\n"
    "  Tolerations:     <none>\n"
    "Volume Claims:\n"
    "  Name:          pgdata\n"
    "  StorageClass:  local\n"
    "  Labels:        app=db\n"
    "  Annotations:   <none>\n"
    "  Capacity:      1Gi\n"
    "  Access Modes:  [ReadWriteOnce]\n"
    "  Name:          scratch\n"
    "  StorageClass:  \n"
    "  Labels:        <none>\n"
    "  Annotations:   <none>\n"
    "  Capacity:      <default>\n"
    "  Access Modes:  [ReadWriteOnce ReadOnlyMany]\n"
    "Events:          <none>\n"
)


def test_describe_stateful_set_golden() -> None:
    """A stateful set prints its update strategy, pod phases and volume claim templates."""
    assert describe(STATEFUL_SET, [], NOW, related=Related(pods=DB_PODS)) == GOLDEN_STATEFUL_SET


DAEMON_SET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": meta("agent", labels={"app": "agent"}),
    "spec": {
        "selector": {
            "matchLabels": {"app": "agent"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["b", "a"]}],
        },
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "containers": [{"name": "a", "image": "agent:1", "resources": {"requests": {"cpu": "50m"}}}],
            },
        },
    },
    "status": {
        "desiredNumberScheduled": 2,
        "currentNumberScheduled": 2,
        "numberReady": 1,
        "updatedNumberScheduled": 2,
        "numberAvailable": 1,
        "numberMisscheduled": 0,
    },
}

GOLDEN_DAEMON_SET = (
    "Name:           agent\n"
    "Namespace:      default\n"
    "Selector:       app=agent,tier notin (a,b)\n"
    "Node-Selector:  kubernetes.io/os=linux\n"
    "Labels:         app=agent\n"
    "Annotations:    <none>\n"
    "Desired Number of Nodes Scheduled: 2\n"
    "Current Number of Nodes Scheduled: 2\n"
    "Number of Nodes Scheduled with Up-to-date Pods: 2\n"
    "Number of Nodes Scheduled with Available Pods: 1\n"
    "Number of Nodes Misscheduled: 0\n"
    "Pods Status:  0 Running / 0 Waiting / 1 Succeeded / 0 Failed\n"
    "Pod Template:\n"
    "  Labels:  app=agent\n"
    "  Containers:\n"
    "   a:\n"
    "    Image:      agent:1\n"
    "    Port:       <none>\n"
    "    Host Port:  <none>\n"
    "    Requests:\n"
    "      cpu:         50m\n"
    "    Environment:   <none>\n"
    "    Mounts:        <none>\n"
    "  Volumes:         <none>\n"
    "  Node-Selectors:  kubernetes.io/os=linux\n"
    "  Tolerations:     <none>\n"
    "Events:            <none>\n"
)


def test_describe_daemon_set_golden() -> None:
    """A daemon set prints its node counts and the phases of the pods it controls."""
    owned = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            "agent-x",
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "agent",
                    "uid": "uid-agent",
                    "controller": True,
                }
            ],
        ),
        "status": {"phase": "Succeeded"},
    }
    assert describe(DAEMON_SET, [], NOW, related=Related(pods=[owned, POD])) == GOLDEN_DAEMON_SET


JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": meta(
        "pi",
        labels={"job-name": "pi"},
        ownerReferences=[
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "hello",
                "uid": "uid-hello",
                "controller": True,
            }
        ],
    ),
    "spec": {
        "parallelism": 2,
        "completions": 4,
        "completionMode": "Indexed",
        "suspend": False,
        "backoffLimit": 6,
        "ttlSecondsAfterFinished": 100,
        "activeDeadlineSeconds": 600,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {
            "metadata": {"labels": {"job-name": "pi"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "pi",
                        "image": "perl",
                        "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                    }
                ],
            },
        },
    },
    "status": {
        "startTime": ago(minutes=30),
        "completionTime": ago(minutes=27, seconds=18),
        "succeeded": 4,
        "ready": 0,
        "completedIndexes": "0-3",
    },
}

GOLDEN_JOB = (
    "Name:                        pi\n"
    "Namespace:                   default\n"
    "Selector:                    batch.kubernetes.io/controller-uid=u1\n"
    "Labels:                      job-name=pi\n"
    "Annotations:                 <none>\n"
    "Controlled By:               CronJob/hello\n"
    "Parallelism:                 2\n"
    "Completions:                 4\n"
    "Completion Mode:             Indexed\n"
    "Suspend:                     false\n"
    "Backoff Limit:               6\n"
    "TTL Seconds After Finished:  100\n"
    "Start Time:                  Sat, 01 Jun 2024 11:30:00 +0000\n"
    "Completed At:                Sat, 01 Jun 2024 11:32:42 +0000\n"
    "Duration:                    2m42s\n"
    "Active Deadline Seconds:     600s\n"
    "Pods Statuses:               0 Active (0 Ready) / 4 Succeeded / 0 Failed\n"
    "Completed Indexes:           0-3\n"
    "Pod Template:\n"
    "  Labels:  job-name=pi\n"
    "  Containers:\n"
    "   pi:\n"
    "    Image:      perl\n"
    "    Port:       <none>\n"
    "    Host Port:  <none>\n"
    "    Command:\n"
    "      perl\n"
    "      -Mbignum=bpi\n"
    "      -wle\n"
    "      print bpi(2000)\n"
    "    Environment:   <none>\n"
    "    Mounts:        <none>\n"
    "  Volumes:         <none>\n"
    "  Node-Selectors:  <none>\n"
    "  Tolerations:     <none>\n"
    "Events:            <none>\n"
)


def test_describe_job_golden() -> None:
    """A job prints its completion settings, times, duration and pod counts."""
    assert describe(JOB, [], NOW) == GOLDEN_JOB


CRON_JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": meta("hello"),
    "spec": {
        "schedule": "*/5 * * * *",
        "concurrencyPolicy": "Forbid",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "startingDeadlineSeconds": 60,
        "jobTemplate": {
            "spec": {
                "parallelism": 1,
                "activeDeadlineSeconds": 30,
                "template": {
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "containers": [{"name": "hello", "image": "busybox"}],
                    }
                },
            }
        },
    },
    "status": {
        "lastScheduleTime": ago(minutes=5),
        "active": [{"kind": "Job", "name": "hello-1"}, {"kind": "Job", "name": "hello-2"}],
    },
}

GOLDEN_CRON_JOB = (
    "Name:                          hello\n"
    "Namespace:                     default\n"
    "Labels:                        <none>\n"
    "Annotations:                   <none>\n"
    "Schedule:                      */5 * * * *\n"
    "Concurrency Policy:            Forbid\n"
    "Suspend:                       False\n"
    "Successful Job History Limit:  3\n"
    "Failed Job History Limit:      <unset>\n"
    "Starting Deadline Seconds:     60s\n"
    "Selector:                      <unset>\n"
    "Parallelism:                   1\n"
    "Completions:                   <unset>\n"
    "Active Deadline Seconds:       30s\n"
    "Pod Template:\n"
    "  Labels:  <none>\n"
    "  Containers:\n"
    "   hello:\n"
    "    Image:           busybox\n"
    "    Port:            <none>\n"
    "    Host Port:       <none>\n"
    "    Environment:     <none>\n"
    "    Mounts:          <none>\n"
    "  Volumes:           <none>\n"
    "  Node-Selectors:    <none>\n"
    "  Tolerations:       <none>\n"
    "Last Schedule Time:  Sat, 01 Jun 2024 11:55:00 +0000\n"
    "Active Jobs:         hello-1, hello-2\n"
    "Events:              <none>\n"
)


def test_describe_cron_job_golden() -> None:
    """A cron job prints its schedule, history limits, job template and active jobs."""
    assert describe(CRON_JOB, [], NOW) == GOLDEN_CRON_JOB


# ---------------------------------------------------------------------------------------------
# Services and configuration

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": meta("web", labels={"app": "web"}),
    "spec": {
        "type": "NodePort",
        "selector": {"app": "web"},
        "clusterIP": "10.96.12.7",
        "clusterIPs": ["10.96.12.7"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "externalIPs": ["192.0.2.1"],
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"},
        ],
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster",
        "internalTrafficPolicy": "Cluster",
    },
}
SLICES = [
    {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("web-abc", labels={"kubernetes.io/service-name": "web"}),
        "addressType": "IPv4",
        "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "protocol": "TCP"},
        ],
        "endpoints": [{"addresses": [f"10.0.0.{i}"], "conditions": {"ready": i != 3}} for i in range(1, 7)],
    }
]

GOLDEN_SERVICE = (
    "Name:                     web\n"
    "Namespace:                default\n"
    "Labels:                   app=web\n"
    "Annotations:              <none>\n"
    "Selector:                 app=web\n"
    "Type:                     NodePort\n"
    "IP Family Policy:         SingleStack\n"
    "IP Families:              IPv4\n"
    "IP:                       10.96.12.7\n"
    "IPs:                      10.96.12.7\n"
    "External IPs:             192.0.2.1\n"
    "Port:                     http  80/TCP\n"
    "TargetPort:               8080/TCP\n"
    "NodePort:                 http  30080/TCP\n"
    "Endpoints:                10.0.0.1:8080,10.0.0.2:8080,10.0.0.4:8080 + 2 more...\n"
    "Port:                     metrics  9090/TCP\n"
    "TargetPort:               metrics/TCP\n"
    "Endpoints:                10.0.0.1:9090,10.0.0.2:9090,10.0.0.4:9090 + 2 more...\n"
    "Session Affinity:         None\n"
    "External Traffic Policy:  Cluster\n"
    "Internal Traffic Policy:  Cluster\n"
    "Events:                   <none>\n"
)


def test_describe_service_golden() -> None:
    """A service prints its IPs, one block per port with the ready endpoints behind it."""
    assert describe(SERVICE, [], NOW, related=Related(endpoint_slices=SLICES)) == GOLDEN_SERVICE


def test_describe_service_from_endpoints_and_load_balancer() -> None:
    """Without slices the Endpoints object is used; a load balancer lists its ingress points."""
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta("lb"),
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}],
                "ports": [{"port": 8443, "protocol": "TCP"}],
            }
        ],
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("lb"),
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.1.2",
            "loadBalancerIP": "198.51.100.1",
            "ports": [{"port": 443, "targetPort": 8443, "nodePort": 31443, "protocol": "TCP"}],
            "sessionAffinity": "ClientIP",
            "healthCheckNodePort": 32000,
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
        },
        "status": {
            "loadBalancer": {
                "ingress": [{"ip": "198.51.100.7", "ipMode": "VIP"}, {"hostname": "lb.example.com"}]
            }
        },
    }
    assert describe(service, None, NOW, related=Related(endpoints=endpoints)) == (
        "Name:                        lb\n"
        "Namespace:                   default\n"
        "Labels:                      <none>\n"
        "Annotations:                 <none>\n"
        "Selector:                    <none>\n"
        "Type:                        LoadBalancer\n"
        "IP Families:                 <none>\n"
        "IP:                          10.96.1.2\n"
        "IPs:                         <none>\n"
        "Desired LoadBalancer IP:     198.51.100.1\n"
        "LoadBalancer Ingress:        198.51.100.7 (VIP), lb.example.com\n"
        "Port:                        <unset>  443/TCP\n"
        "TargetPort:                  8443/TCP\n"
        "NodePort:                    <unset>  31443/TCP\n"
        "Endpoints:                   10.0.0.1:8443,[fd00::2]:8443\n"
        "Session Affinity:            ClientIP\n"
        "HealthCheck NodePort:        32000\n"
        "LoadBalancer Source Ranges:  10.0.0.0/8\n"
    )


CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": meta("settings"),
    "data": {"level": "debug", "app.conf": "a=1\nb=2\n"},
    "binaryData": {"blob": "AAECAw=="},
}


def test_describe_config_map() -> None:
    """A config map prints each value under a rule, binary data by size, then events."""
    assert describe(CONFIG_MAP, [], NOW) == (
        "Name:         settings\n"
        "Namespace:    default\n"
        "Labels:       <none>\n"
        "Annotations:  <none>\n"
        "\n"
        "Data\n"
        "====\n"
        "app.conf:\n"
        "----\n"
        "a=1\n"
        "b=2\n"
        "\n"
        "\n"
        "level:\n"
        "----\n"
        "debug\n"
        "\n"
        "\n"
        "BinaryData\n"
        "====\n"
        "blob: 4 bytes\n"
        "\n"
        "Events:  <none>\n"
    )


def test_describe_secret_shows_sizes_only() -> None:
    """A secret prints its type and the decoded size of each key, never the values, and no events."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("creds", annotations={"owner": "team"}),
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4=", "empty": ""},
    }
    assert describe(secret, [POD_EVENTS[0]], NOW) == (
        "Name:         creds\n"
        "Namespace:    default\n"
        "Labels:       <none>\n"
        "Annotations:  owner: team\n"
        "\n"
        "Type:  Opaque\n"
        "\n"
        "Data\n"
        "====\n"
        "empty:     0 bytes\n"
        "password:  7 bytes\n"
        "user:      5 bytes\n"
    )


def test_describe_service_account_token_secret_shows_the_token() -> None:
    """kubectl prints a service-account token in full, as it does."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("sa"),
        "type": "kubernetes.io/service-account-token",
        "data": {"token": "ZXlKaGJHY2k=", "ca.crt": "eA=="},
    }
    assert describe(secret, None, NOW).endswith("ca.crt:  1 bytes\ntoken:   eyJhbGci\n")


def test_describe_namespace() -> None:
    """A namespace prints its phase and conditions and no events."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta("team-a", None, labels={"kubernetes.io/metadata.name": "team-a"}),
        "status": {
            "phase": "Terminating",
            "conditions": [
                {
                    "type": "NamespaceDeletionContentFailure",
                    "status": "False",
                    "lastTransitionTime": ago(minutes=3),
                    "reason": "ContentDeleted",
                    "message": "All content successfully deleted",
                }
            ],
        },
    }
    assert describe(namespace, [NODE_EVENT], NOW) == (
        "Name:         team-a\n"
        "Labels:       kubernetes.io/metadata.name=team-a\n"
        "Annotations:  <none>\n"
        "Status:       Terminating\n"
        "Conditions:\n"
        "  Type                             Status  LastTransitionTime               Reason          Message\n"
        "  ----                             ------  ------------------               ------          -------\n"
        "  NamespaceDeletionContentFailure  False   Sat, 01 Jun 2024 11:57:00 +0000  ContentDeleted  "
        "All content successfully deleted\n"
    )


def test_describe_endpoints() -> None:
    """Endpoints print each subset's ready and not-ready addresses and its ports."""
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "notReadyAddresses": [{"ip": "10.0.0.3"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            },
            {"addresses": [{"ip": "10.0.1.1"}]},
        ],
    }
    assert describe(endpoints, [], NOW) == (
        "Name:         web\n"
        "Namespace:    default\n"
        "Labels:       <none>\n"
        "Annotations:  <none>\n"
        "Subsets:\n"
        "  Addresses:          10.0.0.1,10.0.0.2\n"
        "  NotReadyAddresses:  10.0.0.3\n"
        "  Ports:\n"
        "    Name     Port  Protocol\n"
        "    ----     ----  --------\n"
        "    http     8080  TCP\n"
        "    <unset>  53    UDP\n"
        "\n"
        "  Addresses:          10.0.1.1\n"
        "  NotReadyAddresses:  <none>\n"
        "\n"
        "Events:  <none>\n"
    )


# ---------------------------------------------------------------------------------------------
# Everything else


def test_describe_generic_kind_prints_every_field() -> None:
    """Kinds without a describer print metadata then all fields with smart labels, then events."""
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta(
            "kube-scheduler",
            "kube-system",
            labels={"tier": "control-plane"},
            resourceVersion="7",
            managedFields=[{"manager": "x"}],
        ),
        "spec": {
            "holderIdentity": "sched-1_abc",
            "leaseDurationSeconds": 15,
            "preferredHolders": ["a", "b"],
            "renewTime": ago_micro(seconds=2),
            "ratio": 0.5,
            "podIPs": [{"ip": "1"}],
        },
    }
    lease_event = event(
        "e7",
        {"kind": "Lease", "name": "kube-scheduler"},
        type="Normal",
        reason="LeaderElection",
        message="sched-1 became leader",
        source={"component": "default-scheduler"},
        firstTimestamp=ago(hours=5),
        lastTimestamp=ago(hours=5),
        count=1,
    )
    assert describe(lease, [lease_event], NOW) == (
        "Name:         kube-scheduler\n"
        "Namespace:    kube-system\n"
        "Labels:       tier=control-plane\n"
        "Annotations:  <none>\n"
        "API Version:  coordination.k8s.io/v1\n"
        "Kind:         Lease\n"
        "Metadata:\n"
        "  Creation Timestamp:  2024-06-01T11:17:30Z\n"
        "  Resource Version:    7\n"
        "  UID:                 uid-kube-scheduler\n"
        "Spec:\n"
        "  Holder Identity:         sched-1_abc\n"
        "  Lease Duration Seconds:  15\n"
        "  Pod I Ps:\n"
        "    Ip:  1\n"
        "  Preferred Holders:\n"
        "    a\n"
        "    b\n"
        "  Ratio:       0.5\n"
        "  Renew Time:  2024-06-01T11:59:58.000000Z\n"
        "Events:\n"
        "  Type    Reason          Age   From               Message\n"
        "  ----    ------          ----  ----               -------\n"
        "  Normal  LeaderElection  5h    default-scheduler  sched-1 became leader\n"
    )


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("apiVersion", "API Version"),
        ("holderIdentity", "Holder Identity"),
        ("uid", "UID"),
        ("podIPs", "Pod I Ps"),
        ("HTTPServer", "HTTP Server"),
        ("node-role", "Node - Role"),
        ("$patch", "$patch"),
        ("x2", "x2"),
    ],
)
def test_smart_label(field: str, label: str) -> None:
    """Field names become kubectl's title-cased labels; names with other characters stay as they are."""
    assert smart_label(field) == label


# ---------------------------------------------------------------------------------------------
# Shared pieces


def test_events_sort_by_last_time_and_fall_back_to_reporting_controller() -> None:
    """Events sort by series/last/event time and use reportingController when there is no source."""
    text = describe(CONFIG_MAP, POD_EVENTS, NOW)
    assert text.endswith(
        "Events:\n"
        "  Type     Reason     Age                 From               Message\n"
        "  ----     ------     ----                ----               -------\n"
        "  Normal   Scheduled  42m                 default-scheduler  Successfully assigned default/web-5d7b9-abcde to node-1\n"
        "  Normal   Pulled     41m                 kubelet            Container image pulled\n"
        "  Warning  Unhealthy  20m (x5 over 39m)   kubelet            Readiness probe failed\n"
        "  Warning  BackOff    12m (x12 over 40m)  kubelet            Back-off restarting failed container sidecar\n"
    )


def test_no_events_section_when_events_are_not_given() -> None:
    """events=None leaves the section out, like --show-events=false; [] prints <none>."""
    assert "Events" not in describe(CONFIG_MAP, None, NOW)
    assert describe(CONFIG_MAP, [], NOW).endswith("\nEvents:  <none>\n")


def test_times_print_in_the_zone_of_now() -> None:
    """Timestamps use the time zone of `now`, as kubectl uses the local zone."""
    paris = timezone(timedelta(hours=2))
    text = describe(JOB, None, NOW.astimezone(paris))
    assert "Start Time:                  Sat, 01 Jun 2024 13:30:00 +0200\n" in text


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        (
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}],
            "Guaranteed",
        ),
        # requests are defaulted from limits by the apiserver; without that, only-limits is Burstable
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Burstable"),
        (
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}],
            "Burstable",
        ),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
        (
            [{"limits": {"cpu": "1000m", "memory": "1024Mi"}, "requests": {"cpu": "1", "memory": "1Gi"}}],
            "Guaranteed",
        ),
    ],
)
def test_pod_qos_class(resources: list[dict[str, Any]], expected: str) -> None:
    """QoS is computed from cpu/memory requests and limits when status.qosClass is unset."""
    pod = {"spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}}
    assert pod_qos_class(pod) == expected


def test_terminating_pod_status() -> None:
    """A pod being deleted shows how long it has been terminating and its grace period."""
    text = describe(DYING_POD, [], NOW)
    assert "Status:                    Terminating (lasts 60s)\nTermination Grace Period:  30s\n" in text
    assert "Reason:                    Evicted\nMessage:                   node is low on memory\n" in text
    # Limits without requests are Burstable here: the apiserver would have defaulted requests.
    assert "QoS Class:        Burstable\n" in text
