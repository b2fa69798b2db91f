"""A scheduling profile: which plugins run, with which weights and args, and the cycle that runs
them (pre-filter → filter → pre-score → score → normalize → pick the best node).

Config file (`python -m scheduler --config FILE`), a trimmed KubeSchedulerConfiguration:

    percentageOfNodesToScore: 0          # 0: Kubernetes' adaptive default
    profiles:
    - schedulerName: default-scheduler
      plugins:
        disabled: [ImageLocality]        # by name, or "*" for all defaults
        enabled: []                      # extra plugins
        weights: {NodeResourcesFit: 2}   # score weights
      pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated}}
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler import plugins as registry
from scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    Code,
    CycleState,
    FilterPlugin,
    NodeInfo,
    NormalizeScorePlugin,
    Plugin,
    PodInfo,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Snapshot,
    Status,
)
from scheduler.nodeinfo import POD_INFO_KEY

DEFAULT_SCHEDULER = "default-scheduler"

# Kubernetes' default plugin set and score weights (pkg/scheduler/apis/config/v1/default_plugins.go).
DEFAULT_PLUGINS: tuple[tuple[str, int], ...] = (
    ("NodeName", 0),
    ("NodeUnschedulable", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
)


class ConfigError(ValueError):
    pass


@dataclass
class _SnapshotHandle:
    snap: Snapshot = field(default_factory=lambda: Snapshot(()))

    def snapshot(self) -> Snapshot:
        return self.snap


@dataclass
class ScheduleResult:
    node: str | None
    # per node, why it was rejected (for the FailedScheduling message)
    diagnosis: dict[str, Status] = field(default_factory=dict)
    status: Status = field(default_factory=Status.success)
    evaluated: int = 0
    feasible: int = 0
    # the pod's PodInfo as the cycle computed it (requests), for assuming it on the chosen node
    pod_info: PodInfo | None = None


class Profile:
    def __init__(self, name: str = DEFAULT_SCHEDULER, plugins: Sequence[tuple[str, int]] = DEFAULT_PLUGINS,
                 plugin_args: Mapping[str, Mapping[str, Any]] | None = None,
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None) -> None:
        self.name = name
        self.handle = _SnapshotHandle()
        self.plugins: list[Plugin] = []
        self.weights: dict[str, int] = {}
        for plugin_name, weight in plugins:
            try:
                factory = registry.factory(plugin_name)
            except KeyError as exc:
                raise ConfigError(str(exc)) from None
            try:
                plugin = factory((plugin_args or {}).get(plugin_name, {}), self.handle)
            except ValueError as exc:
                raise ConfigError(f"plugin {plugin_name}: {exc}") from None
            self.plugins.append(plugin)
            self.weights[plugin_name] = weight
        self.pre_filters = [p for p in self.plugins if isinstance(p, PreFilterPlugin)]
        self.filters = [p for p in self.plugins if isinstance(p, FilterPlugin)]
        self.pre_scores = [p for p in self.plugins if isinstance(p, PreScorePlugin)]
        self.scores = [p for p in self.plugins if isinstance(p, ScorePlugin) and self.weights.get(p.NAME, 0) > 0]
        self._normalizers = {p.NAME: p.normalize_score for p in self.scores if isinstance(p, NormalizeScorePlugin)}
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self._next_start = 0

    # -- the cycle ---------------------------------------------------------------------------

    def num_feasible_nodes_to_find(self, total: int) -> int:
        """kube-scheduler's adaptive percentageOfNodesToScore: all nodes below 100, otherwise a
        share that shrinks with cluster size (at least 5 %, at least 100 nodes)."""
        if total < 100:
            return total
        pct = self.percentage or max(5, 50 - total // 125)
        if pct >= 100:
            return total
        return max(100, total * pct // 100)

    def schedule(self, pod: Any, snapshot: Snapshot) -> ScheduleResult:
        self.handle.snap = snapshot
        nodes = snapshot.list()
        result = ScheduleResult(None)
        if not nodes:
            result.status = Status.unschedulable("no nodes available to schedule pods")
            return result
        state = CycleState()
        allowed: frozenset[str] | None = None
        for plugin in self.pre_filters:
            pre, status = plugin.pre_filter(state, pod, nodes)
            if status.is_skip():
                state.skip_filter_plugins.add(plugin.NAME)
                continue
            if not status.is_success():
                status = status.with_plugin(plugin.NAME)
                result.status = status
                if status.is_rejected():
                    result.diagnosis = {n.name: status for n in nodes}
                return result
            if pre is not None and pre.node_names is not None:
                allowed = pre.node_names if allowed is None else allowed & pre.node_names
        candidates = nodes
        if allowed is not None:
            candidates = [n for n in nodes if n.name in allowed]
            for n in nodes:
                if n.name not in allowed:
                    result.diagnosis[n.name] = Status.unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]")
        feasible = self._find_feasible(state, pod, candidates, result)
        if feasible is None:
            return result
        result.feasible = len(feasible)
        if not feasible:
            result.status = Status.unschedulable(fit_error_message(len(nodes), result.diagnosis))
            return result
        if len(feasible) == 1:
            result.node = feasible[0].name
        else:
            totals = self._prioritize(state, pod, feasible)
            if isinstance(totals, Status):
                result.status = totals
                return result
            result.node = self._select_host(feasible, totals)
        result.pod_info = state.get(POD_INFO_KEY)
        return result

    def _find_feasible(self, state: CycleState, pod: Any, candidates: list[NodeInfo],
                       result: ScheduleResult) -> list[NodeInfo] | None:
        """Filter candidates from a rotating start until `num_feasible_nodes_to_find` pass (as
        kube-scheduler's findNodesThatPassFilters); rejections go to `result.diagnosis`. None (and
        `result.status` set) on a filter error."""
        skipped = state.skip_filter_plugins
        active = [(p.NAME, p.filter) for p in self.filters if p.NAME not in skipped]
        total = len(candidates)
        want = self.num_feasible_nodes_to_find(total)
        start = self._next_start % max(total, 1)
        ordered = candidates[start:] + candidates[:start] if start else candidates
        feasible: list[NodeInfo] = []
        evaluated = 0
        diagnosis = result.diagnosis
        success = SUCCESS
        for node in ordered:
            evaluated += 1
            for plugin_name, run_filter in active:
                status = run_filter(state, pod, node)
                if status is not success and status.code:  # Code.SUCCESS is 0
                    status = status.with_plugin(plugin_name)
                    break
            else:
                feasible.append(node)
                if len(feasible) >= want:
                    break
                continue
            if status.code == Code.ERROR:
                result.evaluated = evaluated
                result.status = status
                return None
            diagnosis[node.name] = status
        result.evaluated = evaluated
        self._next_start = start + evaluated
        return feasible

    def _prioritize(self, state: CycleState, pod: Any, nodes: list[NodeInfo]) -> list[int] | Status:
        """Weighted total score per node (in `nodes` order), or the status of a failing plugin."""
        for pre in self.pre_scores:
            status = pre.pre_score(state, pod, nodes)
            if status.is_skip():
                state.skip_score_plugins.add(pre.NAME)
            elif not status.is_success():
                return status.with_plugin(pre.NAME)
        totals = [0] * len(nodes)
        success = SUCCESS
        for plugin in self.scores:
            if plugin.NAME in state.skip_score_plugins:
                continue
            score = plugin.score
            plugin_scores: list[int] = []
            append = plugin_scores.append
            for node in nodes:
                value, status = score(state, pod, node)
                if status is not success and status.code:
                    return status.with_plugin(plugin.NAME)
                append(value)
            if plugin.NAME in self._normalizers:
                names = [n.name for n in nodes]
                by_name = dict(zip(names, plugin_scores, strict=True))
                status = self._normalizers[plugin.NAME](state, pod, by_name)
                if not status.is_success():
                    return status.with_plugin(plugin.NAME)
                plugin_scores = [by_name[name] for name in names]
            weight = self.weights[plugin.NAME]
            if min(plugin_scores) >= 0 and max(plugin_scores) <= MAX_NODE_SCORE:  # the usual case
                totals = [t + s * weight for t, s in zip(totals, plugin_scores, strict=True)]
            else:
                totals = [
                    t + (s if 0 <= s <= MAX_NODE_SCORE else (MAX_NODE_SCORE if s > 0 else 0)) * weight
                    for t, s in zip(totals, plugin_scores, strict=True)
                ]
        return totals

    def _select_host(self, nodes: Sequence[NodeInfo], totals: Sequence[int]) -> str:
        """The highest total; ties broken uniformly at random (upstream samples a reservoir over the
        nodes with the highest score; one draw over the list of them is the same distribution)."""
        best = max(totals)
        winners = [i for i, total in enumerate(totals) if total == best]
        if len(winners) == 1:
            return nodes[winners[0]].name
        return nodes[winners[self.rng.randrange(len(winners))]].name


def fit_error_message(total: int, diagnosis: Mapping[str, Status]) -> str:
    """Kubernetes' FitError text: `0/3 nodes are available: 1 node(s) had untolerated taint
    {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu.` — a histogram of the reasons,
    sorted as strings."""
    histogram: Counter[str] = Counter()
    for status in diagnosis.values():
        for reason in status.reasons or (status.message() or "unknown reason",):
            histogram[reason] += 1
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


def load_profiles(config: Mapping[str, Any] | None) -> tuple[list[Profile], int]:
    """Profiles from a config document (None: the default profile)."""
    config = config or {}
    if not isinstance(config, Mapping):
        raise ConfigError("the scheduler config must be a mapping")
    unknown = set(config) - {"profiles", "percentageOfNodesToScore", "apiVersion", "kind"}
    if unknown:
        raise ConfigError(f"unknown scheduler config field(s): {', '.join(sorted(unknown))}")
    percentage = int(config.get("percentageOfNodesToScore") or 0)
    if not 0 <= percentage <= 100:
        raise ConfigError("percentageOfNodesToScore must be between 0 and 100")
    raw_profiles = config.get("profiles") or [{"schedulerName": DEFAULT_SCHEDULER}]
    profiles = []
    for i, raw in enumerate(raw_profiles):
        if not isinstance(raw, Mapping):
            raise ConfigError(f"profiles[{i}] must be a mapping")
        name = str(raw.get("schedulerName") or DEFAULT_SCHEDULER)
        plugin_cfg = raw.get("plugins") or {}
        disabled = set(plugin_cfg.get("disabled") or [])
        weights = dict(plugin_cfg.get("weights") or {})
        chosen: list[tuple[str, int]] = []
        if "*" not in disabled:
            chosen = [(n, int(weights.get(n, w))) for n, w in DEFAULT_PLUGINS if n not in disabled]
        for extra in plugin_cfg.get("enabled") or []:
            if extra not in dict(chosen):
                chosen.append((extra, int(weights.get(extra, 1))))
        for n, w in weights.items():
            if int(w) < 0:
                raise ConfigError(f"profiles[{i}].plugins.weights.{n}: must not be negative")
        args = {str(pc.get("name")): dict(pc.get("args") or {}) for pc in raw.get("pluginConfig") or []}
        profiles.append(Profile(name, chosen, args, percentage))
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError("duplicate schedulerName in profiles")
    return profiles, percentage
