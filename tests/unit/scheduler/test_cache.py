"""SchedulerCache: snapshot reuse and invalidation, assumed pods visible to the next cycle."""

from __future__ import annotations

from typing import Any

from kplane.api import codec
from kplane.api.pb import core_pb2
from scheduler.cache import SchedulerCache


def node(name: str, images: tuple[str, ...] = ()) -> Any:
    return codec.from_dict({"metadata": {"name": name},
                            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                       "images": [{"names": [i], "sizeBytes": 1} for i in images]}},
                           core_pb2.Node)


def pod(name: str, node_name: str) -> Any:
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"},
                            "spec": {"nodeName": node_name, "containers": [
                                {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]}},
                           core_pb2.Pod)


def test_snapshot_is_reused_until_the_node_set_or_a_node_changes() -> None:
    """Pods change NodeInfos in place (the same snapshot sees them); node add/update/remove rebuild it."""
    cache = SchedulerCache()
    cache.add_node(node("a", ("nginx:1",)))
    first = cache.snapshot()
    assert cache.snapshot() is first
    cache.assume_pod(pod("p", "a"))
    assert cache.snapshot() is first
    info = first.get("a")
    assert info is not None and info.requested.milli_cpu == 1000
    assert first.image_num_nodes() == {"docker.io/library/nginx:1": 1}

    cache.update_node(node("a", ("nginx:2",)))
    second = cache.snapshot()
    assert second is not first
    assert second.image_num_nodes() == {"docker.io/library/nginx:2": 1}

    cache.add_node(node("b"))
    third = cache.snapshot()
    assert third is not second and [ni.name for ni in third.list()] == ["a", "b"]
    cache.remove_node(node("a"))
    assert [ni.name for ni in cache.snapshot().list()] == ["b"]


def test_assume_and_forget_bump_the_node_generation() -> None:
    """Every change to a node's pods is a new generation (what per-node results are keyed by)."""
    cache = SchedulerCache()
    cache.add_node(node("a"))
    info = cache.nodes["a"]
    before = info.generation
    assumed = pod("p", "a")
    cache.assume_pod(assumed)
    assert info.generation > before and info.requested.milli_cpu == 1000
    after_assume = info.generation
    cache.forget_pod(assumed)
    assert info.generation > after_assume and info.requested.milli_cpu == 0


def test_snapshot_knows_which_nodes_count_pods_with_affinity() -> None:
    """Pods with (anti-)affinity counted or uncounted through the cache show up in (and leave) the
    snapshot's have_pods_with_* lists, also on a snapshot taken before the change."""
    cache = SchedulerCache()
    cache.add_node(node("a"))
    cache.add_node(node("b"))
    snapshot = cache.snapshot()
    assert snapshot.have_pods_with_affinity() == [] == snapshot.have_pods_with_required_anti_affinity()
    anti = pod("web", "b")
    anti.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.add(
        topologyKey="kubernetes.io/hostname").labelSelector.matchLabels["app"] = "web"
    cache.assume_pod(anti)
    assert [ni.name for ni in snapshot.have_pods_with_affinity()] == ["b"]
    assert [ni.name for ni in snapshot.have_pods_with_required_anti_affinity()] == ["b"]
    cache.forget_pod(anti)
    assert snapshot.have_pods_with_affinity() == [] == snapshot.have_pods_with_required_anti_affinity()
    cache.add_pod(anti)
    cache.remove_node(node("b"))
    assert cache.snapshot().have_pods_with_affinity() == []
    cache.add_node(node("b"))  # the orphaned pod is counted again
    assert [ni.name for ni in cache.snapshot().have_pods_with_required_anti_affinity()] == ["b"]
