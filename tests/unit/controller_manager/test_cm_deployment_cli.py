"""The client-side pieces of kpctl's Deployment commands (kplane/cli/rollout.py) that need no
server: kubectl's rollout status lines, the history table, image patches, and the Deployment
`kpctl create deployment` builds."""

from __future__ import annotations

import re

import pytest

from kplane.api import rollout as ro
from kplane.api.pb import apps_pb2
from kplane.cli import rollout as cli
from kplane.cli.kpctl import normalize_argv


def deployment(size: int, generation: int = 2, observed: int = 2, **status: int) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.generation = generation
    d.spec.replicas = size
    d.status.observedGeneration = observed
    for key, value in status.items():
        setattr(d.status, key, value)
    return d


def test_status_lines_are_kubectls() -> None:
    assert cli.status_message(deployment(3, updatedReplicas=1, replicas=3)) == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...', False)
    assert cli.status_message(deployment(3, updatedReplicas=3, replicas=4)) == (
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...', False)
    assert cli.status_message(deployment(3, updatedReplicas=3, replicas=3, availableReplicas=2)) == (
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...', False)
    assert cli.status_message(deployment(3, updatedReplicas=3, replicas=3, availableReplicas=3)) == (
        'deployment "web" successfully rolled out', True)
    assert cli.status_message(deployment(3, generation=3, observed=2)) == (
        "Waiting for deployment spec update to be observed...", False)


def test_status_errors() -> None:
    d = deployment(3, updatedReplicas=1, replicas=3)
    d.status.conditions.append(apps_pb2.DeploymentCondition(type="Progressing", status="False",
                                                            reason="ProgressDeadlineExceeded"))
    with pytest.raises(cli.RolloutError, match='deployment "web" exceeded its progress deadline'):
        cli.status_message(d)
    d = deployment(3)
    d.metadata.annotations[ro.REVISION_ANNOTATION] = "4"
    with pytest.raises(cli.RolloutError, match=re.escape("desired revision (2) is different from the running "
                                                         "revision (4)")):
        cli.status_message(d, revision=2)


def test_history_table() -> None:
    assert cli.history_table([(1, ""), (2, "kpctl set image deployment/web app=myapp:v2 --record=true")]) == (
        "REVISION  CHANGE-CAUSE\n"
        "1         <none>\n"
        "2         kpctl set image deployment/web app=myapp:v2 --record=true\n")
    assert cli.history_table([(12345678910, "x")]).splitlines()[1] == "12345678910  x"
    assert cli.history_table([]) == "No rollout history found."


def test_image_patch_by_name_wildcard_and_missing() -> None:
    obj = {"spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "app", "image": "myapp:v1"}, {"name": "side", "image": "busybox"}]}}}}
    path = ("spec", "template", "spec")
    patch, missing = cli.image_patch(obj, path, {"app": "myapp:v2", "nope": "x"})
    assert patch == {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "myapp:v2"}]}}}}
    assert missing == ["nope"]
    patch, missing = cli.image_patch(obj, path, {"*": "busybox"})
    assert patch == {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}
    assert not missing
    assert cli.image_patch(obj, path, {"app": "myapp:v1"}) == (None, [])  # nothing changes: nothing sent


def test_split_pairs() -> None:
    assert cli._split_pairs(("deployment/web", "app=myapp:v2")) == (("deployment/web",), {"app": "myapp:v2"})
    with pytest.raises(cli.CLIError, match="all resources must be specified before image changes: rs"):
        cli._split_pairs(("deploy/web", "app=x", "rs"))


def test_container_names_like_kubectl() -> None:
    assert cli.container_name("myapp:v1") == "myapp"
    assert cli.container_name("registry.io:5000/team/web@sha256:abc") == "web"
    assert re.fullmatch(r"my-app-[bcdfghjklmnpqrstvwxz2456789]{5}", cli.container_name("reg/my_app:v1"))


def test_build_deployment() -> None:
    d = cli.build_deployment("web", ["myapp:v1", "nginx"], replicas=3, port=80)
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert d["metadata"]["labels"] == d["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    first, second = d["spec"]["template"]["spec"]["containers"]
    assert first == {"name": "myapp", "image": "myapp:v1", "ports": [{"containerPort": 80}], "resources": {}}
    assert second == {"name": "nginx", "image": "nginx", "resources": {}}


def test_rfc3339_now() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", cli.rfc3339_now())


def test_watch_false_is_negated_only_for_rollout() -> None:
    assert normalize_argv(["rollout", "status", "deploy/web", "--watch=false"]) == [
        "rollout", "status", "deploy/web", "--no-watch"]
    assert normalize_argv(["get", "pods", "--watch=false"]) == ["get", "pods"]
    assert normalize_argv(["set", "image", "deploy/web", "a=b", "--record=true"])[-1] == "--record"
