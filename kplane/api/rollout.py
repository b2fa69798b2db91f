"""Deployment rollout arithmetic, without I/O: Kubernetes' ``pkg/controller/deployment/util``
and the decision parts of ``rolling.go``/``sync.go``, read and re-expressed over kplane's
protobuf messages.

It lives in ``kplane.api`` because both sides need it: the Deployment controller
(``controller_manager/deployment.py``) decides with it and ``kpctl rollout`` reads revisions and
status with it, and neither may import the other (components talk only through the API).

Why a separate module: every number a rollout produces — how far the new ReplicaSet may grow,
how many old pods may go, how a ``spec.replicas`` change is shared out during a rollout, when a
rollout is complete, progressing or timed out — is a pure function of the Deployment and its
ReplicaSets. Keeping them here lets the unit tests check each against the upstream conformance
table (``../shared/conformance/deployment_rolling.json``) and keeps the controller about
reading caches and writing objects.

Conventions: functions take messages straight from informer caches and never modify them, except
the ``set_*`` helpers, which modify the (copied) message they are given, as their Go
counterparts do, and say whether anything changed. Times are float seconds since the epoch.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping, MutableMapping, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from kplane.api.intstr import IntOrString, get_scaled_value_from_int_or_percent, resolve_fenceposts
from kplane.api.pb import apps_pb2, core_pb2, intstr_pb2

Deployment = apps_pb2.Deployment
ReplicaSet = apps_pb2.ReplicaSet
DeploymentStatus = apps_pb2.DeploymentStatus
DeploymentCondition = apps_pb2.DeploymentCondition

# -- names Kubernetes gives things ---------------------------------------------------------------

DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
LAST_APPLIED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",
                            "kplane.io/last-applied-configuration")
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"

# The deployment annotations never copied onto its ReplicaSets (``annotationsToSkip``).
ANNOTATIONS_TO_SKIP = frozenset({*LAST_APPLIED_ANNOTATIONS, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
                                 DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, DEPRECATED_ROLLBACK_TO})
# How long the revision-history annotation may grow (the controller's default flag value).
MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000

# Condition types and reasons (deployment_util.go).
AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
REPLICA_SET_UPDATED_REASON = "ReplicaSetUpdated"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
NEW_REPLICA_SET_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_DEPLOY_REASON = "DeploymentPaused"
RESUMED_DEPLOY_REASON = "DeploymentResumed"

ROLLING_UPDATE, RECREATE = "RollingUpdate", "Recreate"
MAX_INT32 = 2**31 - 1

# rand.SafeEncodeString's alphabet: no vowels (no words), no 0/1/3 (no confusion with o/l/e).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# -- small readers -------------------------------------------------------------------------------


def replicas(obj: Deployment | ReplicaSet) -> int:
    """``*(obj.Spec.Replicas)``; an unset value reads as the API default, 1."""
    spec = obj.spec
    return int(spec.replicas) if spec.HasField("replicas") else 1


def intstr_value(value: intstr_pb2.IntOrString, present: bool) -> IntOrString | None:
    """An IntOrString message as ``int | str``; None when the field is absent (a nil pointer)."""
    if not present:
        return None
    return value.strVal if value.type == 1 else int(value.intVal)


def to_intstr(value: IntOrString) -> intstr_pb2.IntOrString:
    if isinstance(value, str):
        return intstr_pb2.IntOrString(type=1, strVal=value)
    return intstr_pb2.IntOrString(type=0, intVal=value)


def is_rolling_update(d: Deployment) -> bool:
    return d.spec.strategy.type == ROLLING_UPDATE


def _fenceposts(d: Deployment) -> tuple[int, int]:
    ru = d.spec.strategy.rollingUpdate
    surge = intstr_value(ru.maxSurge, ru.HasField("maxSurge"))
    unavailable = intstr_value(ru.maxUnavailable, ru.HasField("maxUnavailable"))
    try:
        return resolve_fenceposts(surge, unavailable, replicas(d))
    except ValueError:
        return 0, 0  # upstream ignores the error here (validation rejects such values)


def max_surge(d: Deployment) -> int:
    """``MaxSurge``: pods allowed above ``spec.replicas`` (0 unless RollingUpdate)."""
    if not is_rolling_update(d):
        return 0
    return _fenceposts(d)[0]


def max_unavailable(d: Deployment) -> int:
    """``MaxUnavailable``: pods that may be unavailable, never more than ``spec.replicas``."""
    if not is_rolling_update(d) or replicas(d) == 0:
        return 0
    unavailable = _fenceposts(d)[1]
    return min(unavailable, replicas(d))


def min_available(d: Deployment) -> int:
    """``MinAvailable``: pods that must stay available during a rolling update."""
    if not is_rolling_update(d):
        return 0
    return replicas(d) - max_unavailable(d)


def has_progress_deadline(d: Deployment) -> bool:
    return d.spec.HasField("progressDeadlineSeconds") and d.spec.progressDeadlineSeconds != MAX_INT32


def revision(obj: Deployment | ReplicaSet) -> int:
    """The revision annotation as a number (``Revision``); a missing or bad one counts as 0."""
    raw = obj.metadata.annotations.get(REVISION_ANNOTATION, "")
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


def max_revision(rss: Iterable[ReplicaSet]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def _timestamp(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def creation_key(rs: ReplicaSet) -> tuple[float, str]:
    """``ReplicaSetsByCreationTimestamp``: older first, then by name."""
    return _timestamp(rs.metadata.creationTimestamp), rs.metadata.name


def by_creation(rss: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    return sorted(rss, key=creation_key)


def _cmp(a: tuple[float, str], b: tuple[float, str]) -> int:
    return (a > b) - (a < b)


def by_size_older(rss: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """``ReplicaSetsBySizeOlder``: larger first; equal sizes oldest first."""
    def cmp(x: ReplicaSet, y: ReplicaSet) -> int:
        if replicas(x) != replicas(y):
            return replicas(y) - replicas(x)
        return _cmp(creation_key(x), creation_key(y))
    return sorted(rss, key=functools.cmp_to_key(cmp))


def by_size_newer(rss: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """``ReplicaSetsBySizeNewer``: larger first; equal sizes newest first."""
    def cmp(x: ReplicaSet, y: ReplicaSet) -> int:
        if replicas(x) != replicas(y):
            return replicas(y) - replicas(x)
        return _cmp(creation_key(y), creation_key(x))
    return sorted(rss, key=functools.cmp_to_key(cmp))


def filter_active(rss: Iterable[ReplicaSet | None]) -> list[ReplicaSet]:
    """``FilterActiveReplicaSets``: the ones with ``spec.replicas > 0``."""
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


# -- counts ----------------------------------------------------------------------------------------


def replica_count(rss: Iterable[ReplicaSet | None]) -> int:
    """``GetReplicaCountForReplicaSets``: the sum of ``spec.replicas``."""
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[ReplicaSet | None]) -> int:
    """``GetActualReplicaCountForReplicaSets``: the sum of ``status.replicas``."""
    return sum(rs.status.replicas for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.readyReplicas for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.availableReplicas for rs in rss if rs is not None)


def terminating_replica_count(rss: Iterable[ReplicaSet | None]) -> int | None:
    """``GetTerminatingReplicaCountForReplicaSets``: the sum of ``status.terminatingReplicas``,
    or None (unknown) when a ReplicaSet the ReplicaSet controller has already observed does not
    report it. A ReplicaSet never observed (``observedGeneration`` 0) counts as 0."""
    total = 0
    for rs in rss:
        if rs is None:
            continue
        reported = rs.status.HasField("terminatingReplicas")
        if not reported and rs.status.observedGeneration == 0:
            continue
        if not reported:
            return None
        total += rs.status.terminatingReplicas
    return total


# -- the new replica set's size --------------------------------------------------------------------


def new_rs_new_replicas(d: Deployment, all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet) -> int:
    """``NewRSNewReplicas``: how big the new ReplicaSet may be now. RollingUpdate: grow by what
    ``maxSurge`` leaves room for, never past ``spec.replicas``; Recreate: ``spec.replicas``."""
    strategy = d.spec.strategy.type
    if strategy == ROLLING_UPDATE:
        ru = d.spec.strategy.rollingUpdate
        surge = get_scaled_value_from_int_or_percent(
            intstr_value(ru.maxSurge, ru.HasField("maxSurge")), replicas(d), True)
        current = replica_count(all_rss)
        max_total = replicas(d) + surge
        if current >= max_total:
            return replicas(new_rs)
        scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
        return replicas(new_rs) + scale_up
    if strategy == RECREATE:
        return replicas(d)
    raise ValueError(f"deployment type {strategy} isn't supported")


def reconcile_new_replica_set(all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet, d: Deployment) -> int | None:
    """``reconcileNewReplicaSet``'s decision: the new size of the new ReplicaSet, or None."""
    want, have = replicas(d), replicas(new_rs)
    if have == want:
        return None
    if have > want:
        return want
    target = new_rs_new_replicas(d, all_rss, new_rs)
    return target if target != have else None


# -- scaling old replica sets down -----------------------------------------------------------------


def cleanup_unhealthy_replicas(old_rss: Sequence[ReplicaSet], max_cleanup_count: int,
                               sizes: MutableMapping[str, int] | None = None) -> int:
    """``cleanupUnhealthyReplicas``: scale old ReplicaSets down by their unavailable pods, oldest
    first, at most ``max_cleanup_count`` in all. New sizes go into ``sizes`` (name -> replicas,
    read as the current size when present); returns how many replicas were removed."""
    sizes = {} if sizes is None else sizes
    total = 0
    for rs in by_creation(old_rss):
        if total >= max_cleanup_count:
            break
        size = sizes.get(rs.metadata.name, replicas(rs))
        if size == 0 or size == rs.status.availableReplicas:
            continue
        count = min(max_cleanup_count - total, size - rs.status.availableReplicas)
        if count <= 0:
            continue  # more available than wanted (a scale-down in flight): nothing unhealthy to drop
        sizes[rs.metadata.name] = size - count
        total += count
    return total


def scale_down_old_replica_sets_for_rolling_update(all_rss: Sequence[ReplicaSet | None], old_rss: Sequence[ReplicaSet],
                                                   d: Deployment,
                                                   sizes: MutableMapping[str, int] | None = None) -> int:
    """``scaleDownOldReplicaSetsForRollingUpdate``: remove available old pods, oldest ReplicaSet
    first, as far as ``minAvailable`` allows. New sizes go into ``sizes``; returns the count.

    One difference from upstream: a ReplicaSet counts at most ``spec.replicas`` available pods.
    Right after a scale-down its status still counts the pods being removed, and trusting that
    would take ``minAvailable`` below its floor (upstream stops at an error in
    ``cleanupUnhealthyReplicas`` in that state instead)."""
    sizes = {} if sizes is None else sizes
    available = sum(min(rs.status.availableReplicas, replicas(rs)) for rs in all_rss if rs is not None)
    minimum = replicas(d) - max_unavailable(d)
    if available <= minimum:
        return 0
    total, wanted = 0, available - minimum
    for rs in by_creation(old_rss):
        if total >= wanted:
            break
        size = sizes.get(rs.metadata.name, replicas(rs))
        if size == 0:
            continue
        count = min(size, wanted - total)
        sizes[rs.metadata.name] = size - count
        total += count
    return total


def reconcile_old_replica_sets(all_rss: Sequence[ReplicaSet | None], old_rss: Sequence[ReplicaSet],
                               new_rs: ReplicaSet | None, d: Deployment) -> dict[str, int]:
    """``reconcileOldReplicaSets``'s decision: new sizes (name -> replicas) for the old ReplicaSets
    that shrink — first their unhealthy pods, then available ones down to ``minAvailable``,
    never counting on the new ReplicaSet's unavailable pods. Empty: nothing to scale down."""
    old_active = filter_active(old_rss)
    if replica_count(old_active) == 0:
        return {}
    all_pods = replica_count(all_rss)
    minimum = replicas(d) - max_unavailable(d)
    new_unavailable = (replicas(new_rs) - new_rs.status.availableReplicas) if new_rs is not None else 0
    max_scaled_down = all_pods - minimum - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes: dict[str, int] = {}
    cleanup_unhealthy_replicas(old_active, max_scaled_down, sizes)
    scale_down_old_replica_sets_for_rolling_update(all_rss, old_active, d, sizes)
    return {name: size for name, size in sizes.items()
            if size != next(replicas(rs) for rs in old_active if rs.metadata.name == name)}


# -- proportional scaling (spec.replicas changed during a rollout) ---------------------------------


def _round_to_int32(value: float) -> int:
    """``integer.RoundToInt32``: halves away from zero."""
    return int(value - 0.5) if value < 0 else int(value + 0.5)


def max_replicas_annotation(rs: ReplicaSet) -> int | None:
    raw = rs.metadata.annotations.get(MAX_REPLICAS_ANNOTATION)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def desired_replicas_annotation(rs: ReplicaSet) -> int | None:
    raw = rs.metadata.annotations.get(DESIRED_REPLICAS_ANNOTATION)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def replica_set_fraction(rs: ReplicaSet, d: Deployment) -> int:
    """``getReplicaSetFraction``: how many replicas ``rs`` gains (or loses) when the deployment
    grows from the size recorded in its max-replicas annotation to ``spec.replicas + maxSurge``.
    A missing or zero annotation falls back to ``status.replicas``; with neither, 0."""
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_max = replicas(d) + max_surge(d)
    before = max_replicas_annotation(rs)
    if not before:
        before = d.status.replicas
        if before == 0:
            return 0
    scaled = float(replicas(rs)) * float(deployment_max) / float(before)
    return _round_to_int32(scaled) - replicas(rs)


def proportion(rs: ReplicaSet | None, d: Deployment, to_add: int, added: int) -> int:
    """``GetProportion``: this ReplicaSet's share of ``to_add``, bounded by what is left of it."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def find_active_or_latest(new_rs: ReplicaSet | None, old_rss: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """``FindActiveOrLatest``: the only active ReplicaSet; with none active, the new one or the
    newest old one; with several active, None."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=creation_key, reverse=True)
    active = filter_active([*newest_first, new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: Deployment, rs: ReplicaSet | None) -> bool:
    """``IsSaturated``: the ReplicaSet has the full size, was told so (desired-replicas
    annotation) and every pod is available."""
    if rs is None:
        return False
    desired = desired_replicas_annotation(rs)
    if desired is None:
        return False
    want = replicas(d)
    return replicas(rs) == want and desired == want and rs.status.availableReplicas == want


def proportional_scale(d: Deployment, new_rs: ReplicaSet | None,
                       old_rss: Sequence[ReplicaSet]) -> list[tuple[str, int]]:
    """``scale``'s decision (a scaling event, or a paused deployment): (name, size) for each
    ReplicaSet to scale, in the order Kubernetes scales them. One active ReplicaSet takes the
    whole ``spec.replicas``; a saturated new one means every old one goes to 0; otherwise
    (RollingUpdate) the difference to ``spec.replicas + maxSurge`` is shared out in proportion to
    the sizes the ReplicaSets had when the deployment was last at its annotated size, largest
    first, leftovers to the largest (newest first when growing, oldest first when shrinking).
    In that last case every active ReplicaSet is listed, changed or not: its replicas
    annotations must follow the deployment's new size."""
    target = find_active_or_latest(new_rs, old_rss)
    if target is not None:
        return [] if replicas(target) == replicas(d) else [(target.metadata.name, replicas(d))]
    if is_saturated(d, new_rs):
        return [(rs.metadata.name, 0) for rs in filter_active(old_rss)]
    if not is_rolling_update(d):
        return []
    active = filter_active([*old_rss, new_rs])
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - replica_count(active)
    if to_add > 0:
        active = by_size_newer(active)
    elif to_add < 0:
        active = by_size_older(active)
    sizes: list[tuple[str, int]] = []
    added = 0
    for rs in active:
        share = proportion(rs, d, to_add, added) if to_add != 0 else 0
        sizes.append((rs.metadata.name, replicas(rs) + share))
        added += share
    if sizes and to_add != 0:
        name, size = sizes[0]
        sizes[0] = (name, max(0, size + to_add - added))
    return sizes


# -- annotations -------------------------------------------------------------------------------------


def replicas_annotations_need_update(rs: ReplicaSet, desired: int, max_replicas: int) -> bool:
    ann = rs.metadata.annotations
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or ann.get(MAX_REPLICAS_ANNOTATION) != str(max_replicas)


def set_replicas_annotations(rs: ReplicaSet, desired: int, max_replicas: int) -> bool:
    """``SetReplicasAnnotations``: record the deployment's size (and size + surge) on ``rs``."""
    changed = False
    ann = rs.metadata.annotations
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)), (MAX_REPLICAS_ANNOTATION, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def copy_deployment_annotations(d: Deployment, rs: ReplicaSet) -> bool:
    """``copyDeploymentAnnotationsToReplicaSet``: the deployment's annotations (change-cause and
    the rest, but not those in ``ANNOTATIONS_TO_SKIP``) onto the ReplicaSet."""
    changed = False
    ann = rs.metadata.annotations
    for key, value in d.metadata.annotations.items():
        if key in ANNOTATIONS_TO_SKIP or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    return changed


def set_new_replica_set_annotations(d: Deployment, rs: ReplicaSet, new_revision: int, exists: bool,
                                    rev_history_limit_in_chars: int = MAX_REV_HISTORY_LENGTH_IN_CHARS) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the deployment's annotations, raise the revision to
    ``new_revision`` (never lower it; a ReplicaSet that had another revision — a rollback — keeps
    it in ``revision-history``), and on a ReplicaSet about to be created the replicas annotations."""
    changed = copy_deployment_annotations(d, rs)
    ann = rs.metadata.annotations
    had = REVISION_ANNOTATION in ann
    old_raw = ann.get(REVISION_ANNOTATION, "")
    try:
        old_revision = int(old_raw) if old_raw else 0
    except ValueError:
        return False
    if old_revision < new_revision:
        ann[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if had:
            history = ann.get(REVISION_HISTORY_ANNOTATION, "")
            parts = history.split(",")
            if not parts[0]:
                ann[REVISION_HISTORY_ANNOTATION] = old_raw
            else:
                total = len(history) + len(old_raw) + 1
                start = 0
                while total > rev_history_limit_in_chars and start < len(parts):
                    total -= len(parts[start]) + 1
                    start += 1
                if total <= rev_history_limit_in_chars:
                    ann[REVISION_HISTORY_ANNOTATION] = ",".join([*parts[start:], old_raw])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def set_deployment_revision(d: Deployment, rev: str) -> bool:
    """``SetDeploymentRevision``: the deployment's revision annotation follows its new ReplicaSet."""
    ann = d.metadata.annotations
    if ann.get(REVISION_ANNOTATION) == rev:
        return False
    ann[REVISION_ANNOTATION] = rev
    return True


# -- the pod template hash -----------------------------------------------------------------------------


def safe_encode_string(s: str) -> str:
    """``rand.SafeEncodeString``: every byte mapped onto a vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in s.encode())


def fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: core_pb2.PodTemplateSpec, collision_count: int | None) -> str:
    """``controller.ComputeHash``: fnv32a over the template and, when set, the collision count
    (as Kubernetes writes it: 4 little-endian bytes in an 8-byte buffer), rendered as the decimal
    hash mapped through ``safe_encode_string`` (``web-5d4f8c7b9``). Kubernetes feeds fnv a
    ``spew`` dump of the Go struct; kplane feeds it the template's deterministic protobuf
    encoding — same shape and alphabet, different values for the same template."""
    data = template.SerializeToString(deterministic=True)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\x00" * 4
    return safe_encode_string(str(fnv32a(data)))


def _without_hash(template: core_pb2.PodTemplateSpec) -> core_pb2.PodTemplateSpec:
    if DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY not in template.metadata.labels:
        return template
    copy = core_pb2.PodTemplateSpec()
    copy.CopyFrom(template)
    del copy.metadata.labels[DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY]
    return copy


def equal_ignore_hash(a: core_pb2.PodTemplateSpec, b: core_pb2.PodTemplateSpec) -> bool:
    """``EqualIgnoreHash``: the templates are equal once the pod-template-hash label is dropped."""
    return _without_hash(a) == _without_hash(b)


def find_new_replica_set(d: Deployment, rss: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """``FindNewReplicaSet``: the oldest ReplicaSet whose template is the deployment's (several
    can match after a hash collision; the oldest is the one that has been rolling)."""
    for rs in by_creation(rss):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def find_old_replica_sets(d: Deployment, rss: Sequence[ReplicaSet],
                          new_rs: ReplicaSet | None) -> tuple[list[ReplicaSet], list[ReplicaSet]]:
    """``FindOldReplicaSets``: (the old ones with pods wanted, every old one)."""
    old = [rs for rs in rss if new_rs is None or rs.metadata.uid != new_rs.metadata.uid]
    return [rs for rs in old if replicas(rs) != 0], old


# -- conditions and progress ------------------------------------------------------------------------------


def timestamp(now: float) -> Timestamp:
    """A condition time: whole seconds, as Kubernetes serialises metav1.Time."""
    return Timestamp(seconds=int(now))


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> DeploymentCondition:
    ts = timestamp(now)
    return DeploymentCondition(type=ctype, status=status, reason=reason, message=message,
                               lastUpdateTime=ts, lastTransitionTime=ts)


def get_condition(status: DeploymentStatus, ctype: str) -> DeploymentCondition | None:
    for cond in status.conditions:
        if cond.type == ctype:
            return cond
    return None


def set_condition(status: DeploymentStatus, condition: DeploymentCondition) -> None:
    """``SetDeploymentCondition``: no change for the same status and reason; a status that does
    not change keeps its lastTransitionTime."""
    current = get_condition(status, condition.type)
    if current is not None and current.status == condition.status and current.reason == condition.reason:
        return
    cond = DeploymentCondition()
    cond.CopyFrom(condition)
    if current is not None and current.status == cond.status:
        cond.lastTransitionTime.CopyFrom(current.lastTransitionTime)
    remove_condition(status, cond.type)
    status.conditions.append(cond)


def remove_condition(status: DeploymentStatus, ctype: str) -> None:
    kept = [c for c in status.conditions if c.type != ctype]
    if len(kept) != len(status.conditions):
        copies = []
        for c in kept:
            copy = DeploymentCondition()
            copy.CopyFrom(c)
            copies.append(copy)
        del status.conditions[:]
        status.conditions.extend(copies)


def deployment_complete(d: Deployment, status: DeploymentStatus) -> bool:
    """``DeploymentComplete``: every replica updated and available, no old ones, generation seen."""
    want = replicas(d)
    return (status.updatedReplicas == want and status.replicas == want and status.availableReplicas == want
            and status.observedGeneration >= d.metadata.generation)


def deployment_progressing(d: Deployment, new_status: DeploymentStatus) -> bool:
    """``DeploymentProgressing``: more updated, fewer old, more ready or more available pods
    than the deployment's recorded status."""
    old = d.status
    old_old = old.replicas - old.updatedReplicas
    new_old = new_status.replicas - new_status.updatedReplicas
    return (new_status.updatedReplicas > old.updatedReplicas or new_old < old_old
            or new_status.readyReplicas > old.readyReplicas or new_status.availableReplicas > old.availableReplicas)


def deployment_timed_out(d: Deployment, status: DeploymentStatus, now: float) -> bool:
    """``DeploymentTimedOut``: no progress for ``progressDeadlineSeconds`` since the Progressing
    condition was last updated (a complete rollout never times out)."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.reason == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.reason == TIMED_OUT_REASON:
        return True
    return _timestamp(cond.lastUpdateTime) + d.spec.progressDeadlineSeconds < now


def seconds_until_progress_check(d: Deployment, new_status: DeploymentStatus, now: float) -> float | None:
    """``requeueStuckDeployment``: when to look again for a timeout (None: no need; 0: now)."""
    cond = get_condition(d.status, PROGRESSING)
    if not has_progress_deadline(d) or cond is None:
        return None
    if deployment_complete(d, new_status) or cond.reason == TIMED_OUT_REASON:
        return None
    after = _timestamp(cond.lastUpdateTime) + d.spec.progressDeadlineSeconds - now
    if after < 1:
        return 0.0
    return after + 1  # a second of margin against clock skew between writes and timers


def calculate_status(all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet | None, d: Deployment,
                     now: float) -> DeploymentStatus:
    """``calculateStatus``: counts from the ReplicaSets, observedGeneration, the conditions carried
    over, and Available set from whether ``minAvailable`` pods are available."""
    available = available_replica_count(all_rss)
    total = replica_count(all_rss)
    status = DeploymentStatus(
        observedGeneration=d.metadata.generation,
        replicas=actual_replica_count(all_rss),
        updatedReplicas=actual_replica_count([new_rs]),
        readyReplicas=ready_replica_count(all_rss),
        availableReplicas=available,
        unavailableReplicas=max(0, total - available),
    )
    if d.status.HasField("collisionCount"):
        status.collisionCount = d.status.collisionCount
    terminating = terminating_replica_count(all_rss)
    if terminating is not None:
        status.terminatingReplicas = terminating
    status.conditions.extend(d.status.conditions)
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MINIMUM_REPLICAS_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MINIMUM_REPLICAS_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def replica_failure_condition(all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet | None,
                              now: float) -> DeploymentCondition | None:
    """``getReplicaFailures``: a ReplicaFailure condition of the new ReplicaSet (else of any)."""
    for candidates in ([new_rs], all_rss):
        for rs in candidates:
            if rs is None:
                continue
            for c in rs.status.conditions:
                if c.type == REPLICA_FAILURE:
                    return DeploymentCondition(type=c.type, status=c.status, reason=c.reason, message=c.message,
                                               lastUpdateTime=c.lastTransitionTime,
                                               lastTransitionTime=c.lastTransitionTime)
    return None


def rollout_status(all_rss: Sequence[ReplicaSet | None], new_rs: ReplicaSet | None, d: Deployment,
                   now: float) -> DeploymentStatus:
    """``syncRolloutStatus``'s new status: ``calculate_status`` plus the Progressing condition —
    NewReplicaSetAvailable once complete, ReplicaSetUpdated (lastUpdateTime refreshed) while
    pods move, ProgressDeadlineExceeded after ``progressDeadlineSeconds`` without progress — and
    ReplicaFailure carried over from the ReplicaSets."""
    status = calculate_status(all_rss, new_rs, d, now)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(d.status, PROGRESSING)
    complete_already = (status.replicas == status.updatedReplicas and current is not None
                        and current.reason == NEW_RS_AVAILABLE_REASON)
    if has_progress_deadline(d) and not complete_already:
        if deployment_complete(d, status):
            msg = (f'ReplicaSet "{new_rs.metadata.name}" has successfully progressed.' if new_rs is not None
                   else f'Deployment "{d.metadata.name}" has successfully progressed.')
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON, msg, now))
        elif deployment_progressing(d, status):
            msg = (f'ReplicaSet "{new_rs.metadata.name}" is progressing.' if new_rs is not None
                   else f'Deployment "{d.metadata.name}" is progressing.')
            cond = new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED_REASON, msg, now)
            if current is not None:
                if current.status == "True":
                    cond.lastTransitionTime.CopyFrom(current.lastTransitionTime)
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            msg = (f'ReplicaSet "{new_rs.metadata.name}" has timed out progressing.' if new_rs is not None
                   else f'Deployment "{d.metadata.name}" has timed out progressing.')
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON, msg, now))
    failure = replica_failure_condition(all_rss, new_rs, now)
    if failure is not None:
        set_condition(status, failure)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def revisions_to_clean(old_rss: Sequence[ReplicaSet], limit: int) -> list[ReplicaSet]:
    """``cleanupDeployment``'s choice: beyond the newest ``limit`` old ReplicaSets (by revision),
    the ones that are fully scaled down and settled (no pods, generation observed)."""
    alive = [rs for rs in old_rss if not rs.metadata.HasField("deletionTimestamp")]
    diff = len(alive) - limit
    if diff <= 0:
        return []
    ordered = sorted(alive, key=lambda rs: (revision(rs), *creation_key(rs)))
    out = []
    for rs in ordered[:diff]:
        if rs.status.replicas != 0 or replicas(rs) != 0 or rs.metadata.generation > rs.status.observedGeneration:
            continue
        out.append(rs)
    return out


def pod_template_labels_with_hash(labels: Mapping[str, str], pod_hash: str) -> dict[str, str]:
    return {**labels, DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY: pod_hash}
