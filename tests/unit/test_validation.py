"""Validation entry points: the bad inputs from the issue, exact paths and messages, every error at once."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kplane.api import field as fe
from kplane.api.defaults import apply_defaults, job_prepare_for_create
from kplane.api.validation import validate_create, validate_status_update, validate_update

DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character "
    "(e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def deployment(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }
    obj["spec"].update(spec)
    return obj


def cron_job(schedule: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "default"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "report", "image": "busybox"}],
                            "restartPolicy": "OnFailure",
                        }
                    }
                }
            },
        },
    }


def messages(kind: str, obj: dict[str, Any], *, defaults: bool = True) -> list[str]:
    obj = copy.deepcopy(obj)
    if defaults:
        apply_defaults(kind, obj)
    return [e.message() for e in validate_create(kind, obj)]


def with_template_spec(**changes: Any) -> dict[str, Any]:
    dep = deployment()
    dep["spec"]["template"]["spec"].update(changes)
    return dep


def with_container(**changes: Any) -> dict[str, Any]:
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"][0].update(changes)
    return dep


def renamed(name: str) -> dict[str, Any]:
    dep = deployment()
    dep["metadata"]["name"] = name
    return dep


def without_selector() -> dict[str, Any]:
    dep = deployment()
    del dep["spec"]["selector"]
    return dep


def test_valid_objects_have_no_errors() -> None:
    """A kubectl-shaped Deployment and CronJob validate cleanly once defaulted."""
    assert messages("Deployment", deployment()) == []
    assert messages("CronJob", cron_job("*/5 * * * *")) == []


@pytest.mark.parametrize(
    ("kind", "obj", "expected"),
    [
        pytest.param(
            "Pod",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
            ["spec.containers: Required value"],
            id="missing-required-field",
        ),
        pytest.param(
            "Deployment",
            renamed("Web_App"),
            [f'metadata.name: Invalid value: "Web_App": {DNS_SUBDOMAIN_MSG}'],
            id="invalid-name",
        ),
        pytest.param(
            "Deployment",
            deployment(replicas=-1),
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            id="negative-replicas",
        ),
        pytest.param(
            "Deployment",
            deployment(
                strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
            ),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
            ],
            id="max-surge-and-max-unavailable-zero",
        ),
        pytest.param(
            "Deployment",
            deployment(selector={"matchLabels": {"app": "api"}}),
            [
                'spec.template.metadata.labels: Invalid value: {"app": "web"}: `selector` does not match template `labels`'
            ],
            id="selector-does-not-match-template",
        ),
        pytest.param(
            "Deployment",
            with_template_spec(restartPolicy="Never"),
            ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
            id="unsupported-restart-policy",
        ),
        pytest.param(
            "CronJob",
            cron_job("61 * * * *"),
            ['spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'],
            id="bad-cron-schedule",
        ),
        pytest.param(
            "CronJob",
            cron_job("0 * * * * *"),
            [
                'spec.schedule: Invalid value: "0 * * * * *": expected exactly 5 fields, found 6: [0 * * * * *]'
            ],
            id="six-field-cron-schedule",
        ),
        pytest.param(
            "Deployment",
            with_container(resources={"requests": {"cpu": "1"}, "limits": {"cpu": "500m"}}),
            [
                "spec.template.spec.containers[0].resources.requests: Invalid value: "
                '"1": must be less than or equal to cpu limit of 500m'
            ],
            id="requests-greater-than-limits",
        ),
        pytest.param(
            "Deployment",
            with_template_spec(
                containers=[{"name": "web", "image": "nginx"}, {"name": "web", "image": "redis"}]
            ),
            ['spec.template.spec.containers[1].name: Duplicate value: "web"'],
            id="duplicate-container-names",
        ),
        pytest.param(
            "Deployment",
            without_selector(),
            [
                "spec.selector: Required value",
                'spec.template.metadata.labels: Invalid value: {"app": "web"}: `selector` does not match template `labels`',
            ],
            id="missing-selector",
        ),
        pytest.param(
            "Deployment",
            deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            [
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
            ],
            id="rolling-update-with-recreate",
        ),
    ],
)
def test_issue_bad_inputs(kind: str, obj: dict[str, Any], expected: list[str]) -> None:
    """Each bad input from the issue yields exactly the Kubernetes path and message."""
    assert messages(kind, obj) == expected


def test_every_error_is_reported_at_once() -> None:
    """A manifest with many problems gets all of them in one response."""
    dep = deployment(replicas=-3, revisionHistoryLimit=-1, minReadySeconds=-2)
    dep["metadata"]["name"] = "Web_App"
    tmpl = dep["spec"]["template"]["spec"]
    tmpl["restartPolicy"] = "OnFailure"
    tmpl["containers"] = [
        {"name": "web", "image": "nginx", "ports": [{"containerPort": 0}]},
        {"name": "web", "image": ""},
    ]
    assert messages("Deployment", dep) == [
        f'metadata.name: Invalid value: "Web_App": {DNS_SUBDOMAIN_MSG}',
        "spec.replicas: Invalid value: -3: must be greater than or equal to 0",
        "spec.template.spec.containers[0].ports[0].containerPort: Required value",
        "spec.template.spec.containers[1].image: Required value",
        'spec.template.spec.containers[1].name: Duplicate value: "web"',
        'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
        "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
        "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
    ]


@pytest.mark.parametrize(
    ("kind", "obj", "expected"),
    [
        (
            "Deployment",
            {"metadata": {"name": "web"}, "spec": {"replicas": "three"}},
            'spec.replicas: Invalid value: "three": expected an integer',
        ),
        (
            "Pod",
            {"metadata": "pod", "spec": {"containers": [{"name": "c", "image": "i"}]}},
            'metadata: Invalid value: "pod": expected an object',
        ),
        (
            "Pod",
            {"metadata": {"name": "p"}, "spec": {"containers": {"name": "c"}}},
            'spec.containers: Invalid value: {"name": "c"}: expected an array',
        ),
        (
            "Service",
            {"metadata": {"name": "s"}, "spec": {"ports": [{"port": "http"}]}},
            'spec.ports[0].port: Invalid value: "http": expected an integer',
        ),
        (
            "ConfigMap",
            {"metadata": {"name": "c", "labels": {"a": 1}}},
            "metadata.labels[a]: Invalid value: 1: expected a string",
        ),
        (
            "Job",
            {"metadata": {"name": "j"}, "spec": {"template": "pod"}},
            'spec.template: Invalid value: "pod": expected an object',
        ),
    ],
)
def test_wrong_json_types_are_errors_not_crashes(kind: str, obj: dict[str, Any], expected: str) -> None:
    """A value of the wrong JSON type is reported once at its path, and validation keeps going."""
    got = messages(kind, obj)
    assert expected in got
    path = expected.split(":", 1)[0]
    assert sum(1 for m in got if m.split(":", 1)[0] == path) == 1


@pytest.mark.parametrize("value", [None, "text", 42, ["a"], {"spec": 1, "metadata": []}])
def test_garbage_documents_never_raise(value: Any) -> None:
    """Whole documents of any shape produce errors, not exceptions."""
    for kind in ("Pod", "Deployment", "Service", "Job", "CronJob", "Node", "Namespace", "Widget"):
        assert isinstance(validate_create(kind, value), list)
        assert isinstance(validate_update(kind, value, value), list)
        assert isinstance(validate_status_update(kind, value, value), list)


def test_error_objects_carry_kubernetes_reasons() -> None:
    """Errors expose the cause reason, path and message the apiserver puts in an Invalid status."""
    errs = validate_create("Pod", {"metadata": {"name": "p"}, "spec": {}})
    required = [e for e in errs if e.field == "spec.containers"]
    assert required == [fe.required("spec.containers")]
    assert required[0].reason == "FieldValueRequired"


def test_unknown_kind_gets_metadata_validation() -> None:
    """A kind without specific rules still has its metadata validated."""
    got = [
        e.message() for e in validate_create("Widget", {"metadata": {"name": "w", "finalizers": ["bogus"]}})
    ]
    assert got == [
        'metadata.finalizers[0]: Invalid value: "bogus": name is neither a standard finalizer name nor is it fully qualified'
    ]


def test_update_checks_metadata_immutability() -> None:
    """Name, namespace, uid and creationTimestamp may not change on update."""
    old = deployment()
    old["metadata"].update(
        uid="u1", creationTimestamp="2026-01-01T00:00:00Z", resourceVersion="7", generation=2
    )
    apply_defaults("Deployment", old)
    new = copy.deepcopy(old)
    new["metadata"].update(
        name="web2", namespace="other", uid="u2", creationTimestamp="2026-02-01T00:00:00Z", generation=1
    )
    got = [e.message() for e in validate_update("Deployment", new, old)]
    assert got == [
        'metadata.name: Invalid value: "web2": field is immutable',
        'metadata.namespace: Invalid value: "other": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
        'metadata.creationTimestamp: Invalid value: "2026-02-01T00:00:00Z": field is immutable',
        "metadata.generation: Invalid value: 1: must not be decremented",
    ]


def test_update_may_omit_server_set_metadata() -> None:
    """An update without uid or creationTimestamp is not a change (the apiserver carries them)."""
    old = deployment()
    old["metadata"].update(uid="u1", creationTimestamp="2026-01-01T00:00:00Z")
    apply_defaults("Deployment", old)
    new = copy.deepcopy(old)
    del new["metadata"]["uid"]
    new["metadata"]["creationTimestamp"] = None
    assert validate_update("Deployment", new, old) == []


def test_job_pipeline_create_then_update() -> None:
    """A Job that went through defaults and selector generation validates, and its template is then immutable."""
    job: dict[str, Any] = {
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}
        },
    }
    apply_defaults("Job", job)
    job_prepare_for_create(job, "6e1c1a4b")
    assert validate_create("Job", job) == []
    new = copy.deepcopy(job)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5"
    got = [e.field for e in validate_update("Job", new, job)]
    assert got == ["spec.template"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(
        ["Deployment", "Pod", "Service", "Job", "CronJob", "StatefulSet", "DaemonSet", "Node"]
    ),
    where=st.integers(min_value=0),
    replacement=JSON,
)
def test_any_value_anywhere_never_raises(kind: str, where: int, replacement: Any) -> None:
    """Replacing any part of a valid object with arbitrary JSON yields errors, never an exception."""
    base = deployment() if kind != "CronJob" else cron_job("* * * * *")
    if kind in ("Pod", "Job"):
        base = {"metadata": {"name": "x"}, "spec": copy.deepcopy(base["spec"]["template"]["spec"])}
        if kind == "Job":
            base["spec"] = {"template": {"spec": base["spec"]}}
    apply_defaults(kind, base)
    obj = copy.deepcopy(base)
    paths = _paths(obj)[1:]
    if paths:
        *parent_path, last = paths[where % len(paths)]
        parent: Any = obj
        for step in parent_path:
            parent = parent[step]
        parent[last] = replacement
    apply_defaults(kind, obj)
    job_prepare_for_create(copy.deepcopy(obj), "uid")
    for errs in (
        validate_create(kind, obj),
        validate_update(kind, obj, base),
        validate_update(kind, base, obj),
        validate_status_update(kind, obj, base),
    ):
        assert all(isinstance(e.message(), str) for e in errs)
