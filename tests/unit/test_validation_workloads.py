"""Validation tables for the workload kinds (apps/v1, batch/v1) and Lease."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kplane.api.defaults import apply_defaults, job_prepare_for_create
from kplane.api.validation import validate_create, validate_status_update, validate_update
from kplane.api.validation.batch import cron_schedule_errors

Obj = dict[str, Any]

TEMPLATE: Obj = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
}


def workload(kind: str, **spec: Any) -> Obj:
    obj: Obj = {
        "kind": kind,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": copy.deepcopy(TEMPLATE)},
    }
    obj["spec"].update(spec)
    return obj


def job(**spec: Any) -> Obj:
    obj: Obj = {
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}
        },
    }
    obj["spec"].update(spec)
    return obj


def cron_job(**spec: Any) -> Obj:
    obj: Obj = {
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "default"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "r", "image": "busybox"}],
                            "restartPolicy": "OnFailure",
                        }
                    }
                }
            },
        },
    }
    obj["spec"].update(spec)
    return obj


def prepared(kind: str, obj: Obj, uid: str = "uid-1") -> Obj:
    out = copy.deepcopy(obj)
    apply_defaults(kind, out)
    if kind == "Job":
        job_prepare_for_create(out, uid)
    out["metadata"].setdefault("uid", uid)
    out["metadata"].update(resourceVersion="3", creationTimestamp="2026-01-01T00:00:00Z")
    return out


def messages(kind: str, obj: Obj) -> list[str]:
    return [e.message() for e in validate_create(kind, prepared(kind, obj))]


def update_messages(kind: str, old: Obj, change: Callable[[Obj], None]) -> list[str]:
    new = copy.deepcopy(old)
    change(new)
    return [e.message() for e in validate_update(kind, new, old)]


def template_change(**spec: Any) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj["spec"]["template"]["spec"].update(spec)

    return change


CREATE_CASES: list[Any] = [
    pytest.param("ReplicaSet", workload("ReplicaSet"), [], id="replicaset-valid"),
    pytest.param(
        "ReplicaSet",
        workload("ReplicaSet", selector={}, minReadySeconds=-1),
        [
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
        ],
        id="replicaset-empty-selector",
    ),
    pytest.param(
        "ReplicaSet",
        workload("ReplicaSet", selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
        [
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            'spec.selector: Invalid value: {"matchExpressions": [{"key": "app", "operator": "In"}]}: invalid label selector',
        ],
        id="replicaset-selector-expression",
    ),
    pytest.param(
        "Deployment",
        workload("Deployment", strategy={"type": "Blue"}),
        ['spec.strategy.type: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"'],
        id="deployment-strategy-type",
    ),
    pytest.param(
        "Deployment",
        workload("Deployment", strategy={"rollingUpdate": {"maxSurge": "25", "maxUnavailable": "150%"}}),
        [
            'spec.strategy.rollingUpdate.maxSurge: Invalid value: "25": a valid percent string must be a numeric string '
            "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%',
        ],
        id="deployment-rolling-update-values",
    ),
    pytest.param(
        "Deployment",
        workload("Deployment", strategy={"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}),
        ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"],
        id="deployment-zero-percent-surge",
    ),
    pytest.param(
        "Deployment",
        workload("Deployment", minReadySeconds=700, progressDeadlineSeconds=600),
        ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"],
        id="deployment-progress-deadline",
    ),
    pytest.param(
        "Deployment",
        workload(
            "Deployment",
            template={
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "x"}], "activeDeadlineSeconds": 30},
            },
        ),
        [
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"
        ],
        id="deployment-template-deadline",
    ),
    pytest.param("DaemonSet", workload("DaemonSet"), [], id="daemonset-valid"),
    pytest.param(
        "DaemonSet",
        workload(
            "DaemonSet",
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
        ),
        ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"],
        id="daemonset-rolling-update",
    ),
    pytest.param(
        "DaemonSet",
        workload("DaemonSet", updateStrategy={"type": "Sometimes"}),
        [
            'spec.updateStrategy.type: Unsupported value: "Sometimes": supported values: "RollingUpdate", "OnDelete"'
        ],
        id="daemonset-strategy-type",
    ),
    pytest.param("StatefulSet", workload("StatefulSet", serviceName="web"), [], id="statefulset-valid"),
    pytest.param(
        "StatefulSet",
        workload(
            "StatefulSet",
            podManagementPolicy="Random",
            updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}},
            persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"},
            replicas=-1,
        ),
        [
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
            "spec.updateStrategy.rollingUpdate: Invalid value: {\"partition\": 1}: only allowed for updateStrategy 'RollingUpdate'",
            'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: "Delete", "Retain"',
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ],
        id="statefulset-policies",
    ),
    pytest.param(
        "StatefulSet",
        workload(
            "StatefulSet",
            template={
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "x",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ]
                },
            },
            volumeClaimTemplates=[
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        ),
        [],
        id="statefulset-mounts-claim-templates",
    ),
    pytest.param("Job", job(), [], id="job-valid"),
    pytest.param(
        "Job",
        job(parallelism=-1, completions=-2, backoffLimit=-3, activeDeadlineSeconds=-4),
        [
            "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
            "spec.completions: Invalid value: -2: must be greater than or equal to 0",
            "spec.activeDeadlineSeconds: Invalid value: -4: must be greater than or equal to 0",
            "spec.backoffLimit: Invalid value: -3: must be greater than or equal to 0",
        ],
        id="job-counts",
    ),
    pytest.param(
        "Job",
        job(template={"spec": {"containers": [{"name": "pi", "image": "perl"}]}}),
        ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'],
        id="job-restart-always",
    ),
    pytest.param(
        "Job",
        job(completionMode="Indexed", completions=None, parallelism=2),
        ["spec.completions: Required value: when completion mode is Indexed"],
        id="job-indexed-needs-completions",
    ),
    pytest.param(
        "Job",
        job(selector={"matchLabels": {"app": "pi"}}),
        [
            'spec.selector: Invalid value: {"matchLabels": {"app": "pi", "batch.kubernetes.io/controller-uid": "uid-1"}}: '
            "`selector` not auto-generated",
            'spec.template.metadata.labels: Invalid value: {"batch.kubernetes.io/controller-uid": "uid-1", '
            '"batch.kubernetes.io/job-name": "pi", "controller-uid": "uid-1", "job-name": "pi"}: '
            "`selector` does not match template `labels`",
        ],
        id="job-selector-without-manual-selector",
    ),
    pytest.param(
        "Job",
        job(
            manualSelector=True,
            selector={"matchLabels": {"app": "pi"}},
            template={
                "metadata": {"labels": {"app": "pi"}},
                "spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"},
            },
        ),
        [],
        id="job-manual-selector",
    ),
    pytest.param("CronJob", cron_job(), [], id="cronjob-valid"),
    pytest.param(
        "CronJob",
        cron_job(
            schedule="",
            concurrencyPolicy="Sometimes",
            startingDeadlineSeconds=-1,
            successfulJobsHistoryLimit=-1,
        ),
        [
            "spec.schedule: Required value",
            "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
            'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
            "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
        ],
        id="cronjob-fields",
    ),
    pytest.param(
        "CronJob",
        cron_job(schedule="TZ=UTC 0 3 * * *", timeZone="Mars/Olympus"),
        [
            'spec.schedule: Invalid value: "TZ=UTC 0 3 * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
            'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        ],
        id="cronjob-time-zones",
    ),
    pytest.param(
        "CronJob",
        cron_job(
            jobTemplate={
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "spec": {"containers": [{"name": "r", "image": "b"}], "restartPolicy": "Always"}
                    },
                }
            }
        ),
        [
            'spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"',
            'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels": {"a": "b"}}: `selector` will be auto-generated',
        ],
        id="cronjob-job-template",
    ),
    pytest.param(
        "Lease",
        {
            "kind": "Lease",
            "metadata": {"name": "kube-scheduler"},
            "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1},
        },
        [
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
        ],
        id="lease",
    ),
    pytest.param(
        "ControllerRevision",
        {"kind": "ControllerRevision", "metadata": {"name": "web-1"}, "revision": -1},
        [
            "data: Required value: data is mandatory",
            "revision: Invalid value: -1: must be greater than or equal to 0",
        ],
        id="controller-revision",
    ),
]


@pytest.mark.parametrize(("kind", "obj", "expected"), CREATE_CASES)
def test_workload_create(kind: str, obj: Obj, expected: list[str]) -> None:
    """Create validation of each workload kind reports exactly the Kubernetes errors."""
    assert messages(kind, obj) == expected


def test_cron_job_name_length() -> None:
    """CronJob names are limited to 52 characters so that Job names fit in a label."""
    obj = cron_job()
    obj["metadata"]["name"] = "r" * 53
    assert messages("CronJob", obj) == [
        f'metadata.name: Invalid value: "{"r" * 53}": must be no more than 52 characters'
    ]


@pytest.mark.parametrize(
    ("schedule", "errors"),
    [
        ("*/5 * * * *", []),
        ("0 9-17 * * MON-FRI", []),
        ("0 0 1 JAN,JUL ?", []),
        ("@hourly", []),
        ("@every 1h30m", []),
        ("@reboot", ["unrecognized descriptor: @reboot"]),
        ("@every soon", ['failed to parse duration @every soon: time: invalid duration "soon"']),
        ("* * * *", ["expected exactly 5 fields, found 4: [* * * *]"]),
        ("0 0 L * *", ['failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax']),
        ("0 0 * * 1#2", ['failed to parse int from 1#2: strconv.Atoi: parsing "1#2": invalid syntax']),
        ("JAN * * * *", ['failed to parse int from JAN: strconv.Atoi: parsing "JAN": invalid syntax']),
        ("0 25 * * *", ["end of range (25) above maximum (23): 25"]),
        ("5-3 * * * *", ["beginning of range (5) beyond end of range (3): 5-3"]),
        ("* * * * 7", ["end of range (7) above maximum (6): 7"]),
    ],
)
def test_cron_schedule_errors(schedule: str, errors: list[str]) -> None:
    """Schedules follow Kubernetes' five-field cron dialect and descriptors."""
    assert cron_schedule_errors(schedule) == errors


def test_workload_selectors_are_immutable() -> None:
    """Deployment, ReplicaSet, DaemonSet and StatefulSet selectors cannot change after creation."""
    for kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        old = prepared(kind, workload(kind))

        def change(obj: Obj) -> None:
            obj["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
            obj["spec"]["template"]["metadata"]["labels"]["tier"] = "front"

        expected = [
            'spec.selector: Invalid value: {"matchLabels": {"app": "web", "tier": "front"}}: field is immutable'
        ]
        if kind == "StatefulSet":
            expected = [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                "are forbidden"
            ]
        assert update_messages(kind, old, change) == expected, kind


def test_deployment_update_may_change_template_and_replicas() -> None:
    """Scaling and rolling out a new image are ordinary Deployment updates."""
    old = prepared("Deployment", workload("Deployment"))

    def change(obj: Obj) -> None:
        obj["spec"]["replicas"] = 5
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"

    assert update_messages("Deployment", old, change) == []


def test_statefulset_update_allows_listed_fields_only() -> None:
    """A StatefulSet may change replicas, template and update strategy, but not serviceName."""
    old = prepared("StatefulSet", workload("StatefulSet", serviceName="web"))
    assert (
        update_messages("StatefulSet", old, lambda o: o["spec"].update(replicas=3, minReadySeconds=5)) == []
    )
    assert update_messages("StatefulSet", old, lambda o: o["spec"].update(serviceName="db")) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
        "are forbidden"
    ]


def test_job_update_rules() -> None:
    """A Job's selector, template and completions are immutable; parallelism may change."""
    old = prepared("Job", job())
    assert update_messages("Job", old, lambda o: o["spec"].update(parallelism=4)) == []
    assert update_messages("Job", old, lambda o: o["spec"].update(completions=3)) == [
        "spec.completions: Invalid value: 3: field is immutable"
    ]
    got = update_messages("Job", old, template_change(restartPolicy="OnFailure"))
    assert [m.split(":", 1)[0] for m in got] == ["spec.template"]
    assert got[0].endswith(": field is immutable")


def test_suspended_job_may_change_scheduling_directives() -> None:
    """A suspended Job that never started may change its pods' nodeSelector and tolerations."""
    old = prepared("Job", job(suspend=True))
    change = template_change(nodeSelector={"disk": "ssd"}, tolerations=[{"key": "gpu", "operator": "Exists"}])
    assert update_messages("Job", old, change) == []
    started = copy.deepcopy(old)
    started["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    assert [m.split(":", 1)[0] for m in update_messages("Job", started, change)] == ["spec.template"]


def test_indexed_job_completions_scale_with_parallelism() -> None:
    """An Indexed Job may change completions only together with parallelism."""
    old = prepared("Job", job(completionMode="Indexed", completions=3, parallelism=3))
    assert update_messages("Job", old, lambda o: o["spec"].update(completions=5, parallelism=5)) == []
    assert update_messages("Job", old, lambda o: o["spec"].update(completions=5)) == [
        "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"
    ]


@pytest.mark.parametrize(
    ("kind", "status", "old_status", "expected"),
    [
        (
            "Deployment",
            {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 3},
            {},
            [],
        ),
        (
            "Deployment",
            {"replicas": 2, "readyReplicas": 1, "availableReplicas": 2, "unavailableReplicas": -1},
            {},
            [
                "status.unavailableReplicas: Invalid value: -1: must be greater than or equal to 0",
                "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas",
            ],
        ),
        (
            "Deployment",
            {"collisionCount": 1},
            {"collisionCount": 2},
            ["status.collisionCount: Invalid value: 1: cannot be decremented"],
        ),
        (
            "ReplicaSet",
            {"replicas": -1},
            {},
            ["status.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "StatefulSet",
            {"replicas": 1, "currentReplicas": 2},
            {},
            ["status.currentReplicas: Invalid value: 2: cannot be greater than status.replicas"],
        ),
        (
            "DaemonSet",
            {"numberReady": -1},
            {},
            ["status.numberReady: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "Job",
            {"active": -1, "succeeded": 1},
            {},
            ["status.active: Invalid value: -1: must be greater than or equal to 0"],
        ),
    ],
)
def test_status_updates(kind: str, status: Obj, old_status: Obj, expected: list[str]) -> None:
    """Status subresource writes keep counters non-negative and consistent."""
    old = prepared(kind, job() if kind == "Job" else workload(kind))
    old["status"] = old_status
    new = copy.deepcopy(old)
    new["status"] = status
    assert [e.message() for e in validate_status_update(kind, new, old)] == expected


def test_scale_subresource_replicas() -> None:
    """A Scale write may not ask for a negative replica count."""
    scale = {"kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": -1}}
    expected = ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    assert [e.message() for e in validate_create("Scale", scale)] == expected
    assert [e.message() for e in validate_update("Scale", scale, scale)] == expected
