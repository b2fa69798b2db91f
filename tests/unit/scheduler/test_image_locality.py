"""ImageLocality, ported from upstream's imagelocality image_locality_test.go
(TestImageLocalityPriority: same images, sizes and expected scores) plus name canonicalisation."""

from __future__ import annotations

from typing import Any

import pytest

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.framework import MAX_NODE_SCORE, Code, CycleState, PreScorePlugin, ScorePlugin, Snapshot
from scheduler.nodeinfo import new_node_info
from scheduler.plugins import image_locality
from scheduler.plugins.image_locality import MB, calculate_priority

# (names, size in MB) per image, as in the upstream test's node statuses
NODE_40_300_2000 = [(["gcr.io/40:latest", "gcr.io/40:v1", "gcr.io/40:v1"], 40),
                    (["gcr.io/300:latest", "gcr.io/300:v1"], 300), (["gcr.io/2000:latest"], 2000)]
NODE_250_10 = [(["gcr.io/250:latest"], 250), (["gcr.io/10:latest", "gcr.io/10:v1"], 10)]
NODE_600_40_900 = [(["gcr.io/600:latest"], 600), (["gcr.io/40:latest"], 40), (["gcr.io/900:latest"], 900)]
NODE_300_600_900 = [(["gcr.io/300:latest"], 300), (["gcr.io/600:latest"], 600), (["gcr.io/900:latest"], 900)]
NODE_4000_30 = [(["gcr.io/4000:latest"], 4000), (["gcr.io/30:latest"], 30)]
NODE_20_30_40 = [(["gcr.io/20:latest"], 20), (["gcr.io/30:latest"], 30), (["gcr.io/40:latest"], 40)]
NO_IMAGES: list[tuple[list[str], int]] = []


class FakeHandle:
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot


def make_node(name: str, images: list[tuple[list[str], int]]) -> Any:
    return codec.from_dict(
        {"metadata": {"name": name},
         "status": {"images": [{"names": names, "sizeBytes": size * MB} for names, size in images]}},
        core_pb2.Node,
    )


def make_pod(*images: str, init: tuple[str, ...] = ()) -> Any:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": im} for i, im in enumerate(init)]
    return codec.from_dict({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}, core_pb2.Pod)


def scores(pod: Any, nodes: list[tuple[str, list[tuple[list[str], int]]]], *, pre_score: bool = True) -> list[int]:
    infos = [new_node_info(make_node(name, images)) for name, images in nodes]
    plugin = image_locality.new({}, FakeHandle(Snapshot(infos)))
    state = CycleState()
    if pre_score:
        status = plugin.pre_score(state, pod, infos)
        if status.code == Code.SKIP:
            return [0] * len(infos)
        assert status.is_success()
    out = []
    for ni in infos:
        score, status = plugin.score(state, pod, ni)
        assert status.is_success()
        out.append(score)
    return out


CASES = [
    # node2: 100 * (250M/2 - 23M) / (1000M*2 - 23M) = 5
    ("two images spread on two nodes, prefer the larger image one", make_pod("gcr.io/40", "gcr.io/250"),
     [("node1", NODE_40_300_2000), ("node2", NODE_250_10)], [0, 5]),
    # node1: 100 * ((40M + 300M)/2 - 23M) / (1000M*2 - 23M) = 7
    ("two images on one node, prefer this node", make_pod("gcr.io/40", "gcr.io/300"),
     [("node1", NODE_40_300_2000), ("node2", NODE_250_10)], [7, 0]),
    # node1: 4000M/2 >= 1000M*2 -> max threshold
    ("if exceed limit, use limit", make_pod("gcr.io/10", "gcr.io/4000"),
     [("node1", NODE_4000_30), ("node2", NODE_250_10)], [MAX_NODE_SCORE, 0]),
    # node1: 100 * (4000M/3 - 23M) / (1000M*2 - 23M) = 66
    ("if exceed limit, use limit (with node which has no images present)", make_pod("gcr.io/10", "gcr.io/4000"),
     [("node1", NODE_4000_30), ("node2", NODE_250_10), ("node3", NO_IMAGES)], [66, 0, 0]),
    # node1: 100 * (600M*2/3 + 900M*2/3 - 23M) / (1000M*3 - 23M) = 32; node2 adds 300M/3 -> 36
    ("pod with multiple large images, node2 is preferred", make_pod("gcr.io/300", "gcr.io/600", "gcr.io/900"),
     [("node1", NODE_600_40_900), ("node2", NODE_300_600_900), ("node3", NO_IMAGES)], [32, 36, 0]),
    # node1: 100 * (30M + 40M/2 - 23M) / (1000M*2 - 23M) = 1
    ("pod with multiple small images", make_pod("gcr.io/30", "gcr.io/40"),
     [("node1", NODE_20_30_40), ("node2", NODE_4000_30)], [1, 0]),
    # node1: 100 * (300M/2 - 23M) / (1000M*2 - 23M) = 6
    ("include InitContainers: two images spread on two nodes, prefer the larger image one",
     make_pod("gcr.io/30", init=("gcr.io/300",)), [("node1", NODE_40_300_2000), ("node2", NODE_20_30_40)], [6, 0]),
]


@pytest.mark.parametrize("pre_score", [True, False], ids=["with pre-score", "without pre-score"])
@pytest.mark.parametrize(("pod", "nodes", "want"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_image_locality_priority(pod: Any, nodes: list[tuple[str, Any]], want: list[int], pre_score: bool) -> None:
    """Scores match upstream's TestImageLocalityPriority (image size scaled by spread, clamped, 0..100)."""
    assert scores(pod, nodes, pre_score=pre_score) == want


def test_docker_hub_names_match() -> None:
    """A pod's short image name matches the fully qualified name a container runtime reports."""
    nodes = [("node1", [(["docker.io/library/nginx:1.25", "docker.io/library/nginx@sha256:abc"], 500)]),
             ("node2", NO_IMAGES)]
    # 100 * (500M/2 - 23M) / (1000M - 23M) = 23
    assert scores(make_pod("nginx:1.25"), nodes) == [23, 0]
    assert scores(make_pod("docker.io/library/nginx:1.25"), nodes) == [23, 0]
    assert scores(make_pod("nginx@sha256:abc"), nodes) == [23, 0]
    assert scores(make_pod("nginx"), nodes) == [0, 0]  # :latest is not :1.25


def test_pre_score_skips_when_no_node_has_the_images() -> None:
    """Pre-score returns Skip when none of the pod's images is on any node (every score would be 0)."""
    infos = [new_node_info(make_node("node1", NODE_250_10))]
    plugin = image_locality.new({}, FakeHandle(Snapshot(infos)))
    assert plugin.pre_score(CycleState(), make_pod("gcr.io/unknown"), infos).code == Code.SKIP
    assert plugin.pre_score(CycleState(), make_pod(), infos).code == Code.SKIP


def test_spread_counts_whole_snapshot() -> None:
    """The spread ratio counts all nodes of the snapshot, not only those passed to pre-score."""
    infos = [new_node_info(make_node(f"node{i}", NODE_250_10 if i < 2 else NO_IMAGES)) for i in range(4)]
    plugin = image_locality.new({}, FakeHandle(Snapshot(infos)))
    state = CycleState()
    assert plugin.pre_score(state, make_pod("gcr.io/250"), infos[1:3]).is_success()
    # 250M * 2/4 = 125M: 100 * (125M - 23M) / (1000M - 23M) = 10
    assert plugin.score(state, make_pod("gcr.io/250"), infos[1])[0] == 10
    assert plugin.score(state, make_pod("gcr.io/250"), infos[2])[0] == 0


def test_pre_score_skips_when_every_candidate_scores_the_same() -> None:
    """Skip when the candidates all hold the pod's images with one size (or all lack them): a
    constant added to every node's total cannot change the winner."""
    infos = [new_node_info(make_node(f"node{i}", NODE_250_10 if i < 2 else NODE_40_300_2000)) for i in range(4)]
    plugin = image_locality.new({}, FakeHandle(Snapshot(infos)))
    pod = make_pod("gcr.io/250", "gcr.io/10")
    assert plugin.pre_score(CycleState(), pod, infos[:2]).code == Code.SKIP
    assert plugin.pre_score(CycleState(), pod, infos[2:]).code == Code.SKIP  # neither image there
    assert plugin.pre_score(CycleState(), pod, infos[1:3]).is_success()
    other_size = new_node_info(make_node("node9", [(["gcr.io/250:latest"], 999), (["gcr.io/10:latest"], 10)]))
    assert plugin.pre_score(CycleState(), pod, [infos[0], other_size]).is_success()


@pytest.mark.parametrize(
    ("sum_scores", "containers", "want"),
    [
        pytest.param(0, 1, 0, id="below min threshold"),
        pytest.param(23 * MB, 1, 0, id="at min threshold"),
        pytest.param(1000 * MB, 1, 100, id="at max threshold"),
        pytest.param(5000 * MB, 2, 100, id="above max threshold"),
        pytest.param(10 * MB, 0, 0, id="no containers"),
    ],
)
def test_calculate_priority(sum_scores: int, containers: int, want: int) -> None:
    """calculate_priority clamps to [23MB, 1000MB * containers] and scales to 0..100."""
    assert calculate_priority(sum_scores, containers) == want


def test_plugin_shape() -> None:
    """The module exposes NAME, a pre-score/score plugin, and rejects args."""
    plugin = image_locality.new({}, FakeHandle(Snapshot([])))
    assert plugin.NAME == image_locality.NAME == "ImageLocality"
    assert isinstance(plugin, PreScorePlugin) and isinstance(plugin, ScorePlugin)
    with pytest.raises(ValueError, match="ImageLocality takes no args"):
        image_locality.new({"x": 1}, FakeHandle(Snapshot([])))


def test_uniform_images_skip_from_the_snapshot_summary() -> None:
    """An image every node of the snapshot has with one size: Skip without comparing candidates;
    one node with another size and the candidates decide."""
    infos = [new_node_info(make_node(f"node{i}", NODE_250_10)) for i in range(3)]
    plugin = image_locality.new({}, FakeHandle(Snapshot(infos)))
    assert plugin.pre_score(CycleState(), make_pod("gcr.io/250"), infos).code == Code.SKIP
    odd = new_node_info(make_node("odd", [(["gcr.io/250:latest"], 999)]))
    plugin = image_locality.new({}, FakeHandle(Snapshot([*infos, odd])))
    assert plugin.pre_score(CycleState(), make_pod("gcr.io/250"), infos).code == Code.SKIP
    assert plugin.pre_score(CycleState(), make_pod("gcr.io/250"), [infos[0], odd]).is_success()
