"""Deployment rollout arithmetic (kplane.api.rollout) against upstream's own test vectors
(../shared/conformance/deployment_rolling.json) and a few properties upstream states in prose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from kplane.api import rollout as ro
from kplane.api.intstr import get_scaled_value_from_int_or_percent, resolve_fenceposts
from kplane.api.pb import apps_pb2, core_pb2

TABLE = "deployment_rolling.json"


def intstr(value: dict[str, Any] | int | str | None) -> int | str | None:
    if isinstance(value, dict):
        return value["int"] if "int" in value else value["str"]
    return value


def deployment(size: int | None = 10, strategy: str = "RollingUpdate", max_surge: Any = 1,
               max_unavailable: Any = 0, **status: int) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    if size is not None:
        d.spec.replicas = size
    d.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        if max_surge is not None:
            d.spec.strategy.rollingUpdate.maxSurge.CopyFrom(ro.to_intstr(intstr(max_surge)))  # type: ignore[arg-type]
        if max_unavailable is not None:
            d.spec.strategy.rollingUpdate.maxUnavailable.CopyFrom(
                ro.to_intstr(intstr(max_unavailable)))  # type: ignore[arg-type]
    for key, value in status.items():
        setattr(d.status, key, value)
    return d


def replica_set(name: str, size: int, *, available: int = 0, created: int = 0,
                annotations: dict[str, str] | None = None, **status: int) -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name = name
    rs.metadata.namespace = "default"
    rs.metadata.uid = f"uid-{name}"
    rs.metadata.creationTimestamp.seconds = 1_700_000_000 + created
    rs.metadata.annotations.update(annotations or {})
    rs.spec.replicas = size
    rs.status.availableReplicas = available
    for key, value in status.items():
        setattr(rs.status, key, value)
    return rs


# -- intstr and fenceposts ---------------------------------------------------------------------------


@pytest.mark.conformance(TABLE, "intstr_scaled_value")
def test_intstr_scaled_value(case: dict[str, Any]) -> None:
    value = intstr(case["input"])
    if case["expect_error"]:
        with pytest.raises(ValueError):
            get_scaled_value_from_int_or_percent(value, case["total"], case["round_up"])
    else:
        assert get_scaled_value_from_int_or_percent(value, case["total"], case["round_up"]) == case["expected"]


@pytest.mark.conformance(TABLE, "resolve_fenceposts")
def test_resolve_fenceposts(case: dict[str, Any]) -> None:
    if case["expect_error"]:
        with pytest.raises(ValueError):
            resolve_fenceposts(case["max_surge"], case["max_unavailable"], case["desired"])
        return
    assert resolve_fenceposts(case["max_surge"], case["max_unavailable"], case["desired"]) == (
        case["expected_surge"], case["expected_unavailable"])


def _table_deployment(spec: dict[str, Any]) -> apps_pb2.Deployment:
    if spec["strategy"] == "Recreate":
        return deployment(spec["replicas"], "Recreate")
    return deployment(spec["replicas"], "RollingUpdate", spec["max_surge"], spec["max_unavailable"])


@pytest.mark.conformance(TABLE, "max_unavailable")
def test_max_unavailable(case: dict[str, Any]) -> None:
    assert ro.max_unavailable(_table_deployment(case["deployment"])) == case["expected"]


@pytest.mark.conformance(TABLE, "min_available")
def test_min_available(case: dict[str, Any]) -> None:
    assert ro.min_available(_table_deployment(case["deployment"])) == case["expected"]


# -- the new replica set -----------------------------------------------------------------------------


@pytest.mark.conformance(TABLE, "new_rs_new_replicas")
def test_new_rs_new_replicas(case: dict[str, Any]) -> None:
    d = deployment(case["deployment_replicas"], case["strategy"], case["max_surge"], 1)
    others = [replica_set(f"other-{i}", n) for i, n in enumerate(case["all_rs_replicas"])]
    new_rs = replica_set("new", case["new_rs_replicas"])
    assert ro.new_rs_new_replicas(d, others, new_rs) == case["expected"]


@pytest.mark.conformance(TABLE, "reconcile_new_replica_set")
def test_reconcile_new_replica_set(case: dict[str, Any]) -> None:
    d = deployment(case["deployment_replicas"], "RollingUpdate", case["max_surge"], 0)
    new_rs = replica_set("new", case["new_replicas"], created=1, observedGeneration=1)
    old_rs = replica_set("old", case["old_replicas"], observedGeneration=1)
    target = ro.reconcile_new_replica_set([new_rs, old_rs], new_rs, d)
    if not case["scale_expected"]:
        assert target is None
    else:
        assert target == case["expected_new_replicas"]


# -- scaling old replica sets down ----------------------------------------------------------------------


@pytest.mark.conformance(TABLE, "reconcile_old_replica_sets")
def test_reconcile_old_replica_sets(case: dict[str, Any]) -> None:
    d = deployment(case["deployment_replicas"], "RollingUpdate", 0, case["max_unavailable"])
    old_rs = replica_set("old", case["old_replicas"], available=case["ready_pods_from_old_rs"])
    new_rs = replica_set("new", case["new_replicas"], available=case["ready_pods_from_new_rs"], created=1)
    plan = ro.reconcile_old_replica_sets([old_rs, new_rs], [old_rs], new_rs, d)
    assert bool(plan) == case["scale_expected"]
    if case["scale_expected"]:
        # recorded (not asserted) upstream; the arithmetic in the notes gives it
        assert plan == {"old": case["expected_old_replicas"]}


def test_scale_down_does_not_trust_the_status_of_a_shrinking_replica_set() -> None:
    """Just scaled 10 -> 8, the old ReplicaSet's status still counts the 2 pods on their way out:
    at most 8 of them count, so minAvailable (8) holds after the next step."""
    d = deployment(10, "RollingUpdate", 3, 2)
    old = replica_set("old", 8, available=10)
    new = replica_set("new", 3, available=3, created=1)
    assert ro.reconcile_old_replica_sets([old, new], [old], new, d) == {"old": 5}


@pytest.mark.conformance(TABLE, "cleanup_unhealthy_replicas")
def test_cleanup_unhealthy_replicas(case: dict[str, Any]) -> None:
    old_rs = replica_set("old", case["old_replicas"], available=case["ready_pods"])
    sizes: dict[str, int] = {}
    assert ro.cleanup_unhealthy_replicas([old_rs], case["max_cleanup_count"], sizes) == \
        case["expected_cleanup_count"]
    if case["expected_cleanup_count"]:
        assert sizes == {"old": case["old_replicas"] - case["expected_cleanup_count"]}


@pytest.mark.conformance(TABLE, "scale_down_old_replica_sets_for_rolling_update")
def test_scale_down_old_replica_sets_for_rolling_update(case: dict[str, Any]) -> None:
    d = deployment(case["deployment_replicas"], "RollingUpdate", 0, case["max_unavailable"])
    old_rs = replica_set("old", case["old_replicas"], available=case["ready_pods"])
    sizes: dict[str, int] = {}
    scaled = ro.scale_down_old_replica_sets_for_rolling_update([old_rs], [old_rs], d, sizes)
    if not case["scale_expected"]:
        assert scaled == 0
    else:
        assert sizes == {"old": case["expected_old_replicas"]}


# -- proportional scaling --------------------------------------------------------------------------------


@pytest.mark.conformance(TABLE, "replica_set_fraction")
def test_replica_set_fraction(case: dict[str, Any]) -> None:
    d = deployment(case["deployment_replicas"], "RollingUpdate", case["deployment_max_surge"], 1,
                   replicas=case["deployment_status_replicas"])
    rs = replica_set("rs", case["rs_replicas"], annotations=case["rs_annotations"])
    assert ro.replica_set_fraction(rs, d) == case["expected"]


def _annotated(name: str, size: int, desired: int, max_replicas: int, *, created: int,
               available: int = 0) -> apps_pb2.ReplicaSet:
    return replica_set(name, size, created=created, available=available, annotations={
        ro.DESIRED_REPLICAS_ANNOTATION: str(desired), ro.MAX_REPLICAS_ANNOTATION: str(max_replicas)})


def test_proportional_scale_up_during_a_rollout() -> None:
    """Kubernetes' docs example: 10 replicas, maxSurge 3, maxUnavailable 2, mid-rollout with
    8 old + 5 new; scaled to 15 → the 5 extra (18 - 13) go 3 to the old, 2 to the new."""
    d = deployment(15, "RollingUpdate", 3, 2)
    old = _annotated("old", 8, 10, 13, created=0)
    new = _annotated("new", 5, 10, 13, created=1)
    plan = dict(ro.proportional_scale(d, new, [old]))
    assert plan == {"old": 11, "new": 7}
    assert sum(plan.values()) == 15 + 3


def test_proportional_scale_down_during_a_rollout() -> None:
    d = deployment(5, "RollingUpdate", 3, 2)  # was 10 (max 13), now 5 (max 8)
    old = _annotated("old", 8, 10, 13, created=0)
    new = _annotated("new", 5, 10, 13, created=1)
    plan = ro.proportional_scale(d, new, [old])
    assert dict(plan) == {"old": 5, "new": 3}
    assert plan[0][0] == "old"  # the largest first, its leftovers included


def test_proportional_scale_single_active_takes_everything() -> None:
    d = deployment(7, "RollingUpdate", 1, 0)
    old = _annotated("old", 0, 3, 4, created=0)
    new = _annotated("new", 3, 3, 4, created=1, available=3)
    assert ro.proportional_scale(d, new, [old]) == [("new", 7)]
    assert ro.proportional_scale(deployment(3, "RollingUpdate", 1, 0), new, [old]) == []


def test_proportional_scale_saturated_new_replica_set_drains_old_ones() -> None:
    d = deployment(4, "RollingUpdate", 1, 0)
    old = _annotated("old", 2, 4, 5, created=0)
    new = _annotated("new", 4, 4, 5, created=1, available=4)
    assert ro.proportional_scale(d, new, [old]) == [("old", 0)]


def test_proportional_scale_to_zero() -> None:
    d = deployment(0, "RollingUpdate", 1, 0)
    old = _annotated("old", 3, 5, 6, created=0)
    new = _annotated("new", 3, 5, 6, created=1)
    assert dict(ro.proportional_scale(d, new, [old])) == {"old": 0, "new": 0}


def test_proportional_scale_keeps_totals_within_surge() -> None:
    """Whatever the mix, the ReplicaSets end up summing to spec.replicas + maxSurge."""
    for want in range(0, 40, 3):
        for sizes in ((1, 1, 1), (10, 2, 7), (5, 0, 9), (13, 4, 1)):
            rss = [_annotated(f"rs{i}", n, 20, 25, created=i) for i, n in enumerate(sizes)]
            d = deployment(want, "RollingUpdate", "25%", "25%")
            plan = dict(ro.proportional_scale(d, rss[-1], rss[:-1]))
            total = sum(plan.get(rs.metadata.name, ro.replicas(rs)) for rs in rss)
            assert total == (want + ro.max_surge(d) if want else 0), (want, sizes, plan)
            assert all(v >= 0 for v in plan.values())


# -- status ------------------------------------------------------------------------------------------


@pytest.mark.conformance(TABLE, "deployment_complete")
def test_deployment_complete(case: dict[str, Any]) -> None:
    spec = case["deployment"]
    d = deployment(spec["replicas"], "RollingUpdate", spec["max_surge"], spec["max_unavailable"])
    status = apps_pb2.DeploymentStatus(**spec["status"])
    assert ro.deployment_complete(d, status) == case["expected"]


@pytest.mark.conformance(TABLE, "deployment_progressing")
def test_deployment_progressing(case: dict[str, Any]) -> None:
    d = deployment(10, "RollingUpdate", 1, 0, **case["old_status"])
    assert ro.deployment_progressing(d, apps_pb2.DeploymentStatus(**case["new_status"])) == case["expected"]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.conformance(TABLE, "deployment_timed_out")
def test_deployment_timed_out(case: dict[str, Any]) -> None:
    d = deployment(1, "RollingUpdate", 1, 0)
    if case["progress_deadline_seconds"] is not None:
        d.spec.progressDeadlineSeconds = case["progress_deadline_seconds"]
    cond = apps_pb2.DeploymentCondition(type="Progressing", status="True", reason=case["condition_reason"])
    if not case["last_update_time"].startswith("0001-"):
        cond.lastUpdateTime.seconds = int(_epoch(case["last_update_time"]))
    d.status.conditions.append(cond)
    now = _epoch(case["now"]) if case["now"] else 0.0
    assert ro.deployment_timed_out(d, d.status, now) == case["expected"]


@pytest.mark.conformance(TABLE, "replica_counts")
def test_replica_counts(case: dict[str, Any], conformance: Any) -> None:
    fixtures = conformance(TABLE)["replica_counts"]["replica_sets"]
    rss = []
    for name in case["sets"]:
        f = fixtures[name]
        rs = replica_set(name, f["spec_replicas"], replicas=f["status_replicas"],
                         observedGeneration=f["observed_generation"])
        if f["terminating_replicas"] is not None:
            rs.status.terminatingReplicas = f["terminating_replicas"]
        rss.append(rs)
    assert ro.replica_count(rss) == case["expected_count"]
    assert ro.actual_replica_count(rss) == case["expected_actual"]
    assert ro.terminating_replica_count(rss) == case["expected_terminating"]


@pytest.mark.conformance(TABLE, "replicas_annotations_need_update")
def test_replicas_annotations_need_update(case: dict[str, Any]) -> None:
    rs = replica_set("rs", 1, annotations=case["annotations"])
    assert ro.replicas_annotations_need_update(rs, case["desired"], case["max"]) == case["expected"]


def test_calculate_status_and_available_condition() -> None:
    d = deployment(4, "RollingUpdate", 1, 1)
    d.metadata.generation = 3
    old = replica_set("old", 1, available=1, replicas=2, readyReplicas=1)
    new = replica_set("new", 4, available=2, replicas=4, readyReplicas=3, created=1)
    status = ro.calculate_status([old, new], new, d, now=1000.0)
    assert (status.observedGeneration, status.replicas, status.updatedReplicas, status.readyReplicas,
            status.availableReplicas, status.unavailableReplicas) == (3, 6, 4, 4, 3, 2)
    cond = ro.get_condition(status, "Available")
    assert cond is not None and (cond.status, cond.reason) == ("True", "MinimumReplicasAvailable")
    d.status.CopyFrom(status)
    worse = ro.calculate_status([new], new, d, now=2000.0)  # 2 of 4 available, minimum 3
    cond = ro.get_condition(worse, "Available")
    assert cond is not None and (cond.status, cond.reason) == ("False", "MinimumReplicasUnavailable")
    assert cond.lastTransitionTime.seconds == 2000


def test_rollout_status_progressing_conditions() -> None:
    d = deployment(2, "RollingUpdate", 1, 0)
    d.spec.progressDeadlineSeconds = 600
    d.metadata.generation = 1
    new = replica_set("web-abc", 2, available=0, replicas=1, created=1)
    created = ro.new_condition("Progressing", "True", ro.NEW_REPLICA_SET_REASON, "Created", now=100.0)
    d.status.conditions.append(created)
    # progress (one more updated pod) refreshes lastUpdateTime, keeps lastTransitionTime
    status = ro.rollout_status([new], new, d, now=150.0)
    cond = ro.get_condition(status, "Progressing")
    assert cond is not None and cond.reason == "ReplicaSetUpdated"
    assert cond.message == 'ReplicaSet "web-abc" is progressing.'
    assert (cond.lastUpdateTime.seconds, cond.lastTransitionTime.seconds) == (150, 100)
    d.status.CopyFrom(status)
    # no progress for longer than the deadline
    late = ro.rollout_status([new], new, d, now=150.0 + 601)
    cond = ro.get_condition(late, "Progressing")
    assert cond is not None and (cond.status, cond.reason) == ("False", "ProgressDeadlineExceeded")
    assert cond.message == 'ReplicaSet "web-abc" has timed out progressing.'
    # before the deadline: come back when it would expire
    assert ro.seconds_until_progress_check(d, d.status, now=160.0) == pytest.approx(150 + 600 - 160 + 1)
    # complete
    done = replica_set("web-abc", 2, available=2, replicas=2, readyReplicas=2, created=1)
    status = ro.rollout_status([done], done, d, now=200.0)
    cond = ro.get_condition(status, "Progressing")
    assert cond is not None and (cond.reason, cond.message) == (
        "NewReplicaSetAvailable", 'ReplicaSet "web-abc" has successfully progressed.')
    assert ro.seconds_until_progress_check(d, status, now=200.0) is None


def test_no_progress_deadline_removes_progressing() -> None:
    d = deployment(1, "RollingUpdate", 1, 0)
    d.spec.progressDeadlineSeconds = ro.MAX_INT32
    d.status.conditions.append(ro.new_condition("Progressing", "True", "X", "x", now=1.0))
    assert ro.get_condition(ro.rollout_status([], None, d, now=5.0), "Progressing") is None


# -- annotations, revisions, cleanup --------------------------------------------------------------------


def test_new_replica_set_annotations_on_create_and_rollback() -> None:
    d = deployment(3, "RollingUpdate", "25%", "25%")
    d.metadata.annotations.update({"kubernetes.io/change-cause": "kpctl set image", ro.REVISION_ANNOTATION: "4",
                                   "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    rs = replica_set("new", 0)
    assert ro.set_new_replica_set_annotations(d, rs, 5, exists=False)
    assert dict(rs.metadata.annotations) == {
        "kubernetes.io/change-cause": "kpctl set image", ro.REVISION_ANNOTATION: "5",
        ro.DESIRED_REPLICAS_ANNOTATION: "3", ro.MAX_REPLICAS_ANNOTATION: "4"}
    assert not ro.set_new_replica_set_annotations(d, rs, 5, exists=True)
    # a rollback: revision 3's ReplicaSet becomes revision 6 and remembers 3 (then 6 at the next one)
    old = replica_set("r3", 0, annotations={ro.REVISION_ANNOTATION: "3"})
    assert ro.set_new_replica_set_annotations(d, old, 6, exists=True)
    assert old.metadata.annotations[ro.REVISION_ANNOTATION] == "6"
    assert old.metadata.annotations[ro.REVISION_HISTORY_ANNOTATION] == "3"
    ro.set_new_replica_set_annotations(d, old, 8, exists=True)
    assert old.metadata.annotations[ro.REVISION_HISTORY_ANNOTATION] == "3,6"
    # never lowered
    assert not ro.set_new_replica_set_annotations(d, old, 2, exists=True)


def test_revision_history_annotation_is_bounded() -> None:
    d = deployment(1)
    rs = replica_set("rs", 0, annotations={ro.REVISION_ANNOTATION: "100",
                                           ro.REVISION_HISTORY_ANNOTATION: ",".join(str(i) for i in range(1, 10))})
    ro.set_new_replica_set_annotations(d, rs, 101, exists=True, rev_history_limit_in_chars=12)
    history = rs.metadata.annotations[ro.REVISION_HISTORY_ANNOTATION]
    assert history.endswith(",100") and len(history) <= 12


def test_revisions_to_clean_keeps_the_newest_and_the_busy() -> None:
    olds = [replica_set(f"r{i}", 0, created=i, annotations={ro.REVISION_ANNOTATION: str(i)}) for i in range(1, 6)]
    olds[0].spec.replicas = 1  # still has pods wanted: never deleted
    names = [rs.metadata.name for rs in ro.revisions_to_clean(olds, 2)]
    assert names == ["r2", "r3"]
    assert ro.revisions_to_clean(olds, 10) == []
    assert [rs.metadata.name for rs in ro.revisions_to_clean(olds[1:], 0)] == ["r2", "r3", "r4", "r5"]


# -- the pod template hash ---------------------------------------------------------------------------------


def _template(image: str) -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.metadata.labels["app"] = "web"
    c = t.spec.containers.add()
    c.name, c.image = "web", image
    return t


def test_fnv32a_and_safe_encoding_match_go() -> None:
    # hash/fnv New32a test vectors; rand.SafeEncodeString maps "0".."9" onto 4 5 6 7 8 9 b c d f
    assert ro.fnv32a(b"") == 0x811C9DC5
    assert ro.fnv32a(b"a") == 0xE40C292C
    assert ro.fnv32a(b"foobar") == 0xBF9CF968
    assert ro.safe_encode_string("0123456789") == "456789bcdf"


def test_compute_hash_shape_and_sensitivity() -> None:
    h1 = ro.compute_hash(_template("myapp:v1"), None)
    assert h1 == ro.compute_hash(_template("myapp:v1"), None)  # deterministic
    assert set(h1) <= set("456789bcdf") and 1 <= len(h1) <= 10
    assert h1 != ro.compute_hash(_template("myapp:v2"), None)
    # the collision count changes the hash (and 0 differs from unset, as upstream's nil pointer does)
    assert len({h1, ro.compute_hash(_template("myapp:v1"), 0), ro.compute_hash(_template("myapp:v1"), 1)}) == 3


def test_equal_ignore_hash_and_find_new_replica_set() -> None:
    d = deployment(1)
    d.spec.template.CopyFrom(_template("myapp:v2"))
    old = replica_set("web-old", 1, created=0)
    old.spec.template.CopyFrom(_template("myapp:v1"))
    old.spec.template.metadata.labels[ro.DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY] = "aaa"
    new1 = replica_set("web-new1", 1, created=1)
    new1.spec.template.CopyFrom(_template("myapp:v2"))
    new1.spec.template.metadata.labels[ro.DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY] = "bbb"
    new2 = replica_set("web-new2", 1, created=2)
    new2.spec.template.CopyFrom(new1.spec.template)
    assert ro.equal_ignore_hash(new1.spec.template, d.spec.template)
    assert not ro.equal_ignore_hash(old.spec.template, d.spec.template)
    found = ro.find_new_replica_set(d, [new2, old, new1])
    assert found is not None and found.metadata.name == "web-new1"  # the oldest match
    required, all_old = ro.find_old_replica_sets(d, [new2, old, new1], found)
    assert {rs.metadata.name for rs in all_old} == {"web-old", "web-new2"}
    assert {rs.metadata.name for rs in required} == {"web-old", "web-new2"}


def test_find_active_or_latest() -> None:
    a = replica_set("a", 0, created=0)
    b = replica_set("b", 0, created=1)
    assert ro.find_active_or_latest(None, [a, b]) is b
    c = replica_set("c", 0, created=2)
    assert ro.find_active_or_latest(c, [a, b]) is c
    a.spec.replicas = 2
    assert ro.find_active_or_latest(c, [a, b]) is a
    c.spec.replicas = 1
    assert ro.find_active_or_latest(c, [a, b]) is None
