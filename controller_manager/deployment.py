"""The Deployment controller: rolls a pod template out through ReplicaSets.

Kubernetes' ``pkg/controller/deployment`` (deployment_controller.go, sync.go, rolling.go,
recreate.go, progress.go), read and re-expressed over kplane's informers. The arithmetic — surge
and unavailability budgets, proportional scaling, status and conditions — lives in
:mod:`kplane.api.rollout`; this module reads caches, decides with those functions and
writes. Why it is shaped the way it is:

- **ReplicaSets are the history.** Each distinct pod template gets its own ReplicaSet, named
  ``<deployment>-<pod-template-hash>`` and labelled (selector included) with that hash, so the
  ReplicaSets of one Deployment never fight over pods. The ReplicaSet whose template equals the
  Deployment's (ignoring the hash label) is the *new* one; the others are *old*. Their
  ``deployment.kubernetes.io/revision`` annotations number the rollouts; a rollback (kpctl
  rollout undo puts an old template back) makes that ReplicaSet new again with the next number.
- **Only ReplicaSet sizes change.** A rollout is a sequence of ``spec.replicas`` writes on
  ReplicaSets; the ReplicaSet controller makes pods follow. RollingUpdate grows the new one within
  ``maxSurge`` and shrinks old ones within ``maxUnavailable``, judging availability from the
  ReplicaSets' status; Recreate scales every old one to 0, waits until none of their pods run,
  then scales the new one up.
- **Level-triggered, and honest about stale caches.** A reconcile re-reads the Deployment and
  its ReplicaSets from the informer caches and writes with their resourceVersion, so a stale read
  can only fail (Conflict), never act twice. To avoid even that, the controller remembers the
  resourceVersion of each of its own writes until the cache has caught up, and leaves a
  Deployment alone until then (the watch event of that write wakes it again) — the role
  expectations play in the ReplicaSet controller.
- **Ownership** is claimed the Kubernetes way (``ControllerRefManager`` from podcontrol):
  ReplicaSets the Deployment selects are adopted, ones it owns but no longer selects released.

What it does not do (yet): the deprecated ``rollbackTo`` annotation (apps/v1 rollbacks are done by
the client, as kubectl does), and the alpha ``podReplacementPolicy``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from controller_manager.context import ControllerContext
from controller_manager.podcontrol import (
    CONTROLLER_UID_INDEX,
    ControllerRefManager,
    controller_uid_index_func,
    get_controller_of,
    new_controller_ref,
    objects_for_owner,
)
from kplane.api import errors as api
from kplane.api import rollout as ro
from kplane.api.codec import copy_message, to_dict
from kplane.api.labels import Selector, selector_from_label_selector
from kplane.api.pb import apps_pb2, core_pb2
from kplane.api.resources import resolve
from kplane.client.controller import Controller, Result
from kplane.client.informer import DeletedFinalStateUnknown, ResourceEventHandlerFuncs, last_known_state
from kplane.client.store import NAMESPACE_INDEX
from kplane.logs import get_logger

DEPLOYMENTS, REPLICASETS, PODS = resolve("deployments"), resolve("replicasets"), resolve("pods")
COMPONENT = "deployment-controller"
# How long a write of ours may stay unobserved before the controller stops waiting for it.
WRITE_OBSERVE_TIMEOUT = 30.0

log = get_logger(component=COMPONENT)


def new(ctx: ControllerContext) -> Controller:
    """The registry's entry point (``controller_manager.deployment:new``)."""
    return DeploymentController(ctx).controller


@dataclass
class _Pending:
    """Writes of ours the caches have not shown yet, for one Deployment: (kind, key) -> (rv, when)."""

    writes: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)


def _rv(obj: Message) -> int:
    try:
        return int(obj.metadata.resourceVersion or 0)  # type: ignore[attr-defined]
    except ValueError:
        return 0


def _key(obj: Message) -> str:
    meta = obj.metadata  # type: ignore[attr-defined]
    return f"{meta.namespace}/{meta.name}"


def _status_view(status: apps_pb2.DeploymentStatus) -> apps_pb2.DeploymentStatus:
    """A status with zero counters cleared, so a status read back from the API (which may omit
    zeros, as Kubernetes' omitempty does) compares equal to one computed here."""
    out = copy_message(status)
    for name in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                 "unavailableReplicas"):
        if out.HasField(name) and getattr(out, name) == 0:
            out.ClearField(name)
    return out


class DeploymentController:
    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.may_write = ctx.may_write
        self.clock = clock
        self.recorder = ctx.recorder(COMPONENT)
        self.d_informer = ctx.factory.informer_for(DEPLOYMENTS)
        indexers = {CONTROLLER_UID_INDEX: controller_uid_index_func}
        self.rs_informer = ctx.factory.informer_for(REPLICASETS, indexers=indexers)
        self.pod_informer = ctx.factory.informer_for(PODS, indexers=indexers)
        self.controller = Controller("deployment", self.reconcile, workers=ctx.workers)
        self.controller.watch(self.d_informer)
        self.rs_informer.add_event_handler(ResourceEventHandlerFuncs(
            on_add=self._rs_added, on_update=self._rs_updated, on_delete=self._rs_deleted))
        self.pod_informer.add_event_handler(ResourceEventHandlerFuncs(on_delete=self._pod_deleted))
        self.controller.informers.extend([self.rs_informer, self.pod_informer])
        self._pending: dict[str, _Pending] = {}

    # -- event handlers: map ReplicaSets and pods to the Deployment(s) to look at ------------------

    def _enqueue(self, key: str) -> None:
        self.controller.queue.add(key)

    def _deployments_selecting(self, rs: Message) -> list[str]:
        """Keys of the Deployments in the ReplicaSet's namespace whose selector matches its labels
        (an orphan's potential adopters)."""
        meta = rs.metadata  # type: ignore[attr-defined]
        keys = []
        for d in self.d_informer.store.by_index(NAMESPACE_INDEX, meta.namespace):
            selector = _selector(d)  # type: ignore[arg-type]
            if selector is not None and not selector.empty() and selector.matches(meta.labels):
                keys.append(_key(d))
        return keys

    def _owner_key(self, obj: Message) -> str | None:
        ref = get_controller_of(obj)
        if ref is None or ref.kind != "Deployment":
            return None
        return f"{obj.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]

    def _rs_added(self, rs: Message) -> None:
        if rs.metadata.HasField("deletionTimestamp"):  # type: ignore[attr-defined]
            self._rs_deleted(rs)
            return
        if get_controller_of(rs) is not None:
            owner = self._owner_key(rs)
            if owner is not None:
                self._enqueue(owner)
            return
        for key in self._deployments_selecting(rs):
            self._enqueue(key)

    def _rs_updated(self, old: Message, new: Message) -> None:
        if old.metadata.resourceVersion == new.metadata.resourceVersion:  # type: ignore[attr-defined]
            return  # a resync: nothing changed
        old_ref, new_ref = get_controller_of(old), get_controller_of(new)
        if old_ref is not None and (new_ref is None or new_ref.uid != old_ref.uid):
            previous = self._owner_key(old)
            if previous is not None:
                self._enqueue(previous)  # the old owner lost it
        if new_ref is not None:
            owner = self._owner_key(new)
            if owner is not None:
                self._enqueue(owner)
            return
        if old_ref is not None or dict(old.metadata.labels) != dict(new.metadata.labels):  # type: ignore[attr-defined]
            for key in self._deployments_selecting(new):
                self._enqueue(key)

    def _rs_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        rs = last_known_state(obj)
        owner = self._owner_key(rs)
        if owner is None:
            return
        pending = self._pending.get(owner)
        if pending is not None:
            pending.writes.pop(("rs", _key(rs)), None)
        self._enqueue(owner)

    def _pod_deleted(self, obj: Message | DeletedFinalStateUnknown) -> None:
        """Recreate waits for the old pods to be gone: each deletion may be the last one."""
        pod = last_known_state(obj)
        ref = get_controller_of(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return
        ns = pod.metadata.namespace  # type: ignore[attr-defined]
        rs = self.rs_informer.store.get_by_key(f"{ns}/{ref.name}")
        if rs is None or rs.metadata.uid != ref.uid:  # type: ignore[attr-defined]
            return
        owner = self._owner_key(rs)
        if owner is None:
            return
        d = self.d_informer.store.get_by_key(owner)
        if isinstance(d, apps_pb2.Deployment) and d.spec.strategy.type == ro.RECREATE:
            self._enqueue(owner)

    # -- our own writes, until the caches show them ------------------------------------------------

    def _wrote(self, dkey: str, kind: str, obj: Message) -> None:
        pending = self._pending.setdefault(dkey, _Pending())
        pending.writes[(kind, _key(obj))] = (_rv(obj), time.monotonic())

    def _caught_up(self, dkey: str) -> bool:
        """True once the caches hold every object this controller wrote for the Deployment at
        (at least) the resourceVersion the write returned."""
        pending = self._pending.get(dkey)
        if pending is None:
            return True
        now = time.monotonic()
        for (kind, key), (rv, when) in list(pending.writes.items()):
            store = self.d_informer.store if kind == "d" else self.rs_informer.store
            cached = store.get_by_key(key)
            if (cached is not None and _rv(cached) >= rv) or now - when > WRITE_OBSERVE_TIMEOUT:
                del pending.writes[(kind, key)]
        if not pending.writes:
            del self._pending[dkey]
            return True
        return False

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        if self.may_write is not None and not self.may_write():
            return None
        cached = self.d_informer.store.get_by_key(key)
        if cached is None:
            self._pending.pop(key, None)
            return None
        if not self._caught_up(key):
            return Result(requeue_after=1.0)  # the event of our last write wakes us sooner
        assert isinstance(cached, apps_pb2.Deployment)
        sync = _Sync(self, key, copy_message(cached), cached)
        try:
            return await sync.run()
        except api.Conflict as exc:
            # Someone else wrote first (the ReplicaSet controller's status, a user's edit): an
            # ordinary race, not a failure. Look again with the fresher cache, with back-off.
            log.debug("conflict; requeueing", key=key, error=str(exc), resourceVersion=cached.metadata.resourceVersion)
            return Result(requeue=True)


def _selector(d: apps_pb2.Deployment) -> Selector | None:
    try:
        return selector_from_label_selector(to_dict(d.spec.selector) if d.spec.HasField("selector") else None)
    except ValueError:
        return None


class _Sync:
    """One reconcile of one Deployment (``syncDeployment``). ``self.d`` is our working copy; every
    write of the Deployment replaces it with what the apiserver returned."""

    def __init__(self, ctl: DeploymentController, key: str, d: apps_pb2.Deployment, cached: apps_pb2.Deployment) -> None:
        self.ctl = ctl
        self.key = key
        self.d = d
        self.cached = cached
        self.now = ctl.clock()
        self.log = log.bind(key=key, resourceVersion=d.metadata.resourceVersion)
        # The Deployment's ReplicaSets; every write of one replaces it here, so a later step of
        # the same reconcile never works from (and writes with) a superseded copy.
        self.rs_list: list[apps_pb2.ReplicaSet] = []

    # -- writes ----------------------------------------------------------------------------------

    def event(self, etype: str, reason: str, message: str) -> None:
        self.ctl.recorder.event(self.d, etype, reason, message)

    async def update_status(self) -> None:
        out = await self.ctl.client.update_status(DEPLOYMENTS, self.d)
        assert isinstance(out, apps_pb2.Deployment)
        self.d = out
        self.ctl._wrote(self.key, "d", out)
        self.log.debug("updated status", resourceVersion=out.metadata.resourceVersion)

    async def update_rs(self, rs: apps_pb2.ReplicaSet) -> apps_pb2.ReplicaSet:
        out = await self.ctl.client.update(REPLICASETS, rs)
        assert isinstance(out, apps_pb2.ReplicaSet)
        self.ctl._wrote(self.key, "rs", out)
        self._remember(out)
        return out

    def _remember(self, rs: apps_pb2.ReplicaSet) -> None:
        for i, known in enumerate(self.rs_list):
            if known.metadata.uid == rs.metadata.uid:
                self.rs_list[i] = rs
                return
        self.rs_list.append(rs)

    async def scale_replica_set(self, rs: apps_pb2.ReplicaSet, size: int) -> tuple[bool, apps_pb2.ReplicaSet]:
        """``scaleReplicaSet``: write the size and the deployment's replicas annotations (when
        either changed); a ScalingReplicaSet event for a size change."""
        d = self.d
        old_size = ro.replicas(rs)
        size_changed = old_size != size
        max_replicas = ro.replicas(d) + ro.max_surge(d)
        if not size_changed and not ro.replicas_annotations_need_update(rs, ro.replicas(d), max_replicas):
            return False, rs
        copy = copy_message(rs)
        copy.spec.replicas = size
        ro.set_replicas_annotations(copy, ro.replicas(d), max_replicas)
        out = await self.update_rs(copy)
        if size_changed:
            direction = "up" if size > old_size else "down"
            self.event("Normal", "ScalingReplicaSet",
                       f"Scaled {direction} replica set {rs.metadata.name} from {old_size} to {size}")
            self.log.info("scaled replica set", replicaSet=rs.metadata.name, direction=direction,
                          old=old_size, new=size, rsResourceVersion=out.metadata.resourceVersion)
        return size_changed, out

    async def scale_and_record(self, rs: apps_pb2.ReplicaSet, size: int) -> tuple[bool, apps_pb2.ReplicaSet]:
        """``scaleReplicaSetAndRecordEvent``: nothing when the size is already right."""
        if ro.replicas(rs) == size:
            return False, rs
        return await self.scale_replica_set(rs, size)

    # -- the steps of syncDeployment ----------------------------------------------------------------

    async def run(self) -> Result | None:
        d = self.d
        if d.spec.HasField("selector") and not d.spec.selector.matchLabels and not d.spec.selector.matchExpressions:
            self.event("Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
            if d.status.observedGeneration < d.metadata.generation:
                d.status.observedGeneration = d.metadata.generation
                await self.update_status()
            return None
        rs_list = self.rs_list = await self.replica_sets_for_deployment()
        if d.metadata.HasField("deletionTimestamp"):
            return await self.sync_status_only(rs_list)
        await self.check_paused_conditions()
        if self.d.spec.paused:
            return await self.sync(rs_list)
        if await self.is_scaling_event(rs_list):
            return await self.sync(rs_list)
        strategy = self.d.spec.strategy.type
        if strategy == ro.RECREATE:
            return await self.rollout_recreate(rs_list)
        if strategy == ro.ROLLING_UPDATE:
            return await self.rollout_rolling(rs_list)
        raise ValueError(f"unexpected deployment strategy type: {strategy}")

    async def replica_sets_for_deployment(self) -> list[apps_pb2.ReplicaSet]:
        """``getReplicaSetsForDeployment``: the ReplicaSets this Deployment owns after adopting
        orphans it selects and releasing owned ones it no longer selects."""
        selector = _selector(self.cached)
        if selector is None:
            raise ValueError(f"deployment {self.key} has an invalid label selector")
        # its own ReplicaSets and the orphans of its namespace (the only ones it could adopt)
        candidates = objects_for_owner(self.ctl.rs_informer.store, self.cached)
        manager = ControllerRefManager(self.ctl.client, self.cached, selector, target=REPLICASETS,
                                       controller_rt=DEPLOYMENTS)
        claimed = await manager.claim(candidates)
        return [rs for rs in claimed if isinstance(rs, apps_pb2.ReplicaSet)]

    async def check_paused_conditions(self) -> None:
        """Pausing and resuming are recorded as an Unknown Progressing condition, so a resumed
        deployment is not judged against the time it spent paused."""
        d = self.d
        if not ro.has_progress_deadline(d):
            return
        cond = ro.get_condition(d.status, ro.PROGRESSING)
        if cond is not None and cond.reason == ro.TIMED_OUT_REASON:
            return
        paused_cond = cond is not None and cond.reason == ro.PAUSED_DEPLOY_REASON
        if d.spec.paused and not paused_cond:
            ro.set_condition(d.status, ro.new_condition(ro.PROGRESSING, "Unknown", ro.PAUSED_DEPLOY_REASON,
                                                        "Deployment is paused", self.now))
        elif not d.spec.paused and paused_cond:
            ro.set_condition(d.status, ro.new_condition(ro.PROGRESSING, "Unknown", ro.RESUMED_DEPLOY_REASON,
                                                        "Deployment is resumed", self.now))
        else:
            return
        await self.update_status()

    async def get_all_replica_sets(self, rs_list: list[apps_pb2.ReplicaSet], create: bool
                                   ) -> tuple[apps_pb2.ReplicaSet | None, list[apps_pb2.ReplicaSet]]:
        """``getAllReplicaSetsAndSyncRevision``: (the new ReplicaSet — created when asked and
        missing — with its revision synced, every old ReplicaSet)."""
        existing = ro.find_new_replica_set(self.d, rs_list)
        _, all_old = ro.find_old_replica_sets(self.d, rs_list, existing)
        new_rs = await self.get_new_replica_set(existing, all_old, create)
        return new_rs, all_old

    async def get_new_replica_set(self, existing: apps_pb2.ReplicaSet | None, old_rss: list[apps_pb2.ReplicaSet],
                                  create: bool) -> apps_pb2.ReplicaSet | None:
        d = self.d
        new_revision = ro.max_revision(old_rss) + 1
        if existing is not None:
            rs = copy_message(existing)
            annotations_updated = ro.set_new_replica_set_annotations(d, rs, new_revision, True)
            min_ready_changed = rs.spec.minReadySeconds != d.spec.minReadySeconds
            if annotations_updated or min_ready_changed:
                if min_ready_changed:
                    rs.spec.minReadySeconds = d.spec.minReadySeconds
                return await self.update_rs(rs)
            needs_update = ro.set_deployment_revision(d, rs.metadata.annotations.get(ro.REVISION_ANNOTATION, ""))
            if ro.has_progress_deadline(d) and ro.get_condition(d.status, ro.PROGRESSING) is None:
                ro.set_condition(d.status, ro.new_condition(ro.PROGRESSING, "True", ro.FOUND_NEW_RS_REASON,
                                                            f'Found new replica set "{rs.metadata.name}"', self.now))
                needs_update = True
            if needs_update:
                await self.update_status()
            return existing
        if not create:
            return None
        return await self.create_new_replica_set(old_rss, new_revision)

    async def create_new_replica_set(self, old_rss: list[apps_pb2.ReplicaSet],
                                     new_revision: int) -> apps_pb2.ReplicaSet:
        d = self.d
        collision = d.status.collisionCount if d.status.HasField("collisionCount") else None
        pod_hash = ro.compute_hash(d.spec.template, collision)
        rs = apps_pb2.ReplicaSet()
        rs.metadata.name = f"{d.metadata.name}-{pod_hash}"
        rs.metadata.namespace = d.metadata.namespace
        rs.metadata.ownerReferences.append(new_controller_ref(self.cached, DEPLOYMENTS))
        rs.spec.template.CopyFrom(d.spec.template)
        rs.spec.template.metadata.labels[ro.DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY] = pod_hash
        rs.metadata.labels.update(rs.spec.template.metadata.labels)
        rs.spec.selector.CopyFrom(d.spec.selector)
        rs.spec.selector.matchLabels[ro.DEFAULT_DEPLOYMENT_UNIQUE_LABEL_KEY] = pod_hash
        if d.spec.HasField("minReadySeconds"):
            rs.spec.minReadySeconds = d.spec.minReadySeconds
        rs.spec.replicas = 0
        size = ro.new_rs_new_replicas(d, [*old_rss, rs], rs)
        rs.spec.replicas = size
        ro.set_new_replica_set_annotations(d, rs, new_revision, False)
        already_exists = False
        try:
            created = await self.ctl.client.create(REPLICASETS, rs)
            assert isinstance(created, apps_pb2.ReplicaSet)
        except api.AlreadyExists:
            found = await self.ctl.client.get(REPLICASETS, rs.metadata.name, namespace=rs.metadata.namespace)
            assert isinstance(found, apps_pb2.ReplicaSet)
            ref = get_controller_of(found)
            if ref is None or ref.uid != d.metadata.uid or not ro.equal_ignore_hash(d.spec.template,
                                                                                    found.spec.template):
                # A hash collision: another template produced this name. Count it, so the next
                # attempt hashes differently, and let the error requeue us.
                d.status.collisionCount = (collision or 0) + 1
                self.log.info("hash collision; bumping collisionCount", replicaSet=rs.metadata.name,
                              collisionCount=d.status.collisionCount)
                await self.update_status()
                raise
            created, already_exists = found, True
        except api.APIError as exc:
            msg = f'Failed to create new replica set "{rs.metadata.name}": {exc}'
            if ro.has_progress_deadline(d):
                ro.set_condition(d.status, ro.new_condition(ro.PROGRESSING, "False", ro.FAILED_RS_CREATE_REASON,
                                                            msg, self.now))
                try:
                    await self.update_status()
                except api.APIError:
                    pass  # the creation failure is the error worth reporting
            self.event("Warning", ro.FAILED_RS_CREATE_REASON, msg)
            raise
        self.ctl._wrote(self.key, "rs", created)
        self._remember(created)
        if not already_exists:
            self.log.info("created replica set", replicaSet=created.metadata.name, replicas=size,
                          rsResourceVersion=created.metadata.resourceVersion)
            if size > 0:
                self.event("Normal", "ScalingReplicaSet",
                           f"Scaled up replica set {created.metadata.name} from 0 to {size}")
        needs_update = ro.set_deployment_revision(self.d, str(new_revision))
        if not already_exists and ro.has_progress_deadline(self.d):
            ro.set_condition(self.d.status, ro.new_condition(
                ro.PROGRESSING, "True", ro.NEW_REPLICA_SET_REASON,
                f'Created new replica set "{created.metadata.name}"', self.now))
            needs_update = True
        if needs_update:
            await self.update_status()
        return created

    async def is_scaling_event(self, rs_list: list[apps_pb2.ReplicaSet]) -> bool:
        """``isScalingEvent``: an active ReplicaSet was sized for another ``spec.replicas``."""
        new_rs, old_rss = await self.get_all_replica_sets(rs_list, create=False)
        for rs in ro.filter_active([*old_rss, new_rs]):
            desired = ro.desired_replicas_annotation(rs)
            if desired is not None and desired != ro.replicas(self.d):
                return True
        return False

    async def sync_status_only(self, rs_list: list[apps_pb2.ReplicaSet]) -> Result | None:
        new_rs, old_rss = await self.get_all_replica_sets(rs_list, create=False)
        return await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def sync(self, rs_list: list[apps_pb2.ReplicaSet]) -> Result | None:
        """A scaling event or a paused deployment: resize proportionally, clean up when paused,
        update the status (no progress estimation)."""
        new_rs, old_rss = await self.get_all_replica_sets(rs_list, create=False)
        by_name = {rs.metadata.name: rs for rs in [*old_rss, *([new_rs] if new_rs is not None else [])]}
        for name, size in ro.proportional_scale(self.d, new_rs, old_rss):
            _, updated = await self.scale_replica_set(by_name[name], size)
            by_name[name] = updated
        new_rs = by_name.get(new_rs.metadata.name) if new_rs is not None else None
        old_rss = [by_name[rs.metadata.name] for rs in old_rss]
        if self.d.spec.paused:
            await self.cleanup(old_rss)
        return await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def sync_deployment_status(self, all_rss: Sequence[apps_pb2.ReplicaSet | None],
                                     new_rs: apps_pb2.ReplicaSet | None) -> Result | None:
        status = ro.calculate_status(all_rss, new_rs, self.d, self.now)
        if _status_view(status) == _status_view(self.d.status):
            return None
        self.d.status.CopyFrom(status)
        await self.update_status()
        return None

    async def cleanup(self, old_rss: Sequence[apps_pb2.ReplicaSet]) -> None:
        """``cleanupDeployment``: delete the oldest empty ReplicaSets beyond revisionHistoryLimit."""
        if not self.d.spec.HasField("revisionHistoryLimit"):
            return
        errors: list[api.APIError] = []
        for rs in ro.revisions_to_clean(old_rss, self.d.spec.revisionHistoryLimit):
            try:
                await self.ctl.client.delete(REPLICASETS, rs.metadata.name, namespace=rs.metadata.namespace,
                                             uid=rs.metadata.uid)
                self.log.info("deleted old replica set", replicaSet=rs.metadata.name, revision=ro.revision(rs))
            except api.NotFound:
                pass
            except api.Conflict:
                pass  # replaced by another object of the same name: not ours to delete
            except api.APIError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def sync_rollout_status(self, all_rss: Sequence[apps_pb2.ReplicaSet | None],
                                  new_rs: apps_pb2.ReplicaSet | None) -> Result | None:
        """``syncRolloutStatus``: write the status with the Progressing condition; when nothing
        changed, come back when the progress deadline could expire."""
        status = ro.rollout_status(all_rss, new_rs, self.d, self.now)
        if _status_view(status) == _status_view(self.d.status):
            after = ro.seconds_until_progress_check(self.d, status, self.now)
            if after is None:
                return None
            return Result(requeue=True) if after == 0 else Result(requeue_after=after)
        self.d.status.CopyFrom(status)
        await self.update_status()
        return None

    async def rollout_rolling(self, rs_list: list[apps_pb2.ReplicaSet]) -> Result | None:
        new_rs, old_rss = await self.get_all_replica_sets(rs_list, create=True)
        assert new_rs is not None
        all_rss: list[apps_pb2.ReplicaSet | None] = [*old_rss, new_rs]
        target = ro.reconcile_new_replica_set(all_rss, new_rs, self.d)
        if target is not None:
            scaled, new_rs = await self.scale_and_record(new_rs, target)
            if scaled:
                return await self.sync_rollout_status([*old_rss, new_rs], new_rs)
        plan = ro.reconcile_old_replica_sets(all_rss, ro.filter_active(old_rss), new_rs, self.d)
        if plan:
            updated = []
            for rs in ro.by_creation(old_rss):
                if rs.metadata.name in plan:
                    _, rs = await self.scale_and_record(rs, plan[rs.metadata.name])
                updated.append(rs)
            return await self.sync_rollout_status([*updated, new_rs], new_rs)
        if ro.deployment_complete(self.d, self.d.status):
            await self.cleanup(old_rss)
        return await self.sync_rollout_status(all_rss, new_rs)

    def old_pods_running(self, new_rs: apps_pb2.ReplicaSet | None, old_rss: Sequence[apps_pb2.ReplicaSet]) -> bool:
        """``oldPodsRunning``: an old ReplicaSet still reports pods, or a pod it controls is not
        in a terminal phase (terminating pods count: Recreate means *never both*)."""
        if ro.actual_replica_count(old_rss) > 0:
            return True
        store = self.ctl.pod_informer.store
        for rs in old_rss:
            if new_rs is not None and rs.metadata.uid == new_rs.metadata.uid:
                continue
            for pod in store.by_index(CONTROLLER_UID_INDEX, rs.metadata.uid):
                ref = get_controller_of(pod)
                if ref is None or ref.uid != rs.metadata.uid:
                    continue
                assert isinstance(pod, core_pb2.Pod)
                if pod.status.phase not in ("Succeeded", "Failed"):
                    return True
        return False

    async def rollout_recreate(self, rs_list: list[apps_pb2.ReplicaSet]) -> Result | None:
        new_rs, old_rss = await self.get_all_replica_sets(rs_list, create=False)
        scaled_down = False
        updated_old = []
        for rs in old_rss:
            if ro.replicas(rs) != 0:
                scaled, rs = await self.scale_and_record(rs, 0)
                scaled_down = scaled_down or scaled
            updated_old.append(rs)
        old_rss = updated_old
        if scaled_down:
            return await self.sync_rollout_status([*old_rss, new_rs], new_rs)
        if self.old_pods_running(new_rs, old_rss):
            return await self.sync_rollout_status([*old_rss, new_rs], new_rs)
        if new_rs is None:
            new_rs, old_rss = await self.get_all_replica_sets(rs_list, create=True)
            assert new_rs is not None
        _, new_rs = await self.scale_and_record(new_rs, ro.replicas(self.d))
        if ro.deployment_complete(self.d, self.d.status):
            await self.cleanup(old_rss)
        return await self.sync_rollout_status([*old_rss, new_rs], new_rs)

