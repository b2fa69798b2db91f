"""kubectl's human and machine output: ages, table cells, table layout, names, YAML and JSON.

Golden tables were checked against kubectl 1.32 printing the same cells (a loopback fake
apiserver served them); YAML/JSON goldens against `kubectl create --dry-run=client -o yaml|json`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kplane.cli import printers

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "creationTimestamp": ago(minutes=5), "uid": f"uid-{name}"}
    if namespace:
        out["namespace"] = namespace
    out.update(extra)
    return out


def pod(
    name: str = "p", *, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **m: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, **m),
        "spec": spec
        if spec is not None
        else {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"},
        "status": status or {},
    }


def running(
    ready: bool = True, restarts: int = 0, last: str | None = None, name: str = "app"
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(minutes=4)}},
    }
    if last:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last}}
    return status


# ---------------------------------------------------------------------------------------------
# Ages


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (52 * 3600, "2d4h"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400 + 5 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (8 * 365 * 86400 + 40 * 86400, "8y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: float, expected: str) -> None:
    """Durations print with apimachinery's HumanDuration precision rules."""
    assert printers.human_duration_seconds(seconds) == expected


def test_format_age_handles_unset_naive_and_future_times() -> None:
    """An unset time is "<unknown>", naive times are UTC, and skew beyond 2s is "<invalid>"."""
    assert printers.format_age(None, NOW) == "<unknown>"
    assert printers.format_age(datetime(2024, 6, 1, 11, 0, 0), NOW) == "60m"
    assert printers.format_age(NOW + timedelta(seconds=10), NOW) == "<invalid>"
    assert printers.format_age(printers.parse_time("2024-06-01T11:59:59.500000Z"), NOW) == "0s"


# ---------------------------------------------------------------------------------------------
# Pod cells (cases from kubectl's printers_test.go, in JSON form)


RESTARTED_10S = ago(seconds=10)


@pytest.mark.parametrize(
    ("spec", "status", "extra_meta", "expected"),
    [
        # ready/total counts, phase passes through, restarts summed
        (
            {"containers": [{}, {}]},
            {
                "phase": "podPhase",
                "containerStatuses": [
                    {"ready": True, "restartCount": 3, "state": {"running": {}}},
                    {"restartCount": 3},
                ],
            },
            {},
            ("1/2", "podPhase", "6"),
        ),
        # a waiting container's reason overrides the phase
        (
            {"containers": [{}, {}]},
            {
                "phase": "podPhase",
                "containerStatuses": [
                    {"ready": True, "restartCount": 3, "state": {"running": {}}},
                    {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                ],
            },
            {},
            ("1/2", "ContainerWaitingReason", "6"),
        ),
        # the first container's reason wins (containers are walked last to first)
        (
            {"containers": [{}, {}]},
            {
                "phase": "podPhase",
                "containerStatuses": [
                    {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}},
                    {"restartCount": 3, "state": {"terminated": {"reason": "ContainerTerminatedReason"}}},
                ],
            },
            {},
            ("0/2", "ContainerWaitingReason", "6"),
        ),
        # status.reason replaces the phase
        (
            {"containers": [{}, {}]},
            {
                "reason": "podReason",
                "phase": "podPhase",
                "containerStatuses": [
                    {"ready": True, "restartCount": 3, "state": {"running": {}}},
                    {"ready": True, "restartCount": 3},
                ],
            },
            {},
            ("1/2", "podReason", "6"),
        ),
        # one container completed, one running: NotReady without a Ready condition ...
        (
            {"containers": [{}, {}]},
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "ready": True,
                        "restartCount": 3,
                        "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                    },
                    {"ready": True, "restartCount": 3, "state": {"running": {}}},
                ],
            },
            {},
            ("1/2", "NotReady", "6"),
        ),
        # ... and Running with one
        (
            {"containers": [{}, {}]},
            {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "ready": True,
                        "restartCount": 3,
                        "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                    },
                    {"ready": True, "restartCount": 3, "state": {"running": {}}},
                ],
            },
            {},
            ("1/2", "Running", "6"),
        ),
        # a restarting init container: Init:0/1 and its restarts with the time of the last one
        (
            {"initContainers": [{}], "containers": [{}]},
            {
                "phase": "podPhase",
                "initContainerStatuses": [
                    {
                        "restartCount": 3,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": RESTARTED_10S}},
                    }
                ],
                "containerStatuses": [{"state": {"waiting": {}}}],
            },
            {},
            ("0/1", "Init:0/1", "3 (10s ago)"),
        ),
        # a completed first init container moves the count on
        (
            {"initContainers": [{}, {}], "containers": [{}]},
            {
                "phase": "podPhase",
                "initContainerStatuses": [
                    {"state": {"terminated": {}}},
                    {
                        "restartCount": 3,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": RESTARTED_10S}},
                    },
                ],
                "containerStatuses": [{"state": {"waiting": {}}}],
            },
            {},
            ("0/1", "Init:1/2", "3 (10s ago)"),
        ),
        # init done: only app container restarts count
        (
            {"initContainers": [{}], "containers": [{}]},
            {
                "phase": "Running",
                "initContainerStatuses": [
                    {
                        "restartCount": 2,
                        "state": {"terminated": {}},
                        "lastState": {"terminated": {"finishedAt": ago(minutes=2)}},
                    }
                ],
                "containerStatuses": [
                    {
                        "restartCount": 4,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": ago(seconds=20)}},
                    }
                ],
            },
            {},
            ("0/1", "Running", "4 (20s ago)"),
        ),
        # a failed init container
        (
            {"initContainers": [{}], "containers": [{}]},
            {
                "phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
            },
            {},
            ("0/1", "Init:Error", "0"),
        ),
        (
            {"initContainers": [{}], "containers": [{}]},
            {"phase": "Pending", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 2}}}]},
            {},
            ("0/1", "Init:ExitCode:2", "0"),
        ),
        (
            {"initContainers": [{}], "containers": [{}]},
            {
                "phase": "Pending",
                "initContainerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            },
            {},
            ("0/1", "Init:CrashLoopBackOff", "0"),
        ),
        # a container killed by a signal without a reason
        (
            {"containers": [{}]},
            {
                "phase": "Running",
                "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "signal": 9}}}],
            },
            {},
            ("0/1", "Signal:9", "0"),
        ),
        # scheduling gates
        (
            {"containers": [{}, {}]},
            {
                "phase": "podPhase",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
            },
            {},
            ("0/2", "SchedulingGated", "0"),
        ),
        # finished pods keep their status while being deleted; live ones are Terminating
        (
            {"containers": [{}]},
            {
                "phase": "Succeeded",
                "containerStatuses": [{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
            },
            {"deletionTimestamp": ago(seconds=10)},
            ("0/1", "Completed", "0"),
        ),
        (
            {"containers": [{}]},
            {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]},
            {"deletionTimestamp": ago(seconds=10)},
            ("0/1", "Terminating", "0"),
        ),
        (
            {"containers": [{}]},
            {"phase": "Pending"},
            {"deletionTimestamp": ago(seconds=10)},
            ("0/1", "Terminating", "0"),
        ),
        # a pod on a lost node: NodeLost, then Unknown once it is being deleted
        ({"containers": [{}]}, {"phase": "Running", "reason": "NodeLost"}, {}, ("0/1", "NodeLost", "0")),
        (
            {"containers": [{}]},
            {"phase": "Running", "reason": "NodeLost"},
            {"deletionTimestamp": ago(seconds=1)},
            ("0/1", "Unknown", "0"),
        ),
        # sidecars (restartable init containers) count as containers once started
        (
            {
                "initContainers": [
                    {"name": "s1", "restartPolicy": "Always"},
                    {"name": "s2", "restartPolicy": "Always"},
                ],
                "containers": [{}],
            },
            {
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [
                    {
                        "name": "s1",
                        "restartCount": 3,
                        "started": True,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": RESTARTED_10S}},
                    },
                    {"name": "s2", "started": True, "state": {"running": {}}},
                ],
                "containerStatuses": [
                    {
                        "ready": True,
                        "restartCount": 4,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": ago(seconds=20)}},
                    }
                ],
            },
            {},
            ("1/3", "Running", "7 (10s ago)"),
        ),
        (
            {"initContainers": [{"name": "s1", "restartPolicy": "Always"}], "containers": [{}]},
            {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "s1", "started": False, "state": {"running": {}}}],
            },
            {},
            ("0/2", "Init:0/1", "0"),
        ),
    ],
)
def test_pod_ready_status_and_restarts(
    spec: dict[str, Any], status: dict[str, Any], extra_meta: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    """READY, STATUS and RESTARTS follow kubectl's printPod for each container state."""
    row = printers.table_row(pod("p", spec=spec, status=status, **extra_meta), NOW, wide=False)
    assert tuple(row[1:4]) == expected


def test_pod_wide_cells() -> None:
    """Wide pods add the IP (podIP, else podIPs[0]), node, nominated node and readiness gates."""
    gated = pod(
        "p",
        spec={
            "containers": [{}, {}],
            "nodeName": "test1",
            "readinessGates": [{"conditionType": "c1"}, {"conditionType": "c2"}, {"conditionType": "c3"}],
        },
        status={
            "phase": "podPhase",
            "podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}],
            "nominatedNodeName": "node1",
            "conditions": [{"type": "c1", "status": "False"}, {"type": "c2", "status": "True"}],
        },
    )
    assert printers.table_row(gated, NOW, wide=True)[5:] == ["1.1.1.1", "test1", "node1", "1/3"]
    bare = pod("q", spec={"containers": [{}]}, status={})
    assert printers.table_row(bare, NOW, wide=True)[5:] == ["<none>", "<none>", "<none>", "<none>"]


# ---------------------------------------------------------------------------------------------
# Other kinds

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "sidecar", "image": "busybox"}]
    },
}


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(name, None, labels=labels or {}),
        "spec": spec or {},
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            node(
                "n1",
                labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"},
                status={
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "nodeInfo": {"kubeletVersion": "v1.32"},
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.2"}],
                },
            ),
            [
                "n1",
                "Ready",
                "control-plane,worker",
                "5m",
                "v1.32",
                "127.0.0.2",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>",
            ],
        ),
        (
            node(
                "n2",
                spec={"unschedulable": True},
                status={"conditions": [{"type": "Ready", "status": "False"}]},
            ),
            [
                "n2",
                "NotReady,SchedulingDisabled",
                "<none>",
                "5m",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>",
            ],
        ),
        (
            node(
                "n3",
                status={
                    "conditions": [{"type": "Ready", "status": "Unknown"}],
                    "addresses": [{"type": "ExternalIP", "address": "203.0.113.9"}],
                    "nodeInfo": {
                        "osImage": "Debian",
                        "kernelVersion": "6.1",
                        "containerRuntimeVersion": "process://1",
                    },
                },
            ),
            ["n3", "NotReady", "<none>", "5m", "", "<none>", "203.0.113.9", "Debian", "6.1", "process://1"],
        ),
        (
            node("n4"),
            ["n4", "Unknown", "<none>", "5m", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta("web"),
                "spec": {
                    "type": "NodePort",
                    "clusterIP": "10.96.0.7",
                    "selector": {"b": "2", "a": "1"},
                    "ports": [
                        {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                        {"port": 53, "protocol": "UDP"},
                    ],
                },
            },
            ["web", "NodePort", "10.96.0.7", "<none>", "80:30080/TCP,53/UDP", "5m", "a=1,b=2"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta("lb"),
                "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.1.1"], "ports": [{"port": 443}]},
            },
            ["lb", "LoadBalancer", "10.96.1.1", "<pending>", "443/TCP", "5m", "<none>"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta("lb2"),
                "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.1.2"], "externalIPs": ["192.0.2.10"]},
                "status": {
                    "loadBalancer": {
                        "ingress": [{"hostname": "a-long-load-balancer.example.com"}, {"ip": "198.51.100.7"}]
                    }
                },
            },
            [
                "lb2",
                "LoadBalancer",
                "10.96.1.2",
                "198.51.100.7,a-long-load-balancer.example.com,192.0.2.10",
                "<none>",
                "5m",
                "<none>",
            ],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta("ext"),
                "spec": {"type": "ExternalName", "externalName": "db.example.com"},
            },
            ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": meta("web"),
                "subsets": [
                    {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]},
                    {
                        "addresses": [{"ip": "10.0.0.3"}, {"ip": "fd00::4"}],
                        "ports": [{"port": 80}, {"port": 443}],
                    },
                ],
            },
            ["web", "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 3 more...", "5m"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": meta("ipv6"),
                "subsets": [
                    {"addresses": [{"ip": "fd00::4"}], "ports": [{"port": 443}]},
                    {"addresses": [{"ip": "10.0.0.9"}]},
                ],
            },
            ["ipv6", "[fd00::4]:443,10.0.0.9", "5m"],
        ),
        ({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("none")}, ["none", "<none>", "5m"]),
        (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta("cm"),
                "data": {"a": "1", "b": "2"},
                "binaryData": {"c": "AA=="},
            },
            ["cm", "3", "5m"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta("s"),
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": "", "tls.key": ""},
            },
            ["s", "kubernetes.io/tls", "2", "5m"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": meta("doomed", None),
                "status": {"phase": "Terminating"},
            },
            ["doomed", "Terminating", "5m"],
        ),
        (
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta("kube-scheduler", "kube-system"),
                "spec": {"holderIdentity": "sched-1"},
            },
            ["kube-scheduler", "sched-1", "5m"],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": meta("web-1"),
                "spec": {
                    "replicas": 3,
                    "selector": {
                        "matchLabels": {"app": "web"},
                        "matchExpressions": [
                            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                            {"key": "canary", "operator": "DoesNotExist"},
                            {"key": "tier", "operator": "Exists"},
                            {"key": "zone", "operator": "NotIn", "values": ["b"]},
                        ],
                    },
                    "template": TEMPLATE,
                },
                "status": {"replicas": 3, "readyReplicas": 2},
            },
            [
                "web-1",
                "3",
                "3",
                "2",
                "5m",
                "nginx,sidecar",
                "nginx:1.25,busybox",
                "app=web,!canary,env in (dev,prod),tier,zone notin (b)",
            ],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "ReplicationController",
                "metadata": meta("legacy"),
                "spec": {"selector": {"app": "legacy"}, "template": TEMPLATE},
                "status": {"replicas": 1},
            },
            ["legacy", "1", "1", "0", "5m", "nginx,sidecar", "nginx:1.25,busybox", "app=legacy"],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta("web"),
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
                "status": {"updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
            },
            ["web", "2/3", "3", "2", "5m", "nginx,sidecar", "nginx:1.25,busybox", "app=web"],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": meta("proxy"),
                "spec": {
                    "selector": {"matchLabels": {"k8s-app": "proxy"}},
                    "template": {
                        "spec": {
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                            "containers": [{"name": "p", "image": "proxy:1"}],
                        }
                    },
                },
                "status": {
                    "desiredNumberScheduled": 3,
                    "currentNumberScheduled": 3,
                    "numberReady": 2,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 2,
                },
            },
            [
                "proxy",
                "3",
                "3",
                "2",
                "3",
                "2",
                "kubernetes.io/os=linux",
                "5m",
                "p",
                "proxy:1",
                "k8s-app=proxy",
            ],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": meta("db"),
                "spec": {"replicas": 3, "template": TEMPLATE},
                "status": {"readyReplicas": 1},
            },
            ["db", "1/3", "5m", "nginx,sidecar", "nginx:1.25,busybox"],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": meta(
                    "db-7c9f",
                    ownerReferences=[
                        {
                            "apiVersion": "apps/v1",
                            "kind": "StatefulSet",
                            "name": "db",
                            "uid": "u",
                            "controller": True,
                        }
                    ],
                ),
                "revision": 2,
            },
            ["db-7c9f", "statefulset.apps/db", "2", "5m"],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": meta("orphan"),
                "revision": 1,
            },
            ["orphan", "<none>", "1", "5m"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta("pi"),
                "spec": {
                    "completions": 1,
                    "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
                    "selector": {"matchLabels": {"controller-uid": "u1"}},
                },
                "status": {
                    "succeeded": 1,
                    "startTime": ago(minutes=5),
                    "completionTime": ago(minutes=4, seconds=18),
                    "conditions": [{"type": "Complete", "status": "True"}],
                },
            },
            ["pi", "Complete", "1/1", "42s", "5m", "pi", "perl", "controller-uid=u1"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta("queue"),
                "spec": {"parallelism": 4, "template": {"spec": {"containers": []}}},
                "status": {"startTime": ago(hours=3)},
            },
            ["queue", "Running", "0/1 of 4", "3h", "5m", "", "", "<none>"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta("broken"),
                "spec": {"completions": 3, "template": {"spec": {}}},
                "status": {
                    "conditions": [
                        {"type": "FailureTarget", "status": "True"},
                        {"type": "Failed", "status": "True"},
                    ]
                },
            },
            ["broken", "Failed", "0/3", "", "5m", "", "", "<none>"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta("paused"),
                "spec": {"completions": 2},
                "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
            },
            ["paused", "Suspended", "0/2", "", "5m", "", "", "<none>"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta("going", deletionTimestamp=ago(seconds=1)),
                "spec": {},
            },
            ["going", "Terminating", "0/1", "", "5m", "", "", "<none>"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": meta("hello"),
                "spec": {
                    "schedule": "*/1 * * * *",
                    "suspend": False,
                    "jobTemplate": {
                        "spec": {
                            "template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}
                        }
                    },
                },
                "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(seconds=60)},
            },
            ["hello", "*/1 * * * *", "<none>", "False", "1", "60s", "5m", "hello", "busybox", "<none>"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": meta("nightly"),
                "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Paris"},
            },
            ["nightly", "0 3 * * *", "Europe/Paris", "<unset>", "0", "<none>", "5m", "", "", "<none>"],
        ),
        ({"apiVersion": "v1", "kind": "Binding", "metadata": meta("b")}, ["b", "5m"]),
        ({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, ["w", "<unknown>"]),
    ],
)
def test_row_cells_per_kind(obj: dict[str, Any], expected: list[str]) -> None:
    """Each kind's wide row carries kubectl's cells, in kubectl's column order."""
    assert printers.table_row(obj, NOW, wide=True) == expected


def test_event_cells_prefer_series_and_fall_back_to_event_time() -> None:
    """Events take LAST SEEN from the series, else lastTimestamp, else their first time."""
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("e1"),
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
        "type": "Normal",
        "reason": "Pulled",
        "message": "  pulled\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(minutes=2),
        "count": 4,
    }
    assert printers.table_row(event, NOW, wide=True) == [
        "2m",
        "Normal",
        "Pulled",
        "pod/web-1",
        "spec.containers{app}",
        "kubelet, node-1",
        "pulled",
        "10m",
        "4",
        "e1",
    ]
    new_style = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("e2"),
        "involvedObject": {"kind": "Node"},
        "type": "Warning",
        "reason": "R",
        "reportingController": "ctrl",
        "reportingInstance": "ctrl-1",
        "eventTime": ago(minutes=3),
        "series": {"count": 7, "lastObservedTime": ago(seconds=30)},
    }
    assert printers.table_row(new_style, NOW, wide=True) == [
        "30s",
        "Warning",
        "R",
        "node",
        "",
        "ctrl, ctrl-1",
        "",
        "3m",
        "7",
        "e2",
    ]
    assert printers.table_row(new_style, NOW, wide=False) == ["30s", "Warning", "R", "node", ""]


@pytest.mark.parametrize(
    ("kind", "wide", "expected"),
    [
        ("Pod", False, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        (
            "Pod",
            True,
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        (
            "Node",
            True,
            [
                "NAME",
                "STATUS",
                "ROLES",
                "AGE",
                "VERSION",
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ],
        ),
        ("Service", True, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]),
        ("Event", False, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]),
        ("Deployment", False, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
        (
            "DaemonSet",
            False,
            ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        ),
        ("StatefulSet", True, ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]),
        ("Job", False, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]),
        ("CronJob", False, ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]),
        ("ControllerRevision", False, ["NAME", "CONTROLLER", "REVISION", "AGE"]),
        ("Lease", False, ["NAME", "HOLDER", "AGE"]),
        ("Binding", True, ["NAME", "AGE"]),
    ],
)
def test_table_columns(kind: str, wide: bool, expected: list[str]) -> None:
    """Headers are kubectl's column names, upper-cased, wide columns only with -o wide."""
    assert printers.table_columns(kind, wide) == expected


# ---------------------------------------------------------------------------------------------
# Table layout (goldens checked against kubectl's tabwriter)

PODS = [
    pod(
        "web-1",
        labels={"app": "web", "tier": "front"},
        status={
            "phase": "Running",
            "podIP": "10.244.0.5",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [running(restarts=3, last=ago(minutes=2))],
        },
    ),
    pod(
        "crash-loop-backoff-very-long-name",
        status={
            "phase": "Running",
            "podIP": "10.244.0.6",
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 12,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(hours=2)}},
                }
            ],
        },
    ),
    pod(
        "done",
        creationTimestamp=ago(days=12),
        status={
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ],
        },
    ),
    pod(
        "gated",
        spec={
            "containers": [{"name": "app"}],
            "readinessGates": [{"conditionType": "x/ready"}, {"conditionType": "y"}],
        },
        status={
            "phase": "Running",
            "podIPs": [{"ip": "fd00::1"}],
            "nominatedNodeName": "node-2",
            "conditions": [{"type": "x/ready", "status": "True"}, {"type": "y", "status": "False"}],
            "containerStatuses": [running()],
        },
    ),
    pod(
        "coredns-abc",
        namespace="kube-system",
        creationTimestamp=ago(days=517),
        labels={"k8s-app": "kube-dns"},
        status={"phase": "Running", "podIP": "10.244.0.2", "containerStatuses": [running()]},
    ),
]

PODS_WIDE = """\
NAME                                READY   STATUS             RESTARTS        AGE    IP           NODE     NOMINATED NODE   READINESS GATES
web-1                               1/1     Running            3 (2m ago)      5m     10.244.0.5   node-1   <none>           <none>
crash-loop-backoff-very-long-name   0/1     CrashLoopBackOff   12 (120m ago)   5m     10.244.0.6   node-1   <none>           <none>
done                                0/1     Completed          0               12d    <none>       node-1   <none>           <none>
gated                               1/1     Running            0               5m     fd00::1      <none>   node-2           1/2
coredns-abc                         1/1     Running            0               517d   10.244.0.2   node-1   <none>           <none>
"""


def test_render_table_golden_wide_pods() -> None:
    """-o wide pods are laid out with kubectl's tabwriter: min width 6, three spaces of padding."""
    assert (
        printers.render_table(
            PODS, now=NOW, wide=True, show_labels=False, show_namespace=False, show_kind=False
        )
        == PODS_WIDE
    )


ALL_NAMESPACES_LABELS = """\
NAMESPACE     NAME                                READY   STATUS             RESTARTS        AGE    LABELS
default       web-1                               1/1     Running            3 (2m ago)      5m     app=web,tier=front
default       crash-loop-backoff-very-long-name   0/1     CrashLoopBackOff   12 (120m ago)   5m     <none>
default       done                                0/1     Completed          0               12d    <none>
default       gated                               1/1     Running            0               5m     <none>
kube-system   coredns-abc                         1/1     Running            0               517d   k8s-app=kube-dns
"""


def test_render_table_golden_all_namespaces_with_labels() -> None:
    """-A puts NAMESPACE first and --show-labels puts sorted labels (or <none>) last."""
    text = printers.render_table(
        PODS, now=NOW, wide=False, show_labels=True, show_namespace=True, show_kind=False
    )
    assert text == ALL_NAMESPACES_LABELS


GET_ALL = """\
NAMESPACE   NAME                                    READY   STATUS             RESTARTS        AGE
default     pod/web-1                               1/1     Running            3 (2m ago)      5m
default     pod/crash-loop-backoff-very-long-name   0/1     CrashLoopBackOff   12 (120m ago)   5m

NAMESPACE   NAME                 TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE
default     service/kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   31d

NAMESPACE   NAME                  READY   UP-TO-DATE   AVAILABLE   AGE
default     deployment.apps/web   2/3     3            2           5m

NAMESPACE   NAME                   STATUS     COMPLETIONS   DURATION   AGE
default     job.batch/pi           Complete   1/1           42s        5m
default     job.batch/work-queue   Running    0/1 of 4      3h         5m
"""

KUBERNETES_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": meta("kubernetes", creationTimestamp=ago(days=31)),
    "spec": {"type": "ClusterIP", "clusterIPs": ["10.96.0.1"], "ports": [{"port": 443, "protocol": "TCP"}]},
}
WEB_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": meta("web"),
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
    "status": {"updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
}
JOBS = [
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta("pi"),
        "spec": {"completions": 1},
        "status": {
            "succeeded": 1,
            "startTime": ago(minutes=5),
            "completionTime": ago(minutes=4, seconds=18),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    },
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta("work-queue"),
        "spec": {"parallelism": 4},
        "status": {"startTime": ago(hours=3)},
    },
]


def test_render_table_golden_several_kinds() -> None:
    """Several kinds print one table each, blank-line separated, names as kind[.group]/name."""
    objs = [*PODS[:2], KUBERNETES_SERVICE, WEB_DEPLOYMENT, *JOBS]
    text = printers.render_table(
        objs, now=NOW, wide=False, show_labels=False, show_namespace=True, show_kind=True
    )
    assert text == GET_ALL


def test_render_table_no_headers_drops_headers_and_separators() -> None:
    """--no-headers prints only rows, with no blank line between kinds, each kind aligned alone."""
    objs = [PODS[0], KUBERNETES_SERVICE]
    text = printers.render_table(
        objs, now=NOW, wide=False, show_labels=False, show_namespace=False, show_kind=True, no_headers=True
    )
    assert text == (
        "pod/web-1   1/1   Running   3 (2m ago)   5m\n"
        "service/kubernetes   ClusterIP   10.96.0.1   <none>   443/TCP   31d\n"
    )


def test_render_table_cluster_scoped_kinds_have_no_namespace_column() -> None:
    """-A does not add NAMESPACE to cluster-scoped kinds such as nodes."""
    nodes = [
        node(
            "node-1",
            status={
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0"},
            },
        ),
        node("node-3"),
    ]
    text = printers.render_table(
        nodes, now=NOW, wide=False, show_labels=False, show_namespace=True, show_kind=False
    )
    assert text == (
        "NAME     STATUS    ROLES    AGE   VERSION\n"
        "node-1   Ready     <none>   5m    v1.32.0\n"
        "node-3   Unknown   <none>   5m    \n"
    )


def test_render_table_of_nothing_is_empty() -> None:
    """With no objects there is no header either; the caller prints the no-resources message."""
    assert (
        printers.render_table(
            [], now=NOW, wide=False, show_labels=False, show_namespace=False, show_kind=False
        )
        == ""
    )


def test_cells_are_cut_at_the_first_line_break() -> None:
    """A multi-line cell shows its first line and "..." like kubectl."""
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("e"),
        "involvedObject": {"kind": "Pod", "name": "p"},
        "type": "Normal",
        "reason": "R",
        "message": "first\nsecond",
        "lastTimestamp": ago(minutes=1),
    }
    header, rows = printers.render_rows([event], now=NOW)
    assert header == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows == [["60s", "Normal", "R", "pod/p", "first..."]]


def test_watch_printer_prints_the_header_once_and_never_narrows_columns() -> None:
    """-w output keeps earlier column widths and widens for a longer cell without realigning."""
    watch = printers.WatchPrinter()
    first = watch.render([pod("a", status={"phase": "Running"})], NOW)
    assert first == "NAME   READY   STATUS    RESTARTS   AGE\na      0/1     Running   0          5m\n"
    second = watch.render([pod("much-longer-name", status={"phase": "Pending"})], NOW)
    assert second == "much-longer-name   0/1     Pending   0          5m\n"
    third = watch.render([pod("b", status={"phase": "Running"})], NOW)
    assert third == "b                  0/1     Running   0          5m\n"
    assert watch.render([], NOW) == ""


def test_render_rows_with_kind_prefix_and_namespace() -> None:
    """render_rows returns the decorated header and cells for callers that lay them out."""
    header, rows = printers.render_rows(
        [WEB_DEPLOYMENT], now=NOW, show_kind=True, show_namespace=True, show_labels=True
    )
    assert header == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "LABELS"]
    assert rows == [["default", "deployment.apps/web", "2/3", "3", "2", "5m", "<none>"]]


# ---------------------------------------------------------------------------------------------
# Names and messages


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pod("web-1"), "pod/web-1"),
        (WEB_DEPLOYMENT, "deployment.apps/web"),
        (
            {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n"}},
            "lease.coordination.k8s.io/n",
        ),
        (KUBERNETES_SERVICE, "service/kubernetes"),
    ],
)
def test_render_name(obj: dict[str, Any], expected: str) -> None:
    """-o name prints the lower-case kind, the group for non-core kinds, and the name."""
    assert printers.render_name(obj) == expected


def test_no_resources_message() -> None:
    """Empty gets name the namespace, except across all namespaces."""
    assert printers.no_resources_message("default") == "No resources found in default namespace."
    assert printers.no_resources_message(None) == "No resources found"


# ---------------------------------------------------------------------------------------------
# YAML and JSON (goldens from kubectl create --dry-run=client -o yaml|json)

GOLDEN_OBJECT: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-1",
        "namespace": "default",
        "creationTimestamp": "2024-06-01T11:55:00Z",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": "line one\nline two\n", "html": "<b>&</b>"},
    },
    "spec": {
        "nodeName": "node-1",
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.25",
                "args": ["--level", "yes", "123", ""],
                "env": [{"name": "RATIO", "value": "0.5"}, {"name": "WHEN", "value": "2024-01-01"}],
                "resources": {},
            }
        ],
        "terminationGracePeriodSeconds": 30,
        "tolerations": [],
    },
    "status": {"phase": "Running", "podIP": "10.244.0.5", "ratio": 0.25, "big": 1e21, "whole": 3.0},
}

GOLDEN_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  annotations:
    html: <b>&</b>
    note: |
      line one
      line two
  creationTimestamp: "2024-06-01T11:55:00Z"
  labels:
    app: web
    tier: front
  name: web-1
  namespace: default
spec:
  containers:
  - args:
    - --level
    - "yes"
    - "123"
    - ""
    env:
    - name: RATIO
      value: "0.5"
    - name: WHEN
      value: "2024-01-01"
    image: nginx:1.25
    name: app
    resources: {}
  nodeName: node-1
  terminationGracePeriodSeconds: 30
  tolerations: []
status:
  big: 1e+21
  phase: Running
  podIP: 10.244.0.5
  ratio: 0.25
  whole: 3
"""

GOLDEN_JSON = """\
{
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "annotations": {
            "html": "\\u003cb\\u003e\\u0026\\u003c/b\\u003e",
            "note": "line one\\nline two\\n"
        },
        "creationTimestamp": "2024-06-01T11:55:00Z",
        "labels": {
            "app": "web",
            "tier": "front"
        },
        "name": "web-1",
        "namespace": "default"
    },
    "spec": {
        "containers": [
            {
                "args": [
                    "--level",
                    "yes",
                    "123",
                    ""
                ],
                "env": [
                    {
                        "name": "RATIO",
                        "value": "0.5"
                    },
                    {
                        "name": "WHEN",
                        "value": "2024-01-01"
                    }
                ],
                "image": "nginx:1.25",
                "name": "app",
                "resources": {}
            }
        ],
        "nodeName": "node-1",
        "terminationGracePeriodSeconds": 30,
        "tolerations": []
    },
    "status": {
        "big": 1e+21,
        "phase": "Running",
        "podIP": "10.244.0.5",
        "ratio": 0.25,
        "whole": 3
    }
}
"""


def test_render_yaml_golden() -> None:
    """-o yaml sorts keys, quotes ambiguous strings, and writes multi-line strings as blocks."""
    assert printers.render_yaml(GOLDEN_OBJECT) == GOLDEN_YAML


def test_render_json_golden() -> None:
    """-o json indents by four, sorts keys, escapes <, > and &, and prints floats like Go."""
    assert printers.render_json(GOLDEN_OBJECT) == GOLDEN_JSON


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("y", 'v: "y"'),
        ("no", 'v: "no"'),
        ("On", 'v: "On"'),
        ("null", 'v: "null"'),
        ("~", 'v: "~"'),
        ("0x1F", 'v: "0x1F"'),
        ("0o17", 'v: "0o17"'),
        ("1_000", 'v: "1_000"'),
        ("1e3", 'v: "1e3"'),
        ("12:30", 'v: "12:30"'),
        (".inf", 'v: ".inf"'),
        ("2024-01-01T00:00:00Z", 'v: "2024-01-01T00:00:00Z"'),
        ("Inf", "v: Inf"),
        ("<<", "v: <<"),
        ("=", "v: ="),
        ("1.0.0", "v: 1.0.0"),
        ("10.0.0.1:80", "v: 10.0.0.1:80"),
        ("-", "v: '-'"),
        ("a: b", "v: 'a: b'"),
        ("#x", "v: '#x'"),
        (" lead", "v: ' lead'"),
        ("tab\tx", 'v: "tab\\tx"'),
        ("été", "v: été"),
        ("emoji 😀", 'v: "emoji \\U0001F600"'),
        ("trail\n", "v: |\n  trail"),
        ("two\n\n", "v: |+\n  two\n"),
        ("trail spaces  \n", 'v: "trail spaces  \\n"'),
    ],
)
def test_render_yaml_quotes_strings_like_go_yaml(value: str, expected: str) -> None:
    """Strings go-yaml would read as another type are double-quoted; others as libyaml picks."""
    assert printers.render_yaml({"v": value}) == expected + "\n"


def test_render_yaml_orders_keys_like_go_yaml() -> None:
    """Map keys sort with go-yaml's natural order: digit runs by value, non-letters first."""
    keys = ["a10", "a9", "aB", "a_b", "Z", "10", "9", "-x", "web-10", "web-9"]
    text = printers.render_yaml({k: 1 for k in keys})
    assert [line.split(":")[0].strip('"') for line in text.splitlines()] == [
        "-x",
        "9",
        "10",
        "Z",
        "a_b",
        "a9",
        "a10",
        "aB",
        "web-9",
        "web-10",
    ]


def test_render_yaml_and_json_wrap_sequences_in_a_list() -> None:
    """Several objects render as kubectl's v1 List with an empty resourceVersion."""
    assert (
        printers.render_yaml([])
        == 'apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: ""\n'
    )
    text = printers.render_json([{"kind": "Pod"}])
    assert text == (
        '{\n    "apiVersion": "v1",\n    "items": [\n        {\n            "kind": "Pod"\n        }\n    ],\n'
        '    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n'
    )


def test_render_yaml_and_json_can_keep_dict_order() -> None:
    """sort_keys=False keeps the object's own key order."""
    obj = {"kind": "Pod", "apiVersion": "v1"}
    assert printers.render_yaml(obj, sort_keys=False) == "kind: Pod\napiVersion: v1\n"
    assert printers.render_json(obj, sort_keys=False) == '{\n    "kind": "Pod",\n    "apiVersion": "v1"\n}\n'
