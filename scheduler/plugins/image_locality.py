"""ImageLocality: prefer nodes that already have the pod's container images.

Upstream pkg/scheduler/framework/plugins/imagelocality/image_locality.go. For each init and
regular container whose image is on the node, the image's size counts, scaled by its *spread*
(nodes having the image / all nodes) so that a popular image does not pull every pod onto the few
nodes that happen to have it ("node heating"). The sum is clamped to
[23 MiB, 1000 MiB * number of containers] and mapped linearly onto 0..MAX_NODE_SCORE.

Image names are matched by `nodeinfo.image_key` (canonical Docker references: `nginx` matches a
node's `docker.io/library/nginx:latest`), a superset of upstream's append-`:latest` rule.

Pre-score counts, over the whole snapshot (like upstream's image existence map), how many nodes
have each of the pod's images and stores that with the node total; it returns Skip when no node
has any of them (every score would be 0), and — beyond upstream — when every candidate node it is
given would get the same score (each of the pod's images is on all of them with one size, or on
none): adding one constant to every node's total cannot change which node wins, and a cluster
whose nodes all hold the same images is the common case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, Handle, NodeInfo, Pod, Status
from scheduler.nodeinfo import image_key, normalized_image_name

NAME = "ImageLocality"
PRE_SCORE_STATE_KEY = "PreScore" + NAME

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB

__all__ = [
    "MAX_CONTAINER_THRESHOLD",
    "MIN_THRESHOLD",
    "NAME",
    "ImageLocality",
    "ImageState",
    "calculate_priority",
    "new",
    "normalized_image_name",
    "scaled_image_score",
]


@dataclass(frozen=True)
class ImageState:
    """Per cycle: for each of the pod's image keys, how many nodes have it; and the node total."""

    keys: tuple[str, ...]  # the pod's init + regular container images, in order (may repeat)
    num_nodes: Mapping[str, int]
    total_nodes: int

    def clone(self) -> ImageState:
        return self


def pod_image_keys(pod: Pod) -> tuple[str, ...]:
    containers = list(pod.spec.initContainers) + list(pod.spec.containers)
    return tuple(image_key(c.image) for c in containers)


def scaled_image_score(size: int, num_nodes: int, total_nodes: int) -> int:
    """The image's size scaled by the share of nodes that have it."""
    spread = float(num_nodes) / float(total_nodes)
    return int(float(size) * spread)


def calculate_priority(sum_scores: int, num_containers: int) -> int:
    """Clamp the summed image scores and map them linearly onto 0..MAX_NODE_SCORE."""
    max_threshold = MAX_CONTAINER_THRESHOLD * num_containers
    if sum_scores < MIN_THRESHOLD:
        sum_scores = MIN_THRESHOLD
    elif sum_scores > max_threshold:
        sum_scores = max_threshold
    if max_threshold <= MIN_THRESHOLD:  # a pod without containers
        return 0
    return MAX_NODE_SCORE * (sum_scores - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


def _same_images(keys: Iterable[str], nodes: Sequence[NodeInfo]) -> bool:
    """Every node has each image with the same size, or lacks it: the score is the same for all."""
    if not nodes:
        return True
    for key in keys:
        size = nodes[0].image_sizes.get(key)
        for ni in nodes:
            if ni.image_sizes.get(key) != size:
                return False
    return True


class ImageLocality:
    """Score nodes by the (spread-scaled) size of the pod's images already present on them."""

    NAME = NAME

    def __init__(self, handle: Handle | None = None) -> None:
        self._handle = handle

    def image_state(self, pod: Pod, nodes: Sequence[NodeInfo] = ()) -> ImageState:
        keys = pod_image_keys(pod)
        unique = set(keys)
        snapshot = self._handle.snapshot() if self._handle is not None else None
        if snapshot is not None and len(snapshot):
            summary = snapshot.image_num_nodes()
            return ImageState(keys, {key: summary.get(key, 0) for key in unique}, len(snapshot))
        counts = dict.fromkeys(unique, 0)
        for ni in nodes:
            sizes = ni.image_sizes
            if not sizes:
                continue
            for key in unique:
                if key in sizes:
                    counts[key] += 1
        return ImageState(keys, counts, len(nodes))

    def pre_score(self, state: CycleState, pod: Pod, nodes: Sequence[NodeInfo]) -> Status:
        image_state = self.image_state(pod, nodes)
        if not any(image_state.num_nodes.values()) or self._uniform(image_state, nodes):
            return Status.skip()
        state.write(PRE_SCORE_STATE_KEY, image_state)
        return Status.success()

    def _uniform(self, image_state: ImageState, nodes: Sequence[NodeInfo]) -> bool:
        """Whether every candidate would get the same score. The snapshot's summary answers when each
        image is on every node with one size or on none; otherwise the candidates are compared."""
        snapshot = self._handle.snapshot() if self._handle is not None else None
        if snapshot is not None and image_state.total_nodes == len(snapshot) and all(
            count == 0 or (count == image_state.total_nodes and len(snapshot.image_sizes(key)) == 1)
            for key, count in image_state.num_nodes.items()
        ):
            return True
        return _same_images(image_state.num_nodes, nodes)

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        image_state: ImageState | None = state.get(PRE_SCORE_STATE_KEY)
        if image_state is None:  # pre-score not run: count over the snapshot now
            image_state = self.image_state(pod, [node_info])
        total = image_state.total_nodes
        sizes = node_info.image_sizes
        sum_scores = 0
        if total > 0:
            for key in image_state.keys:
                size = sizes.get(key)
                if size is not None:
                    sum_scores += scaled_image_score(size, image_state.num_nodes.get(key, 0), total)
        return calculate_priority(sum_scores, len(image_state.keys)), SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> ImageLocality:
    if args:
        raise ValueError(f"{NAME} takes no args, got {sorted(args)}")
    return ImageLocality(handle)
