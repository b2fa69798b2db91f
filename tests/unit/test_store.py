"""The indexed in-memory store behind every informer: keys, writes, indices, read-only objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kplane.api.pb import core_pb2
from kplane.client.store import (
    NAMESPACE_INDEX,
    CacheMutationError,
    Indexer,
    by_owner_uid_index_func,
    meta_namespace_key,
    pods_by_node_index_func,
    split_key,
)

NODE = "spec.nodeName"
OWNER = "owner"


def pod(name: str, ns: str = "default", *, node: str = "", rv: str = "1", owners: tuple[str, ...] = (),
        labels: dict[str, str] | None = None) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = ns
    p.metadata.resourceVersion = rv
    p.metadata.labels.update(labels or {})
    for uid in owners:
        p.metadata.ownerReferences.add(uid=uid, name=f"owner-{uid}", kind="ReplicaSet")
    if node:
        p.spec.nodeName = node
    return p


def node(name: str) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    return n


def names(objs: Sequence[Any]) -> list[str]:
    return sorted(o.metadata.name for o in objs)


def check_invariants(store: Indexer) -> None:
    """Every index holds exactly the keys its function maps each stored object to."""
    for name, func in store.get_indexers().items():
        expected: dict[str, set[str]] = {}
        for key in store.list_keys():
            obj = store.get_by_key(key)
            assert obj is not None
            for value in func(obj):
                expected.setdefault(value, set()).add(key)
        assert {v: set(store.index_keys(name, v)) for v in store.index_values(name)} == expected


def test_keys_and_split() -> None:
    """Namespaced objects are keyed ns/name, cluster-scoped ones by name, and split_key inverts both."""
    assert meta_namespace_key(pod("a", "ns1")) == "ns1/a"
    assert meta_namespace_key(node("n1")) == "n1"
    assert split_key("ns1/a") == ("ns1", "a")
    assert split_key("n1") == ("", "n1")
    with pytest.raises(ValueError):
        split_key("a/b/c")


def test_add_update_delete() -> None:
    """Add stores by key, update replaces, delete removes, and deleting an absent key is a no-op."""
    store = Indexer(detect_mutations=True)
    store.add(pod("a", rv="1"))
    store.add(pod("b", rv="2"))
    assert store.list_keys() == ["default/a", "default/b"]
    store.update(pod("a", rv="3"))
    got = store.get_by_key("default/a")
    assert got is not None and got.metadata.resourceVersion == "3"  # type: ignore[attr-defined]
    assert store.get(pod("b")) is store.get_by_key("default/b")
    store.delete(pod("a"))
    store.delete(pod("never-there"))
    assert store.list_keys() == ["default/b"] and len(store) == 1 and "default/b" in store
    assert store.get_by_key("default/a") is None
    check_invariants(store)


def test_namespace_index_is_built_in() -> None:
    """Every store indexes by namespace, cluster-scoped objects under the empty namespace."""
    store = Indexer()
    store.add(pod("a", "ns1"))
    store.add(pod("b", "ns2"))
    store.add(pod("c", "ns1"))
    store.add(node("n1"))
    assert names(store.by_index(NAMESPACE_INDEX, "ns1")) == ["a", "c"]
    assert names(store.by_index(NAMESPACE_INDEX, "")) == ["n1"]
    assert store.by_index(NAMESPACE_INDEX, "missing") == []


def test_by_index_follows_updates_that_change_the_value() -> None:
    """When an update changes an object's index value it leaves the old bucket and joins the new one."""
    store = Indexer({NODE: pods_by_node_index_func})
    store.add(pod("a", node="n1"))
    store.add(pod("b", node="n1"))
    store.add(pod("unbound"))
    assert names(store.by_index(NODE, "n1")) == ["a", "b"]
    store.update(pod("a", node="n2", rv="5"))
    assert names(store.by_index(NODE, "n1")) == ["b"]
    assert names(store.by_index(NODE, "n2")) == ["a"]
    store.delete(pod("b"))
    assert store.by_index(NODE, "n1") == []
    assert store.index_values(NODE) == ["n2"], "empty buckets are dropped"
    check_invariants(store)


def test_multi_valued_index() -> None:
    """An object indexed under several values (owner UIDs) is found under each, and only once."""
    store = Indexer({OWNER: by_owner_uid_index_func})
    store.add(pod("a", owners=("u1", "u2", "u1")))
    store.add(pod("b", owners=("u2",)))
    assert store.index_keys(OWNER, "u1") == ["default/a"]
    assert store.index_keys(OWNER, "u2") == ["default/a", "default/b"]
    store.update(pod("a", owners=(), rv="9"))
    assert store.index_keys(OWNER, "u1") == [] and store.index_keys(OWNER, "u2") == ["default/b"]
    check_invariants(store)


def test_replace_swaps_contents_and_indices() -> None:
    """Replace leaves exactly the listed objects, re-indexed, and records the list's resourceVersion."""
    store = Indexer({NODE: pods_by_node_index_func})
    store.add(pod("old", node="n1"))
    store.add(pod("kept", node="n1"))
    store.replace([pod("kept", node="n2", rv="7"), pod("new", node="n2", rv="8")], "10")
    assert store.list_keys() == ["default/kept", "default/new"]
    assert store.by_index(NODE, "n1") == []
    assert names(store.by_index(NODE, "n2")) == ["kept", "new"]
    assert store.resource_version == "10"
    check_invariants(store)


def test_add_indexers_after_data_indexes_existing_objects() -> None:
    """An index added after objects are stored covers them at once and tracks later writes."""
    store = Indexer()
    store.add(pod("a", node="n1"))
    store.add(pod("b", node="n2"))
    store.add_indexers({NODE: pods_by_node_index_func})
    assert names(store.by_index(NODE, "n1")) == ["a"]
    store.add(pod("c", node="n1"))
    assert names(store.by_index(NODE, "n1")) == ["a", "c"]
    check_invariants(store)


def test_add_indexers_conflicts() -> None:
    """Re-adding an index with the same function is a no-op; a different function under that name fails."""
    store = Indexer({NODE: pods_by_node_index_func})
    store.add_indexers({NODE: pods_by_node_index_func})
    with pytest.raises(ValueError, match="already exists"):
        store.add_indexers({NODE: by_owner_uid_index_func})
    with pytest.raises(KeyError, match="does not exist"):
        store.by_index("nope", "x")


def test_failing_index_function_keeps_the_object() -> None:
    """An index function that raises leaves that object out of the index but still stored."""

    def picky(obj: object) -> list[str]:
        if obj.metadata.name == "bad":  # type: ignore[attr-defined]
            raise RuntimeError("cannot index this one")
        return ["ok"]

    store = Indexer({"picky": picky})
    store.add(pod("bad"))
    store.add(pod("good"))
    assert store.list_keys() == ["default/bad", "default/good"]
    assert store.index_keys("picky", "ok") == ["default/good"]


def test_copy_and_modify_leaves_the_cache_untouched() -> None:
    """A caller that copies a cached object before changing it does not change the cache."""
    store = Indexer({NODE: pods_by_node_index_func}, detect_mutations=True)
    store.add(pod("a", node="n1", labels={"app": "web"}))
    cached = store.get_by_key("default/a")
    assert cached is not None
    mine = core_pb2.Pod()
    mine.CopyFrom(cached)  # type: ignore[arg-type]
    mine.metadata.labels["app"] = "changed"
    mine.spec.nodeName = "n2"
    again = store.get_by_key("default/a")
    assert again is not None
    assert dict(again.metadata.labels) == {"app": "web"}  # type: ignore[attr-defined]
    assert names(store.by_index(NODE, "n1")) == ["a"] and store.by_index(NODE, "n2") == []
    store.check_mutations()


def test_mutating_a_cached_object_is_detected() -> None:
    """With the mutation detector on, changing a cached object in place raises on the next touch."""
    store = Indexer(detect_mutations=True)
    store.add(pod("a", labels={"app": "web"}))
    cached = store.get_by_key("default/a")
    assert cached is not None
    cached.metadata.labels["app"] = "oops"  # type: ignore[attr-defined]
    with pytest.raises(CacheMutationError, match="modified in place"):
        store.check_mutations()
    with pytest.raises(CacheMutationError):
        store.get_by_key("default/a")
    with pytest.raises(CacheMutationError):
        store.update(pod("a", rv="2"))


def test_detector_is_on_in_the_test_suite() -> None:
    """The suite runs with the mutation detector on by default (KPLANE_TEST is set in conftest)."""
    assert Indexer().detect_mutations
